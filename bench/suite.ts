/**
 * One runtime's suite on one model, in any JavaScript runtime with performance.now() (the Chromium
 * bench page, Deno): cold start, batch-1 latency per sequence length, throughput per batch size,
 * ponder-web's exit criteria, GPU memory and per-layer GPU time. The caller supplies how to load
 * the runtime (`load`); everything is fed the same seeded token ids (common.ts `tokenBatch`).
 *
 * Timings are wall time around one awaited call that returns logits to JavaScript (ponder-web's
 * classify() reads back once; ONNX Runtime returns CPU tensors).
 */
import type { ClockWindow } from './gpu-clocks';
import type { ExitCriterion } from '../src/exit';
import {
  median,
  percentile,
  type CallCountStats,
  RUNTIME_LABELS,
  summarize,
  tokenBatch,
  type GpuTimeStats,
  type KernelProfileRecord,
  type SuiteResult,
  type SuiteSpec,
} from './common';
import type { MeteredRun, RunCounts } from './ort-gpu-time';

/** GPU time of one call (ms): the sum over its passes, and the embeddings pass when known. */
export interface CallGpuTime {
  totalMs: number;
  embeddingsMs?: number;
  /** CPU time to encode and submit the call (`timing.submitMs`), where the build reports it. */
  submitMs?: number;
}

/** A loaded runtime: runs a [batch][seq] id batch and gives each example's final logits. */
export interface Runner {
  notes: string[];
  run(ids: number[][]): Promise<number[][]>;
  /** ponder-web: classify with a criterion, for the exit-criterion rows. */
  classifyWith?(ids: number[][], criterion: ExitCriterion): Promise<PonderResultLike[]>;
  gpuBytes?(): number;
  /** Mean per-layer GPU ms over the calls so far, when the results carry it. */
  perLayerGpuMs?(): number[] | null;
  /** GPU time of the last call (run or classifyWith), when the results carry it. */
  lastGpuTime?(): CallGpuTime | null;
  /** ponder-web: every dispatch of a full-depth call timed on its own (timestamp-query). */
  profile?(ids: number[][], warmPasses?: number): Promise<KernelProfileRecord>;
  /** ponder-web: `passes` full-depth passes back to back in one submit. */
  backToBack?(ids: number[][], passes: number): Promise<{ wallMsPerPass: number; lastPassGpuMs?: number }>;
  /** ORT WebGPU: the last run()'s submits and mapAsync calls (bench/ort-gpu-time.ts). */
  lastCalls?(): RunCounts | null;
  /**
   * ORT WebGPU: GPU time measured from outside, each submit bracketed by timestamp marks. Adds CPU
   * work per submit, so the suite uses it only on extra calls after the timed ones. `unavailable`
   * says why it cannot run here (the suite notes it).
   */
  outsideGpuTime?: { unavailable: string | null; run(ids: number[][]): Promise<MeteredRun> };
  dispose(): Promise<void> | void;
}

/** The parts of ponder-web's ClassificationResult the suite reads (optional fields: newer builds). */
export interface PonderResultLike {
  exitLayer: number;
  layers: { logits: number[]; gpuTimeMs?: number }[];
  skippedLayers?: number;
  /** GPU time of the call's passes (embeddings and every layer run), where timestamp-query exists. */
  timing?: { totalMs: number; gpuMs?: number; submitMs?: number };
}

/** Minimal face of PonderClassifier, so this module does not import the engine. */
export interface ClassifierLike {
  classify(input: { inputIds: number[] }[], options?: { criterion?: ExitCriterion }): Promise<unknown[]>;
  profileKernels(
    input: { inputIds: number[] }[],
    options?: { warmPasses?: number },
  ): Promise<Omit<KernelProfileRecord, 'seq' | 'warmPasses'>>;
  timeBackToBack?(
    input: { inputIds: number[] }[],
    passes: number,
  ): Promise<{ wallMsPerPass: number; lastPassGpuMs?: number }>;
  readonly gpuBytes: number;
  readonly weightDtype: string;
  readonly device: { description: string; vendor: string; isFallbackAdapter: boolean };
  dispose(): void;
}

