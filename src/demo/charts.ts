/**
 * The demo's plots, drawn with Observable Plot. Each function returns a finished element (SVG, or a figure with its
 * legend) for the caller to put in place; every chart has a title, axis labels and, where it has several series, a
 * legend. Layers are a band scale 1..L so that a run that is still filling in keeps its axis, skipped layers get a
 * grey band and the exit layer a tinted one.
 */
import * as Plot from '@observablehq/plot';

/** One layer as the charts see it. Optional fields are absent when the model or adapter lacks them. */
export interface LayerRow {
  layer: number;
  probabilities: number[];
  lambda?: number;
  /** p(n): probability of exiting exactly at layer n. */
  p?: number;
  /** CDF_n: probability of having exited by layer n. */
  cdf?: number;
  /** The quantity the chosen criterion tests at this layer (see ExitResult.statistic). */
  statistic?: number;
  gpuTimeMs?: number;
}

export interface LayerChartContext {
  width: number;
  numLayers: number;
  labels: readonly string[];
  /** The exit layer once known; layers after it are drawn as skipped. */
  exitLayer?: number;
  /** The layer highlighted from the keyboard. */
  selected?: number;
}

const COLORS = {
  p: '#60a5fa',
  lambda: '#f97316',
  cdf: '#16a34a',
  threshold: '#b91c1c',
  exit: '#fef3c7',
  skipped: '#eceef2',
  statistic: '#7c3aed',
  time: '#0891b2',
};

const CLASS_COLORS = ['#dc2626', '#2563eb', '#16a34a', '#a16207', '#7c3aed', '#db2777', '#0f766e', '#4b5563'];

