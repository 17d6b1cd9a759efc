// Options of the public library functions from JavaScript: loadClassifier, describeModel, importModelFile
// and importedModelPath (and resolveModel, Embedder.open, runPhase2 and its settings, trainTail, trainUnfrozen, EmbeddingCache,
// exportClassifierModel, finetuneItems, quantizationSensitivity) refuse a misspelt key before any work, as quantizeModel and finetune do
// (`loadClassifier(m, { topk: 3 })` used to return the default 5 predictions without a word); and the
// library's own callers that hold wider options (serveModels, benchModel, exportTritonRepository) pass
// on only the keys the callee takes, so the strict check holds without breaking them.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DESCRIBE_OPTION_KEYS, describeModel, type DescribeOptions } from '../../../models/describe.js';
import { importedModelPath, importModelFile, type ImportFileOptions } from '../../../models/import.js';
import { benchModel } from '../../../runtime/classify/bench.js';
import { CLASSIFIER_OPTION_KEYS, loadClassifier, type ClassifierOptions } from '../../../runtime/classify/classifier.js';
import { exportTritonRepository } from '../../../runtime/fleet/triton.js';
import { serveModels } from '../../../runtime/serve/server.js';
import { RESOLVE_OPTION_KEYS, resolveModel, type ResolveOptions } from '../../../models/loader.js';
import { Embedder, EmbeddingCache, loadBackbone, type Backbone, type EmbedderOptions, type EmbeddingCacheOptions } from '../../../runtime/train/node/embed.js';
import { PHASE2_OPTION_KEYS, PHASE2_SETTING_KEYS, runPhase2, type Phase2Options } from '../../../runtime/train/phase2.js';
import { TRAIN_CONFIG_KEYS } from '../../../runtime/train/config.js';
import { TAIL_CONFIG_KEYS, trainTail, type TailTrainConfig, type TailTrainInput } from '../../../runtime/train/graph/tail-trainer.js';
import { trainUnfrozen, type UnfreezePlan } from '../../../runtime/train/finetune-tail.js';
import { exportClassifierModel } from '../../../runtime/train/export.js';
import { prototypeHead } from '../../../runtime/train/heads.js';
import { finetuneItems } from '../../../runtime/train/node/dataset.js';
import { quantizationSensitivity, SENSITIVITY_OPTION_KEYS, type SensitivityOptions } from '../../../calibration/sensitivity.js';
import type { OnnxModel } from '../../../runtime/onnx/model.js';
import { shared, sharedDir, tempDir } from '../../helpers.js';

const resolve = { searchPath: [path.join(sharedDir, 'models')], download: false };
const DOG = shared('camera', 'winml_dog.jpg');
const FRUIT = shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite');
const work = tempDir('edgetune-option-keys-');

