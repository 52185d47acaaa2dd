import { expect, test, type Page } from '@playwright/test';
import type { KernelComparison } from './harness/kernels';
import { callHarness, openHarness } from './helpers';

// Every WGSL kernel against the CPU reference (tests/reference/ops.ts) on Chromium's WebGPU
// (SwiftShader here), f32 path. No skip: without an adapter these tests fail.
// Tolerance: max|gpu - ref| / max|ref| <= 1e-4 (f32 arithmetic vs the reference's f64 sums).
const TOLERANCE = 1e-4;

function expectClose(name: string, r: KernelComparison): void {
  console.log(
    `${name} [${r.path}]: maxRel ${r.maxRel.toExponential(2)}, maxAbs ${r.maxAbs.toExponential(2)} (${r.ms.toFixed(0)} ms)`,
  );
  expect(r.maxRel, `${name}: max relative difference`).toBeLessThanOrEqual(TOLERANCE);
}

let page: Page;
test.describe.configure({ mode: 'serial' });
test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  await openHarness(page);
});
test.afterAll(async () => page.close());

test('matmul: odd and round shapes, strides, offsets, small M, every activation', async () => {
  const cases = [
    { M: 37, N: 333, K: 120, activation: 'none' }, // tiles cut in M and N (scalar: N % 4 != 0)
    { M: 37, N: 333, K: 121, activation: 'gelu' }, // K not a multiple of 4: scalar path
    { M: 64, N: 128, K: 256, activation: 'gelu_new' }, // whole tiles
    { M: 33, N: 31, K: 30, activation: 'relu' },
    { M: 40, N: 20, K: 64, activation: 'tanh', inputRowStride: 72, outputOffset: 7 },
    { M: 21, N: 19, K: 13, activation: 'none', inputRowStride: 15, outputOffset: 3 },
    { M: 5, N: 7, K: 40, activation: 'relu' }, // small M: GEMV path
    { M: 1, N: 50, K: 37, activation: 'tanh' },
    { M: 1, N: 1, K: 1, activation: 'gelu' },
    { M: 8, N: 96, K: 64, activation: 'gelu_new', inputRowStride: 128, outputOffset: 5 }, // [CLS] rows
    // GEMV over long K, four K quads a step: two steps and a partial third (vec4), and scalar
    // loads past a K that is not a multiple of 4; M 6 runs six of the eight row accumulators.
    { M: 1, N: 40, K: 1100, activation: 'gelu_new' },
    { M: 6, N: 20, K: 1101, activation: 'none', inputRowStride: 1105 },
    { M: 9, N: 30, K: 24, activation: 'none' }, // first M that takes the tiled path
    { M: 3, N: 5, K: 120, activation: 'none', inputOffset: 240, outputOffset: 10 }, // per-layer classifier
    { M: 12, N: 10, K: 16, activation: 'relu', inputOffset: 6, inputRowStride: 20 }, // unaligned offset: scalar
    // Other tile sizes (override constants): 64 x 32 tiles with K steps of 8; GEMV with 8 lanes.
    {
      M: 70,
      N: 45,
      K: 36,
      activation: 'none',
      tiles: { wgX: 16, wgY: 8, tileK: 8, gemvLanes: 8, gemvCols: 4, blockSplitK: false },
    },
    {
      M: 3,
      N: 45,
      K: 36,
      activation: 'none',
      tiles: { wgX: 16, wgY: 8, tileK: 8, gemvLanes: 8, gemvCols: 4 },
    },
    // K steps of 32: four staged vec4 of A per invocation (the most prefetch holds); no prefetch.
    { M: 70, N: 45, K: 100, activation: 'gelu', tiles: { tileK: 32, blockSplitK: false } },
    { M: 70, N: 45, K: 101, activation: 'none', tiles: { prefetch: false, blockSplitK: false } },
    // vec4 loads with scalar stores (vec4Stores off): the variant the default gives shapes whose N
    // or output offset is a multiple of 4 no longer, as above.
    { M: 37, N: 333, K: 120, activation: 'none', tiles: { vec4Stores: false } },
    {
      M: 40,
      N: 20,
      K: 64,
      activation: 'tanh',
      inputRowStride: 72,
      outputOffset: 7,
      tiles: { vec4Stores: false },
    },
    {
      M: 8,
      N: 96,
      K: 64,
      activation: 'gelu_new',
      inputRowStride: 128,
      outputOffset: 5,
      tiles: { vec4Stores: false },
    },
  ] as const;
  for (const c of cases) expectClose(`matmul ${JSON.stringify(c)}`, await callHarness(page, 'testMatmul', c));
});

