/**
 * Launcher of the early-exit kernels (exit.wgsl): the per-layer decision, the λ head's [z_n ; z_{n−1}]
 * input and the work counter. The criterion lives in one small uniform buffer that the engine
 * rewrites per call (`encodeCriterion`), so choosing another criterion or threshold recompiles and
 * reloads nothing.
 */
import type { ExitCriterion } from '../src/exit/criteria';
import { PonderError } from '../src/errors';
import { PABEE_REGRESSION_THRESHOLD } from '../src/exit/criteria';
import { createPipeline, createUniformBuffer, divUp, partialSums8Wgsl, type KernelDispatch } from './kernel';
import { specialize } from './preprocess';
import code from './exit.wgsl?raw';

/** Floats per (depth, example) record before the probabilities; see exit.wgsl. */
export const RECORD_HEAD = 8;
/** Record fields, by index. */
export const REC = { lambda: 0, p: 1, cdf: 2, gate: 3, statistic: 4, live: 5, exits: 6 } as const;
/** u32 words per example of the exit state (the WGSL `State` struct). */
export const STATE_WORDS = 8;
/** The most classes whose classifier `decide` can sum from partial logits (exit.wgsl). */
export const FOLD_MAX_CLASSES = 16;
/** Bytes of the criterion uniform. */
export const CRITERION_BYTES = 32;

const KIND_CODE: Record<ExitCriterion['kind'], number> = {
  none: 0,
  palbert: 1,
  'pondernet-sample': 2,
  pabee: 3,
  'max-prob': 4,
  entropy: 5,
  gate: 6,
  fixed: 7,
};

/** The static per-depth description the kernels read (the WGSL `Layer` struct). */
export interface ExitLayerShape {
  depth: number;
  batch: number;
  numLabels: number;
  numLayers: number;
  task: 'softmax' | 'sigmoid' | 'regression';
  hasLambda: boolean;
  hasHeads: boolean;
  numGates: number;
  slotWords: number;
  rows: number;
  hidden: number;
  headOffset: number;
  seqLen: number;
  /**
   * Where slot 0's λ logit sits in `scratch` and in how many partial sums (slot s's at
   * lambdaOffset + s × lambdaParts): heads.ts lambdaLogitParts.
   */
  lambdaOffset: number;
  lambdaParts: number;
  /**
   * Batch 1 with direct dispatches (shaders/kernel.ts exit gate): once the example has exited,
   * `decide` at later depths returns at once (no work counted, nothing written).
   */
  gatedByExit: boolean;
  /**
   * Batch 1 with the classifier folded into the layer's last add+LayerNorm (layernorm.ts
   * `preparePooled`): decide sums `parts` partial logits [parts][numLabels] from `at` in `scratch`
   * into this depth's logits first. Absent: the heads kernel wrote them.
   */
  classifierParts?: { at: number; parts: number };
  /**
   * decide_reduce (ExitKernel.decideWithReduce): where a copy of the gates' parameters (5 floats a
   * gate) sits in `scratch`, as that entry point reads them there.
   */
  gateAt?: number;
}

/** How a dispatch's workgroup counts follow the rows still needed (exit.wgsl `slotKinds`). */
export const SLOT_KIND = {
  fixed: 0,
  tiledMatmul: 1,
  attention: 2,
  layerNorm: 3,
  // 4 was the work counter's own dispatch, now part of decide.
  compact: 5,
} as const;

/**
 * The criterion uniform for one call. `useHeads`: whether the criterion reads the per-layer heads
 * (src/exit's checkSupported decides). Thresholds are written as f32, which is what criteria.ts's
 * f32 mode compares against.
 */