describe('public functions refuse option keys they do not take', () => {
  it('loadClassifier: `topk` is refused with the list of options; `topK` is taken', async () => {
    const typo = { ...resolve, providers: ['cpu'], topk: 3 } as unknown as ClassifierOptions;
    await expect(loadClassifier('mobilenetv2-int8', typo)).rejects.toMatchObject({
      code: 'EARG',
      message: `loadClassifier: unknown option "topk" (options: ${CLASSIFIER_OPTION_KEYS.join(', ')})`,
    });
    const two = { ...resolve, toK: 3, thread: 1 } as unknown as ClassifierOptions;
    await expect(loadClassifier('mobilenetv2-int8', two)).rejects.toThrow(/^loadClassifier: unknown options "toK", "thread" \(options: topK, /);
    const clf = await loadClassifier('mobilenetv2-int8', { ...resolve, providers: ['cpu'], topK: 3 });
    try {
      const r = await clf.classify(DOG);
      expect(r.top).toHaveLength(3);
      expect(r.top[0]!.label).toBe('Golden Retriever'); // README: winml_dog.jpg → Golden Retriever (95.1%)
    } finally {
      await clf.dispose();
    }
  });

  it('describeModel: `overide` is refused with the list of options', async () => {
    const typo = { ...resolve, overide: { labelOffset: 1 } } as unknown as DescribeOptions;
    await expect(describeModel('mobilenetv2-int8', typo)).rejects.toMatchObject({
      code: 'EARG',
      message: `describeModel: unknown option "overide" (options: ${DESCRIBE_OPTION_KEYS.join(', ')})`,
    });
    expect((await describeModel('mobilenetv2-int8', resolve)).card.labels[207]).toBe('Golden Retriever');
  });

  it('resolveModel: `serchPath` is refused (it was ignored: the model was looked up without it); describeModel passes it only its keys', async () => {
    const typo = { serchPath: [path.join(sharedDir, 'models')], download: false } as unknown as ResolveOptions;
    await expect(resolveModel('mobilenetv2-int8', typo)).rejects.toMatchObject({
      code: 'EARG',
      message: `resolveModel: unknown option "serchPath" (options: ${RESOLVE_OPTION_KEYS.join(', ')})`,
    });
    expect(path.basename((await resolveModel('mobilenetv2-int8', resolve)).path)).toBe('mobilenetv2-12-int8.onnx');
    // describeModel's wider options (overrides, allowNonClassifier besides the resolve ones) still resolve
    const d = await describeModel('mobilenetv2-int8', { ...resolve, overrides: { labelOffset: 0 }, allowNonClassifier: true });
    expect(d.card.labels[207]).toBe('Golden Retriever');
  });

  it("Embedder.open's options and runPhase2's settings: a misspelt key is refused before any work", async () => {
    // the check is the functions' first step: nothing of the (absent) backbone or plan is read before it
    await expect(Embedder.open({} as Backbone, {}, { tap: ['x'] } as unknown as EmbedderOptions)).rejects.toMatchObject({
      code: 'EARG',
      message: 'Embedder.open: unknown option "tap" (options: taps)',
    });
    await expect(runPhase2({ settings: { lrBackbne: 1e-4 } } as unknown as Phase2Options<{ label: number }>)).rejects.toMatchObject({
      code: 'EARG',
      message: `runPhase2: unknown option "settings.lrBackbne" (settings options: ${PHASE2_SETTING_KEYS.join(', ')})`,
    });
  });

  // These building blocks took any key and ignored a misspelt one: runPhase2's `setings` trained with the
  // default settings, EmbeddingCache's `maxbytes` kept the 512 MB cap, exportClassifierModel's
  // `openSet: { detecter }` exported a model without its open-set score, quantizationSensitivity's
  // `onprogress` said nothing.
  it('runPhase2, trainTail, trainUnfrozen, EmbeddingCache, exportClassifierModel, finetuneItems and quantizationSensitivity refuse a misspelt key', async () => {
    const refused = (f: () => unknown) => Promise.resolve().then(f).then(() => 'taken', (e: { code?: string; message: string }) => `${e.code} ${e.message}`);
    expect(await refused(() => runPhase2({ setings: {} } as unknown as Phase2Options<{ label: number }>))).toBe(`EARG runPhase2: unknown option "setings" (options: ${PHASE2_OPTION_KEYS.join(', ')})`);
    expect(await refused(() => runPhase2({ config: { epoch: 3 } } as unknown as Phase2Options<{ label: number }>))).toBe(`EARG runPhase2: unknown option "config.epoch" (config options: ${TRAIN_CONFIG_KEYS.join(', ')})`);
    expect(await refused(() => trainTail({ tail: {} } as TailTrainInput, { epoch: 3 } as Partial<TailTrainConfig>))).toBe(`EARG trainTail: unknown option "config.epoch" (config options: ${TAIL_CONFIG_KEYS.join(', ')})`);
    expect(await refused(() => trainUnfrozen({} as UnfreezePlan, { head: {} } as Parameters<typeof trainUnfrozen>[1], {}, { onepoch: () => undefined } as Parameters<typeof trainUnfrozen>[3]))).toBe(
      'EARG trainUnfrozen: unknown option "hooks.onepoch" (hooks options: onEpoch, signal)',
    );
    expect(await refused(() => new EmbeddingCache(path.join(work, 'emb'), { maxbytes: 1024 } as EmbeddingCacheOptions))).toBe('EARG EmbeddingCache: unknown option "maxbytes" (options: maxBytes)');
    expect(new EmbeddingCache(path.join(work, 'emb'), { maxBytes: 1024 }).maxBytes).toBe(1024);
    const train = shared('datasets', 'hymenoptera', 'train');
    expect(await refused(() => finetuneItems({ trainDir: train, valdir: train, valSplit: 0, addedValSplit: 0, seed: 1 } as unknown as Parameters<typeof finetuneItems>[0]))).toBe(
      'EARG finetuneItems: unknown option "valdir" (options: trainDir, valDir, added, valSplit, addedValSplit, seed)',
    );
    expect(await refused(() => quantizationSensitivity({} as OnnxModel, {} as OnnxModel, 'x', 'y', [], { post: { kind: 'logits' }, onprogress: () => undefined } as unknown as SensitivityOptions))).toBe(
      `EARG quantizationSensitivity: unknown option "onprogress" (options: ${SENSITIVITY_OPTION_KEYS.join(', ')})`,
    );
    // exportClassifierModel on a real backbone and a head from two real photos: exported as given, refused with a misspelt open-set key
    const backbone = await loadBackbone('mobilenetv2-int8');
    const embedder = await Embedder.open(backbone, { providers: ['cpu'], threads: 1 });
    try {
      const e = await embedder.embed([DOG, shared('camera', 'hwacc_imagenet_finch.jpeg')], { cache: null });
      const head = prototypeHead({ features: e.features, labels: Int32Array.from([0, 1]), dims: e.dims, classes: 2 });
      const args = [backbone.model, backbone.cut, head, ['dog', 'finch'], backbone.spec, undefined] as const;
      expect(exportClassifierModel(...args).length).toBeGreaterThan(1_000_000); // mobilenetv2-int8 is 3.5 MB
      expect(await refused(() => exportClassifierModel(...args, { detecter: {} } as unknown as Parameters<typeof exportClassifierModel>[6]))).toBe(
        'EARG exportClassifierModel: unknown option "openSet.detecter" (openSet options: detector, calibration)',
      );
    } finally {
      await embedder.dispose();
    }
  });

  it('importModelFile and importedModelPath: `label` is refused, naming the options, and nothing is cached', async () => {
    const cacheDir = path.join(work, 'cache');
    const typo = { cacheDir, label: shared('models', 'teachable-machine', 'fruit-tflite', 'labels.txt') } as unknown as ImportFileOptions;
    await expect(importModelFile(FRUIT, typo)).rejects.toMatchObject({ code: 'EARG', message: 'importModelFile: unknown option "label" (options: labels, cacheDir)' });
    await expect(importedModelPath(FRUIT, typo)).rejects.toMatchObject({ code: 'EARG', message: 'importedModelPath: unknown option "label" (options: labels, cacheDir)' });
    expect(existsSync(path.join(cacheDir, 'imports'))).toBe(false);
  });
});

describe("the library's callers with wider options pass on only the callee's keys", () => {
  it('serveModels (host, port, maxBatchSize, … besides the classifier options) serves the model', async () => {
    const server = await serveModels(['mobilenetv2-int8'], { ...resolve, port: 0, providers: ['cpu'], threads: 1, maxBatchSize: 4, log: () => undefined });
    try {
      const res = await fetch(new URL('/v2/models/mobilenetv2-int8/ready', server.url));
      expect([res.status, await res.json()]).toEqual([200, { name: 'mobilenetv2-int8', ready: true }]);
    } finally {
      await server.close();
    }
  });

  it('benchModel (batches, iterations, warmup besides the classifier options) measures the model', async () => {
    const rows = await benchModel('mobilenetv2-int8', DOG, { ...resolve, providers: ['cpu'], threads: 1, batches: [1], iterations: 1, warmup: 0 });
    expect(rows.map((r) => [r.model, r.batch])).toEqual([['mobilenetv2-int8', 1]]);
    expect(rows[0]!.runMs).toBeGreaterThan(0);
  });

  it('exportTritonRepository (out, name, version, … besides the describe options) writes the entry', async () => {
    const r = await exportTritonRepository('mobilenetv2-int8', { ...resolve, out: path.join(work, 'repo'), name: 'mnv2', version: 1 });
    expect(existsSync(r.files.model)).toBe(true);
    expect(r.config).toContain('name: "mnv2"');
  });
});
