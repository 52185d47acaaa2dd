/**
 * What every kernel launcher in shaders/ shares: async pipeline creation, small uniform buffers and
 * the `KernelDispatch` record that the engine encodes. Launchers compile pipelines once (at model
 * load) and create bind groups once per execution plan; a forward pass only replays dispatches.
 */
import { PonderError } from '../src/errors';

export type WeightDtype = 'f32' | 'f16';

export interface KernelDispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  /** Workgroup counts for a direct dispatch. */
  workgroups: readonly [number, number, number];
  /**
   * When set, the counts are read from this buffer at dispatch time instead (3 × u32 at `offset`);
   * a GPU-side exit decision writes zeros there so that skipped layers cost nothing.
   */
  indirect?: { buffer: GPUBuffer; offset: number };
  /**
   * For kernels whose grid's y dimension walks rows (matmul tiles, the split-K reduction): rows per
   * workgroup, so that an exit that drops rows can shrink y.
   */
  rowsPerWorkgroup?: number;
}

/** Encodes dispatches in order into one compute pass (storage writes are visible between dispatches). */
export function encodeDispatches(pass: GPUComputePassEncoder, dispatches: readonly KernelDispatch[]): void {
  // A pass keeps its pipeline between dispatches; every call saved is CPU time per forward pass
  // (Deno spent 1.6-2.6 ms encoding one, timing.submitMs on the H200).
  let current: GPUComputePipeline | null = null;
  for (const d of dispatches) {
    if (d.pipeline !== current) pass.setPipeline(d.pipeline);
    current = d.pipeline;
    pass.setBindGroup(0, d.bindGroup);
    if (d.indirect) pass.dispatchWorkgroupsIndirect(d.indirect.buffer, d.indirect.offset);
    else pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
  }
}

export interface PipelineSpec {
  label: string;
  code: string;
  entryPoint?: string;
  /** WGSL `override` constants (tile sizes, workgroup sizes). */
  constants?: Record<string, number>;
}

/**
 * Compiles a compute pipeline without blocking the main thread. Shader compilation errors are
 * turned into a PonderError that names the kernel and carries the compiler messages.
 */
export async function createPipeline(device: GPUDevice, spec: PipelineSpec): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ label: spec.label, code: spec.code });
  try {
    return await device.createComputePipelineAsync({
      label: spec.label,
      layout: 'auto',
      compute: { module, entryPoint: spec.entryPoint ?? 'main', constants: spec.constants ?? {} },
    });
  } catch (cause) {
    const info = await module.getCompilationInfo();
    const messages = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
    throw new PonderError(
      'gpu-error',
      `Kernel ${spec.label} failed to compile:\n${messages || String(cause)}`,
      {
        cause,
      },
    );
  }
}

export type UniformField = readonly ['u32' | 'i32' | 'f32', number];

/**
 * Creates a uniform buffer for a params struct whose fields are all 4-byte scalars, in order.
 * The size is padded to 16 bytes as uniform layout requires.
 */
export function createUniformBuffer(
  device: GPUDevice,
  label: string,
  fields: readonly UniformField[],
): GPUBuffer {
  const size = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buffer = device.createBuffer({
    label,
    size,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const data = new ArrayBuffer(size);
  const view = new DataView(data);
  fields.forEach(([type, value], i) => {
    if (type === 'f32') view.setFloat32(i * 4, value, true);
    else if (type === 'i32') view.setInt32(i * 4, value, true);
    else view.setUint32(i * 4, value, true);
  });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/**
 * Creates a bind group for binding indices 0..n-1 in the given order, plus `extra` entries at
 * explicit binding indices (e.g. the exit gate).
 */
export function bindBuffers(
  device: GPUDevice,
  label: string,
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
  extra: readonly [binding: number, resource: GPUBufferBinding][] = [],
): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      ...extra.map(([binding, resource]) => ({ binding, resource })),
    ],
  });
}

/**
 * The exit gate: a 32-byte uniform that the layer kernels (matmul, attention, add+LayerNorm, heads)
 * read first, returning at once when its word 5 is not 0. At batch 1 it is the example's exit state
 * (shaders/exit.wgsl State: word 5 is exitLayer), so once `decide` records the exit every later
 * dispatch ends at its first instruction. That lets a batch-1 plan dispatch every depth directly:
 * on wgpu an indirect dispatch costs ~6 µs of GPU time more than a direct one, its arguments being
 * validated by an extra internal dispatch (bench --dispatch-probe: 9.1 against 2.7 µs on an H200),
 * and a returning 384-workgroup grid costs less than a zero-count indirect one (3.4 against 8.0 µs).
 * Elsewhere the gate is `openExitGate`: zeros, never shut.
 */
export const EXIT_GATE_BYTES = 32;

/**
 * The WGSL that opens a module whose weights are stored as `dtype`: the alias WT for their element
 * type and, for f16, `enable f16` (which must come before any declaration). Prepended to the kernels
 * that read weights, as WGSL has no includes.
 */
export function weightTypeWgsl(dtype: WeightDtype): string {
  return dtype === 'f16' ? 'enable f16;\nalias WT = f16;\n' : 'alias WT = f32;\n';
}

/** The WGSL of the gate at `binding` (appended to a kernel's module: WGSL has no includes). */
export function exitGateWgsl(binding: number): string {
  return `
// The exit gate (shaders/kernel.ts): word 5 set means the example has exited; return at once.
struct ExitGate {
  words: array<vec4<u32>, 2>,
}
@group(0) @binding(${binding}) var<uniform> exitGate: ExitGate;
fn gate_shut() -> bool {
  return exitGate.words[1].y != 0u;
}
`;
}

/**
 * The WGSL of `fn <name>(at: u32, s: u32) -> f32`: the sum of slices s .. s+7 of split-K partial
 * sums in `array` at element `at`, slices `stride` elements apart, zero past slice `splits` − 1 (WGSL
 * expressions). The indices are clamped rather than branched on, so that the eight loads are in
 * flight together: at batch 1 a reduction waits on memory latency, one round trip per eight slices.
 * Shared by matmul.wgsl's reduction and exit.wgsl's decide_reduce (WGSL has no includes).
 */
export function partialSums8Wgsl(name: string, array: string, stride: string, splits: string): string {
  const load = (i: number) => {
    const slice = i === 0 ? 's' : `s + ${i}u`;
    return `  let v${i} = select(0.0, ${array}[at + min(${slice}, last) * stride], ${slice} <= last);`;
  };
  return `
fn ${name}(at: u32, s: u32) -> f32 {
  let stride = ${stride};
  let last = ${splits} - 1u;
${[0, 1, 2, 3, 4, 5, 6, 7].map(load).join('\n')}
  return ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7));
}
`;
}

const openGates = new WeakMap<GPUDevice, GPUBuffer>();

/** A gate that never shuts (zeros), one per device, for dispatches that must always run. */
export function openExitGate(device: GPUDevice): GPUBufferBinding {
  let buffer = openGates.get(device);
  if (!buffer) {
    buffer = device.createBuffer({
      label: 'open-exit-gate',
      size: EXIT_GATE_BYTES,
      usage: GPUBufferUsage.UNIFORM,
    });
    openGates.set(device, buffer);
  }
  return { buffer, offset: 0, size: EXIT_GATE_BYTES };
}

/** ceil(a / b) for workgroup counts. */
export function divUp(a: number, b: number): number {
  return Math.ceil(a / b);
}
