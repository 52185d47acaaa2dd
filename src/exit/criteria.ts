/**
 * Early-exit criteria as pure functions over one example's per-layer outputs. This is the reference that the GPU exit
 * kernel must reproduce and what CPU-side evaluation (the eval CLI's --sweep) runs. Framework-free: no DOM, no WebGPU.
 * The math follows ../shared/docs/early-exit-methods.md (released-code behaviour).
 *
 * Conventions, decided here and binding on the GPU kernel:
 * - Layers are 1-based: `exitLayer` n means layers 1..n ran, so the mean of `exitLayer` is "average layers" and
 *   speed-up = L / average. When a criterion never fires, the example exits at the last layer L (`fired: false`).
 * - Every threshold comparison is strict, in the direction that makes the boundary value NOT exit:
 *   PALBERT CDF_n > q; max-prob max_c p_c > τ; entropy H < τ; gate g_n > τ; PABEE regression |ŷ_n − ŷ_{n−1}| < τ.
 *   (The classic max-prob rule is ≥ τ; here a probability exactly equal to τ does not exit.)
 * - Argmax ties take the lowest class index, both for the prediction and for PABEE's agreement test.
 * - PALBERT Q-exit: CDF_n = Σ_{j≤n} λ_j ∏_{i<j}(1 − λ_i), accumulated layer by layer and clamped to ≤ 1. q = 0 exits at
 *   the first layer with CDF_n > 0, i.e. the first λ_n > 0 (layer 1 unless λ_1 = 0). q = 1 never exits early and
 *   never fires: CDF_n ≤ 1 always (the clamp guarantees it under rounding too), so every example runs all L layers.
 * - PonderNet sampled exit: at layer n draw u_n = exitUniform(seed, exampleIndex, n) ∈ [0, 1) and exit when u_n < λ_n,
 *   which is Bernoulli(λ_n). λ = 0 never exits, λ = 1 always does. Same seed and example index, same exit.
 * - PABEE patience t: cnt_1 = 0, cnt_n = cnt_{n−1} + 1 when layer n agrees with layer n − 1 (same argmax, or for
 *   regression |ŷ_n − ŷ_{n−1}| < τ), else 0; exit at the first n with cnt_n = t. t = 0 means no early exit (the
 *   released code's convention). The earliest exit is layer t + 1, so t ≥ L − 1 never exits before the last layer
 *   (t = L − 1 fires at L when all layers agree; t ≥ L never fires). Regression τ defaults to 0.1 (the HF README's
 *   STS-B value; the code's default 0 would never exit).
 * - Entropy is in nats (natural log), 0 · ln 0 = 0, so it lies in [0, ln C]. τ = 0 never exits (H < 0 is impossible,
 *   one-hot rows have H = 0); τ > ln C always exits at layer 1.
 * - Gate (JEI-DNN style): exit at the first n with g_n > τ. Gates may be given for all L layers or for layers
 *   1..L − 1 only (the last layer exits anyway). Note: JEI-DNN's released code instead thresholds a conditional
 *   probability derived from the gates at ≥ 0.5; this module implements the plain per-layer gate threshold.
 * - Fixed depth k: exit at layer k, an integer in 1..L (out of range is an error, not a clamp). None: layer L.
 * - Which head predicts (`head`): PALBERT and PonderNet use the shared head; PABEE the per-layer heads; the other
 *   criteria use the per-layer heads when the outputs have them, else the shared head. `head` overrides this.
 * - Precision: 'f64' (default) computes in JS doubles; 'f32' rounds every input, threshold and intermediate result to
 *   f32 with Math.fround, so it reproduces an f32 kernel that performs the same operations in the same order.
 */
import { PonderError } from '../errors';
import type { EncoderConfig } from '../model/types';
import {
  argmax,
  entropy,
  HALTING_START,
  haltingDistribution,
  haltingStep,
  identity,
  maxProb,
  type HaltingDistribution,
  type HaltingState,
  type Round,
  type Row,
} from './math';
import { exitUniform } from './prng';

export type { HaltingDistribution, Row } from './math';

