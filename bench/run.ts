/**
 * `npm run bench`: the benchmark suite in headless Chromium (Debian's /usr/bin/chromium), writing
 * bench/results/chromium.json and docs/benchmarks.md. `npm run bench:smoke`: a seconds-long version
 * for CI (tiny model, two iterations) that writes only its JSON.
 *
 *   npx tsx bench/run.ts [--smoke] [--full] [--runtimes ponder,ort-webgpu,ort-wasm,transformers-js]
 *                        [--models golden-bert-odd,albert-base-random,...] [--out FILE] [--no-docs]
 *                        [--port N] [--suite-timeout SECONDS]
 *
 * Steps: prepare the models (golden fixtures, shipped models, the seeded ALBERT-base; ONNX exports)
 * in node_modules/.cache/ponder-bench, build bench/page with bench/vite.config.ts, serve both from
 * 127.0.0.1, and run one fresh page per (model, runtime), then one each for the matmul table and
 * the dispatch probe (bench/dispatch-probe.ts). On a software adapter (SwiftShader) the
 * default suite keeps the ALBERT-base shape at sequence 16 and small batches; --full lifts that.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import {
  criteriaFor,
  type BenchModel,
  type MatmulRecord,
  type RuntimeFloor,
  type RuntimeId,
  type SuiteResult,
  type SuiteSpec,
  type SweepReport,
} from './common';
import { modelShapes, squareShapes, type MatmulShapeSpec } from './shapes';
import { GOLDEN_FIXTURES, prepareModels } from './models';
import type { DispatchProbeReport } from './dispatch-probe';
import type { MatmulProbeRecord, WarmProbeRecord } from './gpu-matmul';
import type { TuningAbReport } from './tuning-ab';
import type { BenchPage } from './page/main';
import { writeDocs } from './docs';
import { startServer } from './serve';

export interface BenchReport {
  generatedBy: string;
  date: string;
  mode: 'smoke' | 'default' | 'full';
  machine: {
    hostname: string;
    cpus: string;
    cores: number;
    memoryGiB: number;
    /** JavaScript runtime of the harness (Node for the Chromium run, Deno for bench/deno). */
    node: string;
    /** 1-minute load average at the start and end: other work on the machine skews wall times. */
    loadAverage?: [number, number];
  };
  browser: { name: string; version: string; flags: string[] };
  adapter: Record<string, unknown>;
  software: boolean;
  models: BenchModel[];
  modelNotes: string[];
  suites: (SuiteResult & { spec: Omit<SuiteSpec, 'model'> })[];
  matmul: { records: MatmulRecord[]; error?: string; note: string };
  /** The runtime's submit → result round trip with no GPU work (bench/floor.ts), once per run. */
  runtimeFloor?: RuntimeFloor;
  /** Deno `--matmul-sweep`: GFLOP/s per shape × tiles config (bench/matmul-sweep.ts). */
  matmulSweep?: SweepReport;
  /** bench/deno --matmul-probe: one product's time at several reps per pass, by GPU and wall clock. */
  matmulProbe?: MatmulProbeRecord[];
  /** Model shapes timed after preludes of sustained work (bench/gpu-matmul.ts warmProbe). */
  warmProbe?: WarmProbeRecord[];
  /** Whole forward passes under several kernel tunings (bench/tuning-ab.ts). */
  tuningAb?: TuningAbReport[];
  /** What one near-empty dispatch costs, per clock (bench/dispatch-probe.ts; Deno --dispatch-probe). */
  dispatchProbe?: DispatchProbeReport;
  elapsedSec: number;
}

const ALL_RUNTIMES: RuntimeId[] = ['ponder', 'ort-webgpu', 'ort-wasm', 'transformers-js'];

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  // Unquantized timestamp queries (else 100 µs steps) for per-layer and matmul GPU times.
  '--enable-webgpu-developer-features',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface Options {
  mode: 'smoke' | 'default' | 'full';
  runtimes: RuntimeId[];
  models: string[] | null;
  out: string;
  docs: boolean;
  port: number;
  suiteTimeoutSec: number;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const mode = argv.includes('--smoke') ? 'smoke' : argv.includes('--full') ? 'full' : 'default';
  const runtimes = (get('--runtimes')?.split(',') ?? ALL_RUNTIMES) as RuntimeId[];
  for (const r of runtimes) if (!ALL_RUNTIMES.includes(r)) throw new Error(`unknown runtime ${r}`);
  return {
    mode,
    runtimes,
    models: get('--models')?.split(',') ?? null,
    out:
      get('--out') ??
      (mode === 'smoke' ? 'node_modules/.cache/ponder-bench/smoke.json' : 'bench/results/chromium.json'),
    docs: mode !== 'smoke' && !argv.includes('--no-docs'),
    port: Number(get('--port') ?? 0),
    suiteTimeoutSec: Number(get('--suite-timeout') ?? (mode === 'smoke' ? 90 : 900)),
  };
}

