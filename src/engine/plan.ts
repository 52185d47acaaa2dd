/**
 * An execution plan: everything one forward pass needs for one (batch, sequence length) bucket,
 * built once and replayed. Activation buffers are allocated here and never again for this shape;
 * bind groups are created here, and ALBERT's shared layers reuse the same ones at every depth.
 *
 * Order of one pass (one compute pass per depth, all in one command buffer, one readback):
 *   pass 0: embeddings (+ ALBERT's E → H projection)
 *   pass n (depth n − 1): [compact out/in] · layer kernels · heads · decide (+ the work counter)
 *   (batch 1 behind the exit gate, Q|K|V split: depth n − 2's decide is the second dispatch of pass
 *   n, beside depth n − 1's Q|K|V reduction, KernelTuning.decideInReduce; the last depth keeps its own)
 * `heads` (shaders/heads.wgsl) is one dispatch per stage group: pooler → z_n; shared classifier,
 * per-layer head and λ layer 0 (on z_n or [z_n ; z_{n−1}]) together; each further λ hidden layer
 * (λ's output layer rides with the last one as partial sums, which decide adds).
 * Early exit: every dispatch of depths 2..L is indirect, its workgroup counts read from the
 * `indirect` buffer, which the CPU fills with the full counts before each pass. `decide` (the exit
 * kernel) keeps each example's exit state and, once every example of the batch has exited, writes
 * zeros over the counts of all later depths: from then on the pass does no work at all. In a batch,
 * an example that exited is frozen (its state and records stop changing), the examples still running
 * move to the front slots (compact_out/in at the next depth's start), and `decide` shrinks the
 * row-wise kernels of later depths to those slots: exited examples and padding cost no layer work.
 * Batch 1 (KernelTuning.batchOneExit 'gated', the GPU default) dispatches every depth directly
 * instead: the layer kernels read the example's exit state as their exit gate (shaders/kernel.ts)
 * and return at their first instruction once it has exited, and so does `decide`. On wgpu that is
 * cheaper both ways: 2.7 against 9.1 µs a running dispatch, 3.4 against 8.0 µs a skipped one (H200,
 * bench --dispatch-probe), since wgpu validates every indirect dispatch with one of its own.
 *
 * Encoded ahead: a pass's commands never depend on its inputs (they arrive by writeBuffer, and exit
 * decisions are read on the GPU), so right after each single-submit call's submit the plan encodes
 * the next call's command buffer while the GPU works; the next call only uploads and submits.
 *
 * Streaming mode: one command buffer and submit per depth, each followed by a copy of that depth's
 * small results (logits, head outputs, exit records, state) into its own staging buffer, so the
 * caller gets each layer while later ones run; the last one also carries the full readback. Cost:
 * L submits and L + 1 mapAsync instead of 1 and 1; the GPU never waits on the CPU in either mode.
 */
import { CRITERION_BYTES, RECORD_HEAD, SLOT_KIND, STATE_WORDS, counterWords } from '../../shaders/exit';
import { attentionPathFor } from '../../shaders/attention';
import { headsDispatchCount, lambdaFolded, lambdaHiddenFloats, lambdaLogitParts } from '../../shaders/heads';
import { poolerBlocks } from '../../shaders/layernorm';
import type { MatmulKernel } from '../../shaders/matmul';
import { EXIT_GATE_BYTES, encodeDispatches, type KernelDispatch } from '../../shaders/kernel';
import { PonderError } from '../errors';
import type { EncoderConfig } from '../model/types';
import { layerSchedule } from '../model/types';
import type { GpuLayer, GpuWeights } from './gpu-weights';
import type { EngineKernels } from './kernels';

export interface PlanInput {
  /** u32 token ids, [batch × seqLen] for the plan's padded batch. */
  inputIds: Uint32Array;
  tokenTypeIds: Uint32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Uint32Array;
}

export type RunMode = 'single-submit' | 'streaming';

export interface PlanRunOptions {
  readPooled?: boolean;
  /** The criterion uniform (shaders/exit.ts encodeCriterion); default: run every layer. */
  criterion?: ArrayBuffer;
  mode?: RunMode;
  /** Streaming mode: called with each depth's results as soon as they are back. */
  onDepth?: (depth: number, slice: DepthSlice) => void;
  /**
   * Time every dispatch on its own: one compute pass with timestamps per dispatch (needs
   * timestamp-query). Slower than a normal run, for profiles only; ignores streaming.
   */
  profile?: boolean;
  /**
   * Diagnostic (single-submit only): this many full forward passes back to back in one submit, each
   * starting from the initial exit state as a call does, so that the GPU runs at the clocks of
   * sustained work rather than of one short burst; outputs and timestamps are the last pass's.
   * With `profile`, only the last pass is profiled.
   */
  backToBack?: number;
}

/** GPU time of one dispatch of a profiled run. */
export interface DispatchTime {
  /** 0: embeddings; n: depth n. */
  pass: number;
  label: string;
  ms: number;
}

/** One depth's results for the whole padded batch. */
export interface DepthSlice {
  /** [batch][recordFloats] by example (see exit.wgsl): exit fields, probabilities and logits. */
  records: Float32Array;
}

export interface PlanOutput {
  /** Per-layer logits, [numLayers][batch][numLabels] flattened. Empty when there is no classifier. */
  logits: Float32Array;
  /** Per-layer pooled [CLS] states, [numLayers][batch][hidden] flattened, when requested. */
  pooled?: Float32Array;
  /** Exit records, [numLayers][batch][recordFloats]; empty without a classifier. */
  records: Float32Array;
  /** Per-layer heads' logits [numLayers][batch][numLabels], when the model has them. */
  headLogits?: Float32Array;
  /** Exit state per example, [batch][STATE_WORDS] (exitLayer at word 5, fired at 6). */
  state: Uint32Array;
  /** [0, L): token rows processed per depth; [L, 2L): examples still running at that depth. */
  counters: Uint32Array;
  /** GPU time of pass 0 (embeddings) and of each depth, in ms, where timestamp-query exists. */
  passMs?: number[];
  /** With `profile`: every dispatch's GPU time, in encoding order. */
  dispatchMs?: DispatchTime[];
  /**
   * CPU time from the start of run() to the last submit: input uploads, submit(s), and encoding
   * unless a command buffer encoded ahead by the previous call was ready.
   */
  submitMs: number;
}

