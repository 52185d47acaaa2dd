// Multi-head self-attention with a key padding mask, flash-attention style: the softmax is computed
// online over tiles of keys, so scores for the whole sequence are never stored.
//
// qkv is [batch*seqLen, 3H] (Q | K | V, heads contiguous inside each), mask is [batch*seqLen] u32
// (0 = padding key), output is [batch*seqLen, H]. Scores are scaled by 1/sqrt(headDim); masked keys
// get weight 0; a query whose keys are all masked gets zeros (semantics: ops.attention).
//
// Entry points (and `rows`, the batch-1 one, described above its code):
// - `main` (any length): one workgroup handles Q_TILE queries of one (batch, head); PARTS invocations
//   share a query and split its head dimensions for the output. It walks the keys in tiles of
//   KEY_TILE, four barriers each, so few, long-lived workgroups run: at batch 1 that is latency.
// - `short` (seqLen <= SHORT_MAX_T): one workgroup per (query, head, batch), seqLen x heads x batch
//   of them. Each invocation scores its own keys (all scores of the query sit in workgroup memory),
//   one max and one sum reduction give the softmax, then groups of invocations take every
//   `groups`-th key for four head dimensions each and one workgroup sum joins the groups: at batch 1
//   every loop is short (about T / 128 keys, or D / 4 vec4 loads), which is what latency wants.
// Workgroup memory stays under WebGPU's default 16 KiB.
//
// VEC4 (head size a multiple of 4, so every row section starts on a vec4): Q|K|V are read as vec4.
//
// PROJECT (with VEC4; `rows` only): the attention output projection folded in. Each workgroup
// multiplies its block's context rows by its head's columns of Wo and writes that head's share of
// context · Woᵀ as one slice of `output` ([heads][batch*seqLen][H]); the add+LayerNorm after it sums
// the heads' slices with the bias, as it sums split-K partial sums. At batch 1 that saves the
// projection's own matmul dispatch and the barrier before it. Wo is stored as WT (f16 or f32).
// WT, the weights' element type (f16 or f32), is declared ahead of this file by the launcher
// (shaders/kernel.ts weightTypeWgsl).

struct Params {
  batch: u32,
  seqLen: u32,
  heads: u32,
  headDim: u32,
  scale: f32,
  // PROJECT: elements between consecutive heads' slices of `output` (batch * seqLen * H).
  sliceStride: u32,
  // PROJECT: workgroups per block of queries, each projecting its share of the output columns (and
  // each computing the block's attention itself: the block's critical path is latency, and the
  // projection's column loop is its longest part, so two at H 768 beat one walking twice).
  projectionParts: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;
#if PROJECT
// Wo transposed ([H, H], row k holds every output column's weight for context element k), so that
// consecutive invocations read consecutive columns: with nn.Linear's layout each invocation of a warp
// read its own 128-byte row piece, and the projection took 23 µs a layer on the H200 (ALBERT-base).
@group(0) @binding(5) var<storage, read> weightT: array<vec4<WT>>;
#endif

const MAX_D4: u32 = 32u; // headDim <= 128
const Q_TILE: u32 = 16u;
const KEY_TILE: u32 = 8u;
const PARTS: u32 = 4u;
const THREADS: u32 = 64u; // Q_TILE * PARTS
const D4_PER_PART: u32 = 8u; // MAX_D4 / PARTS
// Stands for -infinity (WGSL has no infinity literal); far below any real score.
const NEG: f32 = -1e30;

var<workgroup> qTile: array<vec4<f32>, Q_TILE * MAX_D4>;
var<workgroup> kvTile: array<vec4<f32>, KEY_TILE * MAX_D4>;
var<workgroup> scores: array<f32, Q_TILE * KEY_TILE>;

// Head dimensions d..d+3 (d a multiple of 4) of the head section that starts at element `start`;
// zeros past the head size.
fn qkv4(start: u32, d: u32) -> vec4<f32> {
#if VEC4
  return qkv[(start + d) / 4u];
#else
  var v = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (d + c < params.headDim) {
      v[c] = qkv[start + d + c];
    }
  }
  return v;
#endif
}

// Four head dimensions d..d+3 of token row `row`, section offset `base` (0 Q, H K, 2H V, plus head).
fn load4(row: u32, base: u32, d: u32) -> vec4<f32> {
  return qkv4(row * 3u * params.heads * params.headDim + base, d);
}