/** One example's outputs after every layer n = 1..numLayers (index n − 1). */
export interface LayerOutputs {
  numLayers: number;
  /** Classification: class probabilities (softmax, not logits) of the head shared by all layers, [L][C]. */
  probs?: readonly Row[];
  /** Classification: probabilities of separate per-layer heads (PABEE, DeeBERT off-ramps, JEI-DNN IMs), [L][C]. */
  headProbs?: readonly Row[];
  /** Regression (STS-B): the shared head's value per layer, [L]. */
  values?: Row;
  /** Regression: the per-layer heads' value per layer, [L]. */
  headValues?: Row;
  /** Conditional exit probabilities λ_n ∈ [0, 1] (PALBERT / PonderNet Lambda head), [L]. */
  lambdas?: Row;
  /** Gate values g_n ∈ [0, 1] (JEI-DNN style), [L] or [L − 1]. */
  gates?: Row;
}

export type HeadSource = 'shared' | 'per-layer';

interface CriterionBase {
  /** Which head's output the criterion reads and predicts from; see the module comment for the default. */
  head?: HeadSource;
}
export interface PalbertCriterion extends CriterionBase {
  kind: 'palbert';
  /** Exit at the first layer with CDF_n > q, q ∈ [0, 1]. */
  q: number;
}
export interface PonderNetSampleCriterion extends CriterionBase {
  kind: 'pondernet-sample';
  /** Integer in [0, 2^32). */
  seed: number;
}
export interface PabeeCriterion extends CriterionBase {
  kind: 'pabee';
  /** Integer ≥ 0; 0 disables early exit. */
  patience: number;
  /** Regression only: layers agree when |ŷ_n − ŷ_{n−1}| < this (≥ 0). Default {@link PABEE_REGRESSION_THRESHOLD}. */
  regressionThreshold?: number;
}
export interface MaxProbCriterion extends CriterionBase {
  kind: 'max-prob';
  /** Exit when max_c p_c > threshold, threshold ∈ [0, 1]. */
  threshold: number;
}
export interface EntropyCriterion extends CriterionBase {
  kind: 'entropy';
  /** Exit when the entropy in nats < threshold, threshold ≥ 0 and finite. */
  threshold: number;
}
export interface GateCriterion extends CriterionBase {
  kind: 'gate';
  /** Exit when g_n > threshold, threshold ∈ [0, 1]. */
  threshold: number;
}
export interface FixedCriterion extends CriterionBase {
  kind: 'fixed';
  /** Exit at this layer, an integer in 1..L. */
  layer: number;
}
export interface NoExitCriterion extends CriterionBase {
  kind: 'none';
}

export type ExitCriterion =
  | PalbertCriterion
  | PonderNetSampleCriterion
  | PabeeCriterion
  | MaxProbCriterion
  | EntropyCriterion
  | GateCriterion
  | FixedCriterion
  | NoExitCriterion;

export type CriterionKind = ExitCriterion['kind'];

export const CRITERION_KINDS: readonly CriterionKind[] = [
  'palbert',
  'pondernet-sample',
  'pabee',
  'max-prob',
  'entropy',
  'gate',
  'fixed',
  'none',
];

export const PABEE_REGRESSION_THRESHOLD = 0.1;

export type Precision = 'f64' | 'f32';

export interface ExitOptions {
  /** The example's index in its data set; seeds PonderNet's draws (integer in [0, 2^32), default 0). */
  exampleIndex?: number;
  precision?: Precision;
}

export interface ExitResult {
  /** 1-based layer whose output is used; layers after it need not run. */
  exitLayer: number;
  /** True when the criterion triggered at `exitLayer`; false when it never did and the last layer was used. */
  fired: boolean;
  /** The head the prediction comes from. */
  head: HeadSource;
  /** Classification: argmax class (ties: lowest index). Regression: the value. */
  prediction: number;
  /** Classification: the probabilities at the exit layer. */
  probs?: number[];
  /**
   * The quantity the criterion tests, for every layer 1..L (also past the exit, for visualization): PALBERT CDF_n,
   * PonderNet u_n, PABEE cnt_n, max-prob max_c p_c, entropy H_n, gate g_n; NaN where there is none (fixed, none,
   * a gate missing at the last layer).
   */
  statistic: number[];
  /** p(n), CDF and remainder, whenever the outputs carry lambdas (whatever the criterion). */
  halting?: HaltingDistribution;
}

