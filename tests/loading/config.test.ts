import { describe, expect, it } from 'vitest';
import { isPonderError, type PonderErrorCode } from '../../src/errors';
import { parseConfig, parseConfigWithKind } from '../../src/loading/config';
import { albertConfig, bertConfig, TINY_ALBERT, TINY_BERT } from './helpers';

function expectError(fn: () => unknown, code: PonderErrorCode, ...fragments: (string | RegExp)[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isPonderError(caught, code), `expected PonderError '${code}', got ${String(caught)}`).toBe(true);
  for (const fragment of fragments) expect((caught as Error).message).toMatch(fragment);
}

describe('parseConfig', () => {
  it('reads an ALBERT sequence-classification config', () => {
    const { config, kind } = parseConfigWithKind(albertConfig(TINY_ALBERT));
    expect(kind).toBe('sequence-classification');
    expect(config).toEqual({
      architecture: 'albert',
      vocabSize: 11,
      embeddingSize: 6,
      hiddenSize: 8,
      numHiddenLayers: 4,
      numAttentionHeads: 2,
      intermediateSize: 12,
      hiddenAct: 'gelu_new',
      layerNormEps: 1e-12,
      maxPositionEmbeddings: 9,
      typeVocabSize: 2,
      numHiddenGroups: 2,
      innerGroupNum: 2,
      numLabels: 3,
      labels: ['class_0', 'class_1', 'class_2'],
      problemType: 'single_label_classification',
    });
  });

  it('reads a BERT config given as text; embeddingSize = hidden, one group per layer', () => {
    const config = parseConfig(JSON.stringify({ ...bertConfig(TINY_BERT), layer_norm_eps: 1e-5 }));
    expect(config.architecture).toBe('bert');
    expect(config.embeddingSize).toBe(8);
    expect(config.numHiddenGroups).toBe(3);
    expect(config.innerGroupNum).toBe(1);
    expect(config.hiddenAct).toBe('gelu');
    expect(config.layerNormEps).toBe(1e-5);
    expect(config.labels).toEqual(['LABEL_0', 'LABEL_1']);
    expect(config.exitHeads).toBeUndefined();
  });

  it('reads config bytes', () => {
    const bytes = new TextEncoder().encode(JSON.stringify(bertConfig(TINY_BERT)));
    expect(parseConfig(bytes).vocabSize).toBe(13);
  });

  it("applies Hugging Face's class defaults for absent fields", () => {
    const albert = parseConfig({ model_type: 'albert' });
    expect(albert).toMatchObject({
      vocabSize: 30000,
      embeddingSize: 128,
      hiddenSize: 4096,
      numAttentionHeads: 64,
      intermediateSize: 16384,
      hiddenAct: 'gelu_new',
      numHiddenGroups: 1,
      innerGroupNum: 1,
      numLabels: 2,
    });
    const bert = parseConfig({ model_type: 'bert' });
    expect(bert).toMatchObject({ vocabSize: 30522, hiddenSize: 768, hiddenAct: 'gelu', numHiddenGroups: 12 });
  });

  it('infers model_type from architectures when it is absent', () => {
    const json = albertConfig(TINY_ALBERT);
    delete json.model_type;
    expect(parseConfig(json).architecture).toBe('albert');
  });

  it('treats a base model as having no labels', () => {
    const { config, kind } = parseConfigWithKind(bertConfig(TINY_BERT, 'BertModel'));
    expect(kind).toBe('base');
    expect(config.numLabels).toBe(0);
    expect(config.labels).toEqual([]);
  });

  it('reports unknown when config.json names no architecture', () => {
    const json = bertConfig(TINY_BERT);
    delete json.architectures;
    expect(parseConfigWithKind(json).kind).toBe('unknown');
  });

  it('derives labels from id2label, then label2id, then num_labels', () => {
    const byId = parseConfig({ ...bertConfig(TINY_BERT), id2label: { 1: 'yes', 0: 'no' }, num_labels: 5 });
    expect(byId.labels).toEqual(['no', 'yes']); // id2label wins over num_labels, as in HF
    const byLabel = parseConfig({
      ...bertConfig(TINY_BERT),
      num_labels: undefined,
      label2id: { b: 1, a: 0, c: 2 },
    });
    expect(byLabel.labels).toEqual(['a', 'b', 'c']);
    const byCount = parseConfig({ ...bertConfig(TINY_BERT), num_labels: 4 });
    expect(byCount.labels).toEqual(['LABEL_0', 'LABEL_1', 'LABEL_2', 'LABEL_3']);
  });

  it('chooses the problem type as Hugging Face does', () => {
    const one = parseConfig({ ...bertConfig(TINY_BERT), num_labels: 1 });
    expect(one.problemType).toBe('regression');
    const multi = parseConfig({ ...bertConfig(TINY_BERT), problem_type: 'multi_label_classification' });
    expect(multi.problemType).toBe('multi_label_classification');
    expect(parseConfig(bertConfig(TINY_BERT)).problemType).toBe('single_label_classification');
  });

  it('maps gelu_pytorch_tanh to gelu_new and accepts relu', () => {
    expect(parseConfig({ ...bertConfig(TINY_BERT), hidden_act: 'gelu_pytorch_tanh' }).hiddenAct).toBe(
      'gelu_new',
    );
    expect(parseConfig({ ...albertConfig(TINY_ALBERT), hidden_act: 'relu' }).hiddenAct).toBe('relu');
  });

  it('accepts layers that are not a multiple of the groups (as Hugging Face does)', () => {
    const config = parseConfig({ ...albertConfig(TINY_ALBERT), num_hidden_layers: 5, num_hidden_groups: 2 });
    expect(config.numHiddenLayers).toBe(5);
    expect(config.numHiddenGroups).toBe(2);
  });

  it('reads the ponder section as typed exitHeads (docs/checkpoint-format.md)', () => {
    const ponder = {
      format_version: 1,
      method: 'palbert',
      lambda_head: { input: 'cat', hidden_layers: 3, activation: 'tanh' },
      per_layer_heads: false,
      gates: false,
      default_criterion: { kind: 'palbert', q: 0.5 },
      training: { beta: 0.5 },
    };
    expect(parseConfig({ ...albertConfig(TINY_ALBERT), ponder }).exitHeads).toEqual({
      formatVersion: 1,
      method: 'palbert',
      lambdaHead: { input: 'cat', hiddenLayers: 3 },
      perLayerHeads: false,
      gates: false,
      defaultCriterion: { kind: 'palbert', q: 0.5 },
      extra: { training: { beta: 0.5 } },
    });
  });

  it('rejects a ponder default criterion the declared heads cannot run', () => {
    const ponder = {
      method: 'pabee',
      per_layer_heads: false,
      default_criterion: { kind: 'pabee', patience: 2 },
    };
    expect(() => parseConfig({ ...albertConfig(TINY_ALBERT), ponder })).toThrow(/per-layer classifier heads/);
    const bad = { lambda_head: { input: 'sum' } };
    expect(() => parseConfig({ ...albertConfig(TINY_ALBERT), ponder: bad })).toThrow(/lambda_head.input/);
  });
});

