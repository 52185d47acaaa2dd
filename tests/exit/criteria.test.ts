import { describe, expect, it } from 'vitest';
import {
  criteriaSupportedBy,
  evaluateExit,
  ExitTracker,
  validateOutputs,
  type ExitCriterion,
  type LayerOutputs,
  type LayerStep,
} from '../../src/exit/criteria';
import { argmax, entropy, haltingDistribution } from '../../src/exit/math';
import { isPonderError, PonderError } from '../../src/errors';
import { binary, randomOutputs, rng } from './helpers';

/** Runs fn and returns the PonderError it throws (fails the test when it throws nothing or something else). */
function thrown(fn: () => unknown): PonderError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PonderError);
    return error as PonderError;
  }
  throw new Error('expected a PonderError, nothing was thrown');
}

/** A PALBERT-style model: shared head + lambdas. */
function palbertOutputs(lambdas: number[], probs?: number[][]): LayerOutputs {
  return { numLayers: lambdas.length, probs: probs ?? binary(...lambdas.map(() => 0.7)), lambdas };
}

describe('PALBERT Q-exit', () => {
  it('exits at layer 1 when λ_1 already puts more than q of the mass there', () => {
    const r = evaluateExit(palbertOutputs([0.9, 0.1, 0.1, 0.1]), { kind: 'palbert', q: 0.5 });
    expect(r).toMatchObject({ exitLayer: 1, fired: true, head: 'shared', prediction: 0 });
    expect(r.statistic[0]).toBeCloseTo(0.9, 15);
  });

  it('never exits early when the CDF stays below q: last layer, fired false', () => {
    const r = evaluateExit(palbertOutputs([0.01, 0.01, 0.01, 0.01]), { kind: 'palbert', q: 0.5 });
    expect(r).toMatchObject({ exitLayer: 4, fired: false });
    expect(r.statistic[3]).toBeCloseTo(1 - 0.99 ** 4, 14);
  });

  it('is strict: CDF exactly equal to q does not exit', () => {
    // CDF_1 = 0.5 (not > 0.5), CDF_2 = 0.75
    const r = evaluateExit(palbertOutputs([0.5, 0.5, 0.5]), { kind: 'palbert', q: 0.5 });
    expect(r.statistic.slice(0, 2)).toEqual([0.5, 0.75]);
    expect(r.exitLayer).toBe(2);
  });

  it('q = 0 exits at the first layer with λ > 0, and never when all λ are 0', () => {
    expect(evaluateExit(palbertOutputs([0, 0, 1e-9, 0.5, 0.5]), { kind: 'palbert', q: 0 }).exitLayer).toBe(3);
    expect(evaluateExit(palbertOutputs([0.2, 0, 0]), { kind: 'palbert', q: 0 }).exitLayer).toBe(1);
    const none = evaluateExit(palbertOutputs([0, 0, 0]), { kind: 'palbert', q: 0 });
    expect(none).toMatchObject({ exitLayer: 3, fired: false });
  });

  it('q = 1 never exits early, even with λ = 1 (CDF = 1 is not > 1)', () => {
    const r = evaluateExit(palbertOutputs([1, 1, 1, 1]), { kind: 'palbert', q: 1 });
    expect(r).toMatchObject({ exitLayer: 4, fired: false });
    expect(r.statistic).toEqual([1, 1, 1, 1]);
  });

  it('q = 1 never exits early where the unclamped running sum rounds above 1 (f64 and f32)', () => {
    // search random λ sequences for one whose naive Σ p_n exceeds 1 through rounding: the clamp must hold it at 1
    for (const precision of ['f64', 'f32'] as const) {
      const round = precision === 'f32' ? Math.fround : (x: number) => x;
      const random = rng(precision === 'f32' ? 11 : 7);
      let found: number[] | undefined;
      for (let t = 0; t < 20000 && !found; t++) {
        const lambdas = Array.from({ length: 12 }, () =>
          round(random() < 0.3 ? 1 - random() * 1e-3 : random()),
        );
        let c = 1;
        let sum = 0;
        for (const l of lambdas) {
          sum = round(sum + round(l * c));
          c = round(c * round(1 - l));
          if (sum > 1) found = lambdas;
        }
      }
      expect(found, `no λ sequence found whose ${precision} sum exceeds 1`).toBeDefined();
      const r = evaluateExit(palbertOutputs(found!), { kind: 'palbert', q: 1 }, { precision });
      expect(r).toMatchObject({ exitLayer: 12, fired: false });
      expect(Math.max(...r.statistic)).toBeLessThanOrEqual(1);
    }
  });

  it('CDF and p(n) match an independent computation of Σ_{j≤n} λ_j ∏_{i<j}(1 − λ_i)', () => {
    const random = rng(1234);
    let worstCdf = 0;
    let worstClosed = 0;
    let worstF32 = 0;
    for (let t = 0; t < 500; t++) {
      const L = 1 + Math.floor(random() * 24);
      const { lambdas } = randomOutputs(random, L, 2);
      const h = haltingDistribution(lambdas!);
      const h32 = haltingDistribution(lambdas!, Math.fround);
      for (let n = 1; n <= L; n++) {
        // direct double sum, with no shared state with the recursion under test
        let direct = 0;
        for (let j = 1; j <= n; j++) {
          let survive = 1;
          for (let i = 1; i < j; i++) survive *= 1 - lambdas![i - 1]!;
          direct += lambdas![j - 1]! * survive;
          if (j === n) worstCdf = Math.max(worstCdf, Math.abs(h.p[n - 1]! - lambdas![j - 1]! * survive));
        }
        let closed = 1; // CDF_n = 1 − ∏_{i≤n}(1 − λ_i)
        for (let i = 1; i <= n; i++) closed *= 1 - lambdas![i - 1]!;
        closed = 1 - closed;
        worstCdf = Math.max(worstCdf, Math.abs(h.cdf[n - 1]! - direct));
        worstClosed = Math.max(worstClosed, Math.abs(h.cdf[n - 1]! - closed));
        worstF32 = Math.max(worstF32, Math.abs(h32.cdf[n - 1]! - direct));
      }
      const total = h.p.reduce((a, b) => a + b, 0) + h.remainder;
      expect(Math.abs(total - 1)).toBeLessThan(1e-12);
    }
    console.log(
      `CDF vs direct sum: max |diff| ${worstCdf.toExponential(2)}; vs 1 − ∏(1 − λ): ${worstClosed.toExponential(2)};` +
        ` f32 recursion vs f64 direct: ${worstF32.toExponential(2)}`,
    );
    expect(worstCdf).toBeLessThan(1e-14);
    expect(worstClosed).toBeLessThan(1e-14);
    expect(worstF32).toBeLessThan(1e-6);
  });

  it('returns the halting distribution with every criterion when the outputs have lambdas', () => {
    const outputs = palbertOutputs([0.25, 0.5, 1]);
    for (const c of [{ kind: 'none' }, { kind: 'max-prob', threshold: 0.9 }] as ExitCriterion[]) {
      const h = evaluateExit(outputs, c).halting!;
      expect(h.p).toEqual([0.25, 0.375, 0.375]);
      expect(h.cdf).toEqual([0.25, 0.625, 1]);
      expect(h.remainder).toBe(0);
    }
    expect(evaluateExit({ numLayers: 1, probs: [[0.5, 0.5]] }, { kind: 'none' }).halting).toBeUndefined();
  });
});

