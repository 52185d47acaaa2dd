import { afterEach, describe, expect, it } from 'vitest';
import { GpuMeter, sumBrackets, type GpuScope } from './ort-gpu-time';

// A fake WebGPU with a simulated in-order queue: every command buffer that is not a mark takes
// `cost` ms of GPU time; a mark writes the current GPU clock (ns) into its query slot. The real
// thing is checked by selfCheck() (e2e/ort-gpu-time.spec.ts on SwiftShader, the Deno bench on
// lavapipe); this checks the wrapping and the bookkeeping.
const g = globalThis as unknown as Record<string, unknown>;
g.GPUBufferUsage ??= { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, STORAGE: 128, QUERY_RESOLVE: 512 };
g.GPUMapMode ??= { READ: 1 };

interface FakeCommands {
  mark?: number;
  cost: number;
  resolve?: { count: number; into: FakeBuffer };
  copy?: { from: FakeBuffer; to: FakeBuffer };
}

class FakeBuffer {
  data = new BigUint64Array(4096);
  mapAsync(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  getMappedRange(offset = 0, size = this.data.byteLength): ArrayBuffer {
    return this.data.buffer.slice(offset, offset + size);
  }
  unmap(): void {}
  destroy(): void {}
}

class FakeQueue {
  clock = 1_000_000n;
  stamps = new BigUint64Array(4096);
  submitted: FakeCommands[][] = [];
  submit(buffers: Iterable<FakeCommands>): undefined {
    const list = [...buffers];
    this.submitted.push(list);
    for (const cb of list) {
      this.clock += BigInt(Math.round(cb.cost * 1e6));
      if (cb.mark !== undefined) this.stamps[cb.mark] = this.clock;
      if (cb.resolve) cb.resolve.into.data.set(this.stamps.subarray(0, cb.resolve.count));
      if (cb.copy) cb.copy.to.data.set(cb.copy.from.data);
    }
    return undefined;
  }
  onSubmittedWorkDone(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
}

class FakeDevice {
  queue = new FakeQueue();
  constructor(readonly features: Set<string>) {}
  createQuerySet() {
    return { destroy() {} };
  }
  createBuffer() {
    return new FakeBuffer();
  }
  createCommandEncoder() {
    const cb: FakeCommands = { cost: 0 };
    return {
      beginComputePass(d: { timestampWrites?: { endOfPassWriteIndex?: number } }) {
        cb.mark = d.timestampWrites?.endOfPassWriteIndex;
        return { end() {} };
      },
      resolveQuerySet(_q: unknown, _first: number, count: number, into: FakeBuffer) {
        cb.resolve = { count, into };
      },
      copyBufferToBuffer(from: FakeBuffer, _o: number, to: FakeBuffer) {
        cb.copy = { from, to };
      },
      finish: () => cb,
    };
  }
}

class FakeAdapter {
  constructor(readonly features: Set<string>) {}
  requestDevice(d?: { requiredFeatures?: string[] }): Promise<FakeDevice> {
    return Promise.resolve(new FakeDevice(new Set(d?.requiredFeatures ?? [])));
  }
}

const scope = { GPUAdapter: FakeAdapter, GPUQueue: FakeQueue, GPUBuffer: FakeBuffer } as unknown as GpuScope;
const originals = {
  submit: FakeQueue.prototype.submit,
  workDone: FakeQueue.prototype.onSubmittedWorkDone,
  mapAsync: FakeBuffer.prototype.mapAsync,
  requestDevice: FakeAdapter.prototype.requestDevice,
};

// The library under test: one command buffer per submit of `cost` ms, then one readback.
async function libraryCall(device: FakeDevice, submits: number[], read: FakeBuffer): Promise<string> {
  for (const cost of submits) device.queue.submit([{ cost }]);
  await device.queue.onSubmittedWorkDone();
  await read.mapAsync();
  return 'logits';
}

describe('GpuMeter', () => {
  let meter: GpuMeter | null = null;
  afterEach(() => {
    while (meter && FakeQueue.prototype.submit !== originals.submit) meter.release();
    meter = null;
  });

  it('adds timestamp-query to the requested device only where the adapter has it', async () => {
    meter = GpuMeter.install(scope);
    const withTs = (await new FakeAdapter(new Set(['timestamp-query'])).requestDevice({
      requiredFeatures: ['shader-f16'],
    })) as FakeDevice;
    const without = (await new FakeAdapter(new Set()).requestDevice()) as FakeDevice;
    expect([...withTs.features].sort()).toEqual(['shader-f16', 'timestamp-query']);
    expect(without.features.size).toBe(0);
    expect(meter.captured.map((c) => [c.askedTimestamps, c.addedTimestamps])).toEqual([
      [false, true],
      [false, false],
    ]);
    expect(meter.attach(without as unknown as GPUDevice)).toMatch(/timestamp-query/);
  });

  it('counts the attached queue only, and only inside a run', async () => {
    meter = GpuMeter.install(scope);
    const device = new FakeDevice(new Set());
    const other = new FakeDevice(new Set());
    meter.attach(device as unknown as GPUDevice);
    device.queue.submit([{ cost: 1 }]); // outside a run: not counted
    const { value, run } = await meter.measure(async () => {
      other.queue.submit([{ cost: 1 }]);
      return libraryCall(device, [1, 2], new FakeBuffer());
    }, false);
    expect(value).toBe('logits');
    expect(run).toMatchObject({ submits: 2, commandBuffers: 2, mapAsync: 1, workDone: 1, gpuMs: null });
    expect(device.queue.submitted.at(-1)).toEqual([{ cost: 2 }]); // not bracketed
  });

  it('brackets every submit inside the same submit and sums the spans', async () => {
    meter = GpuMeter.install(scope);
    const device = new FakeDevice(new Set(['timestamp-query']));
    expect(meter.attach(device as unknown as GPUDevice)).toBeNull();
    const { run } = await meter.measure(() => libraryCall(device, [1, 2, 0.5], new FakeBuffer()), true);
    expect(run.submits).toBe(3);
    // The three library submits, each as [mark, work, mark], then the meter's own resolve.
    expect(device.queue.submitted.slice(0, 3).map((s) => s.map((c) => c.mark ?? 'work'))).toEqual([
      [0, 'work', 1],
      [2, 'work', 3],
      [4, 'work', 5],
    ]);
    expect(device.queue.submitted).toHaveLength(4);
    expect(run.gpuMs).toBeCloseTo(3.5, 9);
    expect(run.gpuSpanMs).toBeCloseTo(3.5, 9);
  });

  it('restores the prototypes when the last user releases', () => {
    meter = GpuMeter.install(scope);
    GpuMeter.install(scope);
    meter.release();
    expect(FakeQueue.prototype.submit).not.toBe(originals.submit);
    meter.release();
    expect(FakeQueue.prototype.submit).toBe(originals.submit);
    expect(FakeQueue.prototype.onSubmittedWorkDone).toBe(originals.workDone);
    expect(FakeBuffer.prototype.mapAsync).toBe(originals.mapAsync);
    expect(FakeAdapter.prototype.requestDevice).toBe(originals.requestDevice);
  });
});

describe('sumBrackets', () => {
  it('sums end − begin over pairs (ns → ms) and spans first to last', () => {
    expect(sumBrackets(new BigUint64Array([10n, 1_000_010n, 3_000_000n, 3_500_000n]))).toEqual({
      gpuMs: 1.5,
      gpuSpanMs: 3.49999,
    });
  });
  it('refuses unwritten or out-of-order marks instead of giving a number', () => {
    expect(sumBrackets(new BigUint64Array([10n, 0n])).gpuMs).toBeNull();
    expect(sumBrackets(new BigUint64Array([10n, 20n, 15n, 30n])).error).toMatch(/out of order/);
    expect(sumBrackets(new BigUint64Array([10n])).gpuMs).toBeNull();
  });
});
