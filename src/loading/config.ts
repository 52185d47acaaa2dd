/**
 * Hugging Face config.json → EncoderConfig. Missing fields take the defaults of Hugging Face's
 * AlbertConfig / BertConfig (as `from_pretrained` does); values we do not implement are rejected
 * with an error that names the field and the value.
 */
import { PonderError } from '../errors';
import { checkSupported, validateCriterion, type ExitCriterion } from '../exit/criteria';
import type { Architecture, EncoderConfig, ExitHeadsConfig, ProblemType } from '../model/types';

/** The architectures (config.json `architectures`) ponder-web runs, by model_type. */
export const SUPPORTED_ARCHITECTURES: Record<Architecture, { base: string; classifier: string }> = {
  albert: { base: 'AlbertModel', classifier: 'AlbertForSequenceClassification' },
  bert: { base: 'BertModel', classifier: 'BertForSequenceClassification' },
};

/** What kind of checkpoint config.json declares; 'unknown' when it has no `architectures`. */
export type CheckpointKind = 'base' | 'sequence-classification' | 'unknown';

export interface ParsedConfig {
  config: EncoderConfig;
  kind: CheckpointKind;
}

// Hugging Face's class defaults (transformers AlbertConfig / BertConfig).
const DEFAULTS = {
  albert: {
    vocab_size: 30000,
    embedding_size: 128,
    hidden_size: 4096,
    num_hidden_layers: 12,
    num_hidden_groups: 1,
    num_attention_heads: 64,
    intermediate_size: 16384,
    inner_group_num: 1,
    hidden_act: 'gelu_new',
    max_position_embeddings: 512,
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
  },
  bert: {
    vocab_size: 30522,
    hidden_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    intermediate_size: 3072,
    hidden_act: 'gelu',
    max_position_embeddings: 512,
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
  },
} as const;

const ACTIVATIONS: Record<string, EncoderConfig['hiddenAct']> = {
  gelu: 'gelu',
  gelu_new: 'gelu_new',
  // The same tanh approximation as gelu_new, under PyTorch's name.
  gelu_pytorch_tanh: 'gelu_new',
  relu: 'relu',
};

const PROBLEM_TYPES: readonly ProblemType[] = [
  'single_label_classification',
  'multi_label_classification',
  'regression',
];

function invalid(message: string): never {
  throw new PonderError('invalid-config', `Invalid config.json: ${message}`);
}

function unsupported(message: string): never {
  throw new PonderError('unsupported-config', `Unsupported config.json: ${message}`);
}

function toObject(input: unknown): Record<string, unknown> {
  let value = input;
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) {
    value = new TextDecoder().decode(input);
  }
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (cause) {
      throw new PonderError('invalid-config', 'Invalid config.json: not valid JSON', { cause });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    invalid('expected a JSON object');
  }
  return value as Record<string, unknown>;
}

function positiveInteger(json: Record<string, unknown>, field: string, fallback: number): number {
  const value = json[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    invalid(`${field} must be a positive integer, got ${JSON.stringify(json[field])}`);
  }
  return value;
}

function architectureOf(json: Record<string, unknown>): { architecture: Architecture; kind: CheckpointKind } {
  const modelType = json.model_type;
  const architectures = json.architectures;
  if (architectures !== undefined && architectures !== null) {
    if (!Array.isArray(architectures) || !architectures.every((a) => typeof a === 'string')) {
      invalid(`architectures must be an array of strings, got ${JSON.stringify(architectures)}`);
    }
  }
  const declared = (architectures as string[] | undefined | null) ?? [];

  let architecture: Architecture;
  if (modelType === 'albert' || modelType === 'bert') {
    architecture = modelType;
  } else if (modelType === undefined || modelType === null) {
    const first = declared[0] ?? '';
    if (first.startsWith('Albert')) architecture = 'albert';
    else if (first.startsWith('Bert')) architecture = 'bert';
    else invalid('model_type is missing and architectures does not name an ALBERT or BERT model');
  } else {
    unsupported(
      `model_type ${JSON.stringify(modelType)} is not supported; ponder-web runs 'albert' and 'bert'`,
    );
  }

  const names = SUPPORTED_ARCHITECTURES[architecture];
  if (declared.length === 0) return { architecture, kind: 'unknown' };
  if (declared.length > 1) {
    unsupported(`architectures lists several models (${declared.join(', ')}); expected one`);
  }
  const name = declared[0]!;
  if (name === names.classifier) return { architecture, kind: 'sequence-classification' };
  if (name === names.base) return { architecture, kind: 'base' };
  unsupported(
    `architecture ${JSON.stringify(name)} is not supported for model_type '${architecture}'; ` +
      `ponder-web runs ${names.classifier} and ${names.base}`,
  );
}

