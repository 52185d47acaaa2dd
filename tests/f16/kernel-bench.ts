/**
 * Kernel timings at BERT-base shapes, for choosing tile sizes on a real GPU (Deno's WebGPU: wgpu).
 * Not a test: it prints one JSON line per measurement. Build and run:
 *   npx vite build --config tests/f16/vite.config.ts
 *   deno run node_modules/.cache/ponder-f16/kernel-bench.js [--quick]
 * Each measurement encodes `reps` copies of one dispatch in one compute pass, timed with timestamp
 * queries when the adapter has them (else wall time minus an empty submit); the median of 5 is kept. Software adapters are far too slow for the full shapes.
 */
import { requestGpu } from '../../src/gpu/device';
import { type KernelDispatch, type WeightDtype } from '../../shaders/kernel';
import { createPassTimer, filledBuffer } from '../../bench/gpu-matmul';
import { MatmulKernel, type MatmulTiles } from '../../shaders/matmul';
import { AttentionKernel } from '../../shaders/attention';
import { AddLayerNormKernel } from '../../shaders/layernorm';

const args: string[] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
const quick = args.includes('--quick');

const ctx = await requestGpu();
const { device } = ctx;
console.log(JSON.stringify({ adapter: ctx.adapter }));
console.log(JSON.stringify({ timing: ctx.adapter.hasTimestampQuery ? 'timestamp-query' : 'wall' }));

const buffer = (bytes: number) => filledBuffer(device, bytes);
/** GPU time of one compute pass from timestamp queries (ms), or wall time when there are none. */
const timer = createPassTimer(device, ctx.adapter.hasTimestampQuery);
const submit = timer.run;

/** Median per-dispatch time over 5 passes of `reps` dispatches. */
async function time(d: KernelDispatch, reps: number): Promise<number> {
  await submit([d, d]); // warm-up
  let empty = 0;
  if (!timer.timestamps) {
    empty = Infinity;
    for (let i = 0; i < 3; i++) empty = Math.min(empty, await submit([]));
  }
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) runs.push(await submit(new Array<KernelDispatch>(reps).fill(d)));
  runs.sort((a, b) => a - b);
  return Math.max(0, runs[2]! - empty) / reps;
}

const tileConfigs: Partial<MatmulTiles>[] = quick
  ? [{}]
  : [
      { wgX: 8, wgY: 8, tileK: 32 },
      { wgX: 8, wgY: 8, tileK: 16 },
      { wgX: 8, wgY: 8, tileK: 8 },
      { wgX: 16, wgY: 8, tileK: 16 },
      { wgX: 8, wgY: 16, tileK: 16 },
      { wgX: 16, wgY: 16, tileK: 16 },
      { wgX: 16, wgY: 16, tileK: 8 },
      { wgX: 16, wgY: 16, tileK: 32 }, // 18 KiB of workgroup memory: above WebGPU's default 16 KiB
      { gemvLanes: 64, gemvCols: 4 },
      { gemvLanes: 16, gemvCols: 16 },
    ];
const shapes = quick
  ? [{ M: 64, N: 96, K: 64, what: 'tiny' }]
  : [
      { M: 1024, N: 2304, K: 768, what: 'qkv b8 t128' },
      { M: 1024, N: 3072, K: 768, what: 'ffn-in b8 t128' },
      { M: 1024, N: 768, K: 3072, what: 'ffn-out b8 t128' },
      { M: 128, N: 768, K: 768, what: 'attn-out b1 t128' },
      { M: 8, N: 768, K: 768, what: 'pooler b8 (gemv)' },
      { M: 1, N: 768, K: 768, what: 'pooler b1 (gemv)' },
    ];
const dtypes: WeightDtype[] = ctx.adapter.hasShaderF16 ? ['f32', 'f16'] : ['f32'];

for (const dtype of dtypes) {
  for (const tiles of tileConfigs) {
    const kernel = await MatmulKernel.create(device, { weightDtype: dtype, activation: 'gelu', tiles });
    for (const s of shapes) {
      const input = buffer(s.M * s.K * 4);
      const weight = buffer(s.N * s.K * (dtype === 'f16' ? 2 : 4));
      const bias = buffer(s.N * 4);
      const output = buffer(s.M * s.N * 4);
      const d = kernel.prepare({ input, weight, bias, output }, s);
      const flop = 2 * s.M * s.N * s.K;
      const reps = quick ? 2 : Math.max(5, Math.min(400, Math.round(1e11 / flop)));
      const ms = await time(d, reps);
      console.log(JSON.stringify({ kernel: 'matmul', dtype, tiles, ...s, ms, gflops: flop / ms / 1e6 }));
      for (const b of [input, weight, bias, output]) b.destroy();
    }
  }
}

const attention = await AttentionKernel.create(device);
const attentionShapes = quick
  ? [{ batch: 1, seqLen: 16, heads: 2, headDim: 64 }]
  : [
      { batch: 8, seqLen: 128, heads: 12, headDim: 64 },
      { batch: 1, seqLen: 16, heads: 12, headDim: 64 },
      { batch: 1, seqLen: 64, heads: 12, headDim: 64 },
      { batch: 1, seqLen: 128, heads: 12, headDim: 64 },
      { batch: 1, seqLen: 128, heads: 8, headDim: 64 },
      { batch: 1, seqLen: 512, heads: 12, headDim: 64 },
    ];
for (const s of attentionShapes) {
  const rows = s.batch * s.seqLen;
  const H = s.heads * s.headDim;
  const qkv = buffer(rows * 3 * H * 4);
  const mask = buffer(rows * 4);
  const output = buffer(rows * H * 4);
  for (const path of ['short', 'flash'] as const) {
    const ms = await time(attention.prepare({ qkv, mask, output }, s, path), quick ? 2 : 20);
    const flop = 4 * s.batch * s.heads * s.seqLen * s.seqLen * s.headDim;
    console.log(JSON.stringify({ kernel: 'attention', path, ...s, ms, gflops: flop / ms / 1e6 }));
  }
}

const layerNorm = await AddLayerNormKernel.create(device);
for (const s of quick
  ? [{ rows: 16, width: 768 }]
  : [
      { rows: 1024, width: 768 },
      { rows: 128, width: 768 },
      { rows: 16, width: 768 },
    ]) {
  const bytes = s.rows * s.width * 4;
  const [input, residual, output] = [buffer(bytes), buffer(bytes), buffer(bytes)];
  const [gamma, beta] = [buffer(s.width * 4), buffer(s.width * 4)];
  const ms = await time(
    layerNorm.prepare({ input, residual, gamma, beta, output }, { ...s, eps: 1e-12 }),
    quick ? 2 : 50,
  );
  console.log(JSON.stringify({ kernel: 'add-layernorm', ...s, ms, gbps: (3 * bytes) / ms / 1e6 }));
}
device.destroy();
