// Nested options objects and the rest of the library's entry points refuse a key they do not take, as
// the top-level options of loadClassifier / describeModel / quantizeModel / finetune do
// (option-keys.test.ts): `remote: { tokn }` used to send no token, `overrides: { preprocess: { maen } }`
// to describe the model with the assumed mean, `session: { thread: 1 }` to train on every core,
// `serveModels(…, { maxBatchsize })` to serve with the default batch, all without a word. Each refusal
// comes before any work (no connection, no file read, no session).

import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quantizeModel, type QuantizeOptions } from '../../../calibration/index.js';
import { createSource } from '../../../devices/index.js';
import type { SourceOptions } from '../../../devices/sources/types.js';
import { describeModel, type DescribeOptions } from '../../../models/describe.js';
import { benchModel, type BenchOptions } from '../../../runtime/classify/bench.js';
import { CLASSIFIER_OPTION_KEYS, loadClassifier, type ClassifierOptions } from '../../../runtime/classify/classifier.js';
import { exportTritonRepository, type TritonExportOptions } from '../../../runtime/fleet/triton.js';
import { decodeImage, DEFAULT_SPEC, type DecodeOptions } from '../../../runtime/index.js';
import { connectRemoteModel, type ConnectRemoteOptions } from '../../../runtime/serve/client.js';
import { createOipRoutes, type OipRoutesOptions } from '../../../runtime/serve/routes.js';
import { serveModels, type ServeModelsOptions } from '../../../runtime/serve/server.js';
import { createSession, parseProviders, type ProviderRequest, type SessionOptions } from '../../../runtime/session/session.js';
import { geometryOfClassifier, StreamPipeline } from '../../../runtime/stream/pipeline.js';
import { startServer, type ServeOptions } from '../../../runtime/stream/serve.js';
import { createTeach, type TeachOptions } from '../../../runtime/stream/teach.js';
import type { StreamOptions } from '../../../runtime/stream/stream-types.js';
import { finetune, type FinetuneOptions } from '../../../runtime/train/node/finetune.js';
import { loadBackbone } from '../../../runtime/train/node/embed.js';
import { scanDataset, type ScanOptions } from '../../../runtime/train/node/dataset.js';
import type { CardLayer } from '../../../runtime/core/model-card.js';
import { trainHead, trainHeadSync, type FeatureSet, type TrainConfig } from '../../../runtime/train/index.js';
import { collectEmbeddings, createTransfer, type CollectOptions, type TrainOptions } from '../../../runtime/train/finetune.js';
import { shared, sharedDir, tempDir } from '../../helpers.js';

const resolve = { searchPath: [path.join(sharedDir, 'models')], download: false };
const DOG = shared('camera', 'winml_dog.jpg');
const MODEL = shared('models', 'mobilenetv2-12-int8.onnx');
const work = tempDir('edgetune-option-keys-nested-');
const SESSION_KEYS = 'providers, threads, graphOptimizationLevel, optimizedModelFilePath, enableProfiling, profileFilePrefix, spinning, memoryPattern, onWarning';
const PREPROCESS_KEYS = 'width, height, channels, layout, colorOrder, range, mean, std, resize, crop, dtype';
const CARD_KEYS = 'version, id, inputName, outputName, preprocess, labels, labelOffset, outputKind, task, embedding, openSet, provenance';
const as = <T>(o: object) => o as unknown as T;

