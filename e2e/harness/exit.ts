/**
 * Harness functions for early exit on the GPU (e2e/exit.spec.ts): seeded random-weight models WITH
 * exit heads (tests/fixtures/exit/random-model.ts) through the real loader, compared with the CPU
 * reference of the heads (tests/reference/forward.ts) and with src/exit's evaluateExit (f32).
 */
import { createClassifier, type PonderClassifier } from '../../src/classifier';
import type { KernelTuning } from '../../src/engine/kernels';
import { Engine, workGpuMs, type EngineOutput } from '../../src/engine/engine';
import { isPonderError } from '../../src/errors';
import { argmax, evaluateExit, type ExitCriterion, type LayerOutputs } from '../../src/exit';
import { requestGpu } from '../../src/gpu/device';
import { loadCheckpoint, parseCheckpoint } from '../../src/loading';
import type { EncoderModel } from '../../src/model/types';
import type { LayerEvent } from '../../src/results';
import { EXIT_FIXTURES, makeExamples, makeExitCheckpoint } from '../../tests/fixtures/exit/random-model';
import { referenceExitHeads, referenceForward } from '../../tests/reference/forward';
import { errorOf } from './outcome';
import { GPU_TUNING } from './tuning';

function fixtureModel(name: string): EncoderModel {
  const spec = EXIT_FIXTURES[name];
  if (!spec) throw new Error(`no exit fixture ${name}`);
  const { config, safetensors } = makeExitCheckpoint(spec);
  return parseCheckpoint(config, safetensors);
}

function examplesOf(name: string, count: number, seed = 5, maxLen = 8) {
  const spec = EXIT_FIXTURES[name]!;
  // At most 8 tokens by default: the 8-token bucket keeps SwiftShader's passes short.
  return makeExamples(spec, count, maxLen, seed);
}

// One device per page, so that the kernels of several models compile once (SwiftShader is slow).
let pageGpu: ReturnType<typeof requestGpu> | null = null;
function gpu() {
  pageGpu ??= requestGpu({ allowF16: false });
  return pageGpu;
}

async function classifierFor(
  model: EncoderModel,
  options: { kernelTuning?: KernelTuning; maxBatch?: number } = {},
): Promise<PonderClassifier> {
  return createClassifier(await gpu(), model, undefined, { warmUp: false, ...options }, false);
}

async function engineFor(model: EncoderModel): Promise<Engine> {
  return Engine.create(await gpu(), model, {}, false);
}

/** max |a − b| / max |b| over all pairs, NaN-aware (a NaN on one side only is Infinity). */
function relDiff(pairs: [number, number][]): number {
  let diff = 0;
  let scale = 0;
  for (const [a, b] of pairs) {
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    const d = Math.abs(a - b);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b));
  }
  return diff / Math.max(scale, 1e-12);
}

/**
 * Every layer's heads (shared probabilities, λ, per-layer heads, gates) of a batch run at full depth,
 * against the f64 CPU reference on the same padded batch.
 */
