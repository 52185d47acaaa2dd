/**
 * GPU time, submits and readbacks of whatever a library does with WebGPU, seen from outside: wrappers
 * on GPUAdapter.prototype.requestDevice, GPUQueue.prototype.submit / onSubmittedWorkDone and
 * GPUBuffer.prototype.mapAsync, no library internals. Used for onnxruntime-web's WebGPU EP
 * (bench/ort-runner.ts).
 *
 * Why: Deno's mapAsync sleeps 10 ms per poll, so wall time there mostly counts round trips, and ORT
 * may make more of them than ponder-web. GPU time compares the kernels themselves.
 *
 * How: while a bracketed run is on, every submit of the metered device's queue is sent as
 * [mark 2k, …its command buffers…, mark 2k+1], each mark an empty compute pass that writes one
 * timestamp at its end. A queue runs in order, so mark 2k+1 − mark 2k is that submit's GPU time;
 * the run's GPU time is the sum over its submits. The marks ride in the same submit rather than two
 * submits of their own, so that the library's submit's CPU cost (validation, barriers) is not
 * counted as GPU time while the GPU idles. End-of-pass stamps, because they are written once the
 * work before them is done (wgpu's Vulkan backend writes every stamp at the bottom of the pipe);
 * selfCheck() checks this on the adapter at hand. After the run, one resolve + readback (not
 * counted, outside any timed wall). Bracketing adds CPU work per submit, so the suite brackets only
 * extra calls made after the timed ones; counting alone (a counter per call) is on in every run.
 */

import { median } from './common';

/** What one run handed to WebGPU. */
export interface RunCounts {
  /** queue.submit() calls on the metered device's queue (on any queue before a device is attached). */
  submits: number;
  /** Command buffers in those submits. */
  commandBuffers: number;
  /** CPU time inside those submit() calls (ms; bracketed runs include encoding the marks). */
  submitMs: number;
  /** GPUBuffer.mapAsync() calls (any buffer), i.e. GPU → CPU readbacks. */
  mapAsync: number;
  /** Sum over those calls of the time from the call to its promise settling (ms). */
  mapAsyncMs: number;
  /** GPUQueue.onSubmittedWorkDone() calls on the metered queue: the other kind of round trip. */
  workDone: number;
}

export interface MeteredRun extends RunCounts {
  /** Sum over the run's submits of (end mark − begin mark), ms; null when not bracketed or invalid. */
  gpuMs: number | null;
  /** First begin mark to last end mark (ms): gpuMs plus the GPU's idle time between submits. */
  gpuSpanMs: number | null;
  /** Why gpuMs is null in a bracketed run (too many submits, marks not written, …). */
  error?: string;
}

/** The prototypes wrapped; a test passes fakes. */
export interface GpuScope {
  GPUAdapter: { prototype: GPUAdapter };
  GPUQueue: { prototype: GPUQueue };
  GPUBuffer: { prototype: GPUBuffer };
}

/** A device requested while the meter was installed. */
export interface CapturedDevice {
  device: GPUDevice;
  /** The requester asked for timestamp-query itself. */
  askedTimestamps: boolean;
  /** The meter added timestamp-query to the requested features (the adapter has it). */
  addedTimestamps: boolean;
}

// Dawn's limit on a query set's size: 2048 submits a run.
const MAX_QUERIES = 4096;

type Submit = GPUQueue['submit'];
type WorkDone = GPUQueue['onSubmittedWorkDone'];
type MapAsync = GPUBuffer['mapAsync'];
type RequestDevice = GPUAdapter['requestDevice'];

interface Marks {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  read: GPUBuffer;
}

let installed: GpuMeter | null = null;

export class GpuMeter {
  /** Devices created through requestDevice since install, oldest first. */
  readonly captured: CapturedDevice[] = [];
  private users = 0;
  private device: GPUDevice | null = null;
  private marks: Marks | null = null;
  private run: (RunCounts & { next: number; bracket: boolean; overflow: boolean }) | null = null;
  private readonly origSubmit: Submit;
  private readonly origWorkDone: WorkDone;
  private readonly origMapAsync: MapAsync;
  private readonly origRequestDevice: RequestDevice;

  private constructor(private readonly scope: GpuScope) {
    this.origSubmit = scope.GPUQueue.prototype.submit;
    this.origWorkDone = scope.GPUQueue.prototype.onSubmittedWorkDone;
    this.origMapAsync = scope.GPUBuffer.prototype.mapAsync;
    this.origRequestDevice = scope.GPUAdapter.prototype.requestDevice;
  }