/** Wraps a loaded ponder-web classifier as a Runner that tracks per-layer GPU times. */
export function ponderRunner(classifier: ClassifierLike): Runner {
  const perLayer: number[][] = [];
  let last: CallGpuTime | null = null;
  const toInputs = (ids: number[][]) => ids.map((row) => ({ inputIds: row }));
  const call = async (ids: number[][], criterion?: ExitCriterion): Promise<PonderResultLike[]> => {
    // Full depth is asked for explicitly: without a criterion, classify() uses the model's default
    // (e.g. the shipped model's Q-exit).
    const results = (await classifier.classify(toInputs(ids), {
      criterion: criterion ?? { kind: 'none' },
    })) as PonderResultLike[];
    const times = results[0]?.layers.map((l) => l.gpuTimeMs);
    const layerTimes =
      times?.length && times.every((t) => typeof t === 'number') ? (times as number[]) : null;
    if (!criterion && layerTimes) perLayer.push(layerTimes);
    // The call's GPU time: timing.gpuMs sums every pass (embeddings included); builds without it
    // give the layers' times only.
    const total = results[0]?.timing?.gpuMs;
    const submitMs = results[0]?.timing?.submitMs;
    const layersSum = layerTimes?.reduce((a, b) => a + b, 0);
    if (typeof total === 'number') {
      last = { totalMs: total, ...(typeof submitMs === 'number' ? { submitMs } : {}) };
      // At full depth every layer is in `layers`, so the rest is the embeddings pass.
      if (!criterion && layersSum !== undefined) last.embeddingsMs = Math.max(0, total - layersSum);
    } else {
      last = layersSum !== undefined ? { totalMs: layersSum } : null;
    }
    return results;
  };
  return {
    notes: [
      `adapter: ${classifier.device.description || classifier.device.vendor || 'unknown'}` +
        `${classifier.device.isFallbackAdapter ? ' (fallback/software)' : ''}`,
      `weights: ${classifier.weightDtype}`,
    ],
    run: async (ids) => (await call(ids)).map((r) => r.layers[r.layers.length - 1]!.logits),
    classifyWith: call,
    gpuBytes: () => classifier.gpuBytes,
    lastGpuTime: () => last,
    profile: async (ids, warmPasses = 0) => {
      const p = await classifier.profileKernels(toInputs(ids), warmPasses > 0 ? { warmPasses } : {});
      return { seq: ids[0]!.length, totalMs: p.totalMs, byKernel: p.byKernel, warmPasses };
    },
    ...(classifier.timeBackToBack
      ? { backToBack: (ids: number[][], passes: number) => classifier.timeBackToBack!(toInputs(ids), passes) }
      : {}),
    perLayerGpuMs: () => {
      // Mean over calls of the most recent shape's length (shapes differ in per-layer time, not count).
      if (!perLayer.length) return null;
      const width = perLayer[0]!.length;
      const rows = perLayer.filter((r) => r.length === width);
      return Array.from({ length: width }, (_, i) => rows.reduce((s, r) => s + r[i]!, 0) / rows.length);
    },
    dispose: () => classifier.dispose(),
  };
}

/** Progress lines (the Node runner echoes them), so a slow suite shows where its time goes. */
function progress(message: string): void {
  console.log(`[suite] ${message}`);
}

/** p50/min of the calls' GPU times; undefined when the runner reports none. */
export function gpuStats(samples: (CallGpuTime | null | undefined)[]): GpuTimeStats | undefined {
  const got = samples.filter((x): x is CallGpuTime => !!x);
  if (!got.length) return undefined;
  const totals = got.map((x) => x.totalMs).sort((a, b) => a - b);
  const stats: GpuTimeStats = { n: totals.length, p50: percentile(totals, 50), min: totals[0]! };
  const emb = got
    .flatMap((x) => (x.embeddingsMs === undefined ? [] : [x.embeddingsMs]))
    .sort((a, b) => a - b);
  if (emb.length) stats.embeddingsP50 = percentile(emb, 50);
  const submit = got.flatMap((x) => (x.submitMs === undefined ? [] : [x.submitMs])).sort((a, b) => a - b);
  if (submit.length) stats.submitP50 = percentile(submit, 50);
  return stats;
}