function layers(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** Background bands: skipped layers grey, the exit layer tinted, the keyboard-selected layer outlined. */
function backdrop(ctx: LayerChartContext, top: number): Plot.Markish[] {
  const marks: Plot.Markish[] = [];
  if (ctx.exitLayer !== undefined) {
    const skipped = layers(ctx.numLayers).filter((n) => n > ctx.exitLayer!);
    marks.push(Plot.barY(skipped, { x: (d: number) => d, y1: 0, y2: top, fill: COLORS.skipped }));
    marks.push(Plot.barY([ctx.exitLayer], { x: (d: number) => d, y1: 0, y2: top, fill: COLORS.exit }));
  }
  if (ctx.selected !== undefined) {
    marks.push(
      Plot.barY([ctx.selected], {
        x: (d: number) => d,
        y1: 0,
        y2: top,
        fill: 'none',
        stroke: 'currentColor',
        strokeDasharray: '3,2',
      }),
    );
  }
  return marks;
}

function xScale(ctx: LayerChartContext): Plot.ScaleOptions {
  return { type: 'band', domain: layers(ctx.numLayers), label: 'Layer', padding: 0.15 };
}

function base(ctx: LayerChartContext, title: string, description: string): Plot.PlotOptions {
  return {
    width: Math.max(280, ctx.width),
    height: Math.max(180, Math.min(240, ctx.width * 0.5)),
    marginLeft: 44,
    marginBottom: 36,
    title,
    ariaLabel: title,
    ariaDescription: description,
    style: { fontSize: '12px', background: 'transparent' },
  };
}

/** λ_n, p(n) and CDF_n per layer, with the threshold line q (when the criterion is Q-exit). */
export function exitDistributionChart(
  rows: readonly LayerRow[],
  ctx: LayerChartContext,
  q: number | undefined,
): Element {
  const withLambda = rows.filter((r) => r.lambda !== undefined);
  const marks: Plot.Markish[] = [
    ...backdrop(ctx, 1),
    Plot.barY(withLambda, { x: 'layer', y: 'p', fill: () => 'p(n): exits exactly here' }),
    Plot.lineY(withLambda, {
      x: 'layer',
      y: 'lambda',
      stroke: () => 'λ_n: exits here if it got here',
      marker: 'dot',
    }),
    Plot.lineY(withLambda, {
      x: 'layer',
      y: 'cdf',
      stroke: () => 'CDF_n: has exited by here',
      marker: 'dot',
    }),
    Plot.ruleY([0]),
  ];
  if (q !== undefined) marks.push(...thresholdMarks(ctx, q, `q = ${q}`));
  return Plot.plot({
    ...base(
      ctx,
      'Exit distribution per layer',
      'Bars: p(n), the probability of exiting at layer n. Lines: λ_n and the cumulative exit probability CDF_n; dashed: the threshold q.',
    ),
    x: xScale(ctx),
    y: { domain: [0, 1], label: 'Probability', grid: true },
    color: {
      legend: true,
      domain: ['p(n): exits exactly here', 'λ_n: exits here if it got here', 'CDF_n: has exited by here'],
      range: [COLORS.p, COLORS.lambda, COLORS.cdf],
    },
    marks,
  });
}

/** A dashed horizontal threshold line, labelled at the last layer. */
function thresholdMarks(ctx: LayerChartContext, value: number, label: string): Plot.Markish[] {
  return [
    Plot.ruleY([value], { stroke: COLORS.threshold, strokeDasharray: '6,3', strokeWidth: 1.5 }),
    Plot.text([value], {
      x: ctx.numLayers,
      y: (d: number) => d,
      text: () => label,
      dy: -6,
      textAnchor: 'end',
      fill: COLORS.threshold,
    }),
  ];
}

/** Class probabilities at every layer that ran: one line per class. */
export function classProbabilityChart(
  rows: readonly LayerRow[],
  ctx: LayerChartContext,
  title = 'Class probabilities per layer',
): Element {
  const long = rows.flatMap((r) =>
    r.probabilities.map((p, c) => ({ layer: r.layer, label: ctx.labels[c] ?? `class ${c}`, p })),
  );
  return Plot.plot({
    ...base(ctx, title, 'One line per class: its probability after each layer.'),
    x: xScale(ctx),
    y: { domain: [0, 1], label: 'Probability', grid: true },
    color: { legend: true, domain: [...ctx.labels], range: CLASS_COLORS },
    marks: [
      ...backdrop(ctx, 1),
      Plot.lineY(long, { x: 'layer', y: 'p', stroke: 'label', z: 'label', marker: 'dot' }),
      Plot.ruleY([0]),
    ],
  });
}

/** What the criterion tests per layer (max probability, entropy, agreement count, ...) against its threshold. */
export function criterionChart(
  rows: readonly LayerRow[],
  ctx: LayerChartContext,
  statisticName: string,
  threshold: { value: number; label: string } | undefined,
  yMax: number,
): Element {
  const data = rows.filter((r) => r.statistic !== undefined && Number.isFinite(r.statistic));
  const marks: Plot.Markish[] = [
    ...backdrop(ctx, yMax),
    Plot.lineY(data, { x: 'layer', y: 'statistic', stroke: COLORS.statistic, marker: 'dot' }),
    Plot.ruleY([0]),
  ];
  if (threshold) marks.push(...thresholdMarks(ctx, threshold.value, threshold.label));
  return Plot.plot({
    ...base(
      ctx,
      `The criterion's test: ${statisticName}`,
      `${statisticName} after each layer; dashed: the threshold.`,
    ),
    x: xScale(ctx),
    y: { domain: [0, yMax], label: statisticName, grid: true },
    marks,
  });
}

/** GPU time per layer (timestamp queries). */
export function gpuTimeChart(rows: readonly LayerRow[], ctx: LayerChartContext): Element {
  const data = rows.filter((r) => r.gpuTimeMs !== undefined);
  const top = Math.max(0.001, ...data.map((r) => r.gpuTimeMs!)) * 1.15;
  return Plot.plot({
    ...base(ctx, 'GPU time per layer', 'Milliseconds of GPU time each layer took, from timestamp queries.'),
    x: xScale(ctx),
    y: { domain: [0, top], label: 'GPU time (ms)', grid: true },
    marks: [
      ...backdrop(ctx, top),
      Plot.barY(data, { x: 'layer', y: 'gpuTimeMs', fill: COLORS.time }),
      Plot.ruleY([0]),
    ],
  });
}

export interface TradeoffPoint {
  criterion: string;
  setting: string;
  averageLayers: number;
  accuracy: number;
}

/** Accuracy against average layers, one line per criterion (each point one threshold). */
export function tradeoffChart(
  points: readonly TradeoffPoint[],
  width: number,
  numLayers: number,
  current?: TradeoffPoint,
): Element {
  const criteria = [...new Set(points.map((p) => p.criterion))];
  const marks: Plot.Markish[] = [
    Plot.lineY(points, {
      x: 'averageLayers',
      y: 'accuracy',
      stroke: 'criterion',
      z: 'criterion',
      sort: 'averageLayers',
    }),
    Plot.dot(points, { x: 'averageLayers', y: 'accuracy', stroke: 'criterion', r: 2.5 }),
  ];
  if (current) {
    marks.push(
      Plot.dot([current], {
        x: 'averageLayers',
        y: 'accuracy',
        r: 7,
        stroke: 'currentColor',
        strokeWidth: 2,
      }),
    );
  }
  const accuracies = points.map((p) => p.accuracy);
  const low = Math.max(0, Math.floor((Math.min(...accuracies, 1) - 0.05) * 20) / 20);
  return Plot.plot({
    width: Math.max(280, width),
    height: Math.max(220, Math.min(320, width * 0.6)),
    marginLeft: 48,
    marginBottom: 40,
    title: 'Accuracy against average layers',
    ariaLabel: 'Accuracy against average layers, per criterion',
    ariaDescription:
      'Each line is one exit criterion; each point one threshold. Up and left is better: more accurate with fewer layers. The ringed point is the current setting.',
    style: { fontSize: '12px', background: 'transparent' },
    x: { domain: [1, numLayers], label: 'Average layers run', grid: true },
    y: { domain: [low, 1], label: 'Accuracy', grid: true, tickFormat: '.0%' },
    color: { legend: true, domain: criteria, range: CLASS_COLORS },
    marks,
  });
}

/** How many examples left at each layer, for the current criterion and threshold. */
export function exitHistogramChart(exitLayers: readonly number[], width: number, numLayers: number): Element {
  const counts = layers(numLayers).map((layer) => ({
    layer,
    count: exitLayers.filter((l) => l === layer).length,
  }));
  return Plot.plot({
    width: Math.max(280, width),
    height: Math.max(180, Math.min(260, width * 0.45)),
    marginLeft: 44,
    marginBottom: 36,
    title: 'Exit layers',
    ariaLabel: 'Histogram of exit layers',
    ariaDescription: 'How many sentences left the network at each layer with the current criterion.',
    style: { fontSize: '12px', background: 'transparent' },
    x: { type: 'band', domain: layers(numLayers), label: 'Exit layer', padding: 0.15 },
    y: { label: 'Sentences', grid: true },
    marks: [
      Plot.barY(counts, { x: 'layer', y: 'count', fill: COLORS.p }),
      Plot.text(counts, {
        x: 'layer',
        y: 'count',
        text: (d: { count: number }) => (d.count ? d.count : ''),
        dy: -6,
      }),
      Plot.ruleY([0]),
    ],
  });
}
