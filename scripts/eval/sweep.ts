/**
 * --sweep: from one full-depth run, every criterion the outputs support is evaluated on the CPU (src/exit
 * sweepExits, the same reference the engine follows) across its default settings, giving metric against average
 * layers, and per criterion the cheapest setting within a metric budget of full depth.
 */
import {
  CRITERION_KINDS,
  criteriaSupportedBy,
  defaultSweep,
  sweepExits,
  type CriterionKind,
  type ExitCriterion,
  type LayerOutputs,
} from '../../src/exit';
import { taskMetrics, type TaskMetrics } from './metrics';
import type { TaskSpec } from './tasks';
import type { PageResult } from './types';

/** One example's per-layer outputs in the exit module's form; the heads present decide what can be swept. */
export function layerOutputsOf(result: PageResult, regression: boolean): LayerOutputs {
  const layers = result.layers;
  const out: LayerOutputs = { numLayers: layers.length };
  if (regression) out.values = layers.map((l) => l.logits[0]!);
  else out.probs = layers.map((l) => l.probabilities);
  if (layers.every((l) => l.headProbabilities !== undefined)) {
    // A regression model's per-layer heads give one value each.
    if (regression) out.headValues = layers.map((l) => l.headProbabilities![0]!);
    else out.headProbs = layers.map((l) => l.headProbabilities!);
  }
  if (layers.every((l) => l.lambda !== undefined)) out.lambdas = layers.map((l) => l.lambda!);
  // Gates may stop one layer short (the last layer exits anyway).
  let gated = 0;
  while (gated < layers.length && layers[gated]!.gate !== undefined) gated++;
  if (gated === layers.length || (gated === layers.length - 1 && gated > 0)) {
    out.gates = layers.slice(0, gated).map((l) => l.gate!);
  }
  return out;
}

/** The criteria these outputs can run, from the heads they carry. */
export function sweepableKinds(outputs: LayerOutputs): CriterionKind[] {
  return criteriaSupportedBy({
    lambdas: outputs.lambdas !== undefined,
    gates: outputs.gates !== undefined,
    perLayerHeads: outputs.headProbs !== undefined || outputs.headValues !== undefined,
    sharedHead: outputs.probs !== undefined || outputs.values !== undefined,
    regression: outputs.values !== undefined || outputs.headValues !== undefined,
  });
}

export interface SweepRow {
  kind: CriterionKind;
  /** 'q=0.5', 'patience=3', '' for none. */
  setting: string;
  /** describeCriterion's label, e.g. 'palbert q=0.5'. */
  label: string;
  criterion: ExitCriterion;
  averageLayers: number;
  speedUp: number;
  /** Fraction of examples where the criterion fired before running out of layers. */
  firedFraction: number;
  metrics: TaskMetrics;
}

/**
 * Evaluates `kinds` (each over defaultSweep's settings; 'none' is always added as the full-depth reference).
 * Examples are seeded with their data-set index, so pondernet-sample matches a run of the same examples.
 */
export function runSweep(
  outputs: readonly LayerOutputs[],
  labels: readonly number[],
  task: TaskSpec,
  kinds: readonly CriterionKind[],
  numClasses: number,
): SweepRow[] {
  const wanted = CRITERION_KINDS.filter((k) => k === 'none' || kinds.includes(k));
  const numLayers = outputs[0]!.numLayers;
  const criteria = wanted.flatMap((kind) => defaultSweep(kind, { numLayers, numClasses }));
  return sweepExits(outputs, criteria).map((outcome) => {
    const kind = outcome.criterion.kind;
    return {
      kind,
      setting: outcome.label.slice(kind.length).trim(),
      label: outcome.label,
      criterion: outcome.criterion,
      averageLayers: outcome.averageLayers,
      speedUp: outcome.speedUp,
      firedFraction: outcome.fired.filter(Boolean).length / outcome.fired.length,
      metrics: taskMetrics(task, outcome.predictions, labels),
    };
  });
}

/** Full depth's metric (the 'none' row). */
export function fullDepth(rows: readonly SweepRow[]): SweepRow {
  const row = rows.find((r) => r.kind === 'none');
  if (!row) throw new Error('the sweep has no full-depth (none) row');
  return row;
}

/**
 * Per criterion, the setting with the fewest average layers whose metric is at least full depth's minus `budget`
 * (ties: the better metric); null when no setting stays within the budget.
 */
export function cheapestWithinBudget(
  rows: readonly SweepRow[],
  budget: number,
): { kind: CriterionKind; row: SweepRow | null }[] {
  const floor = fullDepth(rows).metrics.primary - budget;
  const kinds = [...new Set(rows.map((r) => r.kind))];
  return kinds.map((kind) => {
    let best: SweepRow | null = null;
    for (const r of rows) {
      if (r.kind !== kind || !(r.metrics.primary >= floor - 1e-12)) continue;
      if (
        !best ||
        r.averageLayers < best.averageLayers ||
        (r.averageLayers === best.averageLayers && r.metrics.primary > best.metrics.primary)
      ) {
        best = r;
      }
    }
    return { kind, row: best };
  });
}

const csvNumber = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '' : String(v));

/** The metric-versus-average-layers table, one row per criterion setting. */
export function sweepCsv(rows: readonly SweepRow[], budget: number): string {
  const floor = fullDepth(rows).metrics.primary - budget;
  const header = [
    'kind',
    'setting',
    'average_layers',
    'speed_up',
    'fired_fraction',
    'metric_name',
    'metric',
    'accuracy',
    'mcc',
    'f1',
    'pearson',
    'spearman',
    'within_budget',
  ];
  const lines = rows.map((r) =>
    [
      r.kind,
      r.setting,
      csvNumber(r.averageLayers),
      csvNumber(r.speedUp),
      csvNumber(r.firedFraction),
      r.metrics.primaryName,
      csvNumber(r.metrics.primary),
      csvNumber(r.metrics.accuracy),
      csvNumber(r.metrics.mcc),
      csvNumber(r.metrics.f1),
      csvNumber(r.metrics.pearson),
      csvNumber(r.metrics.spearman),
      r.metrics.primary >= floor - 1e-12 ? 'yes' : 'no',
    ].join(','),
  );
  return [header.join(','), ...lines].join('\n') + '\n';
}