  /**
   * Wraps the prototypes (once per scope; every install() needs a release()). Must come before the
   * library requests its device, for timestamp-query to be added to it.
   */
  static install(scope: GpuScope = globalThis as unknown as GpuScope): GpuMeter {
    if (installed && installed.scope !== scope) {
      if (installed.users > 0) throw new Error('GpuMeter: installed on another scope');
      installed = null;
    }
    const meter = installed ?? new GpuMeter(scope);
    if (meter.users++ === 0) GpuMeter.wrap(meter);
    installed = meter;
    return meter;
  }

  /** Undoes one install(); the last one restores the prototypes (the attached device stays known). */
  release(): void {
    if (this.users === 0) return;
    if (--this.users === 0) {
      const s = this.scope;
      s.GPUQueue.prototype.submit = this.origSubmit;
      s.GPUQueue.prototype.onSubmittedWorkDone = this.origWorkDone;
      s.GPUBuffer.prototype.mapAsync = this.origMapAsync;
      s.GPUAdapter.prototype.requestDevice = this.origRequestDevice;
    }
  }

  private static wrap(meter: GpuMeter): void {
    const { origSubmit, origWorkDone, origMapAsync, origRequestDevice } = meter;
    const s = meter.scope;
    s.GPUAdapter.prototype.requestDevice = function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor) {
      const wanted = [...(descriptor?.requiredFeatures ?? [])];
      const asked = wanted.includes('timestamp-query');
      const add = !asked && this.features.has('timestamp-query');
      const desc = add
        ? { ...descriptor, requiredFeatures: [...wanted, 'timestamp-query' as const] }
        : descriptor;
      return origRequestDevice.call(this, desc).then((device) => {
        meter.captured.push({ device, askedTimestamps: asked, addedTimestamps: add });
        return device;
      });
    } as RequestDevice;
    s.GPUQueue.prototype.submit = function (this: GPUQueue, buffers: Iterable<GPUCommandBuffer>) {
      const run = meter.run;
      if (!run || (meter.device && this !== meter.device.queue)) return origSubmit.call(this, buffers);
      const t = performance.now();
      const list = [...buffers];
      run.submits++;
      run.commandBuffers += list.length;
      try {
        if (!run.bracket || !meter.marks) return origSubmit.call(this, list);
        if (run.next + 2 > MAX_QUERIES) {
          run.overflow = true;
          return origSubmit.call(this, list);
        }
        const k = run.next;
        run.next += 2;
        return origSubmit.call(this, [meter.mark(k), ...list, meter.mark(k + 1)]);
      } finally {
        run.submitMs += performance.now() - t;
      }
    } as Submit;
    s.GPUQueue.prototype.onSubmittedWorkDone = function (this: GPUQueue) {
      const run = meter.run;
      if (run && (!meter.device || this === meter.device.queue)) run.workDone++;
      return origWorkDone.call(this);
    } as WorkDone;
    s.GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: Parameters<MapAsync>) {
      const run = meter.run;
      const p = origMapAsync.apply(this, args);
      if (!run) return p;
      run.mapAsync++;
      const t = performance.now();
      const done = () => (run.mapAsyncMs += performance.now() - t);
      p.then(done, done);
      return p;
    } as MapAsync;
  }

  /**
   * Meters this device's queue from now on. Returns why its submits cannot be bracketed (no
   * timestamp-query), or null when they can; counting works either way.
   */
  attach(device: GPUDevice): string | null {
    if (this.device !== device) {
      this.destroyMarks();
      this.device = device;
      if (device.features.has('timestamp-query')) {
        this.marks = {
          querySet: device.createQuerySet({
            label: 'gpu-meter.marks',
            type: 'timestamp',
            count: MAX_QUERIES,
          }),
          resolve: device.createBuffer({
            label: 'gpu-meter.resolve',
            size: MAX_QUERIES * 8,
            usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
          }),
          read: device.createBuffer({
            label: 'gpu-meter.read',
            size: MAX_QUERIES * 8,
            usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
          }),
        };
      }
    }
    return this.marks ? null : "the device has no 'timestamp-query'";
  }

  /** The metered device, once attached. */
  get attached(): GPUDevice | null {
    return this.device;
  }

  private destroyMarks(): void {
    if (!this.marks) return;
    this.marks.querySet.destroy();
    this.marks.resolve.destroy();
    this.marks.read.destroy();
    this.marks = null;
  }

  /** Stops metering a device (e.g. before it is destroyed). */
  detach(): void {
    this.destroyMarks();
    this.device = null;
  }

  private mark(index: number): GPUCommandBuffer {
    const encoder = this.device!.createCommandEncoder({ label: 'gpu-meter.mark' });
    encoder
      .beginComputePass({ timestampWrites: { querySet: this.marks!.querySet, endOfPassWriteIndex: index } })
      .end();
    return encoder.finish();
  }

  /** Runs `fn` with counting on and, when `bracket`, every submit bracketed by timestamp marks. */
  async measure<T>(fn: () => Promise<T>, bracket: boolean): Promise<{ value: T; run: MeteredRun }> {
    if (this.run) throw new Error('GpuMeter.measure: runs cannot nest');
    if (bracket && !this.marks)
      throw new Error('GpuMeter.measure: no timestamp-query on the attached device');
    const run = {
      submits: 0,
      commandBuffers: 0,
      submitMs: 0,
      mapAsync: 0,
      mapAsyncMs: 0,
      workDone: 0,
      next: 0,
      bracket,
      overflow: false,
    };
    this.run = run;
    let value: T;
    try {
      value = await fn();
    } finally {
      this.run = null;
    }
    const { next, overflow, bracket: _b, ...counts } = run;
    void _b;
    const result: MeteredRun = { ...counts, gpuMs: null, gpuSpanMs: null };
    if (!bracket) return { value, run: result };
    if (overflow)
      return { value, run: { ...result, error: `more than ${MAX_QUERIES / 2} submits in one run` } };
    if (next === 0) return { value, run: { ...result, gpuMs: 0, gpuSpanMs: 0 } };
    const stamps = await this.readMarks(next);
    return { value, run: { ...result, ...sumBrackets(stamps) } };
  }

  private async readMarks(count: number): Promise<BigUint64Array> {
    const { querySet, resolve, read } = this.marks!;
    const encoder = this.device!.createCommandEncoder({ label: 'gpu-meter.resolve' });
    encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, count * 8);
    this.origSubmit.call(this.device!.queue, [encoder.finish()]);
    await this.origMapAsync.call(read, GPUMapMode.READ, 0, count * 8);
    const stamps = new BigUint64Array(read.getMappedRange(0, count * 8).slice(0));
    read.unmap();
    return stamps;
  }
}

