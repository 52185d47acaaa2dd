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
  /** Results for every layer that ran. */
  layers: LayerResult[];
  /** True when the text was longer than the model's positions and was cut. */
  truncated: boolean;
  /** Tokens fed to the model, special tokens included. */
  tokenCount: number;
  /** Where it ran: adapter names, and whether it was a software (fallback) adapter. */
  device: AdapterDescription;
}

export function layerResult(config: EncoderConfig, layer: number, logits: number[]): LayerResult {
  if (config.problemType === 'regression') {
    return { layer, logits, probabilities: [], label: 'score', score: logits[0] ?? NaN };
  }
  const probabilities =
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
