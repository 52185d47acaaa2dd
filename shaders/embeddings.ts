/**
 * Embedding gather (word + position + token type) with LayerNorm (semantics:
 * tests/reference/ops.ts `embed`, ids clamped to the tables).
 */
import { PonderError } from '../src/errors';
import {
  bindBuffers,
  createPipeline,
  createUniformBuffer,
  type KernelDispatch,
  type WeightDtype,
  weightTypeWgsl,
} from './kernel';
import { rowWorkgroups } from './layernorm';
import code from './embeddings.wgsl?raw';

export interface EmbeddingShape {
  rows: number;
  seqLen: number;
  width: number;
  eps: number;
  vocabSize: number;
  typeVocabSize: number;
}

export class EmbeddingKernel {
  private constructor(
    private readonly device: GPUDevice,
    readonly weightDtype: WeightDtype,
    private readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(device: GPUDevice, weightDtype: WeightDtype): Promise<EmbeddingKernel> {
    const source = weightTypeWgsl(weightDtype) + code;
    const pipeline = await createPipeline(device, { label: `embeddings-${weightDtype}`, code: source });
    return new EmbeddingKernel(device, weightDtype, pipeline);
  }

  prepare(
    args: {
      tokenIds: GPUBuffer;
      tokenTypeIds: GPUBuffer;
      word: GPUBuffer;
      position: GPUBuffer;
      tokenType: GPUBuffer;
      gamma: GPUBuffer;
      beta: GPUBuffer;
      output: GPUBuffer;
    },
    shape: EmbeddingShape,
  ): KernelDispatch {
    const { rows, seqLen, width, eps, vocabSize, typeVocabSize } = shape;
    const counts = { rows, seqLen, width, vocabSize, typeVocabSize };
    for (const [name, v] of Object.entries(counts)) {
      if (!Number.isInteger(v) || v < 1)
        throw new PonderError('invalid-input', `embeddings: ${name} must be >= 1, got ${v}`);
    }
    if (!(eps >= 0)) throw new PonderError('invalid-input', `embeddings: bad eps ${eps}`);
    const label = `embeddings-${this.weightDtype}-${rows}x${width}`;
    const uniforms = createUniformBuffer(this.device, `${label}-params`, [
      ['u32', rows],
      ['u32', seqLen],
      ['u32', width],
      ['f32', eps],
      ['u32', vocabSize],
      ['u32', typeVocabSize],
    ]);
    const bindGroup = bindBuffers(this.device, label, this.pipeline, [
      uniforms,
      args.tokenIds,
      args.tokenTypeIds,
      args.word,
      args.position,
      args.tokenType,
      args.gamma,
      args.beta,
      args.output,
    ]);
    return { label, pipeline: this.pipeline, bindGroup, workgroups: rowWorkgroups(rows) };
  }
}
