/**
 * Harness functions for the engine: load a golden fixture (config.json + model.safetensors from
 * tests/fixtures/golden/), run it on the browser's WebGPU, and compare every layer's logits with
 * PyTorch's and with the CPU reference.
 */
import { createClassifier, loadClassifier } from '../../src/classifier';
import { isPonderError } from '../../src/errors';
import { requestGpu } from '../../src/gpu/device';
import { getSharedGpu } from '../../src/gpu/shared';
import { loadCheckpoint, parseCheckpoint } from '../../src/loading';
import { errorOf } from './outcome';
import { GPU_TUNING } from './tuning';
import { referenceForward } from '../../tests/reference/forward';
import { compare } from '../../tests/reference/ops';

interface GoldenBatch {
  batch: number;
  seqLen: number;
  lengths: number[];
  inputIds: number[][];
  tokenTypeIds: number[][];
  attentionMask: number[][];
  perLayerLogits: number[][][];
}

async function fetchFixture(name: string) {
  const base = `/tests/fixtures/golden/${name}/`;
  const [config, weights, golden] = await Promise.all([
    fetch(base + 'config.json').then((r) => r.text()),
    fetch(base + 'model.safetensors').then((r) => r.arrayBuffer()),
    fetch(base + 'golden.json').then((r) => r.json() as Promise<{ batches: GoldenBatch[] }>),
  ]);
  return { model: parseCheckpoint(config, weights), golden };
}

export interface LayerComparison {
  batch: number;
  layer: number;
  /** max|gpu − torch| / max|torch| over the batch's examples and classes. */
  vsTorch: number;
  vsCpu: number;
}

/**
 * Runs every golden batch of a fixture twice — once as the padded token batch through the engine,
 * once per example through classify() with unpadded token ids — and returns per-layer differences.
 */
export async function compareGolden(name: string, tuning: 'default' | 'gpu' = 'default') {
  const { model, golden } = await fetchFixture(name);
  const ctx = await requestGpu({ allowF16: false });
  const options = tuning === 'gpu' ? { kernelTuning: GPU_TUNING } : {};
  const classifier = await createClassifier(ctx, model, undefined, options, true);
  const layers: LayerComparison[] = [];
  let perExampleMaxRel = 0;
  let examples = 0;
  try {
    for (const [bi, b] of golden.batches.entries()) {
      const results = await classifier.classify(
        b.inputIds.map((ids, e) => ({
          inputIds: ids.slice(0, b.lengths[e]),
          tokenTypeIds: b.tokenTypeIds[e]!.slice(0, b.lengths[e]),
        })),
      );
      const cpu = referenceForward(model, {
        inputIds: b.inputIds.flat(),
        tokenTypeIds: b.tokenTypeIds.flat(),
        attentionMask: b.attentionMask.flat(),
        batch: b.batch,
        seqLen: b.seqLen,
      });
      for (let l = 0; l < model.config.numHiddenLayers; l++) {
        const gpu = results.flatMap((r) => r.layers[l]!.logits);
        const torch = b.perLayerLogits[l]!.flat();
        layers.push({
          batch: bi,
          layer: l + 1,
          vsTorch: compare(gpu, torch).maxRel,
          vsCpu: compare(gpu, Array.from(cpu.perLayerLogits[l]!)).maxRel,
        });
        // Also per example, so a padded row that is right on average but wrong alone is caught.
        for (let e = 0; e < b.batch; e++) {
          const d = compare(results[e]!.layers[l]!.logits, b.perLayerLogits[l]![e]!);
          perExampleMaxRel = Math.max(perExampleMaxRel, d.maxRel);
        }
      }
      examples += b.batch;
    }
    // Every example of the batched batches alone too, at its own length: batch-1 plans (gated, with
    // the heads folded and a [CLS]-only last layer under the GPU tuning) at more than GEMV's 8 rows.
    const single = { count: 0, longest: 0, maxRel: 0, kernels: [] as string[] };
    let longestInput: { inputIds: number[]; tokenTypeIds: number[] } | null = null;
    for (const b of golden.batches.filter((x) => x.batch > 1)) {
      for (let e = 0; e < b.batch; e++) {
        const length = b.lengths[e]!;
        const input = {
          inputIds: b.inputIds[e]!.slice(0, length),
          tokenTypeIds: b.tokenTypeIds[e]!.slice(0, length),
        };
        const [alone] = await classifier.classify(input);
        for (let l = 0; l < model.config.numHiddenLayers; l++) {
          const d = compare(alone!.layers[l]!.logits, b.perLayerLogits[l]![e]!);
          single.maxRel = Math.max(single.maxRel, d.maxRel);
        }
        single.count++;
        if (length > single.longest) {
          single.longest = length;
          longestInput = input;
        }
      }
    }
    if (longestInput) {
      single.kernels = (await classifier.profileKernels(longestInput)).byKernel.map((k) => k.kernel);
    }
    // Which kernel paths ran (the profile's labels name them), so the tuning is seen to take effect.
    // The whole first batch, so that the row count (batch x padded length) is the batched one.
    const b0 = golden.batches[0]!;
    const profile = await classifier.profileKernels(
      b0.inputIds.map((ids, e) => ({ inputIds: ids.slice(0, b0.lengths[e]) })),
    );
    // And a batch-1 batch (every fixture has one): the GPU tuning's batch-1 plans fold the heads.
    const one = golden.batches.find((b) => b.batch === 1);
    const oneInput = one ? { inputIds: one.inputIds[0]!.slice(0, one.lengths[0]) } : null;
    const profileOne = oneInput ? await classifier.profileKernels(oneInput) : null;
    // An exit criterion on those logits (decide sums the folded classifier's partial logits before
    // it tests them): max-prob with a threshold between the layers' own maxima must exit at the
    // first layer above it, with the same logits up to there as the full-depth run.
    let criterionCheck: {
      threshold: number;
      exitLayer: number;
      expected: number;
      sameLogits: boolean;
    } | null = null;
    if (oneInput && model.config.problemType !== 'regression') {
      const [full] = await classifier.classify(oneInput, { criterion: { kind: 'none' } });
      const maxima = full!.layers.map((l) => Math.max(...l.probabilities));
      const sorted = [...maxima].sort((a, b) => a - b);
      const threshold =
        (sorted[Math.floor(sorted.length / 2)]! + sorted[Math.floor(sorted.length / 2) - 1]!) / 2;
      const expected = maxima.findIndex((m) => m > threshold) + 1 || maxima.length;
      const [exited] = await classifier.classify(oneInput, { criterion: { kind: 'max-prob', threshold } });
      criterionCheck = {
        threshold,
        exitLayer: exited!.exitLayer,
        expected,
        sameLogits: exited!.layers.every(
          (l, i) => JSON.stringify(l.logits) === JSON.stringify(full!.layers[i]!.logits),
        ),
      };
    }
    return {
      kernels: profile.byKernel.map((k) => k.kernel),
      kernelsBatch1: profileOne?.byKernel.map((k) => k.kernel) ?? [],
      single,
      criterionCheck,
      layers,
      perExampleMaxRel,
      examples,
      numLayers: model.config.numHiddenLayers,
      weightDtype: classifier.weightDtype,
      isFallbackAdapter: classifier.device.isFallbackAdapter,
    };
  } finally {
    classifier.dispose();
  }
}