describe('PonderNet sampled exit', () => {
  const constant = (lambda: number, L: number): LayerOutputs => palbertOutputs(Array(L).fill(lambda));

  it('gives the same exit for the same seed and example index', () => {
    const outputs = constant(0.3, 12);
    for (let ex = 0; ex < 50; ex++) {
      const a = evaluateExit(outputs, { kind: 'pondernet-sample', seed: 5 }, { exampleIndex: ex });
      const b = evaluateExit(outputs, { kind: 'pondernet-sample', seed: 5 }, { exampleIndex: ex });
      expect(b.exitLayer).toBe(a.exitLayer);
      expect(b.statistic).toEqual(a.statistic);
    }
  });

  it('differs somewhere between seeds and between example indexes on a longer sequence', () => {
    const outputs = constant(0.3, 12);
    const exits = (seed: number, offset = 0): number[] =>
      Array.from(
        { length: 100 },
        (_, ex) =>
          evaluateExit(outputs, { kind: 'pondernet-sample', seed }, { exampleIndex: ex + offset }).exitLayer,
      );
    const base = exits(1);
    expect(exits(2)).not.toEqual(base);
    expect(exits(1, 1)).not.toEqual(base);
    expect(new Set(base).size).toBeGreaterThan(3);
  });

  it('exits with probability p(n): empirical exit frequencies match λ_n ∏(1 − λ_i)', () => {
    const lambdas = [0.1, 0.3, 0.05, 0.5, 0.2, 0.4];
    const outputs = palbertOutputs(lambdas);
    const counts = Array(lambdas.length).fill(0) as number[];
    const N = 20000;
    for (let ex = 0; ex < N; ex++) {
      counts[
        evaluateExit(outputs, { kind: 'pondernet-sample', seed: 99 }, { exampleIndex: ex }).exitLayer - 1
      ]!++;
    }
    const { p, remainder } = haltingDistribution(lambdas);
    const expected = p.map((x, i) => (i === lambdas.length - 1 ? x + remainder : x)); // the rest goes to layer L
    const worst = Math.max(...expected.map((e, i) => Math.abs(counts[i]! / N - e)));
    console.log(`PonderNet exit frequencies vs p(n) over ${N} draws: max |diff| ${worst.toFixed(4)}`);
    expect(worst).toBeLessThan(0.015); // ≈ 4.5 standard errors of the largest cell
  });

  it('λ = 1 always exits, λ = 0 never does', () => {
    for (let ex = 0; ex < 2000; ex++) {
      const always = evaluateExit(
        palbertOutputs([0, 0, 1, 0]),
        { kind: 'pondernet-sample', seed: 0 },
        { exampleIndex: ex },
      );
      expect(always).toMatchObject({ exitLayer: 3, fired: true });
      const never = evaluateExit(
        palbertOutputs([0, 0, 0]),
        { kind: 'pondernet-sample', seed: 0 },
        { exampleIndex: ex },
      );
      expect(never).toMatchObject({ exitLayer: 3, fired: false });
    }
  });

  it('rejects seeds and example indexes that are not u32 integers', () => {
    const outputs = constant(0.3, 4);
    for (const seed of [-1, 1.5, NaN, 2 ** 32]) {
      expect(thrown(() => evaluateExit(outputs, { kind: 'pondernet-sample', seed })).code).toBe(
        'invalid-input',
      );
    }
    expect(
      thrown(() => evaluateExit(outputs, { kind: 'pondernet-sample', seed: 1 }, { exampleIndex: -2 })).code,
    ).toBe('invalid-input');
  });
});

