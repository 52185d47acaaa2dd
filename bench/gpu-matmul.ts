/**
 * Matmul GFLOP/s of our WGSL kernel (shaders/matmul.ts, default tiles) at a model's shapes and at
 * square sizes, in any WebGPU runtime (Chromium page, Deno). bench/matmul-sweep.ts and
 * tests/f16/kernel-bench.ts time the same way: `reps` copies of one dispatch in one compute pass,
 * timed with timestamp queries when the device has them (else wall time minus an empty submit),
 * median of `passes`. Each product runs as the kernel would run it alone (prepareMatmul: split-K
 * where the kernel chooses it), and each record names the path (the dispatches' labels).
 */
import { encodeDispatches, type KernelDispatch, type WeightDtype } from '../shaders/kernel';
import { MatmulKernel } from '../shaders/matmul';
import { median, type MatmulRecord } from './common';
import type { MatmulShapeSpec } from './shapes';

export type { MatmulShapeSpec } from './shapes';

/** Every 32-bit word of a filledBuffer: 1.0 in each f16 half, FILLED_F32 as an f32. */
export const FILL_WORD = 0x3c003c00;
/** FILL_WORD read as an f32 (2^-7 × 1.0018…). */
export const FILLED_F32 = new Float32Array(new Uint32Array([FILL_WORD]).buffer)[0]!;

/**
 * A storage buffer of small non-zero values (0x3c00 is 1.0 as f16; the f32 pattern is modest too).
 * `extraUsage`: e.g. GPUBufferUsage.COPY_SRC to read it back.
 */
export function filledBuffer(device: GPUDevice, bytes: number, extraUsage = 0): GPUBuffer {
  const b = device.createBuffer({
    size: Math.ceil(bytes / 4) * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | extraUsage,
    mappedAtCreation: true,
  });
  new Uint32Array(b.getMappedRange()).fill(FILL_WORD);
  b.unmap();
  return b;
}

/**
 * Runs dispatches in one compute pass and returns its time in ms: GPU time from timestamp queries
 * when `timestamps` is set, else the wall time of submit + onSubmittedWorkDone.
 */
export interface PassTimer {
  /** True when times come from timestamp queries (GPU time), false for wall time. */
  timestamps: boolean;
  run(dispatches: KernelDispatch[]): Promise<number>;
  destroy(): void;
}

/**
 * `prelude`: dispatches run before every timed pass, in an untimed pass of the same command buffer,
 * so that the timed one starts at the clocks of sustained work (warmPrelude()). Without it, the GPU
 * idles through each CPU round trip between passes (Deno's mapAsync sleeps 10 ms) and a short pass
 * runs at whatever clock that leaves.
 */
export function createPassTimer(
  device: GPUDevice,
  timestamps: boolean,
  prelude: readonly KernelDispatch[] = [],
): PassTimer {
  const querySet = timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const resolve = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const readback = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const run = async (dispatches: KernelDispatch[]): Promise<number> => {
    const t = performance.now();
    const encoder = device.createCommandEncoder();
    if (prelude.length) {
      const warm = encoder.beginComputePass({ label: 'prelude' });
      encodeDispatches(warm, [...prelude]);
      warm.end();
    }
    const pass = encoder.beginComputePass(
      querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
    );
    encodeDispatches(pass, dispatches);
    pass.end();
    if (querySet) {
      encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, readback, 0, 16);
    }
    device.queue.submit([encoder.finish()]);
    if (!querySet) {
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t;
    }
    await readback.mapAsync(GPUMapMode.READ);
    const [begin, end] = new BigUint64Array(readback.getMappedRange().slice(0));
    readback.unmap();
    return Number(end! - begin!) / 1e6;
  };
  const destroy = () => {
    querySet?.destroy();
    resolve.destroy();
    readback.destroy();
  };
  return { timestamps: querySet !== null, run, destroy };
}

/**
 * Time of one copy of `dispatches` (ms) in each of `passes` passes of `reps` copies, after one untimed
 * pass (compile, first touch); in wall time minus the fastest of 3 empty passes.
 */
export async function timePasses(
  timer: PassTimer,
  dispatches: readonly KernelDispatch[],
  reps: number,
  passes: number,
): Promise<number[]> {
  await timer.run([...dispatches]);
  let empty = 0;
  if (!timer.timestamps) {
    empty = Infinity;
    for (let i = 0; i < 3; i++) empty = Math.min(empty, await timer.run([]));
  }
  const all = Array.from({ length: reps }, () => dispatches).flat();
  const runs: number[] = [];
  for (let i = 0; i < passes; i++) runs.push(Math.max(1e-6, (await timer.run(all)) - empty) / reps);
  return runs;
}

