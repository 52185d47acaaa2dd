// Linear layer: output[outputOffset + m*N + n] =
//   act(sum_k input[inputOffset + m*inputRowStride + k] * W[n*K + k] + bias[n]).
// W is nn.Linear's [N, K] layout, so both operands are contiguous along K ("NT" GEMM).
//
// W is stored as WT, f16 or f32 (accumulation stays f32). Variants (shaders/preprocess.ts): VEC4 loads
// input and W four K-elements at a time and requires K, inputRowStride and inputOffset % 4 == 0.
// Entry points: `tiled` (any M, 64x32 tiles), `tiled_large` (128x128 tiles of 8x8 blocks for large
// M*N), `tiled_block` (8x8 blocks in smaller tiles, 64x64 by default, split along K at batch 1),
// `gemv` (M <= 8: the pooler and classifier run with M = batch) and `reduce_partials`.
//
// Split-K: at small M (batch 1: M = sequence length) there are too few output tiles to fill a big GPU
// and each workgroup walks all of K serially, so the time is latency, proportional to K. With
// partialStride > 0 the tiled entry points give workgroup z the K range [z*kChunk, (z+1)*kChunk) and
// write raw sums (no bias, no activation) to output[outputOffset + z*partialStride + m*N + n];
// `reduce_partials` (or the add+LayerNorm kernel) then sums the splits and applies bias/activation.
// WT, the weights' element type (f16 or f32), is declared ahead of this file by the launcher
// (shaders/kernel.ts weightTypeWgsl).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  inputRowStride: u32,
  outputOffset: u32,
  inputOffset: u32,
  // 0 none, 1 gelu (erf), 2 gelu_new (tanh), 3 relu, 4 tanh. A uniform rather than an override so
  // that one pipeline serves every activation (the branch is uniform and only in the epilogue).
  activation: u32,
  // K elements per split (a multiple of TILE_K and LARGE_TILE_K); K when not split.
  kChunk: u32,
  // 0: normal epilogue. Otherwise the elements between consecutive splits' raw partial sums.
  partialStride: u32,
  // reduce_partials: the number of splits to sum.
  splits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<WT>>;
#else
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<WT>;
#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#if OUT4
// OUT4 (with VEC4; N, outputOffset and partialStride multiples of 4): the output as vec4, so that the
// register blocks' four consecutive columns leave in one 16-byte store (store4) instead of four.
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;
#else
@group(0) @binding(4) var<storage, read_write> output: array<f32>;
#endif
// Only reduce_partials reads this (its raw partial sums); scalar so that it serves any N.
@group(0) @binding(5) var<storage, read> partials: array<f32>;

// Tiled path: a workgroup of WG_X x WG_Y invocations computes a (4*WG_Y) x (4*WG_X) output tile,
// each invocation a 4x4 register block (rows ly + i*WG_Y, columns lx + j*WG_X), stepping through
// K in chunks of TILE_K (a multiple of 4) staged in workgroup memory.
override WG_X: u32 = 8u;
override WG_Y: u32 = 16u;
override TILE_K: u32 = 16u;
// Whether the tiled path double-buffers through registers, staging at most 4 vec4 per invocation and
// operand: TILE_K / WG_X of A and TILE_K / WG_Y of W (shaders/matmul.ts checks the tiles).
override PREFETCH: bool = true;

// Large path: 16 x 16 invocations, each an 8x8 register block, compute a 128 x 128 output tile;
// the staged tiles are stored K-major so that the inner loop reads two vec4 of A and two of W for
// 64 multiply-adds. The next chunk's global loads are issued before the current chunk is computed.
const LARGE_TILE: u32 = 128u;
override LARGE_TILE_K: u32 = 8u; // 4 or 8, so that 256 invocations can stage 128 x LARGE_TILE_K / 4 vec4

// Register-blocked path for few rows (`tiled_block`): BLOCK_WG_X x BLOCK_WG_Y invocations, each an
// 8x8 register block as in the large path, compute a (8*BLOCK_WG_Y) x (8*BLOCK_WG_X) output tile,
// split along K at batch 1. A separate entry point because its general staging (up to 4 vec4 per
// operand and invocation) cost the 128 x 128 path 9% at 4096³ on the H200 when they shared one.
override BLOCK_WG_X: u32 = 8u;
override BLOCK_WG_Y: u32 = 8u;
// 4, 8 or 16; each invocation stages at most 4 vec4 per operand (shaders/matmul.ts checks).
override BLOCK_TILE_K: u32 = 16u;
// Staging variants of tiled_block (BlockTiles.transpose / buffers in shaders/matmul.ts).
// BLOCK_TRANSPOSE: each invocation loads four rows at one K quad and stores them K-major as four vec4
// (a 4 x 4 transpose in registers) instead of 16 scalar stores; needs at most one such unit per
// invocation and operand. BLOCK_BUFFERS 2: two staging buffers, one barrier per K step instead of two.
override BLOCK_TRANSPOSE: bool = false;
override BLOCK_BUFFERS: u32 = 1u;
// BLOCK_SLICES 2 (BlockTiles.slices; transposed, one buffer): two sets of BLOCK_WG_X x BLOCK_WG_Y
// invocations share a tile and take alternate K steps of its range, each staging its own chunk, and
// add their blocks in workgroup memory before one store: half the split-K partial sums that a
// workgroup per range would write for the same number of invocations.
override BLOCK_SLICES: u32 = 1u;
// Register-blocked paths (tiled_large, tiled_block) accumulate with fma() instead of `acc += a * w`
// (MatmulTiles.fma): the driver may or may not contract a multiply and an add into one instruction.
override USE_FMA: bool = false;

// Rows per workgroup of reduce_partials (one column per invocation, 64 columns per workgroup).
const REDUCE_ROWS: u32 = 2u;

