/**
 * ONNX export of an ALBERT or BERT sequence classifier straight from our parsed checkpoint
 * (`parseCheckpoint` → EncoderModel), so the baselines (onnxruntime-web, transformers.js) run the
 * same network as ponder-web without a Python round trip. training/export_onnx.py is the
 * torch.onnx.export equivalent for the GPU machine.
 *
 * The graph is what Hugging Face's eager modules compute, in plain opset-17 operators:
 *   Gather word/type embeddings + Slice positions → LayerNormalization → [ALBERT: MatMul E→H]
 *   per layer: MatMul Q,K,V (weights stored transposed, [in, out]) → Reshape/Transpose to heads →
 *     MatMul QKᵀ · 1/√d + additive mask → Softmax → MatMul V → out dense → Add + LayerNormalization →
 *     FFN (Erf GELU, Tanh GELU or Relu) → dense → Add + LayerNormalization
 *   pooler: Gather [CLS] → MatMul → Tanh; classifier: MatMul → `logits` [batch, num_labels].
 * ALBERT's shared layers reuse one set of initializers. Inputs are int64 `input_ids`,
 * `attention_mask`, `token_type_ids` [batch, sequence] (dynamic axes), as transformers.js feeds them.
 * LayerNorm can also be spelled out in primitives (ReduceMean, Sub, Pow, Sqrt, Div) for runtimes
 * without LayerNormalization.
 */
import { layerSchedule, type EncoderModel, type LinearWeights, type Tensor } from '../../src/model/types';
import { DataType, encodeModel, type NodeSpec, type TensorValue } from './protobuf';

export interface ExportOptions {
  /** 'op': LayerNormalization (opset 17); 'primitives': its arithmetic, for older runtimes. */
  layerNorm?: 'op' | 'primitives';
  /** Opset to declare (≥ 17 with layerNorm 'op', ≥ 15 otherwise). */
  opset?: number;
}

/** Large negative added to masked attention scores; exp() of it is exactly 0 in f32. */
const MASK_VALUE = -1e9;

