/**
 * `npm run crosscheck:sst2`: the engine's predictions and exit layers on SST-2 dev against those that
 * PyTorch saved at training time (training/artifacts/glue/SST-2-palbert-s42/dev_predictions.tsv),
 * for the shipped model (public/models/palbert-sst2, default criterion Q-exit q = 0.5). Writes
 * docs/crosscheck-sst2.md.
 *
 * The engine code (src/, shaders/) runs under Deno's WebGPU (wgpu; Mesa lavapipe without a GPU),
 * about 10× faster than Chromium's SwiftShader; `--browser DIR` adds the comparison with a Chromium
 * run of the same examples (`npm run eval -- --limit 30 --out DIR`), which shows that both runtimes
 * give the same answers. Token ids are compared with Hugging Face `tokenizers` (Python, as
 * training/finetune.py used it) when `python3 -c 'import tokenizers'` works.
 *
 *   npm run crosscheck:sst2 [-- --limit N] [--f16] [--browser DIR] [--reuse] [--data PATH] [--predictions TSV]
 *
 * --f16 adds a run with f16 weight storage (the main run widens the fp16 weights to f32, exactly).
 * --reuse takes the Deno outputs of an earlier complete run from node_modules/.cache/ponder-crosscheck-results.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const Q = 0.5;
const MODEL = 'public/models/palbert-sst2';
// --predictions: another file in the same layout (e.g. to exercise the disagreement report).
const TSV = option('--predictions', 'training/artifacts/glue/SST-2-palbert-s42/dev_predictions.tsv');
const data = resolve(process.cwd(), option('--data', resolve(root, '../shared/data/glue/SST-2/dev.tsv')));
const limit = Number(option('--limit', '0'));
const browserDir = argv.includes('--browser') ? resolve(process.cwd(), option('--browser', '')) : undefined;
const bundle = resolve(root, 'node_modules/.cache/ponder-crosscheck');
// Outside the bundle folder, which every vite build empties.
const cache = resolve(root, 'node_modules/.cache/ponder-crosscheck-results');
const deno = resolve(root, 'node_modules/.bin/deno');

interface DenoExample {
  index: number;
  label: number;
  tokenIds: number[];
  truncated: boolean;
  exitLayer: number;
  prediction: number;
  layerPredictions: number[];
  layerProbabilities: number[][];
  lambdas: number[];
  cdf: number[];
}
interface DenoOutput {
  adapter: { description: string; vendor: string; isFallbackAdapter: boolean };
  weightDtype: string;
  batchSize: number;
  complete: boolean;
  seconds: number;
  commit?: string;
  examples: DenoExample[];
}
interface TorchRow {
  index: number;
  label: number;
  prediction: number;
  exitLayer: number;
  layerPredictions: number[];
  lambdas: number[];
}

function fail(message: string): never {
  console.error(`crosscheck: ${message}`);
  process.exit(1);
}

function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 28,
    encoding: 'utf8',
  });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status}`);
  return r.stdout;
}

function gitState(): string {
  const head = sh('git', ['rev-parse', '--short', 'HEAD']).trim();
  const dirty = sh('git', ['status', '--porcelain', '--', 'src', 'shaders']).trim();
  return dirty ? `${head} + uncommitted changes in src/ or shaders/` : head;
}

/** Runs the bundled engine under Deno; progress lines go to the terminal. */
function runDeno(name: string, extra: string[]): DenoOutput {
  mkdirSync(cache, { recursive: true });
  const out = `${cache}/${name}.json`;
  if (!(
    flag('--reuse') &&
    existsSync(out) &&
    (JSON.parse(readFileSync(out, 'utf8')) as DenoOutput).complete
  )) {
    const args = [
      'run',
      '-A',
      `${bundle}/deno-run.js`,
      '--model',
      MODEL,
      '--data',
      data,
      '--out',
      out,
      ...extra,
    ];
    if (limit > 0) args.push('--limit', String(limit));
    console.log(`deno ${args.join(' ')}`);
    // XDG_RUNTIME_DIR: wgpu's Vulkan loader complains without it on a headless machine.
    const r = spawnSync(deno, args, {
      cwd: root,
      stdio: 'inherit',
      env: { XDG_RUNTIME_DIR: '/tmp', ...process.env },
    });
    if (r.status !== 0) fail(`the Deno run ${name} exited with ${r.status}`);
    // The engine's state at run time, for the report (a --reuse run may be read later).
    const run = JSON.parse(readFileSync(out, 'utf8')) as DenoOutput;
    run.commit = gitState();
    writeFileSync(out, JSON.stringify(run));
  }
  const parsed = JSON.parse(readFileSync(out, 'utf8')) as DenoOutput;
  if (!parsed.complete) fail(`${out} is incomplete`);
  return parsed;
}

