import { requestGpu } from '../../src/gpu/device';

/** Reports the adapter the browser gives, or the typed error when there is none. */
export async function describeAdapter() {
  const ctx = await requestGpu();
  const adapter = ctx.adapter;
  ctx.device.destroy();
  return adapter;
}
