/**
 * Kernel tests: each function builds seeded random inputs, runs one kernel on the GPU, reads the
 * result back and compares it with the CPU reference (tests/reference/ops.ts). They return plain
 * JSON; the assertions live in e2e/kernels.spec.ts (Chromium, f32) and tests/f16/ (Deno, f16).
 */
import type { Activation, LinearWeights } from '../../src/model/types';
import { PonderError } from '../../src/errors';
import { requestGpu, type GpuContext } from '../../src/gpu/device';
import { encodeDispatches, type KernelDispatch, type WeightDtype } from '../../shaders/kernel';
import { MatmulKernel, GEMV_MAX_M, type MatmulTiles } from '../../shaders/matmul';
import {
  AttentionKernel,
  attentionPathFor,
  type AttentionPath,
  type RowsThreads,
} from '../../shaders/attention';
import { AddLayerNormKernel, poolerBlocks } from '../../shaders/layernorm';
import { EmbeddingKernel } from '../../shaders/embeddings';
import {
  HeadsKernel,
  lambdaFolded,
  lambdaHiddenFloats,
  lambdaLogitParts,
  packHeads,
  type PackedLinear,
} from '../../shaders/heads';
import * as ops from '../../tests/reference/ops';
import { mulberry32 as rng } from '../../tests/reference/random';

