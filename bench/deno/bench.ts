/**
 * The benchmark on Deno's WebGPU (wgpu), for absolute numbers on the GPU machine (bench/README.md has
 * the exact `run` command). Same suite, seeded inputs and report format as the Chromium run
 * (bench/suite.ts), for ponder-web and onnxruntime-web's WebGPU and wasm backends, plus our matmul
 * at the model's shapes and at 1024–4096³. transformers.js is left out: its ONNX Runtime (1.14) is
 * wasm-only, which the ORT wasm row already covers.
 *
 * Models are built in-process, so nothing big has to be carried to the machine: the golden fixtures
 * (tests/fixtures/golden, tracked), shipped models under public/models/, and the seeded random
 * ALBERT-base (bench/random-model.ts), each exported to ONNX with bench/onnx/export.ts.
 *
 *   npx vite build --config bench/deno/vite.config.ts      # → node_modules/.cache/ponder-bench/deno/
 *   deno run -A node_modules/.cache/ponder-bench/deno/bench.js [--quick] [--out FILE]
 *            [--runtimes ponder,ort-webgpu,ort-wasm] [--models albert-base-random,golden-bert-odd]
 *            [--budget-sec 480] [--matmul-sweep [--sweep-budget-sec 120] [--deadline-sec N]
 *             [--sweep-configs '[{},{"largeMinWorkgroups":1}]'] [--sweep-shapes all|model|square|batch1|rows] [--sweep-rounds 1]] [--no-suite]
 *            [--matmul-probe] [--dispatch-probe [--dispatch-n 100]] [--warm-probe] [--warm-prelude N]
 *            [--tuning-ab '[{}, {"attention":"rows"}]' [--ab-seq 128]]
 *
 * Order: the runtime's round-trip floor (bench/floor.ts), the matmul table, one suite per
 * (model, runtime) until --budget-sec (counted from the start) is spent, then, with --matmul-sweep,
 * the matmul tile sweep (bench/matmul-sweep.ts), which starts no cell after --sweep-budget-sec of
 * its own or after --deadline-sec from the start, whichever comes first. --no-suite skips the
 * models (matmul table and suites): floor and sweep only. --matmul-probe and --dispatch-probe run
 * right after the floor.
 *
 * Prints one JSON report (the same shape as bench/results/chromium.json) to --out (default
 * bench-deno.json), rewritten after every step, and a markdown summary to stdout.
 */
import * as ortWebgpu from 'onnxruntime-web/webgpu';
import { createClassifier } from '../../src/classifier';
import { requestGpu } from '../../src/gpu/device';
import { parseCheckpoint } from '../../src/loading';
import type { EncoderModel } from '../../src/model/types';
import { criteriaFor, describeBenchModel, type BenchModel, type RuntimeId, type SuiteSpec } from '../common';
import { measureRuntimeFloor } from '../floor';
import { dispatchProbe, dispatchProbeLines } from '../dispatch-probe';
import {
  leastReps,
  matmulBench,
  matmulProbe,
  warmPrelude,
  warmProbe,
  warmUpGpu,
  type MatmulProbeRecord,
  type WarmProbeRecord,
} from '../gpu-matmul';
import { runMatmulSweep, type SweepConfig, type SweepShapeSet } from '../matmul-sweep';
import { exportOnnx } from '../onnx/export';
import { ortRunner } from '../ort-runner';
import { ALBERT_BASE, randomAlbert } from '../random-model';
import { renderMarkdown } from '../report';
import type { BenchReport } from '../run';
import { modelShapes, squareShapes } from '../shapes';
import { ponderRunner, runSuite } from '../suite';
import { startClockLog } from '../gpu-clocks';
import { tuningAb, type TuningAbReport } from '../tuning-ab';

declare const Deno: {
  args: string[];
  readFile(path: string): Promise<Uint8Array>;
  readTextFile(path: string): Promise<string>;
  writeTextFile(path: string, text: string): Promise<void>;
  readDir(path: string): AsyncIterable<{ name: string; isDirectory: boolean }>;
  hostname(): string;
  version: { deno: string; v8: string };
  systemMemoryInfo(): { total: number };
  exit(code: number): never;
  Command: new (
    cmd: string,
    options: { args: string[]; stdout: 'piped'; stderr: 'null' },
  ) => {
    spawn(): { stdout: ReadableStream<Uint8Array>; kill(signal?: string): void; status: Promise<unknown> };
  };
};

