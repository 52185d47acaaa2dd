/**
 * Launcher of the heads kernel (heads.wgsl): after each layer, the pooler, the shared classifier,
 * the per-layer head and the λ MLP as one multi-workgroup dispatch per stage group: the pooler; every
 * stage that reads z (classifier, per-layer head, λ layer 0, on z or [z ; z_prev]); then each further
 * λ hidden layer. λ's output layer (Linear → 1) has no dispatch: the stage of the last hidden layer
 * also multiplies its rows by the output weights, each workgroup writing one partial sum of the logit
 * per slot, and exit.wgsl's decide adds them up. On its own that dispatch (one dot product per slot)
 * took 28 µs per depth in the H200 kernel profile, as long as a 1024² λ layer: dispatch overhead
 * (docs/benchmarks.md at 2fbd295). The shipped PALBERT model runs 4 dispatches per depth (5 before
 * that fold, 7 with a gather of [z ; z_prev]), a pooler + classifier model 2. A single workgroup per
 * slot for all stages (one dispatch) was tried and measured slower on an H200, since one SM cannot
 * stream the head matrices fast enough: 536 µs per depth against ≈ 170 µs for PALBERT's 7
 * dispatches, 175 µs against ≈ 43 µs for ALBERT-base's pooler + classifier
 * (bench/results/archive/2026-11-27-h200-fused-heads-profile.json; the separate dispatches:
 * docs/benchmarks.md at c734a70). All head matrices sit in one packed buffer (`packHeads`), so that
 * the kernel stays within WebGPU's default 8 storage buffers per stage.
 */
import type { LinearWeights } from '../src/model/types';
import { PonderError } from '../src/errors';
import {
  bindBuffers,
  createPipeline,
  exitGateWgsl,
  openExitGate,
  type KernelDispatch,
  type WeightDtype,
  weightTypeWgsl,
} from './kernel';
import code from './heads.wgsl?raw';

/** heads.wgsl's limits: output rows per workgroup and stages per dispatch. */
const ROWS = 8;
const MAX_STAGES = 4;
const PARAM_WORDS = 12;
const STAGE_WORDS = 8;
/** heads.wgsl's binding of the exit gate (shaders/kernel.ts). */
const GATE_BINDING = 8;
// none: the folded λ stage, whose outputs only feed its partial sums.
const DST = { pooled: 0, logits: 1, scratch: 2, none: 3 } as const;
const SOURCE = { hidden: 0, pooled: 1, scratch: 2 } as const;

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
 * Why heads.wgsl cannot run these heads (null: it can): the shapes must chain (a square pooler,
 * heads on z, the λ MLP on z or [z ; z_prev] down to one logit). Any size works.
 */
