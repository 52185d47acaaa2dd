/**
 * `npm run eval`: runs a model on a GLUE dev file in headless Chromium with the real engine and writes per-example
 * JSONL, a summary JSON (and with --sweep the metric-versus-layers curve as CSV and SVG), printing a summary table.
 * All input is checked before anything runs; outputs appear only when the whole run succeeded. See USAGE (args.ts)
 * and the README's "Evaluation CLI".
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// Only the library's pure modules: Node cannot load the engine (it imports WGSL files through Vite).
import { isPonderError } from '../../src/errors';
import {
  argmax,
  CRITERION_KINDS,
  criteriaSupportedBy,
  describeCriterion,
  parseCriterion,
  validateCriterion,
  type CriterionKind,
  type ExitCriterion,
} from '../../src/exit';
import { parseConfig } from '../../src/loading/config';
import type { EncoderConfig } from '../../src/model/types';
import { parseEvalArgs, USAGE, type EvalArgs } from './args';
import { ensureDist } from './build';
import type { EvalSession } from './browser';
import { checkExits } from './check';
import { badInput, EvalError, PageError } from './errors';
import { quantile, taskMetrics } from './metrics';
import { StagedOutput } from './output';
import { sweepSvg } from './plot';
import { Progress } from './progress';
import { formatSummary, formatSweep, isSoftwareAdapter, type Stats, type Summary } from './report';
import { cheapestWithinBudget, fullDepth, layerOutputsOf, runSweep, sweepableKinds, sweepCsv } from './sweep';
import {
  inferTask,
  parseTsv,
  resolveLabels,
  taskByName,
  type ModelLabels,
  type RawExample,
  type TaskSpec,
} from './tasks';
import type { PageInput, PageModelInfo, PageResult } from './types';

/** The run's staged output, removed on Ctrl-C. */
let activeOutput: StagedOutput | undefined;

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'];

/** PonderError codes from loading or running that mean the model or the input is bad (exit 2), not the run. */
const INPUT_CODES = new Set([
  'fetch-failed',
  'invalid-config',
  'unsupported-config',
  'invalid-safetensors',
  'missing-tensor',
  'shape-mismatch',
  'invalid-input',
  'unsupported-criterion',
]);

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Relative paths are resolved against this (npm sets INIT_CWD to where `npm run` was typed). */
  cwd: string;
  /** Progress bar stream (default process.stderr). */
  progressStream?: NodeJS.WriteStream;
  /** Where the defaults of --model and --data are looked for (tests point these elsewhere). */
  defaults?: { modelsDir: string; data: string };
}

/** The shipped models' folder and the SST-2 dev file of shared/data beside the repository. */
export const DEFAULTS = {
  modelsDir: join(REPO_ROOT, 'public', 'models'),
  data: join(REPO_ROOT, '..', 'shared', 'data', 'glue', 'SST-2', 'dev.tsv'),
};

/** Without --model: the one model folder (with config.json) in public/models/. */
function shippedModel(modelsDir: string): string {
  const found = existsSync(modelsDir)
    ? readdirSync(modelsDir).filter((n) => existsSync(join(modelsDir, n, 'config.json')))
    : [];
  if (found.length === 0) badInput(`no --model given, and there is no shipped model in ${modelsDir}`);
  if (found.length > 1) {
    badInput(
      `no --model given, and ${modelsDir} holds ${found.length} models (${found.join(', ')}): pick one`,
    );
  }
  return join(modelsDir, found[0]!);
}

type ModelRef = { kind: 'local'; dir: string } | { kind: 'hub'; id: string };

function resolveModel(arg: string, base: string, warn: (s: string) => void): ModelRef {
  const path = resolve(base, arg);
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) {
      badInput(`--model ${arg} is a file; give the folder that holds ${MODEL_FILES.join(', ')}`);
    }
    const missing = MODEL_FILES.filter((f) => !existsSync(join(path, f)));
    if (missing.length > 0) badInput(`model folder ${path} has no ${missing.join(', ')}`);
    return { kind: 'local', dir: path };
  }
  if (HUB_ID.test(arg)) {
    warn(`note: '${arg}' is not a local folder (${path}); loading it as a Hugging Face Hub id`);
    return { kind: 'hub', id: arg };
  }
  badInput(`model folder not found: ${path}`);
}