/** The median of timePasses(). */
export async function timeDispatches(
  timer: PassTimer,
  dispatches: readonly KernelDispatch[],
  reps: number,
  passes: number,
): Promise<number> {
  return median(await timePasses(timer, dispatches, reps, passes));
}

/**
 * The dispatches of one product as the kernel would run it on its own (`prepareAuto`: split-K
 * partial sums and their reduction, or one dispatch). The caller destroys `scratch`. `label`: the
 * dispatches' labels, which name the path taken.
 */
/**
 * Products per timed pass: about `flopBudget` of work, at most 200 copies and, with a GPU-sized
 * budget (>= 1e10), at least 10: after the CPU round trip between passes the first products of a
 * pass can run far slower than the rest on the H200 (Deno). 4096³ on the 128 x 128 tiles took
 * 24.7 ms alone and 5.49 ms a copy at ten, by timestamps and by wall clock alike
 * (bench/results/archive/2026-11-27-h200-matmul-probe.json). Software adapters (budget 2e8) keep 1.
 */
export function repsFor(flop: number, flopBudget: number): number {
  return Math.max(leastReps(flopBudget), Math.min(200, Math.round(flopBudget / flop)));
}

/** The fewest products repsFor() puts in a pass at this budget. */
export function leastReps(flopBudget: number): number {
  return flopBudget >= 1e10 ? 10 : 1;
}

/**
 * A product ready to dispatch on filled buffers (filledBuffer): input, weight (f16 or f32 as the
 * kernel's), bias and output; `destroy` frees them and any split-K scratch.
 */
export function filledProduct(
  device: GPUDevice,
  kernel: MatmulKernel,
  shape: MatmulShapeSpec,
): ReturnType<typeof prepareMatmul> & { destroy(): void } {
  const { M, N, K } = shape;
  const weightBytes = kernel.weightDtype === 'f16' ? 2 : 4;
  const buffers = [M * K * 4, N * K * weightBytes, N * 4, M * N * 4].map((b) => filledBuffer(device, b));
  const [input, weight, bias, output] = buffers as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  const p = prepareMatmul(kernel, { input, weight, bias, output }, shape);
  return {
    ...p,
    destroy: () => {
      p.scratch?.destroy();
      for (const b of buffers) b.destroy();
    },
  };
}

/**
 * Keeps the GPU busy for about `seconds` (passes of a 1024³ product) so that the timings that follow
 * do not start from idle clocks.
 */
export async function warmUpGpu(device: GPUDevice, seconds = 1.5): Promise<void> {
  const n = 1024;
  const kernel = await MatmulKernel.create(device, { weightDtype: 'f32', activation: 'none' });
  const p = filledProduct(device, kernel, { what: 'warm-up', M: n, N: n, K: n });
  const timer = createPassTimer(device, false);
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) await timer.run(Array(20).fill(p.dispatches).flat());
  timer.destroy();
  p.destroy();
}

/** The square product warmPrelude() repeats: 4096³ f32, 0.14 TFLOP (5.5 ms on the H200's 128 x 128 tiles). */
export const PRELUDE_SIZE = 4096;

/**
 * `copies` copies of a 4096³ f32 product for createPassTimer's prelude (none for 0); `destroy`
 * frees its buffers.
 */
export async function warmPrelude(
  device: GPUDevice,
  copies: number,
): Promise<{ dispatches: KernelDispatch[]; copies: number; destroy(): void }> {
  if (copies <= 0) return { dispatches: [], copies: 0, destroy: () => undefined };
  const n = PRELUDE_SIZE;
  const kernel = await MatmulKernel.create(device, { weightDtype: 'f32', activation: 'none' });
  const p = filledProduct(device, kernel, { what: 'prelude', M: n, N: n, K: n });
  return {
    dispatches: Array.from({ length: copies }, () => p.dispatches).flat(),
    copies,
    destroy: p.destroy,
  };
}

/** One target product timed after preludes of increasing length (warmProbe). */
export interface WarmProbeRecord {
  what: string;
  dtype: WeightDtype;
  kernel: string;
  /** Copies of the 4096³ prelude product before each timed pass. */
  preludeCopies: number;
  reps: number;
  ms: number;
  allMs: number[];
  gflops: number;
}

/**
 * How long a prelude of sustained work (warmPrelude) must be before a short timed pass runs at full
 * speed: the same product timed after 0, 1, 2, 4, 8 and 16 copies of the prelude product.
 */
