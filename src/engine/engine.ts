/**
 * The engine: one model on one GPU device. It uploads the weights, compiles the kernels at load,
 * keeps execution plans per (batch, sequence-length) bucket, and runs forward passes one at a
 * time (calls are queued, never interleaved, so plan buffers are never clobbered).
 */
import type { WeightDtype } from '../../shaders/kernel';
import { PonderError } from '../errors';
import type { AdapterDescription, GpuContext } from '../gpu/device';
import type { EncoderConfig, EncoderModel } from '../model/types';
import { uploadWeights, type GpuWeights } from './gpu-weights';
import { createKernels, type EngineKernels } from './kernels';
import { ExecutionPlan } from './plan';

/** Token-level input for a batch, right-padded to `seqLen`. */
export interface EncodedBatch {
  batch: number;
  seqLen: number;
  inputIds: Uint32Array | number[];
  tokenTypeIds?: Uint32Array | number[];
  attentionMask?: Uint32Array | number[];
}

export interface EngineOutput {
  /** Per-layer logits for each example: [example][layer][label]. */
  logits: number[][][];
  /** Per-layer pooled [CLS] states when requested: [example][layer][hidden]. */
  pooled?: number[][][];
  /** The padded bucket the pass ran at. */
  bucket: { batch: number; seqLen: number };
}

export interface EngineOptions {
  /** Sequence-length buckets (each ≤ max_position_embeddings); inputs are padded up to the next one. */
  seqBuckets?: number[];
  /** The largest batch one pass runs; bigger batches are split. */
  maxBatch?: number;
  /** How many plans (shapes) are kept allocated at once; the least recently used is freed. */
  maxPlans?: number;
}

const DEFAULT_SEQ_BUCKETS = [8, 16, 32, 64, 128, 256, 512];

export class Engine {
  readonly config: EncoderConfig;
  readonly adapter: AdapterDescription;
  readonly weightDtype: WeightDtype;

  private readonly device: GPUDevice;
  private readonly weights: GpuWeights;
  private readonly kernels: EngineKernels;
  private readonly plans = new Map<string, ExecutionPlan>();
  private readonly seqBuckets: number[];
  private readonly maxBatch: number;
  private readonly maxPlans: number;
  private queue: Promise<unknown> = Promise.resolve();
  private lostReason: string | null = null;
  private disposed = false;
  private readonly ownsDevice: boolean;

  private constructor(
    ctx: GpuContext,
    config: EncoderConfig,
    weights: GpuWeights,
    kernels: EngineKernels,
    options: EngineOptions,
    ownsDevice: boolean,
  ) {
    this.device = ctx.device;
    this.adapter = ctx.adapter;
    this.config = config;
    this.weights = weights;
    this.kernels = kernels;
    this.weightDtype = weights.dtype;
    this.ownsDevice = ownsDevice;
    const maxPos = config.maxPositionEmbeddings;
    const buckets = (options.seqBuckets ?? DEFAULT_SEQ_BUCKETS).filter((b) => b < maxPos);
    this.seqBuckets = [...new Set([...buckets, maxPos])].sort((a, b) => a - b);
    this.maxBatch = options.maxBatch ?? 32;
    this.maxPlans = options.maxPlans ?? 4;
    void ctx.device.lost.then((info) => {
      this.lostReason = info.message || info.reason || 'unknown reason';
    });
  }

  /**
   * Uploads the model and compiles its kernels. `ownsDevice` says whether dispose() may destroy the
   * device (false when the device is shared between several classifiers).
   */
  static async create(
    ctx: GpuContext,
    model: EncoderModel,
    options: EngineOptions = {},
    ownsDevice = false,
  ): Promise<Engine> {
    const dtype: WeightDtype = ctx.useF16 ? 'f16' : 'f32';
    ctx.device.pushErrorScope('out-of-memory');
    ctx.device.pushErrorScope('validation');
    const weights = uploadWeights(ctx.device, model, dtype);
    let kernels: EngineKernels;
    try {
      kernels = await createKernels(ctx.device, model.config, dtype);
    } finally {
      await popScopes(ctx.device, 'uploading weights and compiling kernels');
    }
    return new Engine(ctx, model.config, weights, kernels, options, ownsDevice);
  }