/** What each criterion needs, for the error when the model lacks it. */
const NEEDS: Record<CriterionKind, string> = {
  palbert: 'a Lambda head (config.json ponder.lambda_head)',
  'pondernet-sample': 'a Lambda head (config.json ponder.lambda_head)',
  pabee: 'per-layer classifier heads (config.json ponder.per_layer_heads)',
  gate: 'exit gates (config.json ponder.gates)',
  'max-prob': 'class probabilities (a classification model)',
  entropy: 'class probabilities (a classification model)',
  fixed: '',
  none: '',
};

/**
 * The criteria a model's config declares heads for (the classifier's supportedCriteria, once loaded, wins). Reads
 * the parsed config's exitHeads in either spelling: the validated camelCase object (lambdaHead, perLayerHeads,
 * gates) or config.json's raw `ponder` object (lambda_head, per_layer_heads, gates).
 */
export function criteriaFromConfig(config: { exitHeads?: unknown; problemType: string }): CriterionKind[] {
  const p = (config.exitHeads ?? {}) as Record<string, unknown>;
  const lambda = p.lambdaHead ?? p.lambda_head;
  return criteriaSupportedBy({
    lambdas: lambda !== undefined && lambda !== null && lambda !== false,
    perLayerHeads: (p.perLayerHeads ?? p.per_layer_heads) === true,
    gates: p.gates === true,
    regression: config.problemType === 'regression',
  });
}

function checkKind(kind: CriterionKind, supported: readonly CriterionKind[]): void {
  if (!supported.includes(kind)) {
    badInput(
      `the model has no head for criterion '${kind}': it needs ${NEEDS[kind]}; ` +
        `this model supports: ${supported.join(', ')}`,
    );
  }
}

function checkCriterion(
  criterion: ExitCriterion,
  supported: readonly CriterionKind[],
  numLayers: number,
): void {
  try {
    validateCriterion(criterion, numLayers);
  } catch (error) {
    if (isPonderError(error)) badInput(error.message);
    throw error;
  }
  checkKind(criterion.kind, supported);
}

