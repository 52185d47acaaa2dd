// `npm run eval` end to end: the CLI launches its own headless Chromium and runs the real engine (dist/) on a tiny
// random-weight BERT (tests/fixtures/golden/bert-odd, 5 layers, 2 classes) with the hand-written WordPiece tokenizer.
// Its per-layer probabilities are checked against the CPU reference forward, token ids worked out by hand from the
// 24-word vocabulary; its exit layers against the exit criteria's CPU reference; its metrics against the JSONL.
import { expect, test } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateExit, ExitTracker, softmax } from '../src/exit';
import { parseCheckpoint } from '../src/loading/model';
import type { EncoderModel } from '../src/model/types';
import { referenceForward } from '../tests/reference/forward';

const repo = fileURLToPath(new URL('..', import.meta.url));
const VOCAB: Record<string, number> = {
  '[CLS]': 2,
  '[SEP]': 3,
  the: 5,
  quick: 6,
  brown: 7,
  fox: 8,
  ',': 13,
  '!': 14,
  '.': 15,
  cafe: 16,
  hello: 18,
  world: 19,
  jumps: 20,
  over: 21,
  dog: 22,
};

/** [CLS] a [SEP] (b [SEP]) with segment ids, for texts of whole vocabulary words separated by spaces. */
function encode(text: string, pair?: string): { ids: number[]; types: number[] } {
  const words = (s: string) => s.split(' ').map((w) => VOCAB[w]!);
  const a = [VOCAB['[CLS]']!, ...words(text), VOCAB['[SEP]']!];
  const b = pair === undefined ? [] : [...words(pair), VOCAB['[SEP]']!];
  return { ids: [...a, ...b], types: [...a.map(() => 0), ...b.map(() => 1)] };
}

function referenceProbs(model: EncoderModel, text: string, pair?: string): number[][] {
  const { ids, types } = encode(text, pair);
  const out = referenceForward(model, {
    inputIds: ids,
    tokenTypeIds: types,
    attentionMask: ids.map(() => 1),
    batch: 1,
    seqLen: ids.length,
  });
  return out.perLayerLogits.map((logits) => softmax(Array.from(logits)));
}

interface Record_ {
  index: number;
  label: number;
  prediction: number;
  exitLayer: number;
  tokenCount: number;
  batch: number;
  skippedLayers?: number;
  probabilities: number[][];
}

const RTE: [string, string, string][] = [
  ['the fox jumps', 'the dog', 'entailment'],
  ['hello world', 'hello , world !', 'not_entailment'],
  ['the quick dog', 'cafe', 'entailment'],
  ['over the fox', 'the brown fox .', 'not_entailment'],
  ['quick', 'world', 'entailment'],
];

const SST = [
  ['the quick brown fox', '1'],
  ['hello world !', '0'],
  ['the dog jumps over the fox .', '1'],
  ['cafe , cafe', '0'],
  ['the brown dog', '1'],
  ['hello , world', '0'],
  ['quick quick fox', '1'],
] as const;

let root: string;
let modelDir: string;
let model: EncoderModel;

test.beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'ponder-eval-e2e-'));
  modelDir = join(root, 'tiny-bert');
  mkdirSync(modelDir);
  for (const f of ['config.json', 'model.safetensors']) {
    copyFileSync(join(repo, 'tests/fixtures/golden/bert-odd', f), join(modelDir, f));
  }
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    copyFileSync(join(repo, 'tests/fixtures/loading/wordpiece', f), join(modelDir, f));
  }
  // Every test's data up front: after a failure Playwright reruns beforeAll in a new worker (a new root).
  mkdirSync(join(root, 'SST-2'));
  writeFileSync(join(root, 'SST-2/dev.tsv'), `sentence\tlabel\n${SST.map((r) => r.join('\t')).join('\n')}\n`);
  mkdirSync(join(root, 'RTE'));
  writeFileSync(
    join(root, 'RTE/dev.tsv'),
    `index\tsentence1\tsentence2\tlabel\n${RTE.map((x, i) => [i, ...x].join('\t')).join('\n')}\n`,
  );
  model = parseCheckpoint(
    readFileSync(join(modelDir, 'config.json'), 'utf8'),
    new Uint8Array(readFileSync(join(modelDir, 'model.safetensors'))),
  );
});

test.afterAll(() => rmSync(root, { recursive: true, force: true }));

function evalCli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(join(repo, 'node_modules/.bin/tsx'), [join(repo, 'scripts/eval/cli.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 200_000,
    env: { ...process.env, INIT_CWD: root },
  });
  console.log(r.stdout);
  if (r.status !== 0) console.log(r.stderr);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function readJsonl(path: string): Record_[] {
  return readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record_);
}

function maxDifference(records: Record_[], reference: number[][][]): number {
  let max = 0;
  records.forEach((r, e) =>
    r.probabilities.forEach((row, l) =>
      row.forEach((p, c) => (max = Math.max(max, Math.abs(p - reference[e]![l]![c]!)))),
    ),
  );
  return max;
}