  /** GPU memory held by weights and allocated plans, in bytes. */
  get gpuBytes(): number {
    let bytes = this.weights.bytes;
    for (const p of this.plans.values()) bytes += p.bytes;
    return bytes;
  }

  /** The sequence length a text of `length` tokens is padded to. */
  bucketFor(length: number): number {
    const bucket = this.seqBuckets.find((b) => b >= length);
    if (bucket === undefined) {
      throw new PonderError(
        'invalid-input',
        `A sequence of ${length} tokens is longer than the model's ${this.config.maxPositionEmbeddings} positions.`,
      );
    }
    return bucket;
  }

  /** Builds (and caches) the plan for a shape ahead of time, e.g. during warm-up. */
  async prepare(batch: number, seqLen: number): Promise<void> {
    await this.enqueue(async () => {
      this.planFor(this.batchBucket(batch), this.bucketFor(seqLen));
    });
  }

  /** Runs a forward pass over a token batch; results are per example, per layer. */
  run(input: EncodedBatch, options: { readPooled?: boolean } = {}): Promise<EngineOutput> {
    const checked = this.validate(input);
    return this.enqueue(() => this.runNow(checked, options));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const plan of this.plans.values()) plan.destroy();
    this.plans.clear();
    this.weights.destroy();
    if (this.ownsDevice) this.device.destroy();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      this.assertUsable();
      return task();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private assertUsable(): void {
    if (this.disposed)
      throw new PonderError('disposed', 'This classifier was disposed; load it again to use it.');
    if (this.lostReason !== null) {
      throw new PonderError(
        'device-lost',
        `The GPU device was lost (${this.lostReason}). Load the model again to continue.`,
      );
    }
  }