function readTorch(): Map<number, TorchRow> {
  const lines = readFileSync(resolve(root, TSV), 'utf8').trim().split('\n');
  if (lines[0] !== 'index\tlabel\tprediction\texit_layer\tlayer_predictions\tlambdas')
    fail(`${TSV}: unexpected header`);
  const rows = new Map<number, TorchRow>();
  for (const line of lines.slice(1)) {
    const [index, label, prediction, exitLayer, preds, lambdas] = line.split('\t');
    rows.set(Number(index), {
      index: Number(index),
      label: Number(label),
      prediction: Number(prediction),
      exitLayer: Number(exitLayer),
      layerPredictions: preds!.split(',').map(Number),
      lambdas: lambdas!.split(',').map(Number),
    });
  }
  return rows;
}

/** CDF_n = Σ_{i≤n} λ_i Π_{j<i} (1 − λ_j), in f64 (training/finetune.py's q_exit). */
function cdfOf(lambdas: number[]): number[] {
  let survive = 1;
  let cdf = 0;
  return lambdas.map((l) => {
    cdf += l * survive;
    survive *= 1 - l;
    return cdf;
  });
}

const fmt = (x: number | undefined, digits = 6) => (x === undefined ? '—' : x.toFixed(digits));
const pct = (a: number, n: number) => `${((100 * a) / n).toFixed(2)}%`;

// 1. Bundle the engine for Deno and run it.
const started = Date.now();
sh('npx', ['vite', 'build', '--config', 'scripts/crosscheck/vite.config.ts']);
const main = runDeno('f32', []);
const torch = readTorch();
const ours = main.examples;
if (!limit && ours.length !== torch.size) fail(`${ours.length} examples ran, the TSV has ${torch.size}`);

// 2. Token ids from Python `tokenizers`, as training/finetune.py made them.
let pyIds: number[][] | undefined;
let pyVersion = '';
const probe = spawnSync('python3', ['-c', 'import tokenizers'], { stdio: 'ignore' });
if (probe.status === 0) {
  const py = JSON.parse(
    sh('python3', ['scripts/crosscheck/tokenize.py', `${MODEL}/tokenizer.json`, data, '128']),
  ) as { version: string; ids: number[][] };
  pyIds = py.ids;
  pyVersion = py.version;
}
const tokenMismatch = new Set<number>();
if (pyIds)
  for (const e of ours)
    if (JSON.stringify(e.tokenIds) !== JSON.stringify(pyIds[e.index])) tokenMismatch.add(e.index);

// 3. Agreement, λ and CDF differences over the layers both sides computed (ours stop at the exit).
let samePrediction = 0;
let sameExit = 0;
let sameBoth = 0;
let lambdaMax = 0;
let lambdaMaxAt = '';
let lambdaSum = 0;
let lambdaCount = 0;
let cdfMax = 0;
let layerPredSame = 0;
let layerPredCount = 0;
let correct = 0;
let layersSum = 0;
const disagreements: DenoExample[] = [];
for (const e of ours) {
  const t = torch.get(e.index);
  if (!t) fail(`example ${e.index} is not in ${TSV}`);
  if (t.label !== e.label) fail(`example ${e.index}: label ${e.label} in the data, ${t.label} in the TSV`);
  const p = e.prediction === t.prediction;
  const x = e.exitLayer === t.exitLayer;
  samePrediction += +p;
  sameExit += +x;
  sameBoth += +(p && x);
  correct += +(e.prediction === e.label);
  layersSum += e.exitLayer;
  if (!(p && x)) disagreements.push(e);
  const tCdf = cdfOf(t.lambdas);
  e.lambdas.forEach((l, i) => {
    const d = Math.abs(l - t.lambdas[i]!);
    lambdaSum += d;
    lambdaCount++;
    if (d > lambdaMax) {
      lambdaMax = d;
      lambdaMaxAt = `example ${e.index}, layer ${i + 1}`;
    }
    cdfMax = Math.max(cdfMax, Math.abs(e.cdf[i]! - tCdf[i]!));
    layerPredSame += +(e.layerPredictions[i] === t.layerPredictions[i]);
    layerPredCount++;
  });
}
const n = ours.length;

