import { defineConfig } from 'vite';

// Bundles the f16 kernel suite for Deno (which cannot import `?raw` WGSL): one ES module with the
// shaders inlined, written under node_modules/.cache so that it is never committed.
export default defineConfig({
  logLevel: 'warn',
  build: {
    target: 'es2022',
    outDir: 'node_modules/.cache/ponder-f16',
    emptyOutDir: true,
    minify: false,
    lib: {
      entry: 'tests/f16/f16-suite.ts',
      formats: ['es'],
      fileName: () => 'f16-suite.js',
    },
  },
});