test('matmul: split-K partial sums + reduction, and the 128 x 128 tiles, on odd shapes', async () => {
  // largeMinWorkgroups 1 forces the 128 x 128 path at small sizes; splitKMinChunk 16 lets prepareAuto
  // split short K. Ragged last K ranges, M below one tile, M <= 8 (raw sums take the tiled path).
  const large = { largeMinWorkgroups: 1 };
  const cases = [
    // The 64 x 32 tiles split (blockSplitK off): scalar loads, ragged last range; vec4.
    { M: 67, N: 45, K: 301, activation: 'gelu', mode: 3, tiles: { blockSplitK: false } },
    { M: 130, N: 96, K: 200, activation: 'none', mode: 4, tiles: { blockSplitK: false } },
    { M: 5, N: 33, K: 64, activation: 'tanh', mode: 2, outputOffset: 3 },
    { M: 40, N: 20, K: 64, activation: 'relu', mode: 5, inputRowStride: 72, outputOffset: 7 },
    { M: 16, N: 24, K: 48, activation: 'gelu_new', mode: 'auto', tiles: { splitKMinChunk: 16 } },
    { M: 37, N: 50, K: 77, activation: 'none', mode: 'auto', dtype: 'f32', tiles: { splitKTarget: 0 } },
    { M: 130, N: 131, K: 37, activation: 'gelu_new', tiles: large }, // scalar, cut in M, N and K
    { M: 200, N: 140, K: 64, activation: 'none', tiles: large }, // vec4
    { M: 129, N: 257, K: 36, activation: 'tanh', tiles: { ...large, largeTileK: 4 } },
    { M: 150, N: 70, K: 120, activation: 'relu', tiles: large, mode: 3 }, // large tiles, split K
  ] as const;
  for (const c of cases) expectClose(`matmul ${JSON.stringify(c)}`, await callHarness(page, 'testMatmul', c));
  // blockSplitK with 128 x 128 blocks (16 x 16 invocations): prepareAuto splits them along K at a
  // small grid (7 ranges, the last one ragged) instead of the split 64 x 32 tiles. splitKTarget 32
  // lets these small grids count as big enough for the register-blocked tiles.
  const blockSplit = { M: 131, N: 72, K: 200, activation: 'gelu', mode: 'auto' } as const;
  const r = await callHarness(page, 'testMatmul', {
    ...blockSplit,
    tiles: {
      blockSplitK: true,
      splitKMinChunk: 16,
      splitKTarget: 32,
      splitBlock: { wgX: 16, wgY: 16, tileK: 8 },
    },
  });
  expectClose(`matmul blockSplitK 128 x 128 ${JSON.stringify(blockSplit)}`, r);
  expect(r.path).toBe('-block128x128k8-split7-reduce7-vec4-out4');
});

