/**
 * The compiled kernels one model needs, created once at load (asynchronously, in parallel) and
 * shared by every execution plan of that model.
 */
import { AddLayerNormKernel, addLayerNormVariant, poolerFoldFits } from '../../shaders/layernorm';
import {
  AttentionKernel,
  attentionLoadWidth,
  type AttentionPath,
  type RowsThreads,
} from '../../shaders/attention';
import { EmbeddingKernel } from '../../shaders/embeddings';
import { ExitKernel, FOLD_MAX_CLASSES } from '../../shaders/exit';
import { HeadsKernel } from '../../shaders/heads';
import type { WeightDtype } from '../../shaders/kernel';
import { MatmulKernel, type MatmulTiles } from '../../shaders/matmul';
import type { EncoderConfig, EncoderModel } from '../model/types';

export interface EngineKernels {
  embedding: EmbeddingKernel;
  /** Matmul + bias, no activation (projections, attention output, FFN output). */
  linear: MatmulKernel;
  /** Matmul + bias + the config's hidden_act (FFN intermediate). */
  activated: MatmulKernel;
  /** Pooler, classifier, per-layer head and λ MLP: a dispatch per stage group (shaders/heads.wgsl). */
  heads: HeadsKernel;
  attention: AttentionKernel;
  addLayerNorm: AddLayerNormKernel;
  /** Exit decision, λ-head input and work counter (shaders/exit.wgsl). */
  exit: ExitKernel;
  /** The attention entry point plans use ('auto': by shape, shaders/attention.ts). */
  attentionPath: AttentionPath | 'auto';
  /** How batch-1 plans skip the layers after an exit (KernelTuning.batchOneExit). */
  batchOneExit: 'gated' | 'indirect';
  /** Whether gated batch-1 plans run the last layer for the [CLS] row only (KernelTuning.lastLayerClsOnly). */
  lastLayerClsOnly: boolean;
  /** Whether gated batch-1 plans run each decide beside the next Q|K|V reduction (KernelTuning.decideInReduce). */
  decideInReduce: boolean;
  /** Projected rows attention's workgroups a block of queries (KernelTuning.attentionProjectionParts). */
  attentionProjectionParts?: number;
}

/**
 * How kernels split their work. The defaults were measured on an H200; software adapters (SwiftShader,
 * lavapipe) run every workgroup on a few CPU cores at a high fixed cost each, so there split-K and the
 * one-workgroup-per-query attention only add work: they get `SOFTWARE_TUNING` unless told otherwise.
 */