function labelsOf(json: Record<string, unknown>): string[] {
  const { id2label, label2id } = json;
  let labels: string[] | undefined;
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== 'object' || Array.isArray(id2label)) invalid('id2label must be an object');
    const entries = Object.entries(id2label as Record<string, unknown>);
    labels = new Array<string>(entries.length);
    for (const [key, value] of entries) {
      const index = Number(key);
      if (!Number.isInteger(index) || index < 0 || index >= entries.length || labels[index] !== undefined) {
        invalid(`id2label keys must be the integers 0..${entries.length - 1}, got ${JSON.stringify(key)}`);
      }
      if (typeof value !== 'string') invalid(`id2label[${key}] must be a string`);
      labels[index] = value;
    }
  } else if (label2id !== undefined && label2id !== null) {
    if (typeof label2id !== 'object' || Array.isArray(label2id)) invalid('label2id must be an object');
    const entries = Object.entries(label2id as Record<string, unknown>);
    labels = new Array<string>(entries.length);
    for (const [label, value] of entries) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= entries.length) {
        invalid(
          `label2id values must be the integers 0..${entries.length - 1}, got ${JSON.stringify(value)}`,
        );
      }
      if (labels[value] !== undefined) invalid(`label2id maps two labels to ${value}`);
      labels[value] = label;
    }
  }
  if (labels !== undefined && labels.length > 0) return labels; // id2label wins over num_labels, as in HF
  const count = positiveInteger(json, 'num_labels', 2);
  return Array.from({ length: count }, (_, i) => `LABEL_${i}`);
}

/** Parses config.json (text, bytes or an already parsed object). */
export function parseConfigWithKind(input: unknown): ParsedConfig {
  const json = toObject(input);
  const { architecture, kind } = architectureOf(json);
  const defaults = DEFAULTS[architecture];

  const hiddenSize = positiveInteger(json, 'hidden_size', defaults.hidden_size);
  const numHiddenLayers = positiveInteger(json, 'num_hidden_layers', defaults.num_hidden_layers);
  const numAttentionHeads = positiveInteger(json, 'num_attention_heads', defaults.num_attention_heads);
  const intermediateSize = positiveInteger(json, 'intermediate_size', defaults.intermediate_size);
  const vocabSize = positiveInteger(json, 'vocab_size', defaults.vocab_size);
  const maxPositionEmbeddings = positiveInteger(
    json,
    'max_position_embeddings',
    defaults.max_position_embeddings,
  );
  const typeVocabSize = positiveInteger(json, 'type_vocab_size', defaults.type_vocab_size);

  let embeddingSize = hiddenSize;
  let numHiddenGroups = numHiddenLayers;
  let innerGroupNum = 1;
  if (architecture === 'albert') {
    embeddingSize = positiveInteger(json, 'embedding_size', DEFAULTS.albert.embedding_size);
    numHiddenGroups = positiveInteger(json, 'num_hidden_groups', DEFAULTS.albert.num_hidden_groups);
    innerGroupNum = positiveInteger(json, 'inner_group_num', DEFAULTS.albert.inner_group_num);
    // Not required to divide num_hidden_layers: Hugging Face maps layer i to group
    // floor(i / (L / G)) for any L and G (see layerSchedule), and checkpoints exist with e.g. 5 and 2.
    if (numHiddenGroups > numHiddenLayers) {
      invalid(`num_hidden_groups (${numHiddenGroups}) exceeds num_hidden_layers (${numHiddenLayers})`);
    }
  }
  if (hiddenSize % numAttentionHeads !== 0) {
    invalid(`hidden_size (${hiddenSize}) must be a multiple of num_attention_heads (${numAttentionHeads})`);
  }

  const act = json.hidden_act ?? defaults.hidden_act;
  if (typeof act !== 'string') invalid(`hidden_act must be a string, got ${JSON.stringify(act)}`);
  const hiddenAct = ACTIVATIONS[act];
  if (!hiddenAct) {
    unsupported(
      `hidden_act ${JSON.stringify(act)} is not supported; ponder-web implements gelu, gelu_new and relu`,
    );
  }

  const eps = json.layer_norm_eps ?? defaults.layer_norm_eps;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) {
    invalid(`layer_norm_eps must be a positive number, got ${JSON.stringify(json.layer_norm_eps)}`);
  }

  const positionType = json.position_embedding_type ?? 'absolute';
  if (positionType !== 'absolute') {
    unsupported(
      `position_embedding_type ${JSON.stringify(positionType)} is not supported; only 'absolute' is implemented`,
    );
  }
  if (json.is_decoder === true || json.add_cross_attention === true) {
    unsupported('is_decoder / add_cross_attention: ponder-web runs encoders only');
  }

  const labels = kind === 'base' ? [] : labelsOf(json);
  const numLabels = labels.length;
  const rawProblem = json.problem_type;
  let problemType: ProblemType;
  if (rawProblem === undefined || rawProblem === null) {
    // Hugging Face decides at loss time: one label means regression, otherwise single-label.
    problemType = numLabels === 1 ? 'regression' : 'single_label_classification';
  } else if (typeof rawProblem === 'string' && (PROBLEM_TYPES as readonly string[]).includes(rawProblem)) {
    problemType = rawProblem as ProblemType;
  } else {
    invalid(`problem_type must be one of ${PROBLEM_TYPES.join(', ')}, got ${JSON.stringify(rawProblem)}`);
  }

  const config: EncoderConfig = {
    architecture,
    vocabSize,
    embeddingSize,
    hiddenSize,
    numHiddenLayers,
    numAttentionHeads,
    intermediateSize,
    hiddenAct,
    layerNormEps: eps,
    maxPositionEmbeddings,
    typeVocabSize,
    numHiddenGroups,
    innerGroupNum,
    numLabels,
    labels,
    problemType,
  };

  const ponder = json.ponder;
  if (ponder !== undefined && ponder !== null) {
    config.exitHeads = parsePonder(ponder, config);
  }
  return { config, kind };
}

