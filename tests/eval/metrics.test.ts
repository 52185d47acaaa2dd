import { describe, expect, it } from 'vitest';
import {
  accuracy,
  f1,
  matthews,
  pearson,
  quantile,
  ranks,
  spearman,
  taskMetrics,
} from '../../scripts/eval/metrics';
import { TASKS } from '../../scripts/eval/tasks';

// Hand values: each expected number is worked out in the comment beside it.
describe('classification metrics', () => {
  it('accuracy', () => {
    expect(accuracy([1, 0, 1, 1], [1, 1, 1, 0])).toBe(0.5);
    expect(accuracy([2], [2])).toBe(1);
  });

  it('binary MCC equals (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN))', () => {
    // TP = 3, TN = 2, FP = 1, FN = 2 → (6 − 2) / √(4·5·3·4) = 4 / √240
    const labels = [1, 1, 1, 1, 1, 0, 0, 0];
    const preds = [1, 1, 1, 0, 0, 0, 0, 1];
    expect(matthews(preds, labels)).toBeCloseTo(4 / Math.sqrt(240), 12);
    // scikit-learn's documented example: matthews_corrcoef([1,1,1,0], [1,0,1,1]) = −1/3
    expect(matthews([1, 0, 1, 1], [1, 1, 1, 0])).toBeCloseTo(-1 / 3, 12);
    expect(matthews([0, 1, 0, 1], [0, 1, 0, 1])).toBe(1);
    expect(matthews([1, 0, 1, 0], [0, 1, 0, 1])).toBe(-1);
  });

  it('MCC is 0 when one side is constant (undefined, as scikit-learn returns)', () => {
    expect(matthews([1, 1, 1, 1], [1, 0, 1, 0])).toBe(0);
    expect(matthews([1, 0, 1, 0], [1, 1, 1, 1])).toBe(0);
  });

  it('multi-class MCC (Gorodkin)', () => {
    // c = 4, s = 6, p = (3, 2, 1), t = (2, 2, 2): (4·6 − 12) / √((36 − 14)(36 − 12)) = 12 / √528
    expect(matthews([0, 1, 1, 0, 0, 2], [0, 1, 2, 0, 1, 2])).toBeCloseTo(12 / Math.sqrt(528), 12);
  });

  it('F1 of class 1', () => {
    // TP = 3, FP = 1, FN = 2 → 6 / 9
    expect(f1([1, 1, 1, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 0, 0, 0])).toBeCloseTo(2 / 3, 12);
    expect(f1([0, 0], [0, 0])).toBe(0);
    expect(f1([1, 1], [0, 0])).toBe(0);
  });

  it('rejects inputs of different lengths and empty inputs', () => {
    expect(() => accuracy([1], [1, 0])).toThrow(/length/);
    expect(() => matthews([], [])).toThrow(/empty/);
  });
});

describe('correlations', () => {
  const x = [1, 2, 3, 4, 5];
  const y = [2, 4, 5, 4, 5];

  it('Pearson', () => {
    // dx = (−2..2), dy = (−2, 0, 1, 0, 1): Σdxdy = 6, Σdx² = 10, Σdy² = 6 → 6 / √60
    expect(pearson(x, y)).toBeCloseTo(6 / Math.sqrt(60), 12);
    expect(pearson(x, [10, 8, 6, 4, 2])).toBeCloseTo(-1, 12);
    expect(pearson(x, [3, 3, 3, 3, 3])).toBeNaN();
  });

  it('ranks: ties share their average rank', () => {
    expect(ranks([10, 20, 10, 30, 20, 20])).toEqual([1.5, 4, 1.5, 6, 4, 4]);
    expect(ranks([3, 1, 2])).toEqual([3, 1, 2]);
  });

  it('Spearman with ties', () => {
    // ranks(y) = (1, 2.5, 4.5, 2.5, 4.5): Σdxdy = 7, Σdx² = 10, Σdy² = 9 → 7 / √90 (SciPy: 0.7378647873726218)
    expect(spearman(x, y)).toBeCloseTo(7 / Math.sqrt(90), 12);
    expect(spearman(x, y)).toBeCloseTo(0.7378647873726218, 12);
    // Monotone but not linear: Spearman 1, Pearson below 1.
    expect(spearman(x, [1, 4, 9, 16, 100])).toBeCloseTo(1, 12);
    expect(pearson(x, [1, 4, 9, 16, 100])).toBeLessThan(0.9);
  });
});

describe('task metrics and quantiles', () => {
  it("uses each task's selection metric", () => {
    const labels = [1, 1, 1, 1, 1, 0, 0, 0];
    const preds = [1, 1, 1, 0, 0, 0, 0, 1];
    const sst = taskMetrics(TASKS['SST-2'], preds, labels);
    expect(sst).toEqual({ primary: 5 / 8, primaryName: 'acc', accuracy: 5 / 8 });
    const cola = taskMetrics(TASKS.CoLA, preds, labels);
    expect(cola.primaryName).toBe('mcc');
    expect(cola.primary).toBeCloseTo(4 / Math.sqrt(240), 12);
    const mrpc = taskMetrics(TASKS.MRPC, preds, labels);
    expect(mrpc.primaryName).toBe('acc_f1_mean');
    expect(mrpc.primary).toBeCloseTo((5 / 8 + 2 / 3) / 2, 12);
    const sts = taskMetrics(TASKS['STS-B'], [1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
    expect(sts.primaryName).toBe('pearson_spearman_mean');
    expect(sts.primary).toBeCloseTo((6 / Math.sqrt(60) + 7 / Math.sqrt(90)) / 2, 12);
  });

  it('quantile interpolates linearly (NumPy default)', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([4, 1, 3, 2], 0.95)).toBeCloseTo(3.85, 12);
    expect(quantile([7], 0.95)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });
});
