/**
 * Test helpers: a small safetensors writer (independent of the reader under test) and tiny
 * synthetic ALBERT / BERT checkpoints whose every tensor carries a distinct marker value.
 */

export interface RawTensor {
  dtype: string;
  shape: number[];
  /** F32 as floats; F16/BF16 as raw 16-bit patterns; anything else as raw bytes. */
  data: Float32Array | Uint16Array | Uint8Array;
}

function toBytes(data: RawTensor['data']): Uint8Array {
  // Typed arrays are little-endian on every platform the tests run on (x86, ARM).
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}

/** Builds a safetensors file from a JSON header (object or literal text) and a data section. */
export function rawSafetensors(header: object | string, data: Uint8Array, headerLength?: number): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** Writes tensors in order, back to back, the way the Python library does. */
export function writeSafetensors(
  tensors: Record<string, RawTensor>,
  metadata?: Record<string, string>,
  /** Pad the header with spaces to this multiple (8 in the Python library; 1 tests unaligned data). */
  align = 8,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = toBytes(t.data);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let text = JSON.stringify(header);
  while ((8 + new TextEncoder().encode(text).byteLength) % align !== 0) text += ' ';
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.byteLength;
  }
  return rawSafetensors(text, data);
}

export function f32(shape: number[], fill: (i: number) => number): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, data: Float32Array.from({ length: n }, (_, i) => fill(i)) };
}

export interface TinySpec {
  vocab: number;
  embedding: number;
  hidden: number;
  heads: number;
  intermediate: number;
  layers: number;
  groups: number;
  inner: number;
  maxPos: number;
  typeVocab: number;
  labels: number;
}

export const TINY_ALBERT: TinySpec = {
  vocab: 11,
  embedding: 6,
  hidden: 8,
  heads: 2,
  intermediate: 12,
  layers: 4,
  groups: 2,
  inner: 2,
  maxPos: 9,
  typeVocab: 2,
  labels: 3,
};

export const TINY_BERT: TinySpec = {
  vocab: 13,
  embedding: 8,
  hidden: 8,
  heads: 2,
  intermediate: 10,
  layers: 3,
  groups: 3,
  inner: 1,
  maxPos: 7,
  typeVocab: 3,
  labels: 2,
};

export function albertConfig(
  s: TinySpec,
  architecture = 'AlbertForSequenceClassification',
): Record<string, unknown> {
  return {
    architectures: [architecture],
    model_type: 'albert',
    vocab_size: s.vocab,
    embedding_size: s.embedding,
    hidden_size: s.hidden,
    num_attention_heads: s.heads,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_hidden_groups: s.groups,
    inner_group_num: s.inner,
    max_position_embeddings: s.maxPos,
    type_vocab_size: s.typeVocab,
    hidden_act: 'gelu_new',
    layer_norm_eps: 1e-12,
    id2label: Object.fromEntries(Array.from({ length: s.labels }, (_, i) => [String(i), `class_${i}`])),
    label2id: Object.fromEntries(Array.from({ length: s.labels }, (_, i) => [`class_${i}`, i])),
  };
}

export function bertConfig(
  s: TinySpec,
  architecture = 'BertForSequenceClassification',
): Record<string, unknown> {
  return {
    architectures: [architecture],
    model_type: 'bert',
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    num_attention_heads: s.heads,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    max_position_embeddings: s.maxPos,
    type_vocab_size: s.typeVocab,
    hidden_act: 'gelu',
    layer_norm_eps: 1e-12,
    position_embedding_type: 'absolute',
    num_labels: s.labels,
  };
}

/**
 * The tensors of a Hugging Face checkpoint, written out by module path as PyTorch's state_dict names
 * them. Each tensor is filled with marker + i * 1e-3, so a test can tell which tensor landed where.
 */
export function tinyCheckpoint(
  arch: 'albert' | 'bert',
  s: TinySpec,
  options: { prefix: boolean; classifier: boolean; legacyNorm?: boolean; positionIds?: boolean },
): { tensors: Record<string, RawTensor>; markers: Map<string, number> } {
  const shapes: [string, number[]][] = [];
  const p = options.prefix ? `${arch}.` : '';
  const [g, b] = options.legacyNorm ? ['gamma', 'beta'] : ['weight', 'bias'];
  const linear = (name: string, out: number, inp: number) => {
    shapes.push([`${name}.weight`, [out, inp]], [`${name}.bias`, [out]]);
  };
  const norm = (name: string, width: number) => {
    shapes.push([`${name}.${g}`, [width]], [`${name}.${b}`, [width]]);
  };
  const e = arch === 'albert' ? s.embedding : s.hidden;
  shapes.push([`${p}embeddings.word_embeddings.weight`, [s.vocab, e]]);
  shapes.push([`${p}embeddings.position_embeddings.weight`, [s.maxPos, e]]);
  shapes.push([`${p}embeddings.token_type_embeddings.weight`, [s.typeVocab, e]]);
  norm(`${p}embeddings.LayerNorm`, e);
  if (arch === 'albert') {
    linear(`${p}encoder.embedding_hidden_mapping_in`, s.hidden, s.embedding);
    for (let gi = 0; gi < s.groups; gi++) {
      for (let j = 0; j < s.inner; j++) {
        const q = `${p}encoder.albert_layer_groups.${gi}.albert_layers.${j}`;
        norm(`${q}.full_layer_layer_norm`, s.hidden);
        linear(`${q}.attention.query`, s.hidden, s.hidden);
        linear(`${q}.attention.key`, s.hidden, s.hidden);
        linear(`${q}.attention.value`, s.hidden, s.hidden);
        linear(`${q}.attention.dense`, s.hidden, s.hidden);
        norm(`${q}.attention.LayerNorm`, s.hidden);
        linear(`${q}.ffn`, s.intermediate, s.hidden);
        linear(`${q}.ffn_output`, s.hidden, s.intermediate);
      }
    }
    linear(`${p}pooler`, s.hidden, s.hidden);
  } else {
    for (let l = 0; l < s.layers; l++) {
      const q = `${p}encoder.layer.${l}`;
      linear(`${q}.attention.self.query`, s.hidden, s.hidden);
      linear(`${q}.attention.self.key`, s.hidden, s.hidden);
      linear(`${q}.attention.self.value`, s.hidden, s.hidden);
      linear(`${q}.attention.output.dense`, s.hidden, s.hidden);
      norm(`${q}.attention.output.LayerNorm`, s.hidden);
      linear(`${q}.intermediate.dense`, s.intermediate, s.hidden);
      linear(`${q}.output.dense`, s.hidden, s.intermediate);
      norm(`${q}.output.LayerNorm`, s.hidden);
    }
    linear(`${p}pooler.dense`, s.hidden, s.hidden);
  }
  if (options.classifier) linear('classifier', s.labels, s.hidden);

  const tensors: Record<string, RawTensor> = {};
  const markers = new Map<string, number>();
  shapes.forEach(([name, shape], index) => {
    const marker = index + 1;
    markers.set(name, marker);
    tensors[name] = f32(shape, (i) => marker + i * 1e-3);
  });
  if (options.positionIds) {
    // PyTorch's int64 position_ids buffer, as older checkpoints carry it.
    const ids = new BigInt64Array(s.maxPos).map((_, i) => BigInt(i));
    tensors[`${p}embeddings.position_ids`] = {
      dtype: 'I64',
      shape: [1, s.maxPos],
      data: new Uint8Array(ids.buffer),
    };
  }
  return { tensors, markers };
}
