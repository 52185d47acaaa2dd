/**
 * Launcher of the fused heads kernel (heads.wgsl): after each layer, one dispatch (a workgroup per
 * batch slot) computes the pooler, the shared classifier, the per-layer head and the λ MLP, which
 * took 2 to 7 latency-bound dispatches before. All head matrices sit in one packed buffer
 * (`packHeads`) so that the kernel stays within WebGPU's default 8 storage buffers per stage.
 */
import type { LinearWeights } from '../src/model/types';
import { PonderError } from '../src/errors';
import { bindBuffers, createPipeline, type KernelDispatch, type WeightDtype } from './kernel';
import { specialize } from './preprocess';
import code from './heads.wgsl?raw';

/** heads.wgsl's limits: the stage input vector (CAP floats) and the uniform's stage array. */
export const HEADS_MAX_INPUT = 2048;
export const HEADS_MAX_STAGES = 16;
const THREADS = 256;
const ROWS = 8;
const PARAM_WORDS = 8;
const STAGE_WORDS = 8;

/** One nn.Linear inside the packed buffers: element offsets of its weight and bias. */
export interface PackedLinear {
  weight: number;
  bias: number;
  outFeatures: number;
  inFeatures: number;
}

/** Where every head matrix sits in the packed buffers. */
export interface HeadsLayout {
  pooler: PackedLinear;
  classifier?: PackedLinear;
  /** PABEE's per-layer heads, by depth. */
  heads?: PackedLinear[];
  /** The λ MLP's layers: hidden Linear + tanh blocks, then Linear → 1. */
  lambda?: PackedLinear[];
}

/**
 * Concatenates the head matrices (each starting at a multiple of 4 elements, for vec4 loads) and
 * their biases. The caller uploads `weights` in the weight dtype and `biases` as f32.
 */
export function packHeads(parts: {
  pooler: LinearWeights;
  classifier?: LinearWeights;
  heads?: readonly LinearWeights[];
  lambda?: readonly LinearWeights[];
}): { weights: Float32Array; biases: Float32Array; layout: HeadsLayout } {
  const placed: [PackedLinear, LinearWeights][] = [];
  let weightEnd = 0;
  let biasEnd = 0;
  const place = (l: LinearWeights): PackedLinear => {
    const at: PackedLinear = {
      weight: weightEnd,
      bias: biasEnd,
      outFeatures: l.weight.shape[0]!,
      inFeatures: l.weight.shape[1]!,
    };
    placed.push([at, l]);
    weightEnd += Math.ceil(l.weight.data.length / 4) * 4;
    biasEnd += l.bias.data.length;
    return at;
  };
  const layout: HeadsLayout = { pooler: place(parts.pooler) };
  if (parts.classifier) layout.classifier = place(parts.classifier);
  if (parts.heads) layout.heads = parts.heads.map(place);
  if (parts.lambda) layout.lambda = parts.lambda.map(place);
  const weights = new Float32Array(Math.max(4, weightEnd));
  const biases = new Float32Array(Math.max(1, biasEnd));
  for (const [at, l] of placed) {
    weights.set(l.weight.data, at.weight);
    biases.set(l.bias.data, at.bias);
  }
  return { weights, biases, layout };
}

/**
 * Why heads.wgsl cannot run these heads (null: it can). The pooler's input and output share the
 * stage input vector (2H floats), as do z and z_prev; every λ layer's input must fit it too.
 */
export function headsUnsupported(layout: HeadsLayout): string | null {
  const H = layout.pooler.outFeatures;
  if (layout.pooler.inFeatures !== H) return `the pooler is ${layout.pooler.inFeatures} → ${H}, not square`;
  if (2 * H > HEADS_MAX_INPUT) return `hidden size ${H} > ${HEADS_MAX_INPUT / 2}`;
  const lambda = layout.lambda ?? [];
  if (3 + lambda.length > HEADS_MAX_STAGES) return `${lambda.length} λ layers > ${HEADS_MAX_STAGES - 3}`;
  for (const l of [layout.classifier, ...(layout.heads ?? [])]) {
    if (l && l.inFeatures !== H) return `a head's input width ${l.inFeatures} is not the hidden size ${H}`;
  }
  for (const [i, l] of lambda.entries()) {
    const widthOk = i === 0 ? l.inFeatures === H || l.inFeatures === 2 * H : l.inFeatures <= HEADS_MAX_INPUT;
    if (!widthOk) return `λ layer ${i} has input width ${l.inFeatures}`;
    if (i > 0 && lambda[i - 1]!.outFeatures !== l.inFeatures)
      return `λ layer ${i} does not follow layer ${i - 1}`;
  }
  if (lambda.length && lambda[lambda.length - 1]!.outFeatures !== 1)
    return 'the last λ layer has more than one output';
  return null;
}

/** One depth's heads for the whole batch; every output offset is slot 0's (slot b adds b × N). */
export interface HeadsShape {
  batch: number;
  /** Elements between consecutive slots' [CLS] rows of `hidden` (seqLen × H). */
  rowStride: number;
  /** z of slot 0 in `pooled` (depth × batch × H). */
  pooledOffset: number;
  /** The shared classifier's logits in `logits`; absent: no classifier. */
  logitsOffset?: number;
  /** This depth's per-layer head (index into layout.heads) and where its logits go in `scratch`. */
  head?: { index: number; offset: number };
  /** The λ MLP: its logit's place in `scratch`, and a per-slot region of `scratch` for its hidden layers. */
  lambda?: {
    offset: number;
    hiddenOffset: number;
    /** z_prev: the previous depth's z of slot 0 in `pooled`; absent at depth 0 (zeros). */
    prevOffset?: number;
    /** counters[prevSlots + b]: the slot that slot b's example had at the previous depth. */
    prevSlots: number;
  };
}

