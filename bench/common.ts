/**
 * What the benchmark runner (Node), the bench page (Chromium) and the Deno script share: the suite
 * description, the result records, the seeded inputs every runtime is fed, and the statistics.
 * No DOM, no Node APIs.
 */
import type { SmClockRecord } from './gpu-clocks';
import { criteriaDeclaredBy, describeCriterion, type ExitCriterion } from '../src/exit';
import type { EncoderModel } from '../src/model/types';
import { mulberry32 } from '../tests/reference/random';

export type RuntimeId = 'ponder' | 'ort-webgpu' | 'ort-wasm' | 'transformers-js';

export const RUNTIME_LABELS: Record<RuntimeId, string> = {
  ponder: 'ponder-web (WebGPU, own WGSL)',
  'ort-webgpu': 'onnxruntime-web 1.30 WebGPU EP',
  'ort-wasm': 'onnxruntime-web 1.30 wasm',
  'transformers-js': 'transformers.js 2.17 (ORT 1.14 wasm)',
};

/** A model as the page sees it: served under `url` with config.json, model.safetensors, onnx/model.onnx. */
export interface BenchModel {
  id: string;
  /** Where it came from: 'shipped', 'golden fixture', 'random ALBERT-base shape'. */
  kind: string;
  url: string;
  architecture: 'albert' | 'bert';
  hiddenSize: number;
  layers: number;
  heads: number;
  intermediate: number;
  embedding: number;
  vocabSize: number;
  maxPositions: number;
  numLabels: number;
  params: number;
  onnxBytes: number;
  safetensorsBytes: number;
  /** Name of the model folder under the served /models/ root (transformers.js model id). */
  folder: string;
  /** Exit criteria kinds the model's heads support (criteriaSupportedBy). */
  supportedCriteria: string[];
  /** config.json's ponder.default_criterion, when it has one. */
  defaultCriterion?: ExitCriterion;
}

/** The BenchModel record of a loaded model (shapes, sizes, the criteria its heads allow). */
export function describeBenchModel(
  model: EncoderModel,
  where: { id: string; kind: string; url: string; onnxBytes: number; safetensorsBytes: number },
): BenchModel {
  const c = model.config;
  const bench: BenchModel = {
    ...where,
    folder: where.id,
    architecture: c.architecture,
    hiddenSize: c.hiddenSize,
    layers: c.numHiddenLayers,
    heads: c.numAttentionHeads,
    intermediate: c.intermediateSize,
    embedding: c.embeddingSize,
    vocabSize: c.vocabSize,
    maxPositions: c.maxPositionEmbeddings,
    numLabels: c.numLabels,
    params: countParams(model),
    supportedCriteria: criteriaDeclaredBy(c),
  };
  const declared = c.exitHeads?.defaultCriterion;
  if (declared) bench.defaultCriterion = declared as unknown as ExitCriterion;
  return bench;
}

export interface SuiteSpec {
  runtime: RuntimeId;
  model: BenchModel;
  /** Batch-1 latency at these sequence lengths (those above the model's positions are skipped). */
  seqs: number[];
  /** Throughput at these batch sizes, at `throughputSeq`. */
  batches: number[];
  throughputSeq: number;
  warmup: number;
  iterations: number;
  /**
   * ORT WebGPU: extra batch-1 calls per length whose GPU time is measured by bracketing every submit
   * (bench/ort-gpu-time.ts), after the timed ones (default: min(10, iterations)).
   */
  gpuTimeCalls?: number;
  /** ponder only: exit criteria to time at batch 1, at `criteriaSeqs` (default: every seq in `seqs`). */
  criteria?: { label: string; criterion: ExitCriterion }[];
  criteriaSeqs?: number[];
  seed: number;
}

