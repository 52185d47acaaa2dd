/**
 * Criterion sweeps for the eval CLI's --sweep: run every layer once, then evaluate many criterion settings on the
 * stored per-layer outputs. Also the default grids, and parsing/labels for criteria given on a command line.
 */
import { PonderError } from '../errors';
import {
  CRITERION_KINDS,
  checkSupported,
  evaluateValidated,
  validateCriterion,
  validateOutputs,
  type CriterionKind,
  type ExitCriterion,
  type LayerOutputs,
  type OutputsInfo,
  type Precision,
} from './criteria';

export interface SweepOutcome {
  criterion: ExitCriterion;
  /** e.g. "palbert q=0.5", see {@link describeCriterion}. */
  label: string;
  /** Per example, the 1-based exit layer. */
  exitLayers: number[];
  /** Per example, the predicted class (or regression value) at the exit layer. */
  predictions: number[];
  /** Per example, whether the criterion fired (false: ran to the last layer). */
  fired: boolean[];
  averageLayers: number;
  /** numLayers / averageLayers (a ratio, as PALBERT reports it; not PABEE's "1 − avg/N"). */
  speedUp: number;
}

export interface SweepOptions {
  precision?: Precision;
  /** Data-set index of examples[0]; example i is seeded with firstExampleIndex + i (PonderNet). Default 0. */
  firstExampleIndex?: number;
}

/**
 * Evaluates every criterion on every example. All inputs are validated (and every criterion checked against the
 * outputs' heads) before any result is computed, so a bad setting fails the whole call rather than half of it.
 */