export class ExecutionPlan {
  readonly batch: number;
  readonly seqLen: number;
  /** Bytes of GPU memory the plan's activation buffers hold. */
  readonly bytes: number;
  /** Floats per exit record: RECORD_HEAD + 2 × numLabels. */
  readonly recordFloats: number;
  /** False for a model without a classifier: no exit machinery, every dispatch direct. */
  readonly exitEnabled: boolean;

  private readonly device: GPUDevice;
  private readonly config: EncoderConfig;
  private readonly buffers: GPUBuffer[] = [];
  private readonly inputIds: GPUBuffer;
  private readonly tokenTypeIds: GPUBuffer;
  private readonly mask: GPUBuffer;
  private readonly logits: GPUBuffer;
  private readonly pooled: GPUBuffer;
  private readonly pooledStaging: GPUBuffer;
  private readonly scratch: GPUBuffer;
  private readonly state: GPUBuffer;
  private readonly records: GPUBuffer;
  private readonly indirect: GPUBuffer;
  private readonly indirectNext: GPUBuffer;
  /** Bytes of indirect arguments per depth. */
  private readonly slotBytes: number;
  private readonly counters: GPUBuffer;
  private readonly criterion: GPUBuffer;
  private readonly staging: GPUBuffer;
  private readonly depthStaging: GPUBuffer[] = [];
  private readonly sections: { name: string; src: GPUBuffer; bytes: number; at: number }[] = [];
  private readonly querySet: GPUQuerySet | null = null;
  private readonly queryResolve: GPUBuffer | null = null;
  /** Pass 0 (embeddings) then one per depth. */
  private readonly passes: KernelDispatch[][];
  private readonly initialIndirect: Uint32Array;
  private readonly initialState: Uint32Array;
  private readonly headOffset: number;
  /** Whether the model has PABEE per-layer heads (their logits are in the records). */
  readonly hasHeads: boolean;
  /** Batch 1 with exit: direct dispatches behind the exit gate instead of indirect counts. */
  readonly gated: boolean;
  /**
   * KernelTuning.decideInReduce in effect: depth d's decide runs in pass d + 2 (beside depth
   * d + 1's Q|K|V reduction), except the last depth's, so its records are final one pass later.
   */
  readonly decideDeferred: boolean;

