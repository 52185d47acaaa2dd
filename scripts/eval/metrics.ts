/**
 * GLUE metrics, as fractions (0.01 = one point): accuracy, Matthews correlation (CoLA), F1 of class 1 (MRPC), Pearson
 * and Spearman correlation (STS-B, ties get their average rank). Degenerate inputs follow scikit-learn / SciPy: MCC
 * and F1 are 0 when undefined, correlations are NaN when one side is constant.
 */
import type { TaskSpec } from './tasks';

function checkLengths(a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length) throw new Error(`metric inputs differ in length: ${a.length} vs ${b.length}`);
  if (a.length === 0) throw new Error('metric of an empty set');
}

export function accuracy(predictions: readonly number[], labels: readonly number[]): number {
  checkLengths(predictions, labels);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / labels.length;
}

/**
 * Matthews correlation for any number of classes (Gorodkin's R_K, what scikit-learn computes):
 * (c·s − Σ_k p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)), with c correct, s examples, p_k / t_k predicted / true counts.
 */
export function matthews(predictions: readonly number[], labels: readonly number[]): number {
  checkLengths(predictions, labels);
  const p = new Map<number, number>();
  const t = new Map<number, number>();
  let c = 0;
  for (let i = 0; i < labels.length; i++) {
    p.set(predictions[i]!, (p.get(predictions[i]!) ?? 0) + 1);
    t.set(labels[i]!, (t.get(labels[i]!) ?? 0) + 1);
    if (predictions[i] === labels[i]) c++;
  }
  const s = labels.length;
  let pt = 0;
  for (const [k, n] of p) pt += n * (t.get(k) ?? 0);
  let pp = 0;
  for (const n of p.values()) pp += n * n;
  let tt = 0;
  for (const n of t.values()) tt += n * n;
  const denominator = Math.sqrt((s * s - pp) * (s * s - tt));
  return denominator === 0 ? 0 : (c * s - pt) / denominator;
}

/** F1 of the positive class: 2TP / (2TP + FP + FN); 0 when there are no positives on either side. */
export function f1(predictions: readonly number[], labels: readonly number[], positive = 1): number {
  checkLengths(predictions, labels);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const predicted = predictions[i] === positive;
    const actual = labels[i] === positive;
    if (predicted && actual) tp++;
    else if (predicted) fp++;
    else if (actual) fn++;
  }
  return tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

export function pearson(x: readonly number[], y: readonly number[]): number {
  checkLengths(x, y);
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return sxy / Math.sqrt(sxx * syy);
}

/** 1-based ranks; tied values share the average of the ranks they span. */
export function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k]![1]] = rank;
    i = j + 1;
  }
  return out;
}

export function spearman(x: readonly number[], y: readonly number[]): number {
  checkLengths(x, y);
  return pearson(ranks(x), ranks(y));
}

export interface TaskMetrics {
  /** The task's selection metric (what --budget and the sweep curve use). */
  primary: number;
  /** Its name: 'acc', 'mcc', 'acc_f1_mean' (MRPC), 'pearson_spearman_mean' (STS-B). */
  primaryName: string;
  accuracy?: number;
  mcc?: number;
  f1?: number;
  pearson?: number;
  spearman?: number;
}

/**
 * The task's metrics. The primary metric is GLUE's usual dev selection metric (as PALBERT selects): accuracy; MCC
 * for CoLA; the mean of accuracy and F1 for MRPC; the mean of Pearson and Spearman for STS-B.
 */
export function taskMetrics(
  task: TaskSpec,
  predictions: readonly number[],
  labels: readonly number[],
): TaskMetrics {
  if (task.kind === 'regression') {
    const r = pearson(predictions, labels);
    const rho = spearman(predictions, labels);
    return { primary: (r + rho) / 2, primaryName: 'pearson_spearman_mean', pearson: r, spearman: rho };
  }
  const acc = accuracy(predictions, labels);
  if (task.name === 'CoLA') {
    return {
      primary: matthews(predictions, labels),
      primaryName: 'mcc',
      accuracy: acc,
      mcc: matthews(predictions, labels),
    };
  }
  if (task.name === 'MRPC') {
    const f = f1(predictions, labels);
    return { primary: (acc + f) / 2, primaryName: 'acc_f1_mean', accuracy: acc, f1: f };
  }
  return { primary: acc, primaryName: 'acc', accuracy: acc };
}

/** The q-quantile (0..1) by linear interpolation between order statistics (NumPy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