/**
 * Sums (end − begin) over consecutive pairs of marks (ns → ms). The marks are written in queue
 * order, so they must not decrease and must not be zero: a mark not written (or a stale one from
 * an earlier run) breaks that, and the run gets an error instead of a number.
 */
export function sumBrackets(stamps: BigUint64Array): Pick<MeteredRun, 'gpuMs' | 'gpuSpanMs' | 'error'> {
  if (stamps.length % 2 !== 0 || stamps.length === 0)
    return { gpuMs: null, gpuSpanMs: null, error: 'odd marks' };
  let ns = 0n;
  for (let i = 0; i < stamps.length; i++) {
    if (stamps[i] === 0n || (i > 0 && stamps[i]! < stamps[i - 1]!)) {
      return {
        gpuMs: null,
        gpuSpanMs: null,
        error: `timestamp marks out of order or not written (mark ${i} of ${stamps.length})`,
      };
    }
    if (i % 2 === 1) ns += stamps[i]! - stamps[i - 1]!;
  }
  return { gpuMs: Number(ns) / 1e6, gpuSpanMs: Number(stamps[stamps.length - 1]! - stamps[0]!) / 1e6 };
}

/** Outcome of selfCheck(): a known workload measured by the brackets and by its own pass timestamps. */
export interface MeterCheck {
  ok: boolean;
  /** What failed, or the numbers in words. */
  summary: string;
  submits: number;
  mapAsync: number;
  /** Sum of the workload's own compute passes (their begin/end timestamps), ms. */
  innerMs: number;
  /** The same submits' GPU time by the brackets, ms. */
  bracketMs: number;
  /** Median bracket around an empty submit (the marks' own cost), ms. */
  emptyBracketMs: number;
}

