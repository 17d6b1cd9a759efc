// Phase 2's streamed activations (runtime/train/phase2.ts step 0): no view's cut activations are held
// beyond the mini-batch that uses them. trainTail reads a TailStream a batch at a time and trains exactly
// as on the same rows in memory; viewStream asks the embedder for just a batch's views (ViewEmbedder
// `rows`, implemented by the library's Embedder) and lays them out as asked, also from an embedder that
// ignores `rows`, and names a file that no longer reads; keptRows keeps the first rows up to its size;
// runPhase2 on real beans-dev photos through the
// real frozen MobileNetV2 asks its embedder (the injected hook that counts what is alive) for at most a
// batch of views per call, never every view, and trains as trainUnfrozen on every view held in memory.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainTail, type TailData, type TailStream } from '../../../runtime/train/graph/tail-trainer.js';
import { freshViewSeed, keptRows, phase2Config, runPhase2, viewStream } from '../../../runtime/train/phase2.js';
import { planUnfreeze, trainUnfrozen } from '../../../runtime/train/finetune-tail.js';
import { Embedder } from '../../../runtime/train/node/embed.js';
import { parseAugmentation } from '../../../runtime/train/augment/ops.js';
import type { ViewEmbedder } from '../../../runtime/train/finetune.js';
import type { HeadWeights } from '../../../runtime/train/types.js';
import { DEFAULT_SPEC } from '../../../runtime/image/preprocess.js';
import { createRng } from '../../../runtime/core/rng.js';
import { clipPoolTail, ortFactory, randn, } from './grad-helpers.js';
import { EMBEDDING, listSplit, loadBackbone } from './mnv2-helpers.js';

/** A TailStream over in-memory rows that records every read's row count. */
function counted(data: TailData, size: number, reads: number[]): TailStream {
  return {
    labels: data.labels,
    read: async (rows) => {
      reads.push(rows.length);
      const x = new Float32Array(rows.length * size);
      rows.forEach((r, j) => x.set(data.x.subarray(r * size, (r + 1) * size), j * size));
      return x;
    },
  };
}

describe('trainTail on a TailStream', () => {
  it('reads a batch at a time and trains exactly as on the same rows in memory', async () => {
    const rng = createRng(5, 'tiny');
    const tail = clipPoolTail(rng);
    const make = (key: string, n: number): TailData => {
      const r = createRng(9, key);
      const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
      return { x: Float32Array.from({ length: n * 100 }, (_, j) => r.normal() + (Math.floor(j / 25) % 4 === labels[Math.floor(j / 100)] ? 1 : 0)), labels };
    };
    // 30 rows at batch 8: the last batch is padded (rows seen twice), validation in batches of 8 too (padded)
    const train = make('train', 30);
    const val = make('val', 12);
    const later = make('epoch2', 30);
    const cfg = { epochs: 3, batchSize: 8, lrHead: 0.01, lrBackbone: 0.01, seed: 1, mixup: 0.4 };
    const inMemory = await trainTail({ tail, classes: 3, train, val, createSession: ortFactory, refresh: async () => later }, cfg);
    const reads: number[] = [];
    const streamed = await trainTail({ tail, classes: 3, train: counted(train, 100, reads), val: counted(val, 100, reads), createSession: ortFactory, refresh: async () => counted(later, 100, reads) }, cfg);
    expect(streamed.history.map((h) => [h.trainLoss, h.valLoss])).toEqual(inMemory.history.map((h) => [h.trainLoss, h.valLoss]));
    expect(streamed.tailWeights).toEqual(inMemory.tailWeights);
    expect(streamed.head).toEqual(inMemory.head);
    // 4 training reads and 2 validation reads an epoch, each of one batch (8 rows): never the 30 rows at once
    expect(reads.length).toBe(3 * (4 + 2));
    expect(Math.max(...reads)).toBe(8);
    // a stream that gives the wrong number of values is refused, naming the read
    const short: TailStream = { labels: train.labels, read: async (rows) => new Float32Array(rows.length * 99) };
    await expect(trainTail({ tail, classes: 3, train: short, createSession: ortFactory }, { epochs: 1, batchSize: 8 })).rejects.toThrow('training rows of epoch 1: a read of 8 rows gave 792 values, expected 8 × 100');
  });
});

