// The GPU side of early exit (semantics: src/exit/criteria.ts, the binding reference).
//
// Entry points, one dispatch each per layer depth:
//   decide      the per-layer work counter first: adds the token rows this depth processed (it is
//               dispatched from the same indirect arguments as the depth's kernels, so nothing is
//               added when they were skipped). Then per example: probabilities of the shared and
//               per-layer heads, λ = sigmoid(logit) (the logit summed from heads.wgsl's partial
//               sums), the gate, the running exit state (survival, CDF, patience counter, previous
//               prediction) and the criterion's test; then, when every example of the batch has
//               exited, zero workgroups in the indirect-dispatch arguments of all later depths;
//               otherwise move the running examples to the front slots and size later depths'
//               row-wise dispatches to them.
//   compact_out/in  that move (hidden states and mask rows, through temporaries).
//   decide_reduce   batch 1 behind the exit gate (KernelTuning.decideInReduce): workgroup 0 is the
//               previous depth's decide, the others the split-K reduction of this depth's Q|K|V
//               (matmul.wgsl reduce_partials, without activation): the two are independent, so one
//               dispatch and one barrier serve both. The reduction's own gate is a word of
//               `counters` that each depth's decide writes (the exit state itself is written by
//               workgroup 0 of the same dispatch, so it cannot be the uniform gate here).
//
// Arithmetic of the halting recursion, the thresholds and the PRNG follows criteria.ts's f32 mode
// operation for operation, so the exit layers equal evaluateExit(..., { precision: 'f32' }).

struct Layer {
  depth: u32, // 0-based; the layer is n = depth + 1
  batch: u32, // padded batch of the plan
  numLabels: u32,
  numLayers: u32,
  task: u32, // 0 softmax, 1 sigmoid per label (multi-label), 2 regression (the value itself)
  hasLambda: u32,
  hasHeads: u32,
  numGates: u32, // gates exist for depths < numGates
  slotWords: u32, // u32 words of indirect arguments per depth
  rows: u32, // token rows (batch × seqLen) a layer processes
  hidden: u32,
  headOffset: u32, // where the per-layer heads' logits start in `scratch`
  seqLen: u32,
  // The λ logit of slot s: the sum of scratch[lambdaAt + s · lambdaParts ..][0, lambdaParts), the
  // partial sums that heads.wgsl's folded output layer wrote (1 part: the logit itself).
  lambdaAt: u32,
  lambdaParts: u32,
  // 1: batch 1, every depth dispatched directly; decide returns at once after the exit, like the
  // layer kernels behind their exit gate (shaders/kernel.ts).
  gatedByExit: u32,
  // Batch 1, the classifier folded into the layer's last add+LayerNorm (layernorm.wgsl POOL): its
  // `classifierParts` partial logits [part][C] at `classifierAt` in `scratch` are summed here, in a
  // fixed order, into this depth's logits. 0: the heads kernel wrote the logits.
  classifierAt: u32,
  classifierParts: u32,
  // decide_reduce: where the gates' parameters (5 floats a gate) are copied in `scratch`.
  gateAt: u32,
}

struct Criterion {
  kind: u32, // 0 none, 1 palbert, 2 pondernet-sample, 3 pabee, 4 max-prob, 5 entropy, 6 gate, 7 fixed
  useHeads: u32, // 1: the criterion reads the per-layer heads, 0: the shared head
  threshold: f32, // q, τ, or PABEE's regression τ
  param: u32, // patience, fixed layer, or seed
  exampleBase: u32, // data-set index of row 0 (PonderNet's draws)
  realBatch: u32, // rows at or past this are padding: exited from the start
  compact: u32, // 1: move running examples to the front slots when others exited before them
}

struct State {
  survival: f32,
  cdf: f32,
  count: u32,
  prevClass: u32,
  prevValue: f32,
  exitLayer: u32, // 0 while running
  fired: u32,
  slot: u32, // the batch slot (rows of hidden, mask, pooled, logits) the example occupies now
}

// Per (depth, example) record: lambda, p(n), CDF, gate, statistic, live, exits-here, pad, then the
// shared head's probabilities [C], the per-layer head's [C] (regression: the value, C = 1), and the
// two heads' logits [C] [C], so that results are by example whatever slot the example occupied.
const REC_HEAD: u32 = 8u;