/** Per-run submits and mapAsync calls (p50/max); undefined when the runner counts none. */
export function callStats(samples: (RunCounts | null | undefined)[]): CallCountStats | undefined {
  const got = samples.filter((x): x is RunCounts => !!x);
  if (!got.length) return undefined;
  const sorted = (f: (x: RunCounts) => number) => got.map(f).sort((a, b) => a - b);
  const p50 = (f: (x: RunCounts) => number) => percentile(sorted(f), 50);
  return {
    n: got.length,
    submitsP50: p50((x) => x.submits),
    submitsMax: sorted((x) => x.submits).pop()!,
    commandBuffersP50: p50((x) => x.commandBuffers),
    submitMsP50: p50((x) => x.submitMs),
    mapAsyncP50: p50((x) => x.mapAsync),
    mapAsyncMax: sorted((x) => x.mapAsync).pop()!,
    mapAsyncMsP50: p50((x) => x.mapAsyncMs),
    workDoneP50: p50((x) => x.workDone),
  };
}

async function timeCalls(
  runner: Runner,
  ids: number[][],
  warmup: number,
  iterations: number,
): Promise<{ times: number[]; gpu: GpuTimeStats | undefined; calls: CallCountStats | undefined }> {
  for (let i = 0; i < warmup; i++) await runner.run(ids);
  const times: number[] = [];
  const gpu: (CallGpuTime | null | undefined)[] = [];
  const calls: (RunCounts | null | undefined)[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await runner.run(ids);
    times.push(performance.now() - t);
    gpu.push(runner.lastGpuTime?.());
    calls.push(runner.lastCalls?.());
  }
  return { times, gpu: gpuStats(gpu), calls: callStats(calls) };
}

/**
 * GPU time of `n` extra calls by the runner's outside measurement (after the timed ones, whose wall
 * time it would inflate). A stats record, or why there is none (noted by the caller).
 */
async function outsideGpuStats(runner: Runner, ids: number[][], n: number): Promise<GpuTimeStats | string> {
  const meter = runner.outsideGpuTime!;
  if (meter.unavailable) return meter.unavailable;
  const totals: number[] = [];
  const spans: number[] = [];
  for (let i = 0; i < n; i++) {
    const run = await meter.run(ids);
    if (run.gpuMs === null) return run.error ?? 'no GPU time';
    totals.push(run.gpuMs);
    if (run.gpuSpanMs !== null) spans.push(run.gpuSpanMs);
  }
  totals.sort((a, b) => a - b);
  spans.sort((a, b) => a - b);
  return {
    n,
    p50: percentile(totals, 50),
    min: totals[0]!,
    method: 'submit-brackets',
    ...(spans.length ? { spanP50: percentile(spans, 50) } : {}),
  };
}

/** A latency record with the calls' GPU time and call counts, when there are any. */
function withGpu<T extends object>(
  rec: T,
  gpu: GpuTimeStats | undefined,
  calls?: CallCountStats,
): T & { gpu?: GpuTimeStats; calls?: CallCountStats } {
  return { ...rec, ...(gpu ? { gpu } : {}), ...(calls ? { calls } : {}) };
}