describe('parseConfig errors', () => {
  it('rejects text that is not JSON, and JSON that is not an object', () => {
    expectError(() => parseConfig('{"model_type": '), 'invalid-config', /not valid JSON/);
    expectError(() => parseConfig('[1]'), 'invalid-config', /object/);
    expectError(() => parseConfig(null), 'invalid-config', /object/);
  });

  it('rejects an unknown architecture, naming it', () => {
    expectError(() => parseConfig({ model_type: 'gpt2' }), 'unsupported-config', /model_type "gpt2"/);
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), architectures: ['BertForTokenClassification'] }),
      'unsupported-config',
      /BertForTokenClassification/,
    );
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), architectures: ['AlbertModel'] }),
      'unsupported-config',
      /AlbertModel/,
    );
    expectError(() => parseConfig({ architectures: ['GPT2LMHeadModel'] }), 'invalid-config', /model_type/);
  });

  it('rejects an unsupported hidden_act, naming the value', () => {
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), hidden_act: 'silu' }),
      'unsupported-config',
      /hidden_act "silu"/,
    );
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), hidden_act: 3 }),
      'invalid-config',
      /hidden_act/,
    );
  });

  it('rejects relative position embeddings', () => {
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), position_embedding_type: 'relative_key' }),
      'unsupported-config',
      /position_embedding_type "relative_key"/,
    );
  });

  it('rejects a decoder configuration', () => {
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), is_decoder: true }),
      'unsupported-config',
      /decoder/,
    );
  });

  it('rejects sizes that are not positive integers, naming the field', () => {
    for (const [field, value] of [
      ['hidden_size', 0],
      ['num_hidden_layers', -2],
      ['intermediate_size', 3.5],
      ['vocab_size', '100'],
      ['max_position_embeddings', 'x'],
      ['embedding_size', 0],
      ['inner_group_num', 0],
    ] as const) {
      expectError(
        () => parseConfig({ ...albertConfig(TINY_ALBERT), [field]: value }),
        'invalid-config',
        field,
      );
    }
  });

  it('rejects hidden_size not divisible by the heads', () => {
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), num_attention_heads: 3 }),
      'invalid-config',
      /hidden_size \(8\).*num_attention_heads \(3\)/,
    );
  });

  it('rejects more groups than layers', () => {
    expectError(
      () => parseConfig({ ...albertConfig(TINY_ALBERT), num_hidden_groups: 5 }),
      'invalid-config',
      /num_hidden_groups/,
    );
  });

  it('rejects a bad layer_norm_eps, problem_type, id2label or ponder section', () => {
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), layer_norm_eps: 0 }),
      'invalid-config',
      /layer_norm_eps/,
    );
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), problem_type: 'ranking' }),
      'invalid-config',
      /ranking/,
    );
    expectError(
      () => parseConfig({ ...bertConfig(TINY_BERT), id2label: { 0: 'a', 2: 'b' } }),
      'invalid-config',
      /id2label/,
    );
    expectError(() => parseConfig({ ...bertConfig(TINY_BERT), ponder: 'yes' }), 'invalid-config', /ponder/);
  });
});