// GEMV path: a workgroup of GEMV_LANES x GEMV_COLS invocations computes GEMV_COLS output columns for
// all M <= GEMV_MAX_M rows; the GEMV_LANES invocations of a column split K between them.
override GEMV_LANES: u32 = 32u;
override GEMV_COLS: u32 = 8u;
const GEMV_MAX_M: u32 = 8u;

// Rows of the staged tiles are TILE_K/4 vec4 long plus one vec4 of padding against bank conflicts.
var<workgroup> tileA: array<vec4<f32>, WG_Y * 4u * (TILE_K / 4u + 1u)>;
var<workgroup> tileW: array<vec4<f32>, WG_X * 4u * (TILE_K / 4u + 1u)>;
var<workgroup> largeA: array<vec4<f32>, LARGE_TILE_K * LARGE_TILE / 4u>;
var<workgroup> largeW: array<vec4<f32>, LARGE_TILE_K * LARGE_TILE / 4u>;
// K-major like largeA/largeW: element (k, r) of a tile sits in vec4 k * (rows / 4) + r / 4, lane r % 4.
var<workgroup> blockA: array<vec4<f32>, BLOCK_TILE_K * BLOCK_WG_Y * 2u * BLOCK_BUFFERS * BLOCK_SLICES>;
var<workgroup> blockW: array<vec4<f32>, BLOCK_TILE_K * BLOCK_WG_X * 2u * BLOCK_BUFFERS * BLOCK_SLICES>;
var<workgroup> partial: array<f32, GEMV_COLS * GEMV_MAX_M * GEMV_LANES>;

// Four consecutive K-elements of input row m starting at k (k % 4 == 0), zero outside the matrix.
fn load_a(m: u32, k: u32) -> vec4<f32> {
  if (m >= params.M) {
    return vec4<f32>(0.0);
  }
#if VEC4
  if (k >= params.K) {
    return vec4<f32>(0.0);
  }
  return input[(params.inputOffset + m * params.inputRowStride + k) / 4u];
#else
  let base = params.inputOffset + m * params.inputRowStride + k;
  var v = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (k + c < params.K) {
      v[c] = input[base + c];
    }
  }
  return v;
#endif
}

// Four consecutive K-elements of weight row n starting at k, widened to f32, zero outside.
fn load_w(n: u32, k: u32) -> vec4<f32> {
  if (n >= params.N) {
    return vec4<f32>(0.0);
  }
#if VEC4
  if (k >= params.K) {
    return vec4<f32>(0.0);
  }
  return vec4<f32>(weight[(n * params.K + k) / 4u]);
#else
  let base = n * params.K + k;
  var v = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (k + c < params.K) {
      v[c] = f32(weight[base + c]);
    }
  }
  return v;
#endif
}

// erfc(x) with relative error < 1.2e-7 everywhere (the Chebyshev fit from Numerical Recipes, §6.2).
fn erfc_approx(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(poly);
  return select(r, 2.0 - r, x < 0.0);
}

// tanh with the argument clamped: some drivers compute tanh(x) as a ratio of exponentials that
// overflows to NaN for large |x|; tanh(±10) is ±1 in f32 anyway.
fn safe_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -10.0, 10.0));
}