// Stages rows first..first+KEY_TILE-1 of section `base` into kvTile (zeros past the sequence).
fn stage_keys(tid: u32, rowBase: u32, first: u32, base: u32, d4n: u32) {
  for (var e = tid; e < KEY_TILE * d4n; e += THREADS) {
    let r = e / d4n;
    let c = e % d4n;
    var v = vec4<f32>(0.0);
    if (first + r < params.seqLen) {
      v = load4(rowBase + first + r, base, c * 4u);
    }
    kvTile[r * MAX_D4 + c] = v;
  }
}

@compute @workgroup_size(THREADS, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // Batch 1 after the exit: nothing left to do (shaders/kernel.ts exitGate).
  if (gate_shut()) {
    return;
  }
  let T = params.seqLen;
  let D = params.headDim;
  let H = params.heads * D;
  let d4n = (D + 3u) / 4u;
  let q0 = wid.x * Q_TILE;
  let headOffset = wid.y * D;
  let rowBase = wid.z * T;
  let tid = lid.x;
  let qi = tid / PARTS;
  let part = tid % PARTS;

  for (var e = tid; e < Q_TILE * d4n; e += THREADS) {
    let r = e / d4n;
    let c = e % d4n;
    var v = vec4<f32>(0.0);
    if (q0 + r < T) {
      v = load4(rowBase + q0 + r, headOffset, c * 4u);
    }
    qTile[r * MAX_D4 + c] = v;
  }

  var runningMax = NEG;
  var denom = 0.0;
  // acc[i] holds head dimensions 4*(part + i*PARTS) .. +3 of query qi.
  var acc: array<vec4<f32>, D4_PER_PART>;
  for (var k0 = 0u; k0 < T; k0 += KEY_TILE) {
    workgroupBarrier(); // the previous tile's V (and the Q staging) is complete
    stage_keys(tid, rowBase, k0, H + headOffset, d4n);
    workgroupBarrier();
    for (var s = 0u; s < KEY_TILE / PARTS; s++) {
      let j = part + s * PARTS;
      let key = k0 + j;
      var score = NEG;
      if (key < T && mask[rowBase + key] != 0u) {
        var sum = 0.0;
        for (var c = 0u; c < d4n; c++) {
          sum += dot(qTile[qi * MAX_D4 + c], kvTile[j * MAX_D4 + c]);
        }
        score = sum * params.scale;
      }
      scores[qi * KEY_TILE + j] = score;
    }
    workgroupBarrier();

    // Online softmax update for query qi (each of its PARTS invocations does the same arithmetic).
    var tileMax = NEG;
    for (var j = 0u; j < KEY_TILE; j++) {
      tileMax = max(tileMax, scores[qi * KEY_TILE + j]);
    }
    let newMax = max(runningMax, tileMax);
    let alpha = exp(runningMax - newMax); // 0 when the first real key arrives, 1 while none has
    var p: array<f32, KEY_TILE>;
    var psum = 0.0;
    for (var j = 0u; j < KEY_TILE; j++) {
      let s = scores[qi * KEY_TILE + j];
      p[j] = select(0.0, exp(s - newMax), s > 0.5 * NEG);
      psum += p[j];
    }
    denom = denom * alpha + psum;
    runningMax = newMax;

    // Every invocation has finished reading K (barrier above), so V can take its place.
    stage_keys(tid, rowBase, k0, 2u * H + headOffset, d4n);
    workgroupBarrier();
    for (var i = 0u; i < D4_PER_PART; i++) {
      let d4 = part + i * PARTS;
      if (d4 < d4n) {
        var a = acc[i] * alpha;
        for (var j = 0u; j < KEY_TILE; j++) {
          a += p[j] * kvTile[j * MAX_D4 + d4];
        }
        acc[i] = a;
      }
    }
  }

  let q = q0 + qi;
  if (q < T) {
    let inv = select(0.0, 1.0 / denom, denom > 0.0);
    let outBase = (rowBase + q) * H + headOffset;
    for (var i = 0u; i < D4_PER_PART; i++) {
      let d = (part + i * PARTS) * 4u;
      let v = acc[i] * inv;
      for (var c = 0u; c < 4u; c++) {
        if (d + c < D) {
          output[outBase + d + c] = v[c];
        }
      }
    }
  }
}