export function encodeCriterion(
  criterion: ExitCriterion,
  useHeads: boolean,
  exampleBase: number,
  realBatch: number,
  compact = true,
): ArrayBuffer {
  const data = new ArrayBuffer(CRITERION_BYTES);
  const v = new DataView(data);
  let threshold = 0;
  let param = 0;
  switch (criterion.kind) {
    case 'palbert':
      threshold = criterion.q;
      break;
    case 'pondernet-sample':
      param = criterion.seed;
      break;
    case 'pabee':
      param = Math.min(criterion.patience, 0xffffffff);
      threshold = criterion.regressionThreshold ?? PABEE_REGRESSION_THRESHOLD;
      break;
    case 'max-prob':
    case 'entropy':
    case 'gate':
      threshold = criterion.threshold;
      break;
    case 'fixed':
      param = criterion.layer;
      break;
    case 'none':
      break;
  }
  v.setUint32(0, KIND_CODE[criterion.kind], true);
  v.setUint32(4, useHeads ? 1 : 0, true);
  // Beyond f32's range (an entropy threshold of 1e300) saturates to Infinity: same comparisons.
  v.setFloat32(8, threshold, true);
  v.setUint32(12, param >>> 0, true);
  v.setUint32(16, exampleBase >>> 0, true);
  v.setUint32(20, realBatch, true);
  v.setUint32(24, compact ? 1 : 0, true);
  return data;
}

/** Rows of a decide_reduce reduction workgroup (64 columns each). */
const REDUCE_ROWS = 2;
const MAX_WORKGROUPS = 65535;

/** Words of the work-counter buffer a plan allocates (exit.wgsl `counters`). */
export function counterWords(numLayers: number, batch: number): number {
  return 4 * numLayers + batch;
}