fn activate(x: f32) -> f32 {
  switch params.activation {
    case 1u: {
      // 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2), accurate in both tails.
      return 0.5 * x * erfc_approx(-x * 0.70710678118654752);
    }
    case 2u: {
      return 0.5 * x * (1.0 + safe_tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
    }
    case 3u: {
      return max(x, 0.0);
    }
    case 4u: {
      return safe_tanh(x);
    }
    default: {
      return x;
    }
  }
}

// Element i of the output buffer.
fn put_output(i: u32, v: f32) {
#if OUT4
  output[i / 4u][i % 4u] = v;
#else
  output[i] = v;
#endif
}

fn store(m: u32, n: u32, split: u32, acc: f32) {
  if (m < params.M && n < params.N) {
    if (params.partialStride == 0u) {
      put_output(params.outputOffset + m * params.N + n, activate(acc + bias[n]));
    } else {
      put_output(params.outputOffset + split * params.partialStride + m * params.N + n, acc);
    }
  }
}

// What one invocation stages of a K chunk with PREFETCH: elements e, e + T, e + 2T, e + 3T of the A
// and W tiles (T invocations), in plain fields: with an indexed array of them the tiled path ran
// slower on the H200, probably from local memory.
struct Staged {
  a0: vec4<f32>,
  a1: vec4<f32>,
  a2: vec4<f32>,
  a3: vec4<f32>,
  w0: vec4<f32>,
  w1: vec4<f32>,
  w2: vec4<f32>,
  w3: vec4<f32>,
}

// Element e of the A / W tile at K offset k, zero past the tile (`count` elements).
fn fetch_a(e: u32, count: u32, m0: u32, k: u32) -> vec4<f32> {
  if (e >= count) {
    return vec4<f32>(0.0);
  }
  return load_a(m0 + e / (TILE_K / 4u), k + (e % (TILE_K / 4u)) * 4u);
}

fn fetch_w(e: u32, count: u32, n0: u32, k: u32) -> vec4<f32> {
  if (e >= count) {
    return vec4<f32>(0.0);
  }
  return load_w(n0 + e / (TILE_K / 4u), k + (e % (TILE_K / 4u)) * 4u);
}

// The chunk at K offset k that invocation e of t stages (tile origins m0, n0; tile sizes in vec4).
fn fetch_chunk(e: u32, t: u32, sizes: vec2<u32>, m0: u32, n0: u32, k: u32) -> Staged {
  return Staged(
    fetch_a(e, sizes.x, m0, k),
    fetch_a(e + t, sizes.x, m0, k),
    fetch_a(e + 2u * t, sizes.x, m0, k),
    fetch_a(e + 3u * t, sizes.x, m0, k),
    fetch_w(e, sizes.y, n0, k),
    fetch_w(e + t, sizes.y, n0, k),
    fetch_w(e + 2u * t, sizes.y, n0, k),
    fetch_w(e + 3u * t, sizes.y, n0, k),
  );
}

fn put_a(e: u32, count: u32, v: vec4<f32>) {
  if (e < count) {
    tileA[(e / (TILE_K / 4u)) * (TILE_K / 4u + 1u) + e % (TILE_K / 4u)] = v;
  }
}

fn put_w(e: u32, count: u32, v: vec4<f32>) {
  if (e < count) {
    tileW[(e / (TILE_K / 4u)) * (TILE_K / 4u + 1u) + e % (TILE_K / 4u)] = v;
  }
}

// Writes a staged chunk into the workgroup tiles.
fn put_chunk(e: u32, t: u32, sizes: vec2<u32>, s: Staged) {
  put_a(e, sizes.x, s.a0);
  put_a(e + t, sizes.x, s.a1);
  put_a(e + 2u * t, sizes.x, s.a2);
  put_a(e + 3u * t, sizes.x, s.a3);
  put_w(e, sizes.y, s.w0);
  put_w(e + t, sizes.y, s.w1);
  put_w(e + 2u * t, sizes.y, s.w2);
  put_w(e + 3u * t, sizes.y, s.w3);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // Batch 1 after the exit: nothing left to do (shaders/kernel.ts exitGate).
  if (gate_shut()) {
    return;
  }
  let tileM = WG_Y * 4u;
  let tileN = WG_X * 4u;
  let k4 = TILE_K / 4u;
  let rowStride = k4 + 1u;
  let m0 = wid.y * tileM;
  let n0 = wid.x * tileN;
  let threads = WG_X * WG_Y;
  let tid = lid.y * WG_X + lid.x;

  let kBegin = wid.z * params.kChunk;
  let kEnd = min(params.K, kBegin + params.kChunk);

  // PREFETCH: the next chunk's global loads are issued before the current chunk is computed, so
  // their latency hides behind the multiply-adds (at batch 1 a workgroup walks K alone).
  let stageA = tileM * k4;
  let stageW = tileN * k4;
  let sizes = vec2<u32>(stageA, stageW);
  var staged: Staged;
  if (PREFETCH) {
    staged = fetch_chunk(tid, threads, sizes, m0, n0, kBegin);
  }

  // acc[i][j]: row m0 + lid.y + i*WG_Y, column n0 + lid.x + j*WG_X.
  var acc: array<vec4<f32>, 4>;
  for (var k0 = kBegin; k0 < kEnd; k0 += TILE_K) {
    if (PREFETCH) {
      put_chunk(tid, threads, sizes, staged);
    } else {
      for (var e = tid; e < stageA; e += threads) {
        tileA[(e / k4) * rowStride + e % k4] = load_a(m0 + e / k4, k0 + (e % k4) * 4u);
      }
      for (var e = tid; e < stageW; e += threads) {
        tileW[(e / k4) * rowStride + e % k4] = load_w(n0 + e / k4, k0 + (e % k4) * 4u);
      }
    }
    workgroupBarrier();
    let kNext = k0 + TILE_K;
    if (PREFETCH && kNext < kEnd) {
      staged = fetch_chunk(tid, threads, sizes, m0, n0, kNext);
    }
    // Past K the staged values are zero, so the whole chunk can be summed.
    for (var c = 0u; c < k4; c++) {
      let w0 = tileW[(lid.x) * rowStride + c];
      let w1 = tileW[(lid.x + WG_X) * rowStride + c];
      let w2 = tileW[(lid.x + 2u * WG_X) * rowStride + c];
      let w3 = tileW[(lid.x + 3u * WG_X) * rowStride + c];
      for (var i = 0u; i < 4u; i++) {
        let a = tileA[(lid.y + i * WG_Y) * rowStride + c];
        acc[i] += vec4<f32>(dot(a, w0), dot(a, w1), dot(a, w2), dot(a, w3));
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + i * WG_Y;
    for (var j = 0u; j < 4u; j++) {
      store(m, n0 + lid.x + j * WG_X, wid.z, acc[i][j]);
    }
  }
}

// Row m's share of four K quads (k, k + step, ...) against the weight quads w0..w3.
fn gemv_row(m: u32, k: u32, step: u32, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> f32 {
  return (dot(load_a(m, k), w0) + dot(load_a(m, k + step), w1)) +
    (dot(load_a(m, k + 2u * step), w2) + dot(load_a(m, k + 3u * step), w3));
}

@compute @workgroup_size(GEMV_LANES, GEMV_COLS, 1)
fn gemv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  if (gate_shut()) {
    return;
  }
  let lane = lid.x;
  let n = wid.x * GEMV_COLS + lid.y;
  let rows = min(params.M, GEMV_MAX_M);
  // One accumulator per row, by constant index (a dynamically indexed array can go to local memory).
  var acc0 = 0.0;
  var acc1 = 0.0;
  var acc2 = 0.0;
  var acc3 = 0.0;
  var acc4 = 0.0;
  var acc5 = 0.0;
  var acc6 = 0.0;
  var acc7 = 0.0;
  if (n < params.N) {
    // Four K quads a step, their loads issued together: the loop waits on memory, one round trip
    // per step (load_a and load_w give zeros past K and past M). ALBERT-base's last-layer GEMVs
    // (768 x 3072 and 3072 x 768) took 13.7-14.6 and 10.7-11.4 µs on one H200 against 18.6-20.6
    // and 11.7-12.9 with one quad a step and an indexed accumulator array on three others (bench
    // --tuning-ab profiles, bench/results/archive/2026-11-28-h200-*).
    let step = GEMV_LANES * 4u;
    for (var k = lane * 4u; k < params.K; k += 4u * step) {
      let w0 = load_w(n, k);
      let w1 = load_w(n, k + step);
      let w2 = load_w(n, k + 2u * step);
      let w3 = load_w(n, k + 3u * step);
      acc0 += gemv_row(0u, k, step, w0, w1, w2, w3);
      if (rows > 1u) {
        acc1 += gemv_row(1u, k, step, w0, w1, w2, w3);
      }
      if (rows > 2u) {
        acc2 += gemv_row(2u, k, step, w0, w1, w2, w3);
        acc3 += gemv_row(3u, k, step, w0, w1, w2, w3);
      }
      if (rows > 4u) {
        acc4 += gemv_row(4u, k, step, w0, w1, w2, w3);
        acc5 += gemv_row(5u, k, step, w0, w1, w2, w3);
        acc6 += gemv_row(6u, k, step, w0, w1, w2, w3);
        acc7 += gemv_row(7u, k, step, w0, w1, w2, w3);
      }
    }
  }
  let at = lid.y * GEMV_MAX_M * GEMV_LANES + lane;
  partial[at] = acc0;
  partial[at + GEMV_LANES] = acc1;
  partial[at + 2u * GEMV_LANES] = acc2;
  partial[at + 3u * GEMV_LANES] = acc3;
  partial[at + 4u * GEMV_LANES] = acc4;
  partial[at + 5u * GEMV_LANES] = acc5;
  partial[at + 6u * GEMV_LANES] = acc6;
  partial[at + 7u * GEMV_LANES] = acc7;
  workgroupBarrier();
  // Lane m of each column sums row m's partial sums (needs GEMV_LANES >= GEMV_MAX_M).
  if (lane < rows) {
    var sum = 0.0;
    let base = (lid.y * GEMV_MAX_M + lane) * GEMV_LANES;
    for (var l = 0u; l < GEMV_LANES; l++) {
      sum += partial[base + l];
    }
    store(lane, n, 0u, sum);
  }
}

// Stores the staged vec4s of A and W (K-elements kc*4 .. kc*4+3 of tile row r) K-major: element
// (k, r) sits in vec4 k*32 + r/4, lane r%4.
fn stage_large(r: u32, kc: u32, a: vec4<f32>, w: vec4<f32>) {
  // Unrolled with constant component indices, as measured on the H200 (bench --matmul-sweep).
  let at = kc * 4u * (LARGE_TILE / 4u) + r / 4u;
  let step = LARGE_TILE / 4u;
  let lane = r % 4u;
  largeA[at][lane] = a.x;
  largeW[at][lane] = w.x;
  largeA[at + step][lane] = a.y;
  largeW[at + step][lane] = w.y;
  largeA[at + 2u * step][lane] = a.z;
  largeW[at + 2u * step][lane] = w.z;
  largeA[at + 3u * step][lane] = a.w;
  largeW[at + 3u * step][lane] = w.w;
}

@compute @workgroup_size(16, 16, 1)
fn tiled_large(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  if (gate_shut()) {
    return;
  }
  let m0 = wid.y * LARGE_TILE;
  let n0 = wid.x * LARGE_TILE;
  let tid = lid.y * 16u + lid.x;
  let kBegin = wid.z * params.kChunk;
  let kEnd = min(params.K, kBegin + params.kChunk);
  // Staging: LARGE_TILE rows x LARGE_TILE_K/4 vec4 per operand, spread over the 256 invocations.
  let k4 = LARGE_TILE_K / 4u;
  let stageRow = tid / k4;
  let stageCol = tid % k4;
  let staging = tid < LARGE_TILE * k4;

  var nextA = vec4<f32>(0.0);
  var nextW = vec4<f32>(0.0);
  if (staging) {
    nextA = load_a(m0 + stageRow, kBegin + stageCol * 4u);
    nextW = load_w(n0 + stageRow, kBegin + stageCol * 4u);
  }
  // acc[2*i + h]: row m0 + lid.y*4 + i (i < 4) or m0 + 64 + lid.y*4 + i-4 (i >= 4), columns
  // n0 + h*64 + lid.x*4 .. +3.
  var acc: array<vec4<f32>, 16>;
  for (var k0 = kBegin; k0 < kEnd; k0 += LARGE_TILE_K) {
    if (staging) {
      stage_large(stageRow, stageCol, nextA, nextW);
    }
    workgroupBarrier();
    let kNext = k0 + LARGE_TILE_K;
    if (staging && kNext < kEnd) {
      nextA = load_a(m0 + stageRow, kNext + stageCol * 4u);
      nextW = load_w(n0 + stageRow, kNext + stageCol * 4u);
    }
    for (var k = 0u; k < LARGE_TILE_K; k++) {
      let a0 = largeA[k * 32u + lid.y];
      let a1 = largeA[k * 32u + 16u + lid.y];
      let w0 = largeW[k * 32u + lid.x];
      let w1 = largeW[k * 32u + 16u + lid.x];
      block_fma(&acc, a0, a1, w0, w1);
    }
    workgroupBarrier();
  }

  let r0 = m0 + lid.y * 4u;
  let r1 = m0 + 64u + lid.y * 4u;
  let c0 = n0 + lid.x * 4u;
  let c1 = n0 + 64u + lid.x * 4u;
  // Its own 16 stores rather than store_block with a constant flag choosing store4_each: that cost
  // 4096³ 2.2% (5.42 against 5.30 ms, H200, bench --matmul-probe, two alternating runs of each build).
  store4_each(r0, c0, wid.z, acc[0]);
  store4_each(r0, c1, wid.z, acc[1]);
  store4_each(r0 + 1u, c0, wid.z, acc[2]);
  store4_each(r0 + 1u, c1, wid.z, acc[3]);
  store4_each(r0 + 2u, c0, wid.z, acc[4]);
  store4_each(r0 + 2u, c1, wid.z, acc[5]);
  store4_each(r0 + 3u, c0, wid.z, acc[6]);
  store4_each(r0 + 3u, c1, wid.z, acc[7]);
  store4_each(r1, c0, wid.z, acc[8]);
  store4_each(r1, c1, wid.z, acc[9]);
  store4_each(r1 + 1u, c0, wid.z, acc[10]);
  store4_each(r1 + 1u, c1, wid.z, acc[11]);
  store4_each(r1 + 2u, c0, wid.z, acc[12]);
  store4_each(r1 + 2u, c1, wid.z, acc[13]);
  store4_each(r1 + 3u, c0, wid.z, acc[14]);
  store4_each(r1 + 3u, c1, wid.z, acc[15]);
}

// Writes element e of a staged chunk (tile row e / k4, K-elements (e % k4)*4 .. +3) K-major into
// blockA (operand 0) or blockW (1), whose rows are `quads` vec4 long; nothing past `count`.
fn put_block(operand: u32, e: u32, count: u32, v: vec4<f32>) {
  if (e >= count) {
    return;
  }
  let k4 = BLOCK_TILE_K / 4u;
  let r = e / k4;
  let quads = select(2u * BLOCK_WG_Y, 2u * BLOCK_WG_X, operand == 1u);
  let at = (e % k4) * 4u * quads + r / 4u;
  let lane = r % 4u;
  // Constant component indices, as measured on the H200 (bench --matmul-sweep).
  if (operand == 0u) {
    blockA[at][lane] = v.x;
    blockA[at + quads][lane] = v.y;
    blockA[at + 2u * quads][lane] = v.z;
    blockA[at + 3u * quads][lane] = v.w;
  } else {
    blockW[at][lane] = v.x;
    blockW[at + quads][lane] = v.y;
    blockW[at + 2u * quads][lane] = v.z;
    blockW[at + 3u * quads][lane] = v.w;
  }
}

// Element e of the A / W chunk at K offset k (tile row e / k4), zero past the tile.
fn fetch_block_a(e: u32, count: u32, m0: u32, k: u32) -> vec4<f32> {
  if (e >= count) {
    return vec4<f32>(0.0);
  }
  let k4 = BLOCK_TILE_K / 4u;
  return load_a(m0 + e / k4, k + (e % k4) * 4u);
}

fn fetch_block_w(e: u32, count: u32, n0: u32, k: u32) -> vec4<f32> {
  if (e >= count) {
    return vec4<f32>(0.0);
  }
  let k4 = BLOCK_TILE_K / 4u;
  return load_w(n0 + e / k4, k + (e % k4) * 4u);
}

// The chunk at K offset k that invocation e of t stages: elements e, e + t, e + 2t, e + 3t. The
// guards on j*t < size depend on override constants only, so the compiler drops the slots that a
// tile shape never uses (64 x 64 tiles at K steps of 8 stage two per operand).
fn fetch_block(e: u32, t: u32, sizes: vec2<u32>, m0: u32, n0: u32, k: u32) -> Staged {
  var s: Staged;
  s.a0 = fetch_block_a(e, sizes.x, m0, k);
  s.w0 = fetch_block_w(e, sizes.y, n0, k);
  if (t < sizes.x) {
    s.a1 = fetch_block_a(e + t, sizes.x, m0, k);
  }
  if (2u * t < sizes.x) {
    s.a2 = fetch_block_a(e + 2u * t, sizes.x, m0, k);
    s.a3 = fetch_block_a(e + 3u * t, sizes.x, m0, k);
  }
  if (t < sizes.y) {
    s.w1 = fetch_block_w(e + t, sizes.y, n0, k);
  }
  if (2u * t < sizes.y) {
    s.w2 = fetch_block_w(e + 2u * t, sizes.y, n0, k);
    s.w3 = fetch_block_w(e + 3u * t, sizes.y, n0, k);
  }
  return s;
}

fn put_block_chunk(e: u32, t: u32, sizes: vec2<u32>, s: Staged) {
  put_block(0u, e, sizes.x, s.a0);
  put_block(1u, e, sizes.y, s.w0);
  if (t < sizes.x) {
    put_block(0u, e + t, sizes.x, s.a1);
  }
  if (2u * t < sizes.x) {
    put_block(0u, e + 2u * t, sizes.x, s.a2);
    put_block(0u, e + 3u * t, sizes.x, s.a3);
  }
  if (t < sizes.y) {
    put_block(1u, e + t, sizes.y, s.w1);
  }
  if (2u * t < sizes.y) {
    put_block(1u, e + 2u * t, sizes.y, s.w2);
    put_block(1u, e + 3u * t, sizes.y, s.w3);
  }
}

// Four rows r .. r+3 of A (operand 0) or W (1) at K offset k, one row per column.
fn fetch_rows(operand: u32, r: u32, k: u32) -> mat4x4<f32> {
  if (operand == 0u) {
    return mat4x4<f32>(load_a(r, k), load_a(r + 1u, k), load_a(r + 2u, k), load_a(r + 3u, k));
  }
  return mat4x4<f32>(load_w(r, k), load_w(r + 1u, k), load_w(r + 2u, k), load_w(r + 3u, k));
}

// Staging unit u of an operand's chunk (BLOCK_TRANSPOSE): rows 4·(u / k4) .. +3 of the tile at K quad
// u % k4, zero past `units`.
fn fetch_unit(operand: u32, u: u32, units: u32, r0: u32, k: u32) -> mat4x4<f32> {
  if (u >= units) {
    return mat4x4<f32>();
  }
  let k4 = BLOCK_TILE_K / 4u;
  return fetch_rows(operand, r0 + (u / k4) * 4u, k + (u % k4) * 4u);
}

// Stores unit u K-major into buffer `buf`: column j of transpose(rows) is K element 4·(u % k4) + j of
// the four rows, one vec4 of the staged tile.
fn put_unit(operand: u32, u: u32, units: u32, buf: u32, rows: mat4x4<f32>) {
  if (u >= units) {
    return;
  }
  let k4 = BLOCK_TILE_K / 4u;
  let t = transpose(rows);
  if (operand == 0u) {
    let quads = 2u * BLOCK_WG_Y;
    let at = buf * BLOCK_TILE_K * quads + (u % k4) * 4u * quads + u / k4;
    blockA[at] = t[0];
    blockA[at + quads] = t[1];
    blockA[at + 2u * quads] = t[2];
    blockA[at + 3u * quads] = t[3];
  } else {
    let quads = 2u * BLOCK_WG_X;
    let at = buf * BLOCK_TILE_K * quads + (u % k4) * 4u * quads + u / k4;
    blockW[at] = t[0];
    blockW[at + quads] = t[1];
    blockW[at + 2u * quads] = t[2];
    blockW[at + 3u * quads] = t[3];
  }
}

// One K element of the 8 x 8 block: rows a0 (4) and a1 (4), columns w0 (4) and w1 (4). Constant
// indices only: a dynamically indexed accumulator array can end up in local memory.
fn block_fma(acc: ptr<function, array<vec4<f32>, 16>>, a0: vec4<f32>, a1: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>) {
  if (USE_FMA) {
    (*acc)[0] = fma(vec4<f32>(a0.x), w0, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a0.x), w1, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a0.y), w0, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a0.y), w1, (*acc)[3]);
    (*acc)[4] = fma(vec4<f32>(a0.z), w0, (*acc)[4]);
    (*acc)[5] = fma(vec4<f32>(a0.z), w1, (*acc)[5]);
    (*acc)[6] = fma(vec4<f32>(a0.w), w0, (*acc)[6]);
    (*acc)[7] = fma(vec4<f32>(a0.w), w1, (*acc)[7]);
    (*acc)[8] = fma(vec4<f32>(a1.x), w0, (*acc)[8]);
    (*acc)[9] = fma(vec4<f32>(a1.x), w1, (*acc)[9]);
    (*acc)[10] = fma(vec4<f32>(a1.y), w0, (*acc)[10]);
    (*acc)[11] = fma(vec4<f32>(a1.y), w1, (*acc)[11]);
    (*acc)[12] = fma(vec4<f32>(a1.z), w0, (*acc)[12]);
    (*acc)[13] = fma(vec4<f32>(a1.z), w1, (*acc)[13]);
    (*acc)[14] = fma(vec4<f32>(a1.w), w0, (*acc)[14]);
    (*acc)[15] = fma(vec4<f32>(a1.w), w1, (*acc)[15]);
    return;
  }
  (*acc)[0] += a0.x * w0;
  (*acc)[1] += a0.x * w1;
  (*acc)[2] += a0.y * w0;
  (*acc)[3] += a0.y * w1;
  (*acc)[4] += a0.z * w0;
  (*acc)[5] += a0.z * w1;
  (*acc)[6] += a0.w * w0;
  (*acc)[7] += a0.w * w1;
  (*acc)[8] += a1.x * w0;
  (*acc)[9] += a1.x * w1;
  (*acc)[10] += a1.y * w0;
  (*acc)[11] += a1.y * w1;
  (*acc)[12] += a1.z * w0;
  (*acc)[13] += a1.z * w1;
  (*acc)[14] += a1.w * w0;
  (*acc)[15] += a1.w * w1;
}