export async function exitHeadsVsCpu(name: string, count: number) {
  const model = fixtureModel(name);
  const classifier = await classifierFor(model);
  try {
    const examples = examplesOf(name, count);
    const results = await classifier.classify(examples, { criterion: { kind: 'none' } });
    const seqLen = Math.max(...examples.map((e) => e.inputIds.length));
    const pad = (rows: number[][], v: number) =>
      rows.flatMap((r) => [...r, ...Array<number>(seqLen - r.length).fill(v)]);
    const forward = referenceForward(model, {
      inputIds: pad(
        examples.map((e) => e.inputIds),
        0,
      ),
      tokenTypeIds: pad(
        examples.map((e) => e.tokenTypeIds),
        0,
      ),
      attentionMask: pad(
        examples.map((e) => e.inputIds.map(() => 1)),
        0,
      ),
      batch: count,
      seqLen,
    });
    const ref = referenceExitHeads(model, forward, count);
    const L = model.config.numHiddenLayers;
    const C = model.config.numLabels;
    const pairs: Record<string, [number, number][]> = {
      logits: [],
      probs: [],
      lambda: [],
      headProbs: [],
      headLogits: [],
      gate: [],
    };
    let present = { lambda: 0, headProbs: 0, gate: 0 };
    results.forEach((r, b) => {
      for (let l = 0; l < L; l++) {
        const layer = r.layers[l]!;
        layer.logits.forEach((x, c) => pairs.logits!.push([x, forward.perLayerLogits[l]![b * C + c]!]));
        layer.probabilities.forEach((x, c) => pairs.probs!.push([x, ref.probs[l]![b]![c]!]));
        if (ref.lambdas) {
          pairs.lambda!.push([layer.lambda ?? NaN, ref.lambdas[l]![b]!]);
          if (layer.lambda !== undefined) present.lambda++;
        }
        if (ref.headProbs) {
          ref.headProbs[l]![b]!.forEach((x, c) =>
            pairs.headProbs!.push([layer.headProbabilities?.[c] ?? NaN, x]),
          );
          if (layer.headProbabilities) present.headProbs++;
        }
        if (ref.gates) {
          pairs.gate!.push([layer.gate ?? NaN, ref.gates[l]![b]!]);
          if (layer.gate !== undefined) present = { ...present, gate: present.gate + 1 };
        }
      }
    });
    const diffs = Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k, relDiff(v)]));
    const lambdas = ref.lambdas?.flat() ?? [];
    return {
      layersPerExample: results.map((r) => r.layers.length),
      diffs,
      present,
      expectedPresent: {
        lambda: ref.lambdas ? count * L : 0,
        headProbs: ref.headProbs ? count * L : 0,
        gate: ref.gates ? ref.gates.flat().filter((g) => !Number.isNaN(g)).length : 0,
      },
      lambdaRange: lambdas.length ? [Math.min(...lambdas), Math.max(...lambdas)] : [],
      supportedCriteria: classifier.supportedCriteria,
      defaultCriterion: classifier.defaultCriterion,
    };
  } finally {
    classifier.dispose();
  }
}

/** The criterion settings the agreement test runs, for a model of L layers. */
function criterionGrid(L: number): ExitCriterion[] {
  // Settings whose exits fall inside the network (plus edge values), two or three per kind.
  return [
    { kind: 'none' },
    ...[0.3, 0.6, 1].map((q) => ({ kind: 'palbert', q }) as const),
    ...[7, 123456789].map((seed) => ({ kind: 'pondernet-sample', seed }) as const),
    ...[1, 2].map((patience) => ({ kind: 'pabee', patience }) as const),
    { kind: 'pabee', patience: 1, regressionThreshold: 0.3, head: 'shared' },
    ...[0.55, 0.7].map((threshold) => ({ kind: 'max-prob', threshold }) as const),
    { kind: 'max-prob', threshold: 0.6, head: 'shared' },
    ...[0.5, 0.9].map((threshold) => ({ kind: 'entropy', threshold }) as const),
    ...[0.3, 0.6].map((threshold) => ({ kind: 'gate', threshold }) as const),
    { kind: 'fixed', layer: Math.ceil(L / 2) },
  ];
}

function encodedBatch(examples: { inputIds: number[]; tokenTypeIds: number[] }[]) {
  const seqLen = Math.max(...examples.map((e) => e.inputIds.length));
  const pad = (row: number[], v: number) => [...row, ...Array<number>(seqLen - row.length).fill(v)];
  return {
    batch: examples.length,
    seqLen,
    inputIds: examples.flatMap((e) => pad(e.inputIds, 0)),
    tokenTypeIds: examples.flatMap((e) => pad(e.tokenTypeIds, 0)),
    attentionMask: examples.flatMap((e) =>
      pad(
        e.inputIds.map(() => 1),
        0,
      ),
    ),
  };
}

