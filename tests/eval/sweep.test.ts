import { describe, expect, it } from 'vitest';
import { sweepSvg } from '../../scripts/eval/plot';
import {
  cheapestWithinBudget,
  fullDepth,
  layerOutputsOf,
  runSweep,
  sweepableKinds,
  sweepCsv,
} from '../../scripts/eval/sweep';
import { TASKS } from '../../scripts/eval/tasks';
import type { PageLayer, PageResult } from '../../scripts/eval/types';

/** A 3-layer result; `extra` adds exit-head fields per layer. */
function result(probs: number[][], extra: (n: number) => Partial<PageLayer> = () => ({})): PageResult {
  const layers: PageLayer[] = probs.map((p, i) => ({
    layer: i + 1,
    logits: p.map(Math.log),
    probabilities: p,
    label: `LABEL_${p[1]! > p[0]! ? 1 : 0}`,
    score: Math.max(...p),
    ...extra(i),
  }));
  return {
    label: layers[2]!.label,
    score: layers[2]!.score,
    exitLayer: 3,
    criterion: { kind: 'none' },
    numLayers: 3,
    truncated: false,
    tokenCount: 4,
    layers,
  };
}

describe('per-layer outputs for the sweep', () => {
  it('plain classifier: probabilities only; max-prob, entropy, fixed, none', () => {
    const out = layerOutputsOf(
      result([
        [0.6, 0.4],
        [0.3, 0.7],
        [0.2, 0.8],
      ]),
      false,
    );
    expect(out).toEqual({
      numLayers: 3,
      probs: [
        [0.6, 0.4],
        [0.3, 0.7],
        [0.2, 0.8],
      ],
    });
    expect(sweepableKinds(out)).toEqual(['max-prob', 'entropy', 'fixed', 'none']);
  });

  it('exit heads: lambdas, per-layer heads, gates that stop one layer short', () => {
    const probs = [
      [0.5, 0.5],
      [0.4, 0.6],
      [0.1, 0.9],
    ];
    const out = layerOutputsOf(
      result(probs, (n) => ({
        lambda: [0.1, 0.5, 0.9][n],
        headProbabilities: probs[n],
        ...(n < 2 && { gate: [0.2, 0.7][n] }),
      })),
      false,
    );
    expect(out.lambdas).toEqual([0.1, 0.5, 0.9]);
    expect(out.headProbs).toEqual(probs);
    expect(out.gates).toEqual([0.2, 0.7]);
    expect(sweepableKinds(out)).toEqual([
      'palbert',
      'pondernet-sample',
      'pabee',
      'max-prob',
      'entropy',
      'gate',
      'fixed',
      'none',
    ]);
  });

  it('regression: values are the per-layer outputs; no max-prob or entropy', () => {
    const r = result([[0], [0], [0]]);
    r.layers.forEach((l, i) => (l.logits = [1.5 + i]));
    const out = layerOutputsOf(r, true);
    expect(out).toEqual({ numLayers: 3, values: [1.5, 2.5, 3.5] });
    expect(sweepableKinds(out)).toEqual(['fixed', 'none']);
  });
});

