import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Bundles the SST-2 cross-check for Deno (which cannot import `?raw` WGSL), tokenizer included, under
// node_modules/.cache so that it is never committed. The onnxruntime alias is the root config's: only
// transformers.js' tokenizers module is used, never its ONNX runtime.
const stub = fileURLToPath(new URL('../../src/loading/onnxruntime-stub.ts', import.meta.url));
export default defineConfig({
  logLevel: 'warn',
  publicDir: false,
  resolve: { alias: { 'onnxruntime-web': stub, 'onnxruntime-node': stub } },
  build: {
    target: 'es2022',
    outDir: 'node_modules/.cache/ponder-crosscheck',
    emptyOutDir: true,
    minify: false,
    lib: {
      entry: { 'deno-run': 'scripts/crosscheck/deno-run.ts' },
      formats: ['es'],
      fileName: (_format, name) => `${name}.js`,
    },
  },
});
