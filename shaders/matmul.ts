/**
 * Linear layer with fused bias and activation (semantics: tests/reference/ops.ts `linear`).
 * Used for Q|K|V, attention output, FFN, ALBERT's E -> H projection, pooler and classifier.
 */
import type { Activation } from '../src/model/types';
import { PonderError } from '../src/errors';
import {
  bindBuffers,
  createPipeline,
  createUniformBuffer,
  divUp,
  exitGateWgsl,
  openExitGate,
  partialSums8Wgsl,
  type KernelDispatch,
  type WeightDtype,
  weightTypeWgsl,
} from './kernel';
import { specialize } from './preprocess';
import code from './matmul.wgsl?raw';

const ACTIVATION_CODE: Record<Activation, number> = { none: 0, gelu: 1, gelu_new: 2, relu: 3, tanh: 4 };

/** Invocations and K step of the register-blocked `tiled_block` entry point (matmul.wgsl). */
export interface BlockTiles {
  wgX: number;
  wgY: number;
  tileK: number;
  /**
   * Stage each chunk by 4 x 4 transposes in registers (four vec4 stores per operand and invocation)
   * instead of 16 scalar stores; needs tileK <= 2·wgX and tileK <= 2·wgY. Default false.
   */
  transpose?: boolean;
  /** 2: double-buffered staging, one barrier per K step (needs `transpose`). Default 1. */
  buffers?: 1 | 2;
  /**
   * 2: two sets of wgX x wgY invocations per tile take alternate K steps of its range and add their
   * blocks in workgroup memory before storing, so a split writes half the partial sums for the same
   * invocations (split-K aims at `splitKTarget` / slices workgroups: workgroupTarget()). Needs `transpose`, one buffer and
   * tileK = 2·wgX = 2·wgY (the staging buffers hold the sums). Default 1.
   */
  slices?: 1 | 2;
}

/** MatmulTiles.longK: the split blocks of long-K shapes. */
export interface LongKBlocks {
  minK: number;
  slices: 1 | 2;
  splitKTarget: number;
}

/** Tile configuration (WGSL override constants) and path choice; see matmul.wgsl. */
export interface MatmulTiles {
  wgX: number;
  wgY: number;
  tileK: number;
  gemvLanes: number;
  gemvCols: number;
  /** The tiled path loads the next K chunk into registers while it computes the current one. */
  prefetch: boolean;
  /** K step of the 128 x 128 `tiled_large` path: 4 or 8. */
  largeTileK: number;
  /** Use `tiled_large` when it yields at least this many workgroups (0: never). */
  largeMinWorkgroups: number;
  /**
   * Shapes of at least `8 * splitBlock.wgY` rows that are too small for `largeMinWorkgroups` take the
   * `tiled_block` entry point (8 x 8 outputs per invocation like the 128 x 128 tiles) with
   * `splitBlock`'s tiles, split along K towards `splitKTarget` workgroups, instead of the split
   * 64 x 32 tiles, where the grid is big enough (see blockSplit()).
   */
  blockSplitK: boolean;
  /**
   * The tiles of `blockSplitK`: wgX x wgY invocations of 8 x 8 outputs (an 8·wgY x 8·wgX tile),
   * K steps of tileK (4, 8 or 16).
   */
  splitBlock: BlockTiles;
  /**
   * The vec4 variant writes its output as vec4 (four columns in one store): shapes whose N and output
   * offset are multiples of 4 take it, the others the scalar variant. Default false.
   */
  vec4Stores?: boolean;
  /**
   * The register-blocked paths (`tiled_large`, `tiled_block`) accumulate with WGSL's fma() instead
   * of `acc += a * w`, which the driver may or may not contract into one instruction. Default false.
   */
  fma?: boolean;
  /** Split K until about this many workgroups run (0: never split). */
  splitKTarget: number;
  /**
   * Shapes on `splitBlock`'s tiles whose K is at least `minK` take `slices` K slices a tile and aim
   * at `splitKTarget` workgroups (divided by those slices) instead: the FFN's output product, whose K
   * is four times the others', may want more K ranges than the rest. A second `tiled_block`
   * pipeline where `slices` differs from `splitBlock.slices`. Default: none.
   */
  longK?: LongKBlocks;
  /** The smallest K range of one split. */
  splitKMinChunk: number;
}

