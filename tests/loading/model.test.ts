import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPonderError, type PonderErrorCode } from '../../src/errors';
import { parseCheckpoint } from '../../src/loading/model';
import type {
  EncoderModel,
  LinearWeights,
  NormWeights,
  Tensor,
  TransformerLayerWeights,
} from '../../src/model/types';
import {
  albertConfig,
  bertConfig,
  f32,
  TINY_ALBERT,
  TINY_BERT,
  tinyCheckpoint,
  writeSafetensors,
  type RawTensor,
} from './helpers';

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

/** Asserts that `tensor` is the checkpoint tensor `name`: same shape and the marker-coded data. */
function expectTensor(tensor: Tensor | undefined, name: string, file: Record<string, RawTensor>): void {
  const raw = file[name];
  expect(raw, `test bug: no tensor ${name}`).toBeDefined();
  expect(tensor, `slot for ${name} is empty`).toBeDefined();
  expect(tensor!.shape, name).toEqual(raw!.shape);
  expect([...tensor!.data], name).toEqual([...(raw!.data as Float32Array)]);
}

function expectLinear(w: LinearWeights | undefined, name: string, file: Record<string, RawTensor>): void {
  expectTensor(w?.weight, `${name}.weight`, file);
  expectTensor(w?.bias, `${name}.bias`, file);
}

function expectNorm(w: NormWeights, name: string, file: Record<string, RawTensor>, legacy = false): void {
  expectTensor(w.gamma, `${name}.${legacy ? 'gamma' : 'weight'}`, file);
  expectTensor(w.beta, `${name}.${legacy ? 'beta' : 'bias'}`, file);
}

// Where each Hugging Face submodule lands in TransformerLayerWeights.
const ALBERT_LAYER: [keyof TransformerLayerWeights, string][] = [
  ['query', 'attention.query'],
  ['key', 'attention.key'],
  ['value', 'attention.value'],
  ['attentionOutput', 'attention.dense'],
  ['attentionNorm', 'attention.LayerNorm'],
  ['intermediate', 'ffn'],
  ['output', 'ffn_output'],
  ['outputNorm', 'full_layer_layer_norm'],
];
const BERT_LAYER: [keyof TransformerLayerWeights, string][] = [
  ['query', 'attention.self.query'],
  ['key', 'attention.self.key'],
  ['value', 'attention.self.value'],
  ['attentionOutput', 'attention.output.dense'],
  ['attentionNorm', 'attention.output.LayerNorm'],
  ['intermediate', 'intermediate.dense'],
  ['output', 'output.dense'],
  ['outputNorm', 'output.LayerNorm'],
];

function expectLayer(
  layer: TransformerLayerWeights,
  table: [keyof TransformerLayerWeights, string][],
  prefix: string,
  file: Record<string, RawTensor>,
  legacy = false,
): void {
  for (const [slot, module] of table) {
    const w = layer[slot];
    if ('gamma' in w) expectNorm(w, `${prefix}.${module}`, file, legacy);
    else expectLinear(w, `${prefix}.${module}`, file);
  }
}

function checkAlbert(model: EncoderModel, file: Record<string, RawTensor>, p: string, legacy = false): void {
  const w = model.weights;
  expectTensor(w.embeddings.word, `${p}embeddings.word_embeddings.weight`, file);
  expectTensor(w.embeddings.position, `${p}embeddings.position_embeddings.weight`, file);
  expectTensor(w.embeddings.tokenType, `${p}embeddings.token_type_embeddings.weight`, file);
  expectNorm(w.embeddings.norm, `${p}embeddings.LayerNorm`, file, legacy);
  expectLinear(w.embeddingProjection, `${p}encoder.embedding_hidden_mapping_in`, file);
  const { numHiddenGroups: groups, innerGroupNum: inner } = model.config;
  expect(w.layers.length).toBe(groups * inner);
  for (let g = 0; g < groups; g++) {
    for (let j = 0; j < inner; j++) {
      const prefix = `${p}encoder.albert_layer_groups.${g}.albert_layers.${j}`;
      expectLayer(w.layers[g * inner + j]!, ALBERT_LAYER, prefix, file, legacy);
    }
  }
}