describe('PABEE patience', () => {
  /** Per-layer heads whose argmax follows `classes` (2 classes, confident). */
  const heads = (...classes: number[]): LayerOutputs => ({
    numLayers: classes.length,
    headProbs: classes.map((c) => (c === 0 ? [0.8, 0.2] : [0.2, 0.8])),
  });

  it('counts consecutive agreeing layers and exits at the first cnt = t', () => {
    // argmax 0 1 1 1 0 0: cnt 0 0 1 2 0 1
    const r = evaluateExit(heads(0, 1, 1, 1, 0, 0), { kind: 'pabee', patience: 2 });
    expect(r.statistic).toEqual([0, 0, 1, 2, 0, 1]);
    expect(r).toMatchObject({ exitLayer: 4, fired: true, head: 'per-layer', prediction: 1 });
    expect(evaluateExit(heads(0, 0, 1, 1, 1), { kind: 'pabee', patience: 1 }).exitLayer).toBe(2);
  });

  it('patience 0 means no early exit', () => {
    expect(evaluateExit(heads(1, 1, 1, 1), { kind: 'pabee', patience: 0 })).toMatchObject({
      exitLayer: 4,
      fired: false,
    });
  });

  it('patience L − 1 can only fire at the last layer; patience ≥ L never fires', () => {
    expect(evaluateExit(heads(1, 1, 1, 1), { kind: 'pabee', patience: 3 })).toMatchObject({
      exitLayer: 4,
      fired: true,
    });
    for (const patience of [4, 5, 100]) {
      expect(evaluateExit(heads(1, 1, 1, 1), { kind: 'pabee', patience })).toMatchObject({
        exitLayer: 4,
        fired: false,
      });
    }
  });

  it('argmax ties take the lowest class index', () => {
    expect(argmax([0.25, 0.5, 0.25, 0.5])).toBe(1);
    // [0.5, 0.5] → class 0, so layers 1 and 2 agree
    const r = evaluateExit(
      {
        numLayers: 3,
        headProbs: [
          [0.5, 0.5],
          [0.6, 0.4],
          [0.1, 0.9],
        ],
      },
      { kind: 'pabee', patience: 1 },
    );
    expect(r).toMatchObject({ exitLayer: 2, prediction: 0 });
    expect(evaluateExit({ numLayers: 1, probs: [[1 / 3, 1 / 3, 1 / 3]] }, { kind: 'none' }).prediction).toBe(
      0,
    );
  });

  it('regression: layers agree when |ŷ_n − ŷ_{n−1}| < τ (strict), τ defaulting to 0.1', () => {
    const outputs: LayerOutputs = { numLayers: 5, headValues: [0, 0.5, 1, 1.05, 1.1] };
    // default τ = 0.1: cnt 0 0 0 1 2
    expect(evaluateExit(outputs, { kind: 'pabee', patience: 2 })).toMatchObject({
      exitLayer: 5,
      fired: true,
    });
    expect(evaluateExit(outputs, { kind: 'pabee', patience: 1 })).toMatchObject({
      exitLayer: 4,
      prediction: 1.05,
    });
    // differences are exactly 0.5 then 0.5: equal to τ does not count
    const r = evaluateExit(outputs, { kind: 'pabee', patience: 1, regressionThreshold: 0.5 });
    expect(r.statistic.slice(0, 3)).toEqual([0, 0, 0]);
    expect(r.exitLayer).toBe(4);
    expect(evaluateExit(outputs, { kind: 'pabee', patience: 1, regressionThreshold: 0 }).fired).toBe(false);
  });

  it('on a model without per-layer heads: a typed error naming the missing head and the supported criteria', () => {
    const e = thrown(() => evaluateExit(palbertOutputs([0.2, 0.2, 0.2]), { kind: 'pabee', patience: 1 }));
    expect(e.code).toBe('unsupported-criterion');
    expect(e.message).toContain('per-layer classifier heads');
    expect(e.message).toContain('supports: palbert, pondernet-sample, max-prob, entropy, fixed, none');
    // asking for the shared head explicitly is allowed
    const shared = evaluateExit(palbertOutputs([0.2, 0.2, 0.2]), {
      kind: 'pabee',
      patience: 1,
      head: 'shared',
    });
    expect(shared).toMatchObject({ exitLayer: 2, head: 'shared' });
  });
});