/**
 * GPU exit layers vs src/exit's evaluateExit with precision 'f32', for every example and every
 * criterion setting the model supports. The CPU gets the GPU's own per-layer values (from a
 * full-depth run of the same padded batch, which computes bit-identical values), so any difference
 * is in the exit logic. Unsupported settings must throw 'unsupported-criterion'.
 */
export async function exitAgreement(
  name: string,
  count: number,
  exampleBase: number,
  maxBatch?: number,
  tuning: 'default' | 'gpu' = 'default',
  maxLen = 8,
) {
  const model = fixtureModel(name);
  // maxBatch below count: the batch runs as several plan runs, each with its own exit decisions.
  const engine = await Engine.create(
    await gpu(),
    model,
    { ...(maxBatch ? { maxBatch } : {}), ...(tuning === 'gpu' ? { kernelTuning: GPU_TUNING } : {}) },
    false,
  );
  const L = model.config.numHiddenLayers;
  const regression = model.config.problemType === 'regression';
  try {
    const batch = encodedBatch(examplesOf(name, count, 9, maxLen));
    const full = await engine.run(batch, { criterion: { kind: 'none' }, exampleBase });
    const outputs: LayerOutputs[] = full.examples.map((x) => {
      const o: LayerOutputs = { numLayers: L };
      if (regression) o.values = x.layers.map((l) => l.logits[0]!);
      else o.probs = x.layers.map((l) => l.probabilities);
      if (x.layers[0]!.headLogits) {
        if (regression) o.headValues = x.layers.map((l) => l.headLogits![0]!);
        else o.headProbs = x.layers.map((l) => l.headProbabilities!);
      }
      if (x.layers[0]!.lambda !== undefined) o.lambdas = x.layers.map((l) => l.lambda!);
      const gates = x.layers.filter((l) => l.gate !== undefined).map((l) => l.gate!);
      if (gates.length) o.gates = gates;
      return o;
    });
    const rows: {
      criterion: string;
      outcome: 'ok' | 'unsupported';
      mismatches: { example: number; gpu: number; cpu: number }[];
      statisticDiff: number;
      exitLayers: number[];
      firedMismatches: number;
      answerMismatches: number;
    }[] = [];
    for (const criterion of criterionGrid(L)) {
      const label = JSON.stringify(criterion);
      let gpu: EngineOutput;
      try {
        gpu = await engine.run(batch, { criterion, exampleBase });
      } catch (e) {
        if (isPonderError(e, 'unsupported-criterion')) {
          rows.push({
            criterion: label,
            outcome: 'unsupported',
            mismatches: [],
            statisticDiff: 0,
            exitLayers: [],
            firedMismatches: 0,
            answerMismatches: 0,
          });
          continue;
        }
        throw e;
      }
      const mismatches: { example: number; gpu: number; cpu: number }[] = [];
      const statPairs: [number, number][] = [];
      let answerMismatches = 0;
      let firedMismatches = 0;
      gpu.examples.forEach((x, i) => {
        const cpu = evaluateExit(outputs[i]!, criterion, { exampleIndex: exampleBase + i, precision: 'f32' });
        if (cpu.exitLayer !== x.exitLayer)
          mismatches.push({ example: i, gpu: x.exitLayer, cpu: cpu.exitLayer });
        if (cpu.fired !== x.fired) firedMismatches++;
        const last = x.layers[x.exitLayer - 1]!;
        const perLayer = x.head === 'per-layer';
        const answer = regression
          ? perLayer
            ? last.headLogits![0]!
            : last.logits[0]!
          : argmax(perLayer ? last.headProbabilities! : last.probabilities);
        if (answer !== cpu.prediction) answerMismatches++;
        // The statistic the criterion tested (CDF, u_n, count, max p, entropy, gate) up to the exit.
        x.layers.forEach((l, n) => statPairs.push([l.statistic, cpu.statistic[n]!]));
      });
      rows.push({
        criterion: label,
        outcome: 'ok',
        mismatches,
        statisticDiff: relDiff(statPairs),
        exitLayers: gpu.examples.map((x) => x.exitLayer),
        firedMismatches,
        answerMismatches,
      });
    }
    return {
      numLayers: L,
      examples: count,
      supported: engine.supportedCriteria,
      rows,
      planRuns: full.work.length,
    };
  } finally {
    engine.dispose();
  }
}

