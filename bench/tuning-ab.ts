/**
 * A/B of kernel tunings on whole forward passes (`bench.js --tuning-ab '[{}, {"attention":"rows"}]'`):
 * one classifier per KernelTuning on the same model, each timed at batch 1 by back-to-back passes
 * (PonderClassifier.timeBackToBack: sustained clocks, the last pass's GPU time), in interleaved
 * rounds so that a clock or thermal drift falls on every tuning alike; then one sustained kernel
 * profile each (profileKernels with warm passes). The first tuning is the baseline of the ratios.
 * Kernel choices are made on this rather than on single products, since a forward pass is a chain
 * of short dependent dispatches whose fixed costs a product timed alone does not show.
 */
import { median, tokenBatch, type KernelProfileRecord } from './common';

/** What the A/B needs of a classifier (PonderClassifier has it). */
export interface AbClassifier {
  timeBackToBack(
    input: { inputIds: number[] }[],
    passes: number,
  ): Promise<{ wallMsPerPass: number; lastPassGpuMs?: number }>;
  profileKernels(
    input: { inputIds: number[] }[],
    options?: { warmPasses?: number },
  ): Promise<Omit<KernelProfileRecord, 'seq' | 'warmPasses'>>;
  dispose(): void;
}

export interface TuningAbRecord {
  /** The KernelTuning as given (JSON). */
  tuning: string;
  /** The last pass's GPU time of each submit, over all rounds. */
  gpuMs: number[];
  gpuMsP50: number;
  /** gpuMsP50 of the first tuning / this one (above 1: faster than the baseline). */
  speedup: number;
  wallMsPerPassP50: number;
  profile?: Omit<KernelProfileRecord, 'seq'>;
  error?: string;
}

export interface TuningAbReport {
  model: string;
  seq: number;
  passes: number;
  rounds: number;
  triesPerRound: number;
  records: TuningAbRecord[];
}

export async function tuningAb(
  model: { id: string; vocabSize: number },
  tunings: Record<string, unknown>[],
  create: (tuning: Record<string, unknown>) => Promise<AbClassifier>,
  options: { seq: number; passes: number; rounds: number; tries: number; log?: (line: string) => void },
): Promise<TuningAbReport> {
  const log = options.log ?? (() => undefined);
  const ids = tokenBatch(1, 1, options.seq, model.vocabSize);
  const input = ids.map((inputIds) => ({ inputIds }));
  const made: { tuning: string; classifier?: AbClassifier; error?: string; gpu: number[]; wall: number[] }[] =
    [];
  for (const tuning of tunings) {
    const name = JSON.stringify(tuning);
    try {
      const classifier = await create(tuning);
      await classifier.timeBackToBack(input, options.passes); // compile, allocate, first touch
      made.push({ tuning: name, classifier, gpu: [], wall: [] });
    } catch (e) {
      made.push({ tuning: name, error: e instanceof Error ? e.message : String(e), gpu: [], wall: [] });
    }
  }
  for (let round = 0; round < options.rounds; round++) {
    for (const m of made) {
      if (!m.classifier) continue;
      for (let i = 0; i < options.tries; i++) {
        const r = await m.classifier.timeBackToBack(input, options.passes);
        if (r.lastPassGpuMs !== undefined) m.gpu.push(r.lastPassGpuMs);
        m.wall.push(r.wallMsPerPass);
      }
    }
  }
  const records: TuningAbRecord[] = [];
  for (const m of made) {
    if (!m.classifier) {
      records.push({
        tuning: m.tuning,
        gpuMs: [],
        gpuMsP50: NaN,
        speedup: NaN,
        wallMsPerPassP50: NaN,
        error: m.error!,
      });
      continue;
    }
    const p = await m.classifier.profileKernels(input, { warmPasses: options.passes - 1 });
    m.classifier.dispose();
    const gpuMsP50 = m.gpu.length ? median(m.gpu) : NaN;
    records.push({
      tuning: m.tuning,
      gpuMs: m.gpu,
      gpuMsP50,
      speedup: NaN,
      wallMsPerPassP50: median(m.wall),
      profile: { totalMs: p.totalMs, byKernel: p.byKernel, warmPasses: options.passes - 1 },
    });
  }
  const base = records[0]?.gpuMsP50 ?? NaN;
  for (const r of records) {
    r.speedup = base / r.gpuMsP50;
    log(
      `tuning A/B ${model.id} seq ${options.seq} ${r.tuning}: ` +
        (r.error
          ? `failed: ${r.error}`
          : `${r.gpuMsP50.toFixed(3)} ms a pass back to back (${r.speedup.toFixed(3)}×)`),
    );
  }
  return {
    model: model.id,
    seq: options.seq,
    passes: options.passes,
    rounds: options.rounds,
    triesPerRound: options.tries,
    records,
  };
}
