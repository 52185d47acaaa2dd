/**
 * Multi-head self-attention over the packed Q|K|V buffer with the padding mask
 * (semantics: tests/reference/ops.ts `attention`).
 */
import { PonderError } from '../src/errors';
import {
  bindBuffers,
  createPipeline,
  createUniformBuffer,
  divUp,
  exitGateWgsl,
  openExitGate,
  type KernelDispatch,
  type WeightDtype,
  weightTypeWgsl,
} from './kernel';
import { specialize } from './preprocess';
import code from './attention.wgsl?raw';

/** Limits of attention.wgsl (MAX_D4 * 4, and the 3-D dispatch). */
export const ATTENTION_MAX_HEAD_DIM = 128;
const Q_TILE = 16;
const MAX_WORKGROUPS = 65535;
/** attention.wgsl's binding of the exit gate (shaders/kernel.ts). */
const GATE_BINDING = 4;
/** The `short` entry point's limit (SHORT_MAX_T in attention.wgsl). */
export const ATTENTION_SHORT_MAX_LEN = 512;
/** The `rows` entry point's limit (ROWS_MAX_T) and queries per workgroup (ROWS_Q). */
export const ATTENTION_ROWS_MAX_LEN = 256;
const ROWS_Q = 8;
/**
 * Invocations of a `rows` workgroup (attention.wgsl ROWS_THREADS). 256 lets one workgroup project all
 * of H 768's column quads, where 128 takes two workgroups a block that each compute the block's
 * attention; it also halves the value loop and, up to 128 tokens, the key loop of each invocation.
 */
export type RowsThreads = 128 | 256;

/**
 * `short`: a workgroup per query (seqLen <= 512); `rows`: a workgroup per 8 queries, which share
 * their key and value loads (seqLen <= 256); `flash`: tiles of queries and keys (any length).
 */
export type AttentionPath = 'short' | 'rows' | 'flash';

export interface AttentionShape {
  batch: number;
  seqLen: number;
  heads: number;
  headDim: number;
  /**
   * Attend for the first `queries` queries of each sequence only (default: all seqLen), against
   * every key: a batch-1 plan's last layer, whose output only the [CLS] row is read of. The kernels
   * cover whole blocks of queries, so rows up to the end of the first block get written too.
   */
  queries?: number;
}

/**
 * While the flash grid would be small, `rows` up to 256 tokens and `short` up to 512. On whole passes
 * at batch 1 x 128 tokens, back to back on the H200 (bench --tuning-ab), rows took 22.0 µs a layer
 * against short's 31.0 for ALBERT-base (the pass 2.29 against 2.42 ms) and 21.4 against 21.0 for the
 * shipped model (1.73 ms both): it reads each head's K and V once per 8 queries instead of once per
 * query (bench/results/archive/2026-11-27-h200-tuning-ab-attention-rows.json). Before their P·V loops
 * took four keys a step without a branch, rows lost (45.8 against 36.6 µs).
 *
 * `short` against flash on an H200 (Deno/wgpu, tests/f16/kernel-bench.ts) at 12 heads of 64: short
 * took 0.012 / 0.031 / 0.086 ms at batch 1 and 16 / 64 / 128 tokens against flash's 0.022 / 0.068 /
 * 0.129, but lost at batch 8 x 128 (0.55 vs 0.28 ms) and at 512 tokens (1.98 vs 0.55 ms), where flash
 * has hundreds of workgroups and short's per-query key loop is long.
 */
export function defaultAttentionPath(shape: AttentionShape): AttentionPath {
  const flashGroups = divUp(shape.seqLen, Q_TILE) * shape.heads * shape.batch;
  if (flashGroups >= 256) return 'flash';
  if (shape.seqLen <= ATTENTION_ROWS_MAX_LEN) return 'rows';
  return shape.seqLen <= ATTENTION_SHORT_MAX_LEN ? 'short' : 'flash';
}

/**
 * The entry point for a shape given a preference: 'auto' picks by defaultAttentionPath; 'rows' falls
 * back to 'short' beyond its length limit, and 'short' to 'flash' beyond its own.
 */
export function attentionPathFor(shape: AttentionShape, preference: AttentionPath | 'auto'): AttentionPath {
  if (preference === 'auto') return defaultAttentionPath(shape);
  const wanted = preference === 'rows' && shape.seqLen > ATTENTION_ROWS_MAX_LEN ? 'short' : preference;
  return wanted === 'short' && shape.seqLen > ATTENTION_SHORT_MAX_LEN ? 'flash' : wanted;
}

