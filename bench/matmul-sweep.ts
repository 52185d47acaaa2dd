/**
 * Matmul tile sweep for the GPU machine (`bench.js --matmul-sweep`, bench/deno/bench.ts): our
 * MatmulKernel at ALBERT-base's linear-layer shapes (rows 16, 128, 1024) and at square 1024–4096,
 * for every entry of SWEEP_CONFIGS, in any WebGPU runtime. Timed like bench/gpu-matmul.ts (its pass
 * timer, filled buffers and prepareMatmul, so split-K runs where the kernel chooses it): `reps`
 * copies of the product's dispatches in one pass, median of PASSES.
 *
 * Each entry is passed as MatmulKernel.create's `tiles` as is, so fields the kernel gains later
 * (a split-K target, large-tile sizes) can be listed here without touching the rest; a config whose
 * create() or prepare() throws is recorded as failed and the sweep goes on. Every measurement reads
 * its output back and compares it with the exact value (the inputs are constant), so a fast but
 * wrong path shows up. The sweep stops starting measurements after its time budget.
 */
import type { KernelDispatch, WeightDtype } from '../shaders/kernel';
import { MatmulKernel, type MatmulTiles } from '../shaders/matmul';
import { median, type SweepRecord, type SweepReport } from './common';
import {
  createPassTimer,
  filledBuffer,
  FILLED_F32,
  prepareMatmul,
  leastReps,
  repsFor,
  timeDispatches,
  warmUpGpu,
  type PassTimer,
} from './gpu-matmul';
import { ALBERT_BASE } from './random-model';
import { modelShapes, squareShapes, type MatmulShapeSpec } from './shapes';

/** A `tiles` option as given: today's MatmulTiles fields, and any the kernel gains later. */
export type SweepConfig = Partial<MatmulTiles> & Record<string, unknown>;

/**
 * The configs tried, in order ({} = the kernel's defaults, the baseline). Edit freely. Each is
 * spread over DEFAULT_MATMUL_TILES by create(); fields a kernel version does not know are passed
 * through and ignored by it (the kernel-path column tells which path ran).
 */
export const SWEEP_CONFIGS: SweepConfig[] = [
  {},
  // Neither split-K nor the 128 × 128 tiles: the kernel before the rewrite.
  { splitKTarget: 0, largeMinWorkgroups: 0 },
  { splitKTarget: 256 },
  { splitKTarget: 1024 },
  { splitKTarget: 2048, splitKMinChunk: 64 },
  // The 128 × 128 tiles: off, from 64 workgroups up (the default is 256), with K steps of 4.
  { largeMinWorkgroups: 0 },
  { largeMinWorkgroups: 64 },
  { largeTileK: 4 },
  { wgX: 8, wgY: 8, tileK: 16 },
  { wgX: 16, wgY: 16, tileK: 16 },
  { wgX: 8, wgY: 4, tileK: 16 },
  { wgX: 4, wgY: 4, tileK: 32 },
];

/** Weight dtypes swept (f16 only where the device has shader-f16). */
export const SWEEP_DTYPES: WeightDtype[] = ['f32', 'f16'];
/** FLOP per timed pass (reps = budget / FLOP, 1..200): modest, the sweep has many cells. */
export const SWEEP_FLOP_BUDGET = 2e10;
const PASSES = 5;

/**
 * Shape sets: `model` ALBERT-base's four linear layers at rows 16, 128, 1024; `square` 1024–4096;
 * `all` both; `batch1` the rows of one sequence (64 and 128) at ALBERT-base's shapes and at H 512 /
 * I 2048 (the shipped model's), where split-K and the register-blocked tiles compete; `rows` those
 * and ALBERT-base's rows 16 and 1024.
 */
export type SweepShapeSet = 'all' | 'model' | 'square' | 'batch1' | 'rows';

