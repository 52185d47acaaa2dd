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

export class AddLayerNormKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly workgroupSize: number,
    private readonly scalar: GPUComputePipeline | null,
    private readonly vec4: GPUComputePipeline | null,
  ) {}

  /**
   * `widths`: the row widths the caller will normalise, so that only the variants they need are
   * compiled (each pipeline costs about a second on software adapters); default: both.
   */
  static async create(
    device: GPUDevice,
    options: { workgroupSize?: number; widths?: readonly number[] } = {},
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
    const [scalar, vec4] = await Promise.all([
      needScalar ? compile(false) : null,
      needVec4 ? compile(true) : null,
    ]);
    return new AddLayerNormKernel(device, wg, scalar, vec4);
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
    // The VEC4 variant needs 16-byte aligned rows and slices (partialStride is unused at 1 split).
    const vec4 = vec4Fits(width, this.workgroupSize) && (splits === 1 || partialStride % 4 === 0);
    const pipeline = vec4 && this.vec4 ? this.vec4 : this.scalar;
    if (!pipeline) {
      throw new PonderError('invalid-input', `add-layernorm: no compiled variant serves width ${width}`);
    }
    const variant = pipeline === this.vec4 ? '-vec4' : '';
    const label = `add-layernorm${variant}-${rows}x${width}${splits > 1 ? `-splits${splits}` : ''}`;
    const uniforms = createUniformBuffer(this.device, `${label}-params`, [
      ['u32', rows],
      ['u32', width],
      ['f32', eps],
      ['u32', splits],
      ['u32', partialStride],
      ['u32', args.bias ? 1 : 0],
    ]);
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
}

/** Which variant rows of `width` take at the default workgroup size (for kernel cache keys). */
export function addLayerNormVariant(width: number): 'vec4' | 'scalar' {
  return vec4Fits(width, 128) ? 'vec4' : 'scalar';
}

/** Whether a row of `width` suits the VEC4 variant at this workgroup size. */
function vec4Fits(width: number, workgroupSize: number): boolean {
  return width % 4 === 0 && width / 4 <= MAX_CHUNKS * workgroupSize;
}