@compute @workgroup_size(BLOCK_WG_X, BLOCK_WG_Y, BLOCK_SLICES)
fn tiled_block(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  if (gate_shut()) {
    return;
  }
  let tileM = 8u * BLOCK_WG_Y;
  let tileN = 8u * BLOCK_WG_X;
  let quadsA = 2u * BLOCK_WG_Y;
  let quadsW = 2u * BLOCK_WG_X;
  let m0 = wid.y * tileM;
  let n0 = wid.x * tileN;
  let threads = BLOCK_WG_X * BLOCK_WG_Y;
  let tid = lid.y * BLOCK_WG_X + lid.x;
  let kBegin = wid.z * params.kChunk;
  let kEnd = min(params.K, kBegin + params.kChunk);
  let sizes = vec2<u32>(tileM, tileN) * (BLOCK_TILE_K / 4u);

  // acc[2*i + h]: row m0 + lid.y*4 + i (i < 4) or m0 + tileM/2 + lid.y*4 + i-4 (i >= 4), columns
  // n0 + h*tileN/2 + lid.x*4 .. +3.
  var acc: array<vec4<f32>, 16>;
  if (BLOCK_SLICES == 2u) {
    // Slice lid.z takes K steps lid.z, lid.z + 2, … of the range; both walk the same number of
    // rounds (barriers stay uniform), a step past the range staging zeros.
    let unitsA = (tileM / 4u) * (BLOCK_TILE_K / 4u);
    let unitsW = (tileN / 4u) * (BLOCK_TILE_K / 4u);
    let slice = lid.z;
    let rounds = (kEnd - kBegin + 2u * BLOCK_TILE_K - 1u) / (2u * BLOCK_TILE_K);
    var k0 = kBegin + slice * BLOCK_TILE_K;
    var rowsA = fetch_unit(0u, tid, select(0u, unitsA, k0 < kEnd), m0, k0);
    var rowsW = fetch_unit(1u, tid, select(0u, unitsW, k0 < kEnd), n0, k0);
    put_unit(0u, tid, unitsA, slice, rowsA);
    put_unit(1u, tid, unitsW, slice, rowsW);
    workgroupBarrier();
    let baseA = slice * BLOCK_TILE_K * quadsA;
    let baseW = slice * BLOCK_TILE_K * quadsW;
    for (var round = 0u; round < rounds; round++) {
      let kNext = k0 + 2u * BLOCK_TILE_K;
      let more = round + 1u < rounds;
      if (more) {
        rowsA = fetch_unit(0u, tid, select(0u, unitsA, kNext < kEnd), m0, kNext);
        rowsW = fetch_unit(1u, tid, select(0u, unitsW, kNext < kEnd), n0, kNext);
      }
      block_chunk(&acc, baseA, baseW, lid.xy);
      workgroupBarrier();
      if (more) {
        put_unit(0u, tid, unitsA, slice, rowsA);
        put_unit(1u, tid, unitsW, slice, rowsW);
      }
      workgroupBarrier();
      k0 = kNext;
    }
    if (slice == 1u) {
      put_slice_sums(tid, threads, &acc);
    }
    workgroupBarrier();
    if (slice == 0u) {
      add_slice_sums(tid, threads, &acc);
      store_block(m0 + lid.y * 4u, m0 + tileM / 2u + lid.y * 4u, n0 + lid.x * 4u, n0 + tileN / 2u + lid.x * 4u, wid.z, &acc);
    }
    return;
  }
  if (BLOCK_TRANSPOSE) {
    // Transposed units; with two buffers the next chunk goes into the other buffer while this one is
    // read, and one barrier per K step serves both.
    let unitsA = (tileM / 4u) * (BLOCK_TILE_K / 4u);
    let unitsW = (tileN / 4u) * (BLOCK_TILE_K / 4u);
    var rowsA = fetch_unit(0u, tid, unitsA, m0, kBegin);
    var rowsW = fetch_unit(1u, tid, unitsW, n0, kBegin);
    put_unit(0u, tid, unitsA, 0u, rowsA);
    put_unit(1u, tid, unitsW, 0u, rowsW);
    workgroupBarrier();
    var buf = 0u;
    for (var k0 = kBegin; k0 < kEnd; k0 += BLOCK_TILE_K) {
      let kNext = k0 + BLOCK_TILE_K;
      let more = kNext < kEnd;
      if (more) {
        rowsA = fetch_unit(0u, tid, unitsA, m0, kNext);
        rowsW = fetch_unit(1u, tid, unitsW, n0, kNext);
      }
      let baseA = buf * BLOCK_TILE_K * quadsA;
      let baseW = buf * BLOCK_TILE_K * quadsW;
      block_chunk(&acc, baseA, baseW, lid.xy);
      if (BLOCK_BUFFERS == 1u) {
        workgroupBarrier();
      }
      if (more) {
        buf = select(0u, 1u - buf, BLOCK_BUFFERS == 2u);
        put_unit(0u, tid, unitsA, buf, rowsA);
        put_unit(1u, tid, unitsW, buf, rowsW);
      }
      workgroupBarrier();
    }
    store_block(m0 + lid.y * 4u, m0 + tileM / 2u + lid.y * 4u, n0 + lid.x * 4u, n0 + tileN / 2u + lid.x * 4u, wid.z, &acc);
    return;
  }
  var staged = fetch_block(tid, threads, sizes, m0, n0, kBegin);
  for (var k0 = kBegin; k0 < kEnd; k0 += BLOCK_TILE_K) {
    put_block_chunk(tid, threads, sizes, staged);
    workgroupBarrier();
    let kNext = k0 + BLOCK_TILE_K;
    if (kNext < kEnd) {
      staged = fetch_block(tid, threads, sizes, m0, n0, kNext);
    }
    block_chunk(&acc, 0u, 0u, lid.xy);
    workgroupBarrier();
  }

  store_block(m0 + lid.y * 4u, m0 + tileM / 2u + lid.y * 4u, n0 + lid.x * 4u, n0 + tileN / 2u + lid.x * 4u, wid.z, &acc);
}

