/**
 * Uploads an EncoderModel's weights to GPU buffers once, at load. Matrices go up as f32 or f16
 * (when the device has `shader-f16`); vectors (biases, LayerNorm) stay f32. Q, K and V are fused
 * into one [3H, H] matrix so that a layer runs one projection matmul instead of three. The heads run
 * after every layer (pooler, classifier, per-layer heads, λ MLP) go up packed into one buffer for the
 * heads kernel (shaders/heads.ts), which then needs only 8 storage buffers per stage.
 */
import { headsUnsupported, packHeads, type HeadsLayout } from '../../shaders/heads';
import { PonderError } from '../errors';
import type { WeightDtype } from '../../shaders/kernel';
import type {
  EncoderModel,
  LinearWeights,
  NormWeights,
  Tensor,
  TransformerLayerWeights,
} from '../model/types';
import { float32ToFloat16Bits } from './f16';

export interface GpuLinear {
  weight: GPUBuffer;
  bias: GPUBuffer;
  /** Output features (rows of the nn.Linear weight). */
  outFeatures: number;
  inFeatures: number;
}

/** A head's shape; its matrices are in `packedHeads`. */
export interface LinearShape {
  outFeatures: number;
  inFeatures: number;
}

export interface GpuNorm {
  gamma: GPUBuffer;
  beta: GPUBuffer;
}

export interface GpuLayer {
  qkv: GpuLinear;
  attentionOutput: GpuLinear;
  /**
   * The attention output weight transposed ([in, out]: row k holds every output's weight for input
   * k), for `rows` attention with the projection folded in (shaders/attention.wgsl rows_project),
   * whose invocations then read consecutive outputs' weights together. Only with
   * `attentionOutputTransposed`.
   */
  attentionOutputT?: GPUBuffer;
  attentionNorm: GpuNorm;
  intermediate: GpuLinear;
  output: GpuLinear;
  outputNorm: GpuNorm;
  /**
   * [output bias | outputNorm gamma | beta] in one buffer, for the last add+LayerNorm with the
   * pooler folded in (shaders/layernorm.ts `preparePooled`, which has no storage binding to spare).
   * Only with `packedOutputNorm`.
   */
  outputNormPacked?: GPUBuffer;
}

export interface GpuWeights {
  dtype: WeightDtype;
  word: GPUBuffer;
  position: GPUBuffer;
  tokenType: GPUBuffer;
  embeddingNorm: GpuNorm;
  embeddingProjection?: GpuLinear;
  layers: GpuLayer[];
  pooler?: LinearShape;
  classifier?: LinearShape;
  /** Exit heads (`ponder.*`): λ MLP, per-layer classifiers, gates packed as [a0..a3, b] per layer. */
  exit?: {
    lambda?: LinearShape[];
    heads?: LinearShape[];
    gateParams?: GPUBuffer;
    /** gateParams' contents (a, b per gate), for plans that copy them into their exit scratch. */
    gateData?: Float32Array;
    numGates: number;
  };
  /**
   * With a pooler: every head matrix in one buffer (weight dtype) and every bias in another (f32),
   * for the heads kernel.
   */
  packedHeads?: { weights: GPUBuffer; biases: GPUBuffer; layout: HeadsLayout };
  /** Bytes of GPU memory these buffers hold. */
  bytes: number;
  destroy(): void;
}