export interface KernelComparison {
  /** max |gpu - ref| */
  maxAbs: number;
  /** max |gpu - ref| / max |ref| */
  maxRel: number;
  /** For f16 weights: the same against a reference that used the unrounded f32 weights. */
  unroundedMaxRel?: number;
  /** Which code path ran (e.g. 'gemv', 'vec4'). */
  path: string;
  /** Wall time of the whole case (pipeline compilation included when not cached), ms. */
  ms: number;
  adapter: string;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function randomArray(next: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

/** A random nn.Linear [n, k] scaled for k inputs (weights ±2/√k, biases ±0.5). */
function randomLinear(next: () => number, n: number, k: number): LinearWeights {
  return {
    weight: { shape: [n, k], data: randomArray(next, n * k, 2 / Math.sqrt(k)) },
    bias: { shape: [n], data: randomArray(next, n, 0.5) },
  };
}

/**
 * `values` (rows × width) as `splits` random split-K slices, `stride` apart (NaN between), whose sum
 * plus the per-column `bias` gives the values again: the input of an add+LayerNorm after split-K.
 */
function splitIntoSlices(
  next: () => number,
  values: Float32Array,
  bias: Float32Array,
  splits: number,
  stride: number,
): Float32Array {
  const width = bias.length;
  const slices = new Float32Array(splits * stride).fill(NaN);
  for (let i = 0; i < values.length; i++) {
    let rest = values[i]! - bias[i % width]!;
    for (let s = 0; s < splits - 1; s++) {
      const part = Math.fround(next() * 2 - 1);
      slices[s * stride + i] = part;
      rest -= part;
    }
    slices[(splits - 1) * stride + i] = rest;
  }
  return slices;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Rounds an f32 to the nearest f16 (ties to even) and returns its bits. */
function toHalfBits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function roundToHalf(data: Float32Array): Float32Array {
  return data.map((v) => halfBitsToFloat(toHalfBits(v)));
}

let gpuPromise: Promise<GpuContext> | null = null;

/** One device per page: creating devices per test is slow on software adapters. */
async function gpu(): Promise<GpuContext> {
  gpuPromise ??= requestGpu();
  return gpuPromise;
}

async function deviceFor(dtype: WeightDtype): Promise<{ device: GPUDevice; adapter: string }> {
  const ctx = await gpu();
  if (dtype === 'f16' && !ctx.adapter.hasShaderF16) {
    throw new PonderError('unsupported-config', `The adapter (${ctx.adapter.description}) has no shader-f16`);
  }
  const a = ctx.adapter;
  return { device: ctx.device, adapter: `${a.vendor} ${a.architecture} ${a.description}`.trim() };
}

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

function upload(device: GPUDevice, data: Float32Array | Uint32Array | Uint16Array, label: string): GPUBuffer {
  // Storage buffers are sized to whole 4-byte words (f16 data of odd length is padded).
  const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
  const buffer = device.createBuffer({ label, size, usage: STORAGE, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buffer.unmap();
  return buffer;
}

/** Uploads a weight matrix in the given dtype; returns the buffer and the values the GPU sees. */
function uploadWeight(
  device: GPUDevice,
  data: Float32Array,
  dtype: WeightDtype,
  label: string,
): { buffer: GPUBuffer; seen: Float32Array } {
  if (dtype === 'f32') return { buffer: upload(device, data, label), seen: data };
  const bits = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) bits[i] = toHalfBits(data[i]!);
  return { buffer: upload(device, bits, label), seen: roundToHalf(data) };
}

function emptyBuffer(device: GPUDevice, floats: number, label: string, fill = NaN): GPUBuffer {
  // Filled with NaN so that an element the kernel forgets to write fails the comparison.
  return upload(device, new Float32Array(Math.max(1, floats)).fill(fill), label);
}

async function runAndRead(
  device: GPUDevice,
  dispatches: KernelDispatch[],
  output: GPUBuffer,
  floats: number,
): Promise<Float32Array> {
  const staging = device.createBuffer({
    size: floats * 4,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  device.pushErrorScope('validation');
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  encodeDispatches(pass, dispatches);
  pass.end();
  encoder.copyBufferToBuffer(output, 0, staging, 0, floats * 4);
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new PonderError('gpu-error', `validation error: ${error.message}`);
  await staging.mapAsync(GPUMapMode.READ);
  const result = new Float32Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return result;
}

function destroy(...buffers: GPUBuffer[]): void {
  for (const b of buffers) b.destroy();
}

// ---------------------------------------------------------------------------------------------
// Matmul

export interface MatmulCase {
  M: number;
  N: number;
  K: number;
  activation: Activation;
  dtype?: WeightDtype;
  inputRowStride?: number;
  outputOffset?: number;
  inputOffset?: number;
  /** Non-default tile sizes (override constants) and path thresholds. */
  tiles?: Partial<MatmulTiles>;
  /**
   * How to run it: `prepare` (one dispatch, the default), `auto` (prepareAuto: split-K where the
   * tiles say so) or a number: that many K splits, summed by prepareReduce.
   */
  mode?: 'prepare' | 'auto' | number;
  seed?: number;
}

const matmulKernels = new Map<string, MatmulKernel>();

/** 'vec4', 'vec4-out4' or 'scalar': which matmul.wgsl variant a pipeline label names. */
function variantOf(pipelineLabel: string): string {
  if (!pipelineLabel.includes('-vec4')) return 'scalar';
  return pipelineLabel.includes('-out4') ? 'vec4-out4' : 'vec4';
}

export async function testMatmul(c: MatmulCase): Promise<KernelComparison> {
  const start = performance.now();
  const dtype = c.dtype ?? 'f32';
  const { device, adapter } = await deviceFor(dtype);
  const { M, N, K } = c;
  const stride = c.inputRowStride ?? K;
  const offset = c.outputOffset ?? 0;
  const inOffset = c.inputOffset ?? 0;
  const next = rng(c.seed ?? 1);
  const xAll = randomArray(next, inOffset + (M - 1) * stride + K);
  const x = xAll.subarray(inOffset);
  // Scaled like trained weights so that activations land in their interesting range.
  const w = randomArray(next, N * K, 2 / Math.sqrt(K));
  const b = randomArray(next, N, 0.5);

  const key = `${dtype}-${c.activation}-${JSON.stringify(c.tiles ?? {})}`;
  // Pipelines are compiled once per variant, as the engine does (compiling is slow on SwiftShader).
  let kernel = matmulKernels.get(key);
  if (!kernel) {
    kernel = await MatmulKernel.create(device, {
      weightDtype: dtype,
      activation: c.activation,
      tiles: c.tiles,
    });
    matmulKernels.set(key, kernel);
  }
  const input = upload(device, xAll, 'x');
  const weight = uploadWeight(device, w, dtype, 'w');
  const bias = upload(device, b, 'b');
  const output = emptyBuffer(device, offset + M * N, 'y');
  const shape = { M, N, K, inputRowStride: stride, outputOffset: offset, inputOffset: inOffset };
  const args = { input, weight: weight.buffer, bias, output };
  const mode = c.mode ?? 'prepare';
  let dispatches = [kernel.prepare(args, shape)];
  let scratch: GPUBuffer | null = null;
  if (mode === 'auto') {
    ({ dispatches, scratch } = kernel.prepareAuto(args, shape));
  } else if (typeof mode === 'number') {
    // The scratch starts as NaN, so a partial sum that no split writes shows up in the result.
    scratch = emptyBuffer(device, mode * M * N, 'partials');
    dispatches = [
      kernel.preparePartials(
        { input, weight: weight.buffer, partials: scratch },
        { ...shape, outputOffset: 0 },
        mode,
      ),
      kernel.prepareReduce({ partials: scratch, bias, output }, { M, N, outputOffset: offset }, mode),
    ];
  }
  const got = await runAndRead(device, dispatches, output, offset + M * N);
  destroy(input, weight.buffer, bias, output, ...(scratch ? [scratch] : []));

  // The words before outputOffset must be untouched (still NaN).
  for (let i = 0; i < offset; i++) {
    if (!Number.isNaN(got[i]!)) throw new Error(`matmul wrote before outputOffset at ${i}`);
  }
  const y = got.subarray(offset);
  const expected = ops.linear(x, weight.seen, b, M, N, K, c.activation, stride);
  const result: KernelComparison = {
    ...ops.compare(y, expected),
    ms: performance.now() - start,
    // The variant from the first dispatch's pipeline label (matmul-f32-vec4-out4-block, …).
    path: `${dispatches.map((d) => d.label.replace(/^matmul-\w+-\w+-[\dx]+/, '') || '-tiled').join('')}${M <= GEMV_MAX_M && mode === 'prepare' ? ' (gemv)' : ''}-${variantOf(dispatches[0]!.pipeline.label)}`,
    adapter,
  };
  if (dtype === 'f16')
    result.unroundedMaxRel = ops.compare(y, ops.linear(x, w, b, M, N, K, c.activation, stride)).maxRel;
  return result;
}

export interface ActivationSweep {
  /** max over x of |gpu - ref| / max(1, |ref|): absolute error near zero, relative error beyond. */
  maxErr: number;
  worstX: number;
  points: number;
}

/**
 * The matmul epilogue's activation alone, on x from -lim to lim: a [points, 1] x [1, 1] product with
 * weight 1 and bias 0 gives act(x) exactly, so the tails of the erf/tanh approximations are checked.
 */
export async function testActivationSweep(
  activation: Activation,
  lim = 12,
  points = 481,
): Promise<ActivationSweep> {
  const { device } = await deviceFor('f32');
  const x = new Float32Array(points).map((_, i) => -lim + (2 * lim * i) / (points - 1));
  const kernel = await MatmulKernel.create(device, {
    weightDtype: 'f32',
    activation,
    paths: { vec4: false, gemv: false },
  });
  const input = upload(device, x, 'x');
  const weight = upload(device, new Float32Array([1]), 'w');
  const bias = upload(device, new Float32Array([0]), 'b');
  const output = emptyBuffer(device, points, 'y');
  const dispatch = kernel.prepare({ input, weight, bias, output }, { M: points, N: 1, K: 1 });
  const got = await runAndRead(device, [dispatch], output, points);
  destroy(input, weight, bias, output);
  let maxErr = 0;
  let worstX = 0;
  x.forEach((v, i) => {
    const ref = Math.fround(ops.activate(v, activation));
    const err = Math.abs(got[i]! - ref) / Math.max(1, Math.abs(ref));
    if (!(err <= maxErr)) {
      maxErr = Number.isNaN(err) ? Infinity : err;
      worstX = v;
    }
  });
  return { maxErr, worstX, points };
}

// ---------------------------------------------------------------------------------------------
// Attention

export interface AttentionCase {
  seqLen: number;
  heads: number;
  headDim: number;
  /** Real tokens per sequence (the rest is padding); its length is the batch size. */
  lengths: number[];
  /** Scale of the random q/k values (larger means peakier softmax). */
  scale?: number;
  /** The entry point (default: what the kernel picks for the length). */
  path?: AttentionPath;
  seed?: number;
  /** Invocations of a `rows` workgroup (default 128). */
  rowsThreads?: RowsThreads;
  /**
   * `rows` with the output projection folded in (prepareProjected): the heads' slices, summed here,
   * are checked against context · Woᵀ for a random Wo.
   */
  projected?: boolean;
  /** With `projected`: workgroups a block of queries (prepareProjected's `parts`; default its own). */
  projectionParts?: number;
}

// By rows workgroup size.
const attentionKernels = new Map<RowsThreads, Promise<AttentionKernel>>();
const projectedKernels = new Map<RowsThreads, Promise<AttentionKernel>>();

function cachedKernel(
  cache: Map<RowsThreads, Promise<AttentionKernel>>,
  rowsThreads: RowsThreads,
  create: () => Promise<AttentionKernel>,
): Promise<AttentionKernel> {
  let kernel = cache.get(rowsThreads);
  if (!kernel) {
    kernel = create();
    cache.set(rowsThreads, kernel);
  }
  return kernel;
}

export async function testAttention(c: AttentionCase): Promise<KernelComparison> {
  const start = performance.now();
  const { device, adapter } = await deviceFor('f32');
  const { seqLen, heads, headDim } = c;
  const rowsThreads = c.rowsThreads ?? 128;
  const batch = c.lengths.length;
  const H = heads * headDim;
  const next = rng(c.seed ?? 2);
  const qkvData = randomArray(next, batch * seqLen * 3 * H, c.scale ?? 2);
  const maskData = new Uint32Array(batch * seqLen);
  c.lengths.forEach((len, b) => {
    for (let t = 0; t < Math.min(len, seqLen); t++) maskData[b * seqLen + t] = 1;
  });

  const qkv = upload(device, qkvData, 'qkv');
  const mask = upload(device, maskData, 'mask');
  if (c.projected) {
    const kernel = await cachedKernel(projectedKernels, rowsThreads, () =>
      AttentionKernel.create(device, undefined, ['rows'], { projection: 'f32', rowsThreads }),
    );
    const rows = batch * seqLen;
    const wo = randomArray(next, H * H, 1 / Math.sqrt(H));
    const woT = new Float32Array(H * H);
    for (let n = 0; n < H; n++) for (let k = 0; k < H; k++) woT[k * H + n] = wo[n * H + k]!;
    const weight = upload(device, woT, 'woT');
    // NaN-filled, so that a slice element no workgroup writes fails the comparison.
    const slices = emptyBuffer(device, heads * rows * H, 'slices');
    const dispatch = kernel.prepareProjected(
      { qkv, mask, weight, output: slices },
      { batch, seqLen, heads, headDim },
      c.projectionParts,
    );
    const got = await runAndRead(device, [dispatch], slices, heads * rows * H);
    destroy(qkv, mask, weight, slices);
    const summed = new Float32Array(rows * H);
    for (let h = 0; h < heads; h++) for (let i = 0; i < rows * H; i++) summed[i]! += got[h * rows * H + i]!;
    const context = ops.attention(qkvData, maskData, batch, seqLen, heads, headDim);
    const expected = ops.linear(context, wo, new Float32Array(H), rows, H, H, 'none');
    return {
      ...ops.compare(summed, expected),
      path: dispatch.label.split('-').slice(1, 3).join('-'),
      adapter,
      ms: performance.now() - start,
    };
  }
  const kernel = await cachedKernel(attentionKernels, rowsThreads, () =>
    AttentionKernel.create(device, undefined, undefined, { rowsThreads }),
  );
  const output = emptyBuffer(device, batch * seqLen * H, 'ctx');
  const shape = { batch, seqLen, heads, headDim };
  const dispatch = kernel.prepare({ qkv, mask, output }, shape, c.path && attentionPathFor(shape, c.path));
  const got = await runAndRead(device, [dispatch], output, batch * seqLen * H);
  destroy(qkv, mask, output);
  const expected = ops.attention(qkvData, maskData, batch, seqLen, heads, headDim);
  const path = dispatch.label.split('-')[1]!;
  return { ...ops.compare(got, expected), path, adapter, ms: performance.now() - start };
}

// ---------------------------------------------------------------------------------------------
// Residual add + LayerNorm

export interface LayerNormCase {
  rows: number;
  width: number;
  eps?: number;
  /** Added to every input value: a large mean tests the variance computation. */
  offset?: number;
  /** The input as this many split-K partial sums (slices `rows·width + sliceGap` apart) plus a bias. */
  splits?: number;
  /** Elements between one slice's end and the next one's start (default 3: misaligned for vec4). */
  sliceGap?: number;
  seed?: number;
}

export async function testAddLayerNorm(c: LayerNormCase): Promise<KernelComparison> {
  const start = performance.now();
  const { device, adapter } = await deviceFor('f32');
  const { rows, width } = c;
  const eps = c.eps ?? 1e-12;
  const next = rng(c.seed ?? 3);
  const a = randomArray(next, rows * width, 3).map((v) => v + (c.offset ?? 0));
  const r = randomArray(next, rows * width, 1);
  const g = randomArray(next, width, 1).map((v) => 1 + 0.5 * v);
  const be = randomArray(next, width, 0.5);

  const kernel = await AddLayerNormKernel.create(device);
  const residual = upload(device, r, 'residual');
  const gamma = upload(device, g, 'gamma');
  const beta = upload(device, be, 'beta');
  const output = emptyBuffer(device, rows * width, 'out');
  let input: GPUBuffer;
  let bias: GPUBuffer | undefined;
  let dispatch: KernelDispatch;
  if (c.splits) {
    // `a` is split into random slices whose sum (plus the bias) is a again.
    const stride = rows * width + (c.sliceGap ?? 3);
    const biasData = randomArray(next, width, 0.5);
    const slices = splitIntoSlices(next, a, biasData, c.splits, stride);
    input = upload(device, slices, 'partials');
    bias = upload(device, biasData, 'bias');
    dispatch = kernel.prepare(
      { input, residual, gamma, beta, output, bias },
      { rows, width, eps, splits: c.splits, partialStride: stride },
    );
  } else {
    input = upload(device, a, 'input');
    dispatch = kernel.prepare({ input, residual, gamma, beta, output }, { rows, width, eps });
  }
  const got = await runAndRead(device, [dispatch], output, rows * width);
  destroy(input, residual, gamma, beta, output, ...(bias ? [bias] : []));
  const expected = ops.addLayerNorm(a, r, g, be, rows, width, eps);
  // The label names the variant (add-layernorm-vec4-… or add-layernorm-…).
  const variant = dispatch.label.startsWith('add-layernorm-vec4') ? 'vec4' : 'scalar';
  const path = `${variant} row${c.splits ? `, ${c.splits} partial sums + bias` : ''}`;
  return { ...ops.compare(got, expected), path, adapter, ms: performance.now() - start };
}

// ---------------------------------------------------------------------------------------------
// The last add+LayerNorm with the heads' pooler (and classifier) folded in (batch 1)

export interface PooledLayerNormCase {
  rows: number;
  width: number;
  /** The input as this many split-K partial sums plus the bias (else one input, no bias). */
  splits?: number;
  /** Classes of the folded classifier; 0: the pooler alone. */
  classes: number;
  dtype?: WeightDtype;
  seed?: number;
}

const pooledNormKernels = new Map<WeightDtype, Promise<AddLayerNormKernel>>();

/**
 * preparePooled against the CPU reference: every row's LayerNorm, z = tanh(Wp · h_0 + bp) at the
 * pooled offset (the words around it untouched), and the classifier's partial logits summed (as
 * decide does), against Wc · z + bc. The pooler and classifier sit at offsets inside packed
 * head buffers, after another matrix, as packHeads places them.
 */
export async function testPooledLayerNorm(c: PooledLayerNormCase): Promise<KernelComparison> {
  const start = performance.now();
  const dtype = c.dtype ?? 'f32';
  const { device, adapter } = await deviceFor(dtype);
  const { rows, width: H, classes: C } = c;
  const eps = 1e-12;
  const next = rng(c.seed ?? 11);
  const linear = (n: number, k: number) => randomLinear(next, n, k);
  // A λ layer first, so that the pooler does not start at offset 0 of the packed buffers.
  const packed = packHeads({
    pooler: linear(H, H),
    ...(C > 0 ? { classifier: linear(C, H) } : {}),
    lambda: [linear(3, 5), linear(1, 3)],
  });
  const { layout } = packed;
  const x = randomArray(next, rows * H, 3);
  const r = randomArray(next, rows * H, 1);
  const g = randomArray(next, H, 1).map((v) => 1 + 0.5 * v);
  const be = randomArray(next, H, 0.5);
  const biasData = randomArray(next, H, 0.5);
  const splits = c.splits ?? 1;
  const stride = rows * H + 4;
  const inputData = splits > 1 ? splitIntoSlices(next, x, biasData, splits, stride) : x;
  const normData = new Float32Array(3 * H);
  normData.set(splits > 1 ? biasData : new Float32Array(H).fill(NaN), 0);
  normData.set(g, H);
  normData.set(be, 2 * H);

  let kernelPromise = pooledNormKernels.get(dtype);
  if (!kernelPromise) {
    kernelPromise = AddLayerNormKernel.create(device, { pool: dtype });
    pooledNormKernels.set(dtype, kernelPromise);
  }
  const kernel = await kernelPromise;
  const headWeights = uploadWeight(device, packed.weights, dtype, 'headWeights');
  const headBiases = upload(device, packed.biases, 'headBiases');
  const input = upload(device, inputData, 'input');
  const residual = upload(device, r, 'residual');
  const norm = upload(device, normData, 'norm');
  const output = emptyBuffer(device, rows * H, 'out');
  // z lands at depth 2 of 4 (its neighbours must stay NaN); the partial logits after 7 other words.
  const pooledOffset = 2 * H;
  const pooled = emptyBuffer(device, 4 * H, 'pooled');
  const blocks = poolerBlocks(H, kernel.poolColumns);
  const partsAt = 7;
  const scratch = emptyBuffer(device, partsAt + blocks * Math.max(C, 1) + 5, 'scratch');
  const dispatch = kernel.preparePooled(
    { input, residual, norm, hasBias: splits > 1, output },
    { rows, width: H, eps, ...(splits > 1 ? { splits, partialStride: stride } : {}) },
    {
      headWeights: headWeights.buffer,
      headBiases,
      poolerWeight: layout.pooler.weight,
      poolerBias: layout.pooler.bias,
      pooled,
      pooledOffset,
      scratch,
      ...(C > 0
        ? {
            classifier: {
              weight: layout.classifier!.weight,
              bias: layout.classifier!.bias,
              classes: C,
              partsAt,
            },
          }
        : {}),
    },
  );
  const gotRows = await runAndRead(device, [dispatch], output, rows * H);
  const gotPooled = await runAndRead(device, [], pooled, 4 * H);
  const gotScratch = await runAndRead(device, [], scratch, partsAt + blocks * Math.max(C, 1) + 5);
  destroy(headWeights.buffer, headBiases, input, residual, norm, output, pooled, scratch);

  const expectedRows = ops.addLayerNorm(x, r, g, be, rows, H, eps);
  const parts: string[] = [];
  const reference = (source: Float32Array) => {
    const weightsOf = (p: PackedLinear) => source.subarray(p.weight, p.weight + p.outFeatures * p.inFeatures);
    const biasOf = (p: PackedLinear) => packed.biases.subarray(p.bias, p.bias + p.outFeatures);
    const z = ops.linear(
      expectedRows.subarray(0, H),
      weightsOf(layout.pooler),
      biasOf(layout.pooler),
      1,
      H,
      H,
      'tanh',
    );
    const results = [
      ['rows', ops.compare(gotRows, expectedRows)],
      ['z', ops.compare(gotPooled.subarray(pooledOffset, pooledOffset + H), z)],
    ] as [string, ReturnType<typeof ops.compare>][];
    if (C > 0) {
      const cl = layout.classifier!;
      const logits = ops.linear(z, weightsOf(cl), biasOf(cl), 1, C, H, 'none');
      const summed = new Float32Array(C);
      for (let p = 0; p < blocks; p++)
        for (let k = 0; k < C; k++) summed[k]! += gotScratch[partsAt + p * C + k]!;
      results.push(['logits', ops.compare(summed, logits)]);
    }
    return results;
  };
  const results = reference(headWeights.seen);
  for (const [name, res] of results) parts.push(`${name} ${res.maxRel.toExponential(1)}`);
  // Nothing written outside z and the partial sums.
  const around = [...gotPooled.subarray(0, pooledOffset), ...gotPooled.subarray(pooledOffset + H)];
  const scratchAround = [...gotScratch.subarray(0, partsAt), ...gotScratch.subarray(partsAt + blocks * C)];
  const untouched = [...around, ...scratchAround].every((v) => Number.isNaN(v));
  const result: KernelComparison = {
    maxAbs: Math.max(...results.map(([, res]) => res.maxAbs)),
    maxRel: untouched ? Math.max(...results.map(([, res]) => res.maxRel)) : Infinity,
    path: `${dispatch.label}: ${blocks} pooler blocks of ${kernel.poolColumns}; ${parts.join(', ')}${untouched ? '' : '; WROTE OUTSIDE z / the partial sums'}`,
    adapter,
    ms: performance.now() - start,
  };
  if (dtype === 'f16') {
    const unrounded = reference(packed.weights);
    result.unroundedMaxRel = Math.max(...unrounded.map(([, res]) => res.maxRel));
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Embeddings

export interface EmbeddingCase {
  batch: number;
  seqLen: number;
  width: number;
  vocabSize: number;
  maxPositions: number;
  typeVocabSize: number;
  /** Put some ids past the vocabulary / type vocabulary to check that they are clamped. */
  outOfRangeIds?: boolean;
  dtype?: WeightDtype;
  eps?: number;
  seed?: number;
}

export async function testEmbeddings(c: EmbeddingCase): Promise<KernelComparison> {
  const start = performance.now();
  const dtype = c.dtype ?? 'f32';
  const { device, adapter } = await deviceFor(dtype);
  const { batch, seqLen, width, vocabSize, typeVocabSize } = c;
  const rows = batch * seqLen;
  const eps = c.eps ?? 1e-12;
  const next = rng(c.seed ?? 4);
  const ids = new Uint32Array(rows);
  const types = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) {
    ids[i] = Math.floor(next() * vocabSize);
    types[i] = Math.floor(next() * typeVocabSize);
  }
  if (c.outOfRangeIds) {
    ids[0] = vocabSize;
    ids[rows - 1] = 0xffffffff;
    types[Math.floor(rows / 2)] = typeVocabSize + 3;
  }
  const wordData = randomArray(next, vocabSize * width);
  const posData = randomArray(next, c.maxPositions * width, 0.5);
  const typeData = randomArray(next, typeVocabSize * width, 0.5);
  const g = randomArray(next, width, 1).map((v) => 1 + 0.5 * v);
  const be = randomArray(next, width, 0.5);

  const kernel = await EmbeddingKernel.create(device, dtype);
  const word = uploadWeight(device, wordData, dtype, 'word');
  const position = uploadWeight(device, posData, dtype, 'position');
  const tokenType = uploadWeight(device, typeData, dtype, 'tokenType');
  const tokenIds = upload(device, ids, 'ids');
  const tokenTypeIds = upload(device, types, 'types');
  const gamma = upload(device, g, 'gamma');
  const beta = upload(device, be, 'beta');
  const output = emptyBuffer(device, rows * width, 'out');
  const dispatch = kernel.prepare(
    {
      tokenIds,
      tokenTypeIds,
      word: word.buffer,
      position: position.buffer,
      tokenType: tokenType.buffer,
      gamma,
      beta,
      output,
    },
    { rows, seqLen, width, eps, vocabSize, typeVocabSize },
  );
  const got = await runAndRead(device, [dispatch], output, rows * width);
  destroy(tokenIds, tokenTypeIds, word.buffer, position.buffer, tokenType.buffer, gamma, beta, output);

  // The reference indexes tables directly; clamp the ids the way the kernel's contract says.
  const clampedIds = ids.map((v) => Math.min(v, vocabSize - 1));
  const clampedTypes = types.map((v) => Math.min(v, typeVocabSize - 1));
  const reference = (wd: Float32Array, pd: Float32Array, td: Float32Array) =>
    ops.embed(clampedIds, clampedTypes, wd, pd, td, g, be, rows, seqLen, width, eps);
  const result: KernelComparison = {
    ...ops.compare(got, reference(word.seen, position.seen, tokenType.seen)),
    path: 'row',
    adapter,
    ms: performance.now() - start,
  };
  if (dtype === 'f16')
    result.unroundedMaxRel = ops.compare(got, reference(wordData, posData, typeData)).maxRel;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Heads (pooler, classifier, per-layer head, λ MLP): one dispatch per stage group

export interface HeadsCase {
  batch: number;
  seqLen: number;
  hidden: number;
  labels: number;
  numLayers: number;
  /** The depth whose heads run (> 0: the λ cat input reads the previous depth's z). */
  depth: number;
  perLayerHeads?: boolean;
  /** The λ MLP: its input and its number of Linear(w → w) + tanh blocks before Linear(w → 1). */
  lambda?: { input: 'cat' | 'current'; hiddenLayers: number };
  /** The slot each slot's example had at the previous depth (default: reversed order). */
  prevSlots?: readonly number[];
  dtype?: WeightDtype;
  seed?: number;
}

const headsKernels = new Map<WeightDtype, Promise<HeadsKernel>>();

export async function testHeads(c: HeadsCase): Promise<KernelComparison> {
  const start = performance.now();
  const dtype = c.dtype ?? 'f32';
  const { device, adapter } = await deviceFor(dtype);
  const { batch, seqLen, hidden: H, labels: C, numLayers: L, depth } = c;
  const next = rng(c.seed ?? 5);
  const linear = (n: number, k: number) => randomLinear(next, n, k);
  const w = c.lambda?.input === 'cat' ? 2 * H : H;
  const parts = {
    pooler: linear(H, H),
    classifier: linear(C, H),
    ...(c.perLayerHeads ? { heads: Array.from({ length: L }, () => linear(C, H)) } : {}),
    ...(c.lambda
      ? {
          lambda: [...Array.from({ length: c.lambda.hiddenLayers }, () => linear(w, w)), linear(1, w)],
        }
      : {}),
  };
  const packed = packHeads(parts);
  const { layout } = packed;
  const hiddenData = randomArray(next, batch * seqLen * H);
  // The previous depth's z rows (read through the slot map); every other word starts as NaN.
  const pooledData = new Float32Array(L * batch * H).fill(NaN);
  if (depth > 0) pooledData.set(randomArray(next, batch * H), (depth - 1) * batch * H);
  const prevSlots = c.prevSlots ?? Array.from({ length: batch }, (_, b) => batch - 1 - b);
  const countersData = new Uint32Array(3 * L + batch);
  countersData.set(prevSlots, 3 * L);
  // As plan.ts lays out `scratch`: λ logits [L][batch], heads [L][batch][C], λ hidden per slot,
  // then the λ logit's partial sums per slot (the output layer folded into the last hidden one).
  const headOffset = L * batch;
  const hiddenAt = L * batch * (1 + C);
  const partsAt = hiddenAt + batch * lambdaHiddenFloats(layout);
  const lambdaParts = lambdaLogitParts(layout);
  const lambdaAt = lambdaFolded(layout) ? partsAt : depth * batch;
  const scratchFloats = partsAt + (lambdaFolded(layout) ? batch * lambdaParts : 0);

  let kernelPromise = headsKernels.get(dtype);
  if (!kernelPromise) {
    kernelPromise = HeadsKernel.create(device, dtype);
    headsKernels.set(dtype, kernelPromise);
  }
  const kernel = await kernelPromise;
  const weights = uploadWeight(device, packed.weights, dtype, 'headWeights');
  const biases = upload(device, packed.biases, 'headBiases');
  const hidden = upload(device, hiddenData, 'hidden');
  const pooled = upload(device, pooledData, 'pooled');
  const logits = emptyBuffer(device, L * batch * C, 'logits');
  const scratch = emptyBuffer(device, scratchFloats, 'scratch');
  const counters = upload(device, countersData, 'counters');
  const dispatches = kernel.prepare(
    { weights: weights.buffer, biases, hidden, pooled, logits, scratch, counters },
    layout,
    {
      batch,
      rowStride: seqLen * H,
      pooledOffset: depth * batch * H,
      logitsOffset: depth * batch * C,
      ...(c.perLayerHeads ? { head: { index: depth, offset: headOffset + depth * batch * C } } : {}),
      ...(c.lambda
        ? {
            lambda: {
              offset: lambdaAt,
              hiddenOffset: hiddenAt,
              prevSlots: 3 * L,
              ...(depth > 0 ? { prevOffset: (depth - 1) * batch * H } : {}),
            },
          }
        : {}),
    },
  );
  const gotPooled = await runAndRead(device, dispatches, pooled, L * batch * H);
  const gotLogits = await runAndRead(device, [], logits, L * batch * C);
  const gotScratch = await runAndRead(device, [], scratch, scratchFloats);
  destroy(weights.buffer, biases, hidden, pooled, logits, scratch, counters);

  // The CPU reference, slot by slot, with the weights as the GPU sees them (f16: rounded).
  const seen = (p: PackedLinear, source: Float32Array) => ({
    w: source.subarray(p.weight, p.weight + p.outFeatures * p.inFeatures),
    b: packed.biases.subarray(p.bias, p.bias + p.outFeatures),
  });
  const apply = (p: PackedLinear, x: Float32Array, act: Activation, source = weights.seen) => {
    const { w: wm, b } = seen(p, source);
    return ops.linear(x, wm, b, 1, p.outFeatures, p.inFeatures, act);
  };
  const reference = (source: Float32Array) => {
    const parts: { name: string; got: number[]; want: number[] }[] = [];
    const add = (name: string, got: Float32Array, want: Float32Array) => {
      let part = parts.find((p) => p.name === name);
      if (!part) parts.push((part = { name, got: [], want: [] }));
      part.got.push(...got);
      part.want.push(...want);
    };
    for (let b = 0; b < batch; b++) {
      const h = hiddenData.subarray(b * seqLen * H, b * seqLen * H + H);
      const z = apply(layout.pooler, h, 'tanh', source);
      add('z', gotPooled.subarray((depth * batch + b) * H, (depth * batch + b + 1) * H), z);
      const at = (depth * batch + b) * C;
      add('logits', gotLogits.subarray(at, at + C), apply(layout.classifier!, z, 'none', source));
      if (layout.heads) {
        const got = gotScratch.subarray(headOffset + at, headOffset + at + C);
        add('head', got, apply(layout.heads[depth]!, z, 'none', source));
      }
      if (layout.lambda) {
        let x = z;
        if (w === 2 * H) {
          x = new Float32Array(2 * H);
          x.set(z);
          const prev = (depth - 1) * batch * H + prevSlots[b]! * H;
          if (depth > 0) x.set(pooledData.subarray(prev, prev + H), H);
        }
        layout.lambda.forEach((l, i) => {
          x = apply(l, x, i === layout.lambda!.length - 1 ? 'none' : 'tanh', source);
        });
        // The logit as decide (exit.wgsl) gets it: the slot's partial sums added up.
        const logitParts = gotScratch.subarray(lambdaAt + b * lambdaParts, lambdaAt + (b + 1) * lambdaParts);
        add('lambda', new Float32Array([logitParts.reduce((sum, v) => sum + v, 0)]), x);
      }
    }
    // The worst part, each relative to its own scale.
    const results = parts.map((p) => ops.compare(p.got, p.want));
    return {
      maxAbs: Math.max(...results.map((r) => r.maxAbs)),
      maxRel: Math.max(...results.map((r) => r.maxRel)),
      parts: parts.map((p, i) => `${p.name} ${results[i]!.maxRel.toExponential(1)}`).join(', '),
    };
  };
  const r = reference(weights.seen);
  const result: KernelComparison = {
    maxAbs: r.maxAbs,
    maxRel: r.maxRel,
    path: `${H % 4 === 0 ? 'vec4' : 'scalar'}, ${dispatches.length} dispatches: ${r.parts}`,
    adapter,
    ms: performance.now() - start,
  };
  if (dtype === 'f16') result.unroundedMaxRel = reference(packed.weights).maxRel;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Exit gate

export interface ExitGateResult {
  kernel: string;
  /** Shut gate (word 5 set): the output still holds its NaN fill everywhere. */
  shutUntouched: boolean;
  /** Open gate: every output element written (finite). */
  openWrote: boolean;
}

/**
 * Every gated entry point (shaders/kernel.ts exit gate) once behind a shut gate and once behind the
 * open one: shut, it must return before writing anything; open, it computes as usual.
 */
export async function testExitGate(): Promise<ExitGateResult[]> {
  const { device } = await deviceFor('f32');
  const shutWords = new Uint32Array(8);
  shutWords[5] = 2; // exitLayer of example 0
  const shutBuffer = device.createBuffer({
    label: 'shut-gate',
    size: shutWords.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(shutBuffer, 0, shutWords);
  const shut: GPUBufferBinding = { buffer: shutBuffer, offset: 0, size: shutWords.byteLength };
  const next = rng(11);
  const results: ExitGateResult[] = [];
  const owned: GPUBuffer[] = [shutBuffer];
  const data = (n: number) => {
    const b = upload(device, randomArray(next, n, 1), 'data');
    owned.push(b);
    return b;
  };
  /** `make(gate)` builds the dispatches writing `floats` elements of the buffer it returns. */
  const check = async (
    kernel: string,
    floats: number,
    make: (output: GPUBuffer, gate?: GPUBufferBinding) => KernelDispatch[],
  ) => {
    const read = async (gate?: GPUBufferBinding) => {
      const output = emptyBuffer(device, floats, `${kernel}-out`);
      owned.push(output);
      return runAndRead(device, make(output, gate), output, floats);
    };
    const closed = await read(shut);
    const open = await read();
    results.push({
      kernel,
      shutUntouched: closed.every((x) => Number.isNaN(x)),
      openWrote: open.every((x) => Number.isFinite(x)),
    });
  };

  const matmul = await MatmulKernel.create(device, { weightDtype: 'f32', activation: 'none' });
  const large = await MatmulKernel.create(device, {
    weightDtype: 'f32',
    activation: 'none',
    tiles: { largeMinWorkgroups: 1 },
  });
  for (const [name, kernel, M] of [
    ['matmul tiled', matmul, 37],
    ['matmul gemv', matmul, 3],
    ['matmul large', large, 130],
  ] as const) {
    const [N, K] = [40, 64];
    const input = data(M * K);
    const weight = data(N * K);
    const bias = data(N);
    await check(name, M * N, (output, gate) => [
      kernel.prepare({ input, weight, bias, output, ...(gate ? { gate } : {}) }, { M, N, K }),
    ]);
  }
  {
    const [M, N, K, splits] = [20, 40, 64, 3];
    const input = data(M * K);
    const weight = data(N * K);
    const bias = data(N);
    await check('matmul split-K partials', splits * M * N, (partials, gate) => [
      matmul.preparePartials({ input, weight, partials, ...(gate ? { gate } : {}) }, { M, N, K }, splits),
    ]);
    const partials = data(splits * M * N);
    await check('matmul split-K reduction', M * N, (output, gate) => [
      matmul.prepareReduce({ partials, bias, output, ...(gate ? { gate } : {}) }, { M, N }, splits),
    ]);
  }
  const attention = await AttentionKernel.create(device);
  for (const path of ['short', 'rows', 'flash'] as const) {
    const shape = { batch: 1, seqLen: 9, heads: 2, headDim: 8 };
    const qkv = data(9 * 3 * 16);
    const mask = upload(device, new Uint32Array(9).fill(1), 'mask');
    owned.push(mask);
    await check(`attention ${path}`, 9 * 16, (output, gate) => [
      attention.prepare({ qkv, mask, output, ...(gate ? { gate } : {}) }, shape, path),
    ]);
  }
  const layerNorm = await AddLayerNormKernel.create(device);
  for (const width of [132, 130]) {
    const rows = 3;
    const input = data(rows * width);
    const residual = data(rows * width);
    const gamma = data(width);
    const beta = data(width);
    await check(`add-layernorm width ${width}`, rows * width, (output, gate) => [
      layerNorm.prepare(
        { input, residual, gamma, beta, output, ...(gate ? { gate } : {}) },
        { rows, width, eps: 1e-12 },
      ),
    ]);
  }
  {
    // The pooler fold: behind a shut gate neither the rows nor z (checked here) are written.
    const pooledNorm = await AddLayerNormKernel.create(device, { pool: 'f32' });
    const [rows, width] = [3, 132];
    const input = data(rows * width);
    const residual = data(rows * width);
    const norm = data(3 * width);
    const headWeights = data(width * width);
    const headBiases = data(width);
    const scratch = data(16);
    const rowsOut = emptyBuffer(device, rows * width, 'rows');
    owned.push(rowsOut);
    await check('add-layernorm pooled (z)', width, (pooled, gate) => [
      pooledNorm.preparePooled(
        { input, residual, norm, hasBias: false, output: rowsOut, ...(gate ? { gate } : {}) },
        { rows, width, eps: 1e-12 },
        { headWeights, headBiases, poolerWeight: 0, poolerBias: 0, pooled, pooledOffset: 0, scratch },
      ),
    ]);
  }
  destroy(...owned);
  return results;
}