export interface LatencyRecord {
  seq: number;
  batch: number;
  n: number;
  p50: number;
  p95: number;
  mean: number;
  min: number;
  /** The first call at this shape (before warm-up): pays per-shape compilation and allocation. */
  firstCallMs?: number;
  /**
   * ponder-web, where timestamp-query exists: GPU time of the timed calls (ms, sum over the call's
   * passes: embeddings and every layer, `ClassificationResult.timing.gpuMs`); `embeddingsP50` is the
   * embeddings pass alone. ORT WebGPU (batch 1): GPU time of `gpuTimeCalls` extra calls after the
   * timed ones, every submit bracketed by timestamp marks (`method: 'submit-brackets'`).
   */
  /** The GPU's SM clock during the timed calls (bench/gpu-clocks.ts; Deno on the GPU machine). */
  smClock?: SmClockRecord;
  gpu?: GpuTimeStats;
  /** ORT WebGPU: WebGPU calls per timed call, counted by bench/ort-gpu-time.ts's prototype wrappers. */
  calls?: CallCountStats;
}

export interface GpuTimeStats {
  n: number;
  p50: number;
  min: number;
  embeddingsP50?: number;
  /** CPU time to encode and submit a call (p50), where the build reports it. */
  submitP50?: number;
  /**
   * How it was measured: absent, the runtime's own pass timestamps (ponder-web: the sum of its
   * passes' spans); 'submit-brackets', from outside (bench/ort-gpu-time.ts): the sum over the call's
   * submits of the span between timestamp marks put before and after each submit's command buffers,
   * so the gaps between passes inside a submit count too.
   */
  method?: 'submit-brackets';
  /** 'submit-brackets': first mark to last mark of a call (p50, ms), i.e. p50 plus GPU idle between submits. */
  spanP50?: number;
}

/** WebGPU calls per call of the runtime (ORT WebGPU), over `n` timed calls. */
export interface CallCountStats {
  n: number;
  /** queue.submit() calls on the runtime's device per call (p50, max). */
  submitsP50: number;
  submitsMax: number;
  /** Command buffers in those submits (p50). */
  commandBuffersP50: number;
  /**
   * Time inside those submit() calls per call (p50, ms): CPU work the wall time pays on top of the
   * GPU's (on lavapipe it holds the work itself: it ran inside submit there).
   */
  submitMsP50: number;
  /** GPUBuffer.mapAsync() calls per call (p50, max): each is a GPU → CPU round trip. */
  mapAsyncP50: number;
  mapAsyncMax: number;
  /**
   * Per call, the sum over its mapAsync calls of the time from the call to its promise settling
   * (p50, ms): the wall time spent waiting on readbacks (≥ 10 ms each in Deno, which sleeps 10 ms
   * per poll).
   */
  mapAsyncMsP50: number;
  /** GPUQueue.onSubmittedWorkDone() calls per call (p50): the other way to wait on the GPU. */
  workDoneP50: number;
}

/** One runtime round trip, timed `n` times (ms). */
export interface FloorRecord {
  what: 'empty-submit' | 'copy-map-read';
  /** What was timed, in words. */
  label: string;
  n: number;
  p50: number;
  p95: number;
  min: number;
}

/**
 * The JavaScript runtime's own round trip to the GPU, once per report: no batch-1 call that waits
 * for a result on the CPU can be faster than `copy-map-read`.
 */
export interface RuntimeFloor {
  records: FloorRecord[];
  error?: string;
}

export interface ThroughputRecord extends LatencyRecord {
  /** Examples per second at the median batch time. */
  itemsPerSec: number;
}

export interface CriterionRecord extends LatencyRecord {
  label: string;
  /** Mean exit layer over the timed calls' examples. */
  meanExitLayer: number;
  /** Layers the GPU skipped, when the build reports it (GPU-side exit); null otherwise. */
  meanSkippedLayers: number | null;
}