/**
 * Engine-level runs that read the GPU's work counter and timestamps: one criterion that makes every
 * example exit at layer k, one that exits examples at different layers, and full depth.
 */
export async function workAfterExit(name: string, count: number) {
  const model = fixtureModel(name);
  const ctx = await gpu();
  const engine = await engineFor(model);
  const L = model.config.numHiddenLayers;
  const batch = encodedBatch(examplesOf(name, count, 3));
  const summary = (out: EngineOutput) => ({
    exitLayers: out.examples.map((x) => x.exitLayer),
    skippedLayers: out.examples[0]!.skippedLayers,
    rowsPerLayer: out.work[0]!.rowsPerLayer,
    runningPerLayer: out.work[0]!.runningPerLayer,
    layerMs: out.work[0]!.layerMs ?? null,
    bucket: out.bucket,
  });
  try {
    const fixed2 = summary(await engine.run(batch, { criterion: { kind: 'fixed', layer: 2 } }));
    const first = summary(await engine.run(batch, { criterion: { kind: 'max-prob', threshold: 0 } }));
    const mixedOut = await engine.run(batch, { criterion: { kind: 'palbert', q: 0.5 } });
    const fullOut = await engine.run(batch, { criterion: { kind: 'none' } });
    const mixed = summary(mixedOut);
    const full = summary(fullOut);
    // Batch 1: the same accounting and the same numbers as a full-depth run (this engine has the
    // software adapter's tuning, batchOneExit 'indirect'; the GPU tuning's 'gated' path is checked by
    // exitAgreement with maxBatch 1 and by kernels.spec's exit gate test).
    const one = encodedBatch(examplesOf(name, 1, 3));
    const oneFullOut = await engine.run(one, { criterion: { kind: 'none' } });
    const oneFixed2Out = await engine.run(one, { criterion: { kind: 'fixed', layer: 2 } });
    const oneFixed2 = summary(oneFixed2Out);
    const onePalbert = summary(await engine.run(one, { criterion: { kind: 'palbert', q: 0.5 } }));
    const single = {
      fixed2: oneFixed2,
      palbert: onePalbert,
      full: summary(oneFullOut),
      sameAsFull: oneFixed2Out.examples[0]!.layers.every(
        (l, n) => JSON.stringify(l.logits) === JSON.stringify(oneFullOut.examples[0]!.layers[n]!.logits),
      ),
    };
    const mixedSameAsFull = mixedOut.examples.every((x, e) =>
      x.layers.every(
        (l, n) =>
          JSON.stringify([l.logits, l.lambda, l.headLogits, l.gate]) ===
          JSON.stringify(
            (({ logits, lambda, headLogits, gate }) => [logits, lambda, headLogits, gate])(
              fullOut.examples[e]!.layers[n]!,
            ),
          ),
      ),
    );
    // Timing of full depth vs exit after layer 1, a few runs each (GPU time where timestamps exist).
    const time = async (criterion: ExitCriterion) => {
      const wall: number[] = [];
      const gpu: number[] = [];
      const submit: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        const out = await engine.run(batch, { criterion });
        wall.push(performance.now() - t);
        const w = out.work[0]!;
        const ms = workGpuMs(w);
        if (ms !== undefined) gpu.push(ms);
        submit.push(w.submitMs);
      }
      const median = (xs: number[]) =>
        xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : null;
      return { wallMs: median(wall), gpuMs: median(gpu), submitMs: median(submit) };
    };
    const timing = { full: await time({ kind: 'none' }), exitAt1: await time({ kind: 'fixed', layer: 1 }) };
    // A profiled run times every dispatch on its own and computes the same numbers.
    let profile = null;
    if (ctx.adapter.hasTimestampQuery) {
      const out = await engine.run(batch, { criterion: { kind: 'none' }, profile: true });
      const dispatches = out.work[0]!.dispatchMs ?? [];
      profile = {
        dispatches: dispatches.length,
        passes: new Set(dispatches.map((d) => d.pass)).size,
        attention: dispatches.filter((d) => d.label.startsWith('attention')).length,
        allTimed: dispatches.every((d) => Number.isFinite(d.ms) && d.ms >= 0),
        totalMs: dispatches.reduce((a, d) => a + d.ms, 0),
        sameAsFull: JSON.stringify(out.logits) === JSON.stringify(fullOut.logits),
      };
    }
    return {
      numLayers: L,
      rows: fixed2.bucket.batch * fixed2.bucket.seqLen,
      hasTimestamps: ctx.adapter.hasTimestampQuery,
      fixed2,
      first,
      mixed,
      mixedSameAsFull,
      full,
      single,
      timing,
      profile,
    };
  } finally {
    engine.dispose();
  }
}

