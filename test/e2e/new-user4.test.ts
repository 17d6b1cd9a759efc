// What a fourth new user ran into using edgetune as a package in their own project (CommonJS
// `require`), in the kiosk page and on finetune's less-travelled paths (multilabel, regression,
// prototype / mlp heads, --resume --add-examples), with the real models and photos in ../shared.
// Exact messages.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

describe('CommonJS require (Node >= 20.19 loads ES modules with require)', () => {
  it('every entry in package.json "exports" can be required, the main entry included', () => {
    // before: require('edgetune') threw ERR_REQUIRE_ASYNC_MODULE ("require() cannot be used on an ESM graph
    // with top-level await"): runtime/stream/teach-worker.ts ran its thread body with a top-level await
    const entries = ['runtime/index.js', 'calibration/index.js', 'devices/index.js', 'runtime/train/node/index.js', 'runtime/onnx/index.js'];
    const script = `for (const f of ${JSON.stringify(entries.map((e) => path.join(repoRoot, 'dist', e)))}) console.log(Object.keys(require(f)).length > 0 ? 'ok' : 'empty', f);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0])).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    // the classes a CommonJS program checks errors with come through require too
    const e = spawnSync(process.execPath, ['-e', `const { EdgetuneError, loadClassifier } = require(${JSON.stringify(path.join(repoRoot, 'dist/runtime/index.js'))}); console.log(typeof EdgetuneError, typeof loadClassifier);`], { encoding: 'utf8' });
    expect(e.stdout).toBe('function function\n');
  });
});