describe('max-prob and entropy thresholds', () => {
  it('max-prob: exactly equal to the threshold does not exit, just above does', () => {
    const outputs: LayerOutputs = { numLayers: 3, probs: binary(0.75, 0.875, 0.5) };
    expect(evaluateExit(outputs, { kind: 'max-prob', threshold: 0.75 })).toMatchObject({
      exitLayer: 2,
      fired: true,
    });
    expect(evaluateExit(outputs, { kind: 'max-prob', threshold: 0.7499 }).exitLayer).toBe(1);
    expect(evaluateExit(outputs, { kind: 'max-prob', threshold: 0.875 })).toMatchObject({
      exitLayer: 3,
      fired: false,
    });
    expect(evaluateExit(outputs, { kind: 'max-prob', threshold: 0 }).exitLayer).toBe(1);
    expect(
      evaluateExit(
        {
          numLayers: 2,
          probs: [
            [1, 0],
            [1, 0],
          ],
        },
        { kind: 'max-prob', threshold: 1 },
      ).fired,
    ).toBe(false);
  });

  it('entropy is in nats and exactly equal to the threshold does not exit', () => {
    expect(entropy([0.5, 0.5])).toBeCloseTo(Math.LN2, 15);
    expect(entropy([1 / 3, 1 / 3, 1 / 3])).toBeCloseTo(Math.log(3), 15);
    expect(entropy([1, 0, 0])).toBe(0);
    const outputs: LayerOutputs = {
      numLayers: 3,
      probs: [
        [0.5, 0.5],
        [0.5, 0.5],
        [0.9, 0.1],
      ],
    };
    const hLast = -(0.9 * Math.log(0.9) + 0.1 * Math.log(0.1));
    const r = evaluateExit(outputs, { kind: 'entropy', threshold: entropy([0.5, 0.5]) });
    expect(r).toMatchObject({ exitLayer: 3, fired: true });
    expect(r.statistic[2]).toBeCloseTo(hLast, 15);
    expect(evaluateExit(outputs, { kind: 'entropy', threshold: hLast }).fired).toBe(false);
    expect(evaluateExit(outputs, { kind: 'entropy', threshold: Math.LN2 + 1e-12 }).exitLayer).toBe(1);
  });

  it('entropy threshold 0 never exits, even on one-hot rows', () => {
    const r = evaluateExit(
      {
        numLayers: 2,
        probs: [
          [1, 0],
          [0, 1],
        ],
      },
      { kind: 'entropy', threshold: 0 },
    );
    expect(r).toMatchObject({ exitLayer: 2, fired: false, prediction: 1 });
  });

  it('f32 precision rounds the threshold like a GPU uniform would', () => {
    // f32(0.8) = 0.800000011… > 0.8: a probability equal to f32(0.8) is above the f64 threshold 0.8 but equal to
    // the f32 threshold, so only the f32 evaluation (the GPU's view) keeps it from exiting
    const p = Math.fround(0.8);
    expect(p > 0.8).toBe(true);
    const outputs: LayerOutputs = {
      numLayers: 2,
      probs: [
        [p, 1 - p],
        [p, 1 - p],
      ],
    };
    expect(evaluateExit(outputs, { kind: 'max-prob', threshold: 0.8 }, { precision: 'f64' }).exitLayer).toBe(
      1,
    );
    expect(evaluateExit(outputs, { kind: 'max-prob', threshold: 0.8 }, { precision: 'f32' }).fired).toBe(
      false,
    );
  });

  it('is not available for regression outputs', () => {
    const e = thrown(() =>
      evaluateExit({ numLayers: 2, values: [1, 2] }, { kind: 'entropy', threshold: 0.1 }),
    );
    expect(e.code).toBe('unsupported-criterion');
    expect(e.message).toContain('regression');
  });
});