/** Runs a bad call and returns the typed error's code and message (or 'no error'). */
export async function engineErrors(name: string) {
  const { model } = await fetchFixture(name);
  const ctx = await requestGpu({ allowF16: false });
  const classifier = await createClassifier(ctx, model, undefined, {}, true);
  const vocab = model.config.vocabSize;
  const maxPos = model.config.maxPositionEmbeddings;
  const out = {
    emptyBatch: await errorOf(() => classifier.classify([])),
    emptyIds: await errorOf(() => classifier.classify({ inputIds: [] })),
    textWithoutTokenizer: await errorOf(() => classifier.classify('hello')),
    idOutOfVocab: await errorOf(() => classifier.classify({ inputIds: [1, vocab, 2] })),
    badTokenType: await errorOf(() => classifier.classify({ inputIds: [1, 2], tokenTypeIds: [0, 7] })),
    // Longer than the model's positions: truncated, and the result says so.
    tooLong: await classifier
      .classify({ inputIds: Array.from({ length: maxPos + 9 }, (_, i) => 1 + (i % (vocab - 1))) })
      .then((r) => ({
        truncated: r[0]!.truncated,
        tokenCount: r[0]!.tokenCount,
        layers: r[0]!.layers.length,
      })),
    // Concurrent calls are queued and each gets its own answer.
    concurrent: await Promise.all([
      classifier.classify({ inputIds: [2, 5, 9, 3] }),
      classifier.classify({ inputIds: [2, 7, 3] }),
      classifier.classify({ inputIds: [2, 5, 9, 3] }),
    ]).then((rs) => ({
      // Logits only: layers also carry per-layer GPU times, which differ between runs.
      sameInputSameOutput:
        JSON.stringify(rs[0]![0]!.layers.map((l) => l.logits)) ===
        JSON.stringify(rs[2]![0]!.layers.map((l) => l.logits)),
      differentInputDifferentOutput:
        JSON.stringify(rs[0]![0]!.layers.map((l) => l.logits)) !==
        JSON.stringify(rs[1]![0]!.layers.map((l) => l.logits)),
    })),
    maxPos,
  };
  classifier.dispose();
  const afterDispose = await errorOf(() => classifier.classify({ inputIds: [2, 3] }));
  return { ...out, afterDispose };
}