export function sweepShapes(quick: boolean, which: SweepShapeSet = 'all'): MatmulShapeSpec[] {
  if (quick)
    return [
      ...modelShapes(64, 128, 16, 'tiny rows 16').slice(0, 2),
      // Long K at few rows: where split-K applies.
      { what: 'tiny rows 16 long-K', M: 16, N: 64, K: 1024 },
      ...squareShapes([128]),
    ];
  const { hiddenSize, intermediateSize } = ALBERT_BASE;
  if (which === 'batch1' || which === 'rows')
    return [
      ...(which === 'rows' ? [16, 64, 128, 1024] : [64, 128]).flatMap((r) =>
        modelShapes(hiddenSize, intermediateSize, r, `albert-base rows ${r}`),
      ),
      ...modelShapes(512, 2048, 128, 'h512 rows 128'),
    ];
  return [
    ...(which === 'square'
      ? []
      : [16, 128, 1024].flatMap((r) =>
          modelShapes(hiddenSize, intermediateSize, r, `albert-base rows ${r}`),
        )),
    ...(which === 'model' ? [] : squareShapes([1024, 2048, 4096])),
  ];
}

const message = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}`.split('\n')[0]! : String(error);

/** Largest relative error of the first `count` outputs against the exact value. */
async function checkOutput(
  device: GPUDevice,
  output: GPUBuffer,
  count: number,
  expected: number,
): Promise<number> {
  const bytes = count * 4;
  const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(output, 0, read, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const got = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  read.destroy();
  let worst = 0;
  for (const x of got)
    worst = Math.max(worst, Number.isFinite(x) ? Math.abs(x - expected) / expected : Infinity);
  return worst;
}

export async function runMatmulSweep(
  device: GPUDevice,
  options: {
    timestamps: boolean;
    f16: boolean;
    quick: boolean;
    /** Stop starting measurements after this many seconds (the rest are recorded as not run). */
    budgetSec: number;
    configs?: SweepConfig[];
    /** Which shapes (sweepShapes); default all. */
    shapes?: SweepShapeSet;
    /** Times every config is measured per shape, interleaved (median); default 1. */
    rounds?: number;
    /** Dispatches before every timed pass (createPassTimer; bench/gpu-matmul.ts warmPrelude). */
    prelude?: { dispatches: readonly KernelDispatch[]; copies: number };
    log?: (line: string) => void;
  },
): Promise<SweepReport> {
  const started = performance.now();
  const log = options.log ?? (() => undefined);
  const configs =
    options.configs ?? (options.quick ? [...SWEEP_CONFIGS.slice(0, 2), { tileK: 6 }] : SWEEP_CONFIGS);
  const dtypes = SWEEP_DTYPES.filter((d) => d === 'f32' || options.f16);
  const shapes = sweepShapes(options.quick, options.shapes);
  const flopBudget = options.quick ? 1e7 : SWEEP_FLOP_BUDGET;
  const timer: PassTimer = createPassTimer(device, options.timestamps, options.prelude?.dispatches ?? []);
  const rounds = Math.max(1, Math.floor(options.rounds ?? 1));
  const records: SweepRecord[] = [];

  // One kernel per (dtype, config), compiled up front; a failed create() fails that config's cells.
  const kernels = new Map<string, MatmulKernel | string>();
  for (const dtype of dtypes) {
    for (const [i, tiles] of configs.entries()) {
      try {
        kernels.set(
          `${dtype} ${i}`,
          await MatmulKernel.create(device, { weightDtype: dtype, activation: 'none', tiles }),
        );
      } catch (error) {
        kernels.set(`${dtype} ${i}`, `create() failed: ${message(error)}`);
        log(`sweep: ${dtype} config ${i} ${JSON.stringify(tiles)}: ${message(error)}`);
      }
    }
  }
  log(`sweep: ${kernels.size} kernels in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (!options.quick) await warmUpGpu(device);

  for (const s of shapes) {
    for (const dtype of dtypes) {
      const f16 = dtype === 'f16';
      const input = filledBuffer(device, s.M * s.K * 4);
      const weight = filledBuffer(device, s.N * s.K * (f16 ? 2 : 4));
      const bias = filledBuffer(device, s.N * 4);
      const output = filledBuffer(device, s.M * s.N * 4, GPUBufferUsage.COPY_SRC);
      const flop = 2 * s.M * s.N * s.K;
      const reps = repsFor(flop, flopBudget);
      // Every input is FILLED_F32 and every weight FILLED_F32 (f32) or 1.0 (f16): y = K·x·w + b.
      const expected = s.K * FILLED_F32 * (f16 ? 1 : FILLED_F32) + FILLED_F32;
      // Every config is measured once and its output checked; with rounds > 1 they are measured again
      // in the same order, so that a clock change shows up in all configs alike (median of the rounds).
      const measured: {
        dispatches: KernelDispatch[];
        scratch: GPUBuffer | null;
        record: SweepRecord;
        times: number[];
      }[] = [];
      for (const i of configs.keys()) {
        const base = { what: s.what, M: s.M, N: s.N, K: s.K, dtype, config: i };
        const kernel = kernels.get(`${dtype} ${i}`)!;
        if (typeof kernel === 'string') {
          records.push({ ...base, ok: false, error: kernel });
          continue;
        }
        if ((performance.now() - started) / 1000 > options.budgetSec) {
          records.push({
            ...base,
            ok: false,
            error: `not run: the sweep's ${options.budgetSec.toFixed(0)} s were spent`,
          });
          continue;
        }
        // Validation errors do not throw in WebGPU: an error scope turns them into a failed cell,
        // and the output is cleared first so that a dispatch that did nothing fails the check.
        device.pushErrorScope('validation');
        let scoped = true;
        let scratch: GPUBuffer | null = null;
        try {
          const clear = device.createCommandEncoder();
          clear.clearBuffer(output);
          device.queue.submit([clear.finish()]);
          const p = prepareMatmul(kernel, { input, weight, bias, output }, s);
          scratch = p.scratch;
          const ms = await timeDispatches(timer, p.dispatches, reps, PASSES);
          const maxRelError = await checkOutput(device, output, Math.min(s.M * s.N, 1 << 16), expected);
          const invalid = await device.popErrorScope();
          scoped = false;
          if (invalid) throw new Error(`validation: ${invalid.message}`);
          const record: SweepRecord = {
            ...base,
            ok: true,
            ms,
            gflops: flop / ms / 1e6,
            reps,
            kernel: p.label,
            maxRelError,
          };
          records.push(record);
          measured.push({ dispatches: p.dispatches, scratch, record, times: [ms] });
        } catch (error) {
          if (scoped) await device.popErrorScope().catch(() => null);
          scratch?.destroy();
          records.push({ ...base, ok: false, error: `prepare()/run failed: ${message(error)}` });
        }
      }
      for (let round = 1; round < rounds; round++) {
        for (const m of measured) m.times.push(await timeDispatches(timer, m.dispatches, reps, PASSES));
      }
      for (const { scratch, record, times } of measured) {
        scratch?.destroy();
        if (times.length < 2) continue;
        record.ms = median(times);
        record.gflops = flop / record.ms / 1e6;
        record.roundsMs = times;
      }
      for (const b of [input, weight, bias, output]) b.destroy();
      const best = Math.max(
        ...records.filter((r) => r.what === s.what && r.dtype === dtype).map((r) => r.gflops ?? 0),
      );
      log(`sweep: ${s.what} ${dtype}: best ${best.toPrecision(3)} GFLOP/s`);
    }
  }
  timer.destroy();
  return {
    configs,
    records,
    timing: timer.timestamps ? 'timestamp-query' : 'wall',
    note:
      `MatmulKernel (activation none) per tiles config, ${PASSES} passes of ${leastReps(flopBudget)} to 200 reps ` +
      `(FLOP budget ${flopBudget} per pass), median` +
      (rounds > 1 ? `; ${rounds} rounds over the configs per shape, median of the rounds` : '') +
      (options.prelude?.copies
        ? `; every timed pass after ${options.prelude.copies} untimed 4096³ f32 products in the same submit (sustained clocks)`
        : ''),
    elapsedSec: (performance.now() - started) / 1000,
  };
}
