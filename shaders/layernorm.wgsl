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

struct Params {
  rows: u32,
  width: u32,
  eps: f32,
  splits: u32, // >= 1
  partialStride: u32,
  hasBias: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bias: array<vec4<f32>>;
const MAX_CHUNKS: u32 = 4u;
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
  if (row >= params.rows) {
    return;
  }
  let tid = lid.x;
#if VEC4
  let width4 = params.width / 4u;
  let base4 = row * width4;
  let stride4 = params.partialStride / 4u;
  // Chunk j is vec4 tid + j·WG of the row; chunks past the row read its last vec4 and count nothing.
  // Every chunk's eight slices of a round are loaded together (clamped indices, no branches).
  let chunks = min(MAX_CHUNKS, (width4 + WG - 1u) / WG);
  var xs: array<vec4<f32>, MAX_CHUNKS>;
  for (var s = 0u; s < params.splits; s += 8u) {
    for (var j = 0u; j < MAX_CHUNKS; j++) {
      if (j < chunks) {
        xs[j] += slices8(base4 + min(tid + j * WG, width4 - 1u), s, stride4);
      }
    }
  }
  var sum = 0.0;
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    let i = tid + j * WG;
    if (i < width4) {
      var x = xs[j] + residual[base4 + i];
      if (params.hasBias != 0u) {
        x += bias[i];
      }
      xs[j] = x;
      sum += (x.x + x.y) + (x.z + x.w);
    }
  }
  let mean = workgroup_sum(tid, sum) / f32(params.width);
  var sq = 0.0;
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    if (tid + j * WG < width4) {
      let d = xs[j] - vec4<f32>(mean);
      sq += dot(d, d);
    }
  }
  let inv = inverseSqrt(workgroup_sum(tid, sq) / f32(params.width) + params.eps);
  for (var j = 0u; j < MAX_CHUNKS; j++) {
    let i = tid + j * WG;
    if (i < width4) {
      output[base4 + i] = (xs[j] - vec4<f32>(mean)) * inv * gamma[i] + beta[i];
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
