import { expect, test } from '@playwright/test';
import { callHarness, openHarness } from './helpers';

// f32 on the browser's WebGPU against PyTorch (fp32, CPU) and the CPU reference, every layer.
// Tolerance: max|gpu − ref| / max|ref| ≤ 1e-4 per layer and per example.
const TOLERANCE = 1e-4;

// Twice: with the kernel tuning this (software) adapter gets by default, and with the GPU tuning
// forced (split-K on every matmul, `rows` attention with the output projection folded in), which
// real GPUs run at batch 1.
for (const tuning of ['default', 'gpu'] as const) {
  for (const fixture of ['albert-odd', 'albert-groups', 'bert-odd', 'bert-regression']) {
    test(`${fixture} (${tuning} kernel tuning): every layer's logits match PyTorch and the CPU reference`, async ({
      page,
    }) => {
      await openHarness(page);
      const r = await callHarness(page, 'compareGolden', fixture, tuning);
      const worstTorch = Math.max(...r.layers.map((l) => l.vsTorch));
      const worstCpu = Math.max(...r.layers.map((l) => l.vsCpu));
      console.log(
        `${fixture} (${tuning}): ${r.examples} examples × ${r.numLayers} layers (${r.weightDtype}, fallback adapter: ${r.isFallbackAdapter}); ` +
          `largest relative difference vs PyTorch ${worstTorch.toExponential(2)}, vs CPU reference ${worstCpu.toExponential(2)}, ` +
          `per example ${r.perExampleMaxRel.toExponential(2)}`,
      );
      expect(r.weightDtype).toBe('f32');
      expect(r.layers.length).toBeGreaterThanOrEqual(r.numLayers * 2);
      for (const l of r.layers) {
        expect(l.vsTorch, `batch ${l.batch} layer ${l.layer} vs PyTorch`).toBeLessThanOrEqual(TOLERANCE);
        expect(l.vsCpu, `batch ${l.batch} layer ${l.layer} vs CPU`).toBeLessThanOrEqual(TOLERANCE);
      }
      expect(r.perExampleMaxRel).toBeLessThanOrEqual(TOLERANCE);
      // The batched examples alone (batch-1 plans) against PyTorch's rows for them.
      console.log(`alone at batch 1: ${JSON.stringify(r.single)}`);
      expect(r.single.count).toBeGreaterThan(0);
      expect(r.single.longest).toBeGreaterThan(8);
      expect(r.single.maxRel).toBeLessThanOrEqual(TOLERANCE);
      // The tuning took effect: split-K partial sums and the short-sequence attention (rows, or short
      // past 256 tokens) only with 'gpu' here (this software adapter's default turns both off).
      console.log(`kernels: ${r.kernels.join(', ')}`);
      const split = r.kernels.some((k) => k.includes('-split'));
      const shortAttention = r.kernels.some((k) => /^attention-(rows|short)/.test(k));
      expect(split).toBe(tuning === 'gpu' || !r.isFallbackAdapter);
      expect(shortAttention).toBe(tuning === 'gpu' || !r.isFallbackAdapter);
      // albert-odd's first batch (3 examples, up to 37 tokens) has enough rows for the 64 x 64 split
      // blocks under the GPU tuning, so the engine runs tiled_block there (profiled on that batch).
      if (tuning === 'gpu' && fixture === 'albert-odd') {
        expect(r.kernels.some((k) => k.includes('-block64x64'))).toBe(true);
      }
      // The GPU tuning's rows attention folds the output projection in where the head size is a
      // multiple of 4 (albert-odd's 24), not for bert-odd's heads of 14.
      if (tuning === 'gpu') {
        const projected = r.kernels.includes('attention-rows-projected');
        expect(projected, r.kernels.join(', ')).toBe(fixture !== 'bert-odd');
      }
      // At batch 1 the GPU tuning folds the heads' pooler and (these models have only a classifier
      // on z) the classifier into each layer's last add+LayerNorm: no heads dispatch is left. The
      // batch-1 logits above came through that path.
      console.log(`kernels at batch 1: ${r.kernelsBatch1.join(', ')}`);
      const pooledNorm = r.kernelsBatch1.some((k) => k.startsWith('add-layernorm-pool'));
      const headsDispatches = r.kernelsBatch1.filter((k) => k.startsWith('heads.'));
      const folds = tuning === 'gpu' || !r.isFallbackAdapter;
      expect(pooledNorm, r.kernelsBatch1.join(', ')).toBe(folds);
      expect(headsDispatches.length === 0, r.kernelsBatch1.join(', ')).toBe(folds);
      // And its last layer runs for the [CLS] row only: attention for the first block of queries,
      // the FFN as GEMVs on row 0 where the other layers run it tiled (the longest example alone,
      // more than 8 rows). The batch-1 logits of the last layer above came through it.
      const alone = r.single.kernels;
      console.log(`kernels of the longest example alone: ${alone.join(', ')}`);
      const clsAttention = alone.some((k) => /^attention-.*-q1$/.test(k));
      const ffnTiled = alone.some((k) => /^matmul-f32-(?!none-)[a-z_]+-(block|split)/.test(k));
      const ffnGemv = alone.some((k) => /^matmul-f32-(?!none-)[a-z_]+-gemv$/.test(k));
      expect(clsAttention, alone.join(', ')).toBe(folds);
      expect(ffnTiled && ffnGemv, alone.join(', ')).toBe(folds);
      // Under the GPU tuning each depth's decide but the last runs beside the next depth's Q|K|V
      // reduction (KernelTuning.decideInReduce), where Q|K|V is split (more than 8 rows): the
      // longest example's logits above came through it.
      expect(alone.includes('decideReduce'), alone.join(', ')).toBe(tuning === 'gpu');
      // A criterion on the (folded, under the GPU tuning) batch-1 logits exits where the layers'
      // own probabilities say, with the full-depth run's logits up to there.
      if (fixture !== 'bert-regression') {
        console.log(`max-prob at batch 1: ${JSON.stringify(r.criterionCheck)}`);
        expect(r.criterionCheck).not.toBeNull();
        expect(r.criterionCheck!.exitLayer).toBe(r.criterionCheck!.expected);
        expect(r.criterionCheck!.exitLayer).toBeLessThan(r.numLayers);
        expect(r.criterionCheck!.sameLogits).toBe(true);
      }
    });
  }
}

