/**
 * The compiled kernels one model needs, created once at load (asynchronously, in parallel) and
 * shared by every execution plan of that model.
 */
import { AddLayerNormKernel } from '../../shaders/layernorm';
import { AttentionKernel } from '../../shaders/attention';
import { EmbeddingKernel } from '../../shaders/embeddings';
import { ExitKernel } from '../../shaders/exit';
import type { WeightDtype } from '../../shaders/kernel';
import { MatmulKernel } from '../../shaders/matmul';
import type { EncoderConfig } from '../model/types';

export interface EngineKernels {
  embedding: EmbeddingKernel;
  /** Matmul + bias, no activation (projections, attention output, FFN output, classifier). */
  linear: MatmulKernel;
  /** Matmul + bias + the config's hidden_act (FFN intermediate). */
  activated: MatmulKernel;
  /** Matmul + bias + tanh (pooler). */
  pooler: MatmulKernel;
  attention: AttentionKernel;
  addLayerNorm: AddLayerNormKernel;
  /** Exit decision, λ-head input and work counter (shaders/exit.wgsl). */
  exit: ExitKernel;
}

/** Kernels per device and variant: a second model on the same device compiles nothing. */
const kernelCache = new WeakMap<GPUDevice, Map<string, Promise<EngineKernels>>>();

export function createKernels(
  device: GPUDevice,
  config: EncoderConfig,
  weightDtype: WeightDtype,
): Promise<EngineKernels> {
  let cache = kernelCache.get(device);
  if (!cache) {
    cache = new Map();
    kernelCache.set(device, cache);
  }
  const key = `${weightDtype}-${config.hiddenAct}`;
  let kernels = cache.get(key);
  if (!kernels) {
    kernels = compileKernels(device, config, weightDtype);
    cache.set(key, kernels);
    // A failed compile is not kept: a later load tries again.
    kernels.catch(() => cache.delete(key));
  }
  return kernels;
}

async function compileKernels(
  device: GPUDevice,
  config: EncoderConfig,
  weightDtype: WeightDtype,
): Promise<EngineKernels> {
  const [embedding, linear, activated, pooler, attention, addLayerNorm, exit] = await Promise.all([
    EmbeddingKernel.create(device, weightDtype),
    MatmulKernel.create(device, { weightDtype, activation: 'none' }),
    MatmulKernel.create(device, { weightDtype, activation: config.hiddenAct }),
    MatmulKernel.create(device, { weightDtype, activation: 'tanh' }),
    AttentionKernel.create(device),
    AddLayerNormKernel.create(device),
    ExitKernel.create(device),
  ]);
  return { embedding, linear, activated, pooler, attention, addLayerNorm, exit };
}