// 8 x 16 invocations (a 64 x 32 output tile per workgroup, 7.5 KiB of workgroup memory), K in steps
// of 16: among the best of the configurations tests/f16/kernel-bench.ts tried on an H200 (Deno/wgpu)
// at BERT-base shapes, 8-9.6 TFLOP/s f32 for M=1024, N=2304..3072, K=768. At batch 1 the same tiles
// give only 48-144 workgroups and the time grows with K (a 16x768x3072 product took 0.37 ms on the
// H200, 0.2 TFLOP/s), hence split-K towards several hundred workgroups (splitKTarget; 128x768x3072,
// f16: 0.41 -> 0.12 ms at 512; bench --matmul-sweep).
export const DEFAULT_MATMUL_TILES: MatmulTiles = {
  wgX: 8,
  wgY: 16,
  tileK: 16,
  gemvLanes: 32,
  gemvCols: 8,
  prefetch: true,
  largeTileK: 8,
  // The 128 x 128 tiles from 256 workgroups (2048² outputs) up: on the H200 (Deno/wgpu) they ran 4096³
  // at 25.0 TFLOP/s f32 against 10.3 for the 64 x 32 tiles, and 2048³ at 5.5 against 1.7 at three
  // reps per pass (bench/results/archive/2026-11-27-h200-large-tiles-sweep.json). Not below 256: a
  // grid of one wave and a bit (144 tiles on 132 SMs) would idle most of the GPU for a second wave.
  largeMinWorkgroups: 256,
  // Below that, from 64 rows: 64 x 64 register-blocked tiles split along K, in K steps of 16, ranges
  // of at least 64. Against the split 64 x 32 tiles on the H200 (Deno/wgpu, bench --matmul-sweep
  // --sweep-shapes rows, three interleaved rounds): 1.45x at ALBERT-base's rows 128, 1.15x at
  // rows 64, 1.9x at rows 1024, 1.1x at H 512 rows 128 (geometric means over the four linear layers,
  // f32 and f16; bench/results/archive/2026-11-27-h200-split-block-sweep.json, where the option was
  // called largeSplitK and ran in tiled_large).
  blockSplitK: true,
  // Staged by 4 x 4 register transposes, and every output vec4 in one store: on whole forward passes
  // at batch 1 x 128 tokens, back to back on the H200 (bench --tuning-ab), ALBERT-base took 2.43 ms a
  // pass against 2.78 with neither (1.14x) and the shipped model 1.79 against 2.19 (1.23x); vec4
  // stores alone gave 1.07x and 1.22x (bench/results/archive/2026-11-27-h200-tuning-ab-vec4-stores.json).
  // Double-buffered staging lost 15% in the tile sweep at sustained clocks.
  // Two K slices a tile (half the partial sums for the same invocations), 352 workgroups: on an H100
  // (three A/Bs on one machine, whole batch-1 passes at 128 tokens back to back), ALBERT-base took
  // 2.10 / 2.07 / 2.14 ms against 2.21 / 2.19 / 2.23 with one slice at 768 (1.055x / 1.054x /
  // 1.044x), the shipped model 1.59 against 1.71 (1.079x); 256 workgroups ran ALBERT-base at
  // 0.963x / 1.024x, 300 at 1.034x / 1.039x, and 384 (Q|K|V 6 x 72 = 432) at 0.987x
  // (bench/results/archive/2026-12-07-h100-tuning-ab-slices-*.json). fma() tied (1.006x).
  splitBlock: { wgX: 8, wgY: 8, tileK: 16, transpose: true, slices: 2 },
  vec4Stores: true,
  // Before the slices, about 768 workgroups on both paths: at batch 1 x 128 tokens, whole passes back to back (bench --tuning-ab)
  // against 512, ALBERT-base ran at 1.055x and 1.059x on an H200 and 1.065x and 1.061x on an H100,
  // the shipped model at 1.003x / 1.003x / 1.041x / 1.061x (2026-11-28-{h200,h100}-tuning-ab-*.json).
  // Q|K|V then takes 11 splits of 72 tiles (792 workgroups), the FFN 8 x 96 and 32 x 24. It sits
  // just below a cliff: 1024 ran ALBERT-base at 0.85x-0.88x (Q|K|V 12 x 72 = 864 workgroups), as
  // if 792 were one wave of resident workgroups on these 132-SM cards; 640 lost too (0.97x). Smaller
  // GPUs have smaller waves, and there 768 means more than one; unmeasured. Earlier (2026-11-27,
  // other kernels): 1024 / 256 at 0.91x / 0.88x, 384 / 640 / 768 at 0.96x / 0.95x / 1.02x
  // (2026-11-27-h200-tuning-ab-split-target.json).
  // Sliced split blocks aim at half this (workgroupTarget()): 352 workgroups of 128 keep every
  // ALBERT-base product at or below 396 (Q|K|V 5 x 72, FFN 4 x 96 and 15 x 24), as 792 of 64 did.
  // The 64 x 32 tiles (fewer than 64 rows: sequences under 64 tokens at batch 1) aim at all 704,
  // near the 768 that both paths had before the slices (unmeasured there since).
  splitKTarget: 704,
  splitKMinChunk: 64,
};

