/**
 * Residual add + LayerNorm (semantics: tests/reference/ops.ts `addLayerNorm`), after attention and
 * after the feed-forward block.
 */
import { PonderError } from '../src/errors';
import {
  bindBuffers,
  createPipeline,
  createUniformBuffer,
  exitGateWgsl,
  openExitGate,
  type KernelDispatch,
  type WeightDtype,
  weightTypeWgsl,
} from './kernel';
import { specialize } from './preprocess';
import code from './layernorm.wgsl?raw';

const MAX_WORKGROUPS = 65535;
/** layernorm.wgsl's binding of the exit gate (shaders/kernel.ts). */
const GATE_BINDING = 7;

/** One workgroup per row, wrapping into y beyond the per-dimension workgroup limit. */
export function rowWorkgroups(rows: number): readonly [number, number, number] {
  return [Math.min(rows, MAX_WORKGROUPS), Math.ceil(rows / MAX_WORKGROUPS), 1];
}

export interface AddLayerNormShape {
  rows: number;
  width: number;
  eps: number;
  /** `input` holds this many split-K partial sums (default 1), `partialStride` elements apart. */
  splits?: number;
  partialStride?: number;
}

/** layernorm.wgsl's MAX_CHUNKS: vec4 an invocation of the VEC4 variant keeps in registers. */
const MAX_CHUNKS = 4;
/** layernorm.wgsl's POOL_COLS default: pooler outputs per workgroup of the POOL variant. */
export const POOL_COLS = 8;
/** The POOL variant's workgroup size (its column split assumes it) and widest row (`cls`). */
const POOL_WG = 128;
const POOL_MAX_WIDTH = 2048;

/** The pooler (and classifier) that the POOL variant computes, in the packed head buffers. */
export interface PoolerFold {
  /** heads.ts packHeads' buffers: weights (the weight dtype, vec4 rows) and f32 biases. */
  headWeights: GPUBuffer;
  headBiases: GPUBuffer;
  /** Element offsets of the square pooler [width, width] (a multiple of 4) and its bias. */
  poolerWeight: number;
  poolerBias: number;
  /** z goes to `pooled` from this element on. */
  pooled: GPUBuffer;
  pooledOffset: number;
  /** The classifier fold: partial logits [poolerBlocks(width)][classes] at `partsAt` in `scratch`. */
  classifier?: { weight: number; bias: number; classes: number; partsAt: number };
  scratch: GPUBuffer;
}

/** Workgroups of the POOL variant past the rows: one per `columns` pooler outputs. */
export function poolerBlocks(width: number, columns = POOL_COLS): number {
  return Math.ceil(width / columns);
}

/** Whether the POOL variant serves rows of `width` (VEC4, and the [CLS] row fits workgroup memory). */
export function poolerFoldFits(width: number): boolean {
  return vec4Fits(width, POOL_WG) && width <= POOL_MAX_WIDTH;
}