// One staged K chunk of tiled_block into the 8 x 8 block of invocation lid (x: columns, y: rows),
// the chunk's A and W starting at vec4 baseA and baseW of the staging buffers.
fn block_chunk(acc: ptr<function, array<vec4<f32>, 16>>, baseA: u32, baseW: u32, lid: vec2<u32>) {
  let quadsA = 2u * BLOCK_WG_Y;
  let quadsW = 2u * BLOCK_WG_X;
  for (var k = 0u; k < BLOCK_TILE_K; k++) {
    let a0 = blockA[baseA + k * quadsA + lid.y];
    let a1 = blockA[baseA + k * quadsA + BLOCK_WG_Y + lid.y];
    let w0 = blockW[baseW + k * quadsW + lid.x];
    let w1 = blockW[baseW + k * quadsW + BLOCK_WG_X + lid.x];
    block_fma(acc, a0, a1, w0, w1);
  }
}

// BLOCK_SLICES 2: the second slice's accumulators into the staging buffers once the K loop is done
// (8·t vec4 each: BlockTiles.slices needs tileK = 2·wgX = 2·wgY), and the first's sum of both.
// Constant indices only, as in the K loop: the accumulators stay in registers.
fn put_slice_sums(tid: u32, t: u32, acc: ptr<function, array<vec4<f32>, 16>>) {
  blockA[0u * t + tid] = (*acc)[0];
  blockA[1u * t + tid] = (*acc)[1];
  blockA[2u * t + tid] = (*acc)[2];
  blockA[3u * t + tid] = (*acc)[3];
  blockA[4u * t + tid] = (*acc)[4];
  blockA[5u * t + tid] = (*acc)[5];
  blockA[6u * t + tid] = (*acc)[6];
  blockA[7u * t + tid] = (*acc)[7];
  blockW[0u * t + tid] = (*acc)[8];
  blockW[1u * t + tid] = (*acc)[9];
  blockW[2u * t + tid] = (*acc)[10];
  blockW[3u * t + tid] = (*acc)[11];
  blockW[4u * t + tid] = (*acc)[12];
  blockW[5u * t + tid] = (*acc)[13];
  blockW[6u * t + tid] = (*acc)[14];
  blockW[7u * t + tid] = (*acc)[15];
}

