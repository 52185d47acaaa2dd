/**
 * The benchmark page: each runtime's suite runs here, in Chromium, on the same seeded token ids
 * (bench/common.ts `tokenBatch`). bench/run.ts opens a fresh page per (model, runtime) so that every
 * cold start starts from a page with nothing loaded, and calls `window.bench.*`.
 *
 * Timings are wall time around one awaited call that returns logits on the CPU (ponder-web's
 * classify() reads back once; ONNX Runtime returns CPU tensors), with performance.now().
 */
import type { MatmulRecord, RuntimeFloor, SuiteResult, SuiteSpec } from '../common';
import { dispatchProbe as runDispatchProbe, type DispatchProbeReport } from '../dispatch-probe';
import { measureRuntimeFloor } from '../floor';
import { matmulBench, type MatmulShapeSpec } from '../gpu-matmul';
import { ortRunner } from '../ort-runner';
import { ponderRunner, runSuite, type Runner } from '../suite';

async function ponder(spec: SuiteSpec): Promise<Runner> {
  const { loadClassifier } = await import('../../src/index');
  // No Cache Storage: every page load fetches, as a first visit does.
  return ponderRunner(await loadClassifier(spec.model.url, { cache: false, requireTokenizer: false }));
}

async function ort(spec: SuiteSpec, ep: 'webgpu' | 'wasm'): Promise<Runner> {
  // The wasm-only build for the wasm EP: its smaller binary is what a wasm-only user loads.
  const module =
    ep === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm');
  return ortRunner(module, `${spec.model.url}onnx/model.onnx`, ep, [
    `crossOriginIsolated: ${String(self.crossOriginIsolated)}`,
  ]);
}

async function transformersRunner(spec: SuiteSpec): Promise<Runner> {
  const tf = await import('@xenova/transformers');
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = '/models/';
  tf.env.useBrowserCache = false;
  const wasm = tf.env.backends.onnx.wasm as { wasmPaths?: string; numThreads?: number };
  wasm.wasmPaths = '/ort14/';
  const model = await tf.AutoModelForSequenceClassification.from_pretrained(spec.model.folder, {
    quantized: false,
  });
  const tensor = (rows: number[][]) =>
    new tf.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
  return {
    notes: [
      'transformers.js 2.17 AutoModelForSequenceClassification on the same onnx/model.onnx, fed token ids ' +
        '(the text-classification pipeline adds tokenization and a softmax around this call); its ONNX ' +
        'Runtime (1.14) has only the wasm backend',
      `wasm threads: ${wasm.numThreads ?? 'default'} (crossOriginIsolated: ${String(self.crossOriginIsolated)})`,
    ],
    async run(ids) {
      const out = (await model({
        input_ids: tensor(ids),
        attention_mask: tensor(ids.map((r) => r.map(() => 1))),
        token_type_ids: tensor(ids.map((r) => r.map(() => 0))),
      })) as { logits: { data: Float32Array; dims: number[] } };
      const C = out.logits.dims[1]!;
      return ids.map((_, b) => Array.from(out.logits.data.subarray(b * C, (b + 1) * C)));
    },
    dispose: async () => {
      await model.dispose();
    },
  };
}

async function adapterInfo(): Promise<Record<string, unknown>> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return { webgpu: false, userAgent: navigator.userAgent };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { webgpu: true, adapter: null, userAgent: navigator.userAgent };
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    webgpu: true,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: info.isFallbackAdapter === true,
    features: [...adapter.features].sort(),
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: self.crossOriginIsolated,
  };
}

async function matmul(shapes: MatmulShapeSpec[], flopBudget: number): Promise<MatmulRecord[]> {
  const { requestGpu } = await import('../../src/index');
  const ctx = await requestGpu();
  try {
    return await matmulBench(ctx.device, shapes, {
      dtypes: ctx.useF16 ? ['f32', 'f16'] : ['f32'],
      timestamps: ctx.adapter.hasTimestampQuery,
      flopBudget,
      passes: 3,
    });
  } finally {
    ctx.device.destroy();
  }
}

async function floor(): Promise<RuntimeFloor> {
  const { requestGpu } = await import('../../src/index');
  const ctx = await requestGpu();
  try {
    return await measureRuntimeFloor(ctx.device);
  } finally {
    ctx.device.destroy();
  }
}

async function dispatchProbe(options: {
  n: number;
  passes: number;
  warmUpSec: number;
}): Promise<DispatchProbeReport> {
  const { requestGpu } = await import('../../src/index');
  const ctx = await requestGpu();
  try {
    return await runDispatchProbe(ctx.device, { ...options, timestamps: ctx.adapter.hasTimestampQuery });
  } finally {
    ctx.device.destroy();
  }
}

function suite(spec: SuiteSpec): Promise<SuiteResult> {
  return runSuite(spec, (s) => {
    switch (s.runtime) {
      case 'ponder':
        return ponder(s);
      case 'ort-webgpu':
        return ort(s, 'webgpu');
      case 'ort-wasm':
        return ort(s, 'wasm');
      case 'transformers-js':
        return transformersRunner(s);
    }
  });
}

const bench = { runSuite: suite, adapterInfo, matmul, floor, dispatchProbe };
(window as unknown as { bench: typeof bench }).bench = bench;
(window as unknown as { benchReady: boolean }).benchReady = true;
export type BenchPage = typeof bench;
