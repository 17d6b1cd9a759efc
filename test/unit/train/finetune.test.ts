// The fine-tune module both drivers use (runtime/train/finetune.ts): one split for the CLI's dataset
// items and the page's samples, the meaning of views (view 0 the un-augmented image), the defaults the
// CLI's usage text and the page's controls show, the transfer learner's refusals, and a
// collect → train → export → predict round trip on real mobilenetv2-int8 embeddings of hymenoptera
// photos, the export reusing the embedding session's graph.

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUTO_PROTOTYPE_BELOW,
  collectEmbeddings,
  createTransfer,
  finetuneConfig,
  FINETUNE_DEFAULTS,
  stratifiedSplit,
  viewCount,
  viewParams,
  type Transfer,
  type TransferResult,
  type ViewEmbedder,
} from '../../../runtime/train/finetune.js';
import { finetuneItems, type DatasetItem } from '../../../runtime/train/node/dataset.js';
import { Embedder, EmbeddingCache, loadBackbone, type Backbone } from '../../../runtime/train/node/embed.js';
import { exportClassifierModel, headFromModel, PROBABILITIES_OUTPUT } from '../../../runtime/train/export.js';
import { IDENTITY_VIEW, parseAugmentation } from '../../../runtime/train/augment/ops.js';
import { DEFAULT_CONFIG, DEFAULT_LR, headLogits } from '../../../runtime/train/index.js';
import { openSetForHead } from '../../../runtime/train/openset.js';
import { temperedSoftmax } from '../../../runtime/train/openset-scores.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { toTensor } from '../../../runtime/image/preprocess.js';
import { finetune } from '../../../runtime/cli/commands/finetune.js';
import { repoRoot, shared, tempDir } from '../../helpers.js';

const hym = shared('datasets', 'hymenoptera');
/** The first `n` photos (sorted) of each class of a hymenoptera split, class-major: the CLI's scan order. */
const photos = (split: string, n: number): DatasetItem[] =>
  ['ants', 'bees'].flatMap((c, label) => readdirSync(path.join(hym, split, c)).sort().slice(0, n).map((f) => ({ file: path.join(hym, split, c, f), label })));

describe('one stratified split for both drivers', () => {
  it('the CLI driver (finetuneItems, no --val) holds out a seeded round(n·f) of each class, the rest trains', async () => {
    const items = photos('train', 1000); // every training photo: 124 ants, 121 bees (hymenoptera/train)
    const d = await finetuneItems({ trainDir: path.join(hym, 'train'), valSplit: 0.2, addedValSplit: 0.2, seed: 42 });
    const key = (it: DatasetItem) => `${it.label}:${path.basename(it.file)}`;
    const val = new Set(d.val.map(key));
    const train = new Set(d.train.map(key));
    // disjoint, and together every photo once
    expect([...val].filter((k) => train.has(k))).toEqual([]);
    expect(new Set([...val, ...train])).toEqual(new Set(items.map(key)));
    // round(124·0.2) = 25 ants, round(121·0.2) = 24 bees
    expect([d.val.filter((it) => it.label === 0).length, d.val.filter((it) => it.label === 1).length]).toEqual([25, 24]);
    // drawn, not the first ones of each class
    expect(d.val.filter((it) => it.label === 0).map((it) => path.basename(it.file))).not.toEqual(items.filter((it) => it.label === 0).slice(0, 25).map((it) => path.basename(it.file)));
    // the same seed holds out the same photos, another seed others
    const again = await finetuneItems({ trainDir: path.join(hym, 'train'), valSplit: 0.2, addedValSplit: 0.2, seed: 42 });
    expect(again.val.map(key)).toEqual(d.val.map(key));
    const seven = await finetuneItems({ trainDir: path.join(hym, 'train'), valSplit: 0.2, addedValSplit: 0.2, seed: 7 });
    expect(new Set(seven.val.map(key))).not.toEqual(val);
  });

  it('the page (samples in upload order, classes interleaved, no file names) holds out the same images as the CLI', () => {
    const items = photos('train', 120);
    const cli = stratifiedSplit(items, 2, 0.2, 42);
    // the page's samples, added alternately to the two classes: only each class's own order matters
    const interleaved = [...items.filter((it) => it.label === 0).map((it, i) => ({ it, at: 2 * i })), ...items.filter((it) => it.label === 1).map((it, i) => ({ it, at: 2 * i + 1 }))]
      .sort((a, b) => a.at - b.at)
      .map(({ it }) => ({ label: it.label, blob: { size: items.indexOf(it) }, name: `sample-${items.indexOf(it)}` }));
    const page = stratifiedSplit(interleaved, 2, 0.2, 42);
    expect(page.val.map((s) => s.blob.size).sort((a, b) => a - b)).toEqual(cli.val.map((it) => items.indexOf(it)).sort((a, b) => a - b));
    expect(page.val).toHaveLength(48); // round(120·0.2) = 24 per class
  });

  it('holds out at least one image of a class with two or more and never a whole class', () => {
    const few = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1].map((label, i) => ({ label, i }));
    const s = stratifiedSplit(few, 2, 0.2, 42);
    // class 0: round(2·0.2) = 0 → 1; class 1: round(15·0.2) = 3 (the kiosk test's 15 photos per class)
    expect(s.val.map((x) => x.label).sort()).toEqual([0, 1, 1, 1]);
    expect(stratifiedSplit([{ label: 0 }, { label: 1 }], 2, 0.9, 1).val).toEqual([]);
    expect(stratifiedSplit(few, 2, 0, 42).val).toEqual([]);
  });
});

