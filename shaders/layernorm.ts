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
    args: { input: GPUBuffer; residual: GPUBuffer; gamma: GPUBuffer; beta: GPUBuffer; output: GPUBuffer },
    shape: AddLayerNormShape,
  ): KernelDispatch {
    const { rows, width, eps } = shape;
    if (!Number.isInteger(rows) || !Number.isInteger(width) || rows < 1 || width < 1 || !(eps >= 0)) {
      throw new PonderError('invalid-input', `add-layernorm: bad shape ${JSON.stringify(shape)}`);
    }
    if (args.output === args.input || args.output === args.residual) {
      throw new PonderError(
        'invalid-input',
        'add-layernorm: output must be a different buffer from its inputs',
      );
    }
    const label = `add-layernorm-${rows}x${width}`;
    const uniforms = createUniformBuffer(this.device, `${label}-params`, [
      ['u32', rows],
      ['u32', width],
      ['f32', eps],
    ]);
    const bindGroup = bindBuffers(this.device, label, this.pipeline, [
      uniforms,
      args.input,
      args.residual,
      args.gamma,
      args.beta,
      args.output,
    ]);
    return { label, pipeline: this.pipeline, bindGroup, workgroups: rowWorkgroups(rows) };
  }
}
