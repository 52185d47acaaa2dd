/**
 * The whole encoder forward on the CPU, built only from the reference ops in ./ops.ts, used by tests
 * as the ground truth the WGSL engine is compared against (and itself checked against PyTorch's
 * goldens in forward.test.ts). Clarity over speed: one plain pass, no buffers reused.
 *
 * Per-layer results follow PALBERT's shared head: after each of the numHiddenLayers outputs, the
 * model's own pooler (tanh dense on the [CLS] row) and classifier give that layer's logits.
 */
import { PonderError } from '../../src/errors';
import {
  layerSchedule,
  type EncoderModel,
  type LinearWeights,
  type TransformerLayerWeights,
} from '../../src/model/types';
import { addLayerNorm, attention, embed, linear } from './ops';

export interface ForwardInput {
  /** [batch · seqLen] row-major token ids, right-padded. */
  inputIds: ArrayLike<number>;
  /** [batch · seqLen] segment ids (0 where absent). */
  tokenTypeIds: ArrayLike<number>;
  /** [batch · seqLen], 1 for real tokens and 0 for padding. */
  attentionMask: ArrayLike<number>;
  batch: number;
  seqLen: number;
}

export interface ForwardResult {
  /** One per layer (numHiddenLayers), each [batch, numLabels]; empty for a model without a classifier. */
  perLayerLogits: Float32Array[];
  /** One per layer, each [batch, hiddenSize]: tanh(pooler(hidden[b, 0])); empty without a pooler. */
  perLayerPooled: Float32Array[];
  /** The last layer's hidden states, [batch · seqLen, hiddenSize]. */
  lastHidden: Float32Array;
}

/** Q, K and V weights concatenated into one [3H, H] linear, as the engine packs them. */
const packedQkv = new WeakMap<TransformerLayerWeights, { weight: Float32Array; bias: Float32Array }>();

function qkvWeights(layer: TransformerLayerWeights): { weight: Float32Array; bias: Float32Array } {
  let packed = packedQkv.get(layer);
  if (!packed) {
    const parts = [layer.query, layer.key, layer.value];
    const weight = new Float32Array(parts.reduce((n, p) => n + p.weight.data.length, 0));
    const bias = new Float32Array(parts.reduce((n, p) => n + p.bias.data.length, 0));
    let wo = 0;
    let bo = 0;
    for (const p of parts) {
      weight.set(p.weight.data, wo);
      bias.set(p.bias.data, bo);
      wo += p.weight.data.length;
      bo += p.bias.data.length;
    }
    packed = { weight, bias };
    packedQkv.set(layer, packed);
  }
  return packed;
}

function dense(
  x: Float32Array,
  w: LinearWeights,
  rows: number,
  activation: Parameters<typeof linear>[6] = 'none',
  rowStride?: number,
): Float32Array {
  const [out, inp] = w.weight.shape as [number, number];
  return linear(x, w.weight.data, w.bias.data, rows, out, inp, activation, rowStride ?? inp);
}

