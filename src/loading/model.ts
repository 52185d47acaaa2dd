/**
 * config.json + model.safetensors → EncoderModel, the normalized model the engine consumes.
 */
import type { EncoderModel } from '../model/types';
import { parseConfigWithKind } from './config';
import { parseSafetensors, type SafetensorsOptions } from './safetensors';
import { mapWeights, type TensorSource } from './weights';

/**
 * Parses a Hugging Face checkpoint. `configJson` is config.json as text, bytes or a parsed object;
 * `weights` is model.safetensors (or, for tests, an already built tensor source).
 *
 * Whether the checkpoint carries a classifier comes from `architectures` (…ForSequenceClassification
 * vs …Model); when config.json does not say, from the presence of `classifier.weight`. A base model
 * gets numLabels 0 and no labels.
 */
export function parseCheckpoint(
  configJson: unknown,
  weights: ArrayBuffer | Uint8Array | TensorSource,
  options: SafetensorsOptions = {},
): EncoderModel {
  // The config first: it is small, and its errors are clearer than the weights' would be.
  const { config, kind } = parseConfigWithKind(configJson);
  const source =
    weights instanceof ArrayBuffer || weights instanceof Uint8Array
      ? parseSafetensors(weights, options)
      : weights;
  const classifier =
    kind === 'sequence-classification' || (kind === 'unknown' && source.has('classifier.weight'));
  if (!classifier) {
    config.numLabels = 0;
    config.labels = [];
  }
  return { config, weights: mapWeights(config, source, { classifier }) };
}
