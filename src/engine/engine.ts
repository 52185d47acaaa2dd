/**
 * The engine: one model on one GPU device. It uploads the weights, compiles the kernels at load,
 * keeps execution plans per (batch, sequence-length) bucket, and runs forward passes one at a
 * time (calls are queued, never interleaved, so plan buffers are never clobbered).
 */
import { encodeCriterion, REC, RECORD_HEAD, STATE_WORDS } from '../../shaders/exit';
import type { WeightDtype } from '../../shaders/kernel';
import { PonderError } from '../errors';
import {
  checkSupported,
  criteriaSupportedBy,
  validateCriterion,
  type AvailableHeads,
  type CriterionKind,
  type ExitCriterion,
  type HeadSource,
  type OutputsInfo,
} from '../exit/criteria';
import type { AdapterDescription, GpuContext } from '../gpu/device';
import type { EncoderConfig, EncoderModel } from '../model/types';
import { uploadWeights, type GpuWeights } from './gpu-weights';
import {
  createKernels,
  foldsHeads,
  fusesAttentionOutput,
  SOFTWARE_TUNING,
  type EngineKernels,
  type KernelTuning,
} from './kernels';
import { ExecutionPlan, type DepthSlice, type DispatchTime, type PlanOutput, type RunMode } from './plan';

/** Token-level input for a batch, right-padded to `seqLen`. */
export interface EncodedBatch {
  batch: number;
  seqLen: number;
  inputIds: Uint32Array | number[];
  tokenTypeIds?: Uint32Array | number[];
  attentionMask?: Uint32Array | number[];
}

/** One layer of one example, as the GPU computed it. */
export interface EngineLayer {
  /** 1-based. */
  layer: number;
  /** The shared head's logits. */
  logits: number[];
  /** The shared head's probabilities as the exit kernel computed them (f32); [] for regression. */
  probabilities: number[];
  /** PABEE's per-layer head, when the model has one. */
  headLogits?: number[];
  headProbabilities?: number[];
  /** λ_n, p(n) and CDF_n, when the model has a λ head. */
  lambda?: number;
  haltingProbability?: number;
  cumulativeHalting?: number;
  /** g_n, when the model has a gate at this layer. */
  gate?: number;
  /** What the criterion tested at this layer (src/exit's `statistic`); NaN where it tests nothing. */
  statistic: number;
  /** GPU time of this depth for the example's whole batch, where timestamp-query exists. */
  gpuTimeMs?: number;
}

export interface EngineExample {
  /** 1-based layer the exit kernel chose; `layers` runs 1..exitLayer. */
  exitLayer: number;
  /** True when the criterion fired (false: ran to the last layer). */
  fired: boolean;
  /** The head the criterion read and the answer comes from. */
  head: HeadSource;
  layers: EngineLayer[];
  /** Layers of this example's batch after the exit that did no work at all (counter = 0). */
  skippedLayers: number;
}

export interface EngineLayerEvent {
  /** Index in the input batch. */
  exampleIndex: number;
  layer: EngineLayer;
  /** True at the example's exit layer. */
  exited: boolean;
}

/** Proof of savings for one plan run (one padded batch). */
export interface BatchWork {
  /** Real examples in the batch. */
  examples: number;
  /** Token rows each depth's kernels processed (0: the depth was skipped), from the GPU's counter. */
  rowsPerLayer: number[];
  /** Examples still running (not yet exited) at each depth. */
  runningPerLayer: number[];
  /** GPU time per depth in ms (timestamp-query; quantized on some browsers). */
  layerMs?: number[];
  /** GPU time of the embeddings pass. */
  embeddingMs?: number;
  /** CPU time of the run up to its submit: uploads, submit, and encoding unless encoded ahead (plan.ts). */
  submitMs: number;
  /** Profiled runs: each dispatch's GPU time, in encoding order. */
  dispatchMs?: DispatchTime[];
}

/** A batch's GPU time (embeddings + every depth), where the adapter has timestamp queries. */
export function workGpuMs(w: BatchWork): number | undefined {
  return w.layerMs ? (w.embeddingMs ?? 0) + w.layerMs.reduce((a, b) => a + b, 0) : undefined;
}

