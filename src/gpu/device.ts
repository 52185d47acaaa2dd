import { PonderError } from '../errors';

/** What the results report about where they were computed. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters such as SwiftShader or lavapipe: correct but very slow. */
  isFallbackAdapter: boolean;
  hasShaderF16: boolean;
  hasTimestampQuery: boolean;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterDescription;
  /** Use f16 weight storage (requires `shader-f16`). */
  useF16: boolean;
}

export interface GpuOptions {
  /** Prefer f16 weight storage when the adapter supports it (default true). */
  allowF16?: boolean;
  powerPreference?: GPUPowerPreference;
  /** Provide an existing device instead of requesting one (it is not destroyed by dispose()). */
  device?: GPUDevice;
}

function gpuFromEnvironment(): GPU {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) {
    throw new PonderError(
      'no-webgpu',
      'WebGPU is not available here (navigator.gpu is missing). Use a browser with WebGPU enabled ' +
        '(Chrome or Edge 113+, Firefox 141+ on Windows, Safari 26+), and serve the page over https or from localhost.',
    );
  }
  return gpu;
}

function describe(adapterInfo: GPUAdapterInfo, features: GPUSupportedFeatures): AdapterDescription {
  const info = adapterInfo as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: info.isFallbackAdapter === true,
    hasShaderF16: features.has('shader-f16'),
    hasTimestampQuery: features.has('timestamp-query'),
  };
}

/**
 * Requests an adapter and a device with the features ponder-web can use. Throws a typed
 * PonderError ('no-webgpu' or 'no-adapter') that says what the user can do about it.
 */
export async function requestGpu(options: GpuOptions = {}): Promise<GpuContext> {
  const allowF16 = options.allowF16 ?? true;
  if (options.device) {
    const device = options.device;
    const info = device.adapterInfo ?? ({} as GPUAdapterInfo);
    const adapter = describe(info, device.features);
    return { device, adapter, useF16: allowF16 && adapter.hasShaderF16 };
  }
  const gpu = gpuFromEnvironment();
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
  });
  if (!adapter) {
    throw new PonderError(
      'no-adapter',
      'WebGPU is present but no GPU adapter was found. The GPU may be blocklisted or disabled: on Linux, start ' +
        'Chrome with --enable-unsafe-webgpu (and --enable-features=Vulkan); elsewhere check chrome://gpu.',
    );
  }
  const wanted: GPUFeatureName[] = ['shader-f16', 'timestamp-query'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  const description = describe(adapter.info, device.features);
  return { device, adapter: description, useF16: allowF16 && description.hasShaderF16 };
}
