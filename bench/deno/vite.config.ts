import { defineConfig } from 'vite';

// Bundles bench/deno/bench.ts for Deno, which cannot import `?raw` WGSL: one ES module with the
// shaders inlined. Written to an ignored cache
// folder; bench/README.md says how it travels to the GPU machine.
export default defineConfig({
  logLevel: 'warn',
  // Nothing from public/ (the shipped model is served from the models cache, not copied here).
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: 'node_modules/.cache/ponder-bench/deno',
    emptyOutDir: true,
    minify: false,
    chunkSizeWarningLimit: 100_000,
    lib: {
      entry: { bench: 'bench/deno/bench.ts' },
      formats: ['es'],
      fileName: (_format, name) => `${name}.js`,
    },
    rollupOptions: { output: { codeSplitting: false } as Record<string, unknown> },
  },
  // onnxruntime-web's build that loads its wasm from env.wasm.wasmPaths: library mode would inline
  // the 27 MB binary as base64. bench/deno/bench.ts points wasmPaths at ./ort/ beside the bundle,
  // where `npm run bench:deno-bundle` copies the files.
  resolve: { conditions: ['onnxruntime-web-use-extern-wasm', 'module', 'browser', 'import', 'default'] },
});