function checkBert(model: EncoderModel, file: Record<string, RawTensor>, p: string): void {
  const w = model.weights;
  expectTensor(w.embeddings.word, `${p}embeddings.word_embeddings.weight`, file);
  expectTensor(w.embeddings.position, `${p}embeddings.position_embeddings.weight`, file);
  expectTensor(w.embeddings.tokenType, `${p}embeddings.token_type_embeddings.weight`, file);
  expectNorm(w.embeddings.norm, `${p}embeddings.LayerNorm`, file);
  expect(w.embeddingProjection).toBeUndefined();
  expect(w.layers.length).toBe(model.config.numHiddenLayers);
  w.layers.forEach((layer, i) => expectLayer(layer, BERT_LAYER, `${p}encoder.layer.${i}`, file));
}

describe('parseCheckpoint: ALBERT', () => {
  it('maps AlbertForSequenceClassification names (2 groups × 2 inner layers)', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, { prefix: true, classifier: true });
    const model = parseCheckpoint(albertConfig(TINY_ALBERT), writeSafetensors(tensors).buffer as ArrayBuffer);
    checkAlbert(model, tensors, 'albert.');
    expectLinear(model.weights.pooler, 'albert.pooler', tensors);
    expectLinear(model.weights.classifier, 'classifier', tensors);
    expect(model.config.numLabels).toBe(3);
    expect(model.weights.extra.size).toBe(0);
  });

  it('maps a base AlbertModel saved without prefix or classifier', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, { prefix: false, classifier: false });
    const model = parseCheckpoint(albertConfig(TINY_ALBERT, 'AlbertModel'), writeSafetensors(tensors));
    checkAlbert(model, tensors, '');
    expectLinear(model.weights.pooler, 'pooler', tensors);
    expect(model.weights.classifier).toBeUndefined();
    expect(model.config.numLabels).toBe(0);
    expect(model.config.labels).toEqual([]);
  });

  it('accepts legacy LayerNorm gamma/beta names and ignores an int64 position_ids buffer', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, {
      prefix: true,
      classifier: true,
      legacyNorm: true,
      positionIds: true,
    });
    const model = parseCheckpoint(albertConfig(TINY_ALBERT), writeSafetensors(tensors));
    checkAlbert(model, tensors, 'albert.', true);
    expect(model.weights.extra.size).toBe(0);
  });

  it('keeps tensors it does not use (an MLM head, an exit head) in extra', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, { prefix: true, classifier: false });
    tensors['predictions.bias'] = f32([TINY_ALBERT.vocab], (i) => i);
    tensors['ponder.lambda.weight'] = f32([1, TINY_ALBERT.hidden], (i) => -i);
    const model = parseCheckpoint(albertConfig(TINY_ALBERT, 'AlbertModel'), writeSafetensors(tensors));
    expect([...model.weights.extra.keys()].sort()).toEqual(['ponder.lambda.weight', 'predictions.bias']);
    expectTensor(model.weights.extra.get('ponder.lambda.weight'), 'ponder.lambda.weight', tensors);
  });

  it('converts F16 and BF16 checkpoints to f32', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, { prefix: true, classifier: true });
    // 1.5 is 0x3e00 in f16 and 0x3fc0 in bf16.
    const word = tensors['albert.embeddings.word_embeddings.weight']!;
    const pos = tensors['albert.embeddings.position_embeddings.weight']!;
    const n = word.data.length;
    tensors['albert.embeddings.word_embeddings.weight'] = {
      dtype: 'F16',
      shape: word.shape,
      data: new Uint16Array(n).fill(0x3e00),
    };
    tensors['albert.embeddings.position_embeddings.weight'] = {
      dtype: 'BF16',
      shape: pos.shape,
      data: new Uint16Array(pos.data.length).fill(0x3fc0),
    };
    const model = parseCheckpoint(albertConfig(TINY_ALBERT), writeSafetensors(tensors));
    expect(model.weights.embeddings.word.data.every((v) => v === 1.5)).toBe(true);
    expect(model.weights.embeddings.position.data.every((v) => v === 1.5)).toBe(true);
  });
});

