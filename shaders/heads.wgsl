// The heads run after every layer, as GEMVs out = act(W · x + bias) on each batch slot's [CLS]
// vector, spread over many workgroups: one dispatch per stage group (shaders/heads.ts builds them),
//   group 1  z = tanh(Wp · h_cls + bp) → `pooled`             (h_cls: the slot's [CLS] row of `hidden`)
//   group 2  every stage that reads z: the classifier (→ `logits`), the per-layer head and the λ MLP's
//            first Linear (→ `scratch`), on z or, for the λ layer, [z ; z_prev]
//   group 3+ each further λ hidden layer, on the previous one's output in `scratch`
// λ's output layer (Linear → 1) has no dispatch of its own: the stage of the last hidden layer (in
// group 2 or the last group) multiplies its rows' tanh outputs by the output weights, and each of its
// workgroups writes one partial sum of the logit per slot (workgroup 0 adds the bias); exit.wgsl's
// decide adds them in a fixed order. As a dispatch of its own (one dot product per slot) it took
// 28 µs per depth in the H200 kernel profile, as long as a 1024² λ layer: dispatch overhead.
// Why not one workgroup per slot for all stages (the previous design): one SM cannot stream the head
// matrices fast enough. On an H200 (batch 1, seq 128) that kernel took 536 µs per depth for the
// shipped PALBERT heads (H 512, λ MLP 1024² ×3) against ≈ 170 µs for the 7 separate dispatches it
// replaced, and 175 µs against ≈ 43 µs for ALBERT-base's pooler + classifier.
//
// Grid (row blocks of all the group's stages, 1, batch slots); workgroup x picks its stage through the
// stage table (each stage's first row block), z is the slot. A workgroup loads its stage input vector
// into workgroup memory (CAP floats at a time, so any K works), then ROWS rows × LANES invocations
// split K (coalesced vec4 weight loads where K % 4 == 0, up to 4 in flight per invocation, else one
// element at a time), and lane 0 of each row sums the lanes. f16 weights (WT, kernel.ts weightTypeWgsl) are
// widened; sums are f32. Semantics: tests/reference/ops.ts `linear` (+ tanh).
// WT, the weights' element type (f16 or f32), is declared ahead of this file by the launcher
// (shaders/kernel.ts weightTypeWgsl).

const LANES: u32 = 32u;
const ROWS: u32 = 8u;
const THREADS: u32 = LANES * ROWS;
// Floats of the input vector per chunk (8 KiB): all of [z ; z_prev] up to H = 1024.
const CAP: u32 = 2048u;
const MAX_STAGES: u32 = 4u;

struct Stage {
  weight: u32, // element offset of the [n, k] matrix in `weights` (a multiple of 4)
  bias: u32, // offset of its bias in `biases`
  n: u32,
  k: u32,
  dst: u32, // 0 pooled, 1 logits, 2 scratch, 3 none (the folded λ stage)
  dstOffset: u32, // slot 0's first output; slot b's is at dstOffset + b · n
  act: u32, // 0 none, 1 tanh
  firstBlock: u32, // the stage's first workgroup x
}

struct Params {
  // Where the input vector comes from: 0 `hidden`, 1 `pooled` (z, then z_prev past `hidden`), 2 `scratch`.
  source: u32,
  inOffset: u32, // slot 0's input
  inStride: u32, // elements between consecutive slots' inputs
  hidden: u32, // H: source 1's elements [H, 2H) are z_prev
  hasPrev: u32, // source 1: z_prev exists (depth > 0), else zeros
  prevOffset: u32, // the previous depth's z of slot 0 in `pooled`
  prevSlots: u32, // counters[prevSlots + b]: the slot that slot b's example had at the previous depth
  numStages: u32,
  foldStage: u32, // 1 + the stage that λ's output layer is folded into; 0: none
  foldWeight: u32, // element offset of the output layer's [1, n] weights in `weights`
  foldBias: u32, // its bias in `biases`
  foldOffset: u32, // slot 0's partial sums in `scratch`; slot b's at foldOffset + b · the stage's row blocks
  stages: array<Stage, MAX_STAGES>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<vec4<WT>>;
@group(0) @binding(2) var<storage, read> biases: array<f32>;
@group(0) @binding(3) var<storage, read> hidden: array<f32>;
@group(0) @binding(4) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(5) var<storage, read_write> logits: array<f32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;
// exit.wgsl's work counters; only the slot map is read here.
@group(0) @binding(7) var<storage, read> counters: array<u32>;

var<workgroup> vin: array<f32, CAP>;
var<workgroup> partial: array<f32, THREADS>;
// The folded λ stage: each row's output times its output weight.
var<workgroup> folded: array<f32, ROWS>;

// tanh with the argument clamped, as matmul.wgsl (some drivers overflow to NaN for large |x|).
fn safe_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -10.0, 10.0));
}