/**
 * config.json's `ponder` object (docs/checkpoint-format.md) → ExitHeadsConfig. Unknown keys are kept
 * in `extra`; the fields the engine acts on are checked here, so a bad one fails at load, not later.
 */
function parsePonder(ponder: unknown, config: EncoderConfig): ExitHeadsConfig {
  if (typeof ponder !== 'object' || Array.isArray(ponder) || ponder === null)
    invalid('ponder must be an object');
  const {
    format_version: version = 1,
    method = 'palbert',
    lambda_head: lambda,
    per_layer_heads: heads = false,
    gates = false,
    default_criterion: criterion,
    ...extra
  } = ponder as Record<string, unknown>;
  if (version !== 1) {
    unsupported(`ponder.format_version ${JSON.stringify(version)} is not supported; this build reads 1`);
  }
  if (typeof method !== 'string') invalid(`ponder.method must be a string, got ${JSON.stringify(method)}`);
  if (typeof heads !== 'boolean') invalid(`ponder.per_layer_heads must be true or false`);
  if (typeof gates !== 'boolean') invalid(`ponder.gates must be true or false`);
  const out: ExitHeadsConfig = { formatVersion: 1, method, perLayerHeads: heads, gates, extra };
  if (lambda !== undefined && lambda !== null) {
    if (typeof lambda !== 'object' || Array.isArray(lambda)) invalid('ponder.lambda_head must be an object');
    const { input = 'cat', hidden_layers: k = 0, activation = 'tanh' } = lambda as Record<string, unknown>;
    if (input !== 'cat' && input !== 'current') {
      invalid(`ponder.lambda_head.input must be 'cat' or 'current', got ${JSON.stringify(input)}`);
    }
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 16) {
      invalid(`ponder.lambda_head.hidden_layers must be an integer in 0..16, got ${JSON.stringify(k)}`);
    }
    if (activation !== 'tanh') {
      unsupported(`ponder.lambda_head.activation ${JSON.stringify(activation)}; only 'tanh' is implemented`);
    }
    out.lambdaHead = { input, hiddenLayers: k };
  }
  if (gates && config.problemType === 'regression') {
    unsupported('ponder.gates on a regression model: gate features need class probabilities');
  }
  if (criterion !== undefined && criterion !== null) {
    if (typeof criterion !== 'object' || Array.isArray(criterion)) {
      invalid('ponder.default_criterion must be an object such as {"kind": "palbert", "q": 0.5}');
    }
    const c = { ...(criterion as Record<string, unknown>) } as unknown as ExitCriterion;
    try {
      validateCriterion(c, config.numHiddenLayers);
      checkSupported(c, {
        numLayers: config.numHiddenLayers,
        task: config.problemType === 'regression' ? 'regression' : 'classification',
        numClasses: config.numLabels,
        available: {
          lambdas: out.lambdaHead !== undefined,
          gates,
          perLayerHeads: heads,
          sharedHead: true,
          regression: config.problemType === 'regression',
        },
      });
    } catch (cause) {
      throw new PonderError(
        'invalid-config',
        `Invalid config.json: ponder.default_criterion: ${(cause as Error).message}`,
        { cause },
      );
    }
    out.defaultCriterion = c as unknown as ExitHeadsConfig['defaultCriterion'];
  }
  return out;
}

/** Parses config.json (text, bytes or an already parsed object) into the engine's EncoderConfig. */
export function parseConfig(input: unknown): EncoderConfig {
  return parseConfigWithKind(input).config;
}