@group(0) @binding(0) var<uniform> layer: Layer;
@group(0) @binding(1) var<uniform> crit: Criterion;
// Read, except that a classifier fold (layer.classifierParts) writes this depth's logits first.
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;
// The λ logit's partial sums per slot at layer.lambdaAt (or λ logits [L][batch] at 0, for a λ
// without hidden layers), per-layer heads' logits [L][batch][C] at layer.headOffset.
@group(0) @binding(3) var<storage, read> scratch: array<f32>;
// Per gate: a0..a3, b (5 floats).
@group(0) @binding(4) var<storage, read> gateParams: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<State>;
// f32 values stored as bits, so that "absent" can be a NaN pattern the shader never computes with.
@group(0) @binding(6) var<storage, read_write> records: array<u32>;
@group(0) @binding(7) var<storage, read_write> indirect: array<u32>;
// [0, L): token rows processed per depth; [L, 2L): examples still running at that depth;
// [2L, 3L): the token rows each depth's kernels cover (0: all; set by the previous depth's decide);
// [3L, 3L + batch): for each slot, the slot its example occupied at the previous depth;
// [3L + batch, 4L + batch): batch 1 behind the exit gate, 1 once the example has exited by that depth
// (what decide_reduce's reduction reads as its gate; written by every depth's decide).
@group(0) @binding(8) var<storage, read_write> counters: array<atomic<u32>>;
// Per dispatch slot of a depth: [kind, unit], how its workgroup counts follow the rows still needed
// (0 fixed, 1 tiled matmul y = ceil(rows / unit), 2 attention z = examples, 3 layer norm rows,
// 5 compaction). See plan.ts.
@group(0) @binding(11) var<storage, read> slotKinds: array<u32>;
// Compaction: hidden states and mask rows of the running examples, moved through temporaries.
@group(0) @binding(12) var<storage, read_write> hidden: array<f32>;
@group(0) @binding(13) var<storage, read_write> mask: array<u32>;
@group(0) @binding(14) var<storage, read_write> tempHidden: array<f32>;
@group(0) @binding(15) var<storage, read_write> tempMask: array<u32>;

var<workgroup> running: atomic<u32>;
var<workgroup> live: atomic<u32>;
// 1 + the highest batch slot still running after this depth.
var<workgroup> lastSlot: atomic<u32>;
// What invocation 0 worked out for the later depths' counts: [rows, slots, moveGroups].
var<workgroup> nextCounts: array<u32, 3>;
var<workgroup> gateShut: u32;
// The classifier fold's sums per class and invocation (exit.ts FOLD_MAX_CLASSES).
const FOLD_MAX_CLASSES: u32 = 16u;
var<workgroup> foldSums: array<f32, 64u * FOLD_MAX_CLASSES>;

const NAN_BITS: u32 = 0x7fc00000u;

fn rec(i: u32) -> f32 {
  return bitcast<f32>(records[i]);
}

fn set_rec(i: u32, v: f32) {
  records[i] = bitcast<u32>(v);
}

// src/exit/prng.ts, word for word: murmur3's finalizer and the counter-based draw.
fn mix32(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x85ebca6bu;
  h ^= h >> 13u;
  h *= 0xc2b2ae35u;
  h ^= h >> 16u;
  return h;
}

fn exit_uniform(seed: u32, example: u32, n: u32) -> f32 {
  var h = mix32(seed ^ 0x6a09e667u);
  h = mix32(h ^ example);
  h = mix32(h + n * 0x9e3779b9u);
  return f32(h >> 8u) / 16777216.0;
}

fn sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

// The λ logit of `slot`: its partial sums in a fixed order (deterministic). Eight independent loads
// a step, so that one invocation (batch 1) does not wait for 128 loads one after another.
fn lambda_logit(slot: u32) -> f32 {
  let at = layer.lambdaAt + slot * layer.lambdaParts;
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  var i = 0u;
  for (; i + 8u <= layer.lambdaParts; i += 8u) {
    a += vec4<f32>(scratch[at + i], scratch[at + i + 1u], scratch[at + i + 2u], scratch[at + i + 3u]);
    b += vec4<f32>(scratch[at + i + 4u], scratch[at + i + 5u], scratch[at + i + 6u], scratch[at + i + 7u]);
  }
  var sum = ((a.x + a.y) + (a.z + a.w)) + ((b.x + b.y) + (b.z + b.w));
  for (; i < layer.lambdaParts; i++) {
    sum += scratch[at + i];
  }
  return sum;
}