describe('card overrides and remote options (loadClassifier, describeModel, connectRemoteModel, exportTritonRepository)', () => {
  it('describeModel: overrides.preprocess.maen and overrides.lables are refused, naming the keys a card layer has', async () => {
    await expect(describeModel('mobilenetv2-int8', as<DescribeOptions>({ ...resolve, overrides: { preprocess: { maen: [0, 0, 0] } } }))).rejects.toMatchObject({
      code: 'EARG',
      message: `describeModel: unknown option "overrides.preprocess.maen" (overrides.preprocess options: ${PREPROCESS_KEYS})`,
    });
    await expect(describeModel('mobilenetv2-int8', as<DescribeOptions>({ ...resolve, overrides: { lables: ['a'] } }))).rejects.toMatchObject({
      code: 'EARG',
      message: `describeModel: unknown option "overrides.lables" (overrides options: ${CARD_KEYS})`,
    });
    // the keys spelt right are taken: the mean is the caller's
    const d = await describeModel('mobilenetv2-int8', { ...resolve, overrides: { preprocess: { mean: [0.5, 0.5, 0.5] } } });
    expect([d.card.preprocess.mean, d.card.sources['preprocess.mean']]).toEqual([[0.5, 0.5, 0.5], 'flags']);
  });

  it('loadClassifier: remote.tokn is refused before any connection; overrides.embedding.dim names the embedding fields', async () => {
    // port 9 (discard) on loopback: a connection attempt would fail with EMODEL, not this EARG
    await expect(loadClassifier('http://127.0.0.1:9/v2/models/m', as<ClassifierOptions>({ remote: { tokn: 'secret', retries: 0 } }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'loadClassifier: unknown option "remote.tokn" (remote options: timeoutMs, retries, binary, token)',
    });
    await expect(loadClassifier('mobilenetv2-int8', as<ClassifierOptions>({ ...resolve, overrides: { embedding: { tensor: null, dim: 1280 } } }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'loadClassifier: unknown option "overrides.embedding.dim" (overrides.embedding options: tensor, dims, pool, note)',
    });
  });

  it('connectRemoteModel: tokn and overrides.outputname are refused before any connection', async () => {
    await expect(connectRemoteModel('http://127.0.0.1:9/v2/models/m', as<ConnectRemoteOptions>({ tokn: 'secret', retries: 0 }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'connectRemoteModel: unknown option "tokn" (options: timeoutMs, retries, binary, token, overrides, allowNonClassifier)',
    });
    await expect(connectRemoteModel('http://127.0.0.1:9/v2/models/m', as<ConnectRemoteOptions>({ retries: 0, overrides: { outputname: 'x' } }))).rejects.toThrow(
      /^connectRemoteModel: unknown option "overrides.outputname" \(overrides options: version, id, /,
    );
  });

  it('exportTritonRepository: versoin is refused and nothing is written', async () => {
    const out = path.join(work, 'repo');
    await expect(exportTritonRepository('mobilenetv2-int8', as<TritonExportOptions>({ ...resolve, out, versoin: 2 }))).rejects.toThrow(
      /^exportTritonRepository: unknown option "versoin" \(options: out, name, version, maxBatchSize, dynamicBatching, instanceGroups, allowAssumed, searchPath, /,
    );
    expect(existsSync(out)).toBe(false);
  });
});

describe('sessions, classifying, serving, benchmarking', () => {
  it('createSession: thread is refused; a provider request with optons is refused', async () => {
    await expect(createSession(MODEL, as<SessionOptions>({ providers: ['cpu'], thread: 1 }))).rejects.toMatchObject({
      code: 'EARG',
      message: `createSession: unknown option "thread" (options: ${SESSION_KEYS})`,
    });
    expect(() => parseProviders([as<ProviderRequest>({ name: 'cpu', optons: {} })])).toThrow('parseProviders: unknown option "providers[0].optons" (providers[0] options: name, options)');
  });

  it('classify and classifyFiles: topk / batchSize are refused; serveModels and benchModel refuse theirs before loading a model', async () => {
    const clf = await loadClassifier('mobilenetv2-int8', { ...resolve, providers: ['cpu'], threads: 1 });
    try {
      await expect(clf.classify(DOG, as<{ topK: number }>({ topk: 1 }))).rejects.toMatchObject({ code: 'EARG', message: 'classify: unknown option "topk" (options: topK, name)' });
      const files = clf.classifyFiles([DOG], as<{ batch: number }>({ batchSize: 8 }));
      await expect(files.next()).rejects.toMatchObject({ code: 'EARG', message: 'classifyFiles: unknown option "batchSize" (options: topK, batch, ahead)' });
      expect((await clf.classify(DOG, { topK: 1 })).top.map((p) => p.label)).toEqual(['Golden Retriever']); // README: winml_dog.jpg → Golden Retriever (95.1%)
    } finally {
      await clf.dispose();
    }
    await expect(serveModels(['mobilenetv2-int8'], as<ServeModelsOptions>({ ...resolve, port: 0, maxBatchsize: 4 }))).rejects.toMatchObject({
      code: 'EARG',
      message: `serveModels: unknown option "maxBatchsize" (options: host, port, allowHosts, token, maxBodyBytes, maxBatchSize, log, ${CLASSIFIER_OPTION_KEYS.join(', ')})`,
    });
    await expect(serveModels(['mobilenetv2-int8'], as<ServeModelsOptions>({ ...resolve, port: 0, remote: { timeout: 5 } }))).rejects.toThrow(
      'serveModels: unknown option "remote.timeout" (remote options: timeoutMs, retries, binary, token)',
    );
    await expect(benchModel('mobilenetv2-int8', DOG, as<BenchOptions>({ ...resolve, iteration: 1 }))).rejects.toThrow(/^benchModel: unknown option "iteration" \(options: batches, iterations, warmup, topK, /);
    expect(() => createOipRoutes(as<OipRoutesOptions>({ models: () => [], maxBody: 10 }))).toThrow('createOipRoutes: unknown option "maxBody" (options: models, maxBodyBytes, maxBatchSize, log, onInfer)');
  });

  it('decodeImage: maxPixel is refused (the default limit would apply without a word)', async () => {
    await expect(decodeImage(DOG, DEFAULT_SPEC, as<DecodeOptions>({ maxPixel: 10 }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'decodeImage: unknown option "maxPixel" (options: maxPixels, background)',
    });
    await expect(decodeImage(DOG, DEFAULT_SPEC, { maxPixels: 10 })).rejects.toThrow(/pixels/);
  });
});

describe('streams: createSource, StreamPipeline, startServer, createTeach', () => {
  it('refuse a misspelt key at each level, naming it', async () => {
    const clf = await loadClassifier('mobilenetv2-int8', { ...resolve, providers: ['cpu'], threads: 1, lazy: true });
    const g = geometryOfClassifier(clf);
    await expect(createSource('test:smptebars?rate=15', as<SourceOptions>({ ...g, fsp: 5 }))).rejects.toThrow(/^createSource: unknown option "fsp" \(options: width, height, channels, resize, crop, realtime, fps, /);
    await expect(createSource('test:smptebars?rate=15', as<SourceOptions>({ ...g, reconnect: { retry: 1 } }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'createSource: unknown option "reconnect.retry" (reconnect options: retries, initialMs, maxMs, stallTimeoutMs)',
    });
    const source = await createSource('test:smptebars?rate=15', g);
    try {
      expect(() => new StreamPipeline(source, clf, as<StreamOptions>({ topk: 1 }))).toThrow(/^StreamPipeline: unknown option "topk" \(options: topK, smoothing, /);
      expect(() => new StreamPipeline(source, clf, as<StreamOptions>({ sessionOptions: { thread: 1 } }))).toThrow(
        'StreamPipeline: unknown option "sessionOptions.thread" (sessionOptions options: providers, threads, graphOptimizationLevel)',
      );
      const pipeline = new StreamPipeline(source, clf, { topK: 1 });
      await expect(startServer(pipeline, as<ServeOptions>({ port: 0, allowHost: ['a'] }))).rejects.toThrow(/^startServer: unknown option "allowHost" \(options: host, port, token, /);
      await expect(startServer(pipeline, as<ServeOptions>({ port: 0, kioskPage: { topk: 3 } }))).rejects.toThrow('startServer: unknown option "kioskPage.topk" (kioskPage options: webDir, topK, log)');
      const teach = (o: object) => createTeach(pipeline, as<TeachOptions>({ dir: path.join(work, 'teach'), loadModel: () => Promise.reject(new Error('not loaded')), ...o }));
      await expect(teach({ interval: 5 })).rejects.toThrow(/^createTeach: unknown option "interval" \(options: dir, base, loadModel, intervalMs, /);
      await expect(teach({ finetune: { epoch: 5 } })).rejects.toThrow(/^createTeach: unknown option "finetune.epoch" \(finetune options: model, card, val, /);
      await expect(teach({ finetune: { session: { thread: 1 } } })).rejects.toThrow(`createTeach: unknown option "finetune.session.thread" (finetune.session options: ${SESSION_KEYS})`);
      // teaching sets these itself: given here they are refused as unknown, not silently replaced
      await expect(teach({ finetune: { out: 'x.onnx' } })).rejects.toThrow(/^createTeach: unknown option "finetune.out" /);
      expect(existsSync(path.join(work, 'teach'))).toBe(false);
    } finally {
      await source.close();
      await clf.dispose();
    }
  });
});

describe('trainHead and trainHeadSync', () => {
  it('refuse a config key TrainConfig lacks (`epoch`: the default 60 epochs would run)', async () => {
    const set: FeatureSet = { features: Float32Array.from([1, -1]), labels: Int32Array.from([1, 0]), dims: 1, classes: 2 };
    await expect(trainHead(set, undefined, as<Partial<TrainConfig>>({ epoch: 1 }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'trainHead: unknown option "epoch" (options: hidden, dropout, task, optimizer, lr, momentum, weightDecay, l1, labelSmoothing, epochs, batchSize, schedule, stepSize, gamma, patience, minDelta, seed, classWeights, standardize, normalize, init)',
    });
    expect(() => trainHeadSync(set, undefined, as<Partial<TrainConfig>>({ epoch: 1 }))).toThrow(/^trainHeadSync: unknown option "epoch" \(options: hidden, /);
    expect(trainHeadSync(set, undefined, { epochs: 1 }).history).toHaveLength(1);
  });

  it("the page's fine-tune module: createTransfer, Transfer.train (and its config, for a prototype head too) and collectEmbeddings", async () => {
    expect(() => createTransfer(as<{ labels: string[] }>({ labels: ['a', 'b'], label: [] }))).toThrow('createTransfer: unknown option "label" (options: labels)');
    const t = createTransfer({ labels: ['a', 'b'] });
    t.collectExample('a', Float32Array.of(1));
    t.collectExample('b', Float32Array.of(-1));
    await expect(t.train(as<TrainOptions>({ heads: 'linear' }))).rejects.toThrow('train: unknown option "heads" (options: head, config)');
    await expect(t.train(as<TrainOptions>({ head: 'prototype', config: { epoch: 1 } }))).rejects.toThrow(/^train: unknown option "config.epoch" \(config options: hidden, /);
    const embedder = { embed: () => Promise.reject(new Error('not embedded')) };
    await expect(collectEmbeddings(t, as<never>(embedder), as<CollectOptions<{ label: number }>>({ train: [], augment: { ops: [] }, view: 2 }))).rejects.toThrow(
      'collectEmbeddings: unknown option "view" (options: train, val, augment, views, seed, signal, onProgress)',
    );
    expect((await t.train({ head: 'prototype' })).trainAccuracy).toBe(1);
  });
});

describe("finetune's and quantizeModel's nested options", () => {
  const data = shared('datasets', 'cats_dogs-dev', 'train');
  it('finetune: session.thread, card.preprocess.sdt and addClass[0].nmae are refused before any work', async () => {
    const out = path.join(work, 'ft.onnx');
    await expect(finetune(data, as<FinetuneOptions>({ out, session: { thread: 1 } }))).rejects.toMatchObject({
      code: 'EARG',
      message: `finetune: unknown option "session.thread" (session options: ${SESSION_KEYS})`,
    });
    await expect(finetune(data, as<FinetuneOptions>({ out, card: { preprocess: { sdt: [1, 1, 1] } } }))).rejects.toMatchObject({
      code: 'EARG',
      message: `finetune: unknown option "card.preprocess.sdt" (card.preprocess options: ${PREPROCESS_KEYS})`,
    });
    await expect(finetune(undefined, as<FinetuneOptions>({ out, resume: path.join(work, 'none.onnx'), addClass: [{ nmae: 'x', dir: data }] }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'finetune: unknown option "addClass[0].nmae" (addClass[0] options: name, dir)',
    });
    expect(existsSync(out)).toBe(false);
  });

  it("finetune's pieces: scanDataset's `class` and loadBackbone's overrides.preprocess.sdt are refused", async () => {
    await expect(scanDataset(data, as<ScanOptions>({ class: ['cats'] }))).rejects.toMatchObject({ code: 'EARG', message: 'scanDataset: unknown option "class" (options: classes, what)' });
    expect((await scanDataset(data, { classes: ['cats', 'dogs'] })).classes).toEqual(['cats', 'dogs']);
    await expect(loadBackbone('mobilenetv2-int8', as<CardLayer>({ preprocess: { sdt: [1, 1, 1] } }))).rejects.toMatchObject({
      code: 'EARG',
      message: `loadBackbone: unknown option "overrides.preprocess.sdt" (overrides.preprocess options: ${PREPROCESS_KEYS})`,
    });
  });

  it('quantizeModel: resolve.searchpath, card.labeloffset and preprocess.with are refused before any work', async () => {
    const base = { model: 'squeezenet1.1', calib: shared('datasets', 'hymenoptera', 'train'), calibCount: 4, out: path.join(work, 'sq.onnx') };
    await expect(quantizeModel(as<QuantizeOptions>({ ...base, resolve: { searchpath: [] } }))).rejects.toMatchObject({
      code: 'EARG',
      message: 'quantize: unknown option "resolve.searchpath" (resolve options: searchPath, cacheDir, download, onProgress)',
    });
    await expect(quantizeModel(as<QuantizeOptions>({ ...base, resolve, card: { labeloffset: 1 } }))).rejects.toThrow(/^quantize: unknown option "card.labeloffset" \(card options: version, /);
    await expect(quantizeModel(as<QuantizeOptions>({ ...base, resolve, preprocess: { with: 224 } }))).rejects.toThrow(`quantize: unknown option "preprocess.with" (preprocess options: ${PREPROCESS_KEYS})`);
    expect(existsSync(base.out)).toBe(false);
  });
});
