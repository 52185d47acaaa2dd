/**
 * Turning per-layer logits into what users read: probabilities, labels and the per-layer view.
 */
import type { ExitCriterion } from './exit';
import { argmax, softmax } from './exit/math';
import type { AdapterDescription } from './gpu/device';
import type { EncoderConfig } from './model/types';

export interface LayerResult {
  /** 1-based layer index (layer 1 is the output of the first transformer layer). */
  layer: number;
  logits: number[];
  /** Softmax over labels (sigmoid per label for multi-label); empty for regression. */
  probabilities: number[];
  /** The most probable label at this layer ('score' for regression). */
  label: string;
  /** The probability of `label`, or the regression value. */
  score: number;
  /** λ_n, the λ head's conditional exit probability (models with a λ head). */
  lambda?: number;
  /** p(n) = λ_n ∏_{i<n}(1 − λ_i) (models with a λ head). */
  haltingProbability?: number;
  /** CDF_n = Σ_{j≤n} p(j), what PALBERT's Q-exit compares with q (models with a λ head). */
  cumulativeHalting?: number;
  /** Probabilities of this layer's own classifier (models with PABEE per-layer heads; [] for regression). */
  headProbabilities?: number[];
  /** Logits of this layer's own classifier (for regression, its value). */
  headLogits?: number[];
  /** g_n of this layer's exit gate (models with gates). */
  gate?: number;
  /** GPU time of this layer for the whole batch, in ms (adapters with timestamp-query). */
  gpuTimeMs?: number;
}

/** What `onLayer` receives, per example and layer. */
export interface LayerEvent {
  /** Index of the example in the classify() call's input. */
  exampleIndex: number;
  layer: LayerResult;
  /** True at the example's exit layer (its last event). */
  exited: boolean;
}

export interface ClassificationResult {
  /** The input text (null when the input was token ids). */
  text: string | null;
  /** The final answer: the label at the exit layer. */
  label: string;
  score: number;
  /** The layer the answer comes from (1-based), as the criterion decided. */
  exitLayer: number;
  /** The exit criterion that chose `exitLayer`. */
  criterion: ExitCriterion;
  numLayers: number;
  /** Results for layers 1..exitLayer (after the exit nothing is computed for this example). */
  layers: LayerResult[];
  /**
   * Layers after the exit that did no GPU work at all. In a batch the layers run until every
   * example has exited, so this counts the layers after the batch's last exit.
   */
  skippedLayers: number;
  /**
   * Wall time of the classify() call; the GPU time of its passes where timestamp-query exists; and
   * the CPU time up to their submit: uploads and submit, plus encoding on the first call at a shape
   * (later calls submit a command buffer encoded while the previous call's pass ran). The rest of
   * the wall time is waiting: on the GPU, and on the runtime's own round trip to it.
   */
  timing?: { totalMs: number; gpuMs?: number; submitMs?: number };
  /** True when the text was longer than the model's positions and was cut. */
  truncated: boolean;
  /** Tokens fed to the model, special tokens included. */
  tokenCount: number;
  /** Where it ran: adapter names, and whether it was a software (fallback) adapter. */
  device: AdapterDescription;
}

/**
 * One layer's result. `probabilities`: those the GPU's exit kernel computed (what its decision
 * used); computed here from the logits when absent.
 */
export function layerResult(
  config: EncoderConfig,
  layer: number,
  logits: number[],
  probabilities?: number[],
): LayerResult {
  if (config.problemType === 'regression') {
    return { layer, logits, probabilities: [], label: 'score', score: logits[0] ?? NaN };
  }
  probabilities ??=
    config.problemType === 'multi_label_classification'
      ? logits.map((x) => 1 / (1 + Math.exp(-x)))
      : softmax(logits);
  const best = argmax(probabilities);
  return {
    layer,
    logits,
    probabilities,
    label: config.labels[best] ?? `LABEL_${best}`,
    score: probabilities[best]!,
  };
}
