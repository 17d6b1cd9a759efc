// `npm run bench:unknown`: how well a fine-tuned head says "unknown", on real embeddings. For each split
// of tf_flowers-dev into 3 known and 2 held-out flower kinds, a linear head is trained as `finetune`
// trains it (FINETUNE_DEFAULTS: 4 views with the default augmentation, 20% of the training folder held
// out for validation), and the unknown scores are compared: max-softmax (the baseline), energy,
// kNN (k = 5) and Mahalanobis (what finetune fits; runtime/train/openset.ts). Known test images: the
// known classes' val folder; near unknowns: every photo of the held-out flower kinds; far unknowns:
// every photo of cats_dogs-dev. Reports AUROC near/far, and at each method's own threshold (the 95%
// quantile of its validation scores) the share of known kept and of unknowns rejected, plus the
// expected calibration error of the softmax before and after temperature scaling.
//
// Usage: node dist/scripts/bench-unknown.js [--model mobilenetv2-int8] [--views 4]

import path from 'node:path';
import { parseAugmentation } from '../runtime/train/augment/ops.js';
import { scanDataset, stratifiedSplit, type DatasetItem } from '../runtime/train/node/dataset.js';
import { Embedder, loadBackbone } from '../runtime/train/node/embed.js';
import { computeMetrics, headLogits, predictions, trainHeadSync, type FeatureSet } from '../runtime/train/index.js';
import { FINETUNE_DEFAULTS, finetuneConfig } from '../runtime/train/finetune.js';
import {
  auroc, DEFAULT_KEEP_TARGET, energyScores, expectedCalibrationError, fitMahalanobis, fitTemperature, keptShare, knnScores,
  mahalanobisScores, maxSoftmaxScores, quantile, temperedSoftmax,
} from '../runtime/train/openset.js';
import { table } from '../runtime/core/format.js';
import { sharedRoot } from '../runtime/io/paths.js';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
};