/** Which load width a head size takes: vec4 when every head section starts on a multiple of 4. */
export function attentionLoadWidth(headDim: number): 'vec4' | 'scalar' {
  return headDim % 4 === 0 ? 'vec4' : 'scalar';
}

type Variant = `${AttentionPath}-${'vec4' | 'scalar'}` | 'rows-projected';

/** attention.wgsl's binding of Wo for the projected `rows` variant. */
const WEIGHT_BINDING = 5;

export class AttentionKernel {
  private constructor(
    private readonly device: GPUDevice,
    private readonly pipelines: ReadonlyMap<Variant, GPUComputePipeline>,
    private readonly rowsThreads: RowsThreads,
  ) {}

  /**
   * Compiles the entry points `paths` (default all three) for the head sizes given (vec4 loads when a
   * head size is a multiple of 4, scalar otherwise); without `headDims`, both load widths. With
   * `projection` (the dtype of Wo) and `rows` among the paths, also `rows` with the output
   * projection folded in (prepareProjected; head sizes that are multiples of 4). `rowsThreads`: the
   * `rows` workgroup size (default 128).
   */
  static async create(
    device: GPUDevice,
    headDims?: readonly number[],
    paths: readonly AttentionPath[] = ['short', 'rows', 'flash'],
    options: { projection?: WeightDtype; rowsThreads?: RowsThreads } = {},
  ): Promise<AttentionKernel> {
    const rowsThreads = options.rowsThreads ?? 128;
    if (rowsThreads !== 128 && rowsThreads !== 256) {
      throw new PonderError(
        'unsupported-config',
        `attention: rows workgroups of ${String(rowsThreads)} invocations`,
      );
    }
    const rowsConstants = { ROWS_THREADS: rowsThreads };
    const widths = new Set(headDims ? headDims.map(attentionLoadWidth) : (['vec4', 'scalar'] as const));
    const variants: Variant[] = [];
    for (const width of widths) for (const path of paths) variants.push(`${path}-${width}`);
    const projection = options.projection;
    if (projection && paths.includes('rows') && widths.has('vec4')) variants.push('rows-projected');
    const compiled = await Promise.all(
      variants.map((variant) => {
        if (variant === 'rows-projected' && projection) {
          return createPipeline(device, {
            label: `attention-rows-projected-vec4-${projection}${rowsThreads === 128 ? '' : `-x${rowsThreads}`}`,
            code:
              weightTypeWgsl(projection) +
              specialize(code, { VEC4: true, PROJECT: true }) +
              exitGateWgsl(GATE_BINDING),
            entryPoint: 'rows',
            constants: rowsConstants,
          });
        }
        const [path, width] = variant.split('-') as [AttentionPath, string];
        const rows = path === 'rows' && rowsThreads !== 128 ? `-x${rowsThreads}` : '';
        return createPipeline(device, {
          label: `attention-${path}${width === 'vec4' ? '-vec4' : ''}${rows}`,
          code: specialize(code, { VEC4: width === 'vec4' }) + exitGateWgsl(GATE_BINDING),
          entryPoint: path === 'flash' ? 'main' : path,
          ...(path === 'rows' ? { constants: rowsConstants } : {}),
        });
      }),
    );
    return new AttentionKernel(device, new Map(variants.map((v, i) => [v, compiled[i]!])), rowsThreads);
  }

  /** Whether prepareProjected() serves the shape on this path (compiled, and a head size % 4 == 0). */
  canProject(shape: AttentionShape, path: AttentionPath): boolean {
    return path === 'rows' && this.pipelines.has('rows-projected') && shape.headDim % 4 === 0;
  }

  /**
   * `rows` with the attention output projection folded in: head h writes its share of
   * context · Woᵀ (no bias) to output[h·M·H + row·H + n], M = batch·seqLen, H = heads·headDim; the
   * heads' slices sum to the projection (the add+LayerNorm kernel sums them as split-K slices).
   * `weight` is Wo transposed ([H, H], row k: every output's weight for context element k), in the
   * dtype given to create(). `parts`: workgroups per block of queries, each computing the block's
   * attention and projecting its share of the column quads (default: enough that each invocation
   * projects at most one quad, 2 at H 768 with 128 invocations; more parts recompute the attention
   * more often, fewer walk more quads per invocation).
   */
  prepareProjected(
    args: { qkv: GPUBuffer; mask: GPUBuffer; weight: GPUBuffer; output: GPUBuffer; gate?: GPUBufferBinding },
    shape: AttentionShape,
    parts?: number,
  ): KernelDispatch {
    if (!this.canProject(shape, 'rows')) {
      throw new PonderError(
        'unsupported-config',
        `attention: no projected rows variant for head size ${shape.headDim} (compiled: ${this.pipelines.has('rows-projected')})`,
      );
    }
    const quads = (shape.heads * shape.headDim) / 4;
    if (parts !== undefined && !(Number.isInteger(parts) && parts >= 1 && parts <= quads)) {
      throw new PonderError(
        'unsupported-config',
        `attention: ${parts} projecting workgroups a block (1 to ${quads} for H ${shape.heads * shape.headDim})`,
      );
    }
    const usual = Math.ceil(quads / this.rowsThreads);
    return this.encode(args, shape, 'rows', { parts: parts ?? usual, named: (parts ?? usual) !== usual });
  }

