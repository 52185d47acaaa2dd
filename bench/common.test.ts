/**
 * The harness's own pieces: seeded inputs, statistics, the random checkpoint generator and the
 * default exit criteria. (Timings are not tested: they are what the harness measures.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../src/loading';
import { defaultCriteria, percentile, summarize, tokenBatch } from './common';
import { randomAlbert } from './random-model';
import { perDispatchUs, type DispatchProbeReport } from './dispatch-probe';
import { dispatchSection, kernelPath, renderMarkdown } from './report';
import type { BenchReport } from './run';
import { gpuStats } from './suite';

describe('bench inputs and statistics', () => {
  it('tokenBatch is seeded, in range, [CLS] … [SEP] framed, and differs per shape', () => {
    const a = tokenBatch(1, 3, 17, 101);
    expect(tokenBatch(1, 3, 17, 101)).toEqual(a);
    expect(tokenBatch(2, 3, 17, 101)).not.toEqual(a);
    expect(a).toHaveLength(3);
    for (const row of a) {
      expect(row).toHaveLength(17);
      expect(row[0]).toBe(2);
      expect(row[16]).toBe(3);
      for (const id of row.slice(1, -1)) expect(id >= 5 && id < 101 && Number.isInteger(id)).toBe(true);
    }
    expect(tokenBatch(1, 1, 1, 101)).toEqual([[2]]);
  });

  it('percentile and summarize', () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    const sorted = [...xs].sort((x, y) => x - y);
    expect(percentile(sorted, 50)).toBe(5);
    expect(percentile(sorted, 95)).toBe(10);
    expect(percentile([], 50)).toBeNaN();
    const s = summarize(xs, 16, 1);
    expect(s).toMatchObject({ seq: 16, batch: 1, n: 10, p50: 5, p95: 10, min: 1, mean: 5.5 });
  });

  it('defaultCriteria: one per supported kind, none for the full-depth row, valid settings', () => {
    const c = defaultCriteria(['palbert', 'pabee', 'max-prob', 'entropy', 'fixed', 'none'], 12, 2);
    expect(c.map((x) => x.criterion.kind)).toEqual(['palbert', 'pabee', 'max-prob', 'entropy', 'fixed']);
    expect(c.find((x) => x.criterion.kind === 'fixed')!.criterion).toEqual({ kind: 'fixed', layer: 6 });
    expect(c.find((x) => x.criterion.kind === 'pabee')!.criterion).toEqual({ kind: 'pabee', patience: 6 });
    expect(defaultCriteria(['pabee'], 2, 2)[0]!.criterion).toEqual({ kind: 'pabee', patience: 1 });
  });
});

describe('random ALBERT checkpoint', () => {
  const shape = {
    vocabSize: 50,
    embeddingSize: 8,
    hiddenSize: 12,
    numHeads: 3,
    intermediateSize: 20,
    numLayers: 4,
    maxPositions: 16,
    numLabels: 3,
  };

  it('parses with our loader, is seeded, and has N(0, 0.02) weights', () => {
    const a = randomAlbert(shape, 7);
    expect(randomAlbert(shape, 7).safetensors).toEqual(a.safetensors);
    expect(randomAlbert(shape, 8).safetensors).not.toEqual(a.safetensors);
    const model = parseCheckpoint(JSON.stringify(a.config), a.safetensors);
    expect(model.config).toMatchObject({
      architecture: 'albert',
      hiddenSize: 12,
      numHiddenLayers: 4,
      numLabels: 3,
    });
    expect(model.weights.layers).toHaveLength(1);
    const w = model.weights.embeddings.word.data;
    const mean = w.reduce((s, x) => s + x, 0) / w.length;
    const std = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length);
    console.log(`word embeddings: mean ${mean.toExponential(2)}, std ${std.toFixed(4)} (want 0, 0.02)`);
    expect(Math.abs(mean)).toBeLessThan(0.004);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.003);
    expect(Array.from(model.weights.layers[0]!.attentionNorm.gamma.data)).toEqual(new Array(12).fill(1));
  });
});

describe('report helpers', () => {
  it('kernelPath: the part of a matmul label after its shape, else the whole label', () => {
    expect(kernelPath('matmul-f16-none-16x768x3072-gemv')).toBe('gemv');
    expect(kernelPath('matmul-f32-none-16x768x3072-split6 + matmul-f32-none-16x768-reduce6')).toBe(
      'split6 + reduce6',
    );
    expect(kernelPath('matmul-f32-none-1024x768x768')).toBe('`matmul-f32-none-1024x768x768`');
    expect(kernelPath(undefined)).toBe('–');
  });

  it('gpuStats: p50 and min of the calls that report GPU time', () => {
    expect(gpuStats([null, undefined])).toBeUndefined();
    expect(
      gpuStats([{ totalMs: 3, embeddingsMs: 0.3 }, { totalMs: 1, embeddingsMs: 0.1 }, { totalMs: 2 }, null]),
    ).toEqual({ n: 3, p50: 2, min: 1, embeddingsP50: 0.1 });
  });

  it('dispatch probe: µs per dispatch less the empty pass, and its section', () => {
    expect(perDispatchUs(12, 11, 100)).toBeCloseTo(10);
    expect(perDispatchUs(10, 11, 100)).toBe(1e-3);
    const record = (id: 'direct' | 'direct-chain', gpuUs: number) => ({
      id,
      what: id,
      calls: 'dispatch',
      workgroups: 1,
      invocations: 1,
      gpuUs,
      gpuAllUs: [gpuUs],
      wallUs: 2 * gpuUs,
      wallAllUs: [2 * gpuUs],
      encodeUs: 1,
      encodeAllUs: [1],
      submitUs: 0.1,
      checkError: null,
    });
    const probe: DispatchProbeReport = {
      n: 100,
      passes: 1,
      warmUpSec: 1.5,
      timestamps: true,
      records: [record('direct', 10), record('direct-chain', 14)],
    };
    const md = dispatchSection(probe, false).join('\n');
    expect(md).toContain('| 1. `direct` | direct | dispatch | 10.00 | 20.00 | 1.00 | 0.10 | ok |');
    expect(md).toContain(
      '| direct-chain − direct | a dependency on the previous dispatch | 4.00 | 8.00 | 0.00 |',
    );
    expect(dispatchSection({ ...probe, error: 'lost' }, false)).toEqual(['Could not run: lost']);
  });

  it('renders every committed run, with both < 2 ms target rows for the ALBERT-base shape', () => {
    for (const f of readdirSync('bench/results').filter((x) => x.endsWith('.json'))) {
      const report = JSON.parse(readFileSync(`bench/results/${f}`, 'utf8')) as BenchReport;
      const md = renderMarkdown(report, `bench/results/${f}`);
      expect(md).toContain('Runtime floor');
      // Runs made before bench/dispatch-probe.ts have no such field, and no section.
      expect(md.includes('Dispatch probe')).toBe(report.dispatchProbe !== undefined);
      if (report.suites.length === 0) {
        // A --no-suite run (kernel studies): no targets, and its tuning A/B when it has one.
        expect(md).not.toContain('Targets (issue 6)');
        expect(md.includes('Kernel tunings on whole forward passes')).toBe(
          (report.tuningAb?.length ?? 0) > 0,
        );
      } else if (report.models.some((m) => m.hiddenSize === 768 && m.layers === 12)) {
        expect(md).toContain('< 2 ms per forward pass — **wall time**');
        expect(md).toContain('< 2 ms per forward pass — **GPU time**');
      }
    }
  });
});