test('SST-2 layout, batches of 3 (odd), model default criterion: outputs match the CPU reference', async () => {
  const r = evalCli(['--model', 'tiny-bert', '--data', 'SST-2/dev.tsv', '--batch', '3', '--out', 'out-sst']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/task\s+SST-2: 7 examples/);
  expect(r.stdout).toMatch(/latency p50\/p95/);
  expect(r.stdout).toMatch(/software adapter .*timings are not representative/);
  expect(r.stderr).toMatch(/7\/7 100%/); // the progress bar
  expect(readdirSync(join(root, 'out-sst')).sort()).toEqual(['predictions.jsonl', 'summary.json']);

  const records = readJsonl(join(root, 'out-sst/predictions.jsonl'));
  expect(records.map((x) => x.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  expect(records.map((x) => x.label)).toEqual(SST.map(([, l]) => Number(l)));
  expect(records.map((x) => x.tokenCount)).toEqual(SST.map(([t]) => encode(t).ids.length));
  const reference = SST.map(([t]) => referenceProbs(model, t));
  const diff = maxDifference(records, reference);
  console.log(`largest |p_browser - p_cpu| over 7 examples x 5 layers x 2 classes: ${diff.toExponential(2)}`);
  expect(diff).toBeLessThanOrEqual(1e-4);

  const summary = JSON.parse(readFileSync(join(root, 'out-sst/summary.json'), 'utf8'));
  expect(summary.criterion.value).toEqual({ kind: 'none' });
  expect(summary.averageLayers).toBe(5);
  expect(summary.exitLayerHistogram).toEqual([0, 0, 0, 0, 7]);
  const correct = records.filter((x) => x.prediction === x.label).length;
  expect(summary.metrics.accuracy).toBeCloseTo(correct / 7, 12);
  records.forEach((x) => {
    const last = x.probabilities[4]!;
    expect(x.prediction).toBe(last[1]! > last[0]! ? 1 : 0);
  });
  expect(summary.exitCheck).toEqual({ checked: 7, disagreements: [] });
  expect(summary.adapter.isFallbackAdapter).toBe(true);
  expect(summary.timingsRepresentative).toBe(false);
  expect(summary.latencyMs.p95).toBeGreaterThanOrEqual(summary.latencyMs.p50);
  expect(summary.throughput).toBeGreaterThan(0);
});

test('RTE pairs with word labels, max-prob exit: exits equal the criteria reference', async () => {
  const criterion = { kind: 'max-prob' as const, threshold: 0.55 };
  const r = evalCli([
    '--model',
    'tiny-bert',
    '--data',
    'RTE/dev.tsv',
    '--criterion',
    'max-prob',
    '--threshold',
    '0.55',
    '--batch',
    '2',
    '--out',
    'out-rte',
  ]);
  expect(r.code).toBe(0);
  const records = readJsonl(join(root, 'out-rte/predictions.jsonl'));
  expect(records.map((x) => x.label)).toEqual([0, 1, 0, 1, 0]);
  const reference = RTE.map(([a, b]) => referenceProbs(model, a, b));
  const diff = maxDifference(records, reference);
  console.log(`pairs: largest |p_browser - p_cpu|: ${diff.toExponential(2)}`);
  expect(diff).toBeLessThanOrEqual(1e-4);
  records.forEach((x, e) => {
    // The exit is the first layer where the criterion fires on the layers the record holds (all of them, or
    // 1..exitLayer when the library stops computing an example after its exit).
    expect(x.probabilities.length).toBeGreaterThanOrEqual(x.exitLayer);
    const tracker = new ExitTracker(criterion, 5);
    const fired = x.probabilities.findIndex((probs) => tracker.push({ probs }));
    expect(x.exitLayer).toBe(fired + 1);
    const last = x.probabilities[x.exitLayer - 1]!;
    expect(x.prediction).toBe(last[1]! > last[0]! ? 1 : 0);
    // And the same exit from the CPU reference forward's probabilities, unless one is within 1e-5 of the threshold.
    const margin = Math.min(...reference[e]!.map((p) => Math.abs(Math.max(...p) - 0.55)));
    if (margin > 1e-5)
      expect(x.exitLayer).toBe(evaluateExit({ numLayers: 5, probs: reference[e]! }, criterion).exitLayer);
    // Skipped layers, where reported: none before the exit (the library documents how a batch shares them).
    if (x.skippedLayers !== undefined) {
      expect(x.skippedLayers).toBeGreaterThanOrEqual(0);
      expect(x.skippedLayers).toBeLessThanOrEqual(5 - x.exitLayer);
    }
  });
  const summary = JSON.parse(readFileSync(join(root, 'out-rte/summary.json'), 'utf8'));
  expect(summary.task).toBe('RTE');
  expect(summary.criterion).toMatchObject({ label: 'max-prob threshold=0.55', from: 'argument' });
  expect(summary.exitCheck).toEqual({ checked: 5, disagreements: [] });
  const avg = records.reduce((a, x) => a + x.exitLayer, 0) / records.length;
  expect(summary.averageLayers).toBeCloseTo(avg, 12);
  expect(summary.speedUp).toBeCloseTo(5 / avg, 12);
});

test('--sweep: CSV and SVG of every supported criterion, fixed depth checked against the JSONL', async () => {
  const r = evalCli([
    '--model',
    'tiny-bert',
    '--data',
    'SST-2/dev.tsv',
    '--sweep',
    '--budget',
    '0.2',
    '--out',
    'out-sweep',
  ]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/sweep: \d+ settings; full depth acc/);
  expect(readdirSync(join(root, 'out-sweep')).sort()).toEqual([
    'predictions.jsonl',
    'summary.json',
    'sweep.csv',
    'sweep.svg',
  ]);
  const records = readJsonl(join(root, 'out-sweep/predictions.jsonl'));
  const csv = readFileSync(join(root, 'out-sweep/sweep.csv'), 'utf8').trimEnd().split('\n');
  const header = csv[0]!.split(',');
  const rows = csv.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
  expect([...new Set(rows.map((x) => x.kind))]).toEqual(['max-prob', 'entropy', 'fixed', 'none']);
  for (let k = 1; k <= 5; k++) {
    const row = rows.find((x) => x.kind === 'fixed' && x.setting === `layer=${k}`)!;
    const acc =
      records.filter((x) => (x.probabilities[k - 1]![1]! > x.probabilities[k - 1]![0]! ? 1 : 0) === x.label)
        .length / 7;
    expect(Number(row.metric)).toBeCloseTo(acc, 12);
    expect(Number(row.average_layers)).toBe(k);
  }
  const summary = JSON.parse(readFileSync(join(root, 'out-sweep/summary.json'), 'utf8'));
  expect(summary.sweep.cheapest.map((c: { kind: string }) => c.kind)).toEqual([
    'max-prob',
    'entropy',
    'fixed',
    'none',
  ]);
  expect(readFileSync(join(root, 'out-sweep/sweep.svg'), 'utf8')).toMatch(/<svg[^>]*xmlns=/);
  // Nothing staged is left behind.
  expect(readdirSync(root).filter((n) => n.includes('.partial-'))).toEqual([]);
});

test('a criterion the model has no head for: exit 2 and no output folder', async () => {
  const r = evalCli([
    '--model',
    'tiny-bert',
    '--data',
    'SST-2/dev.tsv',
    '--criterion',
    'pabee',
    '--threshold',
    '2',
    '--out',
    'out-bad',
  ]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/no head for criterion 'pabee'/);
  expect(existsSync(join(root, 'out-bad'))).toBe(false);
});

test('a model with exit heads (demo-model-ponder): sweep over every criterion, GPU runs equal their sweep rows', async () => {
  const ponder = join(repo, 'tests/fixtures/demo-model-ponder');
  const sweep = evalCli([
    '--model',
    ponder,
    '--data',
    'SST-2/dev.tsv',
    '--sweep',
    '--budget',
    '0.2',
    '--out',
    'out-heads',
  ]);
  expect(sweep.code).toBe(0);
  const summary = JSON.parse(readFileSync(join(root, 'out-heads/summary.json'), 'utf8'));
  test.skip(
    !summary.model.supportedCriteria?.includes('palbert'),
    'this library build runs no exit heads (no PonderClassifier.supportedCriteria with palbert)',
  );
  expect(summary.sweep.cheapest.map((c: { kind: string }) => c.kind)).toEqual([
    'palbert',
    'pondernet-sample',
    'pabee',
    'max-prob',
    'entropy',
    'fixed',
    'none',
  ]);
  const records = readJsonl(join(root, 'out-heads/predictions.jsonl')) as (Record_ & {
    lambdas: number[];
    headProbabilities: number[][];
  })[];
  for (const x of records) {
    expect(x.lambdas).toHaveLength(5);
    expect(x.headProbabilities).toHaveLength(5);
  }
  const csv = readFileSync(join(root, 'out-heads/sweep.csv'), 'utf8').trimEnd().split('\n');
  const header = csv[0]!.split(',');
  const rows = csv.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
  // Criteria run on the GPU, in batches of another size than the sweep's, give the sweep's numbers.
  for (const [kind, value, setting, batch] of [
    ['palbert', '0.3', 'q=0.3', '2'],
    ['pondernet-sample', '3', 'seed=3', '3'],
    ['pabee', '1', 'patience=1', '4'],
  ] as const) {
    const r = evalCli([
      '--model',
      ponder,
      '--data',
      'SST-2/dev.tsv',
      '--criterion',
      kind,
      '--threshold',
      value,
      '--batch',
      batch,
      '--out',
      `out-${kind}`,
    ]);
    expect(r.code).toBe(0);
    const s = JSON.parse(readFileSync(join(root, `out-${kind}/summary.json`), 'utf8'));
    const row = rows.find((x) => x.kind === kind && x.setting === setting)!;
    expect(s.exitCheck).toEqual({ checked: 7, disagreements: [] });
    expect(s.averageLayers).toBeCloseTo(Number(row.average_layers), 12);
    expect(s.metrics.accuracy).toBeCloseTo(Number(row.accuracy), 12);
  }
});