describe('views', () => {
  const aug = parseAugmentation('default');
  it('view 0 is the un-augmented image, views 1.. are drawn from (seed, content key, index); none means one view', () => {
    expect(viewCount(aug)).toBe(FINETUNE_DEFAULTS.views);
    expect(viewCount(aug, 3)).toBe(3);
    expect(viewCount(parseAugmentation('none'), 4)).toBe(1);
    expect(() => viewCount(aug, 0)).toThrow('Expected a positive integer for views but received 0');
    expect(viewParams(aug, 42, 'abc', 0)).toEqual(IDENTITY_VIEW);
    const v1 = viewParams(aug, 42, 'abc', 1);
    expect(v1).not.toEqual(IDENTITY_VIEW);
    expect(viewParams(aug, 42, 'abc', 1)).toEqual(v1);
    expect(viewParams(aug, 42, 'abc', 2)).not.toEqual(v1);
    expect(viewParams(aug, 43, 'abc', 1)).not.toEqual(v1);
    expect(viewParams(aug, 42, 'abd', 1)).not.toEqual(v1);
  });

  it('a transfer takes a training image as its views, a validation image as one row', () => {
    const t = createTransfer({ labels: ['a', 'b'] });
    t.collectExample('a', new Float32Array([1, 0, 0.9, 0.1, 0.8, 0.2]), { views: 3 });
    t.collectExample(1, new Float32Array([0, 1, 0.1, 0.9, 0.2, 0.8]), { views: 3 });
    t.collectExample('b', new Float32Array([0, 1]), { split: 'val' });
    expect(t.dims).toBe(2);
    expect(t.counts()).toEqual({ train: [1, 1], val: [0, 1] });
    expect(Array.from(t.trainSet().labels)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(() => t.collectExample('b', new Float32Array([0, 1, 1, 0]), { split: 'val', views: 2 })).toThrow('Expected one view for a validation image but received 2');
    expect(() => t.collectExample('b', new Float32Array([0, 1, 1]), { views: 2 })).toThrow('Expected 2 view(s) of 2 floats but received 3 floats');
    expect(() => t.collectExample('c', new Float32Array([0, 1]))).toThrow('Expected a class index in 0..1 or one of a, b but received "c"');
    expect(() => createTransfer({ labels: ['only'] })).toThrow('training needs at least two classes');
  });

  it('the auto head is the nearest class mean below AUTO_PROTOTYPE_BELOW training images in a class', async () => {
    const t = createTransfer({ labels: ['a', 'b'] });
    for (let i = 0; i < AUTO_PROTOTYPE_BELOW; i++) t.collectExample('a', new Float32Array([1, i / 100]));
    for (let i = 0; i < AUTO_PROTOTYPE_BELOW - 1; i++) t.collectExample('b', new Float32Array([i / 100, 1]));
    expect((await t.train({ head: 'auto' })).head.kind).toBe('prototype');
    t.collectExample('b', new Float32Array([0.5, 1]));
    expect((await t.train({ head: 'auto', config: { epochs: 2 } })).head.kind).toBe('linear');
    expect((await t.train({ config: { epochs: 2 } })).head.kind).toBe(FINETUNE_DEFAULTS.head);
  });
});

describe('defaults, stated once', () => {
  it('the CLI usage text shows the module defaults', () => {
    const D = FINETUNE_DEFAULTS;
    const line = (opt: string) => finetune.usage.split('\n').find((l) => l.trimStart().startsWith(opt)) ?? '';
    expect(line('--epochs')).toContain(`(default ${D.epochs})`);
    expect(line('--batch-size')).toContain(`(default ${D.batchSize})`);
    expect(line('--patience')).toContain(`(default ${D.patience};`);
    expect(line('--seed')).toContain(`(default ${D.seed})`);
    expect(line('--val-split')).toContain(`(default ${D.valSplit};`);
    expect(line('--augment')).toContain(`(default: ${D.augment})`);
    expect(finetune.usage).toContain(`(default ${D.views}; 1 with --augment none)`);
    expect(line('--weight-decay')).toContain(`(default ${D.weightDecay})`);
    expect(line('--lr')).toContain(`adam ${DEFAULT_LR.adam}`);
    expect(finetune.usage).toContain(`Training (on ${D.normalize ? 'L2-normalised' : 'raw'} embeddings)`);
  });

  it('the page offers the default validation split and augmentation (app.ts selects them)', () => {
    const html = readFileSync(path.join(repoRoot, 'runtime', 'kiosk', 'page', 'index.html'), 'utf8');
    expect(html).toContain(`<option value="${FINETUNE_DEFAULTS.valSplit}">`);
    expect(html).toMatch(new RegExp(`<option value="${FINETUNE_DEFAULTS.augment}"[ >]`));
    const app = readFileSync(path.join(repoRoot, 'runtime', 'kiosk', 'page', 'app.ts'), 'utf8');
    expect(app).toContain("$<HTMLSelectElement>('val-split').value = String(FINETUNE_DEFAULTS.valSplit)");
  });

  it('the trainer configuration is the defaults under the overrides; normalize is off', () => {
    expect(finetuneConfig('linear')).toMatchObject({ epochs: DEFAULT_CONFIG.epochs, patience: DEFAULT_CONFIG.patience, normalize: false, hidden: 0 });
    expect(finetuneConfig('mlp', { epochs: 5, patience: undefined })).toMatchObject({ epochs: 5, patience: FINETUNE_DEFAULTS.patience, hidden: FINETUNE_DEFAULTS.hidden });
    expect(finetuneConfig('linear', { hidden: 64 }).hidden).toBe(0);
  });
});

describe('collect → train → export → predict (mobilenetv2-int8, hymenoptera)', () => {
  let bb: Backbone;
  let embedder: Embedder;
  let t: Transfer;
  let result: TransferResult;
  let onnx: Uint8Array;
  const train = photos('train', 8);
  const val = photos('val', 4);
  const views = 3;
  beforeAll(async () => {
    bb = await loadBackbone('mobilenetv2-int8');
    embedder = await Embedder.open(bb);
    const cache = new EmbeddingCache(path.join(tempDir('edgetune-ft-unit-'), 'cache'));
    const files: ViewEmbedder<DatasetItem> = { embed: (items, o) => embedder.embed(items.map((i) => i.file), { ...o, cache }) };
    t = createTransfer({ labels: ['ants', 'bees'] });
    const c = await collectEmbeddings(t, files, { train, val, augment: parseAugmentation('default'), views, seed: 42 });
    expect(c.train).toHaveLength(16);
    expect(c.val).toHaveLength(8);
    expect(c.computed).toBe(16 * views + 8);
    result = await t.train({ config: { epochs: 30 } });
    onnx = t.export(embedder.graph, bb.spec, { test: true });
  }, 120_000);
  afterAll(() => embedder?.dispose());

  it('collects every view of a training image, view 0 being the clean embedding of the validation path', async () => {
    const ts = t.trainSet();
    expect(ts.dims).toBe(1280);
    expect(ts.labels.length).toBe(16 * views);
    // view 0 of a training image is what a one-view embed (no augmentation) of the same file gives
    const clean = await embedder.embed([train[0]!.file], { cache: null });
    const row0 = ts.features.subarray(0, 1280);
    const row1 = ts.features.subarray(1280, 2 * 1280);
    expect(Math.max(...row0.map((x, j) => Math.abs(x - clean.features[j]!)))).toBeLessThan(1e-5);
    expect(Math.max(...row1.map((x, j) => Math.abs(x - clean.features[j]!)))).toBeGreaterThan(1e-3);
  });

  it('trains a linear head on raw embeddings and scores it on the validation photos', () => {
    expect(result.head.kind).toBe('linear');
    expect(result.head.normalize).toBe(false);
    expect(result.training!.config.normalize).toBe(false);
    expect(result.validated).toBe(true);
    expect(result.metrics.confusion.flat().reduce((a, b) => a + b, 0)).toBe(8);
    // 16 training photos: the head separates ants from bees on 8 unseen ones better than chance
    // (a full hymenoptera run scores 0.961; this small one is only asked to beat a coin)
    expect(result.metrics.accuracy).toBeGreaterThan(0.5);
    expect(t.evaluate().accuracy).toBe(result.metrics.accuracy);
  });

  it('exports one ONNX model whose predictions are the head on the embeddings, built from the session graph', async () => {
    // reusing the embedding graph gives the very bytes a fresh cut of the backbone gives (with the same open-set calibration)
    const openSet = openSetForHead(result.head, t.trainSet(), t.valSet())!;
    expect(Buffer.from(onnx).equals(Buffer.from(exportClassifierModel(bb.model, bb.cut, result.head, ['ants', 'bees'], bb.spec, { test: true }, openSet)))).toBe(true);
    const back = headFromModel(onnx);
    expect(back.info.labels).toEqual(['ants', 'bees']);
    expect(Array.from(back.head.layers[0]!.weight)).toEqual(Array.from(result.head.layers[0]!.weight));
    const s = await ort.InferenceSession.create(onnx);
    try {
      const vs = t.valSet()!;
      // the exported probabilities are tempered by the calibration's temperature (Guo et al. 2017)
      const want = temperedSoftmax(headLogits(result.head, vs.features), 2, openSet.calibration.temperature);
      for (const [i, it] of val.entries()) {
        const x = toTensor([await decodeImage(it.file, bb.spec)], bb.spec);
        const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x.data as Float32Array, [...x.dims]) });
        const p = out[PROBABILITIES_OUTPUT]!.data as Float32Array;
        expect(p[0]! + p[1]!).toBeCloseTo(1, 5);
        // the exported graph and the in-process head agree up to float rounding
        expect(Math.abs(p[0]! - want[i * 2]!)).toBeLessThan(1e-4);
      }
    } finally {
      await s.release();
    }
  });
});