export class ExitKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly decidePipeline: GPUComputePipeline,
    private readonly compactPipelines: { out: GPUComputePipeline; in: GPUComputePipeline },
    private readonly decideReducePipeline: GPUComputePipeline | null,
  ) {}

  /** `decideReduce`: also compile decide_reduce (KernelTuning.decideInReduce). */
  static async create(device: GPUDevice, options: { decideReduce?: boolean } = {}): Promise<ExitKernel> {
    // decide_reduce's eight-slice loads (WGSL has no includes; matmul.wgsl's reduction uses the same).
    const reduce8 = partialSums8Wgsl(
      'reduce8',
      'reducePartials',
      'reduction.partialStride',
      'reduction.splits',
    );
    const plain = specialize(code, {}) + reduce8;
    const [decide, out, back] = await Promise.all(
      (['decide', 'compact_out', 'compact_in'] as const).map((entryPoint) =>
        createPipeline(device, { label: `exit-${entryPoint}`, code: plain, entryPoint }),
      ),
    );
    const decideReduce = options.decideReduce
      ? await createPipeline(device, {
          label: 'exit-decide_reduce',
          code: specialize(code, { GATES_IN_SCRATCH: true }) + reduce8,
          entryPoint: 'decide_reduce',
        })
      : null;
    return new ExitKernel(device, decide!, { out: out!, in: back! }, decideReduce);
  }

  /** Whether decideWithReduce() can be used (compiled). */
  get canDecideWithReduce(): boolean {
    return this.decideReducePipeline !== null;
  }

  /** The per-depth uniform, created once per plan and depth. */
  layerUniform(label: string, s: ExitLayerShape): GPUBuffer {
    if (s.classifierParts && (s.batch !== 1 || s.numLabels > FOLD_MAX_CLASSES)) {
      throw new PonderError(
        'invalid-input',
        `exit: a folded classifier needs batch 1 and ≤ ${FOLD_MAX_CLASSES} classes`,
      );
    }
    const task = { softmax: 0, sigmoid: 1, regression: 2 }[s.task];
    return createUniformBuffer(this.device, label, [
      ['u32', s.depth],
      ['u32', s.batch],
      ['u32', s.numLabels],
      ['u32', s.numLayers],
      ['u32', task],
      ['u32', s.hasLambda ? 1 : 0],
      ['u32', s.hasHeads ? 1 : 0],
      ['u32', s.numGates],
      ['u32', s.slotWords],
      ['u32', s.rows],
      ['u32', s.hidden],
      ['u32', s.headOffset],
      ['u32', s.seqLen],
      ['u32', s.lambdaOffset],
      ['u32', s.lambdaParts],
      ['u32', s.gatedByExit ? 1 : 0],
      ['u32', s.classifierParts?.at ?? 0],
      ['u32', s.classifierParts?.parts ?? 0],
      ['u32', s.gateAt ?? 0],
    ]);
  }

  decide(
    label: string,
    b: {
      layer: GPUBuffer;
      criterion: GPUBuffer;
      logits: GPUBuffer;
      scratch: GPUBuffer;
      gateParams: GPUBuffer;
      state: GPUBuffer;
      records: GPUBuffer;
      indirect: GPUBuffer;
      counters: GPUBuffer;
      slotKinds: GPUBuffer;
    },
  ): KernelDispatch {
    const buffers = [
      b.layer,
      b.criterion,
      b.logits,
      b.scratch,
      b.gateParams,
      b.state,
      b.records,
      b.indirect,
      b.counters,
    ];
    const entries: [number, GPUBuffer][] = buffers.map((buffer, i) => [i, buffer]);
    entries.push([11, b.slotKinds]);
    return this.dispatch(label, this.decidePipeline, entries, [1, 1, 1]);
  }

  /**
   * Batch 1 behind the exit gate: decide for `layer`'s depth in workgroup 0 (reading the gates'
   * parameters from `scratch` at the layer's `gateAt`),
   * and in the others the split-K reduction of the next depth's Q|K|V (`reduce`: output = Σ of
   * `splits` slices of M × N partial sums + bias), one dispatch instead of two.
   */
  decideWithReduce(
    label: string,
    b: {
      layer: GPUBuffer;
      criterion: GPUBuffer;
      logits: GPUBuffer;
      scratch: GPUBuffer;
      state: GPUBuffer;
      records: GPUBuffer;
      counters: GPUBuffer;
    },
    reduce: { partials: GPUBuffer; bias: GPUBuffer; output: GPUBuffer; M: number; N: number; splits: number },
  ): KernelDispatch {
    const pipeline = this.decideReducePipeline;
    if (!pipeline) throw new PonderError('unsupported-config', 'exit: decide_reduce was not compiled');
    const { M, N, splits } = reduce;
    const colGroups = divUp(N, 64);
    const groups = 1 + colGroups * divUp(M, REDUCE_ROWS);
    if (groups > MAX_WORKGROUPS || splits < 1) {
      throw new PonderError(
        'unsupported-config',
        `exit: a ${M} x ${N} reduction of ${splits} slices does not fit decide_reduce`,
      );
    }
    const uniforms = createUniformBuffer(this.device, `${label}-reduce`, [
      ['u32', M],
      ['u32', N],
      ['u32', splits],
      ['u32', M * N],
      ['u32', colGroups],
    ]);
    const entries: [number, GPUBuffer][] = [
      [0, b.layer],
      [1, b.criterion],
      [2, b.logits],
      [3, b.scratch],
      [5, b.state],
      [6, b.records],
      [8, b.counters],
      [16, uniforms],
      [17, reduce.partials],
      [18, reduce.bias],
      [19, reduce.output],
    ];
    return this.dispatch(label, pipeline, entries, [groups, 1, 1]);
  }

  /**
   * One half of moving the running examples' hidden states and mask rows to the front slots. Its
   * counts are 0 until decide writes them (indirect), so the direct dispatch at depth 1 does nothing.
   */
  compact(
    label: string,
    half: 'out' | 'in',
    b: {
      layer: GPUBuffer;
      counters: GPUBuffer;
      hidden: GPUBuffer;
      mask: GPUBuffer;
      tempHidden: GPUBuffer;
      tempMask: GPUBuffer;
    },
  ): KernelDispatch {
    const entries: [number, GPUBuffer][] = [
      [0, b.layer],
      [8, b.counters],
      [12, b.hidden],
      [13, b.mask],
      [14, b.tempHidden],
      [15, b.tempMask],
    ];
    return this.dispatch(label, this.compactPipelines[half], entries, [0, 1, 1]);
  }

  private dispatch(
    label: string,
    pipeline: GPUComputePipeline,
    entries: [number, GPUBuffer][],
    workgroups: readonly [number, number, number],
  ): KernelDispatch {
    const bindGroup = this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: entries.map(([binding, buffer]) => ({ binding, resource: { buffer } })),
    });
    return { label, pipeline, bindGroup, workgroups };
  }
}
