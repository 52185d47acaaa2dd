/**
 * Residual add + LayerNorm (semantics: tests/reference/ops.ts `addLayerNorm`), after attention and
 * after the feed-forward block.
 */
import { PonderError } from '../src/errors';
import { bindBuffers, createPipeline, createUniformBuffer, type KernelDispatch } from './kernel';
import code from './layernorm.wgsl?raw';

const MAX_WORKGROUPS = 65535;

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

export class AddLayerNormKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(
    device: GPUDevice,
    options: { workgroupSize?: number } = {},
  ): Promise<AddLayerNormKernel> {
    const wg = options.workgroupSize ?? 128;
    if (!Number.isInteger(Math.log2(wg)))
      throw new PonderError('gpu-error', `layernorm: workgroup size ${wg} is not a power of two`);
    const pipeline = await createPipeline(device, { label: 'add-layernorm', code, constants: { WG: wg } });
    return new AddLayerNormKernel(device, pipeline);
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
    const label = `add-layernorm-${rows}x${width}${splits > 1 ? `-splits${splits}` : ''}`;
    const uniforms = createUniformBuffer(this.device, `${label}-params`, [
      ['u32', rows],
      ['u32', width],
      ['f32', eps],
      ['u32', splits],
      ['u32', partialStride],
      ['u32', args.bias ? 1 : 0],
    ]);
    const bindGroup = bindBuffers(this.device, label, this.pipeline, [
      uniforms,
      args.input,
      args.residual,
      args.gamma,
      args.beta,
      args.output,
      // Without a bias the flag keeps it unread; gamma (read-only, `width` long) stands in.
      args.bias ?? args.gamma,
    ]);
    return { label, pipeline: this.pipeline, bindGroup, workgroups: rowWorkgroups(rows) };
  }
}
