// output = LayerNorm(x) * gamma + beta with x = input + bias + residual, one workgroup per row
// (biased variance, as PyTorch; mean first, then the variance of the deviations, which stays
// accurate for large means). Semantics: ops.addLayerNorm. `output` must not alias `input` or
// `residual`.
//
// `input` may hold the raw split-K partial sums of the matmul before it (matmul.wgsl): x then adds
// `splits` slices, `partialStride` apart, and the matmul's bias, which saves a reduction dispatch.
//
// VEC4 (width and partialStride multiples of 4, width <= 4·MAX_CHUNKS·WG): an invocation keeps its
// at most MAX_CHUNKS vec4 of x in registers from the sum to the output, and reads the partial sums
// eight slices of every chunk at a time, so that their loads are in flight together: at batch 1
// this kernel waits on memory latency, not bandwidth. Otherwise x is kept in `output` (scalar, any width).
//
// POOL (on VEC4; batch 1, the layer's last add+LayerNorm; layernorm.ts `preparePooled`): the
// pooler of the exit heads rides along, which saves the heads' pooler dispatch and its barrier.
// Workgroups past the rows each normalise the [CLS] row again themselves (the same arithmetic as
// that row's own workgroup; no workgroup waits for another) and compute
// POOL_COLS outputs of z = tanh(Wp · h_cls + bp) into `pooled`. With `pool.classes` > 0 (a model
// whose only head is the classifier) each such workgroup also writes its share of the logits,
// Wc[:, its columns] · z[its columns], as partial sums that exit.wgsl's decide adds in a fixed
// order (workgroup 0 adds the bias): the heads' classifier dispatch goes too. The norm vectors come as one
// buffer [bias | gamma | beta] to stay within 8 storage buffers. WT (the head weights' element type)
// is declared ahead of this file by the launcher (shaders/kernel.ts weightTypeWgsl).

struct Params {
  rows: u32,
  width: u32,
  eps: f32,
  splits: u32, // >= 1
  partialStride: u32,
  hasBias: u32,
  poolBlocks: u32, // POOL: workgroups past the rows that compute the pooler; else 0
}

@group(0) @binding(0) var<uniform> params: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;
const MAX_CHUNKS: u32 = 4u;
#if POOL
// [bias | gamma | beta], `width` floats each.
@group(0) @binding(3) var<storage, read> norm: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> headWeights: array<vec4<WT>>;
@group(0) @binding(6) var<storage, read> headBiases: array<f32>;
@group(0) @binding(8) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(9) var<storage, read_write> scratch: array<f32>;

struct Pool {
  poolerWeight: u32, // element offset of Wp [width, width] in headWeights (a multiple of 4)
  poolerBias: u32, // offset of bp in headBiases
  pooledOffset: u32, // where z goes in `pooled`
  classes: u32, // 0: no classifier fold
  classifierWeight: u32, // element offset of Wc [classes, width] (a multiple of 4)
  classifierBias: u32,
  partsAt: u32, // workgroup p's partial logits at partsAt + p · classes in `scratch`
}
@group(0) @binding(10) var<uniform> pool: Pool;

// Columns of z per workgroup, invocations per column (WG = 128), and the weight vec4 each invocation
// loads before the norm (all of its column share up to H = 768), so that their latency hides behind it.
override POOL_COLS: u32 = 8u; // a power of two, at most WG (layernorm.ts poolColumns)
override POOL_LANES: u32 = 128u / POOL_COLS;
const POOL_PREFETCH: u32 = 12u;
var<workgroup> cls: array<vec4<f32>, 512>;
var<workgroup> colSums: array<f32, 128>;
var<workgroup> zs: array<f32, POOL_COLS>;

fn bias4(i: u32) -> vec4<f32> {
  return norm[i];
}
fn gamma4(i: u32) -> vec4<f32> {
  return norm[params.width / 4u + i];
}
fn beta4(i: u32) -> vec4<f32> {
  return norm[params.width / 2u + i];
}
#else
@group(0) @binding(3) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bias: array<vec4<f32>>;

