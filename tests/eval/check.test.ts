import { describe, expect, it } from 'vitest';
import { checkExits, referenceExit } from '../../scripts/eval/check';
import { evaluateExit, type ExitCriterion } from '../../src/exit';
import type { PageLayer, PageResult } from '../../scripts/eval/types';

/** A result of a 3-layer model holding `probs.length` layers (a prefix after an early exit). */
function result(
  criterion: ExitCriterion,
  exitLayer: number,
  probs: number[][],
  extra: (n: number) => Partial<PageLayer> = () => ({}),
): PageResult {
  return {
    label: 'x',
    score: 0,
    exitLayer,
    criterion,
    numLayers: 3,
    truncated: false,
    tokenCount: 3,
    layers: probs.map((p, i) => ({
      layer: i + 1,
      logits: p.map(Math.log),
      probabilities: p,
      label: 'x',
      score: Math.max(...p),
      ...extra(i),
    })),
  };
}

describe('exit check against the CPU criteria', () => {
  const maxProb: ExitCriterion = { kind: 'max-prob', threshold: 0.7 };

  it('max-prob on the layers up to the exit', () => {
    const layers = [
      [0.6, 0.4],
      [0.8, 0.2],
    ];
    expect(referenceExit(result(maxProb, 2, layers), maxProb, false, 0)).toBe(2);
    const check = checkExits([result(maxProb, 2, layers), result(maxProb, 1, layers)], [10, 11], false);
    expect(check).toEqual({ checked: 2, disagreements: [11] });
  });

  it('a result that stops before the criterion fires disagrees', () => {
    expect(referenceExit(result(maxProb, 1, [[0.6, 0.4]]), maxProb, false, 0)).toBeNull();
    expect(checkExits([result(maxProb, 1, [[0.6, 0.4]])], [0], false).disagreements).toEqual([0]);
  });

  it('no exit: the last layer; none: the last layer', () => {
    const all = [
      [0.6, 0.4],
      [0.5, 0.5],
      [0.55, 0.45],
    ];
    expect(referenceExit(result(maxProb, 3, all), maxProb, false, 0)).toBe(3);
    expect(referenceExit(result({ kind: 'none' }, 3, all), { kind: 'none' }, false, 0)).toBe(3);
  });

  it('palbert reads λ: CDF 0.3, then 0.3 + 0.7 · 0.5 = 0.65 > q = 0.5 at layer 2', () => {
    const c: ExitCriterion = { kind: 'palbert', q: 0.5 };
    const r = result(
      c,
      2,
      [
        [0.5, 0.5],
        [0.5, 0.5],
      ],
      (n) => ({ lambda: [0.3, 0.5][n] }),
    );
    expect(referenceExit(r, c, false, 0)).toBe(2);
    // Without λ in the results the check cannot decide.
    expect(referenceExit(result(c, 2, [[0.5, 0.5]]), c, false, 0)).toBeNull();
  });

  it('pabee reads the per-layer heads, not the shared one', () => {
    const c: ExitCriterion = { kind: 'pabee', patience: 1 };
    const shared = [
      [0.9, 0.1],
      [0.9, 0.1],
      [0.9, 0.1],
    ];
    const heads = [
      [0.9, 0.1],
      [0.2, 0.8],
      [0.3, 0.7],
    ];
    // Heads' argmax 0, 1, 1: the counter is 0 at layer 2 and 1 at layer 3 (the shared head would agree at layer 2).
    expect(
      referenceExit(
        result(c, 3, shared, (n) => ({ headProbabilities: heads[n] })),
        c,
        false,
        0,
      ),
    ).toBe(3);
  });

  it('pondernet-sample is seeded by the data-set index', () => {
    const c: ExitCriterion = { kind: 'pondernet-sample', seed: 7 };
    const lambdas = [0.5, 0.5, 0.5];
    const probs = [
      [0.5, 0.5],
      [0.5, 0.5],
      [0.5, 0.5],
    ];
    for (const index of [0, 1, 2, 3, 41]) {
      const expected = evaluateExit({ numLayers: 3, probs, lambdas }, c, { exampleIndex: index }).exitLayer;
      const r = result(c, expected, probs.slice(0, expected), (n) => ({ lambda: lambdas[n] }));
      expect(referenceExit(r, c, false, index)).toBe(expected);
    }
  });

  it('regression: values from the logits', () => {
    const c: ExitCriterion = { kind: 'fixed', layer: 2 };
    const r = result(c, 2, [[1], [1]]);
    r.layers.forEach((l) => (l.probabilities = []));
    expect(referenceExit(r, c, true, 0)).toBe(2);
  });
});