  constructor(
    device: GPUDevice,
    config: EncoderConfig,
    weights: GpuWeights,
    kernels: EngineKernels,
    batch: number,
    seqLen: number,
  ) {
    this.device = device;
    this.config = config;
    this.batch = batch;
    this.seqLen = seqLen;
    const rows = batch * seqLen;
    const { hiddenSize: H, embeddingSize: E, intermediateSize: I, numHiddenLayers: L } = config;
    const C = weights.classifier ? config.numLabels : 0;
    this.exitEnabled = C > 0 && weights.pooler !== undefined;
    const exitWeights = this.exitEnabled ? weights.exit : undefined;
    this.hasHeads = exitWeights?.heads !== undefined;
    this.recordFloats = RECORD_HEAD + 4 * Math.max(C, 1);
    let bytes = 0;
    const allocate = (label: string, byteSize: number, usage: number) => {
      const size = Math.max(16, Math.ceil(byteSize / 16) * 16);
      const buffer = device.createBuffer({ label: `plan${batch}x${seqLen}.${label}`, size, usage });
      this.buffers.push(buffer);
      if (!(usage & GPUBufferUsage.MAP_READ)) bytes += size;
      return buffer;
    };
    const COPY_DST = GPUBufferUsage.COPY_DST;
    const COPY_SRC = GPUBufferUsage.COPY_SRC;
    const STORAGE = GPUBufferUsage.STORAGE;
    const storage = (label: string, elements: number, extraUsage = 0) =>
      allocate(label, elements * 4, STORAGE | extraUsage);
    const staging = (label: string, byteSize: number) =>
      allocate(label, byteSize, GPUBufferUsage.MAP_READ | COPY_DST);

    this.inputIds = storage('inputIds', rows, COPY_DST);
    this.tokenTypeIds = storage('tokenTypeIds', rows, COPY_DST);
    this.mask = storage('mask', rows, COPY_DST);
    const hidden = storage('hidden', rows * H);
    const attentionNormed = storage('attentionNormed', rows * H);
    const qkv = storage('qkv', rows * 3 * H);
    const context = storage('context', rows * H);
    const projected = storage('projected', rows * H);
    const intermediate = storage('intermediate', rows * I);
    this.pooled = storage('pooled', L * batch * H, COPY_SRC);
    this.logits = storage('logits', Math.max(1, L * batch * C), COPY_SRC | COPY_DST);
    this.pooledStaging = staging('pooledStaging', L * batch * H * 4);
    const packed = weights.packedHeads;
    const lambda = exitWeights?.lambda;
    // λ logits [L][batch] (a λ without hidden layers), the per-layer heads' logits [L][batch][C],
    // the λ hidden vectors, then the λ logit's partial sums per slot, which heads.wgsl's folded
    // output layer writes and decide adds up at the same depth (so one region serves every depth).
    this.headOffset = L * batch;
    const lambdaHiddenAt = L * batch * (1 + Math.max(C, 1));
    const lambdaHiddenWidth = packed && lambda ? lambdaHiddenFloats(packed.layout) : 0;
    const folded = packed && lambda ? lambdaFolded(packed.layout) : false;
    const lambdaParts = packed && lambda ? lambdaLogitParts(packed.layout) : 1;
    const lambdaPartsAt = lambdaHiddenAt + batch * lambdaHiddenWidth;
    const lambdaOffset = (depth: number) => (folded ? lambdaPartsAt : depth * batch);
    // Batch 1 behind the exit gate (KernelTuning.foldPooler), a model whose only head is a classifier
    // (kernels.ts foldsHeads, which also decided that the output norms were packed and the POOL
    // variant compiled): the pooler and the classifier ride in each depth's last add+LayerNorm
    // (shaders/layernorm.ts preparePooled), the classifier as partial logits in `scratch` that decide
    // adds up (one region serves every depth, like λ's partial sums), and no heads dispatch is left.
    this.gated = this.exitEnabled && batch === 1 && kernels.batchOneExit === 'gated';
    const headsFolded =
      this.gated &&
      packed !== undefined &&
      kernels.addLayerNorm.canPool &&
      weights.layers.every((l) => l.outputNormPacked);
    const classifierPartsAt = lambdaPartsAt + (folded ? batch * lambdaParts : 0);
    const classifierParts = headsFolded ? poolerBlocks(H, kernels.addLayerNorm.poolColumns) : 0;
    // KernelTuning.decideInReduce reads the gates' parameters from a copy after the partial logits.
    const gateAt = classifierPartsAt + classifierParts * C;
    const gateData = this.gated && kernels.decideInReduce ? exitWeights?.gateData : undefined;
    this.scratch = storage('exitScratch', gateAt + (gateData?.length ?? 0), COPY_SRC | COPY_DST);
    if (gateData) device.queue.writeBuffer(this.scratch, gateAt * 4, gateData);
    // At batch 1 the exit state is also the layer kernels' exit gate (a uniform view of its first words).
    this.state = storage('exitState', batch * STATE_WORDS, COPY_SRC | COPY_DST | GPUBufferUsage.UNIFORM);
    // Batch 1 (unless the tuning says 'indirect'): every depth is dispatched directly and the kernels
    // return at once once the example has exited (shaders/kernel.ts exit gate); on wgpu an indirect
    // dispatch costs ~6 µs more GPU time than a direct one. Larger batches keep the indirect counts,
    // which also shrink to the running rows.
    const gate = this.gated ? { gate: { buffer: this.state, offset: 0, size: EXIT_GATE_BYTES } } : {};
    this.records = storage('exitRecords', L * batch * this.recordFloats, COPY_SRC | COPY_DST);
    this.counters = storage('workCounters', counterWords(L, batch), COPY_SRC | COPY_DST);
    this.criterion = allocate('criterion', CRITERION_BYTES, GPUBufferUsage.UNIFORM | COPY_DST);
    const gateParams = exitWeights?.gateParams ?? storage('noGates', 4);

    const embedding: KernelDispatch[] = [];
    const embedOut = weights.embeddingProjection ? storage('embedded', rows * E) : hidden;
    embedding.push(
      kernels.embedding.prepare(
        {
          tokenIds: this.inputIds,
          tokenTypeIds: this.tokenTypeIds,
          word: weights.word,
          position: weights.position,
          tokenType: weights.tokenType,
          gamma: weights.embeddingNorm.gamma,
          beta: weights.embeddingNorm.beta,
          output: embedOut,
        },
        {
          rows,
          seqLen,
          width: E,
          eps: config.layerNormEps,
          vocabSize: config.vocabSize,
          typeVocabSize: config.typeVocabSize,
        },
      ),
    );
    if (weights.embeddingProjection) {
      const p = weights.embeddingProjection;
      embedding.push(
        kernels.linear.prepare(
          { input: embedOut, weight: p.weight, bias: p.bias, output: hidden },
          { M: rows, N: H, K: E },
        ),
      );
    }

    // Split-K (shaders/matmul.ts): at small row counts the matmuls split K so that enough workgroups
    // run; their raw partial sums go to one scratch buffer that the next dispatch reduces (Q|K|V and
    // the FFN's first matmul: a reduction with bias and activation; the two matmuls before an
    // add+LayerNorm: the LayerNorm kernel sums them itself).
    const shapes = {
      qkv: { M: rows, N: 3 * H, K: H },
      attentionOutput: { M: rows, N: H, K: H },
      intermediate: { M: rows, N: I, K: H },
      output: { M: rows, N: H, K: I },
    };
    const splits = {
      qkv: kernels.linear.splitsFor(shapes.qkv),
      attentionOutput: kernels.linear.splitsFor(shapes.attentionOutput),
      intermediate: kernels.activated.splitsFor(shapes.intermediate),
      output: kernels.linear.splitsFor(shapes.output),
    };
    const attentionShape = {
      batch,
      seqLen,
      heads: config.numAttentionHeads,
      headDim: H / config.numAttentionHeads,
    };
    const attentionPath = attentionPathFor(attentionShape, kernels.attentionPath);
    // KernelTuning.fuseAttentionOutput: `rows` attention also applies the output projection, each
    // head writing its share to a slice of the split-K scratch, which the add+LayerNorm sums. The
    // attention kernel has the projected variant only when the tuning asks for it (createKernels).
    const fusedProjection =
      weights.layers.every((l) => l.attentionOutputT) &&
      kernels.attention.canProject(attentionShape, attentionPath);
    const partialFloats = Math.max(
      fusedProjection ? attentionShape.heads * rows * H : 0,
      ...(Object.keys(shapes) as (keyof typeof shapes)[]).map((k) =>
        splits[k] > 1 ? splits[k] * shapes[k].M * shapes[k].N : 0,
      ),
    );
    const partials = partialFloats > 0 ? storage('splitKPartials', partialFloats) : null;

    /** A matmul into `output`, split along K (partial sums, then their reduction) where it pays. */
    const matmul = (
      kernel: MatmulKernel,
      input: GPUBuffer,
      linear: { weight: GPUBuffer; bias: GPUBuffer },
      output: GPUBuffer,
      shape: { M: number; N: number; K: number },
      parts: number,
    ): KernelDispatch[] => {
      if (parts <= 1 || !partials) return [kernel.prepare({ input, ...linear, output, ...gate }, shape)];
      return [
        kernel.preparePartials({ input, weight: linear.weight, partials, ...gate }, shape, parts),
        kernel.prepareReduce({ partials, bias: linear.bias, output, ...gate }, shape, parts),
      ];
    };
    /**
     * What the add+LayerNorm after a matmul of `shape` reads: its split-K partial sums (the norm then
     * adds the matmul's bias too) or, unsplit, its finished output in `projected`.
     */
    const normInput = (shape: { M: number; N: number }, parts: number) => {
      const eps = config.layerNormEps;
      return parts > 1 && partials
        ? {
            split: true,
            input: partials,
            shape: { rows: shape.M, width: H, eps, splits: parts, partialStride: shape.M * shape.N },
          }
        : { split: false, input: projected, shape: { rows: shape.M, width: H, eps } };
    };
    /** The matmul before an add+LayerNorm: the LayerNorm sums split-K partials and adds the bias. */
    const matmulThenNorm = (
      input: GPUBuffer,
      linear: { weight: GPUBuffer; bias: GPUBuffer },
      shape: { M: number; N: number; K: number },
      parts: number,
      norm: { residual: GPUBuffer; gamma: GPUBuffer; beta: GPUBuffer; output: GPUBuffer },
    ): KernelDispatch[] => {
      const from = normInput(shape, parts);
      return [
        from.split
          ? kernels.linear.preparePartials(
              { input, weight: linear.weight, partials: from.input, ...gate },
              shape,
              parts,
            )
          : kernels.linear.prepare({ input, ...linear, output: projected, ...gate }, shape),
        ...tag(SLOT_KIND.layerNorm, [
          kernels.addLayerNorm.prepare(
            { input: from.input, ...(from.split ? { bias: linear.bias } : {}), ...norm, ...gate },
            from.shape,
          ),
        ]),
      ];
    };

    // How a dispatch's counts shrink when rows drop out (see the slot kinds below); untagged: fixed.
    const shrinkKind = new Map<KernelDispatch, [kind: number, unit: number]>();
    const tag = (kind: number, list: KernelDispatch[]): KernelDispatch[] => {
      for (const x of list) shrinkKind.set(x, [kind, 0]);
      return list;
    };

    // The dispatches of one distinct layer; built once and reused wherever the schedule applies it.
    // `clsOnly` (KernelTuning.lastLayerClsOnly, gated batch 1): the model's last layer for the [CLS]
    // row only, the only row anything reads after it (the pooler and the exit heads). Q|K|V still
    // covers every row (the keys and values), attention runs the first block of queries, and the rest
    // runs on row 0: the add+LayerNorms on one row, the FFN as two GEMVs (no split, so no reduction).
    const layerShapes = (clsOnly: boolean) =>
      clsOnly
        ? {
            shapes: {
              qkv: shapes.qkv,
              attentionOutput: { M: 1, N: H, K: H },
              intermediate: { M: 1, N: I, K: H },
              output: { M: 1, N: H, K: I },
            },
            splits: { qkv: splits.qkv, attentionOutput: 1, intermediate: 1, output: 1 },
            attention: { ...attentionShape, queries: 1 },
            normRows: 1,
          }
        : { shapes, splits, attention: attentionShape, normRows: rows };
    const layerDispatches = new Map<string, KernelDispatch[]>();
    const dispatchesFor = (index: number, layer: GpuLayer, clsOnly = false): KernelDispatch[] => {
      const key = `${index}${clsOnly ? '-cls' : ''}`;
      const cached = layerDispatches.get(key);
      if (cached) return cached;
      const { shapes, splits, attention: attendShape, normRows } = layerShapes(clsOnly);
      const attentionNorm = {
        residual: hidden,
        gamma: layer.attentionNorm.gamma,
        beta: layer.attentionNorm.beta,
        output: attentionNormed,
      };
      const attention =
        fusedProjection && partials
          ? [
              ...tag(SLOT_KIND.attention, [
                kernels.attention.prepareProjected(
                  { qkv, mask: this.mask, weight: layer.attentionOutputT!, output: partials, ...gate },
                  attendShape,
                  kernels.attentionProjectionParts,
                ),
              ]),
              ...tag(SLOT_KIND.layerNorm, [
                kernels.addLayerNorm.prepare(
                  { input: partials, bias: layer.attentionOutput.bias, ...attentionNorm, ...gate },
                  {
                    rows: normRows,
                    width: H,
                    eps: config.layerNormEps,
                    splits: attentionShape.heads,
                    partialStride: rows * H,
                  },
                ),
              ]),
            ]
          : [
              ...tag(SLOT_KIND.attention, [
                kernels.attention.prepare(
                  { qkv, mask: this.mask, output: context, ...gate },
                  attendShape,
                  attentionPath,
                ),
              ]),
              ...matmulThenNorm(
                context,
                layer.attentionOutput,
                shapes.attentionOutput,
                splits.attentionOutput,
                attentionNorm,
              ),
            ];
      const list = [
        ...matmul(kernels.linear, hidden, layer.qkv, qkv, shapes.qkv, splits.qkv),
        ...attention,
        ...matmul(
          kernels.activated,
          attentionNormed,
          layer.intermediate,
          intermediate,
          shapes.intermediate,
          splits.intermediate,
        ),
        // The layer's output overwrites `hidden`, whose last reader was the attention residual above.
        ...matmulThenNorm(intermediate, layer.output, shapes.output, splits.output, {
          residual: attentionNormed,
          gamma: layer.outputNorm.gamma,
          beta: layer.outputNorm.beta,
          output: hidden,
        }),
      ];
      // Untagged layer kernels: row-tiled ones shrink their y count, the rest keep theirs.
      for (const x of list) {
        if (!shrinkKind.has(x))
          shrinkKind.set(
            x,
            x.rowsPerWorkgroup ? [SLOT_KIND.tiledMatmul, x.rowsPerWorkgroup] : [SLOT_KIND.fixed, 0],
          );
      }
      layerDispatches.set(key, list);
      return list;
    };

    /**
     * The last add+LayerNorm of layer `index` at `depth` with the pooler folded in: as the one that
     * matmulThenNorm made for the FFN output, plus the pooler's workgroups (and the classifier's
     * partial logits), writing this depth's z.
     */
    const pooledNorm = (index: number, depth: number, clsOnly: boolean): KernelDispatch => {
      const layer = weights.layers[index]!;
      const { shapes, splits } = layerShapes(clsOnly);
      const from = normInput(shapes.output, splits.output);
      const classifier = packed?.layout.classifier;
      return tag(SLOT_KIND.layerNorm, [
        kernels.addLayerNorm.preparePooled(
          {
            input: from.input,
            residual: attentionNormed,
            norm: layer.outputNormPacked!,
            hasBias: from.split,
            output: hidden,
            ...gate,
          },
          from.shape,
          {
            headWeights: packed!.weights,
            headBiases: packed!.biases,
            poolerWeight: packed!.layout.pooler.weight,
            poolerBias: packed!.layout.pooler.bias,
            pooled: this.pooled,
            pooledOffset: depth * batch * H,
            scratch: this.scratch,
            ...(classifier
              ? {
                  classifier: {
                    weight: classifier.weight,
                    bias: classifier.bias,
                    classes: C,
                    partsAt: classifierPartsAt,
                  },
                }
              : {}),
          },
        ),
      ])[0]!;
    };

    const clsOnlyLast = this.gated && kernels.lastLayerClsOnly;
    // KernelTuning.decideInReduce: behind the exit gate, a model whose Q|K|V is split along K runs
    // each depth's decide in the next depth's Q|K|V reduction (exit.wgsl decide_reduce); the last
    // depth keeps its own decide.
    this.decideDeferred =
      this.gated &&
      this.exitEnabled &&
      kernels.decideInReduce &&
      kernels.exit.canDecideWithReduce &&
      splits.qkv > 1 &&
      partials !== null;
    const layerUniforms: GPUBuffer[] = [];
    // What every decide binds, on its own or beside a Q|K|V reduction.
    const decideBuffers = {
      criterion: this.criterion,
      logits: this.logits,
      scratch: this.scratch,
      state: this.state,
      records: this.records,
      counters: this.counters,
    };

    // Dispatches per depth (the same at every depth), so that depth d's slot j of indirect
    // arguments sits at word (d · slots + j) · 3. At batch 1 compaction never moves anything (the one
    // example exiting stops all later work), so its two dispatches are left out.
    const inner = config.innerGroupNum;
    const layerList = dispatchesFor(0, weights.layers[0]!);
    const perLayer = layerList.length;
    const compaction = this.exitEnabled && batch > 1;
    const slots =
      (compaction ? 2 : 0) + // compact out/in
      perLayer * inner +
      (packed
        ? headsDispatchCount(
            { classifier: C > 0 && !headsFolded, perLayerHeads: this.hasHeads },
            lambda?.length ?? 0,
            headsFolded,
          )
        : 0) +
      (this.exitEnabled ? 1 : 0); // decide
    const slotWords = slots * 3;
    // How each slot's counts shrink when trailing batch slots need no more rows (same at every depth,
    // filled from the dispatches below): compaction by its own kind, the layer kernels
    // (row-tiled ones shrink their y count, attention its batch z, add+LayerNorm its rows), the
    // heads their slot z like attention; decide keeps its counts.
    const kinds = new Uint32Array(2 * slots);
    const kindOf = (x: KernelDispatch): readonly [number, number] =>
      shrinkKind.get(x) ?? [SLOT_KIND.fixed, 0];
    const slotKinds = storage('slotKinds', 2 * slots, COPY_DST);
    // A dispatch may not both read its counts from a buffer and write that buffer, so decide writes
    // `indirectNext` and a copy between passes carries it into `indirect`.
    this.indirect = allocate('indirect', L * slotWords * 4, GPUBufferUsage.INDIRECT | COPY_DST);
    this.indirectNext = storage('indirectNext', L * slotWords, COPY_SRC | COPY_DST);
    this.slotBytes = slotWords * 4;
    this.initialIndirect = new Uint32Array(L * slotWords);
    const task =
      config.problemType === 'regression'
        ? 'regression'
        : config.problemType === 'multi_label_classification'
          ? 'sigmoid'
          : 'softmax';

    this.passes = [embedding];
    layerSchedule(config).forEach((applied, depth) => {
      const d: KernelDispatch[] = [];
      const layerUniform = this.exitEnabled
        ? kernels.exit.layerUniform(`exit-layer${depth}`, {
            depth,
            batch,
            numLabels: C,
            numLayers: L,
            task,
            hasLambda: lambda !== undefined,
            hasHeads: this.hasHeads,
            numGates: exitWeights?.numGates ?? 0,
            slotWords,
            rows,
            hidden: H,
            headOffset: this.headOffset,
            seqLen,
            lambdaOffset: lambdaOffset(depth),
            lambdaParts,
            gatedByExit: this.gated,
            ...(headsFolded ? { classifierParts: { at: classifierPartsAt, parts: classifierParts } } : {}),
            gateAt,
          })
        : null;
      if (layerUniform) {
        this.buffers.push(layerUniform); // freed with the plan
        layerUniforms.push(layerUniform);
      }
      if (layerUniform && compaction) {
        // Running examples that sit behind exited ones move to the front slots (counts from the
        // previous depth's decide; 0 at depth 1 and whenever nothing moves). `context` and
        // `projected` are free between layers and serve as the temporaries.
        const buffers = {
          layer: layerUniform,
          counters: this.counters,
          hidden,
          mask: this.mask,
          tempHidden: context,
          tempMask: projected,
        };
        d.push(
          ...tag(SLOT_KIND.compact, [
            kernels.exit.compact(`compactOut${depth}`, 'out', buffers),
            kernels.exit.compact(`compactIn${depth}`, 'in', buffers),
          ]),
        );
      }
      const lastDepth = depth === L - 1;
      applied.forEach((index, i) => {
        const last = i === applied.length - 1;
        const clsOnly = clsOnlyLast && lastDepth && last;
        let list = dispatchesFor(index, weights.layers[index]!, clsOnly);
        if (this.decideDeferred && depth > 0 && i === 0) {
          // The previous depth's decide joins this depth's Q|K|V reduction (list[1]).
          if (!list[1]?.label.includes('reduce'))
            throw new Error(`plan: depth ${depth} has no Q|K|V reduction for the deferred decide`);
          const merged = kernels.exit.decideWithReduce(
            `decideReduce${depth - 1}`,
            { layer: layerUniforms[depth - 1]!, ...decideBuffers },
            {
              partials: partials!,
              bias: weights.layers[index]!.qkv.bias,
              output: qkv,
              M: shapes.qkv.M,
              N: shapes.qkv.N,
              splits: splits.qkv,
            },
          );
          list = [list[0]!, merged, ...list.slice(2)];
        }
        // The depth's last add+LayerNorm, with the pooler (and classifier) folded in, is the depth's own.
        if (headsFolded && last) d.push(...list.slice(0, -1), pooledNorm(index, depth, clsOnly));
        else d.push(...list);
      });
      // The heads on [CLS] after every layer: pooler → z_n, shared classifier, per-layer head, λ MLP;
      // each dispatch's z is the batch slot, shrunk to the running ones like attention.
      const head = layerUniform ? exitWeights?.heads?.[depth] : undefined;
      if (packed) {
        d.push(
          ...tag(
            SLOT_KIND.attention,
            kernels.heads.prepare(
              {
                weights: packed.weights,
                biases: packed.biases,
                hidden,
                pooled: this.pooled,
                logits: this.logits,
                scratch: this.scratch,
                counters: this.counters,
                ...gate,
              },
              packed.layout,
              {
                batch,
                rowStride: seqLen * H,
                pooledOffset: depth * batch * H,
                poolerFolded: headsFolded,
                ...(C > 0 && !headsFolded ? { logitsOffset: depth * batch * C } : {}),
                ...(head ? { head: { index: depth, offset: this.headOffset + depth * batch * C } } : {}),
                ...(layerUniform && lambda
                  ? {
                      lambda: {
                        offset: lambdaOffset(depth),
                        hiddenOffset: lambdaHiddenAt,
                        prevSlots: 3 * L,
                        ...(depth > 0 ? { prevOffset: (depth - 1) * batch * H } : {}),
                      },
                    }
                  : {}),
              },
            ),
          ),
        );
      }
      if (layerUniform && (!this.decideDeferred || lastDepth)) {
        d.push(
          kernels.exit.decide(`decide${depth}`, {
            layer: layerUniform,
            ...decideBuffers,
            gateParams,
            indirect: this.indirectNext,
            slotKinds,
          }),
        );
      }
      // A [CLS]-only last layer has fewer dispatches (no FFN reduction); gated plans read no indirect
      // arguments, so its slots need not line up with the other depths'.
      const ownSlots = clsOnlyLast && lastDepth;
      // A deferred decide leaves its depth one dispatch short (the last depth keeps its own).
      const expected = this.decideDeferred && !lastDepth ? slots - 1 : slots;
      if (ownSlots ? d.length > expected : d.length !== expected)
        throw new Error(`plan: depth ${depth} has ${d.length} dispatches, not ${expected}`);
      if (this.exitEnabled && !ownSlots && !this.decideDeferred) {
        const depthKinds = d.flatMap(kindOf);
        if (depth === 0) kinds.set(depthKinds);
        else if (depthKinds.some((k, i) => k !== kinds[i]))
          throw new Error(`plan: depth ${depth}'s slot kinds differ from depth 1's`);
      }
      d.forEach((dispatch, j) => this.initialIndirect.set(dispatch.workgroups, (depth * slots + j) * 3));
      // Depth 1 always runs; later depths read their counts from the indirect buffer.
      this.passes.push(
        this.exitEnabled && depth > 0 && !this.gated
          ? d.map((x, j) => ({ ...x, indirect: { buffer: this.indirect, offset: (depth * slots + j) * 12 } }))
          : d,
      );
    });
    device.queue.writeBuffer(slotKinds, 0, kinds);
    this.initialState = new Uint32Array(batch * STATE_WORDS);
    const one = new Uint32Array(new Float32Array([1]).buffer)[0]!;
    for (let b = 0; b < batch; b++) {
      this.initialState[b * STATE_WORDS] = one; // survival c_0 = 1
      this.initialState[b * STATE_WORDS + 7] = b; // each example starts in its own slot
    }

    if (device.features.has('timestamp-query')) {
      const count = 2 * (L + 1);
      this.querySet = device.createQuerySet({
        label: `plan${batch}x${seqLen}.timestamps`,
        type: 'timestamp',
        count,
      });
      this.queryResolve = allocate('timestampResolve', count * 8, GPUBufferUsage.QUERY_RESOLVE | COPY_SRC);
    }

    // The single readback: every small result, concatenated into one staging buffer.
    let at = 0;
    const section = (name: string, src: GPUBuffer, byteSize: number) => {
      this.sections.push({ name, src, bytes: byteSize, at });
      at += Math.ceil(byteSize / 8) * 8;
    };
    if (C > 0) section('logits', this.logits, L * batch * C * 4);
    if (this.exitEnabled) {
      section('records', this.records, L * batch * this.recordFloats * 4);
      section('state', this.state, batch * STATE_WORDS * 4);
      section('counters', this.counters, 2 * L * 4); // the trimmed-row words stay on the GPU
      if (this.hasHeads) section('headLogits', this.scratch, L * batch * (1 + C) * 4);
    }
    if (this.queryResolve) section('timestamps', this.queryResolve, 2 * (L + 1) * 8);
    this.staging = staging('staging', Math.max(at, 16));
    if (this.exitEnabled) {
      const depthBytes = batch * this.recordFloats * 4;
      for (let d = 0; d < L; d++) this.depthStaging.push(staging(`depthStaging${d}`, depthBytes));
    }
    this.bytes = bytes;
  }