const CHECK_SUBMITS = 3;
const CHECK_SHADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  var x = data[g.x];
  for (var i = 0u; i < 512u; i++) { x = fma(x, 0.999, 0.5); }
  data[g.x] = x;
}`;

/**
 * Checks the meter on the attached device with a workload of its own: CHECK_SUBMITS submits of one
 * compute pass each (4 dispatches, the pass timed by its own begin/end timestamps), then one copy
 * and one mapAsync readback. Passes when the counts are exact, the brackets hold the inner passes
 * (bracket sum ≥ inner sum) and add at most half again plus 0.5 ms per submit.
 */
export async function selfCheck(meter: GpuMeter): Promise<MeterCheck> {
  const device = meter.attached;
  const fail = (summary: string): MeterCheck => ({
    ok: false,
    summary,
    submits: 0,
    mapAsync: 0,
    innerMs: NaN,
    bracketMs: NaN,
    emptyBracketMs: NaN,
  });
  if (!device) return fail('no device attached');
  if (!device.features.has('timestamp-query')) return fail("no 'timestamp-query'");
  const n = 64 * 64;
  const data = device.createBuffer({
    label: 'gpu-meter.check.data',
    size: n * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  const read = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const inner = device.createQuerySet({ type: 'timestamp', count: 2 * CHECK_SUBMITS });
  const innerResolve = device.createBuffer({
    size: 16 * CHECK_SUBMITS,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const innerRead = device.createBuffer({
    size: 16 * CHECK_SUBMITS,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const module = device.createShaderModule({ code: CHECK_SHADER });
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: data } }],
    });
    const workload = async () => {
      for (let s = 0; s < CHECK_SUBMITS; s++) {
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass({
          timestampWrites: {
            querySet: inner,
            beginningOfPassWriteIndex: 2 * s,
            endOfPassWriteIndex: 2 * s + 1,
          },
        });
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bind);
        for (let d = 0; d < 4; d++) pass.dispatchWorkgroups(n / 64);
        pass.end();
        device.queue.submit([encoder.finish()]);
      }
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(data, 0, read, 0, n * 4);
      encoder.resolveQuerySet(inner, 0, 2 * CHECK_SUBMITS, innerResolve, 0);
      encoder.copyBufferToBuffer(innerResolve, 0, innerRead, 0, 16 * CHECK_SUBMITS);
      device.queue.submit([encoder.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      read.unmap();
    };
    await workload(); // compiles the pipeline outside the measured run
    const empties: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { run } = await meter.measure(async () => device.queue.submit([]), true);
      if (run.gpuMs === null) return fail(`empty bracket: ${run.error ?? 'no time'}`);
      empties.push(run.gpuMs);
    }
    const emptyBracketMs = median(empties);
    const { run } = await meter.measure(workload, true);
    await innerRead.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(innerRead.getMappedRange().slice(0));
    innerRead.unmap();
    let innerNs = 0n;
    for (let s = 0; s < CHECK_SUBMITS; s++) innerNs += t[2 * s + 1]! - t[2 * s]!;
    const innerMs = Number(innerNs) / 1e6;
    const bracketMs = run.gpuMs ?? NaN;
    const got = { submits: run.submits, mapAsync: run.mapAsync, innerMs, bracketMs, emptyBracketMs };
    const problems: string[] = [];
    // The workload's submits plus its readback's; innerRead's mapAsync comes after the run.
    if (run.submits !== CHECK_SUBMITS + 1)
      problems.push(`counted ${run.submits} submits, made ${CHECK_SUBMITS + 1}`);
    if (run.mapAsync !== 1) problems.push(`counted ${run.mapAsync} mapAsync calls, made 1`);
    if (run.gpuMs === null) problems.push(`brackets: ${run.error ?? 'no time'}`);
    else if (!(innerMs > 0)) problems.push(`inner passes measured ${innerMs} ms`);
    else {
      const slack = 0.001 * CHECK_SUBMITS; // 1 µs per submit for clock granularity
      if (bracketMs + slack < innerMs)
        problems.push(`brackets ${bracketMs.toFixed(4)} ms < inner passes ${innerMs.toFixed(4)} ms`);
      if (bracketMs > 1.5 * innerMs + 0.5 * (CHECK_SUBMITS + 1))
        problems.push(`brackets ${bracketMs.toFixed(4)} ms ≫ inner passes ${innerMs.toFixed(4)} ms`);
    }
    const numbers =
      `${run.submits} submits, ${run.mapAsync} mapAsync; inner passes ${innerMs.toFixed(3)} ms, ` +
      `brackets ${bracketMs.toFixed(3)} ms, empty bracket ${(emptyBracketMs * 1000).toFixed(1)} µs`;
    return {
      ok: problems.length === 0,
      summary: problems.length ? `${problems.join('; ')} (${numbers})` : numbers,
      ...got,
    };
  } catch (error) {
    return fail(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  } finally {
    for (const b of [data, read, innerResolve, innerRead]) b.destroy();
    inner.destroy();
  }
}