const SHORT_THREADS: u32 = 128u;
const SHORT_MAX_T: u32 = 512u;
var<workgroup> shortQ: array<vec4<f32>, MAX_D4>;
var<workgroup> shortP: array<f32, SHORT_MAX_T>;
var<workgroup> shortRed: array<f32, SHORT_THREADS>;
var<workgroup> shortAcc: array<vec4<f32>, SHORT_THREADS>;

// Reduces one value per invocation with max (isMax) or +; every invocation gets the result.
fn short_reduce(tid: u32, v: f32, isMax: bool) -> f32 {
  shortRed[tid] = v;
  workgroupBarrier();
  for (var s = SHORT_THREADS / 2u; s > 0u; s >>= 1u) {
    if (tid < s) {
      let other = shortRed[tid + s];
      shortRed[tid] = select(shortRed[tid] + other, max(shortRed[tid], other), isMax);
    }
    workgroupBarrier();
  }
  let result = shortRed[0];
  workgroupBarrier(); // shortRed is reused by the next call
  return result;
}

@compute @workgroup_size(SHORT_THREADS, 1, 1)
fn short(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  if (gate_shut()) {
    return;
  }
  let T = params.seqLen;
  let D = params.headDim;
  let H = params.heads * D;
  let d4n = (D + 3u) / 4u;
  let rowStride = 3u * H;
  let headOffset = wid.y * D;
  let rowBase = wid.z * T;
  let queryRow = rowBase + wid.x;
  let tid = lid.x;

  for (var c = tid; c < d4n; c += SHORT_THREADS) {
    shortQ[c] = qkv4(queryRow * rowStride + headOffset, 4u * c);
  }
  workgroupBarrier();

  // Scores of keys tid, tid + 128, ...; masked keys stand at NEG.
  var localMax = NEG;
  for (var j = tid; j < T; j += SHORT_THREADS) {
    var score = NEG;
    if (mask[rowBase + j] != 0u) {
      let keyStart = (rowBase + j) * rowStride + H + headOffset;
      var sum = vec4<f32>(0.0);
      for (var c = 0u; c < d4n; c++) {
        sum += shortQ[c] * qkv4(keyStart, 4u * c);
      }
      score = (sum.x + sum.y + sum.z + sum.w) * params.scale;
    }
    shortP[j] = score;
    localMax = max(localMax, score);
  }
  let scoreMax = short_reduce(tid, localMax, true);
  var localSum = 0.0;
  for (var j = tid; j < T; j += SHORT_THREADS) {
    let score = shortP[j];
    let p = select(0.0, exp(score - scoreMax), score > 0.5 * NEG);
    shortP[j] = p;
    localSum += p;
  }
  // The reduction's barriers also make every shortP write visible to the loop below.
  let denom = short_reduce(tid, localSum, false);
  let inv = select(0.0, 1.0 / denom, denom > 0.0);

  // Group g sums keys g, g + groups, ... for head dimensions 4c..4c+3.
  let groups = SHORT_THREADS / d4n;
  let g = tid / d4n;
  let c = tid % d4n;
  var acc = vec4<f32>(0.0);
  if (g < groups) {
    // Four keys a step and no branch on p (a masked key has p = 0 and a finite V), so that their
    // loads are in flight together: this loop waits on memory latency.
    let vBase = 2u * H + headOffset;
    var j = g;
    for (; j + 3u * groups < T; j += 4u * groups) {
      let v0 = qkv4((rowBase + j) * rowStride + vBase, 4u * c);
      let v1 = qkv4((rowBase + j + groups) * rowStride + vBase, 4u * c);
      let v2 = qkv4((rowBase + j + 2u * groups) * rowStride + vBase, 4u * c);
      let v3 = qkv4((rowBase + j + 3u * groups) * rowStride + vBase, 4u * c);
      acc += (shortP[j] * v0 + shortP[j + groups] * v1) + (shortP[j + 2u * groups] * v2 + shortP[j + 3u * groups] * v3);
    }
    for (; j < T; j += groups) {
      acc += shortP[j] * qkv4((rowBase + j) * rowStride + vBase, 4u * c);
    }
  }
  shortAcc[tid] = acc;
  workgroupBarrier();
  if (tid < d4n) {
    var total = vec4<f32>(0.0);
    for (var k = 0u; k < groups; k++) {
      total += shortAcc[k * d4n + tid];
    }
    total *= inv;
    let outBase = queryRow * H + headOffset + 4u * tid;
    for (var e = 0u; e < 4u; e++) {
      if (4u * tid + e < D) {
        output[outBase + e] = total[e];
      }
    }
  }
}