  /** Number of dispatches one forward pass encodes (for documentation and benchmarks). */
  get dispatchCount(): number {
    return this.passes.reduce((n, p) => n + p.length, 0);
  }

  /** Runs one forward pass: uploads the inputs, encodes the command buffer(s), reads back once. */
  async run(input: PlanInput, options: PlanRunOptions = {}): Promise<PlanOutput> {
    const started = performance.now();
    const { device } = this;
    const L = this.config.numHiddenLayers;
    const queue = device.queue;
    queue.writeBuffer(this.inputIds, 0, input.inputIds);
    queue.writeBuffer(this.tokenTypeIds, 0, input.tokenTypeIds);
    queue.writeBuffer(this.mask, 0, input.attentionMask);
    if (this.exitEnabled) {
      // Full workgroup counts, fresh exit state, and the call's criterion (default: none, all rows).
      if (!this.gated) {
        queue.writeBuffer(this.indirect, 0, this.initialIndirect);
        queue.writeBuffer(this.indirectNext, 0, this.initialIndirect);
      }
      queue.writeBuffer(this.state, 0, this.initialState);
      const none = new Uint32Array(CRITERION_BYTES / 4);
      none[5] = this.batch;
      queue.writeBuffer(this.criterion, 0, options.criterion ?? none.buffer);
    }
    const readPooled = options.readPooled === true;
    const profile = options.profile === true;
    const streaming = options.mode === 'streaming' && this.exitEnabled && !profile;
    const profiler = profile ? this.profiler() : null;

    // With `profile`, only the last pass of a back-to-back submit is profiled (the earlier ones bring
    // the GPU to the clocks of sustained work).
    const encodePass = (encoder: GPUCommandEncoder, index: number, profiled: boolean) => {
      const timestampWrites = this.querySet
        ? {
            querySet: this.querySet,
            beginningOfPassWriteIndex: 2 * index,
            endOfPassWriteIndex: 2 * index + 1,
          }
        : undefined;
      if (profiler && profiled) {
        // One pass per dispatch, each with its own pair of timestamps.
        for (const d of this.passes[index]!) {
          const at = profiler.labels.length;
          profiler.labels.push({ pass: index, label: d.label });
          const pass = encoder.beginComputePass({
            label: `profile.${d.label}`,
            timestampWrites: {
              querySet: profiler.querySet,
              beginningOfPassWriteIndex: 2 * at,
              endOfPassWriteIndex: 2 * at + 1,
            },
          });
          encodeDispatches(pass, [d]);
          pass.end();
        }
      } else {
        const pass = encoder.beginComputePass({
          label: `forward.pass${index}`,
          ...(timestampWrites ? { timestampWrites } : {}),
        });
        encodeDispatches(pass, this.passes[index]!);
        pass.end();
      }
      const depth = index - 1;
      if (this.exitEnabled && !this.gated && depth >= 0 && depth < L - 1) {
        // What this depth's decide wrote about the later depths becomes their dispatch counts.
        const from = (depth + 1) * this.slotBytes;
        encoder.copyBufferToBuffer(this.indirectNext, from, this.indirect, from, L * this.slotBytes - from);
      }
    };
    const encodeFinal = (encoder: GPUCommandEncoder, profiled: boolean) => {
      if (this.querySet && this.queryResolve && !profiled)
        encoder.resolveQuerySet(this.querySet, 0, 2 * (L + 1), this.queryResolve, 0);
      if (profiler && profiled) {
        const count = 2 * profiler.labels.length;
        encoder.resolveQuerySet(profiler.querySet, 0, count, profiler.resolve, 0);
        encoder.copyBufferToBuffer(profiler.resolve, 0, profiler.staging, 0, count * 8);
      }
      for (const s of this.sections) encoder.copyBufferToBuffer(s.src, 0, this.staging, s.at, s.bytes);
      if (readPooled)
        encoder.copyBufferToBuffer(this.pooled, 0, this.pooledStaging, 0, this.pooledStaging.size);
    };
    const clear = (encoder: GPUCommandEncoder) => {
      encoder.clearBuffer(this.logits);
      if (this.exitEnabled) {
        encoder.clearBuffer(this.records);
        encoder.clearBuffer(this.counters);
      }
    };

    /**
     * The whole single-submit forward pass as one command buffer; with `reset`, it first copies the
     * initial exit state (and indirect counts) there on the GPU, as a call's uploads would.
     */
    const encodeForward = (
      reset: { state: GPUBuffer; indirect: GPUBuffer } | null,
      profiled: boolean,
    ): GPUCommandBuffer => {
      const encoder = device.createCommandEncoder({ label: 'forward' });
      if (reset) {
        encoder.copyBufferToBuffer(reset.state, 0, this.state, 0, this.initialState.byteLength);
        if (!this.gated) {
          const bytes = this.initialIndirect.byteLength;
          encoder.copyBufferToBuffer(reset.indirect, 0, this.indirect, 0, bytes);
          encoder.copyBufferToBuffer(reset.indirect, 0, this.indirectNext, 0, bytes);
        }
      }
      clear(encoder);
      for (let i = 0; i < this.passes.length; i++) encodePass(encoder, i, profiled);
      encodeFinal(encoder, profiled);
      return encoder.finish();
    };

    const depthReads: Promise<void>[] = [];
    // Taken before any mapAsync: some runtimes (Deno) wait for the GPU inside that call.
    let submitMs: number;
    const repeats = options.backToBack ?? 1;
    if (!Number.isInteger(repeats) || repeats < 1 || repeats > 1000) {
      throw new PonderError('invalid-input', `backToBack must be an integer in 1..1000, got ${repeats}`);
    }
    if (repeats > 1 && !streaming) {
      // Each pass first gets the state a call's uploads give it, by copies on the GPU.
      const initial = this.initialCopies();
      queue.submit(
        Array.from({ length: repeats }, (_, i) => encodeForward(initial, profile && i === repeats - 1)),
      );
      submitMs = performance.now() - started;
    } else if (!streaming) {
      // A forward pass's commands do not depend on its inputs (they are uploaded above; exit decisions
      // are read on the GPU), so the command buffer encoded after the previous call serves this one.
      const ready = profile ? null : this.takeEncoded(readPooled);
      queue.submit([ready ?? encodeForward(null, profile)]);
      submitMs = performance.now() - started;
      // Encode the next call's while the GPU runs this one, before mapAsync (which in Deno blocks the
      // thread until the GPU is done): steady-state calls then only upload, submit and read back.
      if (!profile) this.encoded = { readPooled, commands: encodeForward(null, false) };
    } else {
      const B = this.batch;
      const R = this.recordFloats;
      // Records hold the logits too (by example), so one copy per depth is all a layer event needs;
      // a deferred decide (decideDeferred) finishes depth d's records in the pass of depth d + 1.
      const copyRecords = (encoder: GPUCommandEncoder, depth: number) =>
        encoder.copyBufferToBuffer(this.records, depth * B * R * 4, this.depthStaging[depth]!, 0, B * R * 4);
      for (let depth = 0; depth < L; depth++) {
        const encoder = device.createCommandEncoder({ label: `forward.depth${depth}` });
        if (depth === 0) {
          clear(encoder);
          encodePass(encoder, 0, false);
        }
        encodePass(encoder, depth + 1, false);
        if (!this.decideDeferred) copyRecords(encoder, depth);
        else if (depth > 0) copyRecords(encoder, depth - 1);
        if (depth === L - 1) {
          if (this.decideDeferred) copyRecords(encoder, depth);
          encodeFinal(encoder, false);
        }
        queue.submit([encoder.finish()]);
      }
      submitMs = performance.now() - started;
      // Each depth's results arrive in order while the GPU goes on with the next depths.
      let done = Promise.resolve();
      for (let depth = 0; depth < L; depth++) {
        const st = this.depthStaging[depth]!;
        const mapped = st.mapAsync(GPUMapMode.READ);
        done = done.then(async () => {
          await mapped;
          const data = new Float32Array(st.getMappedRange().slice(0));
          st.unmap();
          const slice: DepthSlice = { records: data.subarray(0, B * R) };
          options.onDepth?.(depth, slice);
        });
      }
      depthReads.push(done);
    }

    const reads: Promise<unknown>[] = [this.staging.mapAsync(GPUMapMode.READ), ...depthReads];
    if (readPooled) reads.push(this.pooledStaging.mapAsync(GPUMapMode.READ));
    if (profiler) reads.push(profiler.staging.mapAsync(GPUMapMode.READ));
    await Promise.all(reads);
    const all = this.staging.getMappedRange().slice(0);
    this.staging.unmap();
    const view = (name: string) => {
      const s = this.sections.find((x) => x.name === name);
      return s ? all.slice(s.at, s.at + s.bytes) : null;
    };
    const output: PlanOutput = {
      logits: new Float32Array(view('logits') ?? new ArrayBuffer(0)),
      records: new Float32Array(view('records') ?? new ArrayBuffer(0)),
      state: new Uint32Array(view('state') ?? new ArrayBuffer(0)),
      counters: new Uint32Array(view('counters') ?? new ArrayBuffer(0)),
      submitMs,
    };
    const heads = view('headLogits');
    if (heads) output.headLogits = new Float32Array(heads, this.headOffset * 4);
    if (profiler) {
      const t = new BigInt64Array(profiler.staging.getMappedRange(0, profiler.labels.length * 16).slice(0));
      profiler.staging.unmap();
      output.dispatchMs = profiler.labels.map((x, i) => {
        const ns = Number(t[2 * i + 1]! - t[2 * i]!);
        return { ...x, ms: ns > 0 ? ns / 1e6 : 0 };
      });
      profiler.labels.length = 0;
    }
    const stamps = view('timestamps');
    if (stamps && !profiler) {
      const t = new BigInt64Array(stamps);
      output.passMs = Array.from({ length: L + 1 }, (_, i) => {
        const ns = Number(t[2 * i + 1]! - t[2 * i]!);
        return ns > 0 ? ns / 1e6 : 0;
      });
    }
    if (readPooled) {
      output.pooled = new Float32Array(
        this.pooledStaging.getMappedRange(0, L * this.batch * this.config.hiddenSize * 4).slice(0),
      );
      this.pooledStaging.unmap();
    }
    return output;
  }