describe('sweep, budget and CSV', () => {
  // Three examples, three layers. Layer-1 predictions: 0, 0, 0; layers 2 and 3: 1, 1, 0.
  // Labels 1, 1, 0: layer 1 gets 1/3 right, layers 2-3 get 3/3.
  const probs = [
    [
      [0.55, 0.45],
      [0.2, 0.8],
      [0.1, 0.9],
    ],
    [
      [0.9, 0.1],
      [0.4, 0.6],
      [0.3, 0.7],
    ],
    [
      [0.95, 0.05],
      [0.9, 0.1],
      [0.9, 0.1],
    ],
  ];
  const lambdas = [
    [0.1, 0.9, 0.5],
    [0.6, 0.5, 0.5],
    [0.2, 0.2, 0.2],
  ];
  const outputs = probs.map((p, e) =>
    layerOutputsOf(
      result(p, (n) => ({ lambda: lambdas[e]![n] })),
      false,
    ),
  );
  const labels = [1, 1, 0];
  const rows = runSweep(outputs, labels, TASKS['SST-2'], ['palbert', 'fixed'], 2);

  it('evaluates each setting; fixed depth by hand', () => {
    const fixed = rows.filter((r) => r.kind === 'fixed');
    expect(fixed.map((r) => [r.setting, r.averageLayers, r.metrics.primary])).toEqual([
      ['layer=1', 1, 1 / 3],
      ['layer=2', 2, 1],
      ['layer=3', 3, 1],
    ]);
    expect(fullDepth(rows)).toMatchObject({ kind: 'none', averageLayers: 3, speedUp: 1 });
    expect(rows.filter((r) => r.kind === 'palbert')).toHaveLength(19);
  });

  it('palbert q = 0.5 by hand', () => {
    // CDFs: ex0 0.1, 0.91 → exits at 2 (right); ex1 0.6 → exits at 1 (wrong); ex2 0.2, 0.36, 0.488 → layer 3 (right).
    const q5 = rows.find((r) => r.label === 'palbert q=0.5')!;
    expect(q5.averageLayers).toBe(2);
    expect(q5.metrics.primary).toBeCloseTo(2 / 3, 12);
    expect(q5.firedFraction).toBeCloseTo(2 / 3, 12);
  });

  it('cheapest setting within the budget, per criterion', () => {
    const best = cheapestWithinBudget(rows, 0.01);
    const byKind = Object.fromEntries(best.map((b) => [b.kind, b.row?.label ?? null]));
    expect(byKind.fixed).toBe('fixed layer=2');
    expect(byKind.none).toBe('none');
    // palbert keeps full accuracy only where no example exits at layer 1 and ex0 exits at 2 or 3.
    const palbert = best.find((b) => b.kind === 'palbert')!.row!;
    expect(palbert.metrics.primary).toBe(1);
    const cheaper = rows.filter((r) => r.kind === 'palbert' && r.averageLayers < palbert.averageLayers);
    expect(cheaper.every((r) => r.metrics.primary < 1 - 0.01)).toBe(true);
    // With a budget no setting meets (impossible: > full depth), a criterion can have none.
    const strict = cheapestWithinBudget(
      rows.map((r) => (r.kind === 'fixed' ? { ...r, metrics: { ...r.metrics, primary: 0 } } : r)),
      0.01,
    );
    expect(strict.find((b) => b.kind === 'fixed')!.row).toBeNull();
  });

  it('CSV: one row per setting with the metric and whether it is within the budget', () => {
    const csv = sweepCsv(rows, 0.01).trimEnd().split('\n');
    expect(csv[0]).toBe(
      'kind,setting,average_layers,speed_up,fired_fraction,metric_name,metric,accuracy,mcc,f1,pearson,spearman,within_budget',
    );
    expect(csv).toHaveLength(rows.length + 1);
    expect(csv).toContain('fixed,layer=1,1,3,1,acc,0.3333333333333333,0.3333333333333333,,,,,no');
    expect(csv.at(-1)).toBe('none,,3,1,0,acc,1,1,,,,,yes');
  });

  it('SVG: a standalone chart with every criterion in the legend', () => {
    const svg = sweepSvg(rows, {
      title: 'test',
      numLayers: 3,
      budget: 0.01,
      chosen: cheapestWithinBudget(rows, 0.01).flatMap((b) => (b.row ? [b.row] : [])),
    });
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg).toMatch(/<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    for (const name of ['palbert', 'fixed', 'full depth']) expect(svg).toContain(name);
    expect(svg).toContain('average layers (of 3)');
    expect(svg.match(/<circle/g)!.length).toBeGreaterThanOrEqual(rows.length);
  });
});
