import { expect, test } from '@playwright/test';
import type { MeterCheck } from '../bench/ort-gpu-time';
import { runBench } from '../bench/run';
import { openHarness } from './helpers';

// bench/ort-gpu-time.ts on a real WebGPU (SwiftShader here; the Deno bench runs the same self-check
// on lavapipe and on the GPU machine): a known workload's GPU time by the submit brackets must hold
// its own passes' timestamps and not run far past them, and the counts must be exact.
test('GPU meter: brackets hold the passes they wrap, counts are exact, prototypes restored', async ({
  page,
}) => {
  await openHarness(page);
  // A module script, so Vite serves the bench module as it would the page's own code.
  await page.addScriptTag({
    type: 'module',
    content: `
      import { GpuMeter, selfCheck } from '/bench/ort-gpu-time.ts';
      const original = GPUQueue.prototype.submit;
      const meter = GpuMeter.install();
      const adapter = await navigator.gpu.requestAdapter();
      const device = await adapter.requestDevice();
      const result = {
        adapterHas: adapter.features.has('timestamp-query'),
        deviceHas: device.features.has('timestamp-query'),
        captured: meter.captured.map((c) => ({ asked: c.askedTimestamps, added: c.addedTimestamps })),
        cannot: meter.attach(device),
        checks: [],
      };
      for (let i = 0; i < 3; i++) result.checks.push(await selfCheck(meter));
      meter.detach();
      meter.release();
      result.restored = GPUQueue.prototype.submit === original;
      device.destroy();
      window.meterResult = result;
    `,
  });
  await page.waitForFunction(() => 'meterResult' in window, undefined, { timeout: 120_000 });
  const result = (await page.evaluate(() => (window as unknown as { meterResult: unknown }).meterResult)) as {
    adapterHas: boolean;
    deviceHas: boolean;
    captured: { asked: boolean; added: boolean }[];
    cannot: string | null;
    checks: MeterCheck[];
    restored: boolean;
  };
  for (const c of result.checks) console.log(`self-check: ${c.ok ? 'ok' : 'FAILED'}: ${c.summary}`);
  // SwiftShader has timestamp-query; a device requested without it gets it from the meter.
  expect(result.adapterHas).toBe(true);
  expect(result.captured).toEqual([{ asked: false, added: true }]);
  expect(result.deviceHas).toBe(true);
  expect(result.cannot).toBeNull();
  for (const c of result.checks) {
    expect(c.ok, c.summary).toBe(true);
    expect(c.bracketMs).toBeGreaterThanOrEqual(c.innerMs - 0.003);
    expect(c.submits).toBe(4);
    expect(c.mapAsync).toBe(1);
  }
  expect(result.restored).toBe(true);
});

// ORT's WebGPU EP in the bench page: GPU time by brackets and the call counts land in the report.
test('bench smoke, ORT WebGPU: GPU time per forward pass and submits / mapAsync per call', async () => {
  test.setTimeout(180_000);
  const report = await runBench([
    '--smoke',
    '--runtimes',
    'ort-webgpu',
    '--out',
    'test-results/bench-smoke-ort-gpu.json',
  ]);
  const s = report.suites[0]!;
  expect(s.error).toBeUndefined();
  const notes = s.notes.join('\n');
  console.log(notes);
  expect(notes).toMatch(/self-check passed/);
  const l = s.latency[0]!;
  console.log(`ORT WebGPU seq ${l.seq}: wall p50 ${l.p50} ms, gpu ${JSON.stringify(l.gpu)}`);
  console.log(`calls ${JSON.stringify(l.calls)}`);
  expect(l.gpu?.method).toBe('submit-brackets');
  expect(l.gpu!.n).toBe(2);
  expect(l.gpu!.p50).toBeGreaterThan(0);
  expect(l.gpu!.spanP50!).toBeGreaterThanOrEqual(l.gpu!.p50);
  expect(l.calls!.n).toBe(2);
  expect(l.calls!.submitsP50).toBeGreaterThan(0);
  expect(l.calls!.mapAsyncP50).toBeGreaterThanOrEqual(1);
  expect(l.calls!.mapAsyncMsP50).toBeGreaterThan(0);
});
