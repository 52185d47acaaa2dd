/**
 * Hugging Face tensor names → EncoderWeights, for ALBERT and BERT, with and without the
 * sequence-classification head. Every tensor's shape is checked against the config.
 */
import { PonderError } from '../errors';
import type {
  EncoderConfig,
  EncoderWeights,
  LinearWeights,
  NormWeights,
  Tensor,
  TransformerLayerWeights,
} from '../model/types';

/**
 * Where the tensors come from: a `SafetensorsFile` (converts lazily) or a plain Map.
 * `dtype` is optional; when given, buffers and other non-float tensors can be recognised
 * without converting them.
 */
export interface TensorSource {
  has(name: string): boolean;
  get(name: string): Tensor | undefined;
  keys(): IterableIterator<string>;
  dtype?(name: string): string | undefined;
}

/** Buffers PyTorch may save next to the weights; never weights, never needed. */
const IGNORED_SUFFIXES = ['embeddings.position_ids', 'embeddings.token_type_ids'];

export function isIgnoredBuffer(name: string): boolean {
  return IGNORED_SUFFIXES.some((suffix) => name === suffix || name.endsWith(`.${suffix}`));
}

/** The prefix the checkpoint uses for the encoder: 'albert.' / 'bert.' or '' for a saved base model. */
export function detectPrefix(config: EncoderConfig, source: TensorSource): string {
  const prefix = `${config.architecture}.`;
  for (const name of source.keys()) if (name.startsWith(prefix)) return prefix;
  return '';
}

class WeightReader {
  private readonly used = new Set<string>();
  private readonly missing: string[] = [];

  constructor(private readonly source: TensorSource) {}

  /** Looks a tensor up under its name or legacy aliases; records a miss instead of throwing. */
  take(names: string[], shape: number[]): Tensor {
    for (const name of names) {
      if (!this.source.has(name)) continue;
      const tensor = this.source.get(name);
      if (!tensor) continue;
      this.used.add(name);
      if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
        throw new PonderError(
          'shape-mismatch',
          `Tensor '${name}' has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}] from config.json`,
        );
      }
      return tensor;
    }
    this.missing.push(names[0]!);
    return { shape, data: new Float32Array(0) };
  }

  linear(prefix: string, out: number, inp: number): LinearWeights {
    return {
      weight: this.take([`${prefix}.weight`], [out, inp]),
      bias: this.take([`${prefix}.bias`], [out]),
    };
  }

  /** LayerNorm, accepting TensorFlow-era `gamma`/`beta` names as Hugging Face does. */
  norm(prefix: string, width: number): NormWeights {
    return {
      gamma: this.take([`${prefix}.weight`, `${prefix}.gamma`], [width]),
      beta: this.take([`${prefix}.bias`, `${prefix}.beta`], [width]),
    };
  }

  hasAny(prefix: string): boolean {
    for (const name of this.source.keys()) if (name.startsWith(prefix)) return true;
    return false;
  }

  checkMissing(): void {
    if (this.missing.length === 0) return;
    const shown = this.missing.slice(0, 5).map((n) => `'${n}'`);
    const more = this.missing.length > 5 ? ` and ${this.missing.length - 5} more` : '';
    throw new PonderError(
      'missing-tensor',
      `Missing tensor ${shown.join(', ')}${more} in model.safetensors (needed by the ${this.missingContext})`,
    );
  }

  missingContext = 'model';

  extra(): Map<string, Tensor> {
    const extra = new Map<string, Tensor>();
    for (const name of this.source.keys()) {
      if (this.used.has(name) || isIgnoredBuffer(name)) continue;
      const tensor = this.source.get(name); // throws for a non-float dtype, naming the tensor
      if (tensor) extra.set(name, tensor);
    }
    return extra;
  }
}

function embeddings(r: WeightReader, p: string, c: EncoderConfig): EncoderWeights['embeddings'] {
  const e = c.embeddingSize;
  return {
    word: r.take([`${p}embeddings.word_embeddings.weight`], [c.vocabSize, e]),
    position: r.take([`${p}embeddings.position_embeddings.weight`], [c.maxPositionEmbeddings, e]),
    tokenType: r.take([`${p}embeddings.token_type_embeddings.weight`], [c.typeVocabSize, e]),
    norm: r.norm(`${p}embeddings.LayerNorm`, e),
  };
}

function albertLayer(r: WeightReader, q: string, c: EncoderConfig): TransformerLayerWeights {
  const h = c.hiddenSize;
  const i = c.intermediateSize;
  return {
    query: r.linear(`${q}.attention.query`, h, h),
    key: r.linear(`${q}.attention.key`, h, h),
    value: r.linear(`${q}.attention.value`, h, h),
    attentionOutput: r.linear(`${q}.attention.dense`, h, h),
    attentionNorm: r.norm(`${q}.attention.LayerNorm`, h),
    intermediate: r.linear(`${q}.ffn`, i, h),
    output: r.linear(`${q}.ffn_output`, h, i),
    outputNorm: r.norm(`${q}.full_layer_layer_norm`, h),
  };
}

