// An empty output folder (`--out "$DIR"` with the variable unset) is refused, naming the option, before
// anything is written: path.resolve('') is the current directory, which ensureWritableDir used to take
// (exportTritonRepository wrote its entry there, createTeach its examples/ models/ hard/ folders, an
// empty cacheDir put imports/ there). The CLI paths that reach them (watch --teach, finetune --cache)
// say the same, run in an empty working directory that must stay empty.

import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importedModelPath } from '../../../models/import.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { exportTritonRepository } from '../../../runtime/fleet/triton.js';
import { ensureWritableDir } from '../../../runtime/io/atomic.js';
import { createSource } from '../../../devices/index.js';
import { geometryOfClassifier, StreamPipeline } from '../../../runtime/stream/pipeline.js';
import { createTeach } from '../../../runtime/stream/teach.js';
import { runCli, shared, sharedDir, tempDir } from '../../helpers.js';

const resolve = { searchPath: [path.join(sharedDir, 'models')], download: false };
const FRUIT = shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite');
const work = tempDir('edgetune-empty-dir-');

describe('an empty output folder is refused, naming the option', () => {
  it('ensureWritableDir: "" and "  " are not the current directory', async () => {
    await expect(ensureWritableDir('')).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for --out but received ""' });
    await expect(ensureWritableDir('  ', '--teach')).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for --teach but received "  "' });
  });

  it('exportTritonRepository({ out: "" }) is refused before the model is read; importedModelPath({ cacheDir: "" }) before the import', async () => {
    await expect(exportTritonRepository('mobilenetv2-int8', { ...resolve, out: '' })).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for --out but received ""' });
    await expect(importedModelPath(FRUIT, { cacheDir: '' })).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for cacheDir but received ""' });
  });

  it('createTeach({ dir: "" }) is refused before any folder is made', async () => {
    const clf = await loadClassifier('mobilenetv2-int8', { ...resolve, providers: ['cpu'], threads: 1, lazy: true });
    const source = await createSource('test:smptebars?rate=15', geometryOfClassifier(clf));
    try {
      const pipeline = new StreamPipeline(source, clf, { topK: 1 });
      await expect(createTeach(pipeline, { dir: '', loadModel: () => Promise.reject(new Error('not loaded')) })).rejects.toMatchObject({
        code: 'EARG',
        message: 'Expected a folder for --teach but received ""',
      });
    } finally {
      await source.close();
      await clf.dispose();
    }
  });

  it('the CLI: watch --teach "" and finetune --cache "" exit 2 naming the flag, writing nothing in the working directory', async () => {
    const cwd = path.join(work, 'cwd');
    mkdirSync(cwd);
    const env = { EDGETUNE_CACHE: path.join(work, 'cache') };
    const w = await runCli(['watch', 'test:', '--model', 'mobilenetv2-int8', '--serve', '127.0.0.1:0', '--teach', ''], { cwd, env });
    expect([w.code, w.stderr]).toEqual([2, 'edgetune watch: Expected a folder for --teach but received ""\n']);
    const data = shared('datasets', 'cats_dogs-dev', 'train');
    const f = await runCli(['finetune', data, '--model', 'mobilenetv2-int8', '--out', path.join(work, 'pets.onnx'), '--cache', ''], { cwd, env });
    expect([f.code, f.stderr]).toEqual([2, 'edgetune finetune: Expected a folder for --cache but received ""\n']);
    expect(readdirSync(cwd)).toEqual([]);
  });
});