// Writes the probabilities of logits [src, src + C) (of `scratch` or `logits`) to records[dst ..].
fn write_probs(from_scratch: bool, src: u32, dst: u32) {
  let C = layer.numLabels;
  var mx = -3.4e38;
  for (var c = 0u; c < C; c++) {
    mx = max(mx, select(logits[src + c], scratch[src + c], from_scratch));
  }
  var sum = 0.0;
  for (var c = 0u; c < C; c++) {
    let x = select(logits[src + c], scratch[src + c], from_scratch);
    var v = x;
    if (layer.task == 0u) {
      v = exp(x - mx);
      sum += v;
    } else if (layer.task == 1u) {
      v = sigmoid(x);
    }
    set_rec(dst + c, v);
  }
  if (layer.task == 0u) {
    for (var c = 0u; c < C; c++) {
      set_rec(dst + c, rec(dst + c) / sum);
    }
  }
}

// Lowest index of the maximum (ties: the first), as math.ts argmax.
fn argmax_at(at: u32) -> u32 {
  var best = 0u;
  for (var c = 1u; c < layer.numLabels; c++) {
    if (rec(at + c) > rec(at + best)) {
      best = c;
    }
  }
  return best;
}

// Entropy in nats with 0 ln 0 = 0, summed in class order (math.ts entropy).
fn entropy_at(at: u32) -> f32 {
  var sum = 0.0;
  for (var c = 0u; c < layer.numLabels; c++) {
    let p = rec(at + c);
    if (p > 0.0) {
      sum = sum + p * log(p);
    }
  }
  return select(-sum, 0.0, sum == 0.0);
}

// JEI-DNN gate features of a softmax row: max p, H(p), p_(1) − p_(2), H(p² / Σ p²).
fn gate_value(at: u32, g: u32) -> f32 {
  let C = layer.numLabels;
  var top1 = -1.0;
  var top2 = -1.0;
  var sq = 0.0;
  for (var c = 0u; c < C; c++) {
    let p = rec(at + c);
    if (p > top1) {
      top2 = top1;
      top1 = p;
    } else if (p > top2) {
      top2 = p;
    }
    sq += p * p;
  }
  var hsq = 0.0;
  for (var c = 0u; c < C; c++) {
    let p = rec(at + c);
    let q = p * p / sq;
    if (q > 0.0) {
      hsq += q * log(q);
    }
  }
  let f = vec4<f32>(top1, entropy_at(at), top1 - top2, -hsq);
#if GATES_IN_SCRATCH
  // decide_reduce reads the gates' parameters from a copy in `scratch` (at layer.gateAt), which
  // keeps its storage buffers within 8.
  let p = layer.gateAt + g * 5u;
  let a = vec4<f32>(scratch[p], scratch[p + 1u], scratch[p + 2u], scratch[p + 3u]);
  return sigmoid(dot(a, f) + scratch[p + 4u]);
#else
  let a = vec4<f32>(gateParams[g * 5u], gateParams[g * 5u + 1u], gateParams[g * 5u + 2u], gateParams[g * 5u + 3u]);
  return sigmoid(dot(a, f) + gateParams[g * 5u + 4u]);
#endif
}