/**
 * Streaming vs single-submit: the same events, and whether streamed ones came before the end.
 * `gpuBatchOne`: one example per plan run under the GPU tuning, examples up to 16 tokens, so that
 * each depth's decide runs in the next depth's pass (KernelTuning.decideInReduce).
 */
export async function streamingEvents(name: string, count: number, gpuBatchOne = false) {
  const model = fixtureModel(name);
  const classifier = await classifierFor(model, gpuBatchOne ? { kernelTuning: GPU_TUNING, maxBatch: 1 } : {});
  const examples = examplesOf(name, count, 4, gpuBatchOne ? 16 : 8);
  const criterion: ExitCriterion = { kind: 'palbert', q: 0.5 };
  const strip = (e: LayerEvent) => ({
    exampleIndex: e.exampleIndex,
    layer: e.layer.layer,
    exited: e.exited,
    logits: e.layer.logits,
    lambda: e.layer.lambda,
  });
  try {
    const single: ReturnType<typeof strip>[] = [];
    const t0 = performance.now();
    const singleResults = await classifier.classify(examples, {
      criterion,
      onLayer: (e) => single.push(strip(e)),
    });
    const singleMs = performance.now() - t0;
    const streamed: ReturnType<typeof strip>[] = [];
    let resolved = false;
    let eventsBeforeResolve = 0;
    const t1 = performance.now();
    const streamPromise = classifier.classify(examples, {
      criterion,
      mode: 'streaming',
      onLayer: (e) => {
        streamed.push(strip(e));
        if (!resolved) eventsBeforeResolve++;
      },
    });
    const streamResults = await streamPromise;
    resolved = true;
    const streamMs = performance.now() - t1;
    return {
      sameEvents: JSON.stringify(single) === JSON.stringify(streamed),
      events: streamed.length,
      eventsBeforeResolve,
      expectedEvents: singleResults.reduce((n, r) => n + r.exitLayer, 0),
      sameResults:
        JSON.stringify(singleResults.map((r) => [r.exitLayer, r.label, r.layers.map((l) => l.logits)])) ===
        JSON.stringify(streamResults.map((r) => [r.exitLayer, r.label, r.layers.map((l) => l.logits)])),
      layerOrder: streamed.map((e) => e.layer),
      singleMs,
      streamMs,
    };
  } finally {
    classifier.dispose();
  }
}

/** Errors and defaults: unsupported criteria before any GPU work, the config's default criterion. */
export async function exitApi(name: string) {
  const model = fixtureModel(name);
  const classifier = await classifierFor(model);
  const attempt = (criterion: ExitCriterion) =>
    errorOf(() => classifier.classify({ inputIds: [1, 2, 3] }, { criterion }));
  try {
    const byDefault = (await classifier.classify({ inputIds: [1, 2, 3] }))[0]!;
    return {
      supported: classifier.supportedCriteria,
      defaultCriterion: byDefault.criterion,
      pabee: await attempt({ kind: 'pabee', patience: 2 }),
      gate: await attempt({ kind: 'gate', threshold: 0.5 }),
      palbert: await attempt({ kind: 'palbert', q: 0.5 }),
      badQ: await attempt({ kind: 'palbert', q: 2 }),
      unknown: await attempt({ kind: 'nope' } as unknown as ExitCriterion),
    };
  } finally {
    classifier.dispose();
  }
}