/** What a model's outputs provide; decides which criteria it supports. */
export interface AvailableHeads {
  lambdas: boolean;
  gates: boolean;
  perLayerHeads: boolean;
  /** Default true. */
  sharedHead?: boolean;
  /** Default false. Regression models have no probabilities, so no max-prob or entropy. */
  regression?: boolean;
}

function invalid(message: string): never {
  throw new PonderError('invalid-input', message);
}

function unsupported(message: string): never {
  throw new PonderError('unsupported-criterion', message);
}

function describeValue(v: unknown): string {
  return typeof v === 'number' ? String(v) : `${typeof v} ${JSON.stringify(v)}`;
}

function checkRange(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    invalid(`${name} must be a finite number in [${min}, ${max}], got ${describeValue(v)}`);
  }
  return v;
}

function checkInteger(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    invalid(`${name} must be an integer in [${min}, ${max}], got ${describeValue(v)}`);
  }
  return v;
}

const PROB_SUM_TOLERANCE = 1e-2;

function checkProbRow(name: string, row: Row | undefined, numClasses?: number): number {
  if (row === undefined || row === null || typeof row.length !== 'number') invalid(`${name} is missing`);
  if (row.length < 2) invalid(`${name} has ${row.length} classes; classification needs at least 2`);
  if (numClasses !== undefined && row.length !== numClasses) {
    invalid(`${name} has ${row.length} classes, expected ${numClasses}`);
  }
  let sum = 0;
  for (let c = 0; c < row.length; c++) {
    const p = row[c]!;
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 1 + PROB_SUM_TOLERANCE) {
      invalid(`${name}[${c}] must be a probability in [0, 1], got ${describeValue(p)}`);
    }
    sum += p;
  }
  if (Math.abs(sum - 1) > PROB_SUM_TOLERANCE) {
    invalid(`${name} sums to ${sum}, not 1: pass probabilities (softmax of the logits), not logits`);
  }
  return row.length;
}

function checkSeries(name: string, series: Row, lengths: number[], min: number, max: number): void {
  if (typeof series.length !== 'number' || !lengths.includes(series.length)) {
    invalid(`${name} has ${describeValue(series.length)} entries, expected ${lengths.join(' or ')}`);
  }
  for (let i = 0; i < series.length; i++) checkRange(`${name}[${i}]`, series[i], min, max);
}

/** What validateOutputs learned about one example's outputs. */
export interface OutputsInfo {
  numLayers: number;
  task: 'classification' | 'regression';
  /** 0 for regression. */
  numClasses: number;
  available: Required<AvailableHeads>;
}

/** Checks shapes and values of one example's outputs; throws PonderError 'invalid-input' naming the bad field. */
export function validateOutputs(outputs: LayerOutputs): OutputsInfo {
  if (outputs === null || typeof outputs !== 'object') invalid('layer outputs must be an object');
  const L = checkInteger('numLayers', outputs.numLayers, 1, 1 << 16);
  const classification = outputs.probs !== undefined || outputs.headProbs !== undefined;
  const regression = outputs.values !== undefined || outputs.headValues !== undefined;
  if (classification && regression) {
    invalid('layer outputs mix classification (probs/headProbs) and regression (values/headValues)');
  }
  if (!classification && !regression) {
    invalid('layer outputs have no head output: give probs/headProbs (classification) or values/headValues');
  }
  let numClasses = 0;
  for (const name of ['probs', 'headProbs'] as const) {
    const matrix = outputs[name];
    if (matrix === undefined) continue;
    if (!Array.isArray(matrix) || matrix.length !== L) {
      invalid(`${name} must have one row per layer (${L}), got ${describeValue(matrix?.length)}`);
    }
    for (let n = 0; n < L; n++) {
      numClasses = checkProbRow(`${name}[${n}]`, matrix[n], numClasses || undefined);
    }
  }
  for (const name of ['values', 'headValues'] as const) {
    const series = outputs[name];
    if (series !== undefined) checkSeries(name, series, [L], -Number.MAX_VALUE, Number.MAX_VALUE);
  }
  if (outputs.lambdas !== undefined) checkSeries('lambdas', outputs.lambdas, [L], 0, 1);
  if (outputs.gates !== undefined) checkSeries('gates', outputs.gates, L > 1 ? [L, L - 1] : [L], 0, 1);
  return {
    numLayers: L,
    task: classification ? 'classification' : 'regression',
    numClasses,
    available: {
      lambdas: outputs.lambdas !== undefined,
      gates: outputs.gates !== undefined,
      perLayerHeads: outputs.headProbs !== undefined || outputs.headValues !== undefined,
      sharedHead: outputs.probs !== undefined || outputs.values !== undefined,
      regression,
    },
  };
}

