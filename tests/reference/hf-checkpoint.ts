/**
 * Test-only stand-in for the loader (src/loading) while it is being written: F32 safetensors and the
 * Hugging Face names of AlbertForSequenceClassification / BertForSequenceClassification, with no
 * validation beyond what the golden fixtures need. Replace with `parseCheckpoint` once it is exported.
 */
import type {
  EncoderConfig,
  EncoderModel,
  EncoderWeights,
  LinearWeights,
  NormWeights,
  Tensor,
  TransformerLayerWeights,
} from '../../src/model/types';

function readF32Safetensors(bytes: Uint8Array): Map<string, Tensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  const tensors = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (entry.dtype !== 'F32')
      throw new Error(`${name}: dtype ${entry.dtype}, this test adapter reads F32 only`);
    const [start, end] = entry.data_offsets;
    const data = new Float32Array((end - start) / 4);
    const src = new DataView(bytes.buffer, bytes.byteOffset + base + start, end - start);
    for (let i = 0; i < data.length; i++) data[i] = src.getFloat32(4 * i, true);
    tensors.set(name, { shape: entry.shape, data });
  }
  return tensors;
}

export function adaptHfCheckpoint(configText: string, weightBytes: Uint8Array): EncoderModel {
  const json = JSON.parse(configText) as Record<string, unknown>;
  const architecture = json.model_type === 'albert' ? 'albert' : 'bert';
  const num = (key: string, fallback?: number): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== 'number') throw new Error(`config.json: ${key} missing`);
    return v;
  };
  const id2label = json.id2label as Record<string, string> | undefined;
  // transformers 5 omits id2label when it is the default LABEL_0, LABEL_1.
  const labels = id2label
    ? Object.keys(id2label)
        .sort((a, b) => Number(a) - Number(b))
        .map((k) => id2label[k]!)
    : ['LABEL_0', 'LABEL_1'];
  const layersCount = num('num_hidden_layers');
  const config: EncoderConfig = {
    architecture,
    vocabSize: num('vocab_size'),
    embeddingSize: architecture === 'albert' ? num('embedding_size') : num('hidden_size'),
    hiddenSize: num('hidden_size'),
    numHiddenLayers: layersCount,
    numAttentionHeads: num('num_attention_heads'),
    intermediateSize: num('intermediate_size'),
    hiddenAct: json.hidden_act as EncoderConfig['hiddenAct'],
    layerNormEps: num('layer_norm_eps'),
    maxPositionEmbeddings: num('max_position_embeddings'),
    typeVocabSize: num('type_vocab_size'),
    numHiddenGroups: architecture === 'albert' ? num('num_hidden_groups', 1) : layersCount,
    innerGroupNum: architecture === 'albert' ? num('inner_group_num', 1) : 1,
    numLabels: labels.length,
    labels,
    problemType: labels.length === 1 ? 'regression' : 'single_label_classification',
  };

  const tensors = readF32Safetensors(weightBytes);
  const t = (name: string): Tensor => {
    const tensor = tensors.get(name);
    if (!tensor) throw new Error(`model.safetensors: ${name} missing`);
    return tensor;
  };
  const lin = (prefix: string): LinearWeights => ({
    weight: t(`${prefix}.weight`),
    bias: t(`${prefix}.bias`),
  });
  const norm = (prefix: string): NormWeights => ({ gamma: t(`${prefix}.weight`), beta: t(`${prefix}.bias`) });
  const p = `${architecture}.`;

  const layers: TransformerLayerWeights[] = [];
  if (architecture === 'albert') {
    for (let g = 0; g < config.numHiddenGroups; g++) {
      for (let i = 0; i < config.innerGroupNum; i++) {
        const l = `${p}encoder.albert_layer_groups.${g}.albert_layers.${i}`;
        layers.push({
          query: lin(`${l}.attention.query`),
          key: lin(`${l}.attention.key`),
          value: lin(`${l}.attention.value`),
          attentionOutput: lin(`${l}.attention.dense`),
          attentionNorm: norm(`${l}.attention.LayerNorm`),
          intermediate: lin(`${l}.ffn`),
          output: lin(`${l}.ffn_output`),
          outputNorm: norm(`${l}.full_layer_layer_norm`),
        });
      }
    }
  } else {
    for (let i = 0; i < layersCount; i++) {
      const l = `${p}encoder.layer.${i}`;
      layers.push({
        query: lin(`${l}.attention.self.query`),
        key: lin(`${l}.attention.self.key`),
        value: lin(`${l}.attention.self.value`),
        attentionOutput: lin(`${l}.attention.output.dense`),
        attentionNorm: norm(`${l}.attention.output.LayerNorm`),
        intermediate: lin(`${l}.intermediate.dense`),
        output: lin(`${l}.output.dense`),
        outputNorm: norm(`${l}.output.LayerNorm`),
      });
    }
  }
  const weights: EncoderWeights = {
    embeddings: {
      word: t(`${p}embeddings.word_embeddings.weight`),
      position: t(`${p}embeddings.position_embeddings.weight`),
      tokenType: t(`${p}embeddings.token_type_embeddings.weight`),
      norm: norm(`${p}embeddings.LayerNorm`),
    },
    layers,
    pooler: lin(architecture === 'albert' ? `${p}pooler` : `${p}pooler.dense`),
    classifier: lin('classifier'),
    extra: new Map(),
  };
  if (architecture === 'albert') weights.embeddingProjection = lin(`${p}encoder.embedding_hidden_mapping_in`);
  return { config, weights };
}