export function exportOnnx(model: EncoderModel, options: ExportOptions = {}): Uint8Array {
  const layerNorm = options.layerNorm ?? 'op';
  const opset = options.opset ?? (layerNorm === 'op' ? 17 : 15);
  if (layerNorm === 'op' && opset < 17) throw new Error('LayerNormalization needs opset ≥ 17');
  if (opset < 15) throw new Error('the export needs opset ≥ 15 (Shape with start/end)');
  const { config, weights } = model;
  if (!weights.classifier || !weights.pooler || config.numLabels < 1) {
    throw new Error('the ONNX export needs a sequence-classification checkpoint (pooler and classifier)');
  }

  const nodes: NodeSpec[] = [];
  const initializers: TensorValue[] = [];
  const named = new Set<string>();
  let counter = 0;
  const fresh = (hint: string): string => `${hint}_${counter++}`;

  /** One graph node with a single output; returns the output's name. */
  const op = (
    opType: string,
    inputs: string[],
    attrs?: NodeSpec['attrs'],
    floatAttrs?: string[],
    hint = opType,
  ): string => {
    const out = fresh(hint);
    const node: NodeSpec = { op: opType, inputs, outputs: [out], name: `${opType}_${counter}` };
    if (attrs) node.attrs = attrs;
    if (floatAttrs) node.floatAttrs = floatAttrs;
    nodes.push(node);
    return out;
  };
  const init = (name: string, dims: number[], data: Float32Array | BigInt64Array): string => {
    if (!named.has(name)) {
      named.add(name);
      initializers.push({ name, dims, data });
    }
    return name;
  };
  const f32 = (name: string, t: Tensor): string => init(name, t.shape, t.data);
  const scalar = (name: string, v: number): string => init(name, [], Float32Array.of(v));
  const ints = (name: string, values: number[]): string =>
    init(name, [values.length], BigInt64Array.from(values.map(BigInt)));

  /** nn.Linear weight [out, in] → [in, out], so that MatMul(x, W) is x·Wᵀ. */
  const transposed = (name: string, w: Tensor): string => {
    if (named.has(name)) return name;
    const [out, inp] = w.shape as [number, number];
    const t = new Float32Array(out * inp);
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = w.data[o * inp + i]!;
    return init(name, [inp, out], t);
  };
  const dense = (x: string, w: LinearWeights, name: string): string =>
    op('Add', [op('MatMul', [x, transposed(`${name}.weight_t`, w.weight)]), f32(`${name}.bias`, w.bias)]);

  const eps = config.layerNormEps;
  const norm = (x: string, gamma: Tensor, beta: Tensor, name: string): string => {
    const g = f32(`${name}.weight`, gamma);
    const b = f32(`${name}.bias`, beta);
    if (layerNorm === 'op') {
      return op('LayerNormalization', [x, g, b], { axis: -1, epsilon: eps }, ['epsilon']);
    }
    // opset 18 moved ReduceMean's axes to an input; before it they are an attribute.
    const mean = (t: string): string =>
      opset >= 18
        ? op('ReduceMean', [t, ints('const.axes_last', [-1])], { keepdims: 1 })
        : op('ReduceMean', [t], { axes: [-1] });
    const centered = op('Sub', [x, mean(x)]);
    const variance = mean(op('Pow', [centered, scalar('const.two', 2)]));
    const std = op('Sqrt', [op('Add', [variance, scalar(`const.eps`, eps)])]);
    return op('Add', [op('Mul', [op('Div', [centered, std]), g]), b]);
  };

  const activation = (x: string): string => {
    switch (config.hiddenAct) {
      case 'relu':
        return op('Relu', [x]);
      case 'gelu': {
        // x · ½ · (1 + erf(x / √2)), as torch's exact GELU.
        const erf = op('Erf', [op('Div', [x, scalar('const.sqrt2', Math.SQRT2)])]);
        return op('Mul', [
          op('Mul', [x, scalar('const.half', 0.5)]),
          op('Add', [erf, scalar('const.one', 1)]),
        ]);
      }
      case 'gelu_new': {
        // ½ · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))).
        const cube = op('Pow', [x, scalar('const.three', 3)]);
        const inner = op('Add', [x, op('Mul', [cube, scalar('const.gelu_c', 0.044715)])]);
        const t = op('Tanh', [op('Mul', [inner, scalar('const.sqrt_2_over_pi', Math.sqrt(2 / Math.PI))])]);
        return op('Mul', [op('Mul', [x, scalar('const.half', 0.5)]), op('Add', [t, scalar('const.one', 1)])]);
      }
    }
  };

  const { hiddenSize: H, numAttentionHeads: heads } = config;
  const headDim = H / heads;

  // Embeddings: positions 0..S−1 are a Slice of the table up to the input's sequence length.
  const emb = weights.embeddings;
  const seqLen = op('Shape', ['input_ids'], { start: 1, end: 2 }, undefined, 'seq_len');
  const positions = op('Slice', [
    f32('embeddings.position_embeddings.weight', emb.position),
    ints('const.zero_1d', [0]),
    seqLen,
    ints('const.axis0', [0]),
  ]);
  const words = op('Gather', [f32('embeddings.word_embeddings.weight', emb.word), 'input_ids'], { axis: 0 });
  const types = op(
    'Gather',
    [f32('embeddings.token_type_embeddings.weight', emb.tokenType), 'token_type_ids'],
    {
      axis: 0,
    },
  );
  let x = norm(
    op('Add', [op('Add', [words, types]), positions]),
    emb.norm.gamma,
    emb.norm.beta,
    'embeddings.LayerNorm',
  );
  if (weights.embeddingProjection) x = dense(x, weights.embeddingProjection, 'embedding_hidden_mapping_in');

  // Additive mask [batch, 1, 1, S]: 0 where attended, MASK_VALUE where padded.
  const maskF = op('Cast', ['attention_mask'], { to: DataType.FLOAT });
  const maskAdd = op('Mul', [
    op('Sub', [scalar('const.one', 1), maskF]),
    scalar('const.mask_value', MASK_VALUE),
  ]);
  const mask4 = op('Unsqueeze', [maskAdd, ints('const.axes_1_2', [1, 2])]);
  const headsShape = ints('const.heads_shape', [0, 0, heads, headDim]);
  const hiddenShape = ints('const.hidden_shape', [0, 0, H]);
  const invSqrt = scalar('const.inv_sqrt_head_dim', 1 / Math.sqrt(headDim));

  const layerPrefix = (i: number): string =>
    config.architecture === 'bert' ? `encoder.layer.${i}` : `albert_layer.${i}`;
  for (const distinctLayers of layerSchedule(config)) {
    for (const li of distinctLayers) {
      const p = layerPrefix(li);
      const w = weights.layers[li]!;
      const split = (t: string, perm: number[]): string =>
        op('Transpose', [op('Reshape', [t, headsShape])], { perm });
      const q = split(dense(x, w.query, `${p}.query`), [0, 2, 1, 3]);
      const k = split(dense(x, w.key, `${p}.key`), [0, 2, 3, 1]);
      const v = split(dense(x, w.value, `${p}.value`), [0, 2, 1, 3]);
      const scores = op('Add', [op('Mul', [op('MatMul', [q, k]), invSqrt]), mask4]);
      const probs = op('Softmax', [scores], { axis: -1 });
      const context = op('Reshape', [
        op('Transpose', [op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }),
        hiddenShape,
      ]);
      const attended = dense(context, w.attentionOutput, `${p}.attention.output`);
      const x1 = norm(
        op('Add', [attended, x]),
        w.attentionNorm.gamma,
        w.attentionNorm.beta,
        `${p}.attention.LayerNorm`,
      );
      const inner = activation(dense(x1, w.intermediate, `${p}.intermediate`));
      const out = dense(inner, w.output, `${p}.output`);
      x = norm(op('Add', [out, x1]), w.outputNorm.gamma, w.outputNorm.beta, `${p}.output.LayerNorm`);
    }
  }

  const cls = op('Gather', [x, ints('const.zero_1d', [0])], { axis: 1 }); // [B, 1, H]
  const first = op('Reshape', [cls, ints('const.bh_shape', [0, H])]);
  const pooled = op('Tanh', [dense(first, weights.pooler, 'pooler')]);
  const logits = dense(pooled, weights.classifier, 'classifier');
  nodes.push({ op: 'Identity', inputs: [logits], outputs: ['logits'], name: 'logits' });

  const tokens = (name: string) => ({
    name,
    elemType: DataType.INT64,
    dims: ['batch_size', 'sequence_length'],
  });
  return encodeModel({
    irVersion: 8,
    opset,
    producer: 'ponder-web bench/onnx/export.ts',
    producerVersion: '1',
    graphName: `${config.architecture}-sequence-classification`,
    docString: `${config.architecture} H=${H} L=${config.numHiddenLayers} heads=${heads}; exported from safetensors`,
    nodes,
    initializers,
    inputs: [tokens('input_ids'), tokens('attention_mask'), tokens('token_type_ids')],
    outputs: [{ name: 'logits', elemType: DataType.FLOAT, dims: ['batch_size', config.numLabels] }],
  });
}