export interface KernelTuning {
  /** Matmul tiles, split-K and large-tile thresholds (shaders/matmul.ts). */
  matmul?: Partial<MatmulTiles>;
  /** Attention entry point: 'auto' (default) picks by shape; 'rows' gives way to 'short' past 256 tokens, 'short' to 'flash' past 512. */
  attention?: AttentionPath | 'auto';
  /**
   * How a batch-1 plan skips the layers after its example exits. 'gated' (default): every depth is
   * dispatched directly and the kernels return at their first instruction behind the exit gate
   * (shaders/kernel.ts); on a GPU that is cheaper than an indirect dispatch, which wgpu validates
   * with an extra dispatch of its own (9.1 against 2.7 µs a dispatch on an H200). 'indirect': later
   * depths get zero workgroups, as larger batches always do; cheaper on software adapters, where a
   * workgroup that returns at once still costs most of its launch.
   */
  batchOneExit?: 'gated' | 'indirect';
  /**
   * Where `rows` attention runs (batch 1 and short sequences), fold the attention output projection
   * into it (each workgroup multiplies its context rows by its head's columns of Wo; the next
   * add+LayerNorm sums the heads' shares): one matmul dispatch fewer a layer, for a transposed copy
   * of Wo in GPU memory (H² values a distinct layer). Default true: on whole passes at batch 1 x 128
   * tokens, back to back on the H200 (bench --tuning-ab), ALBERT-base took 2.39 ms against 2.44
   * and the shipped model 1.73 against 1.83
   * (bench/results/archive/2026-11-27-h200-tuning-ab-fuse-attention-output.json).
   */
  fuseAttentionOutput?: boolean;
  /**
   * Invocations of a `rows` attention workgroup (shaders/attention.ts RowsThreads): 128 (default) or
   * 256, with which one workgroup a block of queries projects all of H 768 and each invocation walks
   * half the keys of the value loop. On an H100 (bench --tuning-ab, 2026-12-07) 256 took ALBERT-base
   * passes 2.31 against 2.27 ms (attention 40.3 against 38.4 µs: half the workgroups, each longer)
   * and the shipped model 1.74 against 1.74 (attention 24.3 against 27.4 µs).
   */
  attentionRowsThreads?: RowsThreads;
  /**
   * Batch-1 plans behind the exit gate (`batchOneExit` 'gated') of a model whose only head is a
   * classifier of at most 16 classes (every plain Hub checkpoint): fold the pooler and the classifier
   * into the layer's last add+LayerNorm (extra workgroups each normalise the [CLS] row again and
   * compute `poolerColumns` columns of z and their share of the logits, which `decide` adds up): two
   * heads dispatches fewer a layer. Costs a packed copy of each layer's output bias and norm (3H
   * floats). Default true: on whole passes at batch 1 x 128 tokens, back to back (bench
   * --tuning-ab), ALBERT-base took 2.34 ms against 2.40 on an H200 and 2.54 against 2.61 on an
   * H100 (bench/results/archive/2026-11-27-{h200-tuning-ab-fold-pooler-columns,h100-tuning-ab-fold-pooler}.json).
   * Models with λ or per-layer heads keep their heads dispatches: folding their pooler alone, the
   * shipped model took 1.72 against 1.74 ms on the H200 and 1.82 against 1.78 on the H100.
   */
  foldPooler?: boolean;
  /**
   * With `foldPooler`: pooler outputs per workgroup (shaders/layernorm.ts poolColumns; default 8).
   * Fewer workgroups each normalise the [CLS] row again with more columns: 4, 8 and 16 tied on
   * whole passes on an H200, 32 lost 5% (same archive).
   */
  poolerColumns?: number;
  /**
   * Batch-1 plans behind the exit gate: after the model's last layer only the [CLS] row is read (by
   * the pooler and the exit heads), so that layer attends for the first block of queries only and
   * runs its add+LayerNorms and FFN on row 0, the FFN's two matmuls as GEMVs. Every output is the
   * same; the last layer's other rows of the hidden state are left as the layer before wrote them.
   * Default true: on whole passes at batch 1 x 128 tokens, back to back (bench --tuning-ab),
   * ALBERT-base took 2.33 against 2.37 ms and 2.27 against 2.31 on an H200, the shipped model 1.70
   * against 1.72 and 1.64 against 1.67 (2026-11-28-h200-tuning-ab-*.json), but on an H100 once
   * 2.27 against 2.23 (…-h100-tuning-ab-final-recheck.json): about the spread between two
   * classifier instances (bench/README.md). Less than the FFN's share suggests: one block of
   * attention still takes about as long as all sixteen (it waits on memory, not on arithmetic), and
   * the GEMVs over K 3072 take 11-20 µs. Kept for the work it saves (the FFN of 127 rows).
   */
  lastLayerClsOnly?: boolean;
  /**
   * Batch-1 plans behind the exit gate whose Q|K|V matmul is split along K: each depth's `decide`
   * runs in the same dispatch as the next depth's Q|K|V reduction (shaders/exit.wgsl
   * decide_reduce), one dispatch and one barrier fewer a layer. The next depth's Q|K|V matmul then
   * runs before the decision, behind the gate as it stood one depth earlier, so an exit costs that
   * matmul and its reduction more. Default true: on whole passes at batch 1 x 128 tokens, back to
   * back on an H100 (bench --tuning-ab in the full run of bench/results/deno-gpu.json), ALBERT-base
   * took 2.20 ms against 2.25 (98 dispatches against 109); the shipped model 1.75 against 1.68,
   * within the spread between classifier instances (a third instance whose plan was the same as the
   * second's took 1.71). Also tried and dropped
   * (bench/results/archive/2026-12-07-pooler-in-qkv.patch): the folded pooler in extra workgroups
   * of the next Q|K|V matmul, so that the layer's last add+LayerNorm runs plain (2.20 ms as well:
   * the matmul grew by what the norm lost).
   */
  decideInReduce?: boolean;
  /**
   * With `fuseAttentionOutput`: workgroups per block of queries in `rows` attention, each computing
   * the block's attention and projecting its share of the output columns (AttentionKernel
   * prepareProjected). Default: enough that each invocation projects at most one column quad (2 at
   * H 768 with 128 invocations). Fewer parts read K, V and Wo fewer times and walk more quads an
   * invocation; more parts recompute the attention more often. For measuring which one a GPU's
   * attention waits on (bench --tuning-ab); not yet measured.
   */
  attentionProjectionParts?: number;
}

export const SOFTWARE_TUNING: KernelTuning = {
  matmul: { splitKTarget: 0 },
  attention: 'flash',
  batchOneExit: 'indirect',
};

/**
 * Whether a model under this tuning can fold the attention output projection into `rows` attention
 * (KernelTuning.fuseAttentionOutput): the tuning allows it and can pick `rows`, and the head size is
 * a multiple of 4. Such a model also uploads its attention output weights transposed.
 */