export async function warmProbe(
  device: GPUDevice,
  shapes: MatmulShapeSpec[],
  options: { dtypes: WeightDtype[]; timestamps: boolean; reps: number; passes: number; copies?: number[] },
): Promise<WarmProbeRecord[]> {
  const records: WarmProbeRecord[] = [];
  for (const copies of options.copies ?? [0, 1, 2, 4, 8, 16]) {
    const prelude = await warmPrelude(device, copies);
    const timer = createPassTimer(device, options.timestamps, prelude.dispatches);
    for (const dtype of options.dtypes) {
      const kernel = await MatmulKernel.create(device, { weightDtype: dtype, activation: 'none' });
      for (const s of shapes) {
        const p = filledProduct(device, kernel, s);
        const allMs = await timePasses(timer, p.dispatches, options.reps, options.passes);
        p.destroy();
        const ms = median(allMs);
        records.push({
          what: s.what,
          dtype,
          kernel: p.label,
          preludeCopies: copies,
          reps: options.reps,
          ms,
          allMs,
          gflops: (2 * s.M * s.N * s.K) / ms / 1e6,
        });
      }
    }
    timer.destroy();
    prelude.destroy();
  }
  return records;
}

export function prepareMatmul(
  kernel: MatmulKernel,
  args: { input: GPUBuffer; weight: GPUBuffer; bias: GPUBuffer; output: GPUBuffer },
  shape: MatmulShapeSpec,
): { dispatches: KernelDispatch[]; scratch: GPUBuffer | null; label: string } {
  const { dispatches, scratch } = kernel.prepareAuto(args, shape);
  return { dispatches, scratch, label: dispatches.map((d) => d.label).join(' + ') };
}

export async function matmulBench(
  device: GPUDevice,
  shapes: MatmulShapeSpec[],
  options: {
    dtypes: WeightDtype[];
    timestamps: boolean;
    flopBudget: number;
    passes: number;
    /** Seconds of warmUpGpu() first (0: none, as on software adapters where 1024³ takes seconds). */
    warmUpSec?: number;
    /** Dispatches before every timed pass (createPassTimer). */
    prelude?: readonly KernelDispatch[];
  },
): Promise<MatmulRecord[]> {
  const timer = createPassTimer(device, options.timestamps, options.prelude ?? []);

  const records: MatmulRecord[] = [];
  if (options.warmUpSec) await warmUpGpu(device, options.warmUpSec);
  for (const dtype of options.dtypes) {
    const kernel = await MatmulKernel.create(device, { weightDtype: dtype, activation: 'none' });
    for (const s of shapes) {
      const p = filledProduct(device, kernel, s);
      const flop = 2 * s.M * s.N * s.K;
      const reps = repsFor(flop, options.flopBudget);
      const ms = await timeDispatches(timer, p.dispatches, reps, options.passes);
      p.destroy();
      records.push({
        ...s,
        dtype,
        ms,
        gflops: flop / ms / 1e6,
        timing: timer.timestamps ? 'timestamp-query' : 'wall',
        reps,
        kernel: p.label,
      });
    }
  }
  timer.destroy();
  return records;
}

export interface MatmulProbeRecord {
  what: string;
  M: number;
  N: number;
  K: number;
  kernel: string;
  reps: number;
  timing: 'timestamp-query' | 'wall';
  /** Per product, median of the passes. */
  ms: number;
  /** Per product, every pass. */
  allMs: number[];
}

/**
 * Times one f32 product at several reps per pass, by timestamps and by wall clock (minus an empty
 * pass), each pass on its own: where the two clocks or the rep counts disagree, the matmul table's
 * single number is not to be trusted (bench/deno --matmul-probe).
 */
export async function matmulProbe(
  device: GPUDevice,
  shapes: MatmulShapeSpec[],
  options: { reps: number[]; passes: number; timestamps: boolean },
): Promise<MatmulProbeRecord[]> {
  const kernel = await MatmulKernel.create(device, { weightDtype: 'f32', activation: 'none' });
  const timers = [
    createPassTimer(device, false),
    ...(options.timestamps ? [createPassTimer(device, true)] : []),
  ];
  const records: MatmulProbeRecord[] = [];
  for (const s of shapes) {
    const p = filledProduct(device, kernel, s);
    for (const reps of options.reps) {
      for (const timer of timers) {
        const allMs = await timePasses(timer, p.dispatches, reps, options.passes);
        records.push({
          what: s.what,
          M: s.M,
          N: s.N,
          K: s.K,
          kernel: p.label,
          reps,
          timing: timer.timestamps ? 'timestamp-query' : 'wall',
          ms: median(allMs),
          allMs,
        });
      }
    }
    p.destroy();
  }
  for (const t of timers) t.destroy();
  return records;
}