// Split from the test above to stay inside the per-test timeout (pipelines per tiles config).
test('matmul: register-blocked split-K tile shapes and staging variants, on odd shapes', async () => {
  const blockSplit = { M: 131, N: 72, K: 200, activation: 'gelu', mode: 'auto' } as const;
  // splitBlock: smaller register-blocked tiles split along K, each invocation staging 1 to 4 vec4
  // per operand: 128 x 64 and 64 x 128 at K steps of 8, 64 x 64 at 16 (the default), 64 x 32 at 4;
  // vec4 and scalar loads.
  const blocks = [
    { splitBlock: { wgX: 8, wgY: 16, tileK: 8 }, name: '128x64k8', shape: blockSplit },
    { splitBlock: { wgX: 16, wgY: 8, tileK: 8 }, name: '64x128k8', shape: blockSplit },
    { splitBlock: { wgX: 8, wgY: 8, tileK: 16 }, name: '64x64k16', shape: blockSplit },
    { splitBlock: { wgX: 4, wgY: 8, tileK: 4 }, name: '64x32k4', shape: blockSplit },
    {
      splitBlock: { wgX: 8, wgY: 8, tileK: 16 },
      name: '64x64k16',
      shape: { M: 70, N: 45, K: 101, activation: 'tanh', mode: 'auto' } as const,
    },
    // Staging by 4 x 4 transposes ('t'), double-buffered ('d'): one unit per invocation (64 x 64 at
    // 16), fewer units than invocations (64 x 32 at 4, 128 x 64 at 8), scalar loads (K 101).
    { splitBlock: { wgX: 8, wgY: 8, tileK: 16, transpose: true }, name: '64x64k16t', shape: blockSplit },
    {
      splitBlock: { wgX: 8, wgY: 8, tileK: 16, transpose: true, buffers: 2 as const },
      name: '64x64k16td',
      shape: blockSplit,
    },
    {
      splitBlock: { wgX: 4, wgY: 8, tileK: 4, transpose: true, buffers: 2 as const },
      name: '64x32k4td',
      shape: blockSplit,
    },
    {
      splitBlock: { wgX: 8, wgY: 16, tileK: 8, transpose: true, buffers: 2 as const },
      name: '128x64k8td',
      shape: blockSplit,
    },
    {
      splitBlock: { wgX: 8, wgY: 8, tileK: 16, transpose: true, buffers: 2 as const },
      name: '64x64k16td',
      shape: { M: 70, N: 45, K: 101, activation: 'tanh', mode: 'auto' } as const,
    },
  ];
  for (const { splitBlock, name, shape } of blocks) {
    const tiles = { blockSplitK: true, splitKMinChunk: 16, splitKTarget: 32, splitBlock };
    const b = await callHarness(page, 'testMatmul', { ...shape, tiles });
    expectClose(`matmul splitBlock ${JSON.stringify({ ...shape, splitBlock })}`, b);
    expect(b.path).toMatch(new RegExp(`^-block${name}-split\\d+-reduce\\d+-(vec4-out4|scalar)$`));
  }
});

// Split from the test above to stay inside the per-test timeout: each tiles config compiles its own
// pipelines, which takes 15-20 s on SwiftShader.
test('matmul: fma() accumulation and vec4 stores on every path, on odd shapes', async () => {
  const large = { largeMinWorkgroups: 1 };
  const blockSplit = { M: 131, N: 72, K: 200, activation: 'gelu', mode: 'auto' } as const;
  // fma(): the register-blocked paths accumulating with WGSL's fma (MatmulTiles.fma), split blocks of
  // one K slice (vec4 and scalar loads; two slices with fma() are in the next test) and the 128 x 128
  // tiles.
  const oneSliceFma = {
    blockSplitK: true,
    splitKMinChunk: 16,
    splitKTarget: 32,
    fma: true,
    splitBlock: { wgX: 8, wgY: 8, tileK: 16, transpose: true },
  };
  const fmaCases = [
    {
      c: { ...blockSplit, tiles: oneSliceFma },
      path: /^-block64x64k16tf-split\d+-reduce\d+-vec4-out4$/,
    },
    {
      c: {
        M: 70,
        N: 45,
        K: 101,
        activation: 'tanh',
        mode: 'auto',
        tiles: oneSliceFma,
      },
      path: /^-block64x64k16tf-split\d+-reduce\d+-scalar$/,
    },
    {
      c: { M: 130, N: 131, K: 37, activation: 'gelu_new', tiles: { ...large, fma: true } },
      path: /^-large-fma-scalar$/,
    },
  ] as const;
  for (const { c, path } of fmaCases) {
    const f = await callHarness(page, 'testMatmul', c);
    expectClose(`matmul fma ${JSON.stringify(c)}`, f);
    expect(f.path).toMatch(path);
  }
  // vec4Stores: the vec4 variant writes whole vec4 (N and the output offset multiples of 4) on every
  // path; a shape with N % 4 != 0 or an unaligned output offset takes the scalar variant instead.
  // The default split blocks (two K slices), split and whole (one range of K: 13 steps, odd).
  const out4 = { vec4Stores: true, blockSplitK: true, splitKMinChunk: 16, splitKTarget: 32 } as const;
  const stores = [
    {
      c: { M: 131, N: 72, K: 200, activation: 'gelu', mode: 'auto', tiles: out4 },
      path: /^-block64x64k16ts2-split\d+-reduce\d+-vec4-out4$/,
    },
    { c: { M: 131, N: 72, K: 200, activation: 'tanh', tiles: out4 }, path: /^-block64x64k16ts2-vec4-out4$/ },
    {
      c: { M: 130, N: 132, K: 36, activation: 'gelu_new', tiles: { ...out4, largeMinWorkgroups: 1 } },
      path: /^-large-vec4-out4$/,
    },
    {
      c: { M: 37, N: 52, K: 120, activation: 'relu', outputOffset: 8, tiles: { vec4Stores: true } },
      path: /^-tiled-vec4-out4$/,
    },
    {
      c: { M: 3, N: 20, K: 64, activation: 'none', tiles: { vec4Stores: true } },
      path: /^-gemv.*-vec4-out4$/,
    },
    { c: { M: 131, N: 70, K: 200, activation: 'gelu', mode: 'auto', tiles: out4 }, path: /-scalar$/ },
    {
      c: { M: 37, N: 52, K: 120, activation: 'none', outputOffset: 6, tiles: { vec4Stores: true } },
      path: /^-tiled-scalar$/,
    },
  ] as const;
  for (const { c, path } of stores) {
    const r = await callHarness(page, 'testMatmul', c);
    expectClose(`matmul vec4Stores ${JSON.stringify(c)}`, r);
    expect(r.path).toMatch(path);
  }
  // Default tiles: a grid too small to fill a GPU (golden-model sized) keeps the 64 x 32 tiles, whose
  // 16 outputs per invocation finish sooner than 64 when the product is latency-bound.
  const tiny = { M: 64, N: 120, K: 120, activation: 'gelu', mode: 'auto' } as const;
  const t = await callHarness(page, 'testMatmul', tiny);
  expectClose(`matmul default tiles ${JSON.stringify(tiny)}`, t);
  expect(t.path).toBe('-tiled-vec4-out4');
});

