import { describe, expect, it } from 'vitest';
import {
  CRITERION_KINDS,
  evaluateExit,
  type CriterionKind,
  type ExitCriterion,
  type LayerOutputs,
} from '../../src/exit/criteria';
import { exitUniform } from '../../src/exit/prng';
import { defaultSweep, describeCriterion, parseCriterion, sweepExits } from '../../src/exit/sweep';
import { PonderError } from '../../src/errors';
import { randomOutputs, rng } from './helpers';

function thrown(fn: () => unknown): PonderError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PonderError);
    return error as PonderError;
  }
  throw new Error('expected a PonderError, nothing was thrown');
}

/**
 * The criteria written a second time, as literally as the formulas read (closed forms, no running state), to check
 * the module's layer-by-layer implementation. Returns the 1-based exit layer.
 */
function referenceExit(o: LayerOutputs, c: ExitCriterion, exampleIndex: number): number {
  const L = o.numLayers;
  const lam = Array.from(o.lambdas ?? []);
  const perLayer = o.headProbs!.map((r) => Array.from(r));
  const argmaxOf = (r: number[]) => r.indexOf(Math.max(...r));
  const first = (test: (n: number) => boolean): number => {
    for (let n = 1; n <= L; n++) if (test(n)) return n;
    return L;
  };
  switch (c.kind) {
    case 'palbert':
      return first((n) => {
        let cdf = 0;
        for (let j = 1; j <= n; j++)
          cdf += lam[j - 1]! * lam.slice(0, j - 1).reduce((a, l) => a * (1 - l), 1);
        return cdf > c.q;
      });
    case 'pondernet-sample':
      return first((n) => exitUniform(c.seed, exampleIndex, n) < lam[n - 1]!);
    case 'pabee':
      if (c.patience === 0) return L;
      return first((n) => {
        if (n <= c.patience) return false;
        const window = perLayer.slice(n - 1 - c.patience, n).map(argmaxOf);
        return window.every((k) => k === window[0]);
      });
    case 'max-prob':
      return first((n) => Math.max(...perLayer[n - 1]!) > c.threshold);
    case 'entropy':
      return first(
        (n) => -perLayer[n - 1]!.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0) < c.threshold,
      );
    case 'gate':
      return first((n) => o.gates![n - 1]! > c.threshold);
    case 'fixed':
      return c.layer;
    case 'none':
      return L;
  }
}

function dataset(seed: number, count: number, L: number, C: number): LayerOutputs[] {
  const random = rng(seed);
  return Array.from({ length: count }, () => randomOutputs(random, L, C));
}