/** matmul.wgsl's Params struct, in order (all u32). */
const PARAM_FIELDS = [
  'M',
  'N',
  'K',
  'inputRowStride',
  'outputOffset',
  'inputOffset',
  'activation',
  'kChunk',
  'partialStride',
  'splits',
] as const;

/** Output rows and columns of a `tiled_large` workgroup. */
const LARGE_TILE = 128;
/** Outputs per invocation and side of `tiled_block`. */
const BLOCK = 8;
/** Staged vec4 per invocation and operand of the tiled path with prefetch (matmul.wgsl). */
const TILED_STAGE_MAX = 4;
const REDUCE_ROWS = 2;
/** matmul.wgsl's binding of the exit gate (shaders/kernel.ts). */
const GATE_BINDING = 6;

/** Compiled pipelines per device, shared by all MatmulKernels of that device. */
const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** Rows up to which the GEMV entry point is used instead of the tiled one. */
export const GEMV_MAX_M = 8;

interface Pipelines {
  tiled?: GPUComputePipeline;
  gemv?: GPUComputePipeline;
  large?: GPUComputePipeline;
  /** `tiled_block` with `splitBlock`'s tiles (blockSplitK). */
  block?: GPUComputePipeline;
  /** `tiled_block` with `longK.slices`, where that differs from `splitBlock.slices`. */
  blockLongK?: GPUComputePipeline;
  reduce?: GPUComputePipeline;
}

type EntryPoint = 'tiled' | 'gemv' | 'tiled_large' | 'tiled_block' | 'reduce_partials';

/**
 * Which code paths to compile (all by default). Each is a separate pipeline, and compiling one takes
 * about a second on SwiftShader, so an engine that knows its shapes at load can skip the others:
 * `vec4` serves K, inputRowStride and inputOffset % 4 == 0, `scalar` the rest; `gemv` serves M <= 8,
 * `tiled` larger M. prepare() throws if the shape needs a path that was not compiled.
 */
export interface MatmulPaths {
  vec4: boolean;
  scalar: boolean;
  tiled: boolean;
  gemv: boolean;
  /** The 128 x 128 tiles for large M x N and, with `blockSplitK`, the split blocks (prepare() chooses). */
  large: boolean;
  /** The split-K reduction (preparePartials/prepareReduce, prepareAuto). */
  splitK: boolean;
}

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  /** Elements between consecutive input rows (default K), e.g. to read only [CLS] rows. */
  inputRowStride?: number;
  /** Elements skipped at the start of the output buffer (default 0). */
  outputOffset?: number;
  /** Elements skipped at the start of the input buffer (default 0). */
  inputOffset?: number;
}

/** The buffers of one product: output = act(input · weightᵀ + bias), behind an optional exit gate. */
export interface MatmulArgs {
  input: GPUBuffer;
  weight: GPUBuffer;
  bias: GPUBuffer;
  output: GPUBuffer;
  /** The exit gate (shaders/kernel.ts); default: never shut. */
  gate?: GPUBufferBinding;
}

/** Which entry point prepare() takes for a shape, and the K splits that splitsFor() suggests. */
export type MatmulPath = 'gemv' | 'tiled' | 'large' | 'block';

export class MatmulKernel {
  private constructor(
    private readonly device: GPUDevice,
    readonly weightDtype: WeightDtype,
    readonly activation: Activation,
    private readonly tiles: MatmulTiles,
    private readonly paths: MatmulPaths,
    private readonly vec4: Pipelines,
    private readonly scalar: Pipelines,
  ) {}

