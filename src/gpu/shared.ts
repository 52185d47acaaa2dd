/**
 * One GPU device for the whole page: every classifier (and every <ponder-classifier> element) that
 * does not bring its own device shares this one, so that N elements cost one device, not N.
 * A lost device is forgotten, and the next request asks for a new one.
 */
import { requestGpu, type GpuContext, type GpuOptions } from './device';

let shared: Promise<GpuContext> | null = null;

export function getSharedGpu(options: Omit<GpuOptions, 'device'> = {}): Promise<GpuContext> {
  if (!shared) {
    const pending = requestGpu(options);
    shared = pending;
    pending.then(
      (ctx) =>
        void ctx.device.lost.then(() => {
          if (shared === pending) shared = null;
        }),
      () => {
        if (shared === pending) shared = null; // let a later call retry (e.g. after enabling WebGPU)
      },
    );
  }
  return shared;
}