/** nvidia-smi in the background, its stdout as lines (bench/gpu-clocks.ts); null where it is missing. */
async function spawnNvidiaSmi(args: string[]) {
  try {
    const child = new Deno.Command('nvidia-smi', { args, stdout: 'piped', stderr: 'null' }).spawn();
    async function* lines(): AsyncIterable<string> {
      const reader = child.stdout.getReader();
      const decoder = new TextDecoder();
      let rest = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const parts = (rest + decoder.decode(value, { stream: true })).split('\n');
        rest = parts.pop() ?? '';
        yield* parts;
      }
      if (rest) yield rest;
    }
    return {
      lines: lines(),
      async stop() {
        // SIGINT, as Ctrl-C: nvidia-smi flushes what it sampled and exits.
        child.kill('SIGINT');
        await child.status;
      },
    };
  } catch {
    return null;
  }
}

const args = Deno.args;
const get = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const out = get('--out') ?? 'bench-deno.json';
const runtimes = (get('--runtimes')?.split(',') ?? ['ponder', 'ort-webgpu', 'ort-wasm']) as RuntimeId[];
const only = get('--models')?.split(',');
// Stop starting suites after this many seconds, so the numbers so far are written before the
// GPU machine's 10-minute command limit.
const budgetSec = Number(get('--budget-sec') ?? 480);
const sweep = args.includes('--matmul-sweep');
const sweepBudgetSec = Number(get('--sweep-budget-sec') ?? 120);
// A JSON array of MatmulKernel `tiles` configs instead of SWEEP_CONFIGS, and which shapes to sweep.
const sweepConfigs = get('--sweep-configs');
const sweepShapeSet = (get('--sweep-shapes') ?? 'all') as SweepShapeSet;
const sweepRounds = Number(get('--sweep-rounds') ?? 1);
// The sweep starts no measurement after this many seconds from the start (default: no deadline).
const deadlineSec = Number(get('--deadline-sec') ?? Infinity);
const noSuite = args.includes('--no-suite');
// A JSON array of KernelTuning objects to compare on whole forward passes (bench/tuning-ab.ts).
const tuningAbConfigs = get('--tuning-ab');
// Copies of a 4096³ product before every timed matmul pass (table and sweep), in the same submit, so
// that the timed pass runs at sustained clocks (bench/gpu-matmul.ts warmPrelude; default 4, none with
// --quick); --warm-probe times model shapes after preludes of 0–16 copies, to see how many it takes.
// On the H200, without one the 128-row products ran 3–5× slower than after 2–4 copies
// (bench/results/archive/2026-11-27-h200-warm-probe-sweep.json).
const preludeCopies = quick ? 0 : Number(get('--warm-prelude') ?? 4);
const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);

// The bundle resolves onnxruntime-web's extern-wasm build; its .mjs/.wasm sit in ./ort/ (see README).
ortWebgpu.env.wasm.wasmPaths = new URL(/* @vite-ignore */ './ort/', import.meta.url).href;

const ctx = await requestGpu();
// The GPU's SM clock during the timed calls, where nvidia-smi exists (the GPU machine).
const clocks = noSuite ? null : await startClockLog(spawnNvidiaSmi);
if (!noSuite)
  console.log(`GPU clocks: ${clocks ? 'nvidia-smi sampling' : 'no nvidia-smi here, not sampled'}`);
console.log(`adapter: ${JSON.stringify(ctx.adapter)}`);

// Once per run: what one round trip costs this runtime before any kernel runs.
const runtimeFloor = await measureRuntimeFloor(ctx.device);
console.log(
  `runtime floor: ${runtimeFloor.error ?? runtimeFloor.records.map((r) => `${r.what} p50 ${r.p50.toFixed(2)} ms`).join(', ')}`,
);

// --matmul-probe: 1024³ (64 x 64 blocks split in two, by default) and 2048³ / 4096³ (128 x 128) at 1, 3
// and 10 products a pass, by both clocks, after the warm-up: a check on the matmul table and sweep.
let probe: MatmulProbeRecord[] | undefined;
if (args.includes('--matmul-probe')) {
  await warmUpGpu(ctx.device);
  probe = await matmulProbe(ctx.device, squareShapes([1024, 2048, 4096]), {
    reps: [1, 3, 10],
    passes: 3,
    timestamps: ctx.adapter.hasTimestampQuery,
  });
  for (const r of probe) {
    const gflops = (2 * r.M * r.N * r.K) / r.ms / 1e6;
    console.log(
      `probe ${r.what} ${r.kernel} reps ${r.reps} ${r.timing}: ${r.ms.toFixed(3)} ms (${gflops.toFixed(0)} GFLOP/s); passes ${r.allMs.map((x) => x.toFixed(3)).join(' ')}`,
    );
  }
}