  static async create(
    device: GPUDevice,
    options: {
      weightDtype: WeightDtype;
      activation: Activation;
      tiles?: Partial<MatmulTiles>;
      paths?: Partial<MatmulPaths>;
    },
  ): Promise<MatmulKernel> {
    const { weightDtype, activation } = options;
    const tiles = { ...DEFAULT_MATMUL_TILES, ...options.tiles };
    const paths: MatmulPaths = {
      vec4: true,
      scalar: true,
      tiled: true,
      gemv: true,
      large: true,
      splitK: true,
      ...options.paths,
    };
    if (
      tiles.tileK % 4 !== 0 ||
      // With prefetch the tiled path stages at most 4 vec4 per invocation and operand (matmul.wgsl).
      (tiles.prefetch && tiles.tileK > TILED_STAGE_MAX * Math.min(tiles.wgX, tiles.wgY)) ||
      tiles.gemvLanes < GEMV_MAX_M ||
      (tiles.largeTileK !== 4 && tiles.largeTileK !== 8) ||
      (tiles.blockSplitK && !validBlock(tiles.splitBlock)) ||
      (tiles.longK !== undefined && !validLongK(tiles.longK, tiles.splitBlock)) ||
      (tiles.fma !== undefined && typeof tiles.fma !== 'boolean') ||
      !(tiles.splitKMinChunk >= 1)
    ) {
      throw new PonderError('gpu-error', `Invalid matmul tiles ${JSON.stringify(tiles)}`);
    }
    if (!(activation in ACTIVATION_CODE)) {
      throw new PonderError('unsupported-config', `Unsupported activation "${String(activation)}"`);
    }
    const [vec4, scalar] = await Promise.all([
      MatmulKernel.pipelines(device, weightDtype, tiles, true, paths),
      MatmulKernel.pipelines(device, weightDtype, tiles, false, paths),
    ]);
    return new MatmulKernel(device, weightDtype, activation, tiles, paths, vec4, scalar);
  }

  /**
   * The activation is a uniform, not an override constant, so kernels that differ only in their
   * activation share pipelines: a model's three matmul kernels (none, hidden_act, tanh) compile 4
   * pipelines instead of 12, which is most of the load time on software adapters.
   */
  private static async pipelines(
    device: GPUDevice,
    weightDtype: WeightDtype,
    tiles: MatmulTiles,
    vec4: boolean,
    paths: MatmulPaths,
  ): Promise<Pipelines> {
    if (!(vec4 ? paths.vec4 : paths.scalar)) return {};
    let cache = pipelineCache.get(device);
    if (!cache) {
      cache = new Map();
      pipelineCache.set(device, cache);
    }
    const constants = {
      WG_X: tiles.wgX,
      WG_Y: tiles.wgY,
      TILE_K: tiles.tileK,
      PREFETCH: tiles.prefetch ? 1 : 0,
      GEMV_LANES: tiles.gemvLanes,
      GEMV_COLS: tiles.gemvCols,
      LARGE_TILE_K: tiles.largeTileK,
      BLOCK_WG_X: tiles.splitBlock.wgX,
      BLOCK_WG_Y: tiles.splitBlock.wgY,
      BLOCK_TILE_K: tiles.splitBlock.tileK,
      BLOCK_TRANSPOSE: tiles.splitBlock.transpose === true ? 1 : 0,
      BLOCK_BUFFERS: tiles.splitBlock.buffers ?? 1,
      BLOCK_SLICES: tiles.splitBlock.slices ?? 1,
      USE_FMA: tiles.fma === true ? 1 : 0,
    };
    const out4 = vec4 && tiles.vec4Stores === true;
    const label = `matmul-${weightDtype}${vec4 ? '-vec4' : ''}${out4 ? '-out4' : ''}`;
    const get = (entryPoint: EntryPoint, slices?: 1 | 2): Promise<GPUComputePipeline> => {
      const specialized = slices === undefined ? constants : { ...constants, BLOCK_SLICES: slices };
      const key = `${label}-${entryPoint}-${JSON.stringify(specialized)}`;
      let pipeline = cache.get(key);
      if (!pipeline) {
        const source =
          weightTypeWgsl(weightDtype) +
          specialize(code, { VEC4: vec4, OUT4: out4 }) +
          partialSums8Wgsl('partials8', 'partials', 'params.partialStride', 'params.splits') +
          exitGateWgsl(GATE_BINDING);
        pipeline = createPipeline(device, {
          label: `${label}-${entryPoint}`,
          code: source,
          entryPoint,
          constants: specialized,
        });
        cache.set(key, pipeline);
        // A failed compile is not cached: the error is reported, and a later create() tries again.
        pipeline.catch(() => cache.delete(key));
      }
      return pipeline;
    };
    // Only where blockSplit() can choose it (software adapters turn split-K off).
    const blocks = paths.large && paths.tiled && paths.splitK && tiles.blockSplitK && tiles.splitKTarget > 0;
    const longSlices = tiles.longK?.slices;
    const [tiled, gemv, large, block, blockLongK, reduce] = await Promise.all([
      paths.tiled ? get('tiled') : undefined,
      paths.gemv ? get('gemv') : undefined,
      paths.large && paths.tiled ? get('tiled_large') : undefined,
      blocks ? get('tiled_block') : undefined,
      blocks && longSlices !== undefined && longSlices !== (tiles.splitBlock.slices ?? 1)
        ? get('tiled_block', longSlices)
        : undefined,
      // The reduction reads only scalar partial sums: one pipeline (the scalar variant's) serves both.
      paths.splitK && paths.tiled && (!vec4 || !paths.scalar) ? get('reduce_partials') : undefined,
    ]);
    return { tiled, gemv, large, block, blockLongK, reduce };
  }