/** The sizes each model is run at; software adapters get the short version for big models. */
function specFor(model: BenchModel, runtime: RuntimeId, opts: Options, software: boolean): SuiteSpec {
  const big = model.hiddenSize >= 512;
  const base = { runtime, model, seed: 1 };
  let spec: SuiteSpec;
  const short = software && opts.mode !== 'full';
  if (opts.mode === 'smoke') {
    spec = { ...base, seqs: [8], batches: [2], throughputSeq: 8, warmup: 1, iterations: 2 };
  } else if (big && short) {
    // ALBERT-base on a software adapter: seconds per call, so batch 1 at sequence 16 only (--full for more).
    spec = { ...base, seqs: [16], batches: [], throughputSeq: 16, warmup: 0, iterations: 2 };
  } else if (short) {
    // Software adapter: every figure, at small iteration counts and short throughput sequences.
    spec = { ...base, seqs: [16, 64, 128], batches: [8, 32], throughputSeq: 16, warmup: 1, iterations: 4 };
    spec.criteriaSeqs = [16];
  } else if (big) {
    spec = { ...base, seqs: [16, 64, 128], batches: [8, 32], throughputSeq: 128, warmup: 3, iterations: 20 };
  } else {
    spec = { ...base, seqs: [16, 64, 128], batches: [8, 32], throughputSeq: 32, warmup: 2, iterations: 10 };
  }
  if (runtime === 'ponder') {
    spec.criteria = criteriaFor(model);
    if (opts.mode === 'smoke') spec.criteria = spec.criteria.slice(0, 1);
    // Software adapter, big model: the model's default, Q-exit (when it has a λ head) and fixed-depth
    // rows (the last shows what skipping layers saves); the others only with --full.
    if (big && software && opts.mode !== 'full') {
      spec.criteria = spec.criteria.filter(
        (c) =>
          c.label.includes('model default') || c.criterion.kind === 'palbert' || c.criterion.kind === 'fixed',
      );
    }
  }
  return spec;
}

function matmulShapes(models: BenchModel[], opts: Options, software: boolean): MatmulShapeSpec[] {
  if (opts.mode === 'smoke') return [{ what: 'tiny', M: 16, N: 64, K: 32 }];
  const shapes: MatmulShapeSpec[] = [];
  for (const big of models.filter((m) => m.hiddenSize >= 512)) {
    const rows = software && opts.mode !== 'full' ? [16] : [16, 128, 8 * 128];
    for (const r of rows)
      shapes.push(...modelShapes(big.hiddenSize, big.intermediate, r, `${big.id} rows ${r}`));
  }
  const sizes = opts.mode === 'full' ? [1024, 2048, 4096] : software ? [1024] : [1024, 2048, 4096];
  return [...shapes, ...squareShapes(sizes)];
}