describe('keptRows', () => {
  it('keeps the first rows read up to its size and reads the others again, values unchanged', async () => {
    const r = createRng(2, 'kept');
    const data: TailData = { x: Float32Array.from({ length: 6 * 100 }, () => r.normal()), labels: Int32Array.from([0, 1, 2, 0, 1, 2]) };
    const asked: number[][] = [];
    const inner = counted(data, 100, []);
    // room for 3 rows of 100 float32 values
    const kept = keptRows({ labels: data.labels, read: (rows) => {
        asked.push([...rows]);
        return inner.read(rows);
      },
    }, 3 * 400);
    const first = await kept.read([4, 0, 1, 0, 5]);
    const again = await kept.read([5, 4, 0, 1, 2]);
    expect(asked).toEqual([[4, 0, 1, 5], [5, 2]]);
    const row = (k: number) => data.x.subarray(k * 100, (k + 1) * 100);
    [4, 0, 1, 0, 5].forEach((k, j) => expect(first.subarray(j * 100, (j + 1) * 100)).toEqual(row(k)));
    [5, 4, 0, 1, 2].forEach((k, j) => expect(again.subarray(j * 100, (j + 1) * 100)).toEqual(row(k)));
  });
});

// real photos through the real frozen part of MobileNetV2 (fp32), cut for --unfreeze 1 (320×7×7 activations)
const model = loadBackbone();
const plan = planUnfreeze(model, EMBEDDING, 1, 'mnv2', undefined, 'none');
const cutDims = (plan.cut.cutShape.slice(1) as number[]).reduce((a, b) => a * b, 1);
const openFrozen = () => Embedder.open({ id: 'mnv2', model: plan.cut.frozen, spec: DEFAULT_SPEC, cut: { tensor: plan.cut.cut, pool: false, dims: cutDims }, key: 'phase2-stream-test', sha256: '' });
const augment = parseAugmentation('default');
interface Item {
  file: string;
  label: number;
}
const itemsOf = (s: ReturnType<typeof listSplit>): Item[] => s.files.map((file, i) => ({ file, label: s.labels[i]! }));

describe('viewStream over the library Embedder', () => {
  it('gives the rows asked (repeats too) from just their views, also from an embedder that ignores rows, and names a file that no longer reads', async () => {
    const frozen = await openFrozen();
    try {
      const items = itemsOf(listSplit('train', 2)); // 6 photos
      const calls: { items: number; rows: number }[] = [];
      const asked: ViewEmbedder<Item> = {
        embed: (its, e) => {
          calls.push({ items: its.length, rows: e.rows?.length ?? its.length * e.views });
          return frozen.embed(its.map((i) => i.file), { ...e, cache: null });
        },
      };
      const o = { views: 3, augment, seed: 7, transient: false };
      const all = await frozen.embed(items.map((i) => i.file), { views: 3, augment, seed: 7, cache: null });
      const rows = [16, 2, 9, 2];
      const x = await viewStream(asked, items, o).read(rows);
      // rows 2, 9 and 16: view 2 of photo 0, view 0 of photo 3, view 1 of photo 5 (3 views each); row 2 twice
      expect(calls).toEqual([{ items: 3, rows: 3 }]);
      rows.forEach((r, j) => expect(x.subarray(j * cutDims, (j + 1) * cutDims)).toEqual(all.features.subarray(r * cutDims, (r + 1) * cutDims)));
      // an embedder that ignores `rows` (every view of the photos asked): the same rows
      const ignoring: ViewEmbedder<Item> = { embed: (its, e) => frozen.embed(its.map((i) => i.file), { ...e, rows: undefined, cache: null }) };
      expect(await viewStream(ignoring, items, o).read(rows)).toEqual(x);
      // a photo that no longer reads: EINPUT naming it
      const gone = [...items.slice(0, 1), { file: path.join(path.dirname(items[0]!.file), 'gone.jpg'), label: 0 }];
      await expect(viewStream(asked, gone, o).read([0, 3])).rejects.toMatchObject({ code: 'EINPUT', message: expect.stringMatching(/^phase 2: .*gone\.jpg: .*\(it embedded in phase 1: was it changed or removed during the run\?\)$/) });
      // the library Embedder refuses rows out of order
      await expect(frozen.embed([items[0]!.file], { views: 3, rows: [2, 1], cache: null })).rejects.toThrow('Expected ascending row indices below 3 (files × views), no repeats for rows but received [2,1]');
    } finally {
      await frozen.dispose();
    }
  });
});