function bertLayer(r: WeightReader, q: string, c: EncoderConfig): TransformerLayerWeights {
  const h = c.hiddenSize;
  const i = c.intermediateSize;
  return {
    query: r.linear(`${q}.attention.self.query`, h, h),
    key: r.linear(`${q}.attention.self.key`, h, h),
    value: r.linear(`${q}.attention.self.value`, h, h),
    attentionOutput: r.linear(`${q}.attention.output.dense`, h, h),
    attentionNorm: r.norm(`${q}.attention.output.LayerNorm`, h),
    intermediate: r.linear(`${q}.intermediate.dense`, i, h),
    output: r.linear(`${q}.output.dense`, h, i),
    outputNorm: r.norm(`${q}.output.LayerNorm`, h),
  };
}

/** The `ponder.*` tensors (docs/checkpoint-format.md); misses are recorded by the reader. */
function exitHeadWeights(
  r: WeightReader,
  config: EncoderConfig,
  source: TensorSource,
): NonNullable<EncoderWeights['exitHeads']> {
  const heads = config.exitHeads!;
  const { hiddenSize: h, numHiddenLayers: L, numLabels: c } = config;
  const out: NonNullable<EncoderWeights['exitHeads']> = {};
  if (heads.lambdaHead) {
    const w = heads.lambdaHead.input === 'cat' ? 2 * h : h;
    const k = heads.lambdaHead.hiddenLayers;
    out.lambda = Array.from({ length: k + 1 }, (_, i) => r.linear(`ponder.lambda.${i}`, i < k ? w : 1, w));
  }
  if (heads.perLayerHeads) {
    if (c < 1) {
      throw new PonderError(
        'unsupported-config',
        'ponder.per_layer_heads needs a classifier (num_labels ≥ 1)',
      );
    }
    out.heads = Array.from({ length: L }, (_, n) => r.linear(`ponder.heads.${n}`, c, h));
  }
  if (heads.gates) {
    // The last layer's gate is optional: that layer exits anyway.
    const count = source.has(`ponder.gates.${L - 1}.weight`) || L === 1 ? L : L - 1;
    out.gates = Array.from({ length: count }, (_, n) => r.linear(`ponder.gates.${n}`, 1, 4));
  }
  return out;
}

export interface MapWeightsOptions {
  /** Require `classifier.*` (sequence classification) or leave it out (base model). */
  classifier: boolean;
}

/**
 * Builds EncoderWeights from Hugging Face names. Throws 'missing-tensor' naming the absent tensors,
 * 'shape-mismatch' naming the tensor with expected and actual shapes. Tensors the architecture does
 * not use (exit heads, an MLM head) are returned in `extra`; `position_ids`-style buffers are ignored.
 */
export function mapWeights(
  config: EncoderConfig,
  source: TensorSource,
  options: MapWeightsOptions,
): EncoderWeights {
  const r = new WeightReader(source);
  const p = detectPrefix(config, source);
  const h = config.hiddenSize;
  const layers: TransformerLayerWeights[] = [];
  let embeddingProjection: LinearWeights | undefined;

  r.missingContext = `${config.architecture === 'albert' ? 'ALBERT' : 'BERT'} encoder`;
  const emb = embeddings(r, p, config);
  if (config.architecture === 'albert') {
    embeddingProjection = r.linear(`${p}encoder.embedding_hidden_mapping_in`, h, config.embeddingSize);
    for (let g = 0; g < config.numHiddenGroups; g++) {
      for (let j = 0; j < config.innerGroupNum; j++) {
        layers.push(albertLayer(r, `${p}encoder.albert_layer_groups.${g}.albert_layers.${j}`, config));
      }
    }
  } else {
    for (let l = 0; l < config.numHiddenLayers; l++)
      layers.push(bertLayer(r, `${p}encoder.layer.${l}`, config));
  }
  r.checkMissing();

  // The pooler is optional for a base model (add_pooling_layer=False) but the classifier reads it.
  const poolerPrefix = config.architecture === 'albert' ? `${p}pooler` : `${p}pooler.dense`;
  let pooler: LinearWeights | undefined;
  if (options.classifier || r.hasAny(`${poolerPrefix}.`)) {
    r.missingContext = 'pooler';
    pooler = r.linear(poolerPrefix, h, h);
    r.checkMissing();
  }
  let classifier: LinearWeights | undefined;
  if (options.classifier) {
    r.missingContext = `classifier (num_labels ${config.numLabels})`;
    classifier = r.linear('classifier', config.numLabels, h);
    r.checkMissing();
  }

  let exitHeads: EncoderWeights['exitHeads'];
  if (config.exitHeads) {
    r.missingContext = "exit heads that config.json's ponder object declares";
    exitHeads = exitHeadWeights(r, config, source);
    r.checkMissing();
  }

  const weights: EncoderWeights = { embeddings: emb, layers, extra: r.extra() };
  if (exitHeads) weights.exitHeads = exitHeads;
  if (embeddingProjection) weights.embeddingProjection = embeddingProjection;
  if (pooler) weights.pooler = pooler;
  if (classifier) weights.classifier = classifier;
  return weights;
}