  private initialBuffers: { state: GPUBuffer; indirect: GPUBuffer } | null = null;

  /** GPU copies of the initial exit state and indirect counts (back-to-back runs), made on first use. */
  private initialCopies(): { state: GPUBuffer; indirect: GPUBuffer } | null {
    if (!this.exitEnabled) return null;
    if (!this.initialBuffers) {
      const make = (label: string, data: Uint32Array) => {
        const buffer = this.device.createBuffer({
          label: `plan${this.batch}x${this.seqLen}.${label}`,
          size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
          usage: GPUBufferUsage.COPY_SRC,
          mappedAtCreation: true,
        });
        new Uint32Array(buffer.getMappedRange()).set(data);
        buffer.unmap();
        return buffer;
      };
      this.initialBuffers = {
        state: make('initialState', this.initialState),
        indirect: make('initialIndirect', this.initialIndirect),
      };
    }
    return this.initialBuffers;
  }

  /** The next single-submit call's command buffer, encoded ahead (see run()); used at most once. */
  private encoded: { readPooled: boolean; commands: GPUCommandBuffer } | null = null;

  private takeEncoded(readPooled: boolean): GPUCommandBuffer | null {
    const ready = this.encoded;
    this.encoded = null;
    return ready && ready.readPooled === readPooled ? ready.commands : null;
  }