  /** `path` defaults to defaultAttentionPath(shape). */
  prepare(
    args: { qkv: GPUBuffer; mask: GPUBuffer; output: GPUBuffer; gate?: GPUBufferBinding },
    shape: AttentionShape,
    path: AttentionPath = defaultAttentionPath(shape),
  ): KernelDispatch {
    return this.encode(args, shape, path, null);
  }

  /**
   * `projection`: null for plain attention, else the projected variant's workgroups a block, and
   * whether the label says so (only where they differ from the usual count, so that profiles group
   * the usual dispatches under one name whatever the shape).
   */
  private encode(
    args: { qkv: GPUBuffer; mask: GPUBuffer; output: GPUBuffer; weight?: GPUBuffer; gate?: GPUBufferBinding },
    shape: AttentionShape,
    path: AttentionPath,
    projection: { parts: number; named: boolean } | null,
  ): KernelDispatch {
    const projected = projection !== null;
    const { batch, seqLen, heads, headDim } = shape;
    const queries = shape.queries ?? seqLen;
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
    if (path === 'short' && seqLen > ATTENTION_SHORT_MAX_LEN) {
      throw new PonderError(
        'invalid-input',
        `attention: the short path takes at most ${ATTENTION_SHORT_MAX_LEN} tokens`,
      );
    }
    if (path === 'rows' && seqLen > ATTENTION_ROWS_MAX_LEN) {
      throw new PonderError(
        'invalid-input',
        `attention: the rows path takes at most ${ATTENTION_ROWS_MAX_LEN} tokens`,
      );
    }
    if (heads > MAX_WORKGROUPS || batch > MAX_WORKGROUPS || seqLen > MAX_WORKGROUPS) {
      throw new PonderError(
        'unsupported-config',
        `attention: ${heads} heads x batch ${batch} exceeds the dispatch limit`,
      );
    }
    if (queries > seqLen) {
      throw new PonderError('invalid-input', `attention: ${queries} queries for ${seqLen} tokens`);
    }
    // The projected variant's workgroups per block of queries (attention.wgsl projectionParts).
    const parts = projection?.parts ?? 1;
    const label =
      `attention-${path}${projected ? '-projected' : ''}-b${batch}-t${seqLen}-h${heads}x${headDim}` +
      (queries < seqLen ? `-q${queries}` : '') +
      (projection?.named ? `-parts${parts}` : '');
    const pipeline = this.pipelines.get(
      projected ? 'rows-projected' : `${path}-${attentionLoadWidth(headDim)}`,
    );
    if (!pipeline) {
      throw new PonderError(
        'unsupported-config',
        `attention: the ${attentionLoadWidth(headDim)} variant for head size ${headDim} was not compiled`,
      );
    }
    const uniforms = createUniformBuffer(this.device, `${label}-params`, [
      ['u32', batch],
      ['u32', seqLen],
      ['u32', heads],
      ['u32', headDim],
      ['f32', 1 / Math.sqrt(headDim)],
      ['u32', batch * seqLen * heads * headDim],
      ['u32', parts],
    ]);
    const extra: [number, GPUBufferBinding][] = [[GATE_BINDING, args.gate ?? openExitGate(this.device)]];
    if (projected && args.weight) extra.push([WEIGHT_BINDING, { buffer: args.weight }]);
    const bindGroup = bindBuffers(
      this.device,
      label,
      pipeline,
      [uniforms, args.qkv, args.mask, args.output],
      extra,
    );
    const workgroups: [number, number, number] =
      path === 'short'
        ? [queries, heads, batch]
        : [divUp(queries, path === 'rows' ? ROWS_Q : Q_TILE) * parts, heads, batch];
    return { label, pipeline, bindGroup, workgroups };
  }
}
