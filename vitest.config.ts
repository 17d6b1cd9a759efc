import { defineConfig } from 'vitest/config';

// Tests run real models on real assets (../shared): generous timeouts, and at most two files at a
// time because CI has two cores and onnxruntime uses threads of its own.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