/**
 * The shipped model (public/models/palbert-sst2, a PALBERT λ head on ALBERT) on texts: the default
 * criterion (config.json's Q-exit q = 0.5), and every layer's logits and λ against the CPU reference.
 */
export async function shippedModel(texts: string[], url = '/models/palbert-sst2/') {
  const checkpoint = await loadCheckpoint(url);
  const classifier = await createClassifier(await gpu(), checkpoint.model, checkpoint.tokenizer, {
    warmUp: false,
  });
  try {
    const results = await classifier.classify(texts);
    const full = await classifier.classify(texts, { criterion: { kind: 'none' } });
    let logitsDiff = 0;
    let lambdaDiff = 0;
    texts.forEach((text, i) => {
      const enc = checkpoint.tokenizer!.encode(text);
      const n = enc.inputIds.length;
      const forward = referenceForward(checkpoint.model, {
        inputIds: enc.inputIds,
        tokenTypeIds: enc.tokenTypeIds,
        attentionMask: enc.attentionMask,
        batch: 1,
        seqLen: n,
      });
      const ref = referenceExitHeads(checkpoint.model, forward, 1);
      full[i]!.layers.forEach((layer, l) => {
        logitsDiff = Math.max(
          logitsDiff,
          relDiff(layer.logits.map((x, c) => [x, forward.perLayerLogits[l]![c]!])),
        );
        lambdaDiff = Math.max(lambdaDiff, relDiff([[layer.lambda!, ref.lambdas![l]![0]!]]));
      });
    });
    return {
      weightDtype: classifier.weightDtype,
      criterion: results[0]!.criterion,
      results: results.map((r, i) => ({
        label: r.label,
        exitLayer: r.exitLayer,
        skippedLayers: r.skippedLayers,
        fullLabel: full[i]!.label,
        lambdas: full[i]!.layers.map((l) => Number(l.lambda!.toFixed(4))),
        cdfAtExit: r.layers[r.exitLayer - 1]!.cumulativeHalting,
      })),
      logitsDiff,
      lambdaDiff,
    };
  } finally {
    classifier.dispose();
  }
}

/**
 * Back-to-back runs (PlanRunOptions.backToBack): several passes in one submit, each reset to the
 * initial exit state on the GPU, give the same results as one call, at batch 1 and in a batch, with
 * the software tuning (indirect counts) and the GPU tuning (batch-1 exit gate).
 */
export async function backToBackSameAsSingle(name: string) {
  const model = fixtureModel(name);
  const results: { tuning: string; batch: number; same: boolean; exitLayers: number[] }[] = [];
  for (const tuning of ['default', 'gpu'] as const) {
    const engine = await Engine.create(
      await gpu(),
      model,
      tuning === 'gpu' ? { kernelTuning: GPU_TUNING } : {},
      false,
    );
    try {
      for (const count of [1, 3]) {
        const batch = encodedBatch(examplesOf(name, count, 6));
        const criterion: ExitCriterion = { kind: 'palbert', q: 0.5 };
        const single = await engine.run(batch, { criterion });
        const repeated = await engine.run(batch, { criterion, backToBack: 3 });
        const strip = (out: EngineOutput) =>
          JSON.stringify([
            out.examples.map((x) => [
              x.exitLayer,
              x.layers.map((l) => [l.logits, l.lambda, l.haltingProbability]),
            ]),
            out.work.map((w) => [w.rowsPerLayer, w.runningPerLayer]),
          ]);
        results.push({
          tuning,
          batch: count,
          same: strip(single) === strip(repeated),
          exitLayers: repeated.examples.map((x) => x.exitLayer),
        });
      }
    } finally {
      engine.dispose();
    }
  }
  return results;
}
