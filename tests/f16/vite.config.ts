import { defineConfig } from 'vite';

// Bundles the f16 kernel suite (and the kernel benchmark) for Deno, which cannot import `?raw`
// WGSL: ES modules with the shaders inlined, written under node_modules/.cache so that they are
// never committed.
export default defineConfig({
  logLevel: 'warn',
  build: {
    target: 'es2022',
    outDir: 'node_modules/.cache/ponder-f16',
    emptyOutDir: true,
    minify: false,
    lib: {
      entry: {
        'f16-suite': 'tests/f16/f16-suite.ts',
        'engine-f16': 'tests/f16/engine-f16.ts',
        'kernel-bench': 'tests/f16/kernel-bench.ts',
      },
      formats: ['es'],
      fileName: (_format, name) => `${name}.js`,
    },
  },
});