export interface EngineOutput {
  /** Per-layer logits for each example, layers 1..exitLayer: [example][layer][label]. */
  logits: number[][][];
  /** Per-layer pooled [CLS] states when requested: [example][layer][hidden] (all layers that ran). */
  pooled?: number[][][];
  /** The padded bucket the pass ran at. */
  bucket: { batch: number; seqLen: number };
  examples: EngineExample[];
  work: BatchWork[];
}

export interface RunOptions {
  readPooled?: boolean;
  /** Default: every layer ('none'). */
  criterion?: ExitCriterion;
  /** Data-set index of input example 0 (seeds PonderNet's draws; default 0). */
  exampleBase?: number;
  /** 'single-submit' (default): one submit, one readback; 'streaming': per-layer readbacks. */
  mode?: RunMode;
  /** Per layer and example; during the pass in streaming mode, after it otherwise (layer order). */
  onLayer?: (event: EngineLayerEvent) => void;
  /** Time every dispatch on its own (BatchWork.dispatchMs); see PlanRunOptions.profile. */
  profile?: boolean;
  /** Diagnostic: that many forward passes back to back in one submit; see PlanRunOptions.backToBack. */
  backToBack?: number;
}

export interface EngineOptions {
  /** Sequence-length buckets (each ≤ max_position_embeddings); inputs are padded up to the next one. */
  seqBuckets?: number[];
  /** The largest batch one pass runs; bigger batches are split. */
  maxBatch?: number;
  /** How many plans (shapes) are kept allocated at once; the least recently used is freed. */
  maxPlans?: number;
  /**
   * Kernel work splitting (advanced; for tests and benchmarks). Default: measured defaults on GPUs,
   * SOFTWARE_TUNING on software adapters; fields given here override either.
   */
  kernelTuning?: KernelTuning;
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
    const base = ctx.adapter.isFallbackAdapter ? SOFTWARE_TUNING : {};
    const given = options.kernelTuning ?? {};
    const tuning: KernelTuning = {
      ...base,
      ...given,
      matmul: { ...base.matmul, ...given.matmul },
    };
    const foldHeads = foldsHeads(model, tuning);
    const weights = uploadWeights(ctx.device, model, dtype, {
      attentionOutputTransposed: fusesAttentionOutput(model.config, tuning),
      packedOutputNorm: foldHeads,
    });
    let kernels: EngineKernels;
    try {
      kernels = await createKernels(ctx.device, model.config, dtype, tuning, foldHeads);
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

  /** The exit heads this model has (what src/exit's criteria may use). */
  get availableHeads(): Required<AvailableHeads> {
    const exit = this.weights.exit;
    const regression = this.config.problemType === 'regression';
    return {
      lambdas: exit?.lambda !== undefined,
      gates: (exit?.numGates ?? 0) > 0,
      perLayerHeads: exit?.heads !== undefined,
      sharedHead: this.weights.classifier !== undefined,
      regression,
    };
  }

  /** The criteria this model's heads allow. */
  get supportedCriteria(): CriterionKind[] {
    if (!this.weights.classifier) return ['none'];
    return criteriaSupportedBy(this.availableHeads);
  }

  /**
   * Checks a criterion against the model (parameters, and the heads it needs) and returns the head
   * it reads. Throws PonderError 'invalid-input' / 'unsupported-criterion'; touches no GPU state.
   */
  checkCriterion(criterion: ExitCriterion): HeadSource {
    const L = this.config.numHiddenLayers;
    validateCriterion(criterion, L);
    if (!this.weights.classifier && criterion.kind !== 'none') {
      throw new PonderError(
        'unsupported-criterion',
        `exit criterion '${criterion.kind}' needs a classifier; this is a base model (supports: none)`,
      );
    }
    const info: OutputsInfo = {
      numLayers: L,
      task: this.config.problemType === 'regression' ? 'regression' : 'classification',
      numClasses: this.config.numLabels,
      available: this.availableHeads,
    };
    return checkSupported(criterion, info);
  }

  /** Runs a forward pass over a token batch; results are per example, per layer. */
  run(input: EncodedBatch, options: RunOptions = {}): Promise<EngineOutput> {
    const checked = this.validate(input);
    // Criterion errors surface here, before anything is queued or touches the GPU.
    const criterion = options.criterion ?? { kind: 'none' };
    const head = this.checkCriterion(criterion);
    const base = options.exampleBase ?? 0;
    if (!Number.isInteger(base) || base < 0 || base > 0xffffffff) {
      throw new PonderError('invalid-input', `exampleBase must be an integer in [0, 2^32), got ${base}`);
    }
    if (options.mode !== undefined && options.mode !== 'single-submit' && options.mode !== 'streaming') {
      throw new PonderError(
        'invalid-input',
        `mode must be 'single-submit' or 'streaming', got ${String(options.mode)}`,
      );
    }
    return this.enqueue(() => this.runNow(checked, { ...options, criterion, exampleBase: base }, head));
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
    options: RunOptions & { criterion: ExitCriterion; exampleBase: number },
    head: HeadSource,
  ): Promise<EngineOutput> {
    const seqLen = this.bucketFor(input.seqLen);
    const result: EngineOutput = { logits: [], bucket: { batch: 0, seqLen }, examples: [], work: [] };
    const pooled: number[][][] = [];
    const useHeads = head === 'per-layer';
    for (let start = 0; start < input.batch; start += this.maxBatch) {
      const count = Math.min(this.maxBatch, input.batch - start);
      const batch = this.batchBucket(count);
      result.bucket.batch = Math.max(result.bucket.batch, batch);
      const padded = padBatch(input, start, count, batch, seqLen);
      const onLayer = options.onLayer;
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      let out: PlanOutput;
      let plan: ExecutionPlan;
      try {
        plan = this.planFor(batch, seqLen);
        const decode = new Decoder(this.config, plan, this.weights.exit?.numGates ?? 0);
        // Pooled states are by batch slot, so a run that reads them keeps examples in their slots.
        const criterion = encodeCriterion(
          options.criterion,
          useHeads,
          options.exampleBase + start,
          count,
          options.readPooled !== true,
        );
        const streaming = options.mode === 'streaming' && plan.exitEnabled;
        out = await plan.run(padded, {
          readPooled: options.readPooled === true,
          profile: options.profile === true,
          ...(options.backToBack !== undefined ? { backToBack: options.backToBack } : {}),
          criterion,
          mode: streaming ? 'streaming' : 'single-submit',
          onDepth:
            streaming && onLayer
              ? (depth, slice) => {
                  for (let e = 0; e < count; e++) {
                    const layer = decode.fromSlice(slice, depth, e);
                    if (layer) onLayer({ exampleIndex: start + e, layer: layer.layer, exited: layer.exits });
                  }
                }
              : undefined,
        });
        const { examples, work } = decode.fromOutput(out, count, head);
        result.work.push(work);
        examples.forEach((x) => {
          result.examples.push(x);
          result.logits.push(x.layers.map((l) => l.logits));
        });
        if (!streaming && onLayer) {
          // Single submit: the same events, after the pass, in layer order.
          const deepest = Math.max(...examples.map((x) => x.exitLayer));
          for (let l = 0; l < deepest; l++) {
            examples.forEach((x, e) => {
              const layer = x.layers[l];
              if (layer) onLayer({ exampleIndex: start + e, layer, exited: l + 1 === x.exitLayer });
            });
          }
        }
      } finally {
        await popScopes(this.device, 'running a forward pass');
      }
      if (out.pooled) {
        const H = this.config.hiddenSize;
        for (let e = 0; e < count; e++) {
          const layersRun = result.examples[start + e]!.layers.length;
          pooled.push(
            Array.from({ length: layersRun }, (_, l) =>
              Array.from(out.pooled!.subarray((l * batch + e) * H, (l * batch + e + 1) * H)),
            ),
          );
        }
      }
    }
    if (pooled.length) result.pooled = pooled;
    return result;
  }
}

/** Turns a plan's flat readback into per-example, per-layer results. */
class Decoder {
  private readonly C: number;
  private readonly R: number;
  private readonly B: number;
  private readonly regression: boolean;