test('matmul: two K slices a register-blocked tile (BlockTiles.slices), on odd shapes', async () => {
  // Ranges of odd and even step counts (a slice staging zeros past its range), vec4 and scalar
  // loads, 32 x 32 tiles at K steps of 8, with fma(), and per-shape slices (longK). splitKTarget 64: 32 sliced workgroups, as
  // the test above aims at 32 of one slice.
  const sliced = (b: { wgX: number; wgY: number; tileK: number }, fma = false) => ({
    blockSplitK: true,
    splitKMinChunk: 16,
    splitKTarget: 64,
    fma,
    splitBlock: { ...b, transpose: true, slices: 2 as const },
  });
  const k16 = { wgX: 8, wgY: 8, tileK: 16 };
  const withLongK = { ...sliced(k16), longK: { minK: 256, slices: 1 as const, splitKTarget: 32 } };
  const cases = [
    {
      c: { M: 131, N: 72, K: 200, activation: 'gelu', mode: 'auto', tiles: sliced(k16) },
      path: /^-block64x64k16ts2-split5-reduce5-vec4-out4$/,
    },
    {
      c: { M: 70, N: 45, K: 101, activation: 'tanh', mode: 'auto', tiles: sliced(k16) },
      path: /^-block64x64k16ts2-split4-reduce4-scalar$/,
    },
    {
      c: {
        M: 97,
        N: 68,
        K: 344,
        activation: 'none',
        mode: 'auto',
        tiles: sliced({ wgX: 4, wgY: 4, tileK: 8 }),
      },
      path: /^-block32x32k8ts2-split3-reduce3-vec4-out4$/,
    },
    {
      c: { M: 131, N: 72, K: 200, activation: 'gelu', mode: 'auto', tiles: sliced(k16, true) },
      path: /^-block64x64k16ts2f-split5-reduce5-vec4-out4$/,
    },
    // MatmulTiles.longK: from K 256 one slice at 32 workgroups (6 ranges of the 6 tiles); K 200 of the
    // same kernel keeps two slices; and the other way round, two slices for long K only (scalar loads).
    {
      c: { M: 131, N: 72, K: 344, activation: 'gelu', mode: 'auto', tiles: withLongK },
      path: /^-block64x64k16t-split6-reduce6-vec4-out4$/,
    },
    {
      c: { M: 131, N: 72, K: 200, activation: 'none', mode: 'auto', tiles: withLongK },
      path: /^-block64x64k16ts2-split5-reduce5-vec4-out4$/,
    },
    {
      c: {
        M: 70,
        N: 45,
        K: 333,
        activation: 'tanh',
        mode: 'auto',
        tiles: {
          ...sliced(k16),
          splitBlock: { ...k16, transpose: true, slices: 1 as const },
          longK: { minK: 256, slices: 2 as const, splitKTarget: 64 },
        },
      },
      path: /^-block64x64k16ts2-split\d+-reduce\d+-scalar$/,
    },
  ] as const;
  for (const { c, path } of cases) {
    const r = await callHarness(page, 'testMatmul', c);
    expectClose(`matmul sliced ${JSON.stringify(c)}`, r);
    expect(r.path).toMatch(path);
  }
});