fn step(b: u32) {
  var st = state[b];
  let depth = layer.depth;
  let n = depth + 1u;
  let C = layer.numLabels;
  let row = depth * layer.batch + b; // records are by example
  let srow = depth * layer.batch + st.slot; // the kernels' outputs are by slot
  let at = row * (REC_HEAD + 4u * C);
  let sharedAt = at + REC_HEAD;
  let headAt = sharedAt + C;
  write_probs(false, srow * C, sharedAt);
  for (var c = 0u; c < C; c++) {
    set_rec(headAt + C + c, logits[srow * C + c]);
  }
  if (layer.hasHeads == 1u) {
    write_probs(true, layer.headOffset + srow * C, headAt);
    for (var c = 0u; c < C; c++) {
      set_rec(headAt + 2u * C + c, scratch[layer.headOffset + srow * C + c]);
    }
  }
  let sel = select(sharedAt, headAt, crit.useHeads == 1u);

  var lambda = 0.0;
  var p = 0.0;
  if (layer.hasLambda == 1u) {
    // haltingStep: p_n = λ c_{n−1}, c_n = c_{n−1} (1 − λ), CDF_n = min(1, CDF_{n−1} + p_n).
    lambda = sigmoid(lambda_logit(st.slot));
    p = lambda * st.survival;
    st.survival = st.survival * (1.0 - lambda);
    st.cdf = min(1.0, st.cdf + p);
  }
  var gate = 0.0;
  if (depth < layer.numGates) {
    gate = gate_value(select(sharedAt, headAt, layer.hasHeads == 1u), depth);
  }

  var stat = 0.0;
  var hasStat = true;
  var fires = false;
  switch crit.kind {
    case 1u: {
      stat = st.cdf;
      fires = stat > crit.threshold;
    }
    case 2u: {
      stat = exit_uniform(crit.param, crit.exampleBase + b, n);
      fires = stat < lambda;
    }
    case 3u: {
      if (layer.task == 2u) {
        let value = rec(sel);
        if (n > 1u) {
          st.count = select(0u, st.count + 1u, abs(value - st.prevValue) < crit.threshold);
        }
        st.prevValue = value;
      } else {
        let cls = argmax_at(sel);
        if (n > 1u) {
          st.count = select(0u, st.count + 1u, cls == st.prevClass);
        }
        st.prevClass = cls;
      }
      stat = f32(st.count);
      fires = crit.param > 0u && st.count >= crit.param;
    }
    case 4u: {
      stat = rec(sel + argmax_at(sel));
      fires = stat > crit.threshold;
    }
    case 5u: {
      stat = entropy_at(sel);
      fires = stat < crit.threshold;
    }
    case 6u: {
      if (depth < layer.numGates) {
        stat = gate;
        fires = gate > crit.threshold;
      } else {
        hasStat = false;
      }
    }
    case 7u: {
      fires = n == crit.param;
      hasStat = false;
    }
    default: {
      hasStat = false;
    }
  }
  let exits = fires || n == layer.numLayers;
  if (exits) {
    st.exitLayer = n;
    st.fired = select(0u, 1u, fires);
  } else {
    atomicAdd(&running, 1u);
    atomicMax(&lastSlot, b + 1u);
  }
  atomicAdd(&live, 1u);
  let hasLambda = layer.hasLambda == 1u;
  records[at] = select(NAN_BITS, bitcast<u32>(lambda), hasLambda);
  records[at + 1u] = select(NAN_BITS, bitcast<u32>(p), hasLambda);
  records[at + 2u] = select(NAN_BITS, bitcast<u32>(st.cdf), hasLambda);
  records[at + 3u] = select(NAN_BITS, bitcast<u32>(gate), depth < layer.numGates);
  records[at + 4u] = select(NAN_BITS, bitcast<u32>(stat), hasStat);
  set_rec(at + 5u, 1.0);
  set_rec(at + 6u, select(0.0, 1.0, exits));
  state[b] = st;
}

// Batch 1 behind the exit gate: the word of `counters` that says whether the example has exited by
// `depth` (decide_reduce's gate).
fn exited_word(depth: u32) -> u32 {
  return 3u * layer.numLayers + layer.batch + depth;
}

@compute @workgroup_size(64)
fn decide(@builtin(local_invocation_id) lid: vec3<u32>) {
  if (!decide_depth(lid)) {
    return;
  }
  decide_counts(lid);
}