export function sweepExits(
  examples: readonly LayerOutputs[],
  criteria: readonly ExitCriterion[],
  options: SweepOptions = {},
): SweepOutcome[] {
  if (examples.length === 0) throw new PonderError('invalid-input', 'a sweep needs at least one example');
  const infos: OutputsInfo[] = examples.map((outputs, i) => {
    try {
      return validateOutputs(outputs);
    } catch (error) {
      if (error instanceof PonderError) {
        throw new PonderError(error.code, `example ${i}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  });
  const first = infos[0]!;
  infos.forEach((info, i) => {
    const same =
      info.numLayers === first.numLayers &&
      info.task === first.task &&
      info.numClasses === first.numClasses &&
      (Object.keys(first.available) as (keyof OutputsInfo['available'])[]).every(
        (k) => info.available[k] === first.available[k],
      );
    if (!same) {
      throw new PonderError(
        'invalid-input',
        `example ${i} has different layers, classes or heads than example 0`,
      );
    }
  });
  for (const criterion of criteria) {
    validateCriterion(criterion, first.numLayers);
    checkSupported(criterion, first);
  }
  const start = options.firstExampleIndex ?? 0;
  return criteria.map((criterion) => {
    const exitLayers: number[] = [];
    const predictions: number[] = [];
    const fired: boolean[] = [];
    examples.forEach((outputs, i) => {
      const r = evaluateValidated(outputs, infos[i]!, criterion, {
        exampleIndex: start + i,
        precision: options.precision ?? 'f64',
      });
      exitLayers.push(r.exitLayer);
      predictions.push(r.prediction);
      fired.push(r.fired);
    });
    const averageLayers = exitLayers.reduce((a, b) => a + b, 0) / exitLayers.length;
    return {
      criterion,
      label: describeCriterion(criterion),
      exitLayers,
      predictions,
      fired,
      averageLayers,
      speedUp: first.numLayers / averageLayers,
    };
  });
}

export interface SweepShape {
  numLayers: number;
  /** Classification: number of classes (sets the max-prob and entropy ranges). Omit or 0 for regression. */
  numClasses?: number;
}

/** Multiples of `step` from `from` to `to` inclusive, rounded so that 0.05 · 3 prints as 0.15. */
function grid(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let k = Math.round(from / step); k * step <= to + 1e-9; k++) out.push(Number((k * step).toFixed(6)));
  return out;
}

/**
 * Sensible settings of one criterion, ordered from the most eager to exit to the least where that applies:
 * palbert q = 0.05..0.95 (step 0.05); pondernet-sample seeds 0..4 (it has no knob; the seeds show its variance);
 * pabee patience 1..L − 1; max-prob thresholds between 1/C and 1 (step 0.05, plus 0.99, 0.995, 0.999); entropy
 * thresholds f · ln C for f = 0.01, 0.02, 0.05..0.95; gate 0.05..0.95; fixed 1..L; none: itself.
 */
export function defaultSweep(kind: CriterionKind, shape: SweepShape): ExitCriterion[] {
  const L = shape.numLayers;
  if (!Number.isInteger(L) || L < 1) {
    throw new PonderError('invalid-input', `numLayers must be a positive integer, got ${String(L)}`);
  }
  const C = shape.numClasses ?? 0;
  const needClasses = (): void => {
    if (!Number.isInteger(C) || C < 2) {
      throw new PonderError(
        'unsupported-criterion',
        `'${kind}' needs class probabilities: give numClasses ≥ 2 (regression models have none)`,
      );
    }
  };
  switch (kind) {
    case 'palbert':
      return grid(0.05, 0.95, 0.05).map((q) => ({ kind, q }));
    case 'pondernet-sample':
      return [0, 1, 2, 3, 4].map((seed) => ({ kind, seed }));
    case 'pabee':
      return Array.from({ length: Math.max(0, L - 1) }, (_, i) => ({ kind, patience: i + 1 }));
    case 'max-prob': {
      needClasses();
      const values = [...grid(0.05, 0.95, 0.05), 0.99, 0.995, 0.999].filter((t) => t > 1 / C);
      return values.map((threshold) => ({ kind, threshold }));
    }
    case 'entropy': {
      needClasses();
      const fractions = [0.01, 0.02, ...grid(0.05, 0.95, 0.05)];
      return fractions.map((f) => ({ kind, threshold: Number((f * Math.log(C)).toPrecision(6)) }));
    }
    case 'gate':
      return grid(0.05, 0.95, 0.05).map((threshold) => ({ kind, threshold }));
    case 'fixed':
      return Array.from({ length: L }, (_, i) => ({ kind, layer: i + 1 }));
    case 'none':
      return [{ kind }];
    default:
      throw new PonderError(
        'unsupported-criterion',
        `unknown exit criterion ${JSON.stringify(kind)}; known: ${CRITERION_KINDS.join(', ')}`,
      );
  }
}

/** A short, stable label for tables and CSV: "palbert q=0.5", "pabee patience=6", "none". */
export function describeCriterion(c: ExitCriterion): string {
  const head = c.head ? ` head=${c.head}` : '';
  switch (c.kind) {
    case 'palbert':
      return `palbert q=${c.q}${head}`;
    case 'pondernet-sample':
      return `pondernet-sample seed=${c.seed}${head}`;
    case 'pabee':
      return `pabee patience=${c.patience}${c.regressionThreshold !== undefined ? ` tau=${c.regressionThreshold}` : ''}${head}`;
    case 'max-prob':
    case 'entropy':
    case 'gate':
      return `${c.kind} threshold=${c.threshold}${head}`;
    case 'fixed':
      return `fixed layer=${c.layer}${head}`;
    case 'none':
      return `none${head}`;
  }
}

/**
 * Builds a criterion from command-line style input (`--criterion KIND --threshold VALUE`): VALUE is q for palbert,
 * the seed for pondernet-sample (default 0), the patience for pabee, the threshold for max-prob / entropy / gate, the
 * layer for fixed, and must be absent for none. Throws typed errors for unknown kinds and bad values.
 */
export function parseCriterion(kind: string, value?: number): ExitCriterion {
  const need = (): number => {
    if (value === undefined)
      throw new PonderError('invalid-input', `criterion '${kind}' needs a threshold value`);
    return value;
  };
  let criterion: ExitCriterion;
  switch (kind) {
    case 'palbert':
      criterion = { kind, q: need() };
      break;
    case 'pondernet-sample':
      criterion = { kind, seed: value ?? 0 };
      break;
    case 'pabee':
      criterion = { kind, patience: need() };
      break;
    case 'max-prob':
    case 'entropy':
    case 'gate':
      criterion = { kind, threshold: need() };
      break;
    case 'fixed':
      criterion = { kind, layer: need() };
      break;
    case 'none':
      if (value !== undefined) throw new PonderError('invalid-input', `criterion 'none' takes no threshold`);
      criterion = { kind };
      break;
    default:
      throw new PonderError(
        'unsupported-criterion',
        `unknown exit criterion ${JSON.stringify(kind)}; known: ${CRITERION_KINDS.join(', ')}`,
      );
  }
  validateCriterion(criterion);
  return criterion;
}
