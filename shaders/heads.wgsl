// Every head that runs after a layer, fused into one dispatch (one workgroup per batch slot): at
// batch 1 a forward pass is latency-bound (each dispatch costs >= ~12 µs on an H200), and the pooler,
// classifier, per-layer head, λ input gather and λ MLP used to be 2 to 7 dispatches per depth.
//
// For slot b (workgroup z) the stages run in order, each a GEMV out = act(W · x + bias):
//   stage 0  z = tanh(Wp · h_cls + bp)            (h_cls: the slot's [CLS] row of `hidden`)
//   then     logits, the per-layer head, the λ MLP (input z, or [z ; z_prev] for PALBERT)
// The stage input vector lives in workgroup memory (`vin`): h_cls at [H, 2H) for the pooler, which
// writes z to [0, H) (and to `pooled`); z_prev (the previous depth's z of the slot's example,
// wherever the exit compaction had it) then fills [H, 2H). A λ hidden layer writes its output to a
// per-slot region of `scratch` and the next stage reloads it into `vin` (reading and writing `vin`
// at once would need a second 8 KiB vector). Semantics: tests/reference/ops.ts `linear` + tanh.
//
// GEMV: `lanes` invocations (a power of two, chosen per stage on the CPU) split K for one output row;
// 256 / lanes rows run side by side, ROWS per invocation (2 · ROWS vec4 weight loads in flight), then
// tree sums over the lanes in `partial`.
// Weights are read as vec4 where K % 4 == 0 (every matrix starts at a multiple of 4 elements), else
// one element at a time. f16 weights (F16, shaders/preprocess.ts) are widened; sums are f32.
#if F16
enable f16;
alias WT = f16;
#else
alias WT = f32;
#endif

const THREADS: u32 = 256u;
// Outputs per invocation per chunk of rows (independent loads in flight), summed PART at a time.
const ROWS: u32 = 8u;
const PART: u32 = 4u;
// Floats of the stage input vector: 2H for H <= 1024 (8 KiB); shaders/heads.ts checks the shapes.
const CAP: u32 = 2048u;
const MAX_STAGES: u32 = 16u;

struct Stage {
  weight: u32, // element offset of the [n, k] matrix in `weights` (a multiple of 4)
  bias: u32, // offset of its bias in `biases`
  n: u32,
  k: u32,
  // 0: z (into vin[0, n) and pooled); 1: logits; 2: scratch; 3: scratch, then the next stage's input
  dst: u32,
  dstOffset: u32, // slot 0's first output; slot b's is at dstOffset + b * n
  act: u32, // 0 none, 1 tanh
  lanes: u32, // invocations per output row
}

struct Params {
  hidden: u32, // H
  rowStride: u32, // elements between consecutive slots' [CLS] rows in `hidden` (seqLen · H)
  numStages: u32,
  cat: u32, // 1: the λ input is [z ; z_prev] (z_prev = 0 at depth 0)
  hasPrev: u32, // depth > 0
  prevOffset: u32, // the previous depth's z of slot 0 in `pooled`
  prevSlots: u32, // counters[prevSlots + b]: the slot that slot b's example had at the previous depth
  pad: u32,
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
var<workgroup> partial: array<f32, PART * THREADS>;

// tanh with the argument clamped, as matmul.wgsl (some drivers overflow to NaN for large |x|).
fn safe_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -10.0, 10.0));
}

fn weight_at(i: u32) -> f32 {
  return f32(weights[i / 4u][i % 4u]);
}

// Writes output row n of the stage (bias and activation added) for slot `slot`.
fn store(st: Stage, slot: u32, n: u32, sum: f32) {
  var v = sum + biases[st.bias + n];
  if (st.act == 1u) {
    v = safe_tanh(v);
  }
  let at = st.dstOffset + slot * st.n + n;
  switch st.dst {
    case 0u: {
      vin[n] = v;
      pooled[at] = v;
    }
    case 1u: {
      logits[at] = v;
    }
    default: {
      scratch[at] = v;
    }
  }
}