/** The criteria that outputs with these heads can run (in CRITERION_KINDS order), each with its default head. */
export function criteriaSupportedBy(available: AvailableHeads): CriterionKind[] {
  const shared = available.sharedHead ?? true;
  const regression = available.regression ?? false;
  return CRITERION_KINDS.filter(
    (kind) => missingFor(kind, { ...available, sharedHead: shared, regression }) === null,
  );
}

/** The criteria a parsed config declares exit heads for (its `ponder` section; regression from problem_type). */
export function criteriaDeclaredBy(
  config: Pick<EncoderConfig, 'exitHeads' | 'problemType'>,
): CriterionKind[] {
  const heads = config.exitHeads;
  return criteriaSupportedBy({
    lambdas: heads?.lambdaHead !== undefined,
    gates: heads?.gates === true,
    perLayerHeads: heads?.perLayerHeads === true,
    regression: config.problemType === 'regression',
  });
}

/** The missing piece a criterion needs with its default head, or null when the outputs have it. */
function missingFor(kind: CriterionKind, a: Required<AvailableHeads>, head?: HeadSource): string | null {
  switch (kind) {
    case 'palbert':
    case 'pondernet-sample':
      if (!a.lambdas) return 'a Lambda head (per-layer exit probabilities λ)';
      break;
    case 'pabee':
      if (!a.perLayerHeads && head !== 'shared') return 'per-layer classifier heads';
      break;
    case 'gate':
      if (!a.gates) return 'exit gates';
      break;
    case 'max-prob':
    case 'entropy':
      if (a.regression) return 'class probabilities (this is a regression model)';
      break;
    case 'fixed':
    case 'none':
      break;
  }
  const wanted = head ?? defaultHead(kind, a);
  if (wanted === 'shared' && !a.sharedHead) return 'a shared classifier head';
  if (wanted === 'per-layer' && !a.perLayerHeads) return 'per-layer classifier heads';
  return null;
}

function defaultHead(kind: CriterionKind, a: Required<AvailableHeads>): HeadSource {
  if (kind === 'palbert' || kind === 'pondernet-sample') return 'shared';
  if (kind === 'pabee') return 'per-layer';
  return a.perLayerHeads ? 'per-layer' : 'shared';
}