// `rows` (seqLen <= ROWS_MAX_T): one workgroup per ROWS_Q consecutive queries of one (head, batch).
// Each invocation scores its keys (tid, tid + 128, ...) against all ROWS_Q queries at once, so that a
// key row is read once per block of queries: `short` reads a head's K and V again for every query,
// T times their size in cache traffic, which is what its time at batch 1 goes to. Invocation
// (q, r) then reduces slice r of query q's scores (ROWS_SLICES slices), and each output vec4 sums
// over the keys (split into groups when the block has fewer output vec4 than invocations). Every
// loop over keys or head dimensions loads 8 or 16 vec4 a step: at batch 1 this kernel waits on
// memory round trips, and a uniform-bounded loop is not pipelined by the compiler (H200: 36.9 µs a
// layer for ALBERT-base with 4 keys a step and one key vec4 at a time, 33.7 with these loads, 29.4
// with the projection's second workgroup, each on another machine; bench --tuning-ab). Tried and
// dropped: P·V by (value quad, query half, key group), each value vec4 loaded once per half block
// (a quarter of the loads) and the groups' sums joined in workgroup memory: ALBERT-base passes took
// 2.18 against 2.16 ms on one H200 (two rounds each; attention 36.3 against 35.6 µs) and the same on
// an H100 (bench/results/archive/2026-11-28-h200-pv-query-halves-ab/).
const ROWS_Q: u32 = 8u;
const ROWS_MAX_T: u32 = 256u;
// Invocations of a `rows` workgroup: 128 or 256 (shaders/attention.ts rowsThreads). With 256, one
// workgroup projects all of H 768's column quads (no second workgroup recomputing the block's
// attention), two invocations share each key's scores and two groups each value's keys.
override ROWS_THREADS: u32 = 128u;
const ROWS_MAX_THREADS: u32 = 256u;
override ROWS_SLICES: u32 = ROWS_THREADS / ROWS_Q;
// Row stride of rowsP: 16 floats of padding, so that queries q and q + 1 of a warp's reduction read
// different banks. With 256 invocations the workgroup memory is 13.5 KiB.
const ROWS_P_STRIDE: u32 = 272u;
var<workgroup> rowsQ: array<vec4<f32>, ROWS_Q * MAX_D4>;
// Scores, then probabilities; after P·V the key groups' partial sums (4 floats an invocation).
var<workgroup> rowsP: array<f32, ROWS_Q * ROWS_P_STRIDE>;
var<workgroup> rowsRed: array<f32, ROWS_MAX_THREADS>;

// Vec4 c of a key's head section (zero from d4n on), for rows' score loop.
fn key_part(keyStart: u32, c: u32, d4n: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), qkv4(keyStart, 4u * min(c, d4n - 1u)), c < d4n);
}

// Σ_i rowsQ[at + i] * k[i] over the eight key vec4 of a step (constant indices into k).
fn score8(at: u32, k: ptr<function, array<vec4<f32>, 8>>) -> vec4<f32> {
  return ((rowsQ[at] * (*k)[0] + rowsQ[at + 1u] * (*k)[1]) + (rowsQ[at + 2u] * (*k)[2] + rowsQ[at + 3u] * (*k)[3])) +
    ((rowsQ[at + 4u] * (*k)[4] + rowsQ[at + 5u] * (*k)[5]) + (rowsQ[at + 6u] * (*k)[6] + rowsQ[at + 7u] * (*k)[7]));
}

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(ROWS_THREADS, 1, 1)
fn rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  if (gate_shut()) {
    return;
  }
  let T = params.seqLen;
  let D = params.headDim;
  let H = params.heads * D;
  let d4n = (D + 3u) / 4u;
  let rowStride = 3u * H;
  let headOffset = wid.y * D;
  let rowBase = wid.z * T;
#if PROJECT
  let parts = params.projectionParts;
#else
  let parts = 1u;