export function fusesAttentionOutput(config: EncoderConfig, tuning: KernelTuning): boolean {
  const attention = tuning.attention ?? 'auto';
  return (
    (tuning.fuseAttentionOutput ?? true) &&
    (attention === 'auto' || attention === 'rows') &&
    (config.hiddenSize / config.numAttentionHeads) % 4 === 0
  );
}

/**
 * Whether batch-1 plans of this model under this tuning fold its heads into the last add+LayerNorm
 * (KernelTuning.foldPooler): the tuning allows it, batch 1 is gated, H suits the POOL variant, and
 * the model's only head is a classifier of at most FOLD_MAX_CLASSES classes on a pooler (no λ, no
 * per-layer heads). Only such a model uploads its output norms packed and compiles the POOL variant;
 * plans fold where both are there.
 */
export function foldsHeads(model: EncoderModel, tuning: KernelTuning): boolean {
  const { config, weights } = model;
  return (
    (tuning.foldPooler ?? true) &&
    (tuning.batchOneExit ?? 'gated') === 'gated' &&
    poolerFoldFits(config.hiddenSize) &&
    weights.pooler !== undefined &&
    weights.classifier !== undefined &&
    config.numLabels >= 1 &&
    config.numLabels <= FOLD_MAX_CLASSES &&
    weights.exitHeads?.lambda === undefined &&
    weights.exitHeads?.heads === undefined
  );
}

/** Kernels per device and variant: a second model on the same device compiles nothing. */
const kernelCache = new WeakMap<GPUDevice, Map<string, Promise<EngineKernels>>>();

/** `foldHeads`: also compile the add+LayerNorm with the heads folded in (foldsHeads). */
export function createKernels(
  device: GPUDevice,
  config: EncoderConfig,
  weightDtype: WeightDtype,
  tuning: KernelTuning = {},
  foldHeads = false,
): Promise<EngineKernels> {
  let cache = kernelCache.get(device);
  if (!cache) {
    cache = new Map();
    kernelCache.set(device, cache);
  }
  const headDim = config.hiddenSize / config.numAttentionHeads;
  // Kernels compile only the load widths this model needs (attention by head size, add+LayerNorm by H).
  const widths = `${attentionLoadWidth(headDim)}-${addLayerNormVariant(config.hiddenSize)}`;
  const key = `${weightDtype}-${config.hiddenAct}-${widths}-${foldHeads ? 'fold' : 'nofold'}-${JSON.stringify(tuning)}`;
  let kernels = cache.get(key);
  if (!kernels) {
    kernels = compileKernels(device, config, weightDtype, tuning, foldHeads);
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
  tuning: KernelTuning,
  foldHeads: boolean,
): Promise<EngineKernels> {
  const tiles = tuning.matmul;
  const fuseAttentionOutput = fusesAttentionOutput(config, tuning);
  const decideInReduce = (tuning.decideInReduce ?? true) && (tuning.batchOneExit ?? 'gated') === 'gated';
  const [embedding, linear, activated, attention, addLayerNorm, exit, heads] = await Promise.all([
    EmbeddingKernel.create(device, weightDtype),
    MatmulKernel.create(device, { weightDtype, activation: 'none', tiles }),
    MatmulKernel.create(device, { weightDtype, activation: config.hiddenAct, tiles }),
    // Only the entry points the tuning can pick (defaultAttentionPath, attentionPathFor).
    AttentionKernel.create(
      device,
      [config.hiddenSize / config.numAttentionHeads],
      tuning.attention === 'flash' ? ['flash'] : ['rows', 'short', 'flash'],
      {
        ...(fuseAttentionOutput ? { projection: weightDtype } : {}),
        ...(tuning.attentionRowsThreads ? { rowsThreads: tuning.attentionRowsThreads } : {}),
      },
    ),
    AddLayerNormKernel.create(device, {
      widths: [config.hiddenSize],
      ...(foldHeads
        ? { pool: weightDtype, ...(tuning.poolerColumns ? { poolColumns: tuning.poolerColumns } : {}) }
        : {}),
    }),
    ExitKernel.create(device, { decideReduce: decideInReduce }),
    HeadsKernel.create(device, weightDtype),
  ]);
  const attentionPath = tuning.attention ?? 'auto';
  const batchOneExit = tuning.batchOneExit ?? 'gated';
  return {
    embedding,
    linear,
    activated,
    heads,
    attention,
    addLayerNorm,
    exit,
    attentionPath,
    batchOneExit,
    lastLayerClsOnly: tuning.lastLayerClsOnly ?? true,
    decideInReduce,
    ...(tuning.attentionProjectionParts !== undefined
      ? { attentionProjectionParts: tuning.attentionProjectionParts }
      : {}),
  };
}