fn add_slice_sums(tid: u32, t: u32, acc: ptr<function, array<vec4<f32>, 16>>) {
  (*acc)[0] += blockA[0u * t + tid];
  (*acc)[1] += blockA[1u * t + tid];
  (*acc)[2] += blockA[2u * t + tid];
  (*acc)[3] += blockA[3u * t + tid];
  (*acc)[4] += blockA[4u * t + tid];
  (*acc)[5] += blockA[5u * t + tid];
  (*acc)[6] += blockA[6u * t + tid];
  (*acc)[7] += blockA[7u * t + tid];
  (*acc)[8] += blockW[0u * t + tid];
  (*acc)[9] += blockW[1u * t + tid];
  (*acc)[10] += blockW[2u * t + tid];
  (*acc)[11] += blockW[3u * t + tid];
  (*acc)[12] += blockW[4u * t + tid];
  (*acc)[13] += blockW[5u * t + tid];
  (*acc)[14] += blockW[6u * t + tid];
  (*acc)[15] += blockW[7u * t + tid];
}

// The 8 x 8 block of tiled_block: rows r0 .. r0+3 and r1 .. r1+3, columns c0 .. c0+3 and c1 .. c1+3.
fn store_block(r0: u32, r1: u32, c0: u32, c1: u32, split: u32, acc: ptr<function, array<vec4<f32>, 16>>) {
  // Constant indices only, as in the K loop.
  store4(r0, c0, split, (*acc)[0]);
  store4(r0, c1, split, (*acc)[1]);
  store4(r0 + 1u, c0, split, (*acc)[2]);
  store4(r0 + 1u, c1, split, (*acc)[3]);
  store4(r0 + 2u, c0, split, (*acc)[4]);
  store4(r0 + 2u, c1, split, (*acc)[5]);
  store4(r0 + 3u, c0, split, (*acc)[6]);
  store4(r0 + 3u, c1, split, (*acc)[7]);
  store4(r1, c0, split, (*acc)[8]);
  store4(r1, c1, split, (*acc)[9]);
  store4(r1 + 1u, c0, split, (*acc)[10]);
  store4(r1 + 1u, c1, split, (*acc)[11]);
  store4(r1 + 2u, c0, split, (*acc)[12]);
  store4(r1 + 2u, c1, split, (*acc)[13]);
  store4(r1 + 3u, c0, split, (*acc)[14]);
  store4(r1 + 3u, c1, split, (*acc)[15]);
}

