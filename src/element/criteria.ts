/**
 * Exit criteria as people choose them in markup and forms: a name (`criterion="palbert"`) and one number
 * (`threshold="0.5"`), turned into the library's {@link ExitCriterion}. Shared by the element and the demo so the two
 * speak the same words and give the same "this model cannot do that" messages.
 */
import type { PonderClassifier } from '../classifier';
import { PonderError } from '../errors';
import { criteriaSupportedBy, parseCriterion, type CriterionKind, type ExitCriterion } from '../exit';

/** What the `threshold` number means for each criterion, its range and a sensible default. */
export interface CriterionControl {
  kind: CriterionKind;
  /** Short name for buttons and legends. */
  name: string;
  /** What the number is ("q", "patience", ...); null when the criterion takes none. */
  parameter: string | null;
  min: number;
  max: number;
  step: number;
  defaultValue: number;
  /** One sentence: when it exits. */
  rule: string;
}

/** The criteria the demo and the element offer, in display order (gate and fixed are left to the API). */
export function criterionControls(numLayers: number, numClasses: number): CriterionControl[] {
  const lnC = Math.log(Math.max(2, numClasses));
  return [
    {
      kind: 'palbert',
      name: 'Q-exit (PALBERT)',
      parameter: 'q',
      min: 0,
      max: 1,
      step: 0.01,
      defaultValue: 0.5,
      rule: 'Exit at the first layer whose cumulative exit probability exceeds q.',
    },
    {
      kind: 'pondernet-sample',
      name: 'PonderNet sampling',
      parameter: 'seed',
      min: 0,
      max: 99,
      step: 1,
      defaultValue: 0,
      rule: 'Exit at layer n with probability λ_n (a random draw, repeatable for a given seed).',
    },
    {
      kind: 'pabee',
      name: 'PABEE',
      parameter: 'patience',
      min: 1,
      max: Math.max(1, numLayers - 1),
      step: 1,
      defaultValue: Math.min(2, Math.max(1, numLayers - 1)),
      rule: 'Exit once this many consecutive layers agreed with the previous one.',
    },
    {
      kind: 'entropy',
      name: 'Entropy',
      parameter: 'τ (nats)',
      min: 0,
      max: Number(lnC.toFixed(3)),
      step: 0.01,
      defaultValue: Number((0.5 * lnC).toFixed(2)),
      rule: 'Exit at the first layer whose prediction entropy is below τ.',
    },
    {
      kind: 'max-prob',
      name: 'Max probability',
      parameter: 'τ',
      min: Number((1 / Math.max(2, numClasses)).toFixed(2)),
      max: 1,
      step: 0.01,
      defaultValue: 0.9,
      rule: 'Exit at the first layer whose top class probability exceeds τ.',
    },
    {
      kind: 'none',
      name: 'Full depth',
      parameter: null,
      min: 0,
      max: 0,
      step: 1,
      defaultValue: 0,
      rule: 'Run every layer and answer from the last one.',
    },
  ];
}

const ALIASES: Record<string, CriterionKind> = {
  pondernet: 'pondernet-sample',
  'q-exit': 'palbert',
  maxprob: 'max-prob',
  full: 'none',
  'full-depth': 'none',
};

/** Default value of the one number, per criterion, when the markup gives none. */
function defaultValue(kind: CriterionKind): number | undefined {
  switch (kind) {
    case 'palbert':
      return 0.5;
    case 'pondernet-sample':
      return 0;
    case 'pabee':
      return 2;
    case 'max-prob':
      return 0.9;
    case 'entropy':
      return 0.3;
    case 'gate':
      return 0.5;
    default:
      return undefined;
  }
}

/**
 * `criterion` / `threshold` attribute values → ExitCriterion. An empty name means the model's default (undefined).
 * Throws PonderError ('unsupported-criterion' for unknown names, 'invalid-input' for bad numbers).
 */
export function criterionFromAttributes(
  name: string | null | undefined,
  threshold: number | null | undefined,
): ExitCriterion | undefined {
  const raw = (name ?? '').trim().toLowerCase();
  if (raw === '' || raw === 'default') return undefined;
  const kind = (ALIASES[raw] ?? raw) as CriterionKind;
  if (kind === 'none') return { kind };
  const value = threshold ?? defaultValue(kind);
  return parseCriterion(kind, value === undefined || Number.isNaN(value) ? undefined : value);
}

/** What a criterion needs that a model may lack, in words. */
export function requirementOf(kind: CriterionKind): string | null {
  switch (kind) {
    case 'palbert':
    case 'pondernet-sample':
      return 'a Lambda head (per-layer exit probabilities λ)';
    case 'pabee':
      return 'per-layer classifier heads';
    case 'gate':
      return 'exit gates';
    case 'max-prob':
    case 'entropy':
      return 'class probabilities (not a regression model)';
    default:
      return null;
  }
}

/**
 * The criteria a loaded classifier can run. Uses `supportedCriteria` when the library provides it; older builds
 * without it have no exit heads, so only the head-free criteria apply.
 */
export function supportedCriteriaOf(classifier: PonderClassifier): CriterionKind[] {
  const declared = (classifier as { supportedCriteria?: CriterionKind[] }).supportedCriteria;
  if (Array.isArray(declared)) return [...declared];
  return criteriaSupportedBy({
    lambdas: false,
    gates: false,
    perLayerHeads: false,
    regression: classifier.config.problemType === 'regression',
  });
}

/** A PonderError that says which head is missing and what the model can do instead. */
export function unsupportedCriterionError(kind: CriterionKind, supported: CriterionKind[]): PonderError {
  const need = requirementOf(kind) ?? 'something';
  return new PonderError(
    'unsupported-criterion',
    `This model cannot use the '${kind}' exit criterion: it needs ${need}, which the model does not have. ` +
      `It supports: ${supported.join(', ')}.`,
  );
}
