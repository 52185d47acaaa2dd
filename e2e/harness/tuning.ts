import type { KernelTuning } from '../../src/engine/kernels';

/**
 * What real GPUs run at batch 1 (split-K; `rows` attention, with the output projection folded in
 * where the head size is a multiple of 4; direct dispatches behind the exit gate, with the heads'
 * pooler, and for classifier-only models the classifier, folded into the last add+LayerNorm, and
 * the last layer run for the [CLS] row only),
 * forced at the fixtures' small shapes: software adapters default to SOFTWARE_TUNING, so without
 * this CI would never run these paths through the engine. splitKMinChunk 16 splits every matmul
 * with K >= 32.
 */
export const GPU_TUNING: KernelTuning = {
  matmul: { splitKTarget: 768, splitKMinChunk: 16 },
  attention: 'rows',
  batchOneExit: 'gated',
};
