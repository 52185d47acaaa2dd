/**
 * Loading: from a URL, Hub id or local files to an EncoderModel and a tokenizer.
 */
import type { EncoderModel } from '../model/types';
import { loadModelFiles, type LoadFilesOptions, type ModelFiles, type ModelSource } from './files';
import { parseCheckpoint } from './model';
import { createTokenizer, type TextTokenizer } from './tokenizer';

export * from './config';
export * from './files';
export * from './model';
export * from './safetensors';
export * from './tokenizer';
export * from './weights';

export interface LoadedCheckpoint {
  model: EncoderModel;
  /** Absent only when `requireTokenizer: false` and the source has no tokenizer.json. */
  tokenizer?: TextTokenizer;
  files: ModelFiles;
}

/**
 * Fetches and parses everything: config, weights and tokenizer (truncating to the model's
 * max_position_embeddings by default).
 */
export async function loadCheckpoint(
  source: ModelSource,
  options: LoadFilesOptions = {},
): Promise<LoadedCheckpoint> {
  const files = await loadModelFiles(source, options);
  const model = parseCheckpoint(files.config, files.weights);
  const result: LoadedCheckpoint = { model, files };
  if (files.tokenizer !== undefined) {
    result.tokenizer = await createTokenizer(files.tokenizer, files.tokenizerConfig, {
      maxLength: model.config.maxPositionEmbeddings,
    });
  }
  return result;
}