fn bias4(i: u32) -> vec4<f32> {
  return bias[i];
}
fn gamma4(i: u32) -> vec4<f32> {
  return gamma[i];
}
fn beta4(i: u32) -> vec4<f32> {
  return beta[i];
}
#endif
#else
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> residual: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
#endif

override WG: u32 = 128u; // a power of two
var<workgroup> red: array<f32, WG>;

fn workgroup_sum(tid: u32, v: f32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) {
      red[tid] += red[tid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red is reused by the next call
  return total;
}

#if VEC4
// Slices s .. s+7 of the partial sums at vec4 `at` (zero past `splits`), loaded together.
fn slices8(at: u32, s: u32, stride4: u32) -> vec4<f32> {
  let last = params.splits - 1u;
  let v0 = select(vec4<f32>(0.0), input[at + min(s, last) * stride4], s <= last);
  let v1 = select(vec4<f32>(0.0), input[at + min(s + 1u, last) * stride4], s + 1u <= last);
  let v2 = select(vec4<f32>(0.0), input[at + min(s + 2u, last) * stride4], s + 2u <= last);
  let v3 = select(vec4<f32>(0.0), input[at + min(s + 3u, last) * stride4], s + 3u <= last);
  let v4 = select(vec4<f32>(0.0), input[at + min(s + 4u, last) * stride4], s + 4u <= last);
  let v5 = select(vec4<f32>(0.0), input[at + min(s + 5u, last) * stride4], s + 5u <= last);
  let v6 = select(vec4<f32>(0.0), input[at + min(s + 6u, last) * stride4], s + 6u <= last);
  let v7 = select(vec4<f32>(0.0), input[at + min(s + 7u, last) * stride4], s + 7u <= last);
  return ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7));
}
#endif

#if VEC4
// Row `row`'s x (its slices summed, + residual + bias), normalised, scaled and shifted, into xs:
// chunk j is vec4 tid + j·WG of the row. Every chunk's eight slices of a round are loaded together
// (clamped indices, no branches); chunks past the row read its last vec4 and count nothing.
fn normalize_row(row: u32, tid: u32, xs: ptr<function, array<vec4<f32>, MAX_CHUNKS>>) {
  let width4 = params.width / 4u;
  let base4 = row * width4;
  let stride4 = params.partialStride / 4u;
  let chunks = min(MAX_CHUNKS, (width4 + WG - 1u) / WG);
  for (var s = 0u; s < params.splits; s += 8u) {
    for (var j = 0u; j < MAX_CHUNKS; j++) {
      if (j < chunks) {
        (*xs)[j] += slices8(base4 + min(tid + j * WG, width4 - 1u), s, stride4);
      }
    }
  }
  var sum = 0.0;
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    let i = tid + j * WG;
    if (i < width4) {
      var x = (*xs)[j] + residual[base4 + i];
      if (params.hasBias != 0u) {
        x += bias4(i);
      }
      (*xs)[j] = x;
      sum += (x.x + x.y) + (x.z + x.w);
    }
  }
  let mean = workgroup_sum(tid, sum) / f32(params.width);
  var sq = 0.0;
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    if (tid + j * WG < width4) {
      let d = (*xs)[j] - vec4<f32>(mean);
      sq += dot(d, d);
    }
  }
  let inv = inverseSqrt(workgroup_sum(tid, sq) / f32(params.width) + params.eps);
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    let i = tid + j * WG;
    if (i < width4) {
      (*xs)[j] = ((*xs)[j] - vec4<f32>(mean)) * inv * gamma4(i) + beta4(i);
    }
  }
}
#endif

#if POOL
// tanh with the argument clamped, as heads.wgsl (some drivers overflow to NaN for large |x|).
fn safe_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -10.0, 10.0));
}