/** Checks a criterion's parameters (and, given the depth, the fixed layer); throws typed errors. */
export function validateCriterion(criterion: ExitCriterion, numLayers?: number): void {
  if (criterion === null || typeof criterion !== 'object') invalid('criterion must be an object');
  const kind: unknown = criterion.kind;
  if (!CRITERION_KINDS.includes(kind as CriterionKind)) {
    unsupported(`unknown exit criterion ${describeValue(kind)}; known: ${CRITERION_KINDS.join(', ')}`);
  }
  if (criterion.head !== undefined && criterion.head !== 'shared' && criterion.head !== 'per-layer') {
    invalid(`head must be 'shared' or 'per-layer', got ${describeValue(criterion.head)}`);
  }
  switch (criterion.kind) {
    case 'palbert':
      checkRange('palbert q', criterion.q, 0, 1);
      break;
    case 'pondernet-sample':
      checkInteger('pondernet-sample seed', criterion.seed, 0, 0xffffffff);
      break;
    case 'pabee':
      checkInteger('pabee patience', criterion.patience, 0, Number.MAX_SAFE_INTEGER);
      if (criterion.regressionThreshold !== undefined) {
        checkRange('pabee regressionThreshold', criterion.regressionThreshold, 0, Number.MAX_VALUE);
      }
      break;
    case 'max-prob':
      checkRange('max-prob threshold', criterion.threshold, 0, 1);
      break;
    case 'entropy':
      checkRange('entropy threshold', criterion.threshold, 0, Number.MAX_VALUE);
      break;
    case 'gate':
      checkRange('gate threshold', criterion.threshold, 0, 1);
      break;
    case 'fixed':
      checkInteger('fixed layer', criterion.layer, 1, numLayers ?? Number.MAX_SAFE_INTEGER);
      break;
    case 'none':
      break;
  }
}

/**
 * Throws PonderError 'unsupported-criterion' when the outputs lack what the criterion needs; returns the head it
 * will read otherwise.
 */
export function checkSupported(criterion: ExitCriterion, info: OutputsInfo): HeadSource {
  const missing = missingFor(criterion.kind, info.available, criterion.head);
  if (missing !== null) {
    const supported = criteriaSupportedBy(info.available);
    unsupported(
      `exit criterion '${criterion.kind}'${criterion.head ? ` (head '${criterion.head}')` : ''} needs ${missing}, ` +
        `which this model's outputs do not have; this model supports: ${supported.join(', ')}`,
    );
  }
  return criterion.head ?? defaultHead(criterion.kind, info.available);
}

/** One layer's inputs to {@link ExitTracker}: the selected head's output, λ and gate where the criterion uses them. */
export interface LayerStep {
  probs?: Row;
  value?: number;
  lambda?: number;
  gate?: number;
}

/**
 * The per-example running state of an exit decision, fed one layer at a time: the state the GPU exit kernel keeps
 * (survival product and CDF, patience counter and previous prediction). Use it where layers arrive one by one
 * (streaming); {@link evaluateExit} runs it over complete outputs with full validation.
 */
export class ExitTracker {
  readonly statistic: number[] = [];
  private layer = 0;
  private halting: HaltingState = HALTING_START;
  private count = 0;
  private previous = NaN;
  private exitAt: number | undefined;
  private firedAt = false;
  private readonly round: Round;
  private readonly exampleIndex: number;

  constructor(
    private readonly criterion: ExitCriterion,
    private readonly numLayers: number,
    options: ExitOptions = {},
  ) {
    checkInteger('numLayers', numLayers, 1, 1 << 16);
    validateCriterion(criterion, numLayers);
    this.exampleIndex = checkInteger('exampleIndex', options.exampleIndex ?? 0, 0, 0xffffffff);
    const precision = options.precision ?? 'f64';
    if (precision !== 'f64' && precision !== 'f32') invalid(`precision must be 'f64' or 'f32'`);
    this.round = precision === 'f32' ? Math.fround : identity;
  }

  /** 1-based exit layer once decided, else undefined. */
  get exitLayer(): number | undefined {
    return this.exitAt;
  }

  get fired(): boolean {
    return this.firedAt;
  }

