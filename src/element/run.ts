/**
 * One classification with its layers reported one by one, for the element and the demo. Newer builds of the
 * library call `onLayer` (after the pass, or while it runs in 'streaming' mode); older ones only return the result,
 * and then the layers are reported from it afterwards, so callers see the same sequence either way: layers 1..exit in
 * order, the last one flagged `exited`.
 */
import type { ClassifierInput, ClassifyOptions, PonderClassifier } from '../classifier';
import { argmax, type ExitCriterion, type HeadSource } from '../exit';
import type { ClassificationResult, LayerResult } from '../results';

/** The per-layer fields that models with exit heads and adapters with timestamps add (see api-plan). */
export interface LayerExtras {
  lambda?: number;
  haltingProbability?: number;
  cumulativeHalting?: number;
  headProbabilities?: number[];
  gate?: number;
  gpuTimeMs?: number;
}

export type RichLayer = LayerResult & LayerExtras;

/** The result fields that GPU-side exit and timing add (optional until every build has them). */
export interface ResultExtras {
  skippedLayers?: number;
  timing?: { totalMs: number; gpuMs?: number };
}

export type RichResult = ClassificationResult & ResultExtras & { layers: RichLayer[] };

interface LibraryLayerEvent {
  exampleIndex: number;
  layer: RichLayer;
  exited: boolean;
}

export interface RunOptions {
  /** Undefined: the model's default criterion. */
  criterion?: ExitCriterion | undefined;
  /** 'streaming' asks for per-layer readback so layers arrive while the pass runs (slower overall). */
  mode?: 'single-submit' | 'streaming';
  onLayer?: (layer: RichLayer, exited: boolean) => void;
}

export async function classifyWithLayers(
  classifier: PonderClassifier,
  input: ClassifierInput,
  options: RunOptions = {},
): Promise<RichResult> {
  let heard = false;
  let stopped = false;
  const deliver = (layer: RichLayer, exited: boolean) => {
    if (stopped) return;
    if (exited) stopped = true;
    options.onLayer?.(layer, exited);
  };
  // The onLayer/mode options are additions under way in the library; older builds ignore unknown options.
  const classifyOptions: ClassifyOptions & {
    onLayer?: (event: LibraryLayerEvent) => void;
    mode?: 'single-submit' | 'streaming';
  } = {
    onLayer: (event) => {
      heard = true;
      deliver(event.layer, event.exited);
    },
  };
  if (options.mode) classifyOptions.mode = options.mode;
  if (options.criterion) classifyOptions.criterion = options.criterion;
  const [result] = (await classifier.classify(input, classifyOptions)) as RichResult[];
  if (!result) throw new Error('classify() returned no result');
  if (!heard) {
    for (const layer of result.layers) {
      if (layer.layer > result.exitLayer) break;
      deliver(layer, layer.layer === result.exitLayer);
    }
  }
  return result;
}

/**
 * Which head answers for a criterion (the rule of src/exit/criteria.ts): Q-exit and PonderNet read the shared head,
 * PABEE the per-layer heads, the others the per-layer heads when the model has them, else the shared one.
 */
export function answeringHead(criterion: ExitCriterion, hasPerLayerHeads: boolean): HeadSource {
  if (criterion.head) return criterion.head;
  if (criterion.kind === 'palbert' || criterion.kind === 'pondernet-sample') return 'shared';
  if (criterion.kind === 'pabee') return 'per-layer';
  return hasPerLayerHeads ? 'per-layer' : 'shared';
}

/** A layer's answer from the given head: its probabilities, label and score (the shared head's when absent). */
export function layerAnswer(
  layer: RichLayer,
  head: HeadSource,
  labels: readonly string[],
): { probabilities: number[]; label: string; score: number } {
  const own = layer.headProbabilities;
  if (head === 'per-layer' && own && own.length > 0) {
    const best = argmax(own);
    return { probabilities: own, label: labels[best] ?? `LABEL_${best}`, score: own[best]! };
  }
  return { probabilities: layer.probabilities, label: layer.label, score: layer.score };
}

/** The criterion a call without one uses: the model's default where the library says, else full depth. */
export function effectiveCriterion(
  classifier: PonderClassifier,
  criterion: ExitCriterion | undefined,
): ExitCriterion {
  if (criterion) return criterion;
  const fallback = (classifier as { defaultCriterion?: ExitCriterion }).defaultCriterion;
  return fallback ?? { kind: 'none' };
}
