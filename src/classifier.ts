/**
 * The public API: `loadClassifier(source, options)` fetches a Hugging Face sequence-classification
 * checkpoint, uploads it to the GPU and returns a `PonderClassifier` whose `classify()` gives the
 * answer with the result of every layer.
 *
 *   const classifier = await loadClassifier('/models/palbert-sst2/', { onProgress: console.log });
 *   const [result] = await classifier.classify('a gorgeous, witty, seductive movie');
 *   result.label, result.exitLayer, result.layers[3].probabilities
 */
import { Engine, type EncodedBatch, type EngineOptions } from './engine/engine';
import { PonderError } from './errors';
import { requestGpu, type AdapterDescription, type GpuContext } from './gpu/device';
import { getSharedGpu } from './gpu/shared';
import { loadCheckpoint, type LoadFilesOptions, type ModelSource, type TextTokenizer } from './loading';
import type { EncoderConfig, EncoderModel } from './model/types';
import { evaluateExit, type ExitCriterion, type LayerOutputs } from './exit';
import { layerResult, type ClassificationResult } from './results';

export interface LoadClassifierOptions extends LoadFilesOptions, EngineOptions {
  /**
   * The GPU device to use. Default: one device shared by every classifier on the page. Pass a
   * GPUDevice to use your own (it is not destroyed by dispose()), or 'own' for a private one.
   */
  device?: GPUDevice | 'own';
  /** Use f16 weight storage when the adapter has `shader-f16` (default true). */
  allowF16?: boolean;
  /** Run one throwaway pass at load so the first request does not pay warm-up (default true). */
  warmUp?: boolean;
}

/** A text, a text pair (for pair tasks such as MRPC), or token ids from your own tokenizer. */
export type ClassifierInput = string | { text: string; textPair?: string } | TokenInput;

export interface ClassifyOptions {
  /**
   * How to pick the answer's layer from the per-layer results (default: full depth). Chosen per
   * call; nothing is reloaded. Criteria that need exit heads the model lacks throw
   * 'unsupported-criterion'.
   */
  criterion?: ExitCriterion;
}

export interface TokenInput {
  inputIds: number[];
  tokenTypeIds?: number[];
  attentionMask?: number[];
}

export class PonderClassifier {
  readonly config: EncoderConfig;
  /** Where the model runs; `isFallbackAdapter` is true on software adapters (slow). */
  readonly device: AdapterDescription;
  private readonly engine: Engine;
  private readonly tokenizer: TextTokenizer | undefined;

  /** @internal Use loadClassifier(). */
  constructor(engine: Engine, tokenizer: TextTokenizer | undefined) {
    this.engine = engine;
    this.tokenizer = tokenizer;
    this.config = engine.config;
    this.device = engine.adapter;
  }

  /** Weight storage on the GPU: 'f16' when the adapter supports it, else 'f32'. */
  get weightDtype(): 'f16' | 'f32' {
    return this.engine.weightDtype;
  }

  /** GPU memory held by the weights and the allocated plans, in bytes. */
  get gpuBytes(): number {
    return this.engine.gpuBytes;
  }

  /**
   * Classifies one input or a batch. Texts longer than the model's positions are truncated (the
   * result's `truncated` says so). Calls may overlap; they run one after another.
   */
  async classify(
    input: ClassifierInput | ClassifierInput[],
    options: ClassifyOptions = {},
  ): Promise<ClassificationResult[]> {
    const criterion: ExitCriterion = options.criterion ?? { kind: 'none' };
    const inputs = Array.isArray(input) ? input : [input];
    if (inputs.length === 0) throw new PonderError('invalid-input', 'classify() was given an empty batch.');
    const encoded = inputs.map((item, i) => this.encode(item, i));
    const seqLen = Math.max(...encoded.map((e) => e.ids.length));
    const batch: EncodedBatch = {
      batch: encoded.length,
      seqLen,
      inputIds: new Uint32Array(encoded.length * seqLen),
      tokenTypeIds: new Uint32Array(encoded.length * seqLen),
      attentionMask: new Uint32Array(encoded.length * seqLen),
    };
    encoded.forEach((e, i) => {
      (batch.inputIds as Uint32Array).set(e.ids, i * seqLen);
      (batch.tokenTypeIds as Uint32Array).set(e.types, i * seqLen);
      (batch.attentionMask as Uint32Array).set(e.mask, i * seqLen);
    });
    const output = await this.engine.run(batch);
    return encoded.map((e, i) => {
      const layers = output.logits[i]!.map((logits, l) => layerResult(this.config, l + 1, logits));
      const regression = this.config.problemType === 'regression';
      const outputs: LayerOutputs = regression
        ? { numLayers: layers.length, values: layers.map((l) => l.score) }
        : { numLayers: layers.length, probs: layers.map((l) => l.probabilities) };
      // The exit layer is decided here, on the CPU, from all layers' results.
      const exit = evaluateExit(outputs, criterion, { exampleIndex: i });
      const final = layers[exit.exitLayer - 1]!;
      return {
        text: e.text,
        label: final.label,
        score: final.score,
        exitLayer: final.layer,
        criterion,
        numLayers: this.config.numHiddenLayers,
        layers,
        truncated: e.truncated,
        tokenCount: e.tokenCount,
        device: this.device,
      };
    });
  }