export async function runSuite(
  spec: SuiteSpec,
  load: (spec: SuiteSpec) => Promise<Runner>,
  /** Where the runtime can read the GPU's clock (bench/deno: nvidia-smi), a window around timed calls. */
  hooks: { clockWindow?: () => ClockWindow } = {},
): Promise<SuiteResult> {
  const result: SuiteResult = {
    runtime: spec.runtime,
    model: spec.model.id,
    ok: false,
    notes: [RUNTIME_LABELS[spec.runtime]],
    latency: [],
    throughput: [],
    criteria: [],
    perLayerGpuMs: null,
  };
  const seqs = spec.seqs.filter((s) => s <= spec.model.maxPositions);
  const vocab = spec.model.vocabSize;
  let runner: Runner | null = null;
  try {
    const t0 = performance.now();
    runner = await load(spec);
    const loadMs = performance.now() - t0;
    result.notes.push(...runner.notes);
    const firstSeq = seqs[0] ?? Math.min(16, spec.model.maxPositions);
    const logits = await runner.run(tokenBatch(spec.seed, 1, firstSeq, vocab));
    const totalMs = performance.now() - t0;
    result.cold = { loadMs, firstResultMs: totalMs - loadMs, totalMs };
    progress(`loaded in ${loadMs.toFixed(0)} ms, first result after ${(totalMs - loadMs).toFixed(0)} ms`);
    result.sampleLogits = logits[0];

    for (const [i, seq] of seqs.entries()) {
      const ids = tokenBatch(spec.seed, 1, seq, vocab);
      const t = performance.now();
      await runner.run(ids);
      const firstCallMs = performance.now() - t;
      const clock = hooks.clockWindow?.();
      const timed = await timeCalls(runner, ids, spec.warmup, spec.iterations);
      const smClock = clock?.close();
      let gpu = timed.gpu;
      if (runner.outsideGpuTime) {
        // After the timed calls: bracketing every submit would inflate their wall time.
        const got = await outsideGpuStats(runner, ids, spec.gpuTimeCalls ?? Math.min(10, spec.iterations));
        if (typeof got !== 'string') gpu = got;
        // The runner's notes already say why when it cannot measure at all.
        else if (!result.notes.some((n) => n.includes(got)))
          result.notes.push(`GPU time at seq ${seq}: not measured: ${got}`);
      }
      const rec = withGpu(
        { ...summarize(timed.times, seq, 1), firstCallMs, ...(smClock ? { smClock } : {}) },
        gpu,
        timed.calls,
      );
      result.latency.push(rec);
      progress(
        `batch 1 seq ${seq}: first call ${firstCallMs.toFixed(1)} ms, p50 ${rec.p50.toFixed(1)} ms` +
          (rec.gpu ? ` (GPU p50 ${rec.gpu.p50.toFixed(2)} ms)` : '') +
          (rec.calls
            ? `, ${rec.calls.submitsP50} submits, ${rec.calls.mapAsyncP50} mapAsync and ` +
              `${rec.calls.workDoneP50} onSubmittedWorkDone per call` +
              ` (in submit ${rec.calls.submitMsP50.toFixed(2)} ms, awaiting mapAsync ${rec.calls.mapAsyncMsP50.toFixed(1)} ms)`
            : ''),
      );
      if (i === 0) result.warmup = { firstCallMs: totalMs - loadMs, steadyP50Ms: rec.p50, seq };
    }
    // Per-layer times of the batch-1 shapes only (before the throughput batches).
    result.perLayerGpuMs = runner.perLayerGpuMs?.() ?? null;
    // Where the GPU time of one batch-1 call at the longest length goes, kernel by kernel.
    if (runner.profile && seqs.length) {
      try {
        const profile = await runner.profile(tokenBatch(spec.seed, 1, seqs[seqs.length - 1]!, vocab));
        result.kernelProfile = profile;
        progress(`kernel profile seq ${profile.seq}: ${profile.totalMs.toFixed(2)} ms in dispatches`);
      } catch (e) {
        // Adapters without timestamp-query cannot profile; the suite goes on.
        result.notes.push(`kernel profile: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    // The same call back to back, at the clocks of sustained work (one untimed submit first).
    if (runner.backToBack && seqs.length) {
      const seq = seqs[seqs.length - 1]!;
      const ids = tokenBatch(spec.seed, 1, seq, vocab);
      const passes = spec.iterations >= 20 ? 20 : 2;
      const tries = spec.iterations >= 20 ? 5 : 1;
      await runner.backToBack(ids, passes);
      const runs = [];
      const clock = hooks.clockWindow?.();
      for (let i = 0; i < tries; i++) runs.push(await runner.backToBack(ids, passes));
      const smClock = clock?.close();
      const gpu = runs.map((r) => r.lastPassGpuMs).filter((x): x is number => x !== undefined);
      result.backToBack = {
        seq,
        passes,
        tries,
        wallMsPerPassP50: median(runs.map((r) => r.wallMsPerPass)),
        ...(smClock ? { smClock } : {}),
        ...(gpu.length === runs.length ? { lastPassGpuMsP50: median(gpu) } : {}),
      };
      progress(
        `back to back (${passes} passes a submit) seq ${seq}: wall ${result.backToBack.wallMsPerPassP50.toFixed(2)} ms a pass` +
          (gpu.length ? `, last pass GPU ${result.backToBack.lastPassGpuMsP50?.toFixed(2)} ms` : ''),
      );
      // The kernel profile again, its pass last in a back-to-back submit: where the time goes at
      // sustained clocks (the one above shows an idle GPU's single call).
      if (runner.profile && result.kernelProfile) {
        try {
          const warm = await runner.profile(ids, passes - 1);
          result.kernelProfileSustained = warm;
          progress(
            `kernel profile seq ${seq} after ${passes - 1} passes: ${warm.totalMs.toFixed(2)} ms in dispatches`,
          );
        } catch (e) {
          result.notes.push(`sustained kernel profile: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }

    const tpSeq = Math.min(spec.throughputSeq, spec.model.maxPositions);
    for (const batch of spec.batches) {
      const ids = tokenBatch(spec.seed, batch, tpSeq, vocab);
      const timed = await timeCalls(runner, ids, Math.max(1, spec.warmup), spec.iterations);
      const rec = withGpu(summarize(timed.times, tpSeq, batch), timed.gpu, timed.calls);
      result.throughput.push({ ...rec, itemsPerSec: (batch * 1000) / rec.p50 });
      progress(`batch ${batch} seq ${tpSeq}: p50 ${rec.p50.toFixed(1)} ms`);
    }

    const classifyWith = runner.classifyWith?.bind(runner);
    for (const { label, criterion } of classifyWith ? (spec.criteria ?? []) : []) {
      if (!classifyWith) break;
      for (const seq of (spec.criteriaSeqs ?? seqs).filter((q) => q <= spec.model.maxPositions)) {
        const ids = tokenBatch(spec.seed, 1, seq, vocab);
        for (let i = 0; i < spec.warmup; i++) await classifyWith(ids, criterion);
        const exits: number[] = [];
        const skipped: number[] = [];
        const times: number[] = [];
        const gpu: (CallGpuTime | null | undefined)[] = [];
        for (let i = 0; i < spec.iterations; i++) {
          const t = performance.now();
          const r = await classifyWith(ids, criterion);
          times.push(performance.now() - t);
          gpu.push(runner.lastGpuTime?.());
          exits.push(r[0]!.exitLayer);
          if (typeof r[0]!.skippedLayers === 'number') skipped.push(r[0]!.skippedLayers);
        }
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        progress(`${label} seq ${seq}: p50 ${summarize(times, seq, 1).p50.toFixed(1)} ms`);
        result.criteria.push({
          ...withGpu(summarize(times, seq, 1), gpuStats(gpu)),
          label,
          meanExitLayer: mean(exits),
          meanSkippedLayers: skipped.length ? mean(skipped) : null,
        });
      }
    }
    if (runner.gpuBytes) result.gpuBytes = runner.gpuBytes();
    result.ok = true;
  } catch (error) {
    result.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } finally {
    try {
      await runner?.dispose();
    } catch {
      // disposing after a failure may fail again; the suite already has its error
    }
  }
  return result;
}
