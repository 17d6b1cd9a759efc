// Backbone cuts and the exported classifier: the embedding found for each real backbone, and an
// exported model (linear, MLP and prototype heads) giving the in-process predictions on the whole
// hymenoptera val set in a BARE onnxruntime-node session (no edgetune code on the inference side).

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Embedder, EmbeddingCache, loadBackbone, type Backbone } from '../../../runtime/train/node/embed.js';
import { EMBEDDING_OUTPUT, exportClassifierModel, findCut, headFromModel, PROBABILITIES_OUTPUT } from '../../../runtime/train/export.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { parseModelInfo, readMetadataProps } from '../../../runtime/core/metadata.js';
import { toTensor } from '../../../runtime/image/preprocess.js';
import { predictHead, predictions, prototypeHead, trainHeadSync, type FeatureSet, type HeadWeights } from '../../../runtime/train/index.js';
import { shared, tempDir } from '../../helpers.js';

const hym = shared('datasets', 'hymenoptera');
const files = (split: string) =>
  ['ants', 'bees'].flatMap((c, label) => readdirSync(path.join(hym, split, c)).sort().map((f) => ({ file: path.join(hym, split, c, f), label })));

describe('backbone cuts', () => {
  it('finds the embedding of each real backbone', async () => {
    const expected: Record<string, { tensor: string; pool: boolean; dequantize: boolean; dims: number }> = {
      'mobilenetv2-int8': { tensor: '464_quantized', pool: false, dequantize: true, dims: 1280 },
      'squeezenet1.1': { tensor: 'fire9/concat_1', pool: true, dequantize: false, dims: 512 },
      'mobilenetv1-0.25-128': { tensor: 'MobilenetV1/Logits/AvgPool_1a/AvgPool', pool: false, dequantize: false, dims: 256 },
    };
    const img = shared('camera', 'winml_dog.jpg');
    for (const [id, want] of Object.entries(expected)) {
      const bb = await loadBackbone(id);
      expect({ tensor: bb.cut.tensor, pool: bb.cut.pool, dequantize: Boolean(bb.cut.dequantize) }, id).toEqual({ tensor: want.tensor, pool: want.pool, dequantize: want.dequantize });
      // found automatically too (the registry's embedding.tensor only confirms it)
      const auto = findCut(bb.model, null);
      expect({ tensor: auto.tensor, pool: auto.pool, dequantize: auto.dequantize }, `${id} auto`).toEqual({ tensor: bb.cut.tensor, pool: bb.cut.pool, dequantize: bb.cut.dequantize });
      const e = await Embedder.open(bb);
      const r = await e.embed([img], { cache: null });
      await e.dispose();
      expect(r.dims, id).toBe(want.dims);
      expect(r.features.some((v) => v > 0), id).toBe(true);
    }
    // the quantized embedding is dequantized with the scale / zero point its QLinearMatMul reads
    expect((await loadBackbone('mobilenetv2-int8')).cut.dequantize).toEqual({ scale: '464_scale', zeroPoint: '464_zero_point' });
  });
});

