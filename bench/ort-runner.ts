/**
 * onnxruntime-web as a suite Runner (bench/suite.ts), for the bench page and Deno. The module is
 * passed in, so each caller picks its build ('onnxruntime-web/webgpu' or '/wasm').
 *
 * WebGPU EP: bench/ort-gpu-time.ts's meter is installed before the session is created (so the device
 * ORT requests gets 'timestamp-query' where the adapter has it), counts every run's submits and
 * mapAsync calls, and measures GPU time on the extra calls the suite asks for (`outsideGpuTime`).
 */
import type * as Ort from 'onnxruntime-web';
import { GpuMeter, selfCheck, type MeteredRun, type RunCounts } from './ort-gpu-time';
import type { Runner } from './suite';

export async function ortRunner(
  ort: typeof Ort,
  model: string | Uint8Array,
  ep: 'webgpu' | 'wasm',
  extraNotes: string[] = [],
): Promise<Runner> {
  const options: Ort.InferenceSession.SessionOptions = {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
  };
  const meter = ep === 'webgpu' && typeof GPUQueue !== 'undefined' ? GpuMeter.install() : null;
  let session: Ort.InferenceSession;
  try {
    session =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
  } catch (error) {
    meter?.release();
    throw error;
  }
  const tensor = (rows: number[][]) =>
    new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
  const notes = [
    `onnxruntime-web ${ort.env.versions.web ?? '?'}, EP ${ep}, graph optimization 'all'`,
    `wasm threads: ${ort.env.wasm.numThreads ?? '?'}`,
    ...extraNotes,
  ];
  const run = async (ids: number[][]) => {
    const out = await session.run({
      input_ids: tensor(ids),
      attention_mask: tensor(ids.map((r) => r.map(() => 1))),
      token_type_ids: tensor(ids.map((r) => r.map(() => 0))),
    });
    const logits = out.logits!;
    const data = (await logits.getData()) as Float32Array;
    const C = logits.dims[1]!;
    return ids.map((_, b) => Array.from(data.subarray(b * C, (b + 1) * C)));
  };
  if (!meter) {
    if (ep === 'webgpu')
      notes.push('ORT GPU time: not measured: this runtime has no GPUQueue global to wrap');
    return { notes, run, dispose: () => session.release() };
  }

  const unavailable = await attachToOrtDevice(ort, meter, notes);
  let last: RunCounts | null = null;
  return {
    notes,
    async run(ids) {
      const { value, run: counts } = await meter.measure(() => run(ids), false);
      last = counts;
      return value;
    },
    lastCalls: () => last,
    outsideGpuTime: {
      unavailable,
      async run(ids): Promise<MeteredRun> {
        return (await meter.measure(() => run(ids), true)).run;
      },
    },
    dispose: async () => {
      try {
        await session.release();
      } finally {
        meter.release();
      }
    },
  };
}

/**
 * Finds the device ORT runs on (ORT sets env.webgpu.device once its first WebGPU session exists;
 * else the last device requested since the meter was installed), attaches the meter, runs its
 * self-check there, and says in `notes` what came of it. Returns why submits cannot be bracketed,
 * or null.
 */
async function attachToOrtDevice(ort: typeof Ort, meter: GpuMeter, notes: string[]): Promise<string | null> {
  let device: GPUDevice | null = null;
  try {
    const reported: unknown = await ort.env.webgpu.device;
    if (typeof GPUDevice !== 'undefined' && reported instanceof GPUDevice) device = reported;
  } catch {
    // older builds may not expose it; the captured device is the fallback
  }
  device ??= meter.captured[meter.captured.length - 1]?.device ?? null;
  if (!device) {
    const why =
      'no WebGPU device of ORT found (env.webgpu.device unset, none requested since the meter was installed)';
    notes.push(`ORT GPU time: not measured: ${why}`);
    return why;
  }
  const captured = meter.captured.find((c) => c.device === device);
  const origin = !captured
    ? 'ORT’s device existed before the meter was installed (an earlier session in this runtime)'
    : captured.addedTimestamps
      ? "ORT requested its device without 'timestamp-query'; the meter added it (the adapter has it)"
      : captured.askedTimestamps
        ? "ORT requested its device with 'timestamp-query' itself"
        : "ORT requested its device; the adapter has no 'timestamp-query'";
  const cannot = meter.attach(device);
  if (cannot) {
    notes.push(`ORT GPU time: not measured: ${cannot} (${origin})`);
    return cannot;
  }
  const check = await selfCheck(meter);
  notes.push(
    `ORT GPU time: each submit of ORT's device bracketed by two timestamp marks in the same submit, ` +
      `on extra calls after the timed ones (bench/ort-gpu-time.ts); ${origin}; self-check ` +
      `${check.ok ? 'passed' : 'FAILED'}: ${check.summary}`,
  );
  return check.ok ? null : `the meter's self-check failed: ${check.summary}`;
}
