/**
 * The eval page loads the built library, dist/ponder-web.js, exactly as a user's page would. It is rebuilt
 * (`vite build`, the first half of `npm run build`) when missing or older than any file it is built from.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestMtime(path: string): number {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return path.endsWith('.test.ts') ? 0 : stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** True when dist/ponder-web.js is missing or older than src/, shaders/ or vite.config.ts. */
export function distIsStale(repoRoot: string): boolean {
  let built: number;
  try {
    built = statSync(join(repoRoot, 'dist', 'ponder-web.js')).mtimeMs;
  } catch {
    return true;
  }
  const sources = ['src', 'shaders', 'vite.config.ts'].map((p) => newestMtime(join(repoRoot, p)));
  return Math.max(...sources) > built;
}

/** Builds dist/ when stale. emptyOutDir: false keeps dist/types (from `npm run build`'s tsc step) in place. */
export async function ensureDist(repoRoot: string, log: (line: string) => void): Promise<boolean> {
  if (!distIsStale(repoRoot)) return false;
  log('dist/ is missing or older than src/: building it (vite build) ...');
  const { build } = await import('vite');
  await build({
    root: repoRoot,
    configFile: join(repoRoot, 'vite.config.ts'),
    logLevel: 'warn',
    build: { emptyOutDir: false },
  });
  return true;
}
