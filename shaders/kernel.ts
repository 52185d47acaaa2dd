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

/** Creates a bind group for binding indices 0..n-1 in the given order. */
export function bindBuffers(
  device: GPUDevice,
  label: string,
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}

/** ceil(a / b) for workgroup counts. */
export function divUp(a: number, b: number): number {
  return Math.ceil(a / b);
}