// Columns n .. n+3 of row m as four scalar stores, whatever the variant: tiled_large ran 4096³ at
// 22.2 TFLOP/s with OUT4's vec4 stores against 25.0 with these (H200, bench --matmul-sweep,
// bench/results/archive/2026-11-27-h200-vec4-stores-square-ab.json).
fn store4_each(m: u32, n: u32, split: u32, v: vec4<f32>) {
  store(m, n, split, v.x);
  store(m, n + 1u, split, v.y);
  store(m, n + 2u, split, v.z);
  store(m, n + 3u, split, v.w);
}

// Columns n .. n+3 of row m.
fn store4(m: u32, n: u32, split: u32, v: vec4<f32>) {
#if OUT4
  // n and N are multiples of 4: the four columns are all inside the matrix or all outside.
  if (m < params.M && n < params.N) {
    if (params.partialStride == 0u) {
      let b = vec4<f32>(bias[n], bias[n + 1u], bias[n + 2u], bias[n + 3u]);
      let y = v + b;
      output[(params.outputOffset + m * params.N + n) / 4u] =
        vec4<f32>(activate(y.x), activate(y.y), activate(y.z), activate(y.w));
    } else {
      output[(params.outputOffset + split * params.partialStride + m * params.N + n) / 4u] = v;
    }
  }
#else
  store4_each(m, n, split, v);
#endif
}