describe('gate, fixed depth and none', () => {
  const gated = (gates: number[], L = 3): LayerOutputs => ({
    numLayers: L,
    headProbs: binary(...Array(L).fill(0.6)),
    gates,
  });

  it('gate: exits at the first g_n strictly above the threshold', () => {
    expect(evaluateExit(gated([0.2, 0.6, 0.9]), { kind: 'gate', threshold: 0.6 })).toMatchObject({
      exitLayer: 3,
      fired: true,
    });
    expect(evaluateExit(gated([0.2, 0.6, 0.9]), { kind: 'gate', threshold: 0.5 }).exitLayer).toBe(2);
    expect(evaluateExit(gated([0.2, 0.6, 0.9]), { kind: 'gate', threshold: 0.95 }).fired).toBe(false);
    expect(evaluateExit(gated([1, 1, 1]), { kind: 'gate', threshold: 1 }).fired).toBe(false);
  });

  it('gate: accepts L − 1 gates (the last layer exits anyway)', () => {
    const r = evaluateExit(gated([0.1, 0.2]), { kind: 'gate', threshold: 0.5 });
    expect(r).toMatchObject({ exitLayer: 3, fired: false });
    expect(r.statistic[2]).toBeNaN();
    expect(thrown(() => evaluateExit(gated([0.1]), { kind: 'gate', threshold: 0.5 })).code).toBe(
      'invalid-input',
    );
  });

  it('gate on a model without gates is an unsupported criterion', () => {
    const e = thrown(() => evaluateExit(palbertOutputs([0.1, 0.1]), { kind: 'gate', threshold: 0.5 }));
    expect(e.code).toBe('unsupported-criterion');
    expect(e.message).toContain('exit gates');
  });

  it('fixed depth exits at k in 1..L and rejects anything else', () => {
    const outputs = gated([0, 0, 0]);
    for (const layer of [1, 2, 3]) {
      expect(evaluateExit(outputs, { kind: 'fixed', layer })).toMatchObject({
        exitLayer: layer,
        fired: true,
      });
    }
    for (const layer of [0, 4, 2.5, NaN, -1]) {
      const e = thrown(() => evaluateExit(outputs, { kind: 'fixed', layer }));
      expect(e.code).toBe('invalid-input');
      expect(e.message).toContain('fixed layer');
    }
  });

  it('none runs the full depth', () => {
    const r = evaluateExit({ numLayers: 4, probs: binary(0.9, 0.9, 0.9, 0.2) }, { kind: 'none' });
    expect(r).toMatchObject({ exitLayer: 4, fired: false, prediction: 1 });
    expect(r.probs).toEqual([0.2, 0.8]);
  });
});