async function withTimeout<T>(promise: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} timed out after ${seconds} s`)), seconds * 1000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function openPage(browser: Browser, url: string) {
  const page = await browser.newPage();
  page.on('console', (msg) => {
    const text = msg.text();
    // 404s: the favicon and ponder-web's optional tokenizer.json probe.
    if (msg.type() === 'error' && !text.includes('404')) console.log(`  [browser] ${text.slice(0, 300)}`);
    if (text.startsWith('[suite]')) console.log(`  ${text}`);
  });
  await page.goto(`${url}/index.html`);
  await page.waitForFunction(() => (window as unknown as { benchReady?: boolean }).benchReady === true);
  return page;
}

export async function runBench(argv: string[]): Promise<BenchReport> {
  const opts = parseArgs(argv);
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const choice =
    opts.mode === 'smoke'
      ? { shipped: false, fixtures: ['bert-regression'], albertBase: false }
      : { shipped: true, fixtures: GOLDEN_FIXTURES, albertBase: true };
  console.log('preparing models and ONNX exports…');
  const prepared = prepareModels(choice);
  const modelNotes = prepared.notes;
  const models = opts.models ? prepared.models.filter((m) => opts.models!.includes(m.id)) : prepared.models;
  console.log('building the bench page…');
  execFileSync('npx', ['vite', 'build', '--config', 'bench/vite.config.ts'], { stdio: 'inherit' });
  const { server, url } = await startServer(opts.port);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_FLAGS,
  });
  try {
    const info = await openPage(browser, url);
    const adapter = await info.evaluate(() =>
      (window as unknown as { bench: BenchPage }).bench.adapterInfo(),
    );
    await info.close();
    const software =
      adapter.isFallbackAdapter === true ||
      /swiftshader/i.test(`${adapter.vendor} ${adapter.description} ${adapter.architecture}`);
    console.log(`adapter: ${JSON.stringify(adapter)}`);
    // The runtime's round-trip floor, once per run, in a page of its own.
    let runtimeFloor: RuntimeFloor;
    try {
      const page = await openPage(browser, url);
      runtimeFloor = await withTimeout(
        page.evaluate(() => (window as unknown as { bench: BenchPage }).bench.floor()),
        60,
        'runtime floor',
      );
      await page.close();
    } catch (error) {
      runtimeFloor = { records: [], error: (error as Error).message.split('\n')[0] };
    }
    console.log(
      `runtime floor: ${runtimeFloor.error ?? runtimeFloor.records.map((r) => `${r.what} p50 ${r.p50.toFixed(2)} ms`).join(', ')}`,
    );

    let matmul: BenchReport['matmul'] = {
      records: [],
      note: '',
      error: 'not run (the run stopped before it)',
    };
    let dispatchProbe: BenchReport['dispatchProbe'];
    const suites: BenchReport['suites'] = [];
    // Written after every suite too, so an interrupted run keeps what it measured.
    const save = (): BenchReport => {
      const report: BenchReport = {
        generatedBy: `npx tsx bench/run.ts ${argv.join(' ')}`.trim(),
        date: new Date().toISOString(),
        mode: opts.mode,
        machine: {
          hostname: hostname(),
          cpus: cpus()[0]?.model ?? 'unknown',
          cores: cpus().length,
          memoryGiB: Math.round(totalmem() / 2 ** 30),
          node: `Node ${process.version}`,
          loadAverage: [loadAtStart, loadavg()[0]!],
        },
        browser: { name: 'chromium (headless)', version: browser.version(), flags: CHROMIUM_FLAGS },
        adapter,
        software,
        models,
        modelNotes,
        suites,
        matmul,
        runtimeFloor,
        ...(dispatchProbe ? { dispatchProbe } : {}),
        elapsedSec: (Date.now() - started) / 1000,
      };
      mkdirSync(dirname(opts.out), { recursive: true });
      writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
      return report;
    };
    for (const model of models) {
      for (const runtime of opts.runtimes) {
        const spec = specFor(model, runtime, opts, software);
        const t = Date.now();
        process.stdout.write(`${model.id} × ${runtime}… `);
        const page = await openPage(browser, url);
        let result: SuiteResult;
        try {
          result = await withTimeout(
            page.evaluate((s) => (window as unknown as { bench: BenchPage }).bench.runSuite(s), spec),
            opts.suiteTimeoutSec,
            `${model.id} × ${runtime}`,
          );
        } catch (error) {
          result = {
            runtime,
            model: model.id,
            ok: false,
            error: (error as Error).message.split('\n')[0],
            notes: [],
            latency: [],
            throughput: [],
            criteria: [],
            perLayerGpuMs: null,
          };
        }
        await page.close().catch(() => undefined);
        const { model: _m, ...rest } = spec;
        void _m;
        suites.push({ ...result, spec: rest });
        save();
        console.log(result.ok ? `ok (${((Date.now() - t) / 1000).toFixed(1)} s)` : `FAILED: ${result.error}`);
      }
    }

    const shapes = matmulShapes(models, opts, software);
    try {
      process.stdout.write('matmul… ');
      const page = await openPage(browser, url);
      // FLOP per timed pass: a software adapter does well under 1 GFLOP/s.
      const budget = software ? 2e8 : 2e11;
      const records = await withTimeout(
        page.evaluate(([s, b]) => (window as unknown as { bench: BenchPage }).bench.matmul(s, b), [
          shapes,
          budget,
        ] as const),
        opts.suiteTimeoutSec,
        'matmul',
      );
      await page.close();
      matmul = {
        records,
        note: `our WGSL matmul (default tiles), median of 3 passes, FLOP budget ${budget} per pass`,
      };
      console.log('ok');
    } catch (error) {
      matmul = { records: [], error: (error as Error).message.split('\n')[0], note: '' };
      console.log(`FAILED: ${matmul.error}`);
    }

    // What one near-empty dispatch costs (bench/dispatch-probe.ts): informative only on SwiftShader;
    // the smoke run keeps N tiny so that CI exercises the code.
    const probeOptions =
      opts.mode === 'smoke'
        ? { n: 8, passes: 3, warmUpSec: 0 }
        : { n: 100, passes: 5, warmUpSec: software ? 0 : 1.5 };
    try {
      process.stdout.write('dispatch probe… ');
      const page = await openPage(browser, url);
      dispatchProbe = await withTimeout(
        page.evaluate(
          (o) => (window as unknown as { bench: BenchPage }).bench.dispatchProbe(o),
          probeOptions,
        ),
        opts.suiteTimeoutSec,
        'dispatch probe',
      );
      await page.close();
    } catch (error) {
      dispatchProbe = {
        ...probeOptions,
        timestamps: false,
        records: [],
        error: (error as Error).message.split('\n')[0],
      };
    }
    console.log(dispatchProbe.error ? `FAILED: ${dispatchProbe.error}` : 'ok');

    const report = save();
    console.log(`wrote ${opts.out}`);
    if (opts.docs) {
      await writeDocs();
      console.log('wrote docs/benchmarks.md (from every bench/results/*.json)');
    }
    return report;
  } finally {
    await browser.close();
    server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runBench(process.argv.slice(2)).then(
    (r) => {
      const failed = r.suites.filter((s) => !s.ok).length;
      console.log(
        `done in ${r.elapsedSec.toFixed(0)} s; ${r.suites.length - failed} suites ran, ${failed} could not`,
      );
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