// Pooler block `block`: z[n] = tanh(Wp[n] · h_cls + bp[n]) for its POOL_COLS columns n, then (with a
// classifier fold) its partial logits. POOL_LANES invocations split each column's dot product.
fn pool_block(block: u32, tid: u32, xs: ptr<function, array<vec4<f32>, MAX_CHUNKS>>) {
  let width4 = params.width / 4u;
  let n = block * POOL_COLS + tid / POOL_LANES;
  let lane = tid % POOL_LANES;
  let live = n < params.width;
  // Lane l's share of row n of Wp is vec4 l, l + 16, ...: a column's lanes load 16 contiguous vec4
  // a step. The first POOL_PREFETCH are loaded before the norm (constant indices keep them in
  // registers; rows and steps past the end load a clamped index and count nothing).
  let w0 = pool.poolerWeight / 4u + min(n, params.width - 1u) * width4;
  var pre: array<vec4<WT>, POOL_PREFETCH>;
  for (var j = 0u; j < POOL_PREFETCH; j++) {
    pre[j] = headWeights[w0 + min(lane + j * POOL_LANES, width4 - 1u)];
  }
  normalize_row(0u, tid, xs); // batch 1: the [CLS] row is row 0
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    let i = tid + j * WG;
    if (i < width4) {
      cls[i] = (*xs)[j];
    }
  }
  workgroupBarrier();
  var acc = 0.0;
  for (var j = 0u; j < POOL_PREFETCH; j++) {
    let k = lane + j * POOL_LANES;
    if (k < width4) {
      acc += dot(vec4<f32>(pre[j]), cls[k]);
    }
  }
  for (var k = lane + POOL_PREFETCH * POOL_LANES; k < width4; k += POOL_LANES) {
    acc += dot(vec4<f32>(headWeights[w0 + k]), cls[k]);
  }
  colSums[tid] = acc;
  workgroupBarrier();
  if (lane == 0u) {
    var z = 0.0;
    if (live) {
      var sum = 0.0;
      for (var l = 0u; l < POOL_LANES; l++) {
        sum += colSums[tid + l];
      }
      z = safe_tanh(sum + headBiases[pool.poolerBias + n]);
      pooled[pool.pooledOffset + n] = z;
    }
    zs[tid / POOL_LANES] = z;
  }
  workgroupBarrier();
  // Columns past the width have z = 0 and add nothing; their weight index is clamped to stay in range.
  for (var c = tid; c < pool.classes; c += WG) {
    var sum = select(0.0, headBiases[pool.classifierBias + c], block == 0u);
    let w = pool.classifierWeight + c * params.width;
    for (var r = 0u; r < POOL_COLS; r++) {
      let col = min(block * POOL_COLS + r, params.width - 1u);
      sum += f32(headWeights[(w + col) / 4u][(w + col) % 4u]) * zs[r];
    }
    scratch[pool.partsAt + block * pool.classes + c] = sum;
  }
}
#endif

@compute @workgroup_size(WG, 1, 1)
fn main(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  // Batch 1 after the exit: nothing left to do (shaders/kernel.ts exitGate).
  if (gate_shut()) {
    return;
  }
  // Rows beyond 65535 workgroups wrap into the y dimension.
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows + params.poolBlocks) {
    return;
  }
  let tid = lid.x;
#if VEC4
  var xs: array<vec4<f32>, MAX_CHUNKS>;
#if POOL
  if (row >= params.rows) {
    pool_block(row - params.rows, tid, &xs);
    return;
  }
#endif
  normalize_row(row, tid, &xs);
  let width4 = params.width / 4u;
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    let i = tid + j * WG;
    if (i < width4) {
      output[row * width4 + i] = xs[j];
    }
  }
#else
  let width = params.width;
  let base = row * width;

  // x is formed once and kept in `output`; each invocation reads back only what it wrote.
  var sum = 0.0;
  for (var i = tid; i < width; i += WG) {
    var x = residual[base + i];
    for (var s = 0u; s < params.splits; s++) {
      x += input[s * params.partialStride + base + i];
    }
    if (params.hasBias != 0u) {
      x += bias[i];
    }
    output[base + i] = x;
    sum += x;
  }
  let mean = workgroup_sum(tid, sum) / f32(width);
  var sq = 0.0;
  for (var i = tid; i < width; i += WG) {
    let d = output[base + i] - mean;
    sq += d * d;
  }
  let inv = inverseSqrt(workgroup_sum(tid, sq) / f32(width) + params.eps);
  for (var i = tid; i < width; i += WG) {
    let d = output[base + i] - mean;
    output[base + i] = d * inv * gamma[i] + beta[i];
  }
#endif
}