describe('heads', () => {
  const both: LayerOutputs = {
    numLayers: 2,
    probs: binary(0.9, 0.9),
    headProbs: binary(0.1, 0.1),
    lambdas: [0.9, 0.9],
  };

  it('PALBERT predicts from the shared head, other criteria prefer the per-layer heads', () => {
    expect(evaluateExit(both, { kind: 'palbert', q: 0.5 })).toMatchObject({ head: 'shared', prediction: 0 });
    expect(evaluateExit(both, { kind: 'max-prob', threshold: 0.5 })).toMatchObject({
      head: 'per-layer',
      prediction: 1,
    });
    expect(evaluateExit(both, { kind: 'none', head: 'shared' })).toMatchObject({
      head: 'shared',
      prediction: 0,
    });
    expect(evaluateExit(both, { kind: 'palbert', q: 0.5, head: 'per-layer' }).prediction).toBe(1);
  });

  it('an explicit head the outputs lack is an unsupported criterion', () => {
    const e = thrown(() => evaluateExit(palbertOutputs([0.5, 0.5]), { kind: 'none', head: 'per-layer' }));
    expect(e.code).toBe('unsupported-criterion');
  });

  it('criteriaSupportedBy lists what each kind of model can run', () => {
    const base = { lambdas: false, gates: false, perLayerHeads: false };
    expect(criteriaSupportedBy(base)).toEqual(['max-prob', 'entropy', 'fixed', 'none']);
    expect(criteriaSupportedBy({ ...base, lambdas: true })).toEqual([
      'palbert',
      'pondernet-sample',
      'max-prob',
      'entropy',
      'fixed',
      'none',
    ]);
    expect(criteriaSupportedBy({ ...base, perLayerHeads: true, gates: true, sharedHead: false })).toEqual([
      'pabee',
      'max-prob',
      'entropy',
      'gate',
      'fixed',
      'none',
    ]);
    expect(criteriaSupportedBy({ ...base, perLayerHeads: true, regression: true })).toEqual([
      'pabee',
      'fixed',
      'none',
    ]);
    expect(criteriaSupportedBy(validateOutputs(both).available)).toEqual([
      'palbert',
      'pondernet-sample',
      'pabee',
      'max-prob',
      'entropy',
      'fixed',
      'none',
    ]);
  });
});