#endif
  let q0 = (wid.x / parts) * ROWS_Q;
  let nq = min(ROWS_Q, T - q0);
  let tid = lid.x;

  for (var e = tid; e < ROWS_Q * d4n; e += ROWS_THREADS) {
    let q = e / d4n;
    let c = e % d4n;
    var v = vec4<f32>(0.0);
    if (q < nq) {
      v = qkv4((rowBase + q0 + q) * rowStride + headOffset, 4u * c);
    }
    rowsQ[q * MAX_D4 + c] = v;
  }
  workgroupBarrier();

  // Scores of keys tid, tid + ROWS_THREADS, ... against the ROWS_Q queries; masked keys stand at NEG.
  // Where every key has two invocations (2T <= ROWS_THREADS, more than 8 vec4 a head), each takes
  // half of the head's vec4 (one round trip of 8 loads instead of two): the second half's sums go
  // to rowsP first and the first half adds them.
  let halves = select(1u, 2u, 2u * T <= ROWS_THREADS && d4n > 8u);
  let half = select(0u, tid / T, halves == 2u);
  let cBegin = half * 8u;
  let cEnd = select(d4n, min(d4n, 8u), halves == 2u && half == 0u);
  var lo = vec4<f32>(0.0);
  var hi = vec4<f32>(0.0);
  let keyOwned = tid < halves * T;
  let j = select(tid, tid % T, halves == 2u);
  var masked = true;
  if (keyOwned || halves == 1u) {
    for (var jj = j; jj < T; jj += ROWS_THREADS) {
      masked = mask[rowBase + jj] == 0u;
      var s0 = vec4<f32>(0.0);
      var s1 = vec4<f32>(0.0);
      var s2 = vec4<f32>(0.0);
      var s3 = vec4<f32>(0.0);
      var s4 = vec4<f32>(0.0);
      var s5 = vec4<f32>(0.0);
      var s6 = vec4<f32>(0.0);
      var s7 = vec4<f32>(0.0);
      if (!masked) {
        let keyStart = (rowBase + jj) * rowStride + H + headOffset;
        // Eight vec4 of the key loaded together, then used: one memory round trip per eight instead of
        // one per vec4 (the loop bound is a uniform, so the compiler does not pipeline it itself).
        for (var c = cBegin; c < cEnd; c += 8u) {
          var k: array<vec4<f32>, 8>;
          k[0] = key_part(keyStart, c, cEnd);
          k[1] = key_part(keyStart, c + 1u, cEnd);
          k[2] = key_part(keyStart, c + 2u, cEnd);
          k[3] = key_part(keyStart, c + 3u, cEnd);
          k[4] = key_part(keyStart, c + 4u, cEnd);
          k[5] = key_part(keyStart, c + 5u, cEnd);
          k[6] = key_part(keyStart, c + 6u, cEnd);
          k[7] = key_part(keyStart, c + 7u, cEnd);
          s0 += score8(c, &k);
          s1 += score8(MAX_D4 + c, &k);
          s2 += score8(2u * MAX_D4 + c, &k);
          s3 += score8(3u * MAX_D4 + c, &k);
          s4 += score8(4u * MAX_D4 + c, &k);
          s5 += score8(5u * MAX_D4 + c, &k);
          s6 += score8(6u * MAX_D4 + c, &k);
          s7 += score8(7u * MAX_D4 + c, &k);
        }
      }
      // Queries 0-3 and 4-7.
      lo = vec4<f32>(hsum(s0), hsum(s1), hsum(s2), hsum(s3));
      hi = vec4<f32>(hsum(s4), hsum(s5), hsum(s6), hsum(s7));
      if (halves == 1u) {
        rows_put_scores(jj, lo * params.scale, hi * params.scale, masked);
      }
    }
  }
  if (halves == 2u) {
    // One key per invocation: the second half's sums join the first's through rowsP.
    if (keyOwned && half == 1u) {
      rows_put_scores(j, lo, hi, false);
    }
    workgroupBarrier();
    if (keyOwned && half == 0u) {
      let other = rows_scores(j);
      rows_put_scores(j, (lo + other[0]) * params.scale, (hi + other[1]) * params.scale, masked);
    }
  }
  workgroupBarrier();

  // Softmax of query qs over its keys, by slices: the max, then exp and the sum.
  let qs = tid / ROWS_SLICES;
  let r = tid % ROWS_SLICES;
  let pRow = qs * ROWS_P_STRIDE;
  var localMax = NEG;
  for (var j = r; j < T; j += ROWS_SLICES) {
    localMax = max(localMax, rowsP[pRow + j]);
  }
  rowsRed[tid] = localMax;
  workgroupBarrier();
  var scoreMax = NEG;
  for (var i = 0u; i < ROWS_SLICES; i++) {
    scoreMax = max(scoreMax, rowsRed[qs * ROWS_SLICES + i]);
  }
  var localSum = 0.0;
  for (var j = r; j < T; j += ROWS_SLICES) {
    let score = rowsP[pRow + j];
    let p = select(0.0, exp(score - scoreMax), score > 0.5 * NEG);
    rowsP[pRow + j] = p;
    localSum += p;
  }
  workgroupBarrier(); // every maximum is read before the sums take its place
  rowsRed[tid] = localSum;
  workgroupBarrier();

  // Output vec4 o = (query o / d4n, dimensions 4·(o % d4n) ..), summed over keys g, g + groups, ...
  let outs = ROWS_Q * d4n;
  let groups = max(1u, ROWS_THREADS / outs);
  let g = tid / outs;
  // With groups > 1 every invocation has at most one output vec4 (outs * groups <= ROWS_THREADS).
  var groupAcc = vec4<f32>(0.0);
  for (var o = tid % outs; o < outs; o += ROWS_THREADS) {
    let q = o / d4n;
    let c = o % d4n;
    var acc = vec4<f32>(0.0);
    if (g < groups && q < nq) {
      // As in `short`: four keys a step, no branch on p.
      let vBase = 2u * H + headOffset;
      let pRow = q * ROWS_P_STRIDE;
      var j = g;
      // Sixteen keys a step, their value loads issued together (one round trip per sixteen keys).
      for (; j + 15u * groups < T; j += 16u * groups) {
        // Constant indices only (a dynamically indexed array could go to local memory).
        let at = (rowBase + j) * rowStride + vBase;
        let step = groups * rowStride;
        let d = 4u * c;
        let v0 = qkv4(at, d);
        let v1 = qkv4(at + step, d);
        let v2 = qkv4(at + 2u * step, d);
        let v3 = qkv4(at + 3u * step, d);
        let v4 = qkv4(at + 4u * step, d);
        let v5 = qkv4(at + 5u * step, d);
        let v6 = qkv4(at + 6u * step, d);
        let v7 = qkv4(at + 7u * step, d);
        let v8 = qkv4(at + 8u * step, d);
        let v9 = qkv4(at + 9u * step, d);
        let v10 = qkv4(at + 10u * step, d);
        let v11 = qkv4(at + 11u * step, d);
        let v12 = qkv4(at + 12u * step, d);
        let v13 = qkv4(at + 13u * step, d);
        let v14 = qkv4(at + 14u * step, d);
        let v15 = qkv4(at + 15u * step, d);
        let p = pRow + j;
        acc += ((rowsP[p] * v0 + rowsP[p + groups] * v1) +
          (rowsP[p + 2u * groups] * v2 + rowsP[p + 3u * groups] * v3)) +
          ((rowsP[p + 4u * groups] * v4 + rowsP[p + 5u * groups] * v5) +
          (rowsP[p + 6u * groups] * v6 + rowsP[p + 7u * groups] * v7));
        acc += ((rowsP[p + 8u * groups] * v8 + rowsP[p + 9u * groups] * v9) +
          (rowsP[p + 10u * groups] * v10 + rowsP[p + 11u * groups] * v11)) +
          ((rowsP[p + 12u * groups] * v12 + rowsP[p + 13u * groups] * v13) +
          (rowsP[p + 14u * groups] * v14 + rowsP[p + 15u * groups] * v15));
      }
      for (; j + 3u * groups < T; j += 4u * groups) {
        let v0 = qkv4((rowBase + j) * rowStride + vBase, 4u * c);
        let v1 = qkv4((rowBase + j + groups) * rowStride + vBase, 4u * c);
        let v2 = qkv4((rowBase + j + 2u * groups) * rowStride + vBase, 4u * c);
        let v3 = qkv4((rowBase + j + 3u * groups) * rowStride + vBase, 4u * c);
        acc += (rowsP[pRow + j] * v0 + rowsP[pRow + j + groups] * v1) +
          (rowsP[pRow + j + 2u * groups] * v2 + rowsP[pRow + j + 3u * groups] * v3);
      }
      for (; j < T; j += groups) {
        acc += rowsP[pRow + j] * qkv4((rowBase + j) * rowStride + vBase, 4u * c);
      }
    }
    if (groups == 1u) {
      // Between 64 and 128 outputs the invocations past them (g = 1) summed nothing: no store.
      if (g == 0u) {
        rows_store(q, c, nq, q0, rowBase, H, headOffset, D, acc);
      }
    } else {
      groupAcc = acc;
    }
  }
  if (groups > 1u) {
    // The groups' sums meet in rowsP, whose probabilities every invocation has read by the barrier.
    workgroupBarrier();
    rowsP[4u * tid] = groupAcc.x;
    rowsP[4u * tid + 1u] = groupAcc.y;
    rowsP[4u * tid + 2u] = groupAcc.z;
    rowsP[4u * tid + 3u] = groupAcc.w;
    workgroupBarrier();
    if (tid < outs) {
      var total = vec4<f32>(0.0);
      for (var k = 0u; k < groups; k++) {
        let at = 4u * (k * outs + tid);
        total += vec4<f32>(rowsP[at], rowsP[at + 1u], rowsP[at + 2u], rowsP[at + 3u]);
      }
      rows_store(tid / d4n, tid % d4n, nq, q0, rowBase, H, headOffset, D, total);
    }
  }