let warmProbeRecords: WarmProbeRecord[] | undefined;
if (args.includes('--warm-probe')) {
  warmProbeRecords = await warmProbe(
    ctx.device,
    [
      ...modelShapes(
        ALBERT_BASE.hiddenSize,
        ALBERT_BASE.intermediateSize,
        128,
        'albert-base rows 128',
      ).filter((x) => /qkv|ffn-out/.test(x.what)),
      ...squareShapes([1024]),
    ],
    {
      dtypes: ctx.useF16 ? ['f16'] : ['f32'],
      timestamps: ctx.adapter.hasTimestampQuery,
      reps: 10,
      passes: 5,
    },
  );
  for (const r of warmProbeRecords) {
    console.log(
      `warm probe ${r.what} ${r.dtype} after ${r.preludeCopies} × 4096³: ${(r.ms * 1000).toFixed(1)} µs (${r.gflops.toFixed(0)} GFLOP/s); passes ${r.allMs.map((x) => (x * 1000).toFixed(1)).join(' ')}`,
    );
  }
}
// Only runs that time matmuls (the table, the sweep) hold the prelude's three 64 MiB buffers.
const prelude = await warmPrelude(ctx.device, !noSuite || sweep ? preludeCopies : 0);

// --dispatch-probe: what one near-empty dispatch costs (direct, chained, indirect, zero-sized
// indirect, a full-size grid, pipeline switches) by GPU clock, wall clock and CPU encode time, after
// the same warm-up (none with --quick: 1024³ products take seconds on a software adapter).
let dispatches: BenchReport['dispatchProbe'];
if (args.includes('--dispatch-probe')) {
  dispatches = await dispatchProbe(ctx.device, {
    n: Number(get('--dispatch-n') ?? 100),
    passes: 5,
    timestamps: ctx.adapter.hasTimestampQuery,
    warmUpSec: quick ? 0 : 1.5,
  });
  for (const line of dispatchProbeLines(dispatches)) console.log(line);
}

interface Loaded {
  bench: BenchModel;
  model: EncoderModel;
  onnx: Uint8Array;
}

function describeModel(
  id: string,
  kind: string,
  model: EncoderModel,
  onnx: Uint8Array,
  st: number,
): BenchModel {
  return describeBenchModel(model, { id, kind, url: '', onnxBytes: onnx.byteLength, safetensorsBytes: st });
}

async function fromFolder(id: string, kind: string, dir: string): Promise<Loaded> {
  const weights = await Deno.readFile(`${dir}/model.safetensors`);
  const model = parseCheckpoint(await Deno.readTextFile(`${dir}/config.json`), weights);
  const onnx = exportOnnx(model);
  return { bench: describeModel(id, kind, model, onnx, weights.byteLength), model, onnx };
}

const models: Loaded[] = [];
const modelNotes: string[] = [];

async function buildModels(): Promise<void> {
  try {
    for await (const e of Deno.readDir('public/models')) {
      if (e.isDirectory)
        models.push(await fromFolder(`shipped-${e.name}`, 'shipped', `public/models/${e.name}`));
    }
  } catch {
    modelNotes.push('No shipped model: public/models/ is absent.');
  }
  {
    const seed = 20261127; // the same weights as the Chromium run's albert-base-random
    const { config, safetensors } = randomAlbert(ALBERT_BASE, seed);
    const model = parseCheckpoint(JSON.stringify(config), safetensors);
    const onnx = exportOnnx(model);
    models.push({
      bench: describeModel(
        'albert-base-random',
        `random ALBERT-base shape (seed ${seed})`,
        model,
        onnx,
        safetensors.byteLength,
      ),
      model,
      onnx,
    });
  }
  for (const f of ['albert-odd', 'bert-odd']) {
    models.push(await fromFolder(`golden-${f}`, 'golden fixture', `tests/fixtures/golden/${f}`));
  }
}
if (!noSuite || tuningAbConfigs) await buildModels();
const chosen = only ? models.filter((m) => only.includes(m.bench.id)) : models;

const suites: BenchReport['suites'] = [];

let matmul: BenchReport['matmul'] = {
  records: [],
  note: 'not run yet',
  error: noSuite ? 'not run (--no-suite)' : 'not run (the run stopped before the matmul step)',
};
let matmulSweep: BenchReport['matmulSweep'];