export class AddLayerNormKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly workgroupSize: number,
    private readonly scalar: GPUComputePipeline | null,
    private readonly vec4: GPUComputePipeline | null,
    private readonly pooled: GPUComputePipeline | null,
    /** The POOL variant's pooler outputs per workgroup. */
    readonly poolColumns: number,
  ) {}

  /** Whether the POOL variant was compiled (create's `pool` option). */
  get canPool(): boolean {
    return this.pooled !== null;
  }

  /**
   * `widths`: the row widths the caller will normalise, so that only the variants they need are
   * compiled (each pipeline costs about a second on software adapters); default: both.
   * `pool`: also compile the POOL variant (the pooler folded in, `preparePooled`) for head weights of
   * this dtype; it needs the default workgroup size. `poolColumns`: its pooler outputs per workgroup
   * (a power of two from 1 to 128; default POOL_COLS).
   */
  static async create(
    device: GPUDevice,
    options: {
      workgroupSize?: number;
      widths?: readonly number[];
      pool?: WeightDtype;
      poolColumns?: number;
    } = {},
  ): Promise<AddLayerNormKernel> {
    const wg = options.workgroupSize ?? 128;
    if (!Number.isInteger(Math.log2(wg)))
      throw new PonderError('gpu-error', `layernorm: workgroup size ${wg} is not a power of two`);
    const widths = options.widths;
    const needVec4 = !widths || widths.some((w) => vec4Fits(w, wg));
    const needScalar = !widths || widths.some((w) => !vec4Fits(w, wg));
    const compile = (vec4: boolean) =>
      createPipeline(device, {
        label: vec4 ? 'add-layernorm-vec4' : 'add-layernorm',
        code: specialize(code, { VEC4: vec4 }) + exitGateWgsl(GATE_BINDING),
        constants: { WG: wg },
      });
    if (options.pool && wg !== POOL_WG)
      throw new PonderError('gpu-error', `layernorm: the pooler fold needs workgroups of ${POOL_WG}`);
    const pool = options.pool;
    const poolColumns = options.poolColumns ?? POOL_COLS;
    if (!Number.isInteger(Math.log2(poolColumns)) || poolColumns > POOL_WG)
      throw new PonderError(
        'gpu-error',
        `layernorm: ${poolColumns} pooler columns a workgroup is not a power of two ≤ ${POOL_WG}`,
      );
    const [scalar, vec4, pooled] = await Promise.all([
      needScalar ? compile(false) : null,
      needVec4 ? compile(true) : null,
      pool
        ? createPipeline(device, {
            label: `add-layernorm-pool-${pool}`,
            code:
              weightTypeWgsl(pool) +
              specialize(code, { VEC4: true, POOL: true }) +
              exitGateWgsl(GATE_BINDING),
            constants: { WG: wg, POOL_COLS: poolColumns },
          })
        : null,
    ]);
    return new AddLayerNormKernel(device, wg, scalar, vec4, pooled, poolColumns);
  }

  /** layernorm.wgsl's Params; `poolBlocks` 0 but for the POOL variant. */
  private params(
    label: string,
    s: Required<AddLayerNormShape>,
    hasBias: boolean,
    poolBlocks: number,
  ): GPUBuffer {
    return createUniformBuffer(this.device, `${label}-params`, [
      ['u32', s.rows],
      ['u32', s.width],
      ['f32', s.eps],
      ['u32', s.splits],
      ['u32', s.partialStride],
      ['u32', hasBias ? 1 : 0],
      ['u32', poolBlocks],
    ]);
  }

  prepare(
    args: {
      input: GPUBuffer;
      residual: GPUBuffer;
      gamma: GPUBuffer;
      beta: GPUBuffer;
      output: GPUBuffer;
      /** Added to every row before the norm (the preceding matmul's bias, when it wrote partial sums). */
      bias?: GPUBuffer;
      /** The exit gate (shaders/kernel.ts); default: never shut. */
      gate?: GPUBufferBinding;
    },
    shape: AddLayerNormShape,
  ): KernelDispatch {
    const checked = checkShape(shape, args);
    const { rows, width, splits, partialStride } = checked;
    // The VEC4 variant needs 16-byte aligned rows and slices (partialStride is unused at 1 split).
    const vec4 = vec4Fits(width, this.workgroupSize) && (splits === 1 || partialStride % 4 === 0);
    const pipeline = vec4 && this.vec4 ? this.vec4 : this.scalar;
    if (!pipeline) {
      throw new PonderError('invalid-input', `add-layernorm: no compiled variant serves width ${width}`);
    }
    const variant = pipeline === this.vec4 ? '-vec4' : '';
    const label = `add-layernorm${variant}-${rows}x${width}${splits > 1 ? `-splits${splits}` : ''}`;
    const uniforms = this.params(label, checked, args.bias !== undefined, 0);
    const bindGroup = bindBuffers(
      this.device,
      label,
      pipeline,
      [
        uniforms,
        args.input,
        args.residual,
        args.gamma,
        args.beta,
        args.output,
        // Without a bias the flag keeps it unread; gamma (read-only, `width` long) stands in.
        args.bias ?? args.gamma,
      ],
      [[GATE_BINDING, args.gate ?? openExitGate(this.device)]],
    );
    return { label, pipeline, bindGroup, workgroups: rowWorkgroups(rows) };
  }

  /**
   * The layer's last add+LayerNorm with the exit heads' pooler folded in (the POOL variant), at
   * batch 1: the rows as `prepare` does, plus poolerBlocks(width, poolColumns) workgroups that each
   * normalise the [CLS] row (row 0) again and write poolColumns outputs of
   * z = tanh(Wp · h_cls + bp), and with `pool.classifier` their partial logits, which exit.wgsl's
   * decide adds up. The norm vectors come packed, [bias | gamma | beta] (`width` floats each; the
   * bias is read only with `hasBias`).
   */
  preparePooled(
    args: {
      input: GPUBuffer;
      residual: GPUBuffer;
      /** [bias | gamma | beta]. */
      norm: GPUBuffer;
      hasBias: boolean;
      output: GPUBuffer;
      gate?: GPUBufferBinding;
    },
    shape: AddLayerNormShape,
    pool: PoolerFold,
  ): KernelDispatch {
    const pipeline = this.pooled;
    const checked = checkShape(shape, args);
    const { rows, width, splits, partialStride } = checked;
    if (!pipeline) throw new PonderError('invalid-input', 'add-layernorm: the POOL variant was not compiled');
    if (!poolerFoldFits(width) || (splits > 1 && partialStride % 4 !== 0)) {
      throw new PonderError('invalid-input', `add-layernorm: the pooler fold cannot take width ${width}`);
    }
    const blocks = poolerBlocks(width, this.poolColumns);
    const classes = pool.classifier?.classes ?? 0;
    const words = [
      blocks,
      pool.poolerWeight,
      pool.poolerBias,
      pool.pooledOffset + width,
      classes,
      pool.classifier?.weight ?? 0,
      pool.classifier?.bias ?? 0,
      (pool.classifier?.partsAt ?? 0) + blocks * classes,
      rows + blocks,
    ];
    if (
      words.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff) ||
      pool.poolerWeight % 4 !== 0 ||
      (pool.classifier && pool.classifier.weight % 4 !== 0) ||
      rows + blocks > MAX_WORKGROUPS
    ) {
      throw new PonderError(
        'invalid-input',
        `add-layernorm: bad pooled shape ${JSON.stringify({ shape, pool })}`,
      );
    }
    const label = `add-layernorm-pool-${rows}x${width}${splits > 1 ? `-splits${splits}` : ''}`;
    const params = this.params(label, checked, args.hasBias, blocks);
    const poolUniform = createUniformBuffer(this.device, `${label}-pool`, [
      ['u32', pool.poolerWeight],
      ['u32', pool.poolerBias],
      ['u32', pool.pooledOffset],
      ['u32', classes],
      ['u32', pool.classifier?.weight ?? 0],
      ['u32', pool.classifier?.bias ?? 0],
      ['u32', pool.classifier?.partsAt ?? 0],
    ]);
    const bindGroup = bindBuffers(
      this.device,
      label,
      pipeline,
      [params, args.input, args.residual, args.norm, pool.headWeights, args.output, pool.headBiases],
      [
        [GATE_BINDING, args.gate ?? openExitGate(this.device)],
        [8, { buffer: pool.pooled }],
        [9, { buffer: pool.scratch }],
        [10, { buffer: poolUniform }],
      ],
    );
    return { label, pipeline, bindGroup, workgroups: [rows + blocks, 1, 1] };
  }
}