// This depth's decision, its records and work counter, up to the later depths' counts in
// nextCounts. False (nothing done) when the example had exited before (batch 1 behind the gate).
fn decide_depth(lid: vec3<u32>) -> bool {
  if (lid.x == 0u) {
    gateShut = select(0u, 1u, layer.gatedByExit == 1u && state[0].exitLayer != 0u);
    if (gateShut == 1u) {
      atomicStore(&counters[exited_word(layer.depth)], 1u);
    }
  }
  if (workgroupUniformLoad(&gateShut) == 1u) {
    return false;
  }
  if (lid.x == 0u) {
    // The work counter: the rows this depth's kernels covered (trimmed by the previous decide, or all).
    let trimmed = atomicLoad(&counters[2u * layer.numLayers + layer.depth]);
    atomicAdd(&counters[layer.depth], select(layer.rows, trimmed, trimmed > 0u));
    atomicStore(&running, 0u);
    atomicStore(&live, 0u);
    atomicStore(&lastSlot, 0u);
  }
  // The folded classifier's logits (batch 1, slot 0): invocation t sums parts t, t + 64, ... of
  // every class, then a fixed tree over the 64 invocations (deterministic, and no invocation waits
  // for a long chain of loads).
  let parts = layer.classifierParts;
  if (parts > 0u) {
    let C = min(layer.numLabels, FOLD_MAX_CLASSES);
    for (var c = 0u; c < C; c++) {
      var sum = 0.0;
      for (var p = lid.x; p < parts; p += 64u) {
        sum += scratch[layer.classifierAt + p * layer.numLabels + c];
      }
      foldSums[c * 64u + lid.x] = sum;
    }
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
      if (lid.x < s) {
        for (var c = 0u; c < C; c++) {
          foldSums[c * 64u + lid.x] += foldSums[c * 64u + lid.x + s];
        }
      }
      workgroupBarrier();
    }
    if (lid.x < C) {
      logits[layer.depth * layer.numLabels + lid.x] = foldSums[lid.x * 64u];
    }
    storageBarrier();
  }
  workgroupBarrier();
  for (var b = lid.x; b < min(layer.batch, crit.realBatch); b += 64u) {
    // Exited examples are frozen: neither their state nor their records change any more.
    if (state[b].exitLayer == 0u) {
      step(b);
    }
  }
  workgroupBarrier();
  storageBarrier();
  if (lid.x == 0u) {
    let L = layer.numLayers;
    atomicAdd(&counters[L + layer.depth], atomicLoad(&live));
    // Slots for the next depth: with compaction the running examples move to slots 0..k−1 (in
    // order, so a slot only ever moves down); the map says where each slot's example was.
    var slots = atomicLoad(&lastSlot);
    var moved = false;
    let real = min(layer.batch, crit.realBatch);
    if (crit.compact == 1u) {
      var k = 0u;
      for (var b = 0u; b < real; b++) {
        if (state[b].exitLayer == 0u) {
          let old = state[b].slot;
          atomicStore(&counters[3u * L + k], old);
          moved = moved || old != k;
          state[b].slot = k;
          k++;
        }
      }
      slots = k;
      for (var t = k; t < layer.batch; t++) {
        atomicStore(&counters[3u * L + t], t);
      }
    } else {
      for (var t = 0u; t < layer.batch; t++) {
        atomicStore(&counters[3u * L + t], t);
      }
    }
    // Rows past the last slot still running (exited examples, padding) are needed no more: the
    // row-wise kernels of later depths cover only the slots before it.
    let rows = slots * layer.seqLen;
    if (atomicLoad(&running) > 0u) {
      for (var d = layer.depth + 1u; d < L; d++) {
        atomicStore(&counters[2u * L + d], rows);
      }
    }
    nextCounts[0] = rows;
    nextCounts[1] = slots;
    nextCounts[2] = select(0u, min((rows * layer.hidden + 255u) / 256u, 65535u), moved);
    if (layer.gatedByExit == 1u) {
      atomicStore(&counters[exited_word(layer.depth)], select(0u, 1u, state[0].exitLayer != 0u));
    }
  }
  workgroupBarrier();
  return true;
}

// The later depths' indirect arguments (batches behind indirect dispatches).
fn decide_counts(lid: vec3<u32>) {
  // Behind the exit gate (batch 1, direct dispatches) no dispatch reads indirect arguments.
  if (layer.gatedByExit == 1u) {
    return;
  }
  // The later depths' indirect arguments, three words per slot, spread over the workgroup (hundreds
  // of slots at depth 1: one invocation alone made this the slowest kernel of a batch-1 layer).
  let first = (layer.depth + 1u) * layer.slotWords;
  let end = layer.numLayers * layer.slotWords;
  if (atomicLoad(&running) == 0u) {
    // Every example has exited: all later depths' dispatches get zero workgroups.
    for (var w = first + lid.x; w < end; w += 64u) {
      indirect[w] = 0u;
    }
    return;
  }
  let rows = nextCounts[0];
  let slots = nextCounts[1];
  let moveGroups = nextCounts[2];
  for (var w = first + 3u * lid.x; w < end; w += 3u * 64u) {
    let j = (w % layer.slotWords) / 3u;
    let unit = slotKinds[2u * j + 1u];
    switch slotKinds[2u * j] {
      case 1u: {
        indirect[w + 1u] = (rows + unit - 1u) / unit;
      }
      case 2u: {
        indirect[w + 2u] = slots;
      }
      case 3u: {
        indirect[w] = min(rows, 65535u);
        indirect[w + 1u] = (rows + 65534u) / 65535u;
      }
      case 5u: {
        // The moves run at the start of the next depth only; later depths' stay 0.
        indirect[w] = select(0u, moveGroups, w / layer.slotWords == layer.depth + 1u);
        indirect[w + 1u] = 1u;
        indirect[w + 2u] = 1u;
      }
      default: {}
    }
  }
}