  /** The entry point prepare() uses for this shape (throws nothing; see prepare for checks). */
  pathFor(shape: MatmulShape): MatmulPath {
    if (shape.M <= GEMV_MAX_M) return 'gemv';
    if (this.largeBySize(shape)) return 'large';
    return this.blockSplit(shape) ? 'block' : 'tiled';
  }

  /** Label suffix of tiled_block's variant: 't' transposed, 'd' double-buffered, 's2' two K slices, 'f' fma(). */
  private blockVariant(shape: MatmulShape): string {
    const b = this.tiles.splitBlock;
    const slices = this.blockSlices(shape) === 2 ? 's2' : '';
    return `${b.transpose === true ? 't' : ''}${b.buffers === 2 ? 'd' : ''}${slices}${this.tiles.fma === true ? 'f' : ''}`;
  }

  /** Output rows x columns of one workgroup of a tiled path. */
  private tileOf(path: Exclude<MatmulPath, 'gemv'>): readonly [number, number] {
    const t = this.tiles;
    if (path === 'large') return [LARGE_TILE, LARGE_TILE];
    if (path === 'block') return [BLOCK * t.splitBlock.wgY, BLOCK * t.splitBlock.wgX];
    return [4 * t.wgY, 4 * t.wgX];
  }

  /** Output tiles (workgroups before any K split) of a shape on a tiled path. */
  private groupsOf({ M, N }: MatmulShape, path: Exclude<MatmulPath, 'gemv'>): number {
    const [rows, cols] = this.tileOf(path);
    return divUp(M, rows) * divUp(N, cols);
  }

  /** Enough 128 x 128 tiles to fill the GPU without splitting K. */
  private largeBySize(shape: MatmulShape): boolean {
    const t = this.tiles;
    return (
      this.paths.large && t.largeMinWorkgroups > 0 && this.groupsOf(shape, 'large') >= t.largeMinWorkgroups
    );
  }

  /**
   * `blockSplitK`: `splitBlock`'s tiles, split along K, for shapes of at least one full tile of rows
   * whose grid (tiles x splits) reaches a quarter of the workgroup target. Smaller grids are latency-bound,
   * and there the 64 x 32 tiles' 16 outputs per invocation beat 64: on the H200, golden-albert-odd
   * (H 120) at seq 64 took 6.46 ms of GPU time a call on the 64 x 64 tiles against 4.80 before
   * (bench/results/archive/2026-11-27-h200-split-block-full-run.json) and 4.08 with this rule.
   */
  private blockSplit(shape: MatmulShape): boolean {
    const t = this.tiles;
    if (
      !this.paths.large ||
      !this.paths.splitK ||
      !t.blockSplitK ||
      t.splitKTarget <= 0 ||
      shape.M < this.tileOf('block')[0] ||
      this.largeBySize(shape)
    ) {
      return false;
    }
    const groups = this.groupsOf(shape, 'block');
    return groups * this.wantedSplits(shape, groups, 'block') * 4 >= this.workgroupTarget(shape, 'block');
  }