describe('sweepExits', () => {
  const L = 12;
  const C = 3;
  const examples = dataset(2024, 300, L, C);
  const all = CRITERION_KINDS.flatMap((kind) => defaultSweep(kind, { numLayers: L, numClasses: C }));

  it('matches an independent reference of every criterion on every default setting', () => {
    const outcomes = sweepExits(examples, all, { firstExampleIndex: 1000 });
    let mismatches = 0;
    let checked = 0;
    for (const outcome of outcomes) {
      examples.forEach((o, i) => {
        const expected = referenceExit(o, outcome.criterion, 1000 + i);
        if (expected !== outcome.exitLayers[i]) {
          mismatches++;
          if (mismatches < 5)
            console.log(`mismatch: ${outcome.label}, example ${i}: ${outcome.exitLayers[i]} vs ${expected}`);
        }
        checked++;
      });
    }
    console.log(
      `${outcomes.length} settings × ${examples.length} examples: ${mismatches} of ${checked} exits differ`,
    );
    expect(mismatches).toBe(0);
  });

  it('equals evaluateExit example by example, with averages and speed-up', () => {
    const outcomes = sweepExits(examples, all, { firstExampleIndex: 7 });
    for (const outcome of outcomes) {
      examples.forEach((o, i) => {
        const r = evaluateExit(o, outcome.criterion, { exampleIndex: 7 + i });
        expect(outcome.exitLayers[i]).toBe(r.exitLayer);
        expect(outcome.predictions[i]).toBe(r.prediction);
        expect(outcome.fired[i]).toBe(r.fired);
      });
      const mean = outcome.exitLayers.reduce((a, b) => a + b, 0) / examples.length;
      expect(outcome.averageLayers).toBeCloseTo(mean, 12);
      expect(outcome.speedUp).toBeCloseTo(L / mean, 12);
      expect(outcome.label).toBe(describeCriterion(outcome.criterion));
    }
    const none = outcomes.find((o) => o.criterion.kind === 'none')!;
    expect(none.averageLayers).toBe(L);
    expect(none.speedUp).toBe(1);
  });

  it('exits move monotonically along each threshold grid', () => {
    const check = (kind: CriterionKind, direction: 1 | -1) => {
      const outcomes = sweepExits(examples, defaultSweep(kind, { numLayers: L, numClasses: C }));
      for (let s = 1; s < outcomes.length; s++) {
        examples.forEach((_, i) => {
          const step = outcomes[s]!.exitLayers[i]! - outcomes[s - 1]!.exitLayers[i]!;
          expect(step * direction, `${kind} example ${i}`).toBeGreaterThanOrEqual(0);
        });
      }
      const averages = outcomes.map((o) => o.averageLayers);
      console.log(`${kind}: average layers ${averages.map((a) => a.toFixed(2)).join(' ')}`);
    };
    check('palbert', 1); // larger q: later exit
    check('pabee', 1); // more patience: later exit
    check('max-prob', 1); // higher confidence needed: later exit
    check('gate', 1);
    check('entropy', -1); // larger entropy allowed: earlier exit
    check('fixed', 1);
  });

  it('checks every criterion against the heads before computing anything', () => {
    const palbertOnly = examples.map(({ numLayers, probs, lambdas }) => ({ numLayers, probs, lambdas }));
    const e = thrown(() =>
      sweepExits(palbertOnly, [
        { kind: 'palbert', q: 0.5 },
        { kind: 'pabee', patience: 3 },
      ]),
    );
    expect(e.code).toBe('unsupported-criterion');
    expect(e.message).toContain('per-layer classifier heads');
    expect(thrown(() => sweepExits(examples, [{ kind: 'fixed', layer: 13 }])).code).toBe('invalid-input');
  });

  it('rejects empty, inconsistent and malformed example sets', () => {
    expect(thrown(() => sweepExits([], [{ kind: 'none' }])).code).toBe('invalid-input');
    const short = dataset(1, 1, 6, C)[0]!;
    const e = thrown(() => sweepExits([examples[0]!, short], [{ kind: 'none' }]));
    expect(e.message).toContain('example 1');
    const bad = { ...examples[0]!, lambdas: Array(L).fill(2) };
    const e2 = thrown(() => sweepExits([examples[0]!, examples[1]!, bad], [{ kind: 'none' }]));
    expect(e2.code).toBe('invalid-input');
    expect(e2.message).toContain('example 2: lambdas[0]');
  });

  it('handles regression outputs', () => {
    const outputs: LayerOutputs[] = [
      { numLayers: 4, headValues: [1, 1.05, 1.08, 3] },
      { numLayers: 4, headValues: [0, 1, 2, 3] },
    ];
    const [p1, p2] = sweepExits(outputs, [
      { kind: 'pabee', patience: 1 },
      { kind: 'pabee', patience: 2 },
    ]);
    expect(p1!.exitLayers).toEqual([2, 4]);
    expect(p1!.predictions).toEqual([1.05, 3]);
    expect(p2!.exitLayers).toEqual([3, 4]);
    expect(p2!.fired).toEqual([true, false]);
  });
});