export interface SuiteResult {
  runtime: RuntimeId;
  model: string;
  ok: boolean;
  /** Why the runtime could not run (the suite's other fields are then empty). */
  error?: string;
  /** Runtime facts: EP, threads, adapter, weight dtype. */
  notes: string[];
  cold?: { loadMs: number; firstResultMs: number; totalMs: number };
  /** The first timed-shape call after load (includes per-shape compile/allocation) and the steady p50. */
  warmup?: { firstCallMs: number; steadyP50Ms: number; seq: number };
  latency: LatencyRecord[];
  throughput: ThroughputRecord[];
  criteria: CriterionRecord[];
  gpuBytes?: number;
  /** Per-layer GPU ms (mean over calls) when results carry them; null when this build reports none. */
  perLayerGpuMs: number[] | null;
  /** Logits of example 0 of the seeded batch-1 input at the first seq: cross-runtime agreement. */
  sampleLogits?: number[];
  /** ponder-web: one full-depth batch-1 call at the longest length, each dispatch timed alone. */
  kernelProfile?: KernelProfileRecord;
  /** The same profile with its pass last in a back-to-back submit (`warmPasses` before it). */
  kernelProfileSustained?: KernelProfileRecord;
  /** ponder-web: full-depth batch-1 passes back to back in one submit (PonderClassifier.timeBackToBack). */
  backToBack?: BackToBackRecord;
}

/**
 * Full-depth batch-1 passes run back to back in one submit, so that the GPU reaches the clocks of
 * sustained work (one short call runs at whatever clocks the idle GPU has: in bench/results/deno-gpu.json
 * ponder-web's batch-1 calls on the H200 ran at SM clock p50s of 570–930 MHz for the shipped model and
 * ALBERT-base at seq 64 and 128, of 1980 max; their back-to-back passes at 1755–1980 MHz).
 */
export interface BackToBackRecord {
  seq: number;
  /** Passes per submit. */
  passes: number;
  /** Submits timed (after one untimed). */
  tries: number;
  /** The last pass's GPU time (its passes' timestamps), p50 over the tries, where timestamps exist. */
  lastPassGpuMsP50?: number;
  /** Wall time of the awaited call / passes, p50 over the tries. */
  wallMsPerPassP50: number;
  /** The GPU's SM clock during the timed submits (bench/gpu-clocks.ts). */
  smClock?: SmClockRecord;
}

export interface KernelProfileRecord {
  seq: number;
  /** Unprofiled full-depth passes run back to back before the profiled one, in the same submit. */
  warmPasses?: number;
  /** Sum of the dispatches' GPU times (the gaps between dispatches excluded). */
  totalMs: number;
  /** By kernel and path (PonderClassifier.profileKernels), largest first. */
  byKernel: { kernel: string; ms: number; count: number }[];
}

export interface MatmulRecord {
  what: string;
  M: number;
  N: number;
  K: number;
  dtype: 'f32' | 'f16';
  ms: number;
  gflops: number;
  timing: 'timestamp-query' | 'wall';
  reps: number;
  /** The label of the KernelDispatch(es) MatmulKernel.prepare returned: names the path taken. */
  kernel?: string;
}

/** One (shape, weight dtype, tile config) of the matmul tile sweep (bench/matmul-sweep.ts). */
export interface SweepRecord {
  what: string;
  M: number;
  N: number;
  K: number;
  dtype: 'f32' | 'f16';
  /** Index into the run's `configs`. */
  config: number;
  ok: boolean;
  /** Why create() or prepare() failed, or 'not run: …'. */
  error?: string;
  ms?: number;
  gflops?: number;
  reps?: number;
  kernel?: string;
  /** Largest relative error of the output against the exact value (all inputs are constant). */
  maxRelError?: number;
  /** With several rounds: each round's time (ms is their median). */
  roundsMs?: number[];
}

export interface SweepReport {
  /** The tile options tried (MatmulKernel.create's `tiles`), as given. */
  configs: Record<string, unknown>[];
  records: SweepRecord[];
  timing: 'timestamp-query' | 'wall';
  note: string;
  /** Why the sweep as a whole failed (a device loss, say). */
  error?: string;
  elapsedSec: number;
}