/** Floats of `scratch` the λ hidden layers need per slot (0 without them). */
export function lambdaHiddenFloats(layout: HeadsLayout): number {
  const lambda = layout.lambda ?? [];
  return Math.max(0, ...lambda.slice(0, -1).map((l) => l.outFeatures));
}

/** Invocations per output row: enough rows side by side to fill 256 invocations, at least 8 lanes. */
function lanesFor(n: number, k: number): number {
  const pow2 = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));
  const byRows = Math.max(8, Math.floor((THREADS * ROWS) / pow2(n)));
  // No more lanes than K has vec4 (or elements) to share.
  return Math.max(8, Math.min(THREADS, byRows, pow2(Math.ceil(k / 4))));
}

export class HeadsKernel {
  private constructor(
    private readonly device: GPUDevice,
    readonly weightDtype: WeightDtype,
    private readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(device: GPUDevice, weightDtype: WeightDtype): Promise<HeadsKernel> {
    const pipeline = await createPipeline(device, {
      label: `heads-${weightDtype}`,
      code: specialize(code, { F16: weightDtype === 'f16' }),
      entryPoint: 'heads',
    });
    return new HeadsKernel(device, weightDtype, pipeline);
  }

  /**
   * The dispatch for one depth: grid [1, 1, batch], so that the exit kernel can shrink it to the
   * running slots like attention (SLOT_KIND.attention sets z). Buffers: the packed heads, `hidden`
   * ([CLS] rows read), `pooled`, `logits`, `scratch` (per-layer heads, λ logit and λ hidden
   * vectors) and exit.wgsl's `counters` (the slot map, read only).
   */
  prepare(
    b: {
      weights: GPUBuffer;
      biases: GPUBuffer;
      hidden: GPUBuffer;
      pooled: GPUBuffer;
      logits: GPUBuffer;
      scratch: GPUBuffer;
      counters: GPUBuffer;
    },
    layout: HeadsLayout,
    shape: HeadsShape,
  ): KernelDispatch {
    const reason = headsUnsupported(layout);
    if (reason) throw new PonderError('unsupported-config', `The fused heads kernel cannot run: ${reason}.`);
    const H = layout.pooler.outFeatures;
    const stages: number[][] = [];
    const stage = (l: PackedLinear, dst: number, dstOffset: number, tanh: boolean) =>
      stages.push([
        l.weight,
        l.bias,
        l.outFeatures,
        l.inFeatures,
        dst,
        dstOffset,
        tanh ? 1 : 0,
        lanesFor(l.outFeatures, l.inFeatures),
      ]);
    stage(layout.pooler, 0, shape.pooledOffset, true);
    if (shape.logitsOffset !== undefined) {
      if (!layout.classifier) throw new PonderError('invalid-input', 'heads: logits without a classifier');
      stage(layout.classifier, 1, shape.logitsOffset, false);
    }
    if (shape.head) {
      const head = layout.heads?.[shape.head.index];
      if (!head) throw new PonderError('invalid-input', `heads: no per-layer head ${shape.head.index}`);
      stage(head, 2, shape.head.offset, false);
    }
    const lambda = shape.lambda;
    let cat = false;
    if (lambda) {
      const layers = layout.lambda;
      if (!layers?.length) throw new PonderError('invalid-input', 'heads: no λ layers');
      cat = layers[0]!.inFeatures === 2 * H;
      layers.forEach((l, i) => {
        const last = i === layers.length - 1;
        stage(l, last ? 2 : 3, last ? lambda.offset : lambda.hiddenOffset, !last);
      });
    }
    const words = new Uint32Array(PARAM_WORDS + HEADS_MAX_STAGES * STAGE_WORDS);
    words.set([
      H,
      shape.rowStride,
      stages.length,
      cat ? 1 : 0,
      lambda?.prevOffset !== undefined ? 1 : 0,
      lambda?.prevOffset ?? 0,
      lambda?.prevSlots ?? 0,
      0,
    ]);
    stages.forEach((s, i) => words.set(s, PARAM_WORDS + i * STAGE_WORDS));
    for (const v of [shape.batch, shape.rowStride, ...words]) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new PonderError('invalid-input', `heads: offset or size out of u32 range: ${v}`);
      }
    }
    if (shape.batch < 1 || shape.batch > 65535) {
      throw new PonderError('unsupported-config', `heads: batch ${shape.batch} outside 1..65535`);
    }
    const label = `heads-${this.weightDtype}-${shape.batch}x${H}-${stages.length}`;
    const uniform = this.device.createBuffer({
      label,
      size: words.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.queue.writeBuffer(uniform, 0, words);
    const buffers = [uniform, b.weights, b.biases, b.hidden, b.pooled, b.logits, b.scratch, b.counters];
    const bindGroup = bindBuffers(this.device, label, this.pipeline, buffers);
    return { label, pipeline: this.pipeline, bindGroup, workgroups: [1, 1, shape.batch] };
  }
}