async function main(): Promise<void> {
  const model = arg('model', 'mobilenetv2-int8');
  const views = Number(arg('views', String(FINETUNE_DEFAULTS.views)));
  const flowers = path.join(sharedRoot(), 'datasets', 'tf_flowers-dev');
  const pets = path.join(sharedRoot(), 'datasets', 'cats_dogs-dev');
  const ftrain = await scanDataset(path.join(flowers, 'train'));
  const fval = await scanDataset(path.join(flowers, 'val'), { classes: ftrain.classes });
  const ptrain = await scanDataset(path.join(pets, 'train'));
  const pval = await scanDataset(path.join(pets, 'val'), { classes: ptrain.classes });
  const bb = await loadBackbone(model);
  const e = await Embedder.open(bb);
  const augment = parseAugmentation(FINETUNE_DEFAULTS.augment);
  const t0 = performance.now();
  // every flower photo: `views` views (view 0 clean); unknowns: the clean view only
  const trainEmb = await e.embed(ftrain.items.map((i) => i.file), { views, augment });
  const valEmb = await e.embed(fval.items.map((i) => i.file), { views: 1 });
  const petEmb = await e.embed([...ptrain.items, ...pval.items].map((i) => i.file), { views: 1 });
  await e.dispose();
  const d = trainEmb.dims;
  const embedS = (performance.now() - t0) / 1000;
  const row = (f: Float32Array, i: number, v = 0, vs = 1): Float32Array => f.subarray((i * vs + v) * d, (i * vs + v + 1) * d);
  const stack = (rows: Float32Array[]): Float32Array => {
    const out = new Float32Array(rows.length * d);
    rows.forEach((r, i) => out.set(r, i * d));
    return out;
  };
  const index = new Map(ftrain.items.map((it, i) => [it, i]));
  const C = ftrain.classes;
  const splits: number[][] = [[0, 1, 2], [2, 3, 4], [0, 3, 4], [1, 2, 4]];
  const rows: (string | number)[][] = [['known', 'method', 'AUROC near', 'AUROC far', 'known kept', 'near rejected', 'far rejected']];
  const eceRows: (string | number)[][] = [['known', 'val acc', 'test acc', 'T', 'ECE before', 'ECE after']];
  const sums = new Map<string, number[]>();
  for (const known of splits) {
    const name = known.map((k) => C[k]).join('+');
    const relabel = (it: DatasetItem): DatasetItem => ({ file: it.file, label: known.indexOf(it.label) });
    const items = ftrain.items.filter((i) => known.includes(i.label));
    const { train, val } = stratifiedSplit(items.map(relabel), known.length, FINETUNE_DEFAULTS.valSplit, FINETUNE_DEFAULTS.seed);
    const origIndex = (it: DatasetItem): number => index.get(items.find((x) => x.file === it.file)!)!;
    const trSet: FeatureSet = {
      features: stack(train.flatMap((it) => Array.from({ length: views }, (_, v) => row(trainEmb.features, origIndex(it), v, views)))),
      labels: Int32Array.from(train.flatMap((it) => Array<number>(views).fill(it.label))),
      dims: d,
      classes: known.length,
    };
    const vaSet: FeatureSet = { features: stack(val.map((it) => row(trainEmb.features, origIndex(it), 0, views))), labels: Int32Array.from(val.map((i) => i.label)), dims: d, classes: known.length };
    const testItems = fval.items.map((it, i) => ({ it, i })).filter(({ it }) => known.includes(it.label));
    const test = stack(testItems.map(({ i }) => row(valEmb.features, i)));
    const testLabels = Int32Array.from(testItems.map(({ it }) => known.indexOf(it.label)));
    const nearRows = [
      ...ftrain.items.map((it, i) => ({ it, f: row(trainEmb.features, i, 0, views) })),
      ...fval.items.map((it, i) => ({ it, f: row(valEmb.features, i) })),
    ].filter(({ it }) => !known.includes(it.label));
    const near = stack(nearRows.map((r) => r.f));
    const far = petEmb.features;
    const head = trainHeadSync(trSet, vaSet, finetuneConfig('linear')).head;
    const K = known.length;
    const L = (f: Float32Array): Float32Array => headLogits(head, f);
    const [lv, lt, ln, lf] = [L(vaSet.features), L(test), L(near), L(far)];
    const T = fitTemperature(lv, vaSet.labels, K);
    const accOf = (l: Float32Array, y: Int32Array): number => computeMetrics(predictions(l, K), y, K).accuracy;
    eceRows.push([
      name, +accOf(lv, vaSet.labels).toFixed(3), +accOf(lt, testLabels).toFixed(3), +T.toFixed(2),
      +expectedCalibrationError(temperedSoftmax(lt, K, 1), testLabels, K).toFixed(3),
      +expectedCalibrationError(temperedSoftmax(lt, K, T), testLabels, K).toFixed(3),
    ]);
    const maha = fitMahalanobis(trSet, vaSet);
    const mahaRaw = fitMahalanobis(trSet, vaSet, { normalize: false });
    const methods: [string, (f: Float32Array, l: Float32Array) => Float32Array][] = [
      ['max-softmax', (_f, l) => maxSoftmaxScores(l, K, 1)],
      ['max-softmax (T)', (_f, l) => maxSoftmaxScores(l, K, T)],
      ['energy', (_f, l) => energyScores(l, K, 1)],
      ['kNN k=5', (f) => knnScores(trSet, f, 5)],
      ['Mahalanobis raw', (f) => mahalanobisScores(mahaRaw, f)],
      ['Mahalanobis', (f) => mahalanobisScores(maha, f)],
    ];
    for (const [m, score] of methods) {
      const [sv, st, sn, sf] = [score(vaSet.features, lv), score(test, lt), score(near, ln), score(far, lf)];
      const thr = quantile(sv, DEFAULT_KEEP_TARGET);
      const r = [auroc(st, sn), auroc(st, sf), keptShare(st, thr), 1 - keptShare(sn, thr), 1 - keptShare(sf, thr)];
      rows.push([name, m, ...r.map((x) => +x.toFixed(3))]);
      const s = sums.get(m) ?? [0, 0, 0, 0, 0];
      r.forEach((x, i) => (s[i]! += x / splits.length));
      sums.set(m, s);
    }
  }
  for (const [m, s] of sums) rows.push(['mean', m, ...s.map((x) => +x.toFixed(3))]);
  process.stdout.write(
    `unknown-input benchmark: ${model}, ${views} view(s) per training image, tf_flowers-dev (3 known kinds; the other 2 = near unknowns, ` +
      `${ptrain.items.length + pval.items.length} cats_dogs-dev photos = far unknowns), threshold = ${DEFAULT_KEEP_TARGET} quantile of each score on validation; embedding ${embedS.toFixed(1)} s\n\n`,
  );
  process.stdout.write(table(rows));
  process.stdout.write('\nsoftmax calibration on the known test photos (temperature fitted on validation):\n\n');
  process.stdout.write(table(eceRows));
}

main().catch((err) => {
  process.stderr.write(`bench-unknown: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