/** A shape's counts with their defaults, checked, and the output checked against the inputs. */
function checkShape(
  shape: AddLayerNormShape,
  args: { input: GPUBuffer; residual: GPUBuffer; output: GPUBuffer },
): Required<AddLayerNormShape> {
  const { rows, width, eps } = shape;
  const splits = shape.splits ?? 1;
  const partialStride = shape.partialStride ?? 0;
  const counts = [rows, width, splits, partialStride];
  if (
    counts.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff) ||
    rows < 1 ||
    width < 1 ||
    splits < 1 ||
    (splits > 1 && partialStride < rows * width) ||
    !(eps >= 0)
  ) {
    throw new PonderError('invalid-input', `add-layernorm: bad shape ${JSON.stringify(shape)}`);
  }
  if (args.output === args.input || args.output === args.residual) {
    throw new PonderError(
      'invalid-input',
      'add-layernorm: output must be a different buffer from its inputs',
    );
  }
  return { rows, width, eps, splits, partialStride };
}

/** Which variant rows of `width` take at the default workgroup size (for kernel cache keys). */
export function addLayerNormVariant(width: number): 'vec4' | 'scalar' {
  return vec4Fits(width, 128) ? 'vec4' : 'scalar';
}

/** Whether a row of `width` suits the VEC4 variant at this workgroup size. */
function vec4Fits(width: number, workgroupSize: number): boolean {
  return width % 4 === 0 && width / 4 <= MAX_CHUNKS * workgroupSize;
}
