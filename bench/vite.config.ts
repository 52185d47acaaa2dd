import { defineConfig } from 'vite';

// Builds the benchmark page (bench/page/) with the REAL onnxruntime-web and transformers.js: unlike
// the library's vite.config.ts, nothing is aliased to the ONNX Runtime stub here. Output goes to an
// ignored cache folder that bench/serve.ts serves.
export default defineConfig({
  root: 'bench/page',
  base: '/',
  logLevel: 'warn',
  // Nothing from public/ (the shipped model is served from the models cache, not copied here).
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: '../../node_modules/.cache/ponder-bench/site',
    emptyOutDir: true,
    minify: false,
    sourcemap: false,
    chunkSizeWarningLimit: 100_000,
  },
});
