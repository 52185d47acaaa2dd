/**
 * Multi-head self-attention over the packed Q|K|V buffer with the padding mask
 * (semantics: tests/reference/ops.ts `attention`).
 */
import { PonderError } from '../src/errors';
import { bindBuffers, createPipeline, createUniformBuffer, divUp, type KernelDispatch } from './kernel';
import code from './attention.wgsl?raw';

/** Limits of attention.wgsl (MAX_D4 * 4, and the 3-D dispatch). */
export const ATTENTION_MAX_HEAD_DIM = 128;
const Q_TILE = 16;
const MAX_WORKGROUPS = 65535;

export interface AttentionShape {
  batch: number;
  seqLen: number;
  heads: number;
  headDim: number;
}

export class AttentionKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(device: GPUDevice): Promise<AttentionKernel> {
    return new AttentionKernel(device, await createPipeline(device, { label: 'attention', code }));
  }

  prepare(
    args: { qkv: GPUBuffer; mask: GPUBuffer; output: GPUBuffer },
    shape: AttentionShape,
  ): KernelDispatch {
    const { batch, seqLen, heads, headDim } = shape;
    for (const [name, v] of Object.entries(shape)) {
      if (!Number.isInteger(v) || v < 1)
        throw new PonderError('invalid-input', `attention: ${name} must be >= 1, got ${v}`);
    }
    if (headDim > ATTENTION_MAX_HEAD_DIM) {
      throw new PonderError(
        'unsupported-config',
        `attention: head size ${headDim} is larger than the ${ATTENTION_MAX_HEAD_DIM} the kernel supports`,
      );
    }
    if (heads > MAX_WORKGROUPS || batch > MAX_WORKGROUPS) {
      throw new PonderError(
        'unsupported-config',
        `attention: ${heads} heads x batch ${batch} exceeds the dispatch limit`,
      );
    }
    const label = `attention-b${batch}-t${seqLen}-h${heads}x${headDim}`;
    const uniforms = createUniformBuffer(this.device, `${label}-params`, [
      ['u32', batch],
      ['u32', seqLen],
      ['u32', heads],
      ['u32', headDim],
      ['f32', 1 / Math.sqrt(headDim)],
    ]);
    const bindGroup = bindBuffers(this.device, label, this.pipeline, [
      uniforms,
      args.qkv,
      args.mask,
      args.output,
    ]);
    return { label, pipeline: this.pipeline, bindGroup, workgroups: [divUp(seqLen, Q_TILE), heads, batch] };
  }
}