test('activations on [-12, 12]: erf-GELU, tanh-GELU, ReLU, tanh within 1e-6', async () => {
  // Absolute error where |act(x)| < 1, relative beyond; the erfc fit is good to ~1.2e-7 relative.
  for (const activation of ['gelu', 'gelu_new', 'relu', 'tanh', 'none'] as const) {
    const r = await callHarness(page, 'testActivationSweep', activation);
    console.log(
      `activation ${activation}: max error ${r.maxErr.toExponential(2)} at x = ${r.worstX.toFixed(2)}`,
    );
    expect(r.maxErr, activation).toBeLessThanOrEqual(1e-6);
  }
});

test('attention: padding, an all-masked sequence, seqLen 128, every entry point', async () => {
  const cases = [
    { seqLen: 37, heads: 5, headDim: 24, lengths: [5, 37, 1] },
    { seqLen: 9, heads: 3, headDim: 10, lengths: [0, 9] }, // batch 0 entirely masked: zeros
    { seqLen: 128, heads: 2, headDim: 64, lengths: [100] },
    { seqLen: 20, heads: 1, headDim: 128, lengths: [17], scale: 4 }, // largest head, peaky softmax
    { seqLen: 13, heads: 2, headDim: 7, lengths: [13, 4] }, // head size not a multiple of 4
    { seqLen: 300, heads: 2, headDim: 32, lengths: [290, 300] }, // more keys than invocations
    // rows: its longest sequence, a ragged last block of queries, and a head of 128 (256 output vec4
    // per block, two per invocation).
    { seqLen: 256, heads: 2, headDim: 16, lengths: [256, 200] },
    { seqLen: 131, heads: 3, headDim: 128, lengths: [131] },
    // rows: heads of 40, 80 output vec4 a block, so 48 invocations have none (they once stored zeros
    // over them); 40 keys, so the value loop takes 16 keys a step twice and then 4 and 1 at a time.
    { seqLen: 41, heads: 2, headDim: 40, lengths: [41, 23] },
  ];
  for (const path of ['short', 'rows', 'flash'] as const) {
    for (const c of cases) {
      const r = await callHarness(page, 'testAttention', { ...c, path });
      expectClose(`attention ${path} ${JSON.stringify(c)}`, r);
      // Past 256 tokens 'rows' gives way to 'short'.
      expect(r.path).toBe(path === 'rows' && c.seqLen > 256 ? 'short' : path);
    }
  }
  // rows at 256 invocations a workgroup: up to 128 tokens two invocations share each key's scores
  // (with more than 8 vec4 a head), and heads of up to 16 vec4 split the value loop in two groups.
  for (const c of cases.filter((c) => c.seqLen <= 256)) {
    const r = await callHarness(page, 'testAttention', { ...c, path: 'rows', rowsThreads: 256 });
    expectClose(`attention rows x256 ${JSON.stringify(c)}`, r);
    expect(r.path).toBe('rows');
  }
  // Past the short path's 512 tokens the kernel takes the flash loop on its own.
  expectClose(
    'attention seqLen 520',
    await callHarness(page, 'testAttention', { seqLen: 520, heads: 1, headDim: 8, lengths: [515] }),
  );
  // rows with the output projection folded in: the heads' slices sum to context · Woᵀ. Padding, a
  // ragged last block, an all-masked sequence, one head, a head of 128, H = 768 (two workgroups a
  // block, each projecting 96 column quads) and H = 520 (two workgroups of 65 quads, batch 2; heads
  // of 40, whose 80 output vec4 a block leave 48 invocations without one).
  const projected = [
    { seqLen: 37, heads: 5, headDim: 24, lengths: [5, 37, 1] },
    { seqLen: 9, heads: 3, headDim: 12, lengths: [0, 9] },
    { seqLen: 20, heads: 1, headDim: 128, lengths: [17], scale: 4 },
    { seqLen: 19, heads: 12, headDim: 64, lengths: [19] },
    { seqLen: 11, heads: 13, headDim: 40, lengths: [11, 6] },
  ];
  // At 256 invocations H = 768 takes one workgroup a block (192 column quads).
  for (const rowsThreads of [128, 256] as const) {
    for (const c of projected) {
      const r = await callHarness(page, 'testAttention', { ...c, projected: true, rowsThreads });
      expectClose(`attention rows projected x${rowsThreads} ${JSON.stringify(c)}`, r);
      expect(r.path).toBe('rows-projected');
    }
  }
  // Other workgroup counts a block (KernelTuning.attentionProjectionParts): H = 768 walked by one
  // workgroup (two column quads an invocation) or split in 3 and 5 (the last part's share ragged:
  // 39 quads of 192 each, 36 in the last); H = 520 in 4 parts (batch 2).
  const parted = [
    { c: projected[3]!, parts: 1 },
    { c: projected[3]!, parts: 3 },
    { c: projected[3]!, parts: 5 },
    { c: projected[4]!, parts: 4 },
  ];
  for (const { c, parts } of parted) {
    const r = await callHarness(page, 'testAttention', { ...c, projected: true, projectionParts: parts });
    expectClose(`attention rows projected in ${parts} parts ${JSON.stringify(c)}`, r);
    expect(r.path).toBe('rows-projected');
  }
});