  /** `longK` where it applies to this shape on `splitBlock`'s tiles. */
  private longKFor(shape: MatmulShape): LongKBlocks | undefined {
    const longK = this.tiles.longK;
    return longK !== undefined && shape.K >= longK.minK ? longK : undefined;
  }

  /** K slices of a `tiled_block` tile for this shape (splitBlock.slices, or longK's). */
  private blockSlices(shape: MatmulShape): 1 | 2 {
    return this.longKFor(shape)?.slices ?? this.tiles.splitBlock.slices ?? 1;
  }

  /**
   * The workgroups split-K aims at on a path: `splitKTarget` (or `longK`'s), divided by the tile's K
   * slices on the register-blocked tiles, whose sliced workgroups hold that many sets of invocations.
   */
  private workgroupTarget(shape: MatmulShape, path: 'tiled' | 'block'): number {
    const t = this.tiles;
    if (path === 'tiled') return t.splitKTarget;
    const target = this.longKFor(shape)?.splitKTarget ?? t.splitKTarget;
    return Math.max(1, Math.floor(target / this.blockSlices(shape)));
  }

  /** K ranges for about the path's workgroup target from `groups` tiles, each at least `splitKMinChunk`. */
  private wantedSplits(shape: MatmulShape, groups: number, path: 'tiled' | 'block'): number {
    const t = this.tiles;
    const target = this.workgroupTarget(shape, path);
    return Math.max(1, Math.min(divUp(target, groups), Math.floor(shape.K / t.splitKMinChunk)));
  }

  /**
   * How many K ranges the tiled path should split this shape into (1: none): enough that about
   * `splitKTarget` workgroups run (workgroupTarget()), each range at least `splitKMinChunk` long. Only for shapes that
   * prepare() would give to the 64 x 32 tiles or to `splitBlock`'s tiles.
   */
  splitsFor(shape: MatmulShape): number {
    const { K } = shape;
    if (!this.paths.splitK || this.tiles.splitKTarget <= 0) return 1;
    const path = this.pathFor(shape);
    if (path !== 'tiled' && path !== 'block') return 1;
    const wanted = this.wantedSplits(shape, this.groupsOf(shape, path), path);
    if (wanted <= 1) return 1;
    return divUp(K, this.chunkFor(K, wanted));
  }

  /**
   * The K range of each split: whole K steps of every path, so that only the last range is ragged
   * (the kernels zero-fill past K, not past a range's end).
   */
  private chunkFor(K: number, splits: number): number {
    const t = this.tiles;
    const step = lcm(lcm(t.tileK, t.largeTileK), t.blockSplitK ? t.splitBlock.tileK : 1);
    return divUp(divUp(K, splits), step) * step;
  }

  /**
   * One dispatch computing output = act(input · Wᵀ + bias) in full (no split): GEMV for M <= 8, the
   * 128 x 128 tiles where pathFor() says so, else the 64 x 32 tiles.
   */
  prepare(args: MatmulArgs, shape: MatmulShape): KernelDispatch {
    return this.encode(args, shape, 1, false);
  }

  /**
   * The raw partial sums of `splits` K ranges (no bias, no activation): split s of row m, column n
   * goes to partials[outputOffset + s·M·N + m·N + n]. Sum them with prepareReduce() or with the
   * add+LayerNorm kernel. `bias` is not read (any read-only buffer may stand in; default weight).
   */
  preparePartials(
    args: {
      input: GPUBuffer;
      weight: GPUBuffer;
      partials: GPUBuffer;
      bias?: GPUBuffer;
      gate?: GPUBufferBinding;
    },
    shape: MatmulShape,
    splits: number,
  ): KernelDispatch {
    if (!Number.isInteger(splits) || splits < 1 || splits > shape.K) {
      throw new PonderError('invalid-input', `matmul: bad split count ${splits} for K = ${shape.K}`);
    }
    const { input, weight, partials, gate } = args;
    return this.encode(
      { input, weight, bias: args.bias ?? weight, output: partials, ...(gate ? { gate } : {}) },
      shape,
      splits,
      true,
    );
  }