export function headsUnsupported(layout: HeadsLayout): string | null {
  const H = layout.pooler.outFeatures;
  if (layout.pooler.inFeatures !== H) return `the pooler is ${layout.pooler.inFeatures} → ${H}, not square`;
  for (const l of [layout.classifier, ...(layout.heads ?? [])]) {
    if (l && l.inFeatures !== H) return `a head's input width ${l.inFeatures} is not the hidden size ${H}`;
  }
  const lambda = layout.lambda ?? [];
  for (const [i, l] of lambda.entries()) {
    if (i === 0 && l.inFeatures !== H && l.inFeatures !== 2 * H)
      return `λ layer 0 has input width ${l.inFeatures}`;
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
  /**
   * The pooler already ran in the layer's last add+LayerNorm (layernorm.ts `preparePooled`, batch 1):
   * no pooler dispatch; the stages on z read what it wrote at `pooledOffset`.
   */
  poolerFolded?: boolean;
  /** Elements between consecutive slots' [CLS] rows of `hidden` (seqLen × H). */
  rowStride: number;
  /** z of slot 0 in `pooled` (depth × batch × H). */
  pooledOffset: number;
  /** The shared classifier's logits in `logits`; absent: no classifier. */
  logitsOffset?: number;
  /** This depth's per-layer head (index into layout.heads) and where its logits go in `scratch`. */
  head?: { index: number; offset: number };
  /**
   * The λ MLP: where its logit goes in `scratch`, and a region of `scratch` for its hidden layers'
   * outputs (batch × lambdaHiddenFloats(layout) floats).
   */
  lambda?: {
    /**
     * Slot b's lambdaLogitParts(layout) floats start at offset + b × parts: the partial sums of the
     * logit (lambdaFolded), else the logit itself.
     */
    offset: number;
    hiddenOffset: number;
    /** z_prev: the previous depth's z of slot 0 in `pooled`; absent at depth 0 (zeros). */
    prevOffset?: number;
    /** counters[prevSlots + b]: the slot that slot b's example had at the previous depth. */
    prevSlots: number;
  };
}

/**
 * Whether λ's output layer is folded into its last hidden layer's stage (λ has a hidden layer).
 * Without one the output layer is λ layer 0, in the z stage, and writes the logit itself.
 */
export function lambdaFolded(layout: HeadsLayout): boolean {
  return (layout.lambda?.length ?? 0) > 1;
}

/**
 * Floats per slot where the λ logit lands: folded, one partial sum per row block (workgroup) of the
 * last hidden layer, which exit.wgsl's decide adds in order; else 1, the logit.
 */
export function lambdaLogitParts(layout: HeadsLayout): number {
  const lambda = layout.lambda ?? [];
  return lambdaFolded(layout) ? Math.ceil(lambda[lambda.length - 2]!.outFeatures / ROWS) : 1;
}

/**
 * Floats of `scratch` the λ hidden layers need per slot: two vectors (a layer reads one while it
 * writes the other) of the widest stored hidden layer. The last hidden layer stores nothing (its
 * outputs go straight into the folded partial sums), so one vector with two hidden layers, 0 with
 * fewer.
 */
export function lambdaHiddenFloats(layout: HeadsLayout): number {
  return Math.min(2, storedLambdaLayers(layout).length) * lambdaHiddenWidth(layout);
}

/** The λ hidden layers whose outputs go to `scratch`: all but the last. */
function storedLambdaLayers(layout: HeadsLayout): PackedLinear[] {
  return (layout.lambda ?? []).slice(0, -2);
}

function lambdaHiddenWidth(layout: HeadsLayout): number {
  return Math.max(0, ...storedLambdaLayers(layout).map((l) => l.outFeatures));
}

/**
 * Dispatches per depth: the pooler, the stages on z (classifier, per-layer head, λ layer 0; a λ MLP
 * comes with a classifier), one per further λ hidden layer (the output layer is folded into the
 * last hidden one). `poolerFolded`: no pooler dispatch (layernorm.ts `preparePooled`), and no z
 * stage when the classifier went with it and nothing else reads z.
 */
export function headsDispatchCount(
  stagesOnZ: { classifier: boolean; perLayerHeads: boolean },
  lambdaLayers: number,
  poolerFolded = false,
): number {
  const onZ = stagesOnZ.classifier || stagesOnZ.perLayerHeads || lambdaLayers > 0;
  return (poolerFolded ? 0 : 1) + (onZ ? 1 : 0) + Math.max(0, lambdaLayers - 2);
}

interface StageSpec {
  linear: PackedLinear;
  dst: number;
  dstOffset: number;
  tanh: boolean;
  /** λ's output layer, folded in: its partial sums of slot 0 start at `offset` in `scratch`. */
  fold?: { output: PackedLinear; offset: number };
}

interface InputSpec {
  source: number;
  offset: number;
  stride: number;
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
      code: weightTypeWgsl(weightDtype) + code + exitGateWgsl(GATE_BINDING),
      entryPoint: 'heads',
    });
    return new HeadsKernel(device, weightDtype, pipeline);
  }

  /**
   * The dispatches of one depth (headsDispatchCount of them), each with grid [row blocks, 1, batch]
   * so that the exit kernel can shrink z to the running slots like attention (SLOT_KIND.attention).
   * Buffers: the packed heads, `hidden` ([CLS] rows read), `pooled`, `logits`, `scratch`
   * (per-layer heads, λ logit or its partial sums, λ hidden vectors) and exit.wgsl's `counters`
   * (slot map, read).
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
      /** The exit gate (shaders/kernel.ts); default: never shut. */
      gate?: GPUBufferBinding;
    },
    layout: HeadsLayout,
    shape: HeadsShape,
  ): KernelDispatch[] {
    const reason = headsUnsupported(layout);
    if (reason) throw new PonderError('unsupported-config', `The heads kernel cannot run: ${reason}.`);
    if (!Number.isInteger(shape.batch) || shape.batch < 1 || shape.batch > 65535) {
      throw new PonderError('unsupported-config', `heads: batch ${shape.batch} outside 1..65535`);
    }
    const H = layout.pooler.outFeatures;
    const { batch } = shape;
    const buffers = [b.weights, b.biases, b.hidden, b.pooled, b.logits, b.scratch, b.counters];
    const gate = b.gate ?? openExitGate(this.device);
    const dispatches: KernelDispatch[] = [];
    const group = (name: string, input: InputSpec, stages: StageSpec[], prev?: HeadsShape['lambda']) => {
      dispatches.push(this.dispatch(`${name}-${batch}x${H}`, buffers, gate, H, batch, input, stages, prev));
    };

    if (!shape.poolerFolded) {
      group('heads.pooler', { source: SOURCE.hidden, offset: 0, stride: shape.rowStride }, [
        { linear: layout.pooler, dst: DST.pooled, dstOffset: shape.pooledOffset, tanh: true },
      ]);
    }
    const onZ: StageSpec[] = [];
    if (shape.logitsOffset !== undefined) {
      if (!layout.classifier) throw new PonderError('invalid-input', 'heads: logits without a classifier');
      onZ.push({ linear: layout.classifier, dst: DST.logits, dstOffset: shape.logitsOffset, tanh: false });
    }
    if (shape.head) {
      const head = layout.heads?.[shape.head.index];
      if (!head) throw new PonderError('invalid-input', `heads: no per-layer head ${shape.head.index}`);
      onZ.push({ linear: head, dst: DST.scratch, dstOffset: shape.head.offset, tanh: false });
    }
    const lambda = shape.lambda;
    const layers = lambda ? layout.lambda : undefined;
    if (lambda && !layers?.length) throw new PonderError('invalid-input', 'heads: no λ layers');
    // λ layer i's output: hidden vector region i % 2 (batch × its width each); the last hidden
    // layer's goes only into the partial sums of the folded output layer; without hidden layers,
    // the output layer (layer 0) writes the logit.
    const region = lambdaHiddenWidth(layout) * batch;
    const lastStage = Math.max(0, (layers?.length ?? 0) - 2);
    const lambdaStage = (i: number): StageSpec => {
      const linear = layers![i]!;
      if (!lambdaFolded(layout)) return { linear, dst: DST.scratch, dstOffset: lambda!.offset, tanh: false };
      if (i < lastStage) {
        return { linear, dst: DST.scratch, dstOffset: lambda!.hiddenOffset + (i % 2) * region, tanh: true };
      }
      const fold = { output: layers![i + 1]!, offset: lambda!.offset };
      return { linear, dst: DST.none, dstOffset: 0, tanh: true, fold };
    };
    if (layers) onZ.push(lambdaStage(0));
    const z = { source: SOURCE.pooled, offset: shape.pooledOffset, stride: H };
    if (onZ.length) group('heads.z', z, onZ, lambda);
    for (let i = 1; i <= lastStage; i++) {
      const input = { source: SOURCE.scratch, offset: lambda!.hiddenOffset + ((i - 1) % 2) * region };
      group(`heads.lambda${i}`, { ...input, stride: layers![i]!.inFeatures }, [lambdaStage(i)]);
    }
    return dispatches;
  }

  private dispatch(
    label: string,
    buffers: readonly GPUBuffer[],
    gate: GPUBufferBinding,
    H: number,
    batch: number,
    input: InputSpec,
    stages: readonly StageSpec[],
    prev: HeadsShape['lambda'],
  ): KernelDispatch {
    if (stages.length > MAX_STAGES) throw new Error(`heads: ${stages.length} stages in one dispatch`);
    const foldAt = stages.findIndex((s) => s.fold);
    const fold = stages[foldAt]?.fold;
    if (stages.filter((s) => s.fold).length > 1) throw new Error('heads: two folded stages in one dispatch');
    const words = new Uint32Array(PARAM_WORDS + MAX_STAGES * STAGE_WORDS);
    words.set([
      input.source,
      input.offset,
      input.stride,
      H,
      prev?.prevOffset !== undefined ? 1 : 0,
      prev?.prevOffset ?? 0,
      prev?.prevSlots ?? 0,
      stages.length,
      foldAt + 1, // 0: none
      fold?.output.weight ?? 0,
      fold?.output.bias ?? 0,
      fold?.offset ?? 0,
    ]);
    let blocks = 0;
    stages.forEach((s, i) => {
      const l = s.linear;
      const row = [l.weight, l.bias, l.outFeatures, l.inFeatures, s.dst, s.dstOffset, s.tanh ? 1 : 0, blocks];
      words.set(row, PARAM_WORDS + i * STAGE_WORDS);
      blocks += Math.ceil(l.outFeatures / ROWS);
    });
    const checked = [...words, blocks, input.offset + batch * input.stride];
    for (const s of stages) {
      checked.push(s.dstOffset + batch * s.linear.outFeatures);
      if (s.fold) checked.push(s.fold.offset + batch * Math.ceil(s.linear.outFeatures / ROWS));
    }
    for (const v of checked) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new PonderError('invalid-input', `heads: offset or size out of u32 range: ${v}`);
      }
    }
    if (blocks > 65535) throw new PonderError('unsupported-config', `heads: ${blocks} row blocks > 65535`);
    const uniform = this.device.createBuffer({
      label,
      size: words.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.queue.writeBuffer(uniform, 0, words);
    const bindGroup = bindBuffers(
      this.device,
      label,
      this.pipeline,
      [uniform, ...buffers],
      [[GATE_BINDING, gate]],
    );
    return { label, pipeline: this.pipeline, bindGroup, workgroups: [blocks, 1, batch] };
  }
}
