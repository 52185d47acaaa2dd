import { expect, test } from '@playwright/test';
import { renderMarkdown } from '../bench/report';
import { runBench } from '../bench/run';

// The benchmark harness end to end on a tiny model (npm run bench:smoke): every runtime runs and
// reports well-formed numbers. Nothing about speed is asserted. It launches its own Chromium and
// static server (the bench page needs the real onnxruntime-web, which the Vite dev server stubs).
test('bench harness smoke run: every runtime yields well-formed numbers and the same logits', async () => {
  test.setTimeout(180_000);
  const report = await runBench(['--smoke', '--out', 'test-results/bench-smoke.json']);
  expect(report.models.map((m) => m.id)).toEqual(['golden-bert-regression']);
  expect(report.suites.map((s) => s.runtime)).toEqual([
    'ponder',
    'ort-webgpu',
    'ort-wasm',
    'transformers-js',
  ]);
  const positive = (x: number | undefined) => typeof x === 'number' && Number.isFinite(x) && x > 0;
  for (const s of report.suites) {
    console.log(`${s.runtime}: ${s.ok ? `p50 ${s.latency[0]?.p50.toFixed(2)} ms` : s.error}`);
    expect(s.error).toBeUndefined();
    expect(s.ok).toBe(true);
    expect(positive(s.cold?.totalMs)).toBe(true);
    expect(s.latency).toHaveLength(1);
    for (const l of [...s.latency, ...s.throughput, ...s.criteria]) {
      expect(l.n).toBe(2);
      expect(positive(l.p50) && positive(l.p95) && l.p95 >= l.p50).toBe(true);
    }
    expect(s.throughput.map((t) => t.batch)).toEqual([2]);
    expect(positive(s.throughput[0]?.itemsPerSec)).toBe(true);
  }
  // Same network, same ids: every runtime's logits agree with ORT's wasm backend.
  const ref = report.suites.find((s) => s.runtime === 'ort-wasm')!.sampleLogits!;
  for (const s of report.suites) {
    const diff =
      Math.max(...s.sampleLogits!.map((x, i) => Math.abs(x - ref[i]!))) / Math.max(...ref.map(Math.abs));
    console.log(`${s.runtime}: logits vs ORT wasm, largest relative difference ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
  }
  const ponder = report.suites[0]!;
  expect(positive(ponder.gpuBytes)).toBe(true);
  expect(ponder.criteria.length).toBeGreaterThan(0);
  // Back-to-back passes in one submit (timeBackToBack): a wall time per pass, and the last pass's
  // GPU time where timestamps exist.
  expect(ponder.backToBack?.passes).toBe(2);
  expect(positive(ponder.backToBack?.wallMsPerPassP50)).toBe(true);
  if (ponder.kernelProfile) expect(positive(ponder.backToBack?.lastPassGpuMsP50)).toBe(true);
  const layers = report.models[0]!.layers;
  for (const c of ponder.criteria) expect(c.meanExitLayer >= 1 && c.meanExitLayer <= layers).toBe(true);
  expect(report.matmul.error).toBeUndefined();
  expect(report.matmul.records.every((r) => positive(r.gflops))).toBe(true);
  // The dispatch probe at N 8: every case ran, left the right words, and gave finite positive times.
  const probe = report.dispatchProbe!;
  expect(probe.error).toBeUndefined();
  expect(probe.n).toBe(8);
  expect(probe.records.map((r) => r.id)).toEqual([
    'direct',
    'direct-chain',
    'indirect-chain',
    'indirect-zero',
    'direct-chain-grid',
    'direct-chain-switch',
    'direct-own-buffers',
  ]);
  for (const r of probe.records) {
    console.log(
      `dispatch probe ${r.id}: GPU ${r.gpuUs?.toFixed(2)} µs, wall ${r.wallUs.toFixed(2)} µs, encode ${r.encodeUs.toFixed(2)} µs`,
    );
    expect(r.checkError).toBeNull();
    for (const x of [r.wallUs, r.encodeUs, r.submitUs, ...r.wallAllUs, ...r.encodeAllUs])
      expect(positive(x)).toBe(true);
    expect(r.wallAllUs).toHaveLength(probe.passes);
    if (probe.timestamps) expect([r.gpuUs, ...r.gpuAllUs!].every(positive)).toBe(true);
  }
  const md = renderMarkdown(report, 'test-results/bench-smoke.json');
  expect(md).toContain('## golden-bert-regression');
  expect(md).toContain('SwiftShader: ratios only');
  expect(md).toContain('## Dispatch probe');
});