describe('parseCheckpoint: BERT', () => {
  it('maps BertForSequenceClassification names', () => {
    const { tensors } = tinyCheckpoint('bert', TINY_BERT, { prefix: true, classifier: true });
    const model = parseCheckpoint(JSON.stringify(bertConfig(TINY_BERT)), writeSafetensors(tensors));
    checkBert(model, tensors, 'bert.');
    expectLinear(model.weights.pooler, 'bert.pooler.dense', tensors);
    expectLinear(model.weights.classifier, 'classifier', tensors);
    expect(model.weights.extra.size).toBe(0);
  });

  it('maps a base BertModel without prefix, and one without a pooler', () => {
    const { tensors } = tinyCheckpoint('bert', TINY_BERT, { prefix: false, classifier: false });
    const model = parseCheckpoint(bertConfig(TINY_BERT, 'BertModel'), writeSafetensors(tensors));
    checkBert(model, tensors, '');
    expectLinear(model.weights.pooler, 'pooler.dense', tensors);

    delete tensors['pooler.dense.weight'];
    delete tensors['pooler.dense.bias'];
    const noPooler = parseCheckpoint(bertConfig(TINY_BERT, 'BertModel'), writeSafetensors(tensors));
    expect(noPooler.weights.pooler).toBeUndefined();
    expect(noPooler.weights.classifier).toBeUndefined();
  });

  it('decides classifier or base from the weights when config.json names no architecture', () => {
    const json = bertConfig(TINY_BERT);
    delete json.architectures;
    const withHead = tinyCheckpoint('bert', TINY_BERT, { prefix: true, classifier: true }).tensors;
    expect(parseCheckpoint(json, writeSafetensors(withHead)).weights.classifier).toBeDefined();
    const base = tinyCheckpoint('bert', TINY_BERT, { prefix: true, classifier: false }).tensors;
    const model = parseCheckpoint(json, writeSafetensors(base));
    expect(model.weights.classifier).toBeUndefined();
    expect(model.config.numLabels).toBe(0);
  });
});

