import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The real test assets: EDGETUNE_SHARED, default ../shared beside the repository (this repository's
// test convention; an installed edgetune never looks there). Tests find models through
// EDGETUNE_MODEL_PATH like any user, so it defaults to the shared models folder here.
const sharedDir = path.resolve(process.env.EDGETUNE_SHARED ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'shared'));
const env = {
  EDGETUNE_SHARED: sharedDir,
  EDGETUNE_MODEL_PATH: process.env.EDGETUNE_MODEL_PATH ?? path.join(sharedDir, 'models'),
};

// Tests run real models on real assets (../shared): generous timeouts, and at most two files at a
// time because CI has two cores and onnxruntime uses threads of its own. Two projects: `unit` (unit
// and end-to-end tests) and `leak` (memory tests, in processes started with --expose-gc so a full
// collection can run before each reading).
const common = {
  testTimeout: 180_000,
  hookTimeout: 180_000,
  pool: 'forks' as const,
  env,
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
