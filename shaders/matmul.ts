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
  type KernelDispatch,
  type WeightDtype,
} from './kernel';
import { specialize } from './preprocess';
import code from './matmul.wgsl?raw';

const ACTIVATION_CODE: Record<Activation, number> = { none: 0, gelu: 1, gelu_new: 2, relu: 3, tanh: 4 };

/** Tile configuration (WGSL override constants); see matmul.wgsl. */
export interface MatmulTiles {
  wgX: number;
  wgY: number;
  tileK: number;
  gemvLanes: number;
  gemvCols: number;
}

// 8 x 16 invocations (a 64 x 32 output tile per workgroup, 7.5 KiB of workgroup memory), K in steps
// of 16: among the best of the configurations tests/f16/kernel-bench.ts tried on an H200 (Deno/wgpu)
// at BERT-base shapes, 8-9.6 TFLOP/s f32 for M=1024, N=2304..3072, K=768.
export const DEFAULT_MATMUL_TILES: MatmulTiles = { wgX: 8, wgY: 16, tileK: 16, gemvLanes: 32, gemvCols: 8 };

/** Compiled pipelines per device, shared by all MatmulKernels of that device. */
const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** Rows up to which the GEMV entry point is used instead of the tiled one. */
export const GEMV_MAX_M = 8;

interface Pipelines {
  tiled?: GPUComputePipeline;
  gemv?: GPUComputePipeline;
}

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

export class MatmulKernel {
  private constructor(
    private readonly device: GPUDevice,
    readonly weightDtype: WeightDtype,
    readonly activation: Activation,
    private readonly tiles: MatmulTiles,
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
    const paths: MatmulPaths = { vec4: true, scalar: true, tiled: true, gemv: true, ...options.paths };
    if (tiles.tileK % 4 !== 0 || tiles.gemvLanes < GEMV_MAX_M) {
      throw new PonderError('gpu-error', `Invalid matmul tiles ${JSON.stringify(tiles)}`);
    }
    if (!(activation in ACTIVATION_CODE)) {
      throw new PonderError('unsupported-config', `Unsupported activation "${String(activation)}"`);
    }
    const [vec4, scalar] = await Promise.all([
      MatmulKernel.pipelines(device, weightDtype, tiles, true, paths),
      MatmulKernel.pipelines(device, weightDtype, tiles, false, paths),
    ]);
    return new MatmulKernel(device, weightDtype, activation, tiles, vec4, scalar);
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
      GEMV_LANES: tiles.gemvLanes,
      GEMV_COLS: tiles.gemvCols,
    };
    const label = `matmul-${weightDtype}${vec4 ? '-vec4' : ''}`;
    const get = (entryPoint: 'tiled' | 'gemv'): Promise<GPUComputePipeline> => {
      const key = `${label}-${entryPoint}-${JSON.stringify(constants)}`;
      let pipeline = cache.get(key);
      if (!pipeline) {
        const source = specialize(code, { F16: weightDtype === 'f16', VEC4: vec4 });
        pipeline = createPipeline(device, {
          label: `${label}-${entryPoint}`,
          code: source,
          entryPoint,
          constants,
        });
        cache.set(key, pipeline);
        // A failed compile is not cached: the error is reported, and a later create() tries again.
        pipeline.catch(() => cache.delete(key));
      }
      return pipeline;
    };
    const [tiled, gemv] = await Promise.all([
      paths.tiled ? get('tiled') : undefined,
      paths.gemv ? get('gemv') : undefined,
    ]);
    return { tiled, gemv };
  }

  prepare(
    args: { input: GPUBuffer; weight: GPUBuffer; bias: GPUBuffer; output: GPUBuffer },
    shape: MatmulShape,
  ): KernelDispatch {
    const { M, N, K } = shape;
    const inputRowStride = shape.inputRowStride ?? K;
    const outputOffset = shape.outputOffset ?? 0;
    const inputOffset = shape.inputOffset ?? 0;
    for (const [name, v] of Object.entries({ M, N, K, inputRowStride, outputOffset, inputOffset })) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new PonderError('invalid-input', `matmul: ${name} must be a u32, got ${v}`);
      }
    }
    if (M < 1 || N < 1 || K < 1 || inputRowStride < K) {
      throw new PonderError('invalid-input', `matmul: bad shape ${JSON.stringify(shape)}`);
    }
    // vec4 loads need every row start of input and weight on a 16-byte boundary.
    const useVec4 = K % 4 === 0 && inputRowStride % 4 === 0 && inputOffset % 4 === 0;
    const pipelines = useVec4 ? this.vec4 : this.scalar;
    const gemv = M <= GEMV_MAX_M;
    const pipeline = gemv ? pipelines.gemv : pipelines.tiled;
    if (!pipeline) {
      const path = `${useVec4 ? 'vec4' : 'scalar'} ${gemv ? 'gemv' : 'tiled'}`;
      throw new PonderError(
        'invalid-input',
        `matmul: shape ${JSON.stringify(shape)} needs the ${path} path, not compiled`,
      );
    }
    const label = `matmul-${this.weightDtype}-${this.activation}-${M}x${N}x${K}${gemv ? '-gemv' : ''}`;
    const uniforms = createUniformBuffer(this.device, `${label}-params`, [
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['u32', inputRowStride],
      ['u32', outputOffset],
      ['u32', inputOffset],
      ['u32', ACTIVATION_CODE[this.activation]],
    ]);
    const bindGroup = bindBuffers(this.device, label, pipeline, [
      uniforms,
      args.input,
      args.weight,
      args.bias,
      args.output,
    ]);
    const t = this.tiles;
    const workgroups: readonly [number, number, number] = gemv
      ? [divUp(N, t.gemvCols), 1, 1]
      : [divUp(N, 4 * t.wgX), divUp(M, 4 * t.wgY), 1];
    if (workgroups.some((w) => w > this.device.limits.maxComputeWorkgroupsPerDimension)) {
      throw new PonderError(
        'unsupported-config',
        `matmul: shape ${JSON.stringify(shape)} needs too many workgroups`,
      );
    }
    return { label, pipeline, bindGroup, workgroups };
  }
}