describe('parseCheckpoint errors', () => {
  it('names a missing tensor', () => {
    const { tensors } = tinyCheckpoint('bert', TINY_BERT, { prefix: true, classifier: true });
    delete tensors['bert.encoder.layer.2.attention.self.key.weight'];
    expectError(
      () => parseCheckpoint(bertConfig(TINY_BERT), writeSafetensors(tensors)),
      'missing-tensor',
      /'bert\.encoder\.layer\.2\.attention\.self\.key\.weight'/,
    );
  });

  it('names a missing classifier of a sequence-classification checkpoint', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, { prefix: true, classifier: false });
    expectError(
      () => parseCheckpoint(albertConfig(TINY_ALBERT), writeSafetensors(tensors)),
      'missing-tensor',
      /'classifier\.weight'/,
    );
  });

  it('fails on a layer group the config needs but the file lacks', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, { prefix: true, classifier: true });
    const config = { ...albertConfig(TINY_ALBERT), num_hidden_groups: 3, num_hidden_layers: 6 };
    expectError(
      () => parseCheckpoint(config, writeSafetensors(tensors)),
      'missing-tensor',
      /albert_layer_groups\.2/,
    );
  });

  it('names a tensor of the wrong shape, with expected and actual shapes', () => {
    const { tensors } = tinyCheckpoint('albert', TINY_ALBERT, { prefix: true, classifier: true });
    tensors['albert.encoder.albert_layer_groups.1.albert_layers.0.ffn.weight'] = f32([12, 7], () => 0);
    expectError(
      () => parseCheckpoint(albertConfig(TINY_ALBERT), writeSafetensors(tensors)),
      'shape-mismatch',
      /albert_layer_groups\.1\.albert_layers\.0\.ffn\.weight/,
      /\[12, 7\]/,
      /expected \[12, 8\]/,
    );
  });

  it('rejects a classifier whose width disagrees with the labels', () => {
    const { tensors } = tinyCheckpoint('bert', TINY_BERT, { prefix: true, classifier: true });
    const config = { ...bertConfig(TINY_BERT), num_labels: 5 };
    expectError(
      () => parseCheckpoint(config, writeSafetensors(tensors)),
      'shape-mismatch',
      /classifier\.weight/,
      /expected \[5, 8\]/,
    );
  });

  it('rejects a config whose sizes do not match the weights', () => {
    const { tensors } = tinyCheckpoint('bert', TINY_BERT, { prefix: true, classifier: true });
    expectError(
      () => parseCheckpoint({ ...bertConfig(TINY_BERT), vocab_size: 14 }, writeSafetensors(tensors)),
      'shape-mismatch',
      /word_embeddings/,
    );
  });

  it('rejects an unknown architecture before reading the weights', () => {
    expectError(
      () => parseCheckpoint({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }, new Uint8Array(3)),
      'unsupported-config',
      /gpt2/,
    );
  });

  it('passes safetensors errors through', () => {
    expectError(() => parseCheckpoint(bertConfig(TINY_BERT), new Uint8Array(4)), 'invalid-safetensors');
  });

  it('names a needed tensor stored with an integer dtype', () => {
    const { tensors } = tinyCheckpoint('bert', TINY_BERT, { prefix: true, classifier: true });
    tensors['classifier.bias'] = { dtype: 'I32', shape: [2], data: new Uint8Array(8) };
    expectError(
      () => parseCheckpoint(bertConfig(TINY_BERT), writeSafetensors(tensors)),
      'invalid-safetensors',
      /'classifier\.bias'/,
      /I32/,
    );
  });
});

// PyTorch-written checkpoints from training/make_goldens.py: the real names, as Hugging Face saves them.
const GOLDEN = join(__dirname, '..', 'fixtures', 'golden');

describe('parseCheckpoint on the PyTorch golden checkpoints', () => {
  const names = existsSync(GOLDEN)
    ? readdirSync(GOLDEN).filter((d) => existsSync(join(GOLDEN, d, 'config.json')))
    : [];

  it('finds the golden fixtures', () => {
    expect(names.length).toBeGreaterThan(0);
  });

  for (const name of names) {
    it(`loads ${name}, using every tensor in the file`, () => {
      const dir = join(GOLDEN, name);
      const config = readFileSync(join(dir, 'config.json'), 'utf8');
      const bytes = readFileSync(join(dir, 'model.safetensors'));
      const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as {
        architecture: string;
        numLayers: number;
        numLabels: number;
      };
      const model = parseCheckpoint(config, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      expect(model.config.architecture).toBe(golden.architecture);
      expect(model.config.numHiddenLayers).toBe(golden.numLayers);
      expect(model.config.numLabels).toBe(golden.numLabels);
      expect(model.weights.classifier!.weight.shape).toEqual([golden.numLabels, model.config.hiddenSize]);
      expect(model.weights.layers.length).toBe(model.config.numHiddenGroups * model.config.innerGroupNum);
      expect([...model.weights.extra.keys()]).toEqual([]);
      // Random-init weights: finite and not all zero (a wrong offset would give garbage or zeros).
      for (const layer of model.weights.layers) {
        const q = layer.query.weight.data;
        expect(q.every(Number.isFinite)).toBe(true);
        expect(q.some((v) => v !== 0)).toBe(true);
      }
    });
  }
});