describe('defaultSweep', () => {
  it('gives the documented grids', () => {
    const q = defaultSweep('palbert', { numLayers: 12 }).map((c) => (c as { q: number }).q);
    expect(q).toHaveLength(19);
    expect(q[0]).toBe(0.05);
    expect(q[2]).toBe(0.15);
    expect(q[18]).toBe(0.95);
    expect(defaultSweep('pabee', { numLayers: 6 })).toEqual(
      [1, 2, 3, 4, 5].map((patience) => ({ kind: 'pabee', patience })),
    );
    expect(defaultSweep('pabee', { numLayers: 1 })).toEqual([]);
    expect(defaultSweep('fixed', { numLayers: 3 })).toEqual(
      [1, 2, 3].map((layer) => ({ kind: 'fixed', layer })),
    );
    expect(defaultSweep('none', { numLayers: 3 })).toEqual([{ kind: 'none' }]);
    expect(defaultSweep('pondernet-sample', { numLayers: 3 })).toHaveLength(5);
    const maxProb = defaultSweep('max-prob', { numLayers: 12, numClasses: 3 }).map(
      (c) => (c as { threshold: number }).threshold,
    );
    expect(Math.min(...maxProb)).toBeGreaterThan(1 / 3);
    expect(Math.max(...maxProb)).toBeLessThan(1);
    const ent = defaultSweep('entropy', { numLayers: 12, numClasses: 2 }).map(
      (c) => (c as { threshold: number }).threshold,
    );
    expect(Math.max(...ent)).toBeLessThan(Math.LN2);
    expect(ent[0]).toBeCloseTo(0.01 * Math.LN2, 6);
  });

  it('every default setting is valid', () => {
    for (const kind of CRITERION_KINDS) {
      for (const c of defaultSweep(kind, { numLayers: 12, numClasses: 2 }))
        expect(parseCriterion(c.kind, valueOf(c))).toEqual(c);
    }
  });

  it('refuses probability criteria for regression and unknown kinds', () => {
    expect(thrown(() => defaultSweep('entropy', { numLayers: 12 })).code).toBe('unsupported-criterion');
    expect(thrown(() => defaultSweep('bogus' as CriterionKind, { numLayers: 12 })).code).toBe(
      'unsupported-criterion',
    );
    expect(thrown(() => defaultSweep('palbert', { numLayers: 0 })).code).toBe('invalid-input');
  });
});

function valueOf(c: ExitCriterion): number | undefined {
  switch (c.kind) {
    case 'palbert':
      return c.q;
    case 'pondernet-sample':
      return c.seed;
    case 'pabee':
      return c.patience;
    case 'max-prob':
    case 'entropy':
    case 'gate':
      return c.threshold;
    case 'fixed':
      return c.layer;
    case 'none':
      return undefined;
  }
}

describe('parseCriterion and describeCriterion', () => {
  it('maps a command-line value onto each criterion', () => {
    expect(parseCriterion('palbert', 0.5)).toEqual({ kind: 'palbert', q: 0.5 });
    expect(parseCriterion('pondernet-sample')).toEqual({ kind: 'pondernet-sample', seed: 0 });
    expect(parseCriterion('pabee', 6)).toEqual({ kind: 'pabee', patience: 6 });
    expect(parseCriterion('entropy', 0.2)).toEqual({ kind: 'entropy', threshold: 0.2 });
    expect(parseCriterion('fixed', 4)).toEqual({ kind: 'fixed', layer: 4 });
    expect(parseCriterion('none')).toEqual({ kind: 'none' });
    expect(describeCriterion({ kind: 'palbert', q: 0.5 })).toBe('palbert q=0.5');
    expect(describeCriterion({ kind: 'pabee', patience: 2, regressionThreshold: 0.1, head: 'shared' })).toBe(
      'pabee patience=2 tau=0.1 head=shared',
    );
  });

  it('rejects unknown kinds, missing values and bad values with typed errors', () => {
    expect(thrown(() => parseCriterion('deebert', 0.1)).code).toBe('unsupported-criterion');
    expect(thrown(() => parseCriterion('palbert')).code).toBe('invalid-input');
    expect(thrown(() => parseCriterion('palbert', NaN)).code).toBe('invalid-input');
    expect(thrown(() => parseCriterion('max-prob', 2)).code).toBe('invalid-input');
    expect(thrown(() => parseCriterion('none', 1)).code).toBe('invalid-input');
  });
});
