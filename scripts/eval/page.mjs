// The browser side of `npm run eval`: served by the CLI's static server next to the built library, it loads the
// model with the public API and classifies the batches the CLI sends. Errors come back as values with the
// PonderError code, so the CLI can tell bad input from a failure. Shapes: scripts/eval/types.ts.
import { loadClassifier, isPonderError } from '/dist/ponder-web.js';

let classifier = null;

const failure = (error) => ({
  error: {
    code: isPonderError(error) ? error.code : 'untyped',
    message: error instanceof Error ? error.message : String(error),
  },
});

// Only what the CLI writes: no text (the data set stays out of the outputs), no per-result device.
const layerOf = (l) => ({
  layer: l.layer,
  logits: l.logits,
  probabilities: l.probabilities,
  label: l.label,
  score: l.score,
  lambda: l.lambda,
  haltingProbability: l.haltingProbability,
  cumulativeHalting: l.cumulativeHalting,
  headProbabilities: l.headProbabilities,
  gate: l.gate,
  gpuTimeMs: l.gpuTimeMs,
});

const resultOf = (r) => ({
  label: r.label,
  score: r.score,
  exitLayer: r.exitLayer,
  criterion: r.criterion,
  numLayers: r.numLayers,
  truncated: r.truncated,
  tokenCount: r.tokenCount,
  skippedLayers: r.skippedLayers,
  timing: r.timing,
  layers: r.layers.map(layerOf),
});

globalThis.ponderEval = {
  async load(source, maxBatch) {
    try {
      // cache: false, as every run is a fresh browser profile and the files are local anyway.
      classifier = await loadClassifier(source, { cache: false, maxBatch });
      const c = classifier.config;
      return {
        ok: {
          config: {
            architecture: c.architecture,
            numHiddenLayers: c.numHiddenLayers,
            numLabels: c.numLabels,
            labels: c.labels,
            problemType: c.problemType,
            maxPositionEmbeddings: c.maxPositionEmbeddings,
            hiddenSize: c.hiddenSize,
            exitHeads: c.exitHeads,
          },
          device: classifier.device,
          weightDtype: classifier.weightDtype,
          gpuBytes: classifier.gpuBytes,
          supportedCriteria: classifier.supportedCriteria,
        },
      };
    } catch (error) {
      return failure(error);
    }
  },

  // firstExampleIndex: the data-set index of inputs[0], which seeds PonderNet's sampled exit (older builds ignore it).
  async run(inputs, criterion, firstExampleIndex) {
    try {
      const options = criterion ? { criterion, firstExampleIndex } : { firstExampleIndex };
      const start = performance.now();
      const results = await classifier.classify(inputs, options);
      const ms = performance.now() - start;
      return { ok: { ms, results: results.map(resultOf) } };
    } catch (error) {
      return failure(error);
    }
  },
};
globalThis.ponderEvalReady = true;