  /** Frees this classifier's GPU buffers. A shared device stays alive for the others. */
  dispose(): void {
    this.engine.dispose();
  }

  private encode(item: ClassifierInput, index: number) {
    if (typeof item === 'string' || (typeof item === 'object' && item !== null && 'text' in item)) {
      const text = typeof item === 'string' ? item : item.text;
      const pair = typeof item === 'string' ? undefined : item.textPair;
      if (!this.tokenizer) {
        throw new PonderError(
          'invalid-input',
          'This model was loaded without a tokenizer; pass token ids instead.',
        );
      }
      if (typeof text !== 'string' || text.trim() === '') {
        throw new PonderError('invalid-input', `Input ${index} is empty; give some text to classify.`);
      }
      const enc = this.tokenizer.encode(text, pair);
      return {
        text,
        ids: enc.inputIds,
        types: enc.tokenTypeIds,
        mask: enc.attentionMask,
        truncated: enc.truncated,
        tokenCount: enc.inputIds.length,
      };
    }
    const tokens = item as TokenInput;
    if (!tokens || !Array.isArray(tokens.inputIds) || tokens.inputIds.length === 0) {
      throw new PonderError(
        'invalid-input',
        `Input ${index} is neither text nor a non-empty inputIds array.`,
      );
    }
    const n = tokens.inputIds.length;
    const maxLen = this.config.maxPositionEmbeddings;
    const cut = Math.min(n, maxLen);
    const types = tokens.tokenTypeIds ?? new Array<number>(n).fill(0);
    const mask = tokens.attentionMask ?? new Array<number>(n).fill(1);
    if (types.length !== n || mask.length !== n) {
      throw new PonderError(
        'invalid-input',
        `Input ${index}: tokenTypeIds and attentionMask must match inputIds' length.`,
      );
    }
    return {
      text: null,
      ids: tokens.inputIds.slice(0, cut),
      types: types.slice(0, cut),
      mask: mask.slice(0, cut),
      truncated: n > maxLen,
      tokenCount: cut,
    };
  }
}

/**
 * Loads a classifier from a base URL ('/models/palbert-sst2/'), a Hub id ('user/model') or local
 * files, onto the GPU. Throws a PonderError: 'no-webgpu' / 'no-adapter' without a usable GPU,
 * 'fetch-failed', 'invalid-safetensors', 'missing-tensor', 'shape-mismatch', 'unsupported-config'...
 */
export async function loadClassifier(
  source: ModelSource,
  options: LoadClassifierOptions = {},
): Promise<PonderClassifier> {
  // Probe the GPU first: without one there is no point downloading megabytes of weights.
  const gpuOptions = options.allowF16 === undefined ? {} : { allowF16: options.allowF16 };
  const ctx = await gpuFor(options.device, gpuOptions);
  const checkpoint = await loadCheckpoint(source, options);
  return createClassifier(ctx, checkpoint.model, checkpoint.tokenizer, options, options.device === 'own');
}

/** Builds a classifier from an already parsed model (used by tests and by callers with their own files). */
export async function createClassifier(
  ctx: GpuContext,
  model: EncoderModel,
  tokenizer: TextTokenizer | undefined,
  options: EngineOptions & { warmUp?: boolean } = {},
  ownsDevice = false,
): Promise<PonderClassifier> {
  const engine = await Engine.create(ctx, model, options, ownsDevice);
  if (options.warmUp !== false) {
    // One throwaway pass at the smallest shape: pays pipeline and driver warm-up now, not on the first request.
    await engine.run({ batch: 1, seqLen: 1, inputIds: [0] });
  }
  return new PonderClassifier(engine, tokenizer);
}

async function gpuFor(
  device: LoadClassifierOptions['device'],
  options: { allowF16?: boolean },
): Promise<GpuContext> {
  if (device === 'own') return requestGpu(options);
  if (device) return requestGpu({ ...options, device });
  return getSharedGpu(options);
}