fn weight_at(i: u32) -> f32 {
  return f32(weights[i / 4u][i % 4u]);
}

// Element i of slot `slot`'s input vector.
fn input_at(slot: u32, i: u32) -> f32 {
  let at = params.inOffset + slot * params.inStride + i;
  switch params.source {
    case 0u: {
      return hidden[at];
    }
    case 1u: {
      let H = params.hidden;
      if (i < H) {
        return pooled[at];
      }
      if (params.hasPrev == 0u) {
        return 0.0;
      }
      // z_prev of this slot's example: where the previous depth had it (exit.wgsl compaction).
      return pooled[params.prevOffset + counters[params.prevSlots + slot] * H + i - H];
    }
    default: {
      return scratch[at];
    }
  }
}

fn vin4(i: u32) -> vec4<f32> {
  return vec4<f32>(vin[i], vin[i + 1u], vin[i + 2u], vin[i + 3u]);
}

@compute @workgroup_size(256)
fn heads(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  // Batch 1 after the exit: nothing left to do (shaders/kernel.ts exitGate).
  if (gate_shut()) {
    return;
  }
  let slot = wid.z;
  var s = 0u;
  for (var i = 1u; i < params.numStages; i++) {
    if (wid.x >= params.stages[i].firstBlock) {
      s = i;
    }
  }
  let st = params.stages[s];
  let lane = tid % LANES;
  let n = (wid.x - st.firstBlock) * ROWS + tid / LANES;
  let live = n < st.n;
  let row = st.weight + n * st.k; // element offset of row n
  let vec4Path = st.k % 4u == 0u;
  var acc = 0.0;
  for (var k0 = 0u; k0 < st.k; k0 += CAP) {
    let len = min(CAP, st.k - k0);
    for (var i = tid; i < len; i += THREADS) {
      vin[i] = input_at(slot, k0 + i);
    }
    workgroupBarrier();
    if (live) {
      if (vec4Path) {
        // Lane l reads vec4 l, l + 32, ...: each row's 32 lanes load 512 contiguous bytes per step.
        let step = LANES * 4u;
        let w0 = (row + k0) / 4u;
        var k = lane * 4u;
        for (; k + 3u * step < len; k += 4u * step) {
          let w = w0 + k / 4u;
          let a = dot(vec4<f32>(weights[w]), vin4(k));
          let b = dot(vec4<f32>(weights[w + LANES]), vin4(k + step));
          let c = dot(vec4<f32>(weights[w + 2u * LANES]), vin4(k + 2u * step));
          let d = dot(vec4<f32>(weights[w + 3u * LANES]), vin4(k + 3u * step));
          acc += (a + b) + (c + d);
        }
        for (; k < len; k += step) {
          acc += dot(vec4<f32>(weights[w0 + k / 4u]), vin4(k));
        }
      } else {
        for (var k = lane; k < len; k += LANES) {
          acc += weight_at(row + k0 + k) * vin[k];
        }
      }
    }
    // `vin` is refilled by the next chunk.
    workgroupBarrier();
  }
  partial[tid] = acc;
  workgroupBarrier();
  var v = 0.0;
  if (lane == 0u && live) {
    var sum = 0.0;
    for (var l = 0u; l < LANES; l++) {
      sum += partial[tid + l];
    }
    v = sum + biases[st.bias + n];
    if (st.act == 1u) {
      v = safe_tanh(v);
    }
    let at = st.dstOffset + slot * st.n + n;
    switch st.dst {
      case 0u: {
        pooled[at] = v;
      }
      case 1u: {
        logits[at] = v;
      }
      case 2u: {
        scratch[at] = v;
      }
      default: {}
    }
  }
  // λ's output layer, folded: this workgroup's share of the logit (s is uniform: workgroup id and
  // uniforms only). Rows are added in order, so the partial sum is deterministic.
  if (params.foldStage == s + 1u) {
    if (lane == 0u) {
      // Rows past n (the last block's) add 0; their weight index is clamped only to stay in range.
      folded[tid / LANES] = select(0.0, v * weight_at(params.foldWeight + min(n, st.n - 1u)), live);
    }
    workgroupBarrier();
    if (tid == 0u) {
      let block = wid.x - st.firstBlock;
      var sum = select(0.0, biases[params.foldBias], block == 0u);
      for (var r = 0u; r < ROWS; r++) {
        sum += folded[r];
      }
      scratch[params.foldOffset + slot * ((st.n + ROWS - 1u) / ROWS) + block] = sum;
    }
  }
}