  /** output[outputOffset + m·N + n] = act(Σ_s partials[s·M·N + m·N + n] + bias[n]). */
  prepareReduce(
    args: { partials: GPUBuffer; bias: GPUBuffer; output: GPUBuffer; gate?: GPUBufferBinding },
    shape: Pick<MatmulShape, 'M' | 'N' | 'outputOffset'>,
    splits: number,
  ): KernelDispatch {
    const { M, N } = shape;
    const outputOffset = shape.outputOffset ?? 0;
    const pipeline = this.scalar.reduce ?? this.vec4.reduce;
    if (!pipeline) throw new PonderError('invalid-input', 'matmul: the split-K reduction was not compiled');
    checkU32({ M, N, outputOffset, splits, partialStride: M * N });
    const label = `matmul-${this.weightDtype}-${this.activation}-${M}x${N}-reduce${splits}`;
    const uniforms = this.params(label, { M, N, outputOffset, partialStride: M * N, splits });
    const bindGroup = this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniforms } },
        { binding: 3, resource: { buffer: args.bias } },
        { binding: 4, resource: { buffer: args.output } },
        { binding: 5, resource: { buffer: args.partials } },
        { binding: GATE_BINDING, resource: args.gate ?? openExitGate(this.device) },
      ],
    });
    const workgroups: readonly [number, number, number] = [divUp(N, 64), divUp(M, REDUCE_ROWS), 1];
    this.checkWorkgroups(workgroups, shape);
    return { label, pipeline, bindGroup, workgroups, rowsPerWorkgroup: REDUCE_ROWS };
  }

  /**
   * Whatever serves the shape best on its own: prepare(), or split-K partial sums into a scratch
   * buffer created here (the caller destroys it) and their reduction.
   */
  prepareAuto(
    args: MatmulArgs,
    shape: MatmulShape,
  ): { dispatches: KernelDispatch[]; scratch: GPUBuffer | null } {
    const splits = this.splitsFor(shape);
    if (splits <= 1) return { dispatches: [this.prepare(args, shape)], scratch: null };
    const scratch = this.device.createBuffer({
      label: `matmul-partials-${shape.M}x${shape.N}x${splits}`,
      size: splits * shape.M * shape.N * 4,
      usage: GPUBufferUsage.STORAGE,
    });
    const { outputOffset, ...rest } = shape;
    const partials = this.preparePartials({ ...args, partials: scratch }, rest, splits);
    const reduce = this.prepareReduce(
      { partials: scratch, bias: args.bias, output: args.output, ...(args.gate ? { gate: args.gate } : {}) },
      { M: shape.M, N: shape.N, outputOffset },
      splits,
    );
    return { dispatches: [partials, reduce], scratch };
  }

  private encode(args: MatmulArgs, shape: MatmulShape, splits: number, raw: boolean): KernelDispatch {
    const { M, N, K } = shape;
    const inputRowStride = shape.inputRowStride ?? K;
    const outputOffset = shape.outputOffset ?? 0;
    const inputOffset = shape.inputOffset ?? 0;
    checkU32({ M, N, K, inputRowStride, outputOffset, inputOffset });
    if (M < 1 || N < 1 || K < 1 || inputRowStride < K) {
      throw new PonderError('invalid-input', `matmul: bad shape ${JSON.stringify(shape)}`);
    }
    // vec4 loads need every row start of input and weight on a 16-byte boundary.
    const useVec4 =
      K % 4 === 0 &&
      inputRowStride % 4 === 0 &&
      inputOffset % 4 === 0 &&
      (this.tiles.vec4Stores !== true || (N % 4 === 0 && outputOffset % 4 === 0));
    const pipelines = useVec4 ? this.vec4 : this.scalar;
    let path = this.pathFor(shape);
    // Partial sums come from the tiled entry points only (GEMV already splits K across lanes).
    if (raw && path === 'gemv') path = 'tiled';
    const pipeline =
      path === 'block' && this.blockSlices(shape) !== (this.tiles.splitBlock.slices ?? 1)
        ? pipelines.blockLongK
        : pipelines[path];
    if (!pipeline) {
      throw new PonderError(
        'invalid-input',
        `matmul: shape ${JSON.stringify(shape)} needs the ${useVec4 ? 'vec4' : 'scalar'} ${path} path, not compiled`,
      );
    }
    // Every split writes its slice, an empty range (past K after rounding up) as zeros.
    const kChunk = splits > 1 ? this.chunkFor(K, splits) : K;
    const tile = path === 'gemv' ? null : this.tileOf(path);
    const name =
      path === 'block' && tile
        ? `block${tile[0]}x${tile[1]}k${this.tiles.splitBlock.tileK}${this.blockVariant(shape)}`
        : path === 'large' && this.tiles.fma === true
          ? 'large-fma'
          : path;
    const suffix = `${path === 'tiled' ? '' : `-${name}`}${raw ? `-split${splits}` : ''}`;
    const label = `matmul-${this.weightDtype}-${this.activation}-${M}x${N}x${K}${suffix}`;
    const uniforms = this.params(label, {
      M,
      N,
      K,
      inputRowStride,
      outputOffset,
      inputOffset,
      kChunk,
      partialStride: raw ? M * N : 0,
      splits,
    });
    const bindGroup = bindBuffers(
      this.device,
      label,
      pipeline,
      [uniforms, args.input, args.weight, args.bias, args.output],
      [[GATE_BINDING, args.gate ?? openExitGate(this.device)]],
    );
    const workgroups: readonly [number, number, number] = tile
      ? [divUp(N, tile[1]), divUp(M, tile[0]), splits]
      : [divUp(N, this.tiles.gemvCols), 1, 1];
    this.checkWorkgroups(workgroups, shape);
    return { label, pipeline, bindGroup, workgroups, ...(tile ? { rowsPerWorkgroup: tile[0] } : {}) };
  }

  /** The Params uniform of matmul.wgsl, fields in its order (those not given are 0). */
  private params(
    label: string,
    p: Partial<Record<Exclude<(typeof PARAM_FIELDS)[number], 'activation'>, number>>,
  ): GPUBuffer {
    const values = { ...p, activation: ACTIVATION_CODE[this.activation] };
    return createUniformBuffer(
      this.device,
      `${label}-params`,
      PARAM_FIELDS.map((f) => ['u32', values[f] ?? 0] as const),
    );
  }

  private checkWorkgroups(workgroups: readonly number[], shape: object): void {
    if (workgroups.some((w) => w > this.device.limits.maxComputeWorkgroupsPerDimension)) {
      throw new PonderError(
        'unsupported-config',
        `matmul: shape ${JSON.stringify(shape)} needs too many workgroups`,
      );
    }
  }
}