// partials8(at, s): slices s .. s+7 of the raw partial sums at element `at`, generated by
// shaders/kernel.ts partialSums8Wgsl (also used by exit.wgsl's decide_reduce).

// output[outputOffset + m*N + n] = act(sum over splits of the raw partial sums + bias[n]); the partial
// sums are read from `partials` at inputOffset + s*partialStride + m*N + n. Workgroup (x, y):
// columns x*64 .. x*64+63, rows y*REDUCE_ROWS .. +REDUCE_ROWS-1, whose loads are issued together.
@compute @workgroup_size(64, 1, 1)
fn reduce_partials(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  if (gate_shut()) {
    return;
  }
  let n = wid.x * 64u + lid.x;
  if (n >= params.N) {
    return;
  }
  // REDUCE_ROWS = 2: rows m0 and m0 + 1 (which reads row M - 1 past the matrix and is not written).
  let m0 = wid.y * REDUCE_ROWS;
  let atA = params.inputOffset + m0 * params.N + n;
  let atB = params.inputOffset + min(m0 + 1u, params.M - 1u) * params.N + n;
  var sumA = 0.0;
  var sumB = 0.0;
  for (var s = 0u; s < params.splits; s += 8u) {
    sumA += partials8(atA, s);
    sumB += partials8(atB, s);
  }
  put_output(params.outputOffset + m0 * params.N + n, activate(sumA + bias[n]));
  if (m0 + 1u < params.M) {
    put_output(params.outputOffset + (m0 + 1u) * params.N + n, activate(sumB + bias[n]));
  }
}