/** The tests' seeded generator (mulberry32): the same stream in Node, Chromium and Deno. */
export const rng = mulberry32;

/**
 * The token ids every runtime is fed for (seed, batch, seq): full-length rows (no padding), id 2
 * first and 3 last as [CLS] … [SEP] in both vocabularies, the rest uniform in [5, vocab).
 */
export function tokenBatch(seed: number, batch: number, seq: number, vocab: number): number[][] {
  const next = rng(seed * 1_000_003 + batch * 7919 + seq);
  const lo = Math.min(5, vocab - 1);
  return Array.from({ length: batch }, () =>
    Array.from({ length: seq }, (_, i) => {
      if (i === 0) return Math.min(2, vocab - 1);
      if (i === seq - 1 && seq > 1) return Math.min(3, vocab - 1);
      return lo + Math.floor(next() * (vocab - lo));
    }),
  );
}

/** The middle element of xs (the upper one of the two middles for an even count). */
export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function summarize(times: number[], seq: number, batch: number): LatencyRecord {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    seq,
    batch,
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    mean: sorted.reduce((s, t) => s + t, 0) / Math.max(1, sorted.length),
    min: sorted[0] ?? NaN,
  };
}

/** The exit criteria timed for a model: one per supported kind, at a middle setting. */
export function defaultCriteria(
  supported: readonly string[],
  numLayers: number,
  numLabels: number,
): { label: string; criterion: ExitCriterion }[] {
  const half = Math.max(1, Math.ceil(numLayers / 2));
  const out: { label: string; criterion: ExitCriterion }[] = [];
  for (const kind of supported) {
    let c: ExitCriterion | null;
    switch (kind) {
      case 'palbert':
        c = { kind, q: 0.5 };
        break;
      case 'pondernet-sample':
        c = { kind, seed: 0 };
        break;
      case 'pabee':
        c = { kind, patience: Math.max(1, Math.min(6, numLayers - 1)) };
        break;
      case 'max-prob':
        c = { kind, threshold: 0.9 };
        break;
      case 'entropy':
        c = { kind, threshold: Number((0.25 * Math.log(Math.max(2, numLabels))).toPrecision(4)) };
        break;
      case 'gate':
        c = { kind, threshold: 0.5 };
        break;
      case 'fixed':
        c = { kind, layer: half };
        break;
      default:
        c = null; // 'none' is the full-depth row
    }
    if (c) out.push({ label: describeCriterion(c), criterion: c });
  }
  return out;
}

/** defaultCriteria for a model, with its config's default criterion labelled (or added when different). */
export function criteriaFor(model: BenchModel): { label: string; criterion: ExitCriterion }[] {
  const criteria = defaultCriteria(model.supportedCriteria, model.layers, model.numLabels);
  const fallback = model.defaultCriterion;
  if (fallback) {
    const same = criteria.find((c) => JSON.stringify(c.criterion) === JSON.stringify(fallback));
    if (same) same.label += ' (model default)';
    else criteria.unshift({ label: 'model default', criterion: fallback });
  }
  return criteria;
}

/** Parameters of the encoder and its classifier (embeddings, distinct layers, projection, pooler, head). */
export function countParams(model: EncoderModel): number {
  const w = model.weights;
  let n = 0;
  const add = (t: { data: Float32Array } | undefined) => (n += t?.data.length ?? 0);
  [w.embeddings.word, w.embeddings.position, w.embeddings.tokenType].forEach(add);
  for (const l of w.layers) {
    for (const lin of [l.query, l.key, l.value, l.attentionOutput, l.intermediate, l.output]) {
      add(lin.weight);
      add(lin.bias);
    }
  }
  for (const lin of [w.embeddingProjection, w.pooler, w.classifier]) {
    add(lin?.weight);
    add(lin?.bias);
  }
  return n;
}