describe('runPhase2 streams its activations', () => {
  it('asks the embedder for at most a batch of views per call and trains as on every view held in memory', async () => {
    const frozen = await openFrozen();
    try {
      const train = itemsOf(listSplit('train', 7)); // 21 photos × 2 views = 42 training rows
      const val = itemsOf(listSplit('val', 2)); // 6 photos
      const views = 2;
      const seed = 3;
      const K = 3;
      const rng = createRng(11, 'head');
      const head: HeadWeights = { format: 'edgetune.head', version: 1, kind: 'linear', dims: 1280, classes: K, normalize: false, layers: [{ in: 1280, out: K, weight: randn(rng, 1280 * K, 0.05), bias: new Float32Array(K) }] };
      // the hook: every call's row count (and the validation images', views 1)
      const calls: number[] = [];
      let valRows = 0;
      const embedder: ViewEmbedder<Item> = {
        embed: (its, e) => {
          calls.push(e.rows?.length ?? its.length * e.views);
          if (e.views === 1) valRows += e.rows?.length ?? its.length;
          return frozen.embed(its.map((i) => i.file), { ...e, cache: null });
        },
      };
      const settings = { epochs: 2, batchSize: 8, patience: 0, alwaysKeep: true, refit: false };
      const r = await runPhase2({ plan, head, classes: K, train, val, views, augment, seed, embedder, createSession: ortFactory, settings, blocks: 1 });
      // training and validation reads: a batch (8 rows); the before/after scoring and the tuned embeddings: up to 32
      // rows (their batch), never the 42 training views at once
      expect(calls.filter((n) => n <= 8).length).toBeGreaterThanOrEqual(2 * Math.ceil(42 / 8));
      expect(Math.max(...calls)).toBeLessThanOrEqual(32);
      expect(calls.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2 * train.length * views + 2 * val.length);
      // the validation rows (6 photos, 0.06 MB each here) are kept in memory (PHASE2_VAL_MEMORY_MB): produced once
      expect(valRows).toBe(val.length);
      expect(r.summary.freshViews).toBe(true);
      expect(r.tuned!.embeddings.train.length).toBe(train.length * views * 1280);
      // the same run on every view held in memory (epoch 1 on the seed's views, epoch 2 on freshViewSeed(seed, 2)'s)
      const files = (its: Item[]) => its.map((i) => i.file);
      const labels = (its: Item[], v: number) => Int32Array.from(its.flatMap((i) => Array<number>(v).fill(i.label)));
      const x1 = (await frozen.embed(files(train), { views, augment, seed, cache: null })).features;
      const x2 = (await frozen.embed(files(train), { views, augment, seed: freshViewSeed(seed, 2), cache: null })).features;
      const xv = (await frozen.embed(files(val), { views: 1, seed, cache: null })).features;
      const ref = await trainUnfrozen(
        plan,
        { head, classes: K, train: { x: x1, labels: labels(train, views) }, val: { x: xv, labels: labels(val, 1) }, createSession: ortFactory, refresh: async () => ({ x: x2, labels: labels(train, views) }) },
        phase2Config({}, settings, seed),
      );
      // the frozen part runs in other batches when streamed (onnxruntime's float sums can differ in the last bits)
      r.summary.history.forEach((h, e) => {
        expect(h.trainLoss).toBeCloseTo(ref.history[e]!.trainLoss, 4);
        expect(h.valLoss!).toBeCloseTo(ref.history[e]!.valLoss!, 4);
      });
      expect(r.summary.accuracy).toBe(ref.metrics.accuracy);
    } finally {
      await frozen.dispose();
    }
  });
});