/** The report so far: written after every suite, so a run cut short still leaves its numbers. */
function buildReport(): BenchReport {
  return {
    generatedBy: `deno run -A node_modules/.cache/ponder-bench/deno/bench.js ${args.join(' ')}`.trim(),
    date: new Date().toISOString(),
    mode: quick ? 'smoke' : 'default',
    machine: {
      hostname: Deno.hostname(),
      cpus: 'see the run log',
      cores: navigator.hardwareConcurrency,
      memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
      node: `Deno ${Deno.version.deno}`,
    },
    browser: { name: 'Deno WebGPU (wgpu)', version: Deno.version.deno, flags: [] },
    adapter: { ...ctx.adapter, features: ctx.device.features ? [...ctx.device.features].sort() : [] },
    software: ctx.adapter.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(ctx.adapter.description),
    models: chosen.map((m) => m.bench),
    modelNotes,
    suites,
    matmul,
    runtimeFloor,
    ...(matmulSweep ? { matmulSweep } : {}),
    ...(probe ? { matmulProbe: probe } : {}),
    ...(warmProbeRecords ? { warmProbe: warmProbeRecords } : {}),
    ...(tuningAbReports ? { tuningAb: tuningAbReports } : {}),
    ...(dispatches ? { dispatchProbe: dispatches } : {}),
    elapsedSec: (performance.now() - started) / 1000,
  };
}

async function save(): Promise<BenchReport> {
  const report = buildReport();
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + '\n');
  return report;
}

const shapes = [
  ...chosen
    .filter((m) => m.bench.hiddenSize >= 512)
    .flatMap(({ bench: m }) =>
      (quick ? [16] : [16, 128, 1024]).flatMap((r) =>
        modelShapes(m.hiddenSize, m.intermediate, r, `${m.id} rows ${r}`),
      ),
    ),
  // --quick is for software adapters, where 1024³ alone takes seconds.
  ...squareShapes(quick ? [256] : [1024, 2048, 4096]),
];
if (!noSuite) {
  try {
    const budget = quick ? 2e8 : 2e11;
    const records = await matmulBench(ctx.device, shapes, {
      dtypes: ctx.useF16 ? ['f32', 'f16'] : ['f32'],
      timestamps: ctx.adapter.hasTimestampQuery,
      flopBudget: budget,
      passes: 5,
      warmUpSec: quick ? 0 : 1.5,
      prelude: prelude.dispatches,
    });
    matmul = {
      records,
      note:
        `our WGSL matmul (default tiles), median of 5 passes of ${leastReps(budget)} to 200 products (FLOP budget ${budget} per pass)` +
        (quick ? '' : ', after 1.5 s of warm-up work') +
        (prelude.copies
          ? `; every timed pass after ${prelude.copies} untimed 4096³ f32 products in the same submit (sustained clocks)`
          : ''),
    };
  } catch (error) {
    matmul = { records: [], error: String(error), note: '' };
  }
  await save();
  console.log(`matmul: ${matmul.error ?? `${matmul.records.length} shapes`} (${seconds()} s)`);
}

// --tuning-ab: whole forward passes under each KernelTuning, back to back (bench/tuning-ab.ts), for the
// models of at least H 512 among those chosen.
let tuningAbReports: TuningAbReport[] | undefined;
if (tuningAbConfigs) {
  tuningAbReports = [];
  const tunings = JSON.parse(tuningAbConfigs) as Record<string, unknown>[];
  for (const { bench, model } of chosen.filter((m) => m.bench.hiddenSize >= 512)) {
    tuningAbReports.push(
      await tuningAb(
        bench,
        tunings,
        // `"weights": "f32"` in an entry is not a KernelTuning field: it stores that classifier's
        // weights as f32 where the adapter would take f16 (allowF16: false).
        async ({ weights, ...kernelTuning }) =>
          createClassifier(weights === 'f32' ? { ...ctx, useF16: false } : ctx, model, undefined, {
            kernelTuning,
          }),
        {
          seq: Number(get('--ab-seq') ?? 128),
          ...(quick ? { passes: 2, rounds: 1, tries: 1 } : { passes: 20, rounds: 3, tries: 3 }),
          log: (line) => console.log(line),
        },
      ),
    );
    await save();
  }
}

