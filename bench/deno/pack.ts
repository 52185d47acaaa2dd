/**
 * `npm run bench:deno-pack`: builds the Deno benchmark bundle and packs it, with onnxruntime-web's
 * wasm, into one xz tarball small enough to carry to the GPU machine next to Deno itself:
 *   node_modules/.cache/ponder-bench/deno.tar.xz  →  deno/bench.js, deno/ort/ort-wasm-simd-threaded.asyncify.{mjs,wasm}
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';

const root = 'node_modules/.cache/ponder-bench';
execFileSync('npx', ['vite', 'build', '--config', 'bench/deno/vite.config.ts'], { stdio: 'inherit' });
mkdirSync(`${root}/deno/ort`, { recursive: true });
for (const ext of ['mjs', 'wasm']) {
  const name = `ort-wasm-simd-threaded.asyncify.${ext}`;
  copyFileSync(`node_modules/onnxruntime-web/dist/${name}`, `${root}/deno/ort/${name}`);
}
execFileSync('tar', ['-C', root, '-cJf', `${root}/deno.tar.xz`, 'deno'], {
  stdio: 'inherit',
  env: { ...process.env, XZ_OPT: '-6 -T2' },
});
console.log(`${root}/deno.tar.xz: ${(statSync(`${root}/deno.tar.xz`).size / 2 ** 20).toFixed(1)} MiB`);
