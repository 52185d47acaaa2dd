/**
 * A self-check of every run: the engine's exit layer of each example against the CPU reference of the criterion
 * (src/exit ExitTracker, in f32 like the GPU kernel) fed the same per-layer outputs the engine returned. Results hold
 * layers 1..exitLayer (or all layers), which is all the decision needs: the criterion must not fire before the exit
 * layer, and must fire at it unless it is the last layer.
 */
import {
  checkSupported,
  ExitTracker,
  type ExitCriterion,
  type LayerStep,
  type OutputsInfo,
} from '../../src/exit';
import type { PageResult } from './types';

export interface ExitCheck {
  checked: number;
  /** Data-set indices of the examples whose exit layer differs from the CPU reference's. */
  disagreements: number[];
}

/** The CPU reference's exit layer for one result, or null when the result lacks the outputs to decide. */
export function referenceExit(
  result: PageResult,
  criterion: ExitCriterion,
  regression: boolean,
  exampleIndex: number,
): number | null {
  const L = result.numLayers;
  const layers = result.layers;
  const has = (pick: (l: PageResult['layers'][number]) => unknown): boolean =>
    layers.length > 0 && layers.every((l) => pick(l) !== undefined);
  const info: OutputsInfo = {
    numLayers: L,
    task: regression ? 'regression' : 'classification',
    numClasses: regression ? 0 : (layers[0]?.probabilities.length ?? 0),
    available: {
      lambdas: has((l) => l.lambda),
      // Gates may stop one layer short of the last.
      gates: layers.slice(0, Math.min(layers.length, L - 1)).every((l) => l.gate !== undefined) && L > 1,
      perLayerHeads: has((l) => l.headProbabilities),
      sharedHead: true,
      regression,
    },
  };
  let head: 'shared' | 'per-layer';
  try {
    head = checkSupported(criterion, info);
  } catch {
    return null;
  }
  try {
    const tracker = new ExitTracker(criterion, L, { exampleIndex, precision: 'f32' });
    for (const l of layers) {
      const step: LayerStep = {};
      if (regression) step.value = head === 'shared' ? l.logits[0]! : l.headProbabilities![0]!;
      else step.probs = head === 'shared' ? l.probabilities : l.headProbabilities!;
      if (l.lambda !== undefined) step.lambda = l.lambda;
      if (l.gate !== undefined) step.gate = l.gate;
      if (tracker.push(step)) return tracker.exitLayer!;
    }
  } catch {
    return null; // malformed outputs: counted as a disagreement
  }
  // The layers ran out before the criterion decided: the engine stopped where the reference would go on.
  return null;
}

export function checkExits(
  results: readonly PageResult[],
  indices: readonly number[],
  regression: boolean,
): ExitCheck {
  const disagreements: number[] = [];
  results.forEach((r, i) => {
    if (referenceExit(r, r.criterion, regression, indices[i]!) !== r.exitLayer)
      disagreements.push(indices[i]!);
  });
  return { checked: results.length, disagreements };
}
