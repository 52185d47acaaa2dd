import type { KernelTuning } from '../../src/engine/kernels';

/**
 * What real GPUs run at batch 1 (split-K; `rows` attention, with the output projection folded in
 * where the head size is a multiple of 4; direct dispatches behind the exit gate, with the heads'
 * pooler, and for classifier-only models the classifier, folded into the last add+LayerNorm, and
 * the last layer run for the [CLS] row only, each decide beside the next Q|K|V reduction),
 * forced at the fixtures' small shapes: software adapters default to SOFTWARE_TUNING, so without
 * this CI would never run these paths through the engine. splitKMinChunk 16 splits every matmul
 * with K >= 32.
 */
export const GPU_TUNING: KernelTuning = {
  // 512, not the default 768: the split 64 x 64 blocks need a grid of a quarter of the target, which
  // albert-odd's first batch (3 examples, up to 37 tokens) reaches at 512 and not at 768.
  matmul: { splitKTarget: 512, splitKMinChunk: 16 },
  attention: 'rows',
  batchOneExit: 'gated',
  decideInReduce: true,
};
