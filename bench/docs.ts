/**
 * Node side of the report: docs/benchmarks.md from every bench/results/*.json (the Chromium run first).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { renderDocs } from './report';
import type { BenchReport } from './run';

/** `npm run bench:report`: rewrites docs/benchmarks.md from bench/results/*.json (and formats those). */
export async function writeDocs(): Promise<string> {
  const files = readdirSync('bench/results')
    .filter((f) => f.endsWith('.json'))
    .sort((x, y) => (x === 'chromium.json' ? -1 : y === 'chromium.json' ? 1 : x.localeCompare(y)));
  const runs: { path: string; report: BenchReport }[] = [];
  for (const f of files) {
    const path = `bench/results/${f}`;
    const text = readFileSync(path, 'utf8');
    // Results are committed too: keep them in the repository's style (`npm run lint` checks them).
    const formatted = await format(text, { ...((await resolveConfig(path)) ?? {}), parser: 'json' });
    if (formatted !== text) writeFileSync(path, formatted);
    runs.push({ path, report: JSON.parse(text) as BenchReport });
  }
  // Formatted like every other file, so `npm run lint` (prettier --check) passes on the generated page.
  const options = (await resolveConfig('docs/benchmarks.md')) ?? {};
  const md = await format(renderDocs(runs), { ...options, parser: 'markdown' });
  writeFileSync('docs/benchmarks.md', md);
  return md;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  void writeDocs().then(() => console.log('wrote docs/benchmarks.md'));
}