#if PROJECT
  // The block's context rows are in rowsQ now (rows_store); queries past the block stay zero.
  workgroupBarrier();
  rows_project(tid, wid.y, q0, nq, rowBase, H, headOffset / 4u, d4n, wid.x % parts, parts);
#endif
}

// Key j's scores against queries 0-3 (lo) and 4-7 (hi), NEG where the key is masked.
fn rows_put_scores(j: u32, lo: vec4<f32>, hi: vec4<f32>, masked: bool) {
  rowsP[j] = select(lo.x, NEG, masked);
  rowsP[ROWS_P_STRIDE + j] = select(lo.y, NEG, masked);
  rowsP[2u * ROWS_P_STRIDE + j] = select(lo.z, NEG, masked);
  rowsP[3u * ROWS_P_STRIDE + j] = select(lo.w, NEG, masked);
  rowsP[4u * ROWS_P_STRIDE + j] = select(hi.x, NEG, masked);
  rowsP[5u * ROWS_P_STRIDE + j] = select(hi.y, NEG, masked);
  rowsP[6u * ROWS_P_STRIDE + j] = select(hi.z, NEG, masked);
  rowsP[7u * ROWS_P_STRIDE + j] = select(hi.w, NEG, masked);
}

// What rows_put_scores wrote for key j: [queries 0-3, queries 4-7].
fn rows_scores(j: u32) -> array<vec4<f32>, 2> {
  return array<vec4<f32>, 2>(
    vec4<f32>(rowsP[j], rowsP[ROWS_P_STRIDE + j], rowsP[2u * ROWS_P_STRIDE + j], rowsP[3u * ROWS_P_STRIDE + j]),
    vec4<f32>(rowsP[4u * ROWS_P_STRIDE + j], rowsP[5u * ROWS_P_STRIDE + j], rowsP[6u * ROWS_P_STRIDE + j], rowsP[7u * ROWS_P_STRIDE + j]),
  );
}