function stats(values: readonly number[]): Stats {
  return {
    p50: quantile(values, 0.5),
    p95: quantile(values, 0.95),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

/** An optional per-layer field as an array when any layer has it (missing layers: null), else undefined. */
function perLayer<T>(
  result: PageResult,
  pick: (l: PageResult['layers'][number]) => T | undefined,
): (T | null)[] | undefined {
  const values = result.layers.map(pick);
  return values.some((v) => v !== undefined) ? values.map((v) => (v === undefined ? null : v)) : undefined;
}

function exampleRecord(
  ex: RawExample,
  label: number,
  result: PageResult,
  prediction: number,
  labels: readonly string[],
  regression: boolean,
  batch: { index: number; ms: number },
): Record<string, unknown> {
  const record: Record<string, unknown> = {
    index: ex.index,
    line: ex.line,
    label,
    ...(!regression && { labelName: labels[label] ?? null }),
    prediction,
    ...(!regression && { predictionLabel: result.label, correct: prediction === label }),
    exitLayer: result.exitLayer,
    numLayers: result.numLayers,
    ...(result.skippedLayers !== undefined && { skippedLayers: result.skippedLayers }),
    tokenCount: result.tokenCount,
    truncated: result.truncated,
    batch: batch.index,
    batchMs: batch.ms,
    ...(result.timing?.gpuMs !== undefined && { gpuMs: result.timing.gpuMs }),
  };
  if (regression) record.values = result.layers.map((l) => l.logits[0]);
  else record.probabilities = result.layers.map((l) => l.probabilities);
  const optional = {
    headProbabilities: perLayer(result, (l) => l.headProbabilities),
    lambdas: perLayer(result, (l) => l.lambda),
    haltingProbabilities: perLayer(result, (l) => l.haltingProbability),
    cumulativeHalting: perLayer(result, (l) => l.cumulativeHalting),
    gates: perLayer(result, (l) => l.gate),
    layerGpuMs: perLayer(result, (l) => l.gpuTimeMs),
  };
  for (const [key, value] of Object.entries(optional)) if (value !== undefined) record[key] = value;
  return record;
}

/** Inside the repository: relative to it (as typed from its root); elsewhere: absolute. */
function displayPath(path: string): string {
  const rel = relative(REPO_ROOT, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

const json = (value: unknown): string =>
  JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);

/** Runs the CLI; returns the exit code. Never calls process.exit (tests call it in-process). */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let output: StagedOutput | undefined;
  let session: EvalSession | undefined;
  try {
    const parsed = parseEvalArgs(argv);
    if (parsed === 'help') {
      io.stdout(USAGE + '\n');
      return 0;
    }
    const args: EvalArgs = parsed;
    const wallStart = Date.now();

    // 1. Everything that needs no browser: files, task, rows, criterion name.
    const defaults = io.defaults ?? DEFAULTS;
    const dataPath = args.data !== undefined ? resolve(io.cwd, args.data) : defaults.data;
    if (args.data === undefined) io.stderr(`note: no --data given: ${displayPath(dataPath)}`);
    if (!existsSync(dataPath)) badInput(`data file not found: ${dataPath}`);
    if (!statSync(dataPath).isFile()) badInput(`--data ${dataPath} is not a file`);
    const task: TaskSpec = args.task !== undefined ? taskByName(args.task) : inferTask(dataPath);
    const modelArg = args.model ?? shippedModel(defaults.modelsDir);
    if (args.model === undefined)
      io.stderr(`note: no --model given: the shipped model ${displayPath(modelArg)}`);
    const model = resolveModel(modelArg, io.cwd, io.stderr);
    let rows = parseTsv(readFileSync(dataPath, 'utf8'), task, dataPath);
    if (args.limit !== undefined) rows = rows.slice(0, args.limit);
    // --criterion names the criterion to run, or with --sweep the one kind to sweep (its settings: defaultSweep).
    let criterion: ExitCriterion | undefined;
    let sweepKind: CriterionKind | undefined;
    if (args.criterion !== undefined) {
      try {
        if (args.sweep) sweepKind = knownKind(args.criterion);
        else criterion = parseCriterion(args.criterion, args.threshold);
      } catch (error) {
        if (isPonderError(error)) badInput(error.message);
        throw error;
      }
    }
    const modelName = model.kind === 'local' ? basename(model.dir) : model.id.replace('/', '--');
    const outDir = resolve(
      io.cwd,
      args.out ?? join('eval-results', `${modelName}-${task.name}${args.sweep ? '-sweep' : ''}`),
    );
    output = new StagedOutput(outDir);
    activeOutput = output;

    // 2. A local model's config.json: labels and criterion are checked before starting the browser.
    let labels: number[] | undefined;
    if (model.kind === 'local') {
      const configFile = join(model.dir, 'config.json');
      let config: EncoderConfig;
      try {
        config = parseConfig(readFileSync(configFile, 'utf8'));
      } catch (error) {
        if (isPonderError(error)) badInput(`${configFile}: ${error.message}`);
        throw error;
      }
      labels = resolveLabels(rows, task, config, dataPath);
      if (criterion) checkCriterion(criterion, criteriaFromConfig(config), config.numHiddenLayers);
      if (sweepKind) checkKind(sweepKind, criteriaFromConfig(config));
    }

    // 3. The browser: build dist/ when stale, load the model.
    await ensureDist(REPO_ROOT, io.stderr);
    const maxBatch = Math.max(32, args.batch);
    // Loaded here, not at the top: input errors above need neither Playwright nor the test config.
    const { openSession } = await import('./browser');
    try {
      session = await openSession({
        repoRoot: REPO_ROOT,
        modelSource: model.kind === 'local' ? '/model/' : model.id,
        ...(model.kind === 'local' && { modelDir: model.dir }),
        maxBatch,
        onConsole: (line) => io.stderr(line),
      });
    } catch (error) {
      if (error instanceof PageError) {
        throw new EvalError(
          `loading the model failed (${error.code}): ${error.message}`,
          INPUT_CODES.has(error.code) ? 2 : 1,
        );
      }
      throw error;
    }
    const info: PageModelInfo = session.info;
    const numLayers = info.config.numHiddenLayers;
    const regression = info.config.problemType === 'regression';
    const supported = info.supportedCriteria ?? criteriaFromConfig(info.config);
    labels ??= resolveLabels(rows, task, info.config as ModelLabels, dataPath);
    if (criterion) checkCriterion(criterion, supported, numLayers);
    if (sweepKind) checkKind(sweepKind, supported);

    // 4. Run. A sweep runs every layer ('none'); otherwise the criterion, or the model's default when none given.
    const runCriterion: ExitCriterion | undefined = args.sweep ? { kind: 'none' } : criterion;
    const inputs: PageInput[] = rows.map((r) =>
      r.pair !== undefined ? { text: r.text, textPair: r.pair } : { text: r.text },
    );
    const batches: PageInput[][] = [];
    for (let i = 0; i < inputs.length; i += args.batch) batches.push(inputs.slice(i, i + args.batch));
    const run = async (batch: PageInput[], firstIndex: number) => {
      try {
        return await session!.run(batch, runCriterion, firstIndex);
      } catch (error) {
        if (error instanceof PageError) {
          throw new EvalError(
            `classify() failed (${error.code}): ${error.message}`,
            INPUT_CODES.has(error.code) ? 2 : 1,
          );
        }
        throw error;
      }
    };
    // One untimed batch first: the first pass at a shape builds its plan and pipelines.
    await run(batches[0]!, 0);
    const results: PageResult[] = [];
    const batchOf: { index: number; ms: number }[] = [];
    const progress = new Progress(inputs.length, io.progressStream);
    progress.update(0);
    let runMs = 0;
    for (let b = 0; b < batches.length; b++) {
      const answer = await run(batches[b]!, b * args.batch);
      runMs += answer.ms;
      for (const r of answer.results) {
        results.push(r);
        batchOf.push({ index: b, ms: answer.ms });
      }
      progress.update(results.length);
    }

    // 5. Metrics and records.
    const predictions = results.map((r) => {
      if (regression) return r.score;
      const k = info.config.labels.indexOf(r.label);
      return k >= 0 ? k : argmax(r.layers[r.exitLayer - 1]!.probabilities);
    });
    const metrics = taskMetrics(task, predictions, labels);
    const exitLayers = results.map((r) => r.exitLayer);
    const averageLayers = exitLayers.reduce((a, b) => a + b, 0) / exitLayers.length;
    const histogram = new Array<number>(numLayers).fill(0);
    for (const n of exitLayers) histogram[n - 1]!++;
    const skipped = results.map((r) => r.skippedLayers);
    const gpu = results.map((r) => r.timing?.gpuMs).filter((v): v is number => v !== undefined);
    const software = isSoftwareAdapter(info.device);
    const notes: string[] = [];
    if (software) {
      notes.push(
        `software adapter (${info.device.architecture || info.device.description || 'fallback'}): timings are not ` +
          `representative of a GPU`,
      );
    }
    if (skipped.some((s) => s === undefined)) {
      notes.push(
        'this library build does not report skipped layers: every layer ran; exits were decided afterwards',
      );
    }
    const exitCheck = checkExits(
      results,
      rows.map((r) => r.index),
      regression,
    );
    if (exitCheck.disagreements.length > 0) {
      const shown = exitCheck.disagreements.slice(0, 10).join(', ');
      notes.push(
        `${exitCheck.disagreements.length} examples exit elsewhere than the CPU criteria decide on the same outputs ` +
          `(indices ${shown}${exitCheck.disagreements.length > 10 ? ', ...' : ''})`,
      );
    }
    const truncated = results.filter((r) => r.truncated).length;
    if (truncated > 0)
      notes.push(`${truncated} examples were longer than the model's positions and were truncated`);
    if (!regression && info.config.numLabels !== task.numClasses) {
      notes.push(`the model has ${info.config.numLabels} classes, ${task.name} has ${task.numClasses}`);
    }

    const used = results[0]!.criterion;
    const summary: Summary = {
      tool: 'ponder-web eval',
      createdAt: new Date().toISOString(),
      gitCommit: gitCommit(),
      task: task.name,
      data: { file: displayPath(dataPath), examples: rows.length, limit: args.limit ?? null },
      model: {
        source: model.kind === 'local' ? displayPath(model.dir) : model.id,
        architecture: info.config.architecture,
        numLayers,
        numLabels: info.config.numLabels,
        labels: info.config.labels as string[],
        problemType: info.config.problemType,
        weightDtype: info.weightDtype,
        supportedCriteria: info.supportedCriteria ?? null,
      },
      criterion: {
        label: describeCriterion(used),
        value: used,
        from: args.sweep ? 'sweep: full depth' : criterion ? 'argument' : 'model default',
      },
      batch: args.batch,
      metrics,
      averageLayers,
      speedUp: numLayers / averageLayers,
      averageComputedLayers: skipped.every((s) => s !== undefined)
        ? skipped.reduce((a: number, s) => a + (numLayers - s), 0) / skipped.length
        : null,
      exitLayerHistogram: histogram,
      exitCheck,
      latencyMs: stats(batchOf.map((b) => b.ms)),
      gpuMs: gpu.length === results.length ? stats(gpu) : null,
      throughput: results.length / (runMs / 1000),
      wallSeconds: 0,
      adapter: info.device,
      timingsRepresentative: !software,
      notes,
      truncatedExamples: truncated,
      sweep: null,
      files: [],
    };

    // 6. Sweep from the full-depth outputs.
    let sweepText = '';
    if (args.sweep) {
      const outputs = results.map((r) => layerOutputsOf(r, regression));
      const short = outputs.findIndex((o) => o.numLayers !== numLayers);
      if (short >= 0) {
        throw new EvalError(
          `example ${short} came back with ${outputs[short]!.numLayers} of ${numLayers} layers`,
          1,
        );
      }
      const available = sweepableKinds(outputs[0]!);
      let kinds = available.filter((k) => supported.includes(k));
      if (sweepKind) kinds = kinds.filter((k) => k === sweepKind);
      const missing = supported.filter((k) => !available.includes(k));
      if (missing.length > 0) {
        notes.push(`the model supports ${missing.join(', ')} but its results carry no head outputs for them`);
      }
      if (sweepKind && !kinds.includes(sweepKind)) {
        badInput(`the results have no head outputs for criterion '${sweepKind}'`);
      }
      const sweepRows = runSweep(outputs, labels, task, kinds, regression ? 0 : info.config.numLabels);
      const cheapest = cheapestWithinBudget(sweepRows, args.budget);
      const full = fullDepth(sweepRows);
      summary.sweep = {
        budget: args.budget,
        metric: full.metrics.primaryName,
        fullDepth: full.metrics.primary,
        cheapest: cheapest.map(({ kind, row }) => ({
          kind,
          setting: row ? row.setting : null,
          label: row ? row.label : null,
          averageLayers: row ? row.averageLayers : null,
          speedUp: row ? row.speedUp : null,
          metric: row ? row.metrics.primary : null,
        })),
      };
      output.write('sweep.csv', sweepCsv(sweepRows, args.budget));
      output.write(
        'sweep.svg',
        sweepSvg(sweepRows, {
          title: `${task.name} · ${modelName} · ${rows.length} examples`,
          numLayers,
          budget: args.budget,
          chosen: cheapest.flatMap((c) => (c.row ? [c.row] : [])),
        }),
      );
      sweepText = formatSweep(sweepRows, summary.sweep);
    }

    const records = rows.map(
      (ex, i) =>
        JSON.stringify(
          exampleRecord(
            ex,
            labels![i]!,
            results[i]!,
            predictions[i]!,
            info.config.labels,
            regression,
            batchOf[i]!,
          ),
        ) + '\n',
    );
    output.write('predictions.jsonl', records.join(''));
    const names = ['predictions.jsonl', 'summary.json', ...(args.sweep ? ['sweep.csv', 'sweep.svg'] : [])];
    summary.files = names.map((n) => displayPath(join(outDir, n)));
    summary.wallSeconds = (Date.now() - wallStart) / 1000;
    output.write('summary.json', json(summary) + '\n');
    output.commit();

    io.stdout(formatSummary(summary) + '\n');
    if (sweepText) io.stdout('\n' + sweepText + '\n');
    io.stdout(`\nwrote ${summary.files.join(', ')}\n`);
    return 0;
  } catch (error) {
    output?.abort();
    if (error instanceof EvalError) {
      io.stderr(`error: ${error.message}`);
      return error.exitCode;
    }
    io.stderr(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  } finally {
    await session?.close();
  }
}

/** --sweep --criterion KIND: a known kind, else parseCriterion's 'unsupported-criterion' naming the known ones. */
function knownKind(kind: string): CriterionKind {
  const known = CRITERION_KINDS.find((k) => k === kind);
  if (!known) parseCriterion(kind);
  return known!;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const io: CliIo = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text.endsWith('\n') ? text : text + '\n'),
    cwd: process.env.INIT_CWD ?? process.cwd(),
  };
  // Ctrl-C or a kill: nothing half-written (drop the staged files); Playwright closes the browser on exit.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      activeOutput?.abort();
      process.stderr.write(`\n${signal === 'SIGINT' ? 'interrupted' : 'terminated'}: nothing written\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  process.exitCode = await main(process.argv.slice(2), io);
}