fn run_stage(st: Stage, inOffset: u32, slot: u32, tid: u32) {
  let lanes = st.lanes;
  let groups = THREADS / lanes;
  let lane = tid % lanes;
  let group = tid / lanes;
  let chunk = groups * ROWS;
  let vec4Path = st.k % 4u == 0u && inOffset % 4u == 0u;
  for (var n0 = 0u; n0 < st.n; n0 += chunk) {
    // Rows n0 + group + j · groups, j < ROWS. Zeroed explicitly: SwiftShader kept the previous
    // chunk's sums with a bare `var acc: ...;`.
    var acc = array<f32, ROWS>();
    if (vec4Path) {
      // Two vec4 per row per step (2 · ROWS independent weight loads in flight per invocation: one
      // SM has to stream every head matrix, so the loads in flight set the speed).
      let step = lanes * 4u;
      var k = lane * 4u;
      for (; k + step < st.k; k += 2u * step) {
        let i = inOffset + k;
        let x0 = vec4<f32>(vin[i], vin[i + 1u], vin[i + 2u], vin[i + 3u]);
        let x1 = vec4<f32>(vin[i + step], vin[i + step + 1u], vin[i + step + 2u], vin[i + step + 3u]);
        for (var j = 0u; j < ROWS; j++) {
          let n = n0 + group + j * groups;
          if (n < st.n) {
            let w = (st.weight + n * st.k + k) / 4u;
            acc[j] += dot(vec4<f32>(weights[w]), x0) + dot(vec4<f32>(weights[w + step / 4u]), x1);
          }
        }
      }
      if (k < st.k) {
        let i = inOffset + k;
        let x0 = vec4<f32>(vin[i], vin[i + 1u], vin[i + 2u], vin[i + 3u]);
        for (var j = 0u; j < ROWS; j++) {
          let n = n0 + group + j * groups;
          if (n < st.n) {
            acc[j] += dot(vec4<f32>(weights[(st.weight + n * st.k + k) / 4u]), x0);
          }
        }
      }
    } else {
      for (var k = lane; k < st.k; k += lanes) {
        let x = vin[inOffset + k];
        for (var j = 0u; j < ROWS; j++) {
          let n = n0 + group + j * groups;
          if (n < st.n) {
            acc[j] += weight_at(st.weight + n * st.k + k) * x;
          }
        }
      }
    }
    // Tree sums over the lanes, PART rows at a time (workgroup memory for all ROWS would not fit).
    for (var h = 0u; h < ROWS; h += PART) {
      for (var j = 0u; j < PART; j++) {
        partial[j * THREADS + tid] = acc[h + j];
      }
      workgroupBarrier();
      for (var half = lanes / 2u; half > 0u; half /= 2u) {
        if (lane < half) {
          for (var j = 0u; j < PART; j++) {
            partial[j * THREADS + tid] += partial[j * THREADS + tid + half];
          }
        }
        workgroupBarrier();
      }
      // Invocation t < groups · PART writes row n0 + g + (h + j) · groups (t = j · groups + g).
      if (tid < groups * PART) {
        let j = tid / groups;
        let g = tid % groups;
        let n = n0 + g + (h + j) * groups;
        if (n < st.n) {
          store(st, slot, n, partial[j * THREADS + g * lanes]);
        }
      }
      // `partial` is reused next, `vin` read by the next stage.
      workgroupBarrier();
    }
  }
}

@compute @workgroup_size(256)
fn heads(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let slot = wid.z;
  let H = params.hidden;
  for (var i = tid; i < H; i += THREADS) {
    vin[H + i] = hidden[slot * params.rowStride + i];
  }
  workgroupBarrier();
  for (var s = 0u; s < params.numStages; s++) {
    let st = params.stages[s];
    run_stage(st, select(0u, H, s == 0u), slot, tid);
    if (s == 0u && params.cat == 1u) {
      // z_prev of this slot's example: where the previous depth had it (exit.wgsl compaction).
      let prev = counters[params.prevSlots + slot];
      for (var i = tid; i < H; i += THREADS) {
        var v = 0.0;
        if (params.hasPrev == 1u) {
          v = pooled[params.prevOffset + prev * H + i];
        }
        vin[H + i] = v;
      }
      workgroupBarrier();
    }
    if (st.dst == 3u) {
      // The λ hidden layer's output, written above by other invocations, becomes the next input.
      storageBarrier();
      for (var i = tid; i < st.n; i += THREADS) {
        vin[i] = scratch[st.dstOffset + slot * st.n + i];
      }
      workgroupBarrier();
    }
  }
}