  constructor(
    private readonly config: EncoderConfig,
    private readonly plan: ExecutionPlan,
    private readonly numGates: number,
  ) {
    this.C = config.numLabels;
    this.R = plan.recordFloats;
    this.B = plan.batch;
    this.regression = config.problemType === 'regression';
  }

  /** Layer `depth` of example e from one depth's streamed slice; null if e had already exited. */
  fromSlice(slice: DepthSlice, depth: number, e: number): { layer: EngineLayer; exits: boolean } | null {
    const rec = slice.records.subarray(e * this.R, (e + 1) * this.R);
    if (rec[REC.live] !== 1) return null;
    return { layer: this.fromRecord(depth, rec), exits: rec[REC.exits] === 1 };
  }

  fromOutput(
    out: PlanOutput,
    count: number,
    head: HeadSource,
  ): { examples: EngineExample[]; work: BatchWork } {
    const L = this.config.numHiddenLayers;
    const { B, C, R } = this;
    const work: BatchWork = {
      examples: count,
      rowsPerLayer: Array.from(out.counters.subarray(0, L)),
      runningPerLayer: Array.from(out.counters.subarray(L, 2 * L)),
      submitMs: out.submitMs,
      ...(out.dispatchMs ? { dispatchMs: out.dispatchMs } : {}),
    };
    if (out.passMs) {
      work.embeddingMs = out.passMs[0]!;
      work.layerMs = out.passMs.slice(1);
    }
    const skipped = this.plan.exitEnabled ? work.rowsPerLayer.filter((r) => r === 0).length : 0;
    const examples: EngineExample[] = [];
    for (let e = 0; e < count; e++) {
      const exitLayer = this.plan.exitEnabled ? out.state[e * STATE_WORDS + 5]! : L;
      const fired = this.plan.exitEnabled && out.state[e * STATE_WORDS + 6] === 1;
      const layers: EngineLayer[] = [];
      for (let l = 0; l < exitLayer; l++) {
        const row = l * B + e;
        // With exit heads, everything of an example is in its records (the kernels' own outputs
        // are by batch slot, and slots move when examples ahead exit).
        const layer = this.plan.exitEnabled
          ? this.fromRecord(l, out.records.subarray(row * R, (row + 1) * R))
          : this.layer(l, out.logits.subarray(row * C, (row + 1) * C), null, undefined);
        if (work.layerMs) layer.gpuTimeMs = work.layerMs[l]!;
        layers.push(layer);
      }
      examples.push({ exitLayer, fired, head, layers, skippedLayers: skipped });
    }
    return { examples, work };
  }

