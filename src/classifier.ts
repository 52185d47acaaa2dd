/**
 * The public API: `loadClassifier(source, options)` fetches a Hugging Face sequence-classification
 * checkpoint, uploads it to the GPU and returns a `PonderClassifier` whose `classify()` gives the
 * answer with the result of every layer.
 *
 *   const classifier = await loadClassifier('/models/palbert-sst2/', { onProgress: console.log });
 *   const [result] = await classifier.classify('a gorgeous, witty, seductive movie');
 *   result.label, result.exitLayer, result.layers[3].probabilities
 */
import { Engine, workGpuMs, type EncodedBatch, type EngineLayer, type EngineOptions } from './engine/engine';
import type { DispatchTime } from './engine/plan';
import { PonderError } from './errors';
import { requestGpu, type AdapterDescription, type GpuContext } from './gpu/device';
import { getSharedGpu } from './gpu/shared';
import { loadCheckpoint, type LoadFilesOptions, type ModelSource, type TextTokenizer } from './loading';
import type { EncoderConfig, EncoderModel } from './model/types';
import { argmax, type CriterionKind, type ExitCriterion } from './exit';
import { layerResult, type ClassificationResult, type LayerEvent, type LayerResult } from './results';

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
   * When to exit (default: config.json's `ponder.default_criterion`, else full depth). Decided on
   * the GPU after each layer; once every example of the batch has exited, the remaining layers do
   * no work. Chosen per call; nothing is recompiled or reloaded. Criteria that need exit heads the
   * model lacks throw 'unsupported-criterion' before any GPU work.
   */
  criterion?: ExitCriterion;
  /**
   * 'single-submit' (default): the pass is one command buffer and one readback, and `onLayer`
   * events come after it, in layer order. 'streaming': one submit and one small readback per
   * layer, so events arrive while later layers run (L submits and L + 1 readbacks instead of 1 and 1).
   */
  mode?: 'single-submit' | 'streaming';
  /** Called for every example and layer up to its exit. */
  onLayer?: (event: LayerEvent) => void;
  /** Data-set index of the first input (seeds PonderNet's sampled exit; default 0). */
  firstExampleIndex?: number;
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

  /** The exit criteria this model's heads allow. */
  get supportedCriteria(): CriterionKind[] {
    return this.engine.supportedCriteria;
  }

  /** What classify() uses when a call names no criterion. */
  get defaultCriterion(): ExitCriterion {
    const declared = this.config.exitHeads?.defaultCriterion;
    return declared ? ({ ...declared } as unknown as ExitCriterion) : { kind: 'none' };
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
    const started = performance.now();
    const criterion: ExitCriterion = options.criterion ?? this.defaultCriterion;
    // Typed errors for a bad or unsupported criterion before anything is tokenized or run.
    const head = this.engine.checkCriterion(criterion);
    const { encoded, batch } = this.encodeBatch(input);
    const onLayer = options.onLayer;
    const output = await this.engine.run(batch, {
      criterion,
      ...(options.mode ? { mode: options.mode } : {}),
      ...(options.firstExampleIndex !== undefined ? { exampleBase: options.firstExampleIndex } : {}),
      ...(onLayer
        ? {
            onLayer: (e) =>
              onLayer({ exampleIndex: e.exampleIndex, layer: this.toLayerResult(e.layer), exited: e.exited }),
          }
        : {}),
    });
    const totalMs = performance.now() - started;
    let gpuMs: number | undefined;
    let submitMs = 0;
    for (const w of output.work) {
      const ms = workGpuMs(w);
      if (ms !== undefined) gpuMs = (gpuMs ?? 0) + ms;
      submitMs += w.submitMs;
    }
    return encoded.map((e, i) => {
      const x = output.examples[i]!;
      const layers = x.layers.map((l) => this.toLayerResult(l));
      const final = layers[x.exitLayer - 1]!;
      let { label, score } = final;
      if (head === 'per-layer' && final.headProbabilities) {
        // PABEE-style criteria answer with the exit layer's own classifier.
        if (this.config.problemType === 'regression') {
          score = final.headLogits![0]!;
        } else {
          const best = argmax(final.headProbabilities);
          label = this.config.labels[best] ?? `LABEL_${best}`;
          score = final.headProbabilities[best]!;
        }
      }
      return {
        text: e.text,
        label,
        score,
        exitLayer: x.exitLayer,
        criterion,
        numLayers: this.config.numHiddenLayers,
        layers,
        skippedLayers: x.skippedLayers,
        timing: gpuMs === undefined ? { totalMs, submitMs } : { totalMs, gpuMs, submitMs },
        truncated: e.truncated,
        tokenCount: e.tokenCount,
        device: this.device,
      };
    });
  }

  /**
   * Runs the input at full depth with every kernel dispatch timed on its own (one compute pass
   * with timestamps each; needs timestamp-query): where a forward pass spends its GPU time. Slower
   * than classify() and for diagnosis only; the dispatch labels name kernel, path and shape.
   * `warmPasses`: that many unprofiled full-depth passes first, back to back in the same submit, so
   * that the profiled one runs at the clocks of sustained work rather than an idle GPU's.
   */
  async profileKernels(
    input: ClassifierInput | ClassifierInput[],
    options: { warmPasses?: number } = {},
  ): Promise<KernelProfile> {
    const { batch } = this.encodeBatch(input);
    const warm = options.warmPasses ?? 0;
    if (!Number.isInteger(warm) || warm < 0 || warm > 999) {
      throw new PonderError('invalid-input', `warmPasses must be an integer in 0..999, got ${warm}`);
    }
    const output = await this.engine.run(batch, {
      criterion: { kind: 'none' },
      profile: true,
      ...(warm > 0 ? { backToBack: warm + 1 } : {}),
    });
    const dispatches = output.work.flatMap((w) => w.dispatchMs ?? []);
    const byKernel = new Map<string, { kernel: string; ms: number; count: number }>();
    for (const d of dispatches) {
      const kernel = kernelName(d.label);
      const entry = byKernel.get(kernel) ?? { kernel, ms: 0, count: 0 };
      entry.ms += d.ms;
      entry.count += 1;
      byKernel.set(kernel, entry);
    }
    return {
      bucket: output.bucket,
      dispatches,
      totalMs: dispatches.reduce((a, d) => a + d.ms, 0),
      byKernel: [...byKernel.values()].sort((a, b) => b.ms - a.ms),
    };
  }

  /**
   * Runs the input at full depth `passes` times back to back in one submit and reports the last
   * pass's GPU time (timestamp-query) and the wall time per pass. A GPU runs one short call at low
   * clocks; back to back it reaches the clocks of sustained work, as when many texts are classified
   * one after another. For diagnosis and benchmarks (bench/suite.ts); the results are not returned.
   */
  async timeBackToBack(
    input: ClassifierInput | ClassifierInput[],
    passes: number,
  ): Promise<{ passes: number; wallMsPerPass: number; lastPassGpuMs?: number }> {
    const { batch } = this.encodeBatch(input);
    const started = performance.now();
    const output = await this.engine.run(batch, { criterion: { kind: 'none' }, backToBack: passes });
    const wallMsPerPass = (performance.now() - started) / passes;
    const w = output.work[output.work.length - 1]!;
    const lastPassGpuMs = workGpuMs(w);
    return lastPassGpuMs === undefined ? { passes, wallMsPerPass } : { passes, wallMsPerPass, lastPassGpuMs };
  }

  private encodeBatch(input: ClassifierInput | ClassifierInput[]) {
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
    return { encoded, batch };
  }

  private toLayerResult(l: EngineLayer): LayerResult {
    const probs = l.probabilities.length ? l.probabilities : undefined;
    const r = layerResult(this.config, l.layer, l.logits, probs);
    if (l.lambda !== undefined) {
      r.lambda = l.lambda;
      r.haltingProbability = l.haltingProbability!;
      r.cumulativeHalting = l.cumulativeHalting!;
    }
    if (l.headProbabilities) r.headProbabilities = l.headProbabilities;
    if (l.headLogits) r.headLogits = l.headLogits;
    if (l.gate !== undefined) r.gate = l.gate;
    if (l.gpuTimeMs !== undefined) r.gpuTimeMs = l.gpuTimeMs;
    return r;
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

/** A kernel profile (PonderClassifier.profileKernels). */
export interface KernelProfile {
  /** The padded (batch, sequence length) the pass ran at. */
  bucket: { batch: number; seqLen: number };
  /** Every dispatch in encoding order: pass 0 is the embeddings, pass n depth n. */
  dispatches: DispatchTime[];
  /** Sum of the dispatches' GPU times (gaps between passes excluded). */
  totalMs: number;
  /** Dispatches grouped by kernel and path (shapes and layer numbers dropped), largest first. */
  byKernel: { kernel: string; ms: number; count: number }[];
}

/** 'matmul-f16-none-128x768x3072-split11' → 'matmul-f16-none-split', 'decide3' → 'decide'. */
function kernelName(label: string): string {
  return (
    label
      .replace(/-b\d+-t\d+-h\d+x\d+/, '')
      .replace(/-\d+(x\d+)+/g, '')
      .replace(/(split|reduce|splits)\d+/g, '$1')
      // Exit kernels are labelled by depth alone ('decide3'); keep 'f32'/'f16' in the others.
      .replace(/^([a-zA-Z]+)\d+$/, '$1')
  );
}