// decide_reduce's reduction: output[m·N + n] = Σ_s partials[s·partialStride + m·N + n] + bias[n]
// (matmul.wgsl reduce_partials without activation, for Q|K|V), two rows and 64 columns a workgroup.
struct Reduce {
  M: u32,
  N: u32,
  splits: u32,
  partialStride: u32,
  colGroups: u32, // ceil(N / 64)
}
@group(0) @binding(16) var<uniform> reduction: Reduce;
@group(0) @binding(17) var<storage, read> reducePartials: array<f32>;
@group(0) @binding(18) var<storage, read> reduceBias: array<f32>;
@group(0) @binding(19) var<storage, read_write> reduceOutput: array<f32>;

// reduce8(at, s): slices s .. s+7 of reducePartials at element `at`, generated by shaders/kernel.ts
// partialSums8Wgsl (as matmul.wgsl's partials8).

// Workgroup 0: decide for `layer.depth`. Workgroups 1..: the reduction of the next depth's Q|K|V,
// which ran behind the gate as it stood before this decide, so it is skipped where the example had
// exited by the depth before.
@compute @workgroup_size(64)
fn decide_reduce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  if (wid.x == 0u) {
    _ = decide_depth(lid);
    return;
  }
  if (layer.depth > 0u && atomicLoad(&counters[exited_word(layer.depth - 1u)]) != 0u) {
    return;
  }
  let group = wid.x - 1u;
  let n = (group % reduction.colGroups) * 64u + lid.x;
  let m0 = (group / reduction.colGroups) * 2u;
  if (n >= reduction.N || m0 >= reduction.M) {
    return;
  }
  let N = reduction.N;
  let atA = m0 * N + n;
  // Row m0 + 1 past the matrix reads row M - 1 and is not written.
  let atB = min(m0 + 1u, reduction.M - 1u) * N + n;
  var sumA = 0.0;
  var sumB = 0.0;
  for (var s = 0u; s < reduction.splits; s += 8u) {
    sumA += reduce8(atA, s);
    sumB += reduce8(atB, s);
  }
  reduceOutput[atA] = sumA + reduceBias[n];
  if (m0 + 1u < reduction.M) {
    reduceOutput[atA + N] = sumB + reduceBias[n];
  }
}

// Compaction, first half: the running examples' hidden rows and mask rows, in their new slot order,
// into temporaries (a slot only moves down, but in parallel a source may be another's target).
@compute @workgroup_size(256)
fn compact_out(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let L = layer.numLayers;
  let rows = atomicLoad(&counters[2u * L + layer.depth]);
  let per = layer.seqLen * layer.hidden;
  for (var i = gid.x; i < rows * layer.hidden; i += nwg.x * 256u) {
    let t = i / per;
    let old = atomicLoad(&counters[3u * L + t]);
    tempHidden[i] = hidden[old * per + i % per];
    if (i % layer.hidden == 0u) {
      let r = i / layer.hidden;
      tempMask[r] = mask[old * layer.seqLen + r % layer.seqLen];
    }
  }
}

// Compaction, second half: the temporaries back into slots 0..k−1.
@compute @workgroup_size(256)
fn compact_in(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let rows = atomicLoad(&counters[2u * layer.numLayers + layer.depth]);
  for (var i = gid.x; i < rows * layer.hidden; i += nwg.x * 256u) {
    hidden[i] = tempHidden[i];
    if (i % layer.hidden == 0u) {
      mask[i / layer.hidden] = tempMask[i / layer.hidden];
    }
  }
}