  private validate(input: EncodedBatch): Required<EncodedBatch> {
    const { batch, seqLen } = input;
    if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(seqLen) || seqLen < 1) {
      throw new PonderError(
        'invalid-input',
        `batch and seqLen must be positive integers (got ${batch}, ${seqLen}).`,
      );
    }
    const n = batch * seqLen;
    const ids = Uint32Array.from(input.inputIds);
    if (ids.length !== n) {
      throw new PonderError('invalid-input', `inputIds has ${ids.length} entries; batch × seqLen is ${n}.`);
    }
    const types = input.tokenTypeIds ? Uint32Array.from(input.tokenTypeIds) : new Uint32Array(n);
    const mask = input.attentionMask ? Uint32Array.from(input.attentionMask) : new Uint32Array(n).fill(1);
    if (types.length !== n || mask.length !== n) {
      throw new PonderError(
        'invalid-input',
        `tokenTypeIds and attentionMask must have batch × seqLen = ${n} entries.`,
      );
    }
    const { vocabSize, typeVocabSize } = this.config;
    for (let i = 0; i < n; i++) {
      const id = input.inputIds[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new PonderError(
          'invalid-input',
          `Token id ${id} at position ${i} is outside the vocabulary (0..${vocabSize - 1}).`,
        );
      }
      if (types[i]! >= typeVocabSize) {
        throw new PonderError(
          'invalid-input',
          `Token type ${types[i]} at position ${i} is not below ${typeVocabSize}.`,
        );
      }
    }
    for (let b = 0; b < batch; b++) {
      if (!mask[b * seqLen]) {
        throw new PonderError(
          'invalid-input',
          `Example ${b} has no tokens (its attention mask starts with 0).`,
        );
      }
    }
    return { batch, seqLen, inputIds: ids, tokenTypeIds: types, attentionMask: mask };
  }

  private batchBucket(batch: number): number {
    let b = 1;
    while (b < batch && b < this.maxBatch) b *= 2;
    return Math.min(b, this.maxBatch);
  }

  private planFor(batch: number, seqLen: number): ExecutionPlan {
    const key = `${batch}x${seqLen}`;
    let plan = this.plans.get(key);
    if (plan) {
      // Re-insert so that Map order is least-recently-used first.
      this.plans.delete(key);
      this.plans.set(key, plan);
      return plan;
    }
    while (this.plans.size >= this.maxPlans) {
      const [oldestKey, oldest] = this.plans.entries().next().value as [string, ExecutionPlan];
      oldest.destroy();
      this.plans.delete(oldestKey);
    }
    plan = new ExecutionPlan(this.device, this.config, this.weights, this.kernels, batch, seqLen);
    this.plans.set(key, plan);
    return plan;
  }

  private async runNow(
    input: Required<EncodedBatch>,
    options: { readPooled?: boolean },
  ): Promise<EngineOutput> {
    const seqLen = this.bucketFor(input.seqLen);
    const logits: number[][][] = [];
    const pooled: number[][][] = [];
    let bucketBatch = 0;
    for (let start = 0; start < input.batch; start += this.maxBatch) {
      const count = Math.min(this.maxBatch, input.batch - start);
      const batch = this.batchBucket(count);
      bucketBatch = Math.max(bucketBatch, batch);
      const padded = padBatch(input, start, count, batch, seqLen);
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      let out;
      try {
        const plan = this.planFor(batch, seqLen);
        out = await plan.run(padded, options);
      } finally {
        await popScopes(this.device, 'running a forward pass');
      }
      const { numHiddenLayers: L, numLabels: C, hiddenSize: H } = this.config;
      for (let e = 0; e < count; e++) {
        const perLayer: number[][] = [];
        const perLayerPooled: number[][] = [];
        for (let l = 0; l < L; l++) {
          if (out.logits.length)
            perLayer.push(Array.from(out.logits.subarray((l * batch + e) * C, (l * batch + e + 1) * C)));
          if (out.pooled)
            perLayerPooled.push(
              Array.from(out.pooled.subarray((l * batch + e) * H, (l * batch + e + 1) * H)),
            );
        }
        logits.push(perLayer);
        if (out.pooled) pooled.push(perLayerPooled);
      }
    }
    const result: EngineOutput = { logits, bucket: { batch: bucketBatch, seqLen } };
    if (pooled.length) result.pooled = pooled;
    return result;
  }
}

/** Copies examples [start, start+count) into a zero-padded batch of `batch` × `seqLen`. */
function padBatch(
  input: Required<EncodedBatch>,
  start: number,
  count: number,
  batch: number,
  seqLen: number,
): { inputIds: Uint32Array; tokenTypeIds: Uint32Array; attentionMask: Uint32Array } {
  const ids = new Uint32Array(batch * seqLen);
  const types = new Uint32Array(batch * seqLen);
  const mask = new Uint32Array(batch * seqLen);
  const src = input.seqLen;
  for (let e = 0; e < batch; e++) {
    if (e >= count) {
      mask[e * seqLen] = 1; // filler rows: one token, so their softmax stays finite; never read back
      continue;
    }
    const from = (start + e) * src;
    ids.set((input.inputIds as Uint32Array).subarray(from, from + src), e * seqLen);
    types.set((input.tokenTypeIds as Uint32Array).subarray(from, from + src), e * seqLen);
    mask.set((input.attentionMask as Uint32Array).subarray(from, from + src), e * seqLen);
  }
  return { inputIds: ids, tokenTypeIds: types, attentionMask: mask };
}

async function popScopes(device: GPUDevice, what: string): Promise<void> {
  const validation = await device.popErrorScope();
  const memory = await device.popErrorScope();
  const error = memory ?? validation;
  if (error) {
    const kind = memory ? 'out of GPU memory' : 'a WebGPU validation error';
    throw new PonderError('gpu-error', `${kind} while ${what}: ${error.message}`);
  }
}