// How close the decisions came to flipping: PyTorch's CDF nearest q among the layers that decided each
// exit (the exit layer and the one before it), and our class probability nearest 0.5 at the exit.
const near = ours
  .map((e) => {
    const t = torch.get(e.index)!;
    const tCdf = cdfOf(t.lambdas);
    const layers = [t.exitLayer - 1, t.exitLayer].filter((l) => l >= 1 && l <= e.cdf.length);
    const best = layers.reduce(
      (a, l) => (Math.abs(tCdf[l - 1]! - Q) < Math.abs(tCdf[a - 1]! - Q) ? l : a),
      layers[0]!,
    );
    return { index: e.index, layer: best, torch: tCdf[best - 1]!, ours: e.cdf[best - 1]!, exit: e.exitLayer };
  })
  .sort((a, b) => Math.abs(a.torch - Q) - Math.abs(b.torch - Q))
  .slice(0, 5);
const nearClass = ours
  .map((e) => ({ index: e.index, layer: e.exitLayer, p: e.layerProbabilities[e.exitLayer - 1]![1]! }))
  .sort((a, b) => Math.abs(a.p - 0.5) - Math.abs(b.p - 0.5))
  .slice(0, 5);

// 4. Every layer of the disagreeing examples, at full depth, for the table and the reasons.
const full = new Map<number, DenoExample>();
if (disagreements.length) {
  const r = runDeno('f32-disagreements', [
    '--full',
    '--indices',
    disagreements.map((e) => e.index).join(','),
  ]);
  for (const e of r.examples) full.set(e.index, e);
}
const rows = disagreements.map((e) => {
  const t = torch.get(e.index)!;
  const f = full.get(e.index) ?? e;
  const tCdf = cdfOf(t.lambdas);
  // The decisive layer: the first where one side's CDF is above q and the other's is not.
  const d = Math.min(e.exitLayer, t.exitLayer);
  const reasons: string[] = [];
  if (tokenMismatch.has(e.index)) reasons.push('token ids differ from Python tokenizers');
  if (e.exitLayer !== t.exitLayer) {
    const margin = Math.abs(tCdf[d - 1]! - Q);
    const lambdaDiff = Math.max(...f.lambdas.slice(0, d).map((l, i) => Math.abs(l - t.lambdas[i]!)));
    // Q-exit of the TSV's own λ: the first layer with CDF > q, else the last.
    const own = tCdf.findIndex((c) => c > Q) + 1 || tCdf.length;
    const cause =
      own !== t.exitLayer
        ? `the TSV's exit layer ${t.exitLayer} is not Q-exit of its own λ (${own})`
        : margin < 1e-3
          ? `within ${margin.toExponential(1)} of q: rounding (fp16-rounded weights vs PyTorch's fp32, f32 sums in another order)`
          : `${margin.toExponential(1)} from q: more than rounding explains`;
    reasons.push(
      `exit: PyTorch CDF_${d} = ${fmt(tCdf[d - 1])}, ours ${fmt(f.cdf[d - 1])}, q = ${Q}; ${cause}; ` +
        `|Δλ| ≤ ${lambdaDiff.toExponential(1)} up to layer ${d}`,
    );
  }
  if (e.prediction !== t.prediction) {
    const probs = f.layerProbabilities[e.exitLayer - 1]!;
    if (e.exitLayer === t.exitLayer) {
      const p = probs[1]!;
      reasons.push(
        `class at layer ${e.exitLayer}: our P(positive) = ${fmt(p, 4)}` +
          (Math.abs(p - 0.5) < 0.01
            ? ', within 0.01 of 0.5: rounding'
            : ', not near 0.5: more than rounding explains'),
      );
    } else {
      reasons.push(
        `answer follows the exit layer: PyTorch's layer-${t.exitLayer} class ${t.layerPredictions[t.exitLayer - 1]}, ` +
          `ours at layer ${t.exitLayer} ${f.layerPredictions[t.exitLayer - 1] ?? '—'}`,
      );
    }
  }
  return { e, t, f, tCdf, d, reasons };
});