#if PROJECT
// Head h's share of the output projection for the block's queries: output[h·sliceStride + row·H + n]
// = Σ_d context[row][d] · Wo[n][h·D + d]. Invocation i takes columns 4i .. 4i+3 (then 4(i + 128) ..),
// for all 8 queries at once, so each weight vec4 is loaded once per block.
fn rows_project(tid: u32, head: u32, q0: u32, nq: u32, rowBase: u32, H: u32, head4: u32, d4n: u32, part: u32, parts: u32) {
  let H4 = H / 4u;
  // This workgroup's share of the column quads.
  let share = (H4 + parts - 1u) / parts;
  let end = min(H4, (part + 1u) * share);
  for (var n4 = part * share + tid; n4 < end; n4 += ROWS_THREADS) {
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0);
    var s5 = vec4<f32>(0.0);
    var s6 = vec4<f32>(0.0);
    var s7 = vec4<f32>(0.0);
    // Sixteen weight vec4 (context elements 4c .. 4c+15) loaded together: one vec4 of context a
    // step, the loads' latency made up most of the projection's time (40.2 against 35.8 µs a layer,
    // ALBERT-base on the H200; 32 at once: 37.2). Rows past the head weigh zero (their context is
    // zero too). Constant indices only (a dynamic one would put w in local memory).
    for (var c = 0u; c < d4n; c += 4u) {
      let rows = min(16u, 4u * (d4n - c));
      let at = (4u * (head4 + c)) * H4 + n4;
      var w = array<vec4<f32>, 16>(
        weight_row(at, 0u, rows, H4),
        weight_row(at, 1u, rows, H4),
        weight_row(at, 2u, rows, H4),
        weight_row(at, 3u, rows, H4),
        weight_row(at, 4u, rows, H4),
        weight_row(at, 5u, rows, H4),
        weight_row(at, 6u, rows, H4),
        weight_row(at, 7u, rows, H4),
        weight_row(at, 8u, rows, H4),
        weight_row(at, 9u, rows, H4),
        weight_row(at, 10u, rows, H4),
        weight_row(at, 11u, rows, H4),
        weight_row(at, 12u, rows, H4),
        weight_row(at, 13u, rows, H4),
        weight_row(at, 14u, rows, H4),
        weight_row(at, 15u, rows, H4),
      );
      s0 += project16(0u, c, &w);
      s1 += project16(1u, c, &w);
      s2 += project16(2u, c, &w);
      s3 += project16(3u, c, &w);
      s4 += project16(4u, c, &w);
      s5 += project16(5u, c, &w);
      s6 += project16(6u, c, &w);
      s7 += project16(7u, c, &w);
    }
    let at = head * params.sliceStride + (rowBase + q0) * H + 4u * n4;
    project_store(at, s0);
    if (nq > 1u) { project_store(at + H, s1); }
    if (nq > 2u) { project_store(at + 2u * H, s2); }
    if (nq > 3u) { project_store(at + 3u * H, s3); }
    if (nq > 4u) { project_store(at + 4u * H, s4); }
    if (nq > 5u) { project_store(at + 5u * H, s5); }
    if (nq > 6u) { project_store(at + 6u * H, s6); }
    if (nq > 7u) { project_store(at + 7u * H, s7); }
  }
}