test('residual add + LayerNorm: widths 120, 384, 333, 1028, 2052; both variants', async () => {
  // vec4 variant: width % 4 == 0 and at most 4 vec4 per invocation (2048 at 128 invocations).
  for (const [width, variant] of [
    [120, 'vec4'],
    [384, 'vec4'],
    [333, 'scalar'],
    [1028, 'vec4'], // 3 vec4 per invocation, the last one partly
    [2052, 'scalar'], // past the vec4 variant's registers
  ] as const) {
    const r = await callHarness(page, 'testAddLayerNorm', { rows: 9, width });
    expectClose(`add-layernorm width ${width}`, r);
    expect(r.path).toBe(`${variant} row`);
  }
  // A large common offset: the variance must be computed from deviations, not E[x²] - E[x]².
  expectClose(
    'add-layernorm offset 1000',
    await callHarness(page, 'testAddLayerNorm', { rows: 3, width: 120, offset: 1000, eps: 1e-5 }),
  );
  // Split-K partial sums of the matmul before it, summed here with its bias.
  for (const splits of [1, 2, 5]) {
    expectClose(
      `add-layernorm ${splits} partial sums`,
      await callHarness(page, 'testAddLayerNorm', { rows: 7, width: 130, splits }),
    );
  }
  // vec4 variant: slices four at a time, then the rest (splits 3, 4, 9); a misaligned slice stride
  // (gap 3) falls back to the scalar variant.
  for (const [splits, sliceGap, variant] of [
    [3, 4, 'vec4'],
    [4, 4, 'vec4'],
    [9, 8, 'vec4'],
    [4, 3, 'scalar'],
  ] as const) {
    const r = await callHarness(page, 'testAddLayerNorm', { rows: 7, width: 132, splits, sliceGap });
    expectClose(`add-layernorm ${splits} partial sums, slice gap ${sliceGap}`, r);
    expect(r.path).toBe(`${variant} row, ${splits} partial sums + bias`);
  }
});

test('last add+LayerNorm with the pooler and classifier folded in (batch 1): rows, z and logits', async () => {
  // Widths with a partial last pooler block (84, 132: not multiples of 16) and a round one (768);
  // one input or split-K partial sums with the bias; the pooler alone or with 1, 2, 3 or 130 classes
  // (more than the workgroup's 128 invocations: some take two classes).
  const cases = [
    { rows: 5, width: 84, classes: 3 },
    { rows: 7, width: 132, classes: 2, splits: 4 },
    { rows: 1, width: 84, classes: 0, splits: 9 },
    { rows: 3, width: 768, classes: 130, splits: 3 },
    { rows: 2, width: 2048, classes: 1 },
  ];
  for (const c of cases) {
    const r = await callHarness(page, 'testPooledLayerNorm', c);
    expectClose(`pooled add-layernorm ${JSON.stringify(c)}`, r);
    expect(r.path).toMatch(/^add-layernorm-pool-/);
    expect(r.path).not.toMatch(/WROTE OUTSIDE/);
  }
});

