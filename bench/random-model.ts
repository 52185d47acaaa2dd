/**
 * Seeded random-weight checkpoints in Hugging Face layout (config.json + model.safetensors), for
 * benchmarking at a real model's shape without shipping its weights: ALBERT-base (E 128, H 768,
 * 12 heads, intermediate 3072, 12 layers sharing one, 30k vocabulary) is ~47 MB of f32, generated in
 * about a second and written only to an ignored cache folder.
 */
import { rng } from './common';

export interface RandomAlbertShape {
  vocabSize: number;
  embeddingSize: number;
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  numLayers: number;
  maxPositions: number;
  numLabels: number;
}

export const ALBERT_BASE: RandomAlbertShape = {
  vocabSize: 30000,
  embeddingSize: 128,
  hiddenSize: 768,
  numHeads: 12,
  intermediateSize: 3072,
  numLayers: 12,
  maxPositions: 512,
  numLabels: 2,
};

/** Normal(0, std) draws by Box–Muller over the seeded uniform stream. */
function normal(next: () => number, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(next(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    const t = 2 * Math.PI * next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

export function encodeSafetensors(tensors: [string, number[], Float32Array][]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so that the data starts 8-byte aligned (lets readers use f32 views).
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, , data] of tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** An AlbertForSequenceClassification checkpoint with N(0, 0.02) weights (BERT's init), seeded. */
export function randomAlbert(
  shape: RandomAlbertShape,
  seed: number,
): { config: Record<string, unknown>; safetensors: Uint8Array; params: number } {
  const { vocabSize: V, embeddingSize: E, hiddenSize: H, intermediateSize: I, numLabels: C } = shape;
  const next = rng(seed);
  const std = 0.02;
  const tensors: [string, number[], Float32Array][] = [];
  const add = (name: string, dims: number[], fill?: number): void => {
    const n = dims.reduce((a, b) => a * b, 1);
    tensors.push([name, dims, fill === undefined ? normal(next, n, std) : new Float32Array(n).fill(fill)]);
  };
  const linear = (name: string, out: number, inp: number): void => {
    add(`${name}.weight`, [out, inp]);
    add(`${name}.bias`, [out], 0);
  };
  const norm = (name: string, width: number): void => {
    add(`${name}.weight`, [width], 1);
    add(`${name}.bias`, [width], 0);
  };
  add('albert.embeddings.word_embeddings.weight', [V, E]);
  add('albert.embeddings.position_embeddings.weight', [shape.maxPositions, E]);
  add('albert.embeddings.token_type_embeddings.weight', [2, E]);
  norm('albert.embeddings.LayerNorm', E);
  linear('albert.encoder.embedding_hidden_mapping_in', H, E);
  const p = 'albert.encoder.albert_layer_groups.0.albert_layers.0';
  for (const n of ['query', 'key', 'value', 'dense']) linear(`${p}.attention.${n}`, H, H);
  norm(`${p}.attention.LayerNorm`, H);
  linear(`${p}.ffn`, I, H);
  linear(`${p}.ffn_output`, H, I);
  norm(`${p}.full_layer_layer_norm`, H);
  linear('albert.pooler', H, H);
  linear('classifier', C, H);
  const config = {
    architectures: ['AlbertForSequenceClassification'],
    model_type: 'albert',
    vocab_size: V,
    embedding_size: E,
    hidden_size: H,
    num_attention_heads: shape.numHeads,
    intermediate_size: I,
    num_hidden_layers: shape.numLayers,
    num_hidden_groups: 1,
    inner_group_num: 1,
    hidden_act: 'gelu_new',
    max_position_embeddings: shape.maxPositions,
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    num_labels: C,
    id2label: Object.fromEntries(Array.from({ length: C }, (_, i) => [String(i), `LABEL_${i}`])),
    label2id: Object.fromEntries(Array.from({ length: C }, (_, i) => [`LABEL_${i}`, i])),
    pad_token_id: 0,
    bench_note: `random N(0, ${std}) weights, seed ${seed}: for timing only`,
  };
  const params = tensors.reduce((n, [, , d]) => n + d.length, 0);
  return { config, safetensors: encodeSafetensors(tensors), params };
}
