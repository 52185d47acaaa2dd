/**
 * The model as the engine sees it: a normalized configuration and the weights, independent of
 * whether they came from an ALBERT or a BERT checkpoint. `src/loading/` builds these from Hugging
 * Face files; `src/engine/` uploads them to the GPU; the tests' CPU reference runs them on the CPU.
 */

export type Architecture = 'albert' | 'bert';

/** Activations the kernels implement (Hugging Face `hidden_act` names, plus tanh for the pooler). */
export type Activation = 'none' | 'gelu' | 'gelu_new' | 'relu' | 'tanh';

export type ProblemType = 'single_label_classification' | 'multi_label_classification' | 'regression';

export interface EncoderConfig {
  architecture: Architecture;
  vocabSize: number;
  /** ALBERT's factorized embedding width E; equals hiddenSize for BERT. */
  embeddingSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: Exclude<Activation, 'none' | 'tanh'>;
  layerNormEps: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  /** ALBERT: number of distinct layer groups; BERT: numHiddenLayers. */
  numHiddenGroups: number;
  /** ALBERT: layers applied one after another inside a group; BERT: 1. */
  innerGroupNum: number;
  /** 0 when the checkpoint has no classifier (a base model). */
  numLabels: number;
  /** Label names by class index, from `id2label` (or LABEL_0, LABEL_1, ...). */
  labels: string[];
  problemType: ProblemType;
  /** The exit heads config.json's `ponder` object declares (docs/checkpoint-format.md). */
  exitHeads?: ExitHeadsConfig;
}

/** config.json's `ponder` object, validated (docs/checkpoint-format.md). */
export interface ExitHeadsConfig {
  formatVersion: 1;
  /** What the model was trained as (informational). */
  method: string;
  /** PALBERT / PonderNet λ head; absent when the model has none. */
  lambdaHead?: {
    /** 'cat': u_n = [z_n ; z_{n−1}] (z_0 = 0), width 2H; 'current': u_n = z_n, width H. */
    input: 'cat' | 'current';
    /** k blocks Linear(w → w) + tanh before the final Linear(w → 1). */
    hiddenLayers: number;
  };
  /** PABEE: one classifier per layer on z_n. */
  perLayerHeads: boolean;
  /** JEI-DNN style gates g_n = sigmoid(a_n · f_n + b_n). */
  gates: boolean;
  /** The criterion classify() uses when a call names none (an ExitCriterion object, validated at load). */
  defaultCriterion?: { kind: string } & Record<string, unknown>;
  /** Anything else of the object (training settings), passed through. */
  extra: Record<string, unknown>;
}

/** The `ponder.*` tensors, mapped (docs/checkpoint-format.md). */
export interface ExitHeadWeights {
  /** The λ MLP: k hidden Linear(w → w) (+ tanh), then Linear(w → 1). */
  lambda?: LinearWeights[];
  /** PABEE's per-layer classifiers, one per layer (index n − 1), each [C, H]. */
  heads?: LinearWeights[];
  /** Per-layer gates [1, 4] / [1]; L entries, or L − 1 when the last layer has none. */
  gates?: LinearWeights[];
}

/** A tensor as loaded on the CPU: row-major, always widened to f32 here. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** A Hugging Face nn.Linear: weight is [out, in], y = x · weightᵀ + bias. */
export interface LinearWeights {
  weight: Tensor;
  bias: Tensor;
}

export interface NormWeights {
  gamma: Tensor;
  beta: Tensor;
}

export interface TransformerLayerWeights {
  query: LinearWeights;
  key: LinearWeights;
  value: LinearWeights;
  attentionOutput: LinearWeights;
  attentionNorm: NormWeights;
  intermediate: LinearWeights;
  output: LinearWeights;
  outputNorm: NormWeights;
}

export interface EncoderWeights {
  embeddings: {
    word: Tensor; // [vocabSize, embeddingSize]
    position: Tensor; // [maxPositionEmbeddings, embeddingSize]
    tokenType: Tensor; // [typeVocabSize, embeddingSize]
    norm: NormWeights;
  };
  /** ALBERT's E → H projection (`embedding_hidden_mapping_in`); absent for BERT. */
  embeddingProjection?: LinearWeights;
  /**
   * The distinct transformer layers. ALBERT: numHiddenGroups × innerGroupNum, at index
   * group × innerGroupNum + inner. BERT: one per layer. See `layerSchedule`.
   */
  layers: TransformerLayerWeights[];
  pooler?: LinearWeights;
  classifier?: LinearWeights;
  /** The exit heads (`ponder.*` tensors) when config.json has a `ponder` object. */
  exitHeads?: ExitHeadWeights;
  /** Tensors the architecture does not use, by checkpoint name. */
  extra: Map<string, Tensor>;
}

export interface EncoderModel {
  config: EncoderConfig;
  weights: EncoderWeights;
}

/**
 * For each of the numHiddenLayers outputs, the distinct layers applied to produce it, in order
 * (Hugging Face's AlbertTransformer: group = floor(i / (L / G)), all inner layers of that group).
 */
export function layerSchedule(config: EncoderConfig): number[][] {
  const { numHiddenLayers: layers, numHiddenGroups: groups, innerGroupNum: inner } = config;
  const schedule: number[][] = [];
  for (let i = 0; i < layers; i++) {
    const group = Math.floor(i / (layers / groups));
    schedule.push(Array.from({ length: inner }, (_, j) => group * inner + j));
  }
  return schedule;
}
