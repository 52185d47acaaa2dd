/**
 * The dataset mode's numbers: one full-depth pass over every sentence keeps all layers' outputs, then every
 * criterion and threshold is evaluated on them on the CPU (src/exit sweepExits), so a whole trade-off curve costs one
 * GPU pass and moving the threshold slider costs nothing.
 */
import type { PonderClassifier } from '../classifier';
import {
  defaultSweep,
  sweepExits,
  type CriterionKind,
  type ExitCriterion,
  type LayerOutputs,
  type SweepOutcome,
} from '../exit';
import type { RichLayer } from '../element/run';
import type { TradeoffPoint } from './charts';
import type { DatasetRow } from './tsv';

/** An example's per-layer outputs in the form the exit criteria read. */
export function toLayerOutputs(layers: readonly RichLayer[], regression: boolean): LayerOutputs {
  const outputs: LayerOutputs = regression
    ? { numLayers: layers.length, values: layers.map((l) => l.score) }
    : { numLayers: layers.length, probs: layers.map((l) => l.probabilities) };
  if (layers.length > 0 && layers.every((l) => typeof l.lambda === 'number')) {
    outputs.lambdas = layers.map((l) => l.lambda!);
  }
  if (!regression && layers.length > 0 && layers.every((l) => Array.isArray(l.headProbabilities))) {
    outputs.headProbs = layers.map((l) => l.headProbabilities!);
  }
  if (layers.length > 0 && layers.every((l) => typeof l.gate === 'number')) {
    outputs.gates = layers.map((l) => l.gate!);
  }
  return outputs;
}

export interface DatasetRun {
  outputs: LayerOutputs[];
  labels: (number | undefined)[];
  numLayers: number;
  numClasses: number;
  hasLabels: boolean;
}

const BATCH = 8;

/** Classifies every row at full depth, keeping every layer. `onProgress(done, total)` after each batch. */
export async function runDataset(
  classifier: PonderClassifier,
  rows: readonly DatasetRow[],
  onProgress: (done: number, total: number) => void,
  isCancelled: () => boolean,
): Promise<DatasetRun | null> {
  const outputs: LayerOutputs[] = [];
  const regression = classifier.config.problemType === 'regression';
  for (let start = 0; start < rows.length; start += BATCH) {
    if (isCancelled()) return null;
    const batch = rows
      .slice(start, start + BATCH)
      .map((r) => (r.textPair ? { text: r.text, textPair: r.textPair } : r.text));
    const results = await classifier.classify(batch, { criterion: { kind: 'none' } });
    for (const r of results) outputs.push(toLayerOutputs(r.layers as RichLayer[], regression));
    onProgress(Math.min(rows.length, start + BATCH), rows.length);
  }
  const labels = rows.map((r) => r.label);
  return {
    outputs,
    labels,
    numLayers: classifier.config.numHiddenLayers,
    numClasses: classifier.config.labels.length,
    hasLabels: labels.some((l) => l !== undefined),
  };
}

/** Accuracy over the rows that have a label (NaN when none has). */
export function accuracyOf(outcome: SweepOutcome, labels: readonly (number | undefined)[]): number {
  let right = 0;
  let total = 0;
  outcome.predictions.forEach((p, i) => {
    const label = labels[i];
    if (label === undefined) return;
    total++;
    if (p === label) right++;
  });
  return total === 0 ? NaN : right / total;
}

/** Every sweep point of every criterion the model supports, plus fixed depths and full depth as baselines. */
export function tradeoffPoints(
  run: DatasetRun,
  kinds: readonly CriterionKind[],
  names: ReadonlyMap<CriterionKind, string>,
): TradeoffPoint[] {
  const points: TradeoffPoint[] = [];
  const shape = { numLayers: run.numLayers, numClasses: run.numClasses };
  const sweep = (label: string, criteria: ExitCriterion[]) => {
    if (criteria.length === 0) return;
    for (const outcome of sweepExits(run.outputs, criteria)) {
      points.push({
        criterion: label,
        setting: outcome.label,
        averageLayers: outcome.averageLayers,
        accuracy: accuracyOf(outcome, run.labels),
      });
    }
  };
  for (const kind of kinds) {
    if (kind === 'none' || kind === 'fixed') continue;
    sweep(names.get(kind) ?? kind, defaultSweep(kind, shape));
  }
  sweep('Fixed depth', defaultSweep('fixed', shape));
  return points;
}

/** The current criterion over the whole set: exit layers, accuracy, average layers. */
export function evaluateSetting(run: DatasetRun, criterion: ExitCriterion) {
  const [outcome] = sweepExits(run.outputs, [criterion]);
  return {
    exitLayers: outcome!.exitLayers,
    averageLayers: outcome!.averageLayers,
    speedUp: outcome!.speedUp,
    accuracy: accuracyOf(outcome!, run.labels),
    label: outcome!.label,
  };
}
