import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts', 'src/**/*.test.ts', 'shaders/**/*.test.ts', 'bench/**/*.test.ts'],
    environment: 'node',
  },
});