test('embeddings + LayerNorm, with out-of-range ids clamped', async () => {
  const cases = [
    {
      batch: 3,
      seqLen: 37,
      width: 40,
      vocabSize: 101,
      maxPositions: 64,
      typeVocabSize: 2,
      outOfRangeIds: true,
    },
    { batch: 2, seqLen: 8, width: 384, vocabSize: 17, maxPositions: 8, typeVocabSize: 3 },
    { batch: 1, seqLen: 5, width: 7, vocabSize: 9, maxPositions: 5, typeVocabSize: 1, outOfRangeIds: true },
  ];
  for (const c of cases)
    expectClose(`embeddings ${JSON.stringify(c)}`, await callHarness(page, 'testEmbeddings', c));
});

test('heads: pooler, classifier, per-layer head and λ MLP, a dispatch per stage group (cat input via the slot map)', async () => {
  const cases = [
    // Odd shapes: vec4 loads with H % 4 == 0, scalar ones otherwise; z_prev of a moved slot.
    {
      batch: 3,
      seqLen: 5,
      hidden: 36,
      labels: 3,
      numLayers: 4,
      depth: 2,
      perLayerHeads: true,
      lambda: { input: 'cat', hiddenLayers: 2 },
      prevSlots: [2, 0, 1],
    },
    {
      batch: 3,
      seqLen: 7,
      hidden: 120,
      labels: 3,
      numLayers: 3,
      depth: 1,
      lambda: { input: 'cat', hiddenLayers: 2 },
    },
    {
      batch: 2,
      seqLen: 3,
      hidden: 37,
      labels: 5,
      numLayers: 2,
      depth: 0,
      perLayerHeads: true,
      lambda: { input: 'current', hiddenLayers: 1 },
    },
    {
      batch: 2,
      seqLen: 4,
      hidden: 84,
      labels: 1,
      numLayers: 3,
      depth: 0,
      lambda: { input: 'cat', hiddenLayers: 0 },
    },
    // Round: BERT-base heads alone, the shipped model's λ head, and the largest hidden size.
    { batch: 1, seqLen: 3, hidden: 768, labels: 2, numLayers: 2, depth: 1 },
    {
      batch: 2,
      seqLen: 2,
      hidden: 512,
      labels: 2,
      numLayers: 3,
      depth: 2,
      lambda: { input: 'cat', hiddenLayers: 3 },
    },
    {
      batch: 1,
      seqLen: 2,
      hidden: 1024,
      labels: 2,
      numLayers: 2,
      depth: 1,
      lambda: { input: 'cat', hiddenLayers: 1 },
    },
    // Past one chunk of the input vector (2H > 2048 floats), with scalar and with vec4 loads.
    {
      batch: 2,
      seqLen: 2,
      hidden: 1027,
      labels: 3,
      numLayers: 2,
      depth: 1,
      lambda: { input: 'cat', hiddenLayers: 1 },
    },
    {
      batch: 1,
      seqLen: 2,
      hidden: 1032,
      labels: 2,
      numLayers: 2,
      depth: 1,
      lambda: { input: 'cat', hiddenLayers: 0 },
    },
  ] as const;
  for (const c of cases) expectClose(`heads ${JSON.stringify(c)}`, await callHarness(page, 'testHeads', c));
});

test('exit gate: behind a shut gate every gated kernel writes nothing; open, it computes', async () => {
  const results = await callHarness(page, 'testExitGate');
  for (const r of results)
    console.log(`${r.kernel}: shut untouched ${r.shutUntouched}, open wrote ${r.openWrote}`);
  expect(results.length).toBe(11);
  for (const r of results) {
    expect(r.shutUntouched, `${r.kernel} behind a shut gate`).toBe(true);
    expect(r.openWrote, `${r.kernel} behind the open gate`).toBe(true);
  }
});
