/**
 * The f16-storage kernels (matmul, embeddings, heads and the pooled add+LayerNorm with f16 weights,
 * f32 accumulation), run by Deno on
 * an adapter with `shader-f16` — Mesa's lavapipe here (SwiftShader, and so the Chromium e2e tests,
 * has none), or a real GPU. `npm run test:f16` bundles this file and runs it with Deno.
 *
 * Bounds: against a CPU reference that rounds the weights to f16 exactly as uploaded, the kernels
 * must match to 1e-4 relative (max|gpu-ref| / max|ref|), like the f32 path: only the accumulation
 * order differs. Against the unrounded f32 weights the bound is 2e-3 (f16 keeps 11 significant bits).
 * Run with `-- --f32` to also run the f32 cases (and attention, layer norm) on the same adapter: a
 * second WGSL compiler (naga) next to Chromium's Tint.
 */
import {
  testActivationSweep,
  testAddLayerNorm,
  testAttention,
  testEmbeddings,
  testHeads,
  testMatmul,
  testPooledLayerNorm,
  type KernelComparison,
  type MatmulCase,
  type EmbeddingCase,
  type HeadsCase,
} from '../../e2e/harness/kernels';
import type { WeightDtype } from '../../shaders/kernel';
import type { BlockTiles } from '../../shaders/matmul';
import type { Activation } from '../../src/model/types';

const ROUNDED_BOUND = 1e-4;
const UNROUNDED_BOUND = 2e-3;

const args: string[] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
const dtypes: WeightDtype[] = args.includes('--f32') ? ['f16', 'f32'] : ['f16'];

/** A 131-row product on `splitBlock`'s tiles, split along K (splitKTarget 32 counts its grid as big). */
function splitBlockCase(
  K: number,
  activation: Activation,
  splitBlock: BlockTiles,
): Omit<MatmulCase, 'dtype'> {
  const tiles = { blockSplitK: true, splitKMinChunk: 16, splitKTarget: 32, splitBlock };
  return { M: 131, N: 70, K, activation, mode: 'auto', tiles };
}

const matmulCases: Omit<MatmulCase, 'dtype'>[] = [
  { M: 37, N: 333, K: 120, activation: 'none' },
  { M: 37, N: 333, K: 121, activation: 'gelu' },
  { M: 64, N: 128, K: 256, activation: 'gelu_new' },
  { M: 5, N: 7, K: 40, activation: 'relu' },
  { M: 1, N: 50, K: 37, activation: 'tanh' },
  { M: 8, N: 96, K: 64, activation: 'none', inputRowStride: 80, outputOffset: 12 },
  { M: 20, N: 9, K: 13, activation: 'gelu', inputRowStride: 15, outputOffset: 3 },
  { M: 9, N: 64, K: 64, activation: 'tanh', inputRowStride: 128, outputOffset: 5 },
  { M: 3, N: 5, K: 120, activation: 'none', inputOffset: 240, outputOffset: 10 },
  { M: 12, N: 10, K: 16, activation: 'relu', inputOffset: 6, inputRowStride: 20 },
  {
    M: 70,
    N: 45,
    K: 36,
    activation: 'none',
    tiles: { wgX: 16, wgY: 8, tileK: 8, gemvLanes: 8, gemvCols: 4 },
  },
  { M: 3, N: 45, K: 35, activation: 'none', tiles: { wgX: 16, wgY: 8, tileK: 8, gemvLanes: 8, gemvCols: 4 } },
  { M: 65, N: 33, K: 40, activation: 'gelu', tiles: { wgX: 8, wgY: 8, tileK: 32, blockSplitK: false } },
  // Split-K partial sums + reduction on the 64 x 32 tiles, and the 128 x 128 tiles (forced at small
  // sizes), f16 weights.
  { M: 67, N: 45, K: 301, activation: 'gelu', mode: 3, tiles: { blockSplitK: false } },
  { M: 130, N: 96, K: 200, activation: 'none', mode: 4, tiles: { blockSplitK: false } },
  { M: 130, N: 131, K: 37, activation: 'gelu_new', tiles: { largeMinWorkgroups: 1 } },
  { M: 200, N: 140, K: 64, activation: 'tanh', tiles: { largeMinWorkgroups: 1 }, mode: 2 },
  // Smaller register-blocked tiles split along K (blockSplitK + splitBlock), f16 weights.
  splitBlockCase(200, 'gelu', { wgX: 8, wgY: 8, tileK: 16 }),
  splitBlockCase(199, 'none', { wgX: 8, wgY: 16, tileK: 8 }),
  splitBlockCase(201, 'gelu_new', { wgX: 8, wgY: 8, tileK: 16, transpose: true, buffers: 2 }),
  { ...splitBlockCase(203, 'gelu_new', { wgX: 8, wgY: 8, tileK: 16, transpose: true, slices: 2 }), N: 72 },
];

