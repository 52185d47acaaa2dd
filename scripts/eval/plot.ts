/**
 * The sweep's metric-versus-average-layers curve as a standalone SVG, drawn with Observable Plot on a linkedom
 * document. Plot is a maintained charting library whose output is plain SVG built through DOM calls, so a small DOM
 * implementation is all it needs in Node (no headless browser, no canvas); the chart code stays a few declarative
 * marks. The legend is drawn as marks inside the SVG (Plot's own legends are HTML, which an .svg file cannot hold).
 */
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import type { SweepRow } from './sweep';

export interface PlotOptions {
  title: string;
  numLayers: number;
  budget: number;
  /** Per criterion, the cheapest setting within the budget (drawn as rings). */
  chosen: readonly SweepRow[];
}

export function sweepSvg(rows: readonly SweepRow[], options: PlotOptions): string {
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const full = rows.find((r) => r.kind === 'none')!.metrics.primary;
  const metricName = rows[0]!.metrics.primaryName;
  // Series names: 'none' would read as a CSS colour (transparent) to Plot's colour channel.
  const series = (kind: string): string => (kind === 'none' ? 'full depth' : kind);
  const order = [...new Set(rows.map((r) => series(r.kind)))];
  const points = rows
    .filter((r) => Number.isFinite(r.metrics.primary))
    .map((r) => ({ kind: series(r.kind), x: r.averageLayers, y: r.metrics.primary, label: r.label }))
    // Series in the rows' order (the criteria's own order), each along x.
    .sort((a, b) => (a.kind === b.kind ? a.x - b.x : order.indexOf(a.kind) - order.indexOf(b.kind)));
  const chosen = options.chosen.map((r) => ({
    kind: series(r.kind),
    x: r.averageLayers,
    y: r.metrics.primary,
  }));
  const kinds = [...new Set(points.map((p) => p.kind))];
  const legend = kinds.map((kind, i) =>
    Plot.text([kind], {
      frameAnchor: 'bottom-right',
      dx: -10,
      dy: -10 - 15 * (kinds.length - 1 - i),
      text: (d: string) => `● ${d}`,
      fill: (d: string) => d,
      textAnchor: 'end',
      fontSize: 12,
    }),
  );
  const svg = Plot.plot({
    document,
    width: 760,
    height: 460,
    marginTop: 30,
    marginRight: 20,
    grid: true,
    style: { fontFamily: 'system-ui, sans-serif', fontSize: '12px', background: 'white' },
    x: { label: `average layers (of ${options.numLayers}) →`, domain: [0, options.numLayers], nice: true },
    y: { label: `↑ ${metricName}`, nice: true },
    color: { type: 'categorical', domain: kinds, scheme: 'tableau10' },
    marks: [
      Plot.ruleY([full], { stroke: '#666' }),
      Plot.ruleY([full - options.budget], { stroke: '#999', strokeDasharray: '4,3' }),
      Plot.text([`full depth ${full.toFixed(4)}; dashed: budget −${options.budget}`], {
        frameAnchor: 'top-left',
        dx: 4,
        dy: -18,
        fill: '#444',
        textAnchor: 'start',
      }),
      Plot.text([options.title], {
        frameAnchor: 'top-right',
        dy: -18,
        fill: '#222',
        textAnchor: 'end',
        fontWeight: 'bold',
      }),
      // PonderNet's settings are seeds, not a knob along a curve: dots only.
      Plot.line(
        points.filter((p) => p.kind !== 'pondernet-sample'),
        { x: 'x', y: 'y', z: 'kind', stroke: 'kind', strokeWidth: 1.5 },
      ),
      Plot.dot(points, { x: 'x', y: 'y', fill: 'kind', r: 2.5, title: 'label' }),
      Plot.dot(chosen, { x: 'x', y: 'y', stroke: 'kind', r: 7, strokeWidth: 2 }),
      ...legend,
    ],
  }) as unknown as Element;
  svg.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  return `<?xml version="1.0" encoding="UTF-8"?>\n${svg.outerHTML}\n`;
}