/**
 * Local files (as from a file picker) with a tokenizer: bert-odd's weights and a hand-written
 * WordPiece tokenizer.json whose ids fit its vocabulary. Text goes through the tokenizer and the
 * GPU, and is compared with the CPU reference on the same ids.
 */
export async function classifyLocalFiles(texts: string[]) {
  const get = async (url: string, name: string) => new File([await (await fetch(url)).blob()], name);
  const files = await Promise.all([
    get('/tests/fixtures/golden/bert-odd/config.json', 'config.json'),
    get('/tests/fixtures/golden/bert-odd/model.safetensors', 'model.safetensors'),
    get('/tests/fixtures/loading/wordpiece/tokenizer.json', 'tokenizer.json'),
    get('/tests/fixtures/loading/wordpiece/tokenizer_config.json', 'tokenizer_config.json'),
  ]);
  const classifier = await loadClassifier({ files }, { device: 'own', allowF16: false });
  const checkpoint = await loadCheckpoint({ files });
  try {
    const results = await classifier.classify(texts);
    let maxRel = 0;
    const tokens: number[][] = [];
    for (const [i, text] of texts.entries()) {
      const enc = checkpoint.tokenizer!.encode(text);
      tokens.push(enc.inputIds);
      const cpu = referenceForward(checkpoint.model, {
        inputIds: enc.inputIds,
        tokenTypeIds: enc.tokenTypeIds,
        attentionMask: enc.attentionMask,
        batch: 1,
        seqLen: enc.inputIds.length,
      });
      results[i]!.layers.forEach((layer, l) => {
        maxRel = Math.max(maxRel, compare(layer.logits, Array.from(cpu.perLayerLogits[l]!)).maxRel);
      });
    }
    return {
      maxRel,
      tokens,
      results: results.map((r) => ({
        text: r.text,
        label: r.label,
        exitLayer: r.exitLayer,
        truncated: r.truncated,
      })),
      emptyText: await classifier.classify('   ').then(
        () => 'no error',
        (e: unknown) => (isPonderError(e) ? e.code : 'untyped'),
      ),
      // A criterion per call, nothing reloaded: max-prob at 0 exits at layer 1, 'none' uses every layer.
      exitLayers: {
        maxProbZero: (
          await classifier.classify(texts[0]!, { criterion: { kind: 'max-prob', threshold: 0 } })
        )[0]!.exitLayer,
        fixed2: (await classifier.classify(texts[0]!, { criterion: { kind: 'fixed', layer: 2 } }))[0]!
          .exitLayer,
        none: (await classifier.classify(texts[0]!, { criterion: { kind: 'none' } }))[0]!.exitLayer,
        palbert: await classifier.classify(texts[0]!, { criterion: { kind: 'palbert', q: 0.5 } }).then(
          () => 'no error',
          (e: unknown) => (isPonderError(e) ? e.code : 'untyped'),
        ),
      },
    };
  } finally {
    classifier.dispose();
  }
}

/** Two classifiers loaded without a device share one; disposing one leaves the other working. */
export async function sharedDevice() {
  const url = '/tests/fixtures/golden/albert-odd/';
  const a = await loadClassifier(url, { requireTokenizer: false });
  const b = await loadClassifier(url, { requireTokenizer: false });
  const ctxA = await getSharedGpu();
  a.dispose();
  const still = await b.classify({ inputIds: [2, 5, 9, 3] });
  b.dispose();
  const ctxAfter = await getSharedGpu();
  return { sameContext: ctxA === ctxAfter, layersAfterDispose: still[0]!.layers.length };
}

/** What loading reports without WebGPU, and with WebGPU but no adapter. */
export async function missingGpu() {
  const nav = navigator as Navigator & { gpu?: GPU };
  const realGpu = nav.gpu;
  const attempt = () =>
    errorOf(() =>
      loadClassifier('/tests/fixtures/golden/albert-odd/', { device: 'own', requireTokenizer: false }),
    );
  try {
    Object.defineProperty(navigator, 'gpu', { value: undefined, configurable: true });
    const noWebGpu = await attempt();
    Object.defineProperty(navigator, 'gpu', {
      value: { requestAdapter: async () => null, getPreferredCanvasFormat: () => 'bgra8unorm' },
      configurable: true,
    });
    const noAdapter = await attempt();
    return { noWebGpu, noAdapter };
  } finally {
    Object.defineProperty(navigator, 'gpu', { value: realGpu, configurable: true });
  }
}

/** A lost device (here: destroyed under the classifier) makes later calls fail with 'device-lost'. */
export async function lostDevice() {
  const { model } = await fetchFixture('bert-regression');
  const ctx = await requestGpu({ allowF16: false });
  const classifier = await createClassifier(ctx, model, undefined, {}, true);
  ctx.device.destroy();
  await ctx.device.lost;
  return errorOf(() => classifier.classify({ inputIds: [2, 5, 3] }));
}
