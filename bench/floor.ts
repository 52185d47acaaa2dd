/**
 * The runtime's round-trip floor, in any WebGPU runtime (Chromium page, Deno): what the JavaScript
 * side pays to hand work to the GPU and hear back, with (almost) no GPU work at all.
 *
 *   empty-submit:  queue.submit([]) + await queue.onSubmittedWorkDone()
 *   copy-map-read: one submit that copies 4 bytes into a MAP_READ buffer + await mapAsync(READ)
 *
 * A batch-1 classify() is at least the second (it submits and reads its results back the same
 * way; ORT's WebGPU EP too), so its wall time cannot go below this, however fast the kernels get.
 */
import { summarize, type FloorRecord, type RuntimeFloor } from './common';

async function timeEach(tries: number, warmup: number, once: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < tries; i++) {
    const t = performance.now();
    await once();
    times.push(performance.now() - t);
  }
  return times;
}

function record(what: FloorRecord['what'], label: string, times: number[]): FloorRecord {
  const { n, p50, p95, min } = summarize(times, 0, 0);
  return { what, label, n, p50, p95, min };
}

export async function measureRuntimeFloor(device: GPUDevice, tries = 20): Promise<RuntimeFloor> {
  const src = device.createBuffer({
    size: 4,
    usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const dst = device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const empty = await timeEach(tries, 3, async () => {
      device.queue.submit([]);
      await device.queue.onSubmittedWorkDone();
    });
    let sink = 0;
    const copy = await timeEach(tries, 3, async () => {
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(src, 0, dst, 0, 4);
      device.queue.submit([encoder.finish()]);
      await dst.mapAsync(GPUMapMode.READ);
      sink += new Uint32Array(dst.getMappedRange())[0]!;
      dst.unmap();
    });
    void sink;
    return {
      records: [
        record('empty-submit', 'queue.submit([]) + await onSubmittedWorkDone()', empty),
        record('copy-map-read', 'submit (copy 4 bytes to a MAP_READ buffer) + await mapAsync', copy),
      ],
    };
  } catch (error) {
    return { records: [], error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  } finally {
    src.destroy();
    dst.destroy();
  }
}