describe('validation', () => {
  const outputs = palbertOutputs([0.5, 0.5, 0.5]);

  it('rejects NaN, infinite and out-of-range parameters with invalid-input', () => {
    const bad: ExitCriterion[] = [
      { kind: 'palbert', q: NaN },
      { kind: 'palbert', q: -0.01 },
      { kind: 'palbert', q: 1.01 },
      { kind: 'max-prob', threshold: NaN },
      { kind: 'max-prob', threshold: 1.5 },
      { kind: 'entropy', threshold: NaN },
      { kind: 'entropy', threshold: Infinity },
      { kind: 'entropy', threshold: -1 },
      { kind: 'gate', threshold: NaN },
      { kind: 'pabee', patience: -1, head: 'shared' },
      { kind: 'pabee', patience: 1.5, head: 'shared' },
      { kind: 'pabee', patience: 2, regressionThreshold: NaN, head: 'shared' },
      { kind: 'palbert', q: '0.5' as unknown as number },
    ];
    for (const c of bad) {
      const e = thrown(() => evaluateExit(outputs, c));
      expect(e.code, JSON.stringify(c)).toBe('invalid-input');
    }
    expect(thrown(() => evaluateExit(outputs, { kind: 'palbert', q: NaN })).message).toContain('NaN');
  });

  it('rejects unknown criteria with unsupported-criterion', () => {
    const e = thrown(() => evaluateExit(outputs, { kind: 'deebert' } as unknown as ExitCriterion));
    expect(e.code).toBe('unsupported-criterion');
    expect(e.message).toContain('known: palbert');
  });

  it('rejects malformed outputs, naming the field', () => {
    const cases: [LayerOutputs, string][] = [
      [{ numLayers: 0, probs: [] }, 'numLayers'],
      [{ numLayers: 2, probs: binary(0.5) }, 'probs'],
      [
        {
          numLayers: 2,
          probs: [
            [2, -1],
            [0.5, 0.5],
          ],
        },
        'probs[0]',
      ],
      [{ numLayers: 1, probs: [[3.2, -1.1]] }, 'probs[0]'],
      [{ numLayers: 1, probs: [[0.4, 0.4]] }, 'softmax'],
      [{ numLayers: 1, probs: [[NaN, 0.5]] }, 'probs[0][0]'],
      [{ numLayers: 1, probs: [[1]] }, 'at least 2'],
      [
        {
          numLayers: 2,
          probs: [
            [0.5, 0.5],
            [0.2, 0.3, 0.5],
          ],
        },
        'expected 2',
      ],
      [
        {
          numLayers: 2,
          probs: binary(0.5, 0.5),
          headProbs: [
            [0.2, 0.3, 0.5],
            [0.2, 0.3, 0.5],
          ],
        },
        'headProbs[0]',
      ],
      [{ numLayers: 2, probs: binary(0.5, 0.5), lambdas: [0.5, 1.5] }, 'lambdas[1]'],
      [{ numLayers: 2, probs: binary(0.5, 0.5), lambdas: [0.5] }, 'lambdas'],
      [{ numLayers: 2, probs: binary(0.5, 0.5), gates: [0.5, 0.5, 0.5] }, 'gates'],
      [{ numLayers: 2, probs: binary(0.5, 0.5), values: [1, 2] }, 'mix'],
      [{ numLayers: 2 }, 'no head'],
      [{ numLayers: 2, values: [1, Infinity] }, 'values[1]'],
    ];
    for (const [bad, field] of cases) {
      const e = thrown(() => evaluateExit(bad, { kind: 'none' }));
      expect(e.code, field).toBe('invalid-input');
      expect(e.message, field).toContain(field);
      expect(isPonderError(e, 'invalid-input')).toBe(true);
    }
  });

  it('accepts Float32Array rows (GPU readbacks)', () => {
    const f = (a: number[]) => Float32Array.from(a);
    const r = evaluateExit(
      { numLayers: 2, probs: [f([0.3, 0.7]), f([0.9, 0.1])], lambdas: f([0.25, 0.75]) },
      { kind: 'palbert', q: 0.5 },
      { precision: 'f32' },
    );
    expect(r).toMatchObject({ exitLayer: 2, prediction: 0 });
  });
});

describe('ExitTracker (layer-by-layer) agrees with evaluateExit', () => {
  it('on random outputs, for every criterion, in f64 and f32', () => {
    const random = rng(42);
    const criteria: ExitCriterion[] = [
      { kind: 'palbert', q: 0.5 },
      { kind: 'pondernet-sample', seed: 3 },
      { kind: 'pabee', patience: 2 },
      { kind: 'max-prob', threshold: 0.8 },
      { kind: 'entropy', threshold: 0.4 },
      { kind: 'gate', threshold: 0.7 },
      { kind: 'fixed', layer: 2 },
      { kind: 'none' },
    ];
    let compared = 0;
    for (let t = 0; t < 200; t++) {
      const L = 2 + Math.floor(random() * 11);
      const outputs = randomOutputs(random, L, 2 + Math.floor(random() * 3));
      for (const criterion of criteria) {
        for (const precision of ['f64', 'f32'] as const) {
          const expected = evaluateExit(outputs, criterion, { exampleIndex: t, precision });
          const tracker = new ExitTracker(criterion, L, { exampleIndex: t, precision });
          const head = expected.head === 'shared' ? outputs.probs! : outputs.headProbs!;
          let stoppedAt: number | undefined;
          for (let n = 1; n <= L && stoppedAt === undefined; n++) {
            const step: LayerStep = {
              probs: head[n - 1]!,
              lambda: outputs.lambdas![n - 1]!,
              gate: outputs.gates![n - 1]!,
            };
            if (tracker.push(step)) stoppedAt = n; // stop feeding at the exit, as a streamed pass would
          }
          expect(stoppedAt).toBe(expected.exitLayer);
          expect(tracker.fired).toBe(expected.fired);
          expect(tracker.statistic).toEqual(expected.statistic.slice(0, stoppedAt));
          compared++;
        }
      }
    }
    console.log(`ExitTracker vs evaluateExit: ${compared} (example, criterion, precision) triples agree`);
  });

  it('refuses a layer past the depth', () => {
    const tracker = new ExitTracker({ kind: 'none' }, 1);
    expect(tracker.push({})).toBe(true);
    expect(thrown(() => tracker.push({})).code).toBe('invalid-input');
  });
});