const embeddingCases: Omit<EmbeddingCase, 'dtype'>[] = [
  {
    batch: 3,
    seqLen: 37,
    width: 40,
    vocabSize: 101,
    maxPositions: 64,
    typeVocabSize: 2,
    outOfRangeIds: true,
  },
  { batch: 2, seqLen: 8, width: 333, vocabSize: 17, maxPositions: 8, typeVocabSize: 3 },
  { batch: 1, seqLen: 5, width: 7, vocabSize: 9, maxPositions: 5, typeVocabSize: 1, outOfRangeIds: true },
];

// The heads (shaders/heads.wgsl, a dispatch per stage group): vec4 and scalar f16 loads, the λ cat
// input, per-layer heads, an input vector past one workgroup-memory chunk (2H > 2048).
const headsCases: Omit<HeadsCase, 'dtype'>[] = [
  {
    batch: 3,
    seqLen: 5,
    hidden: 36,
    labels: 3,
    numLayers: 4,
    depth: 2,
    perLayerHeads: true,
    lambda: { input: 'cat', hiddenLayers: 2 },
  },
  {
    batch: 2,
    seqLen: 3,
    hidden: 37,
    labels: 2,
    numLayers: 2,
    depth: 1,
    lambda: { input: 'current', hiddenLayers: 1 },
  },
  {
    batch: 1,
    seqLen: 2,
    hidden: 512,
    labels: 2,
    numLayers: 2,
    depth: 1,
    lambda: { input: 'cat', hiddenLayers: 3 },
  },
  {
    batch: 2,
    seqLen: 2,
    hidden: 1032,
    labels: 3,
    numLayers: 2,
    depth: 1,
    lambda: { input: 'cat', hiddenLayers: 0 },
  },
];

let failures = 0;
function check(name: string, dtype: WeightDtype, r: KernelComparison): void {
  const bound = dtype === 'f16' ? ROUNDED_BOUND : 1e-4;
  let ok = r.maxRel <= bound;
  let line = `${ok ? 'ok  ' : 'FAIL'} ${dtype} ${name} [${r.path}] maxRel ${r.maxRel.toExponential(2)} (bound ${bound}) maxAbs ${r.maxAbs.toExponential(2)}`;
  if (r.unroundedMaxRel !== undefined) {
    const ok2 = r.unroundedMaxRel <= UNROUNDED_BOUND;
    line += `; vs unrounded weights ${r.unroundedMaxRel.toExponential(2)} (bound ${UNROUNDED_BOUND})${ok2 ? '' : ' FAIL'}`;
    ok &&= ok2;
  }
  if (!ok) failures++;
  console.log(line);
}

const start = performance.now();
let adapter = '';
for (const dtype of dtypes) {
  for (const c of matmulCases) {
    const r = await testMatmul({ ...c, dtype });
    adapter = r.adapter;
    check(`matmul ${JSON.stringify(c)}`, dtype, r);
  }
  for (const c of embeddingCases)
    check(`embeddings ${JSON.stringify(c)}`, dtype, await testEmbeddings({ ...c, dtype }));
  for (const c of headsCases) check(`heads ${JSON.stringify(c)}`, dtype, await testHeads({ ...c, dtype }));
  // The last add+LayerNorm with the heads' pooler and classifier folded in (f16 head weights).
  for (const c of [
    { rows: 5, width: 84, classes: 3 },
    { rows: 3, width: 768, classes: 2, splits: 3 },
  ])
    check(`pooled add-layernorm ${JSON.stringify(c)}`, dtype, await testPooledLayerNorm({ ...c, dtype }));
}
if (dtypes.includes('f32')) {
  const attentionCases = [
    { seqLen: 37, heads: 5, headDim: 24, lengths: [5, 37, 1] },
    { seqLen: 128, heads: 2, headDim: 64, lengths: [100] },
    { seqLen: 9, heads: 3, headDim: 10, lengths: [0, 9] },
    { seqLen: 512, heads: 1, headDim: 128, lengths: [300], scale: 1 },
  ];
  for (const c of attentionCases) check(`attention ${JSON.stringify(c)}`, 'f32', await testAttention(c));
  for (const activation of ['gelu', 'gelu_new', 'relu', 'tanh'] as const) {
    const r = await testActivationSweep(activation);
    const ok = r.maxErr <= 1e-6;
    if (!ok) failures++;
    console.log(
      `${ok ? 'ok  ' : 'FAIL'} f32 activation ${activation} on [-12, 12]: ${r.maxErr.toExponential(2)} (bound 1e-6)`,
    );
  }
  for (const width of [120, 384, 333, 1]) {
    check(`add-layernorm width ${width}`, 'f32', await testAddLayerNorm({ rows: 7, width, offset: 100 }));
  }
}
console.log(`adapter: ${adapter}; ${((performance.now() - start) / 1000).toFixed(1)} s`);
if (failures > 0) throw new Error(`${failures} f16 kernel case(s) out of bounds`);