describe('exported classifier = in-process pipeline (hymenoptera val, mobilenetv2-int8)', () => {
  let bb: Backbone;
  let train: FeatureSet;
  let val: FeatureSet;
  let session: ort.InferenceSession | undefined;
  const valFiles = files('val');
  const work = tempDir('edgetune-export-');
  beforeAll(async () => {
    bb = await loadBackbone('mobilenetv2-int8');
    const e = await Embedder.open(bb);
    const cache = new EmbeddingCache(path.join(work, 'cache'));
    const tr = files('train');
    const et = await e.embed(tr.map((f) => f.file), { cache });
    const ev = await e.embed(valFiles.map((f) => f.file), { cache });
    await e.dispose();
    train = { features: et.features, labels: Int32Array.from(tr.map((f) => f.label)), dims: et.dims, classes: 2 };
    val = { features: ev.features, labels: Int32Array.from(valFiles.map((f) => f.label)), dims: ev.dims, classes: 2 };
  });
  afterAll(async () => {
    await session?.release();
  });

  async function bareProbabilities(bytes: Uint8Array): Promise<Float32Array> {
    await session?.release();
    session = await ort.InferenceSession.create(bytes);
    expect(session.outputNames).toEqual([PROBABILITIES_OUTPUT]);
    const out = new Float32Array(valFiles.length * 2);
    for (let i = 0; i < valFiles.length; i += 32) {
      const chunk = valFiles.slice(i, i + 32);
      const imgs = await Promise.all(chunk.map((f) => decodeImage(f.file, bb.spec)));
      const t = toTensor(imgs, bb.spec);
      const r = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', t.data as Float32Array, [...t.dims]) });
      out.set(r[PROBABILITIES_OUTPUT]!.data as Float32Array, i * 2);
    }
    return out;
  }

  const heads: [string, HeadWeights['kind'], () => HeadWeights][] = [
    ['linear', 'linear', () => trainHeadSync(train, val, {}).head],
    ['mlp', 'mlp', () => trainHeadSync(train, val, { hidden: 32, dropout: 0.2, epochs: 15 }).head],
    ['prototype', 'prototype', () => prototypeHead(train)],
    ['L2-normalised linear', 'linear', () => trainHeadSync(train, val, { normalize: true, lr: 0.01, epochs: 20 }).head],
  ];
  for (const [name, kind, make] of heads) {
    it(`${name} head: same predictions on every val image in a bare onnxruntime-node session`, async () => {
      const head = make();
      const bytes = exportClassifierModel(bb.model, bb.cut, head, ['ants', 'bees'], bb.spec, { base: 'mobilenetv2-int8' });
      const expected = predictHead(head, val.features);
      const got = await bareProbabilities(bytes);
      expect(Array.from(predictions(got, 2))).toEqual(Array.from(predictions(expected, 2)));
      let maxDiff = 0;
      for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
      // float32 graph vs float64 JS arithmetic over 1280 terms: measured 3.0e-7 linear, 1.5e-7 MLP,
      // 1.25e-6 prototype, 2.1e-7 L2-normalised linear
      expect(maxDiff).toBeLessThan(1e-5);
      const info = parseModelInfo(readMetadataProps(bytes));
      expect(info).toMatchObject({ labels: ['ants', 'bees'], outputKind: 'probabilities', outputName: PROBABILITIES_OUTPUT, provenance: { base: 'mobilenetv2-int8' } });
      // the head and the embedding cut can be read back (finetune --resume)
      const back = headFromModel(bytes);
      expect(back.head.kind).toBe(kind);
      expect(back.head.layers.map((l) => [l.in, l.out])).toEqual(head.layers.map((l) => [l.in, l.out]));
      expect(back.cut.tensor).toBe(EMBEDDING_OUTPUT);
      expect(Array.from(predictions(predictHead(back.head, val.features), 2))).toEqual(Array.from(predictions(expected, 2)));
    });
  }

  it('the exported model drops the ImageNet classifier and is smaller than the backbone', () => {
    const head = prototypeHead(train);
    const bytes = exportClassifierModel(bb.model, bb.cut, head, ['ants', 'bees'], bb.spec);
    // measured: 2 378 933 bytes against the backbone's 3 655 033 (its 1000-way classifier dropped)
    expect(bytes.byteLength).toBeLessThan(readFileSync(shared('models', 'mobilenetv2-12-int8.onnx')).byteLength);
    expect(() => exportClassifierModel(bb.model, bb.cut, head, ['ants'], bb.spec)).toThrow('Expected 2 labels for the head but received 1');
  });
});

describe('embedding cache size cap (mobilenetv2-int8, real photos)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  it('keeps the most recently used embeddings under the cap; hits refresh an entry', async () => {
    const dir = tempDir('edgetune-embcache-');
    const bb = await loadBackbone('mobilenetv2-int8');
    const e = await Embedder.open(bb);
    try {
      const photos = files('val').slice(0, 8).map((f) => f.file);
      const [a, b] = [photos.slice(0, 4), photos.slice(4)];
      const big = new EmbeddingCache(dir, { maxBytes: 1024 * 1024 });
      const ra = await e.embed(a, { cache: big });
      expect(ra.computed).toBe(4);
      const one = ra.features.byteLength / 4; // bytes of one embedding
      await sleep(30);
      await e.embed(b, { cache: big });
      await sleep(30);
      expect((await e.embed([a[0]!], { cache: big })).hits).toBe(1); // a[0] is now the most recently used
      expect(await big.prune()).toEqual({ files: 8, bytes: 8 * one, removed: 0 });

      // a cap of 5 embeddings: pruning goes down to 90% of it, oldest first
      const small = new EmbeddingCache(dir, { maxBytes: 5 * one });
      expect(await small.prune()).toEqual({ files: 4, bytes: 4 * one, removed: 4 });
      const again = await e.embed(a, { cache: new EmbeddingCache(dir, { maxBytes: 1024 * 1024 }) });
      expect(again.hits).toBe(1);
      expect(again.computed).toBe(3);
      // what the cache returned is what the model computes
      expect(Array.from(again.features.subarray(0, one / 4))).toEqual(Array.from(ra.features.subarray(0, one / 4)));

      // an embed run that writes prunes by itself
      const capped = new EmbeddingCache(dir, { maxBytes: 3 * one });
      await e.embed(files('val').slice(8, 10).map((f) => f.file), { cache: capped });
      // a cap of 3 embeddings prunes to 90% of it: 2 files (measured), nothing left to remove on a second prune
      expect(await capped.prune()).toEqual({ files: 2, bytes: 2 * one, removed: 0 });
    } finally {
      await e.dispose();
    }
  });

  it('refuses a bad EDGETUNE_EMBED_CACHE_MB', () => {
    const old = process.env.EDGETUNE_EMBED_CACHE_MB;
    process.env.EDGETUNE_EMBED_CACHE_MB = 'lots';
    try {
      expect(() => new EmbeddingCache(tempDir('edgetune-embcache-bad-'))).toThrow('Expected positive number of megabytes for EDGETUNE_EMBED_CACHE_MB but received "lots"');
      process.env.EDGETUNE_EMBED_CACHE_MB = '0.05';
      expect(new EmbeddingCache(tempDir('edgetune-embcache-ok-')).maxBytes).toBe(52429);
    } finally {
      if (old === undefined) delete process.env.EDGETUNE_EMBED_CACHE_MB;
      else process.env.EDGETUNE_EMBED_CACHE_MB = old;
    }
  });
});
