import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// `npm run build` produces the library (an ES module with the WGSL inlined) in dist/.
// `npm start` serves the demo page (index.html) and the e2e harness pages.
export default defineConfig({
  server: { host: '127.0.0.1' },
  // Not a single-page app: a missing file (say, a model folder not shipped yet) must be a 404, not index.html.
  appType: 'mpa',
  resolve: {
    // The tokenizer (@xenova/transformers) imports ONNX Runtime but never needs it: see the stub.
    alias: {
      'onnxruntime-web': fileURLToPath(new URL('./src/loading/onnxruntime-stub.ts', import.meta.url)),
      'onnxruntime-node': fileURLToPath(new URL('./src/loading/onnxruntime-stub.ts', import.meta.url)),
    },
  },
  // Pre-bundle the lazily imported tokenizer at server start: discovering it on first use makes the
  // dev server reload the page, which would cut a running test short.
  optimizeDeps: { include: ['@xenova/transformers/src/tokenizers.js'] },
  build: {
    target: 'es2022',
    outDir: 'dist',
    lib: {
      // ponder-classifier.js only registers the <ponder-classifier> tag; it shares ponder-web.js's modules.
      entry: { 'ponder-web': 'src/index.ts', 'ponder-classifier': 'src/element/define.ts' },
      formats: ['es'],
      fileName: (_format, entryName) => `${entryName}.js`,
    },
    // The code both entries share is a chunk; name it for what it is rather than after one entry.
    rollupOptions: {
      output: {
        chunkFileNames: (chunk) =>
          chunk.name === 'ponder-classifier' ? 'ponder-web-core-[hash].js' : '[name]-[hash].js',
      },
    },
    sourcemap: true,
    // public/ holds the demo's model (17.5 MB); the library package does not ship it.
    copyPublicDir: false,
  },
});
