import { defineConfig } from 'vitest/config';

// Tests run real models on real assets (../shared): generous timeouts, and at most two files at a
// time because CI has two cores and onnxruntime uses threads of its own. Two projects: `unit` (unit
// and end-to-end tests) and `leak` (memory tests, in processes started with --expose-gc so a full
// collection can run before each reading).
const common = {
  testTimeout: 180_000,
  hookTimeout: 180_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    // CI (.ci/run) also asks for a JSON report, to count failed files and skipped tests in its summary.
    reporters: process.env.EDGETUNE_TEST_JSON ? ['default', ['json', { outputFile: process.env.EDGETUNE_TEST_JSON }]] : ['default'],
    projects: [
      { test: { ...common, name: 'unit', include: ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts'] } },
      { test: { ...common, name: 'leak', include: ['test/leak/**/*.test.ts'], execArgv: ['--expose-gc'] } },
    ],
  },
});
