/** The summary JSON's shape and the tables printed on stdout. */
import type { CriterionKind, ExitCriterion } from '../../src/exit';
import type { AdapterDescription } from '../../src/gpu/device';
import type { TaskMetrics } from './metrics';
import type { SweepRow } from './sweep';

export interface Stats {
  p50: number;
  p95: number;
  mean: number;
}

export interface BudgetChoice {
  kind: CriterionKind;
  /** null: no setting of this criterion stays within the budget. */
  setting: string | null;
  label: string | null;
  averageLayers: number | null;
  speedUp: number | null;
  metric: number | null;
}

export interface Summary {
  tool: 'ponder-web eval';
  createdAt: string;
  gitCommit: string | null;
  task: string;
  data: { file: string; examples: number; limit: number | null };
  model: {
    source: string;
    architecture: string;
    numLayers: number;
    numLabels: number;
    labels: string[];
    problemType: string;
    weightDtype: string;
    supportedCriteria: CriterionKind[] | null;
  };
  /** The criterion that chose the exit layers (the model's default when --criterion was not given). */
  criterion: {
    label: string;
    value: ExitCriterion;
    from: 'argument' | 'model default' | 'sweep: full depth';
  };
  batch: number;
  metrics: TaskMetrics;
  /** Mean exit layer: "average inference layers" of the early-exit papers. */
  averageLayers: number;
  /** numLayers / averageLayers (PALBERT's ratio; PABEE's code prints 1 − avg/L instead). */
  speedUp: number;
  /** Layers that did work, when the library reports skipped layers (GPU-side exit). */
  averageComputedLayers: number | null;
  /** exitLayerHistogram[n − 1] = examples that exited at layer n. */
  exitLayerHistogram: number[];
  /** The engine's exit layers against the CPU criteria (f32) on the same per-layer outputs. */
  exitCheck: { checked: number; disagreements: number[] };
  /** Per example: the wall time, in the page, of the classify() call that held it (batch 1: its own call). */
  latencyMs: Stats;
  /** Per example: GPU time of the classify() call that held it, when the adapter has timestamp-query. */
  gpuMs: Stats | null;
  /** Examples per second of classify() time (model loading and the first, warm-up batch excluded). */
  throughput: number;
  wallSeconds: number;
  adapter: AdapterDescription;
  timingsRepresentative: boolean;
  notes: string[];
  truncatedExamples: number;
  sweep: {
    budget: number;
    metric: string;
    fullDepth: number;
    cheapest: BudgetChoice[];
  } | null;
  files: string[];
}

const fmt = (v: number | null | undefined, digits = 4): string =>
  v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits);

/** True for software adapters (SwiftShader, lavapipe, llvmpipe), by the flag or, for older browsers, by name. */
export function isSoftwareAdapter(a: AdapterDescription): boolean {
  const names = `${a.vendor} ${a.architecture} ${a.device} ${a.description}`.toLowerCase();
  return a.isFallbackAdapter || /swiftshader|lavapipe|llvmpipe|software/.test(names);
}

function metricLines(m: TaskMetrics): [string, string][] {
  const out: [string, string][] = [];
  if (m.accuracy !== undefined) out.push(['accuracy', fmt(m.accuracy)]);
  if (m.mcc !== undefined) out.push(['MCC', fmt(m.mcc)]);
  if (m.f1 !== undefined) out.push(['F1', fmt(m.f1)]);
  if (m.pearson !== undefined) out.push(['Pearson', fmt(m.pearson)]);
  if (m.spearman !== undefined) out.push(['Spearman', fmt(m.spearman)]);
  if (!['acc', 'mcc'].includes(m.primaryName)) out.push([m.primaryName, fmt(m.primary)]);
  return out;
}

export function formatSummary(s: Summary): string {
  const a = s.adapter;
  const rows: [string, string][] = [
    ['task', `${s.task}: ${s.data.examples} examples of ${s.data.file}`],
    [
      'model',
      `${s.model.source} (${s.model.architecture}, ${s.model.numLayers} layers, ${s.model.weightDtype} weights)`,
    ],
    ['criterion', `${s.criterion.label} (${s.criterion.from})`],
    ...metricLines(s.metrics),
    ['average layers', `${fmt(s.averageLayers, 2)} of ${s.model.numLayers}`],
    ['speed-up', `${fmt(s.speedUp, 2)}x (layers / average layers)`],
  ];
  if (s.averageComputedLayers !== null) rows.push(['computed layers', fmt(s.averageComputedLayers, 2)]);
  const agree = s.exitCheck.checked - s.exitCheck.disagreements.length;
  rows.push([
    'exit check',
    `${agree}/${s.exitCheck.checked} exits equal the CPU criteria on the same outputs`,
  ]);
  rows.push(
    [
      'latency p50/p95',
      `${fmt(s.latencyMs.p50, 1)} / ${fmt(s.latencyMs.p95, 1)} ms ` +
        (s.batch === 1 ? 'per example' : `per classify() call of ${s.batch} examples`),
    ],
    ['throughput', `${fmt(s.throughput, 1)} examples/s`],
  );
  if (s.gpuMs) rows.push(['GPU time p50/p95', `${fmt(s.gpuMs.p50, 2)} / ${fmt(s.gpuMs.p95, 2)} ms per call`]);
  rows.push([
    'adapter',
    [a.vendor, a.architecture, a.device || a.description].filter(Boolean).join(' / ') +
      (isSoftwareAdapter(a) ? ' (software)' : ''),
  ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  for (const note of s.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

export function formatSweep(rows: readonly SweepRow[], s: NonNullable<Summary['sweep']>): string {
  const head = ['criterion', 'setting', s.metric, 'avg layers', 'speed-up'];
  const body = s.cheapest.map((c) =>
    c.setting === null
      ? [c.kind, `none within ${s.budget}`, '', '', '']
      : [c.kind, c.setting || '-', fmt(c.metric), fmt(c.averageLayers, 2), `${fmt(c.speedUp, 2)}x`],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    `sweep: ${rows.length} settings; full depth ${s.metric} ${fmt(s.fullDepth)}; cheapest setting per criterion ` +
      `with ${s.metric} ≥ ${fmt(s.fullDepth - s.budget)} (budget ${s.budget}):`,
    line(head),
    ...body.map(line),
  ].join('\n');
}