export function uploadWeights(
  device: GPUDevice,
  model: EncoderModel,
  dtype: WeightDtype,
  options: { attentionOutputTransposed?: boolean; packedOutputNorm?: boolean } = {},
): GpuWeights {
  const buffers: GPUBuffer[] = [];
  let bytes = 0;

  const upload = (label: string, data: Float32Array | Uint16Array): GPUBuffer => {
    // Buffer sizes must be multiples of 4 bytes; an odd count of f16 values gets one padding value.
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const buffer = device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    const mapped = buffer.getMappedRange();
    if (data instanceof Float32Array) new Float32Array(mapped).set(data);
    else new Uint16Array(mapped).set(data);
    buffer.unmap();
    buffers.push(buffer);
    bytes += size;
    return buffer;
  };
  const matrix = (label: string, t: Tensor) =>
    upload(label, dtype === 'f16' ? float32ToFloat16Bits(t.data) : t.data);
  const vector = (label: string, t: Tensor) => upload(label, t.data);
  const linear = (label: string, l: LinearWeights): GpuLinear => ({
    weight: matrix(`${label}.weight`, l.weight),
    bias: vector(`${label}.bias`, l.bias),
    outFeatures: l.weight.shape[0]!,
    inFeatures: l.weight.shape[1]!,
  });
  const norm = (label: string, n: NormWeights): GpuNorm => ({
    gamma: vector(`${label}.gamma`, n.gamma),
    beta: vector(`${label}.beta`, n.beta),
  });

  const { weights } = model;
  const layers = weights.layers.map((layer, i) => {
    const gpu = uploadLayer(`layer${i}`, layer, linear, norm);
    if (options.attentionOutputTransposed) {
      gpu.attentionOutputT = matrix(`layer${i}.attentionOutputT`, transpose(layer.attentionOutput.weight));
    }
    if (options.packedOutputNorm) {
      const H = layer.outputNorm.gamma.data.length;
      const packed = new Float32Array(3 * H);
      packed.set(layer.output.bias.data, 0);
      packed.set(layer.outputNorm.gamma.data, H);
      packed.set(layer.outputNorm.beta.data, 2 * H);
      gpu.outputNormPacked = upload(`layer${i}.outputNormPacked`, packed);
    }
    return gpu;
  });
  const result: GpuWeights = {
    dtype,
    word: matrix('embeddings.word', weights.embeddings.word),
    position: matrix('embeddings.position', weights.embeddings.position),
    tokenType: matrix('embeddings.tokenType', weights.embeddings.tokenType),
    embeddingNorm: norm('embeddings.norm', weights.embeddings.norm),
    layers,
    bytes: 0,
    destroy: () => buffers.forEach((b) => b.destroy()),
  };
  if (weights.embeddingProjection) {
    result.embeddingProjection = linear('embeddings.projection', weights.embeddingProjection);
  }
  const shape = (l: LinearWeights): LinearShape => ({
    outFeatures: l.weight.shape[0]!,
    inFeatures: l.weight.shape[1]!,
  });
  const heads = weights.exitHeads;
  if (weights.pooler) result.pooler = shape(weights.pooler);
  if (weights.classifier) result.classifier = shape(weights.classifier);
  if (weights.pooler) {
    const parts = {
      pooler: weights.pooler,
      ...(weights.classifier ? { classifier: weights.classifier } : {}),
      ...(heads?.heads ? { heads: heads.heads } : {}),
      ...(heads?.lambda ? { lambda: heads.lambda } : {}),
    };
    const packed = packHeads(parts);
    const reason = headsUnsupported(packed.layout);
    if (reason) {
      buffers.forEach((b) => b.destroy());
      throw new PonderError('unsupported-config', `The model's heads cannot run: ${reason}.`);
    }
    // Whole vec4s of either dtype (packHeads pads every matrix to a multiple of 4 elements).
    const w = packed.weights;
    result.packedHeads = {
      weights: upload('heads.weights', dtype === 'f16' ? float32ToFloat16Bits(w) : w),
      biases: upload('heads.biases', packed.biases),
      layout: packed.layout,
    };
  }
  if (heads) {
    const exit: NonNullable<GpuWeights['exit']> = { numGates: heads.gates?.length ?? 0 };
    if (heads.lambda) exit.lambda = heads.lambda.map(shape);
    if (heads.heads) exit.heads = heads.heads.map(shape);
    if (heads.gates?.length) {
      const packed = new Float32Array(heads.gates.length * 5);
      heads.gates.forEach((g, n) => {
        packed.set(g.weight.data.subarray(0, 4), n * 5);
        packed[n * 5 + 4] = g.bias.data[0]!;
      });
      exit.gateParams = upload('ponder.gates', packed);
      exit.gateData = packed;
    }
    result.exit = exit;
  }
  result.bytes = bytes;
  return result;
}

function uploadLayer(
  label: string,
  layer: TransformerLayerWeights,
  linear: (label: string, l: LinearWeights) => GpuLinear,
  norm: (label: string, n: NormWeights) => GpuNorm,
): GpuLayer {
  return {
    qkv: linear(`${label}.qkv`, fuseLinears([layer.query, layer.key, layer.value])),
    attentionOutput: linear(`${label}.attentionOutput`, layer.attentionOutput),
    attentionNorm: norm(`${label}.attentionNorm`, layer.attentionNorm),
    intermediate: linear(`${label}.intermediate`, layer.intermediate),
    output: linear(`${label}.output`, layer.output),
    outputNorm: norm(`${label}.outputNorm`, layer.outputNorm),
  };
}

/** A [rows, cols] matrix as [cols, rows]. */
function transpose(t: Tensor): Tensor {
  const [rows, cols] = t.shape as [number, number];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]!;
  return { shape: [cols, rows], data: out };
}

/** Stacks nn.Linear weights along the output dimension: [N1+N2+..., K]. */
export function fuseLinears(parts: readonly LinearWeights[]): LinearWeights {
  const inFeatures = parts[0]!.weight.shape[1]!;
  const outFeatures = parts.reduce((n, p) => n + p.weight.shape[0]!, 0);
  const weight = new Float32Array(outFeatures * inFeatures);
  const bias = new Float32Array(outFeatures);
  let row = 0;
  for (const p of parts) {
    weight.set(p.weight.data, row * inFeatures);
    bias.set(p.bias.data, row);
    row += p.weight.shape[0]!;
  }
  return {
    weight: { shape: [outFeatures, inFeatures], data: weight },
    bias: { shape: [outFeatures], data: bias },
  };
}
