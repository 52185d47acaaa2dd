/**
 * Small numeric helpers of the exit criteria. Every function takes a `round` step applied after each arithmetic
 * operation: the identity reproduces f64 (JS) arithmetic, `Math.fround` reproduces an f32 GPU kernel that performs
 * the same operations in the same order (see `Precision` in criteria.ts).
 */

/** A row of numbers: a plain array or a view of a GPU readback. */
export type Row = ArrayLike<number>;

export type Round = (x: number) => number;

export const identity: Round = (x) => x;

/** Index of the largest entry; ties go to the lowest index (the first maximum wins). */
export function argmax(row: Row): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export function maxProb(row: Row): number {
  return row[argmax(row)]!;
}

/**
 * Shannon entropy in nats (natural log), −Σ_c p_c ln p_c summed in class order; a zero probability contributes 0
 * (the limit of p ln p). Ranges over [0, ln C].
 */
export function entropy(row: Row, round: Round = identity): number {
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    const p = round(row[i]!);
    if (p > 0) sum = round(sum + round(p * round(Math.log(p))));
  }
  return sum === 0 ? 0 : -sum; // avoid −0 for one-hot rows
}

/** Numerically stable softmax (shifted by the maximum), for callers that hold logits. */
export function softmax(logits: Row): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const out = Array.from(logits, (x) => Math.exp(x - max));
  const total = out.reduce((a, b) => a + b, 0);
  return out.map((x) => x / total);
}

/**
 * The halting distribution of a model with per-layer conditional exit probabilities λ_n (PALBERT, PonderNet):
 * p(n) = λ_n ∏_{i<n} (1 − λ_i), and its running sum CDF_n.
 */
export interface HaltingDistribution {
  /** p(n) for n = 1..L (index n − 1). Not renormalised: Σ p(n) = 1 − remainder ≤ 1, as in PALBERT's code. */
  p: number[];
  /** CDF_n = Σ_{j≤n} p(j), clamped to at most 1 (see `haltingStep`). */
  cdf: number[];
  /** ∏_{i≤L} (1 − λ_i): the mass of "never halted", which inference sends to the last layer. */
  remainder: number;
}

/** The running state that the GPU exit kernel keeps per example: survival c_n = ∏_{i≤n}(1 − λ_i) and CDF_n. */
export interface HaltingState {
  survival: number;
  cdf: number;
}

export const HALTING_START: Readonly<HaltingState> = { survival: 1, cdf: 0 };

/**
 * One layer of the recursion p_n = λ_n · c_{n−1}, c_n = c_{n−1} · (1 − λ_n), CDF_n = min(1, CDF_{n−1} + p_n).
 * The sum is accumulated (as PALBERT's code does) rather than taken as 1 − c_n, which would lose every digit of a
 * small CDF to cancellation. Rounding can push the sum a few ulps past 1; the clamp keeps CDF ≤ 1 exactly, so that
 * q = 1 never exits early whatever the rounding.
 */
export function haltingStep(
  state: HaltingState,
  lambda: number,
  round: Round = identity,
): { state: HaltingState; p: number } {
  const l = round(lambda);
  const p = round(l * state.survival);
  const survival = round(state.survival * round(1 - l));
  const cdf = Math.min(1, round(state.cdf + p));
  return { state: { survival, cdf }, p };
}

export function haltingDistribution(lambdas: Row, round: Round = identity): HaltingDistribution {
  let state: HaltingState = HALTING_START;
  const p: number[] = [];
  const cdf: number[] = [];
  for (let i = 0; i < lambdas.length; i++) {
    const next = haltingStep(state, lambdas[i]!, round);
    state = next.state;
    p.push(next.p);
    cdf.push(state.cdf);
  }
  return { p, cdf, remainder: state.survival };
}
