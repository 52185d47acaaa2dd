/**
 * The Deno side of `npm run crosscheck:sst2`: runs the engine (src/, shaders/, the same code the browser
 * runs) on WebGPU through Deno (wgpu; Mesa lavapipe on a machine without a GPU) over SST-2 dev and
 * writes, per example, what the comparison with PyTorch needs: token ids, every layer's λ / CDF /
 * class at full depth, and the GPU's own Q-exit decision (exit layer and answer).
 *
 *   deno run -A node_modules/.cache/ponder-crosscheck/deno-run.js --model DIR --data dev.tsv --out x.json
 *     [--limit N] [--indices i,j,...] [--batch B] [--f16] [--full]
 *
 * Default: the model's default criterion (Q-exit q=0.5), decided on the GPU as in the browser; the
 * layers up to the exit carry λ and CDF. --full runs every layer (criterion 'none') instead, for a
 * closer look at a few examples. Examples are sorted by token count before batching, so that a
 * batch pads little (rows are independent: the attention mask hides the padding).
 */
import { createClassifier } from '../../src/classifier';
import { requestGpu } from '../../src/gpu/device';
import { createTokenizer, parseCheckpoint } from '../../src/loading';

declare const Deno: {
  args: string[];
  readFile(path: string): Promise<Uint8Array>;
  readTextFile(path: string): Promise<string>;
  writeTextFile(path: string, text: string): Promise<void>;
  exit(code: number): never;
};

const args = Deno.args;
const arg = (name: string, fallback?: string): string => {
  const i = args.indexOf(name);
  const value = i >= 0 ? args[i + 1] : fallback;
  if (value === undefined) {
    console.error(`missing ${name}`);
    Deno.exit(2);
  }
  return value;
};
const modelDir = arg('--model').replace(/\/?$/, '/');
const dataPath = arg('--data');
const outPath = arg('--out');
const limit = Number(arg('--limit', '0'));
const batchSize = Number(arg('--batch', '8'));
const allowF16 = args.includes('--f16');
const fullDepth = args.includes('--full');
const indices = args.includes('--indices') ? new Set(arg('--indices').split(',').map(Number)) : undefined;

// SST-2 dev as training/finetune.py reads it: split on newlines and TABs only, header 'sentence\tlabel'.
const lines = (await Deno.readTextFile(dataPath)).replace(/^\uFEFF/, '').split('\n');
if (lines[lines.length - 1] === '') lines.pop();
if (lines[0] !== 'sentence\tlabel')
  throw new Error(`${dataPath}: unexpected header ${JSON.stringify(lines[0])}`);
let rows = lines.slice(1).map((line, index) => {
  const cells = line.split('\t');
  if (cells.length !== 2) throw new Error(`${dataPath}: row ${index + 1} has ${cells.length} fields`);
  return { index, text: cells[0]!, label: Number(cells[1]) };
});
if (limit > 0) rows = rows.slice(0, limit);
if (indices) rows = rows.filter((r) => indices.has(r.index));

const ctx = await requestGpu({ allowF16 });
const model = parseCheckpoint(
  await Deno.readTextFile(modelDir + 'config.json'),
  await Deno.readFile(modelDir + 'model.safetensors'),
);
const tokenizer = await createTokenizer(
  await Deno.readTextFile(modelDir + 'tokenizer.json'),
  await Deno.readTextFile(modelDir + 'tokenizer_config.json'),
  { maxLength: model.config.maxPositionEmbeddings },
);
const classifier = await createClassifier(ctx, model, tokenizer, { maxBatch: batchSize });
console.log(
  `adapter: ${JSON.stringify(ctx.adapter)}; weights ${classifier.weightDtype}; ${rows.length} examples`,
);
const labelIndex = (label: string) => classifier.config.labels.indexOf(label);
const tokenCount = (text: string) => tokenizer.encode(text).inputIds.length;
rows.sort((a, b) => tokenCount(a.text) - tokenCount(b.text) || a.index - b.index);

const examples: ({ index: number } & Record<string, unknown>)[] = [];
const save = (complete: boolean) =>
  Deno.writeTextFile(
    outPath,
    JSON.stringify({
      adapter: ctx.adapter,
      weightDtype: classifier.weightDtype,
      batchSize,
      fullDepth,
      complete,
      seconds: (performance.now() - started) / 1000,
      examples: [...examples].sort((a, b) => a.index - b.index),
    }),
  );
const started = performance.now();
for (let start = 0; start < rows.length; start += batchSize) {
  const chunk = rows.slice(start, start + batchSize);
  const texts = chunk.map((r) => r.text);
  const results = await classifier.classify(texts, fullDepth ? { criterion: { kind: 'none' } } : {});
  chunk.forEach((r, i) => {
    const e = results[i]!;
    examples.push({
      index: r.index,
      label: r.label,
      tokenIds: tokenizer.encode(r.text).inputIds,
      truncated: e.truncated,
      exitLayer: e.exitLayer,
      prediction: labelIndex(e.label),
      criterion: e.criterion,
      layerPredictions: e.layers.map((l) => labelIndex(l.label)),
      layerProbabilities: e.layers.map((l) => l.probabilities),
      lambdas: e.layers.map((l) => l.lambda),
      cdf: e.layers.map((l) => l.cumulativeHalting),
    });
  });
  const done = Math.min(start + batchSize, rows.length);
  const s = (performance.now() - started) / 1000;
  console.log(`${done}/${rows.length} examples, ${s.toFixed(0)} s`);
  // Written after every batch, so that an interrupted run still leaves what it computed.
  await save(done === rows.length);
}
classifier.dispose();
ctx.device.destroy();