  private profileState: {
    querySet: GPUQuerySet;
    resolve: GPUBuffer;
    staging: GPUBuffer;
    labels: Omit<DispatchTime, 'ms'>[];
  } | null = null;

  /** The query set and buffers of profiled runs, made on first use (two timestamps per dispatch). */
  private profiler(): NonNullable<ExecutionPlan['profileState']> {
    if (this.profileState) return this.profileState;
    if (!this.device.features.has('timestamp-query')) {
      throw new PonderError('unsupported-config', 'A kernel profile needs the timestamp-query feature.');
    }
    const count = 2 * this.dispatchCount;
    if (count > 4096) {
      throw new PonderError('unsupported-config', `A kernel profile of ${count / 2} dispatches is too long.`);
    }
    const label = `plan${this.batch}x${this.seqLen}.profile`;
    this.profileState = {
      querySet: this.device.createQuerySet({ label, type: 'timestamp', count }),
      resolve: this.device.createBuffer({
        label,
        size: count * 8,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      }),
      staging: this.device.createBuffer({
        label,
        size: count * 8,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
      labels: [],
    };
    return this.profileState;
  }

  destroy(): void {
    this.encoded = null;
    this.initialBuffers?.state.destroy();
    this.initialBuffers?.indirect.destroy();
    for (const b of this.buffers) b.destroy();
    this.querySet?.destroy();
    if (this.profileState) {
      this.profileState.querySet.destroy();
      this.profileState.resolve.destroy();
      this.profileState.staging.destroy();
    }
  }
}