for (const { bench, model, onnx } of noSuite ? [] : chosen) {
  for (const runtime of runtimes) {
    const big = bench.hiddenSize >= 512;
    const spec: SuiteSpec = {
      runtime,
      model: bench,
      seed: 1,
      seqs: [16, 64, 128],
      batches: [8, 32],
      throughputSeq: big ? 128 : 32,
      warmup: quick ? 1 : 5,
      iterations: quick ? 3 : big ? 50 : 30,
    };
    if (quick && big) Object.assign(spec, { seqs: [16], batches: [8], throughputSeq: 16 });
    // ORT's wasm runs on one CPU thread here (no cross-origin isolation in Deno): a batch of 32 × 128
    // tokens of ALBERT-base would take tens of seconds per call.
    if (runtime === 'ort-wasm' && big) Object.assign(spec, { batches: [8], iterations: quick ? 2 : 5 });
    if ((performance.now() - started) / 1000 > budgetSec) {
      const { model: _skip, ...rest } = spec;
      void _skip;
      suites.push({
        spec: rest,
        runtime,
        model: bench.id,
        ok: false,
        error: `not run: the ${budgetSec} s budget of this run was spent`,
        notes: [],
        latency: [],
        throughput: [],
        criteria: [],
        perLayerGpuMs: null,
      });
      continue;
    }
    if (runtime === 'ponder') {
      spec.criteria = criteriaFor(bench);
    }
    const t = performance.now();
    const result = await runSuite(
      spec,
      async (s) => {
        switch (s.runtime) {
          case 'ponder':
            return ponderRunner(await createClassifier(ctx, model, undefined, {}));
          case 'ort-webgpu':
            return ortRunner(ortWebgpu, onnx, 'webgpu', ['Deno: ORT requests its own WebGPU device']);
          case 'ort-wasm':
            return ortRunner(ortWebgpu, onnx, 'wasm');
          default:
            throw new Error(`${s.runtime} is not run on Deno (wasm-only; see the ORT wasm row)`);
        }
      },
      clocks ? { clockWindow: () => clocks.window() } : {},
    );
    const { model: _m, ...rest } = spec;
    void _m;
    suites.push({ ...result, spec: rest });
    await save();
    console.log(
      `${bench.id} × ${runtime}: ${result.ok ? 'ok' : `FAILED ${result.error}`} (${((performance.now() - t) / 1000).toFixed(1)} s; ${seconds()} s)`,
    );
  }
}

// The sweep runs last, in what is left before --deadline-sec (its own budget at most), so a slow
// suite shortens the sweep rather than the command running past the machine's limit.
const sweepLeft = deadlineSec - (performance.now() - started) / 1000;
const sweepSec = Math.min(sweepBudgetSec, sweepLeft);
if (sweep && sweepLeft < 5) {
  matmulSweep = {
    configs: [],
    records: [],
    timing: ctx.adapter.hasTimestampQuery ? 'timestamp-query' : 'wall',
    note: '',
    error: `not run: ${seconds()} s of the --deadline-sec ${deadlineSec} s were spent`,
    elapsedSec: 0,
  };
  await save();
  console.log(`matmul sweep: ${matmulSweep.error}`);
} else if (sweep) {
  const t = performance.now();
  console.log(`matmul sweep: budget ${sweepSec.toFixed(0)} s (${seconds()} s)`);
  try {
    matmulSweep = await runMatmulSweep(ctx.device, {
      timestamps: ctx.adapter.hasTimestampQuery,
      f16: ctx.useF16,
      quick,
      budgetSec: sweepSec,
      ...(sweepConfigs ? { configs: JSON.parse(sweepConfigs) as SweepConfig[] } : {}),
      shapes: sweepShapeSet,
      rounds: sweepRounds,
      prelude,
      log: (line) => console.log(line),
    });
  } catch (error) {
    matmulSweep = {
      configs: [],
      records: [],
      timing: ctx.adapter.hasTimestampQuery ? 'timestamp-query' : 'wall',
      note: '',
      error: String(error),
      elapsedSec: (performance.now() - t) / 1000,
    };
  }
  await save();
  const failed = matmulSweep.records.filter((r) => !r.ok).length;
  console.log(
    `matmul sweep: ${matmulSweep.records.length - failed} cells, ${failed} failed or not run, ` +
      `${matmulSweep.elapsedSec.toFixed(1)} s (${seconds()} s)`,
  );
}

prelude.destroy();

// The clock windows' statistics, now that the sampler has stopped (its output comes in blocks).
if (clocks) {
  await clocks.finish();
  console.log('GPU clocks: sampled by nvidia-smi every 50 ms');
}
const report = await save();
console.log(renderMarkdown(report, out));
ctx.device.destroy();
// ORT's wasm threads may keep the event loop alive.
Deno.exit(0);
