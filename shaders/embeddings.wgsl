// Embedding gather + LayerNorm: row r = b*seqLen + t is
// LayerNorm(word[id] + position[t] + tokenType[type]) * gamma + beta, one workgroup per row.
// Ids past the tables are clamped to the last row, so nothing is read out of bounds (semantics:
// ops.embed on clamped ids). With WT = f16 the three tables are stored as f16; the sum and LayerNorm are f32.
// Eight storage buffers: WebGPU's default per-stage limit.
// WT, the weights' element type (f16 or f32), is declared ahead of this file by the launcher
// (shaders/kernel.ts weightTypeWgsl).

struct Params {
  rows: u32,
  seqLen: u32,
  width: u32,
  eps: f32,
  vocabSize: u32,
  typeVocabSize: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokenIds: array<u32>;
@group(0) @binding(2) var<storage, read> tokenTypeIds: array<u32>;
@group(0) @binding(3) var<storage, read> word: array<WT>;
@group(0) @binding(4) var<storage, read> position: array<WT>;
@group(0) @binding(5) var<storage, read> tokenType: array<WT>;
@group(0) @binding(6) var<storage, read> gamma: array<f32>;
@group(0) @binding(7) var<storage, read> beta: array<f32>;
@group(0) @binding(8) var<storage, read_write> output: array<f32>;

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

@compute @workgroup_size(WG, 1, 1)
fn main(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  // Rows beyond 65535 workgroups wrap into the y dimension.
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) {
    return;
  }
  let tid = lid.x;
  let width = params.width;
  let positions = arrayLength(&position) / width;
  let wordBase = min(tokenIds[row], params.vocabSize - 1u) * width;
  let posBase = min(row % params.seqLen, positions - 1u) * width;
  let typeBase = min(tokenTypeIds[row], params.typeVocabSize - 1u) * width;
  let base = row * width;

  // The gathered sum is written to the output first and normalized in place by the same invocation.
  var sum = 0.0;
  for (var i = tid; i < width; i += WG) {
    let v = f32(word[wordBase + i]) + f32(position[posBase + i]) + f32(tokenType[typeBase + i]);
    output[base + i] = v;
    sum += v;
  }
  let mean = workgroup_sum(tid, sum) / f32(width);
  var sq = 0.0;
  for (var i = tid; i < width; i += WG) {
    let d = output[base + i] - mean;
    sq += d * d;
  }
  let inv = inverseSqrt(workgroup_sum(tid, sq) / f32(width) + params.eps);
  for (var i = tid; i < width; i += WG) {
    output[base + i] = (output[base + i] - mean) * inv * gamma[i] + beta[i];
  }
}