// 5. Optional: f16 weight storage, and Chromium's results on a subset.
let f16Line = '';
if (flag('--f16')) {
  const r = runDeno('f16', ['--f16']);
  if (r.weightDtype !== 'f16') fail('the adapter gave no f16 storage');
  let p = 0;
  let x = 0;
  let l = 0;
  const f32ByIndex = new Map(ours.map((e) => [e.index, e]));
  const differ: string[] = [];
  let identical = 0;
  for (const e of r.examples) {
    const t = torch.get(e.index)!;
    p += +(e.prediction === t.prediction);
    x += +(e.exitLayer === t.exitLayer);
    if (e.prediction !== t.prediction || e.exitLayer !== t.exitLayer) {
      // Exit / prediction, PyTorch → f16, and the CDFs at the first layer where the exits part.
      const d = Math.min(e.exitLayer, t.exitLayer);
      differ.push(
        `${e.index} (${t.exitLayer}/${t.prediction} → ${e.exitLayer}/${e.prediction}; CDF_${d} ` +
          `${fmt(cdfOf(t.lambdas)[d - 1])} vs ${fmt(e.cdf[d - 1])})`,
      );
    }
    const m = f32ByIndex.get(e.index)!;
    const same = (u: unknown, v: unknown) => JSON.stringify(u) === JSON.stringify(v);
    identical += +(
      same(e.layerProbabilities, m.layerProbabilities) &&
      same(e.lambdas, m.lambdas) &&
      e.exitLayer === m.exitLayer
    );
    for (let i = 0; i < Math.min(e.lambdas.length, m.lambdas.length); i++)
      l = Math.max(l, Math.abs(e.lambdas[i]! - m.lambdas[i]!));
  }
  f16Line =
    `With f16 weight storage (\`--f16\`, ${r.examples.length} examples, ${r.seconds.toFixed(0)} s): prediction ${pct(p, r.examples.length)}, ` +
    `exit layer ${pct(x, r.examples.length)} equal to PyTorch's; largest |λ_f16 − λ_f32| ${l.toExponential(2)}; ` +
    `${identical} of ${r.examples.length} examples bit-identical to the f32-storage run (probabilities, λ, exit layer: ` +
    `the weights are fp16 values either way and the kernels accumulate in f32)` +
    (differ.length ? `; differ (exit/prediction, PyTorch → f16): ${differ.join(', ')}.` : '.');
}
let browserLines: string[] = [];
if (browserDir) {
  const recs = readFileSync(`${browserDir}/predictions.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map(
      (line) =>
        JSON.parse(line) as { index: number; prediction: number; exitLayer: number; lambdas?: number[] },
    );
  const summary = JSON.parse(readFileSync(`${browserDir}/summary.json`, 'utf8')) as Record<string, unknown>;
  const byIndex = new Map(ours.map((e) => [e.index, e]));
  let same = 0;
  let l = 0;
  const differ: number[] = [];
  for (const b of recs) {
    const e = byIndex.get(b.index);
    if (!e) fail(`browser example ${b.index} is not in the Deno run`);
    if (b.prediction === e.prediction && b.exitLayer === e.exitLayer) same++;
    else differ.push(b.index);
    (b.lambdas ?? []).forEach((x, i) => (l = Math.max(l, Math.abs(x - (e.lambdas[i] ?? NaN)))));
  }
  const a = (summary.adapter ?? {}) as { vendor?: string; architecture?: string; description?: string };
  const adapter = [a.vendor, a.architecture || a.description].filter(Boolean).join(' / ');
  browserLines = [
    `Chromium (\`npm run eval -- --limit ${recs.length}\`, batch ${String(summary.batch)}, adapter ${adapter}, commit ${String(summary.gitCommit).slice(0, 7)}): ${same} of ${recs.length} examples ` +
      `have the same prediction and exit layer as the Deno run${differ.length ? ` (differ: ${differ.join(', ')})` : ''}; ` +
      `largest |λ_Chromium − λ_Deno| ${l.toExponential(2)}.`,
  ];
}

// 6. The report.
const seconds = ((Date.now() - started) / 1000).toFixed(0);
const cmd = `npm run crosscheck:sst2${argv.length ? ' -- ' + argv.join(' ') : ''}`;
const md = [
  '# Cross-check with PyTorch on SST-2 dev',
  '',
  `Generated by \`${cmd}\` (scripts/crosscheck/sst2.ts) at commit ${gitState()}; do not edit by hand.`,
  '',
  `Model \`${MODEL}\` (fp16 safetensors), default criterion Q-exit q = ${Q}, against \`${TSV}\`, which`,
  'training/finetune.py wrote at the best epoch from the fp32 weights in fp32 evaluation (`eval_fp32: 1`),',
  'before export.py rounded them to fp16. Data: `../shared/data/glue/SST-2/dev.tsv` (not in the repository).',
  '',
  `Runtime: the engine (src/, shaders/) under Deno's WebGPU on ${main.adapter.description}` +
    ` (fallback adapter: ${main.adapter.isFallbackAdapter}), ${main.weightDtype} weight storage (the fp16 values widened exactly),`,
  `batches of ${main.batchSize} examples sorted by length, exit decided on the GPU; engine at commit ${main.commit ?? 'unknown'};`,
  `${main.seconds.toFixed(0)} s for ${n} examples (whole command ${seconds} s${flag('--reuse') ? ', Deno runs reused' : ''}).`,
  '',
  '## Agreement',
  '',
  '| | equal | of | % |',
  '|---|---|---|---|',
  `| prediction | ${samePrediction} | ${n} | ${pct(samePrediction, n)} |`,
  `| exit layer | ${sameExit} | ${n} | ${pct(sameExit, n)} |`,
  `| both | ${sameBoth} | ${n} | ${pct(sameBoth, n)} |`,
  `| per-layer class, layers up to our exit | ${layerPredSame} | ${layerPredCount} | ${pct(layerPredSame, layerPredCount)} |`,
  '',
  `Target ≥ 99.5% for prediction and exit layer: ${samePrediction / n >= 0.995 && sameExit / n >= 0.995 ? 'met' : 'NOT met'}.`,
  `Our accuracy ${pct(correct, n)}, average exit layer ${(layersSum / n).toFixed(3)}.`,
  '',
  `- λ: largest |λ_ours − λ_PyTorch| ${lambdaMax.toExponential(2)} (${lambdaMaxAt}), mean ${(lambdaSum / lambdaCount).toExponential(2)}` +
    ` over ${lambdaCount} (example, layer) pairs up to our exit layer; the TSV prints λ to 6 significant digits.`,
  `- CDF: largest |CDF_ours − CDF_PyTorch| ${cdfMax.toExponential(2)} over the same pairs (PyTorch's CDF recomputed from the TSV's λ as q_exit does).`,
  pyIds
    ? `- Tokens: ${n - tokenMismatch.size} of ${n} examples have the same ids as Python \`tokenizers\` ${pyVersion} on the same tokenizer.json with truncation to 128 (training/finetune.py's encoding)` +
      (tokenMismatch.size ? `; differ: ${[...tokenMismatch].join(', ')}.` : '.')
    : '- Tokens: NOT compared (python3 has no `tokenizers`; `pip install tokenizers`).',
  ...(f16Line ? [`- ${f16Line}`] : []),
  ...browserLines.map((l) => `- ${l}`),
  '',
  '## Closest calls',
  '',
  'The five examples whose PyTorch CDF came nearest q at a deciding layer (the exit layer or the one before):',
  '',
  '| index | exit layer | layer | PyTorch CDF | our CDF | PyTorch − q |',
  '|---|---|---|---|---|---|',
  ...near.map(
    (x) =>
      `| ${x.index} | ${x.exit} | ${x.layer} | ${fmt(x.torch)} | ${fmt(x.ours)} | ${(x.torch - Q).toExponential(2)} |`,
  ),
  '',
  `Our P(positive) nearest 0.5 at the exit layer: ${nearClass.map((x) => `example ${x.index} (layer ${x.layer}) ${fmt(x.p, 4)}`).join(', ')}.`,
  '',
  '## Disagreements',
  '',
  disagreements.length
    ? '`index` is the 0-based row of dev.tsv after the header (no text here). CDF columns: layer d, the first layer where the two exits differ.'
    : 'None.',
  '',
  ...(disagreements.length
    ? [
        '| index | label | PyTorch exit / prediction | ours exit / prediction | d | PyTorch CDF_d | our CDF_d | PyTorch λ_d | our λ_d | why |',
        '|---|---|---|---|---|---|---|---|---|---|',
        ...rows.map(
          ({ e, t, f, tCdf, d, reasons }) =>
            `| ${e.index} | ${e.label} | ${t.exitLayer} / ${t.prediction} | ${e.exitLayer} / ${e.prediction} | ${d} | ` +
            `${fmt(tCdf[d - 1])} | ${fmt(f.cdf[d - 1])} | ${fmt(t.lambdas[d - 1])} | ${fmt(f.lambdas[d - 1])} | ${reasons.join('; ')} |`,
        ),
      ]
    : []),
  '',
].join('\n');
writeFileSync(resolve(root, 'docs/crosscheck-sst2.md'), md);
// The repository's `prettier --check .` covers docs/.
sh('npx', ['prettier', '--write', 'docs/crosscheck-sst2.md']);
console.log(md);
console.log(`wrote ${relative(process.cwd(), resolve(root, 'docs/crosscheck-sst2.md'))}`);