  private fromRecord(depth: number, rec: Float32Array): EngineLayer {
    const C = this.C;
    const at = RECORD_HEAD + 2 * C;
    const heads = this.plan.hasHeads ? rec.subarray(at + C, at + 2 * C) : undefined;
    return this.layer(depth, rec.subarray(at, at + C), rec, heads);
  }

  private layer(
    depth: number,
    logits: Float32Array,
    rec: Float32Array | null,
    headLogits: Float32Array | undefined,
  ): EngineLayer {
    const C = this.C;
    const probs = (at: number) => (rec && !this.regression ? Array.from(rec.subarray(at, at + C)) : []);
    const layer: EngineLayer = {
      layer: depth + 1,
      logits: Array.from(logits),
      probabilities: probs(RECORD_HEAD),
      statistic: rec ? rec[REC.statistic]! : NaN,
    };
    if (headLogits) {
      layer.headLogits = Array.from(headLogits);
      layer.headProbabilities = probs(RECORD_HEAD + C);
    }
    if (rec && !Number.isNaN(rec[REC.lambda]!)) {
      layer.lambda = rec[REC.lambda]!;
      layer.haltingProbability = rec[REC.p]!;
      layer.cumulativeHalting = rec[REC.cdf]!;
    }
    if (rec && depth < this.numGates) layer.gate = rec[REC.gate]!;
    return layer;
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