// Row r of the sixteen from `at` (rows apart by H4 vec4), zero from row `rows` on.
fn weight_row(at: u32, r: u32, rows: u32, H4: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(weightT[at + min(r, rows - 1u) * H4]), r < rows);
}

// Query q's context elements 4c .. 4c+15 times their sixteen rows of Woᵀ (w, constant indices).
fn project16(q: u32, c: u32, w: ptr<function, array<vec4<f32>, 16>>) -> vec4<f32> {
  let x = q * MAX_D4 + c;
  return (project4(rowsQ[x], (*w)[0], (*w)[1], (*w)[2], (*w)[3]) +
    project4(rowsQ[x + 1u], (*w)[4], (*w)[5], (*w)[6], (*w)[7])) +
    (project4(rowsQ[x + 2u], (*w)[8], (*w)[9], (*w)[10], (*w)[11]) +
    project4(rowsQ[x + 3u], (*w)[12], (*w)[13], (*w)[14], (*w)[15]));
}

// x · [w0; w1; w2; w3]: four context elements times their four rows of Woᵀ.
fn project4(x: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
  return (x.x * w0 + x.y * w1) + (x.z * w2 + x.w * w3);
}

fn project_store(at: u32, v: vec4<f32>) {
  output[at] = v.x;
  output[at + 1u] = v.y;
  output[at + 2u] = v.z;
  output[at + 3u] = v.w;
}
#endif

// Writes dimensions 4c .. 4c+3 of query q of the block, divided by the query's softmax sum.
fn rows_store(q: u32, c: u32, nq: u32, q0: u32, rowBase: u32, H: u32, headOffset: u32, D: u32, acc: vec4<f32>) {
  if (q >= nq) {
    return;
  }
  var denom = 0.0;
  for (var i = 0u; i < ROWS_SLICES; i++) {
    denom += rowsRed[q * ROWS_SLICES + i];
  }
  let total = acc * select(0.0, 1.0 / denom, denom > 0.0);
#if PROJECT
  rowsQ[q * MAX_D4 + c] = total;
#else
  let outBase = (rowBase + q0 + q) * H + headOffset + 4u * c;
  for (var e = 0u; e < 4u; e++) {
    if (4u * c + e < D) {
      output[outBase + e] = total[e];
    }
  }
#endif
}