  /** Feeds the next layer; returns true exactly once, at the layer where the example exits. */
  push(step: LayerStep): boolean {
    if (this.layer >= this.numLayers) invalid(`all ${this.numLayers} layers were already pushed`);
    const n = ++this.layer;
    const r = this.round;
    const c = this.criterion;
    let stat = NaN;
    let fires = false;
    switch (c.kind) {
      case 'palbert': {
        this.halting = haltingStep(this.halting, this.needLambda(step), r).state;
        stat = this.halting.cdf;
        fires = stat > r(c.q);
        break;
      }
      case 'pondernet-sample': {
        stat = exitUniform(c.seed, this.exampleIndex, n);
        fires = stat < r(this.needLambda(step));
        break;
      }
      case 'pabee': {
        const current = step.value !== undefined ? r(step.value) : argmax(this.needProbs(step));
        if (n > 1) {
          const agree =
            step.value !== undefined
              ? r(Math.abs(r(current - this.previous))) <
                r(c.regressionThreshold ?? PABEE_REGRESSION_THRESHOLD)
              : current === this.previous;
          this.count = agree ? this.count + 1 : 0;
        }
        this.previous = current;
        stat = this.count;
        fires = c.patience > 0 && this.count >= c.patience;
        break;
      }
      case 'max-prob':
        stat = r(maxProb(this.needProbs(step)));
        fires = stat > r(c.threshold);
        break;
      case 'entropy':
        stat = entropy(this.needProbs(step), r);
        fires = stat < r(c.threshold);
        break;
      case 'gate':
        if (step.gate !== undefined) {
          stat = r(checkRange(`gate at layer ${n}`, step.gate, 0, 1));
          fires = stat > r(c.threshold);
        } else if (n < this.numLayers) {
          invalid(`criterion 'gate' needs a gate value at layer ${n}`);
        }
        break;
      case 'fixed':
        fires = n === c.layer;
        break;
      case 'none':
        break;
    }
    this.statistic.push(stat);
    if (this.exitAt === undefined && (fires || n === this.numLayers)) {
      this.exitAt = n;
      this.firedAt = fires;
      return true;
    }
    return false;
  }

  private needLambda(step: LayerStep): number {
    if (step.lambda === undefined)
      invalid(`criterion '${this.criterion.kind}' needs λ at layer ${this.layer}`);
    return checkRange(`λ at layer ${this.layer}`, step.lambda, 0, 1);
  }

  private needProbs(step: LayerStep): Row {
    if (step.probs === undefined) {
      invalid(`criterion '${this.criterion.kind}' needs class probabilities at layer ${this.layer}`);
    }
    return step.probs;
  }
}

/**
 * Runs one criterion over one example's complete outputs. Throws PonderError 'invalid-input' for malformed outputs or
 * parameters and 'unsupported-criterion' when the outputs lack the head the criterion needs.
 */
export function evaluateExit(
  outputs: LayerOutputs,
  criterion: ExitCriterion,
  options: ExitOptions = {},
): ExitResult {
  const info = validateOutputs(outputs);
  validateCriterion(criterion, info.numLayers);
  return evaluateValidated(outputs, info, criterion, options);
}

/** evaluateExit without re-validating the outputs (for sweeps that validated each example once). */
export function evaluateValidated(
  outputs: LayerOutputs,
  info: OutputsInfo,
  criterion: ExitCriterion,
  options: ExitOptions = {},
): ExitResult {
  const head = checkSupported(criterion, info);
  const probs = head === 'shared' ? outputs.probs : outputs.headProbs;
  const values = head === 'shared' ? outputs.values : outputs.headValues;
  const tracker = new ExitTracker(criterion, info.numLayers, options);
  for (let i = 0; i < info.numLayers; i++) {
    const step: LayerStep = {};
    if (probs) step.probs = probs[i]!;
    if (values) step.value = values[i]!;
    if (outputs.lambdas) step.lambda = outputs.lambdas[i]!;
    if (outputs.gates && i < outputs.gates.length) step.gate = outputs.gates[i]!;
    tracker.push(step);
  }
  const exitLayer = tracker.exitLayer!;
  const result: ExitResult = {
    exitLayer,
    fired: tracker.fired,
    head,
    prediction: NaN,
    statistic: tracker.statistic,
  };
  if (probs) {
    result.probs = Array.from(probs[exitLayer - 1]!);
    result.prediction = argmax(result.probs);
  } else {
    result.prediction = values![exitLayer - 1]!;
  }
  if (outputs.lambdas) {
    result.halting = haltingDistribution(
      outputs.lambdas,
      options.precision === 'f32' ? Math.fround : identity,
    );
  }
  return result;
}