/**
 * A register-blocked tile shape the WGSL supports: K steps of 4, 8 or 16, each invocation staging at
 * most 4 vec4 per operand (8·wg·tileK/4 elements over wgX·wgY invocations), at most 256 invocations (both K slices together).
 */
function validBlock(b: BlockTiles): boolean {
  const threads = b.wgX * b.wgY;
  const sliced = b.slices === 2;
  const staged = (wg: number) => divUp(BLOCK * wg * (b.tileK / 4), threads);
  return (
    [4, 8, 16].includes(b.tileK) &&
    Number.isInteger(b.wgX) &&
    Number.isInteger(b.wgY) &&
    b.wgX >= 1 &&
    b.wgY >= 1 &&
    threads * (sliced ? 2 : 1) <= 256 &&
    staged(b.wgX) <= 4 &&
    staged(b.wgY) <= 4 &&
    (b.transpose === undefined || typeof b.transpose === 'boolean') &&
    (b.transpose !== true || (b.tileK <= 2 * b.wgX && b.tileK <= 2 * b.wgY)) &&
    (b.buffers === undefined || b.buffers === 1 || (b.buffers === 2 && b.transpose === true)) &&
    (b.slices === undefined ||
      b.slices === 1 ||
      (sliced && b.transpose === true && b.buffers !== 2 && b.tileK === 2 * b.wgX && b.wgX === b.wgY))
  );
}

/** `longK` needs a positive K bound and target, and `splitBlock` valid with its slices. */
function validLongK(longK: LongKBlocks, splitBlock: BlockTiles): boolean {
  return (
    Number.isInteger(longK.minK) &&
    longK.minK >= 1 &&
    (longK.slices === 1 || longK.slices === 2) &&
    Number.isInteger(longK.splitKTarget) &&
    longK.splitKTarget >= 1 &&
    validBlock({ ...splitBlock, slices: longK.slices })
  );
}

function lcm(a: number, b: number): number {
  let [x, y] = [a, b];
  while (y) [x, y] = [y, x % y];
  return (a / x) * b;
}

function checkU32(values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new PonderError('invalid-input', `matmul: ${name} must be a u32, got ${v}`);
    }
  }
}