function checkInput(model: EncoderModel, input: ForwardInput): void {
  const { config } = model;
  const { batch, seqLen } = input;
  const bad = (message: string): never => {
    throw new PonderError('invalid-input', message);
  };
  if (!Number.isInteger(batch) || batch < 1) bad(`batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(seqLen) || seqLen < 1) bad(`seqLen must be a positive integer, got ${seqLen}`);
  if (seqLen > config.maxPositionEmbeddings) {
    bad(`seqLen ${seqLen} exceeds max_position_embeddings ${config.maxPositionEmbeddings}`);
  }
  const n = batch * seqLen;
  for (const [name, arr, limit] of [
    ['inputIds', input.inputIds, config.vocabSize],
    ['tokenTypeIds', input.tokenTypeIds, config.typeVocabSize],
    ['attentionMask', input.attentionMask, 2],
  ] as const) {
    if (arr.length !== n) bad(`${name} has ${arr.length} entries, expected batch·seqLen = ${n}`);
    for (let i = 0; i < n; i++) {
      const v = arr[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= limit) bad(`${name}[${i}] = ${v} is outside [0, ${limit})`);
    }
  }
}

function transformerLayer(
  x: Float32Array,
  layer: TransformerLayerWeights,
  model: EncoderModel,
  input: ForwardInput,
): Float32Array {
  const {
    hiddenSize: H,
    numAttentionHeads: heads,
    intermediateSize: I,
    layerNormEps: eps,
    hiddenAct,
  } = model.config;
  const rows = input.batch * input.seqLen;
  const qkv = qkvWeights(layer);
  const packed = linear(x, qkv.weight, qkv.bias, rows, 3 * H, H);
  const context = attention(packed, input.attentionMask, input.batch, input.seqLen, heads, H / heads);
  const attended = dense(context, layer.attentionOutput, rows);
  const x1 = addLayerNorm(
    attended,
    x,
    layer.attentionNorm.gamma.data,
    layer.attentionNorm.beta.data,
    rows,
    H,
    eps,
  );
  const inner = linear(
    x1,
    layer.intermediate.weight.data,
    layer.intermediate.bias.data,
    rows,
    I,
    H,
    hiddenAct,
  );
  const out = dense(inner, layer.output, rows);
  return addLayerNorm(out, x1, layer.outputNorm.gamma.data, layer.outputNorm.beta.data, rows, H, eps);
}

export function referenceForward(model: EncoderModel, input: ForwardInput): ForwardResult {
  checkInput(model, input);
  const { config, weights } = model;
  const { batch, seqLen } = input;
  const rows = batch * seqLen;
  const H = config.hiddenSize;
  const emb = weights.embeddings;
  let x = embed(
    input.inputIds,
    input.tokenTypeIds,
    emb.word.data,
    emb.position.data,
    emb.tokenType.data,
    emb.norm.gamma.data,
    emb.norm.beta.data,
    rows,
    seqLen,
    config.embeddingSize,
    config.layerNormEps,
  );
  if (weights.embeddingProjection) x = dense(x, weights.embeddingProjection, rows);

  const perLayerLogits: Float32Array[] = [];
  const perLayerPooled: Float32Array[] = [];
  for (const step of layerSchedule(config)) {
    for (const index of step) {
      const layer = weights.layers[index];
      if (!layer) throw new PonderError('missing-tensor', `layer ${index} of the schedule is missing`);
      x = transformerLayer(x, layer, model, input);
    }
    if (weights.pooler) {
      // Row stride seqLen·H picks each example's [CLS] row (position 0) out of the hidden states.
      const pooled = dense(x, weights.pooler, batch, 'tanh', seqLen * H);
      perLayerPooled.push(pooled);
      if (weights.classifier) perLayerLogits.push(dense(pooled, weights.classifier, batch));
    }
  }
  return { perLayerLogits, perLayerPooled, lastHidden: x };
}

/** The exit heads' outputs per layer (docs/checkpoint-format.md), computed in f64 from the forward. */
export interface ReferenceExitHeads {
  /** The shared head's probabilities (softmax; sigmoid for multi-label; [] for regression), [L][batch][C]. */
  probs: number[][][];
  /** λ_n, [L][batch]; absent without a λ head. */
  lambdas?: number[][];
  /** Per-layer heads' logits and probabilities, [L][batch][C]. */
  headLogits?: number[][][];
  headProbs?: number[][][];
  /** g_n, [L][batch]; NaN at a layer without a gate. */
  gates?: number[][];
}

function softmax64(row: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  const e = Array.from(row, (x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

function entropy64(p: number[]): number {
  return -p.reduce((s, x) => (x > 0 ? s + x * Math.log(x) : s), 0);
}

/** JEI-DNN gate features of one probability row: max p, H(p), p_(1) − p_(2), H(p² / Σp²). */
export function gateFeatures(p: number[]): [number, number, number, number] {
  const sorted = [...p].sort((a, b) => b - a);
  const sq = p.reduce((s, x) => s + x * x, 0);
  return [sorted[0]!, entropy64(p), sorted[0]! - (sorted[1] ?? 0), entropy64(p.map((x) => (x * x) / sq))];
}

const sigmoid64 = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * λ (the MLP on [z_n ; z_{n−1}] or z_n), the per-layer heads and the gates, from a referenceForward
 * result. The gate reads the per-layer head's probabilities when the model has per-layer heads, else
 * the shared head's.
 */
export function referenceExitHeads(
  model: EncoderModel,
  forward: ForwardResult,
  batch: number,
): ReferenceExitHeads {
  const { config, weights } = model;
  const L = config.numHiddenLayers;
  const C = config.numLabels;
  const H = config.hiddenSize;
  const regression = config.problemType === 'regression';
  const toProbs = (row: ArrayLike<number>) =>
    regression
      ? []
      : config.problemType === 'multi_label_classification'
        ? Array.from(row, sigmoid64)
        : softmax64(row);
  const rows = (flat: Float32Array, width: number) =>
    Array.from({ length: batch }, (_, b) => Array.from(flat.subarray(b * width, (b + 1) * width)));
  const out: ReferenceExitHeads = {
    probs: forward.perLayerLogits.map((l) => rows(l, C).map(toProbs)),
  };
  const heads = weights.exitHeads;
  if (!heads) return out;
  if (heads.lambda) {
    const mlp = heads.lambda;
    out.lambdas = forward.perLayerPooled.map((z, n) => {
      let u: Float32Array = z;
      if (mlp[0]!.weight.shape[1] === 2 * H) {
        u = new Float32Array(batch * 2 * H);
        const prev = n > 0 ? forward.perLayerPooled[n - 1]! : new Float32Array(batch * H);
        for (let b = 0; b < batch; b++) {
          u.set(z.subarray(b * H, (b + 1) * H), b * 2 * H);
          u.set(prev.subarray(b * H, (b + 1) * H), b * 2 * H + H);
        }
      }
      mlp.forEach((l, i) => {
        u = dense(u, l, batch, i < mlp.length - 1 ? 'tanh' : 'none');
      });
      return Array.from(u, sigmoid64);
    });
  }
  if (heads.heads) {
    out.headLogits = heads.heads.map((h, n) => rows(dense(forward.perLayerPooled[n]!, h, batch), C));
    out.headProbs = out.headLogits.map((l) => l.map(toProbs));
  }
  if (heads.gates) {
    const source = out.headProbs ?? out.probs;
    out.gates = Array.from({ length: L }, (_, n) =>
      Array.from({ length: batch }, (_, b) => {
        const g = heads.gates![n];
        if (!g) return NaN;
        const f = gateFeatures(source[n]![b]!);
        return sigmoid64(f.reduce((s, x, i) => s + x * g.weight.data[i]!, g.bias.data[0]!));
      }),
    );
  }
  return out;
}