test('bad input gets typed errors; long input is truncated; concurrent calls are queued', async ({
  page,
}) => {
  await openHarness(page);
  const r = await callHarness(page, 'engineErrors', 'albert-odd');
  console.log(JSON.stringify(r, null, 1));
  expect(r.emptyBatch.code).toBe('invalid-input');
  expect(r.emptyIds.code).toBe('invalid-input');
  expect(r.textWithoutTokenizer.code).toBe('invalid-input');
  expect(r.idOutOfVocab.code).toBe('invalid-input');
  expect(r.idOutOfVocab.message).toMatch(/vocabulary/);
  expect(r.badTokenType.code).toBe('invalid-input');
  expect(r.tooLong).toEqual({ truncated: true, tokenCount: r.maxPos, layers: 7 });
  expect(r.concurrent).toEqual({ sameInputSameOutput: true, differentInputDifferentOutput: true });
  expect(r.afterDispose.code).toBe('disposed');
});

test('local files with a tokenizer: text in, per-layer results out, criterion chosen per call', async ({
  page,
}) => {
  await openHarness(page);
  const texts = ['Hello world!', 'the quick brown fox jumps over the dog', 'unaffable café 中'];
  const r = await callHarness(page, 'classifyLocalFiles', texts);
  console.log(JSON.stringify(r));
  expect(r.maxRel).toBeLessThanOrEqual(1e-4);
  expect(r.tokens[0]).toEqual([2, 18, 19, 14, 3]);
  expect(r.results.map((x) => x.text)).toEqual(texts);
  expect(r.results.every((x) => x.exitLayer === 5 && !x.truncated)).toBe(true);
  expect(r.emptyText).toBe('invalid-input');
  expect(r.exitLayers).toEqual({ maxProbZero: 1, fixed2: 2, none: 5, palbert: 'unsupported-criterion' });
});

test('classifiers on one page share one GPU device', async ({ page }) => {
  await openHarness(page);
  const r = await callHarness(page, 'sharedDevice');
  expect(r).toEqual({ sameContext: true, layersAfterDispose: 7 });
});

test('no WebGPU and no adapter give typed errors that say what to do', async ({ page }) => {
  await openHarness(page);
  const r = await callHarness(page, 'missingGpu');
  console.log(JSON.stringify(r));
  expect(r.noWebGpu.code).toBe('no-webgpu');
  expect(r.noWebGpu.message).toMatch(/WebGPU/);
  expect(r.noAdapter.code).toBe('no-adapter');
  expect(r.noAdapter.message).toMatch(/enable-unsafe-webgpu/);
});

test('a lost GPU device gives a typed error that says to load again', async ({ page }) => {
  await openHarness(page);
  const r = await callHarness(page, 'lostDevice');
  console.log(JSON.stringify(r));
  expect(r.code).toBe('device-lost');
  expect(r.message).toMatch(/Load the model again/);
});
