// `npm run bench:unknown`: how well a fine-tuned head says "unknown", on real embeddings. For each split
// of tf_flowers-dev into 3 known and 2 held-out flower kinds, a linear head is trained as `finetune`
// trains it (FINETUNE_DEFAULTS: 4 views with the default augmentation, 20% of the training folder held
// out for validation), and the unknown scores are compared: max-softmax (the baseline), energy,
// kNN (k = 5), Mahalanobis on the embedding with a shared or per-class covariance, and the multi-layer
// score (runtime/train/openset.ts fitLayered: what `finetune` ships for a backbone with open-set taps,
// the taps alone and with the embedding). Known test images: the known classes' val folder; near unknowns:
// every photo of the held-out flower kinds; far unknowns: every photo of cats_dogs-dev. Reports AUROC
// near/far, and at each method's own threshold (the 95% quantile of its validation scores) the share of
// known kept and of unknowns rejected, plus the expected calibration error of the softmax before and after
// temperature scaling. Splits 1-2 chose the method (covariance kind, taps); splits 3-4 report it: the
// means are given for each group separately.
//
// Usage: node dist/scripts/bench-unknown.js [--model mobilenetv2-int8] [--views 4] [--taps T1,T2 (backbone tensors; default the backbone's own, runtime/train/graph/taps.ts; none: the embedding alone)]

import path from 'node:path';
import { parseAugmentation } from '../runtime/train/augment/ops.js';
import { scanDataset, stratifiedSplit, type DatasetItem } from '../runtime/train/node/dataset.js';
import { Embedder, loadBackbone, type EmbedResult } from '../runtime/train/node/embed.js';
import { openSetTaps } from '../runtime/train/node/openset-taps.js';
import { EMBEDDING_OUTPUT } from '../runtime/train/export.js';
import { computeMetrics, headLogits, predictions, trainHeadSync, type FeatureSet } from '../runtime/train/index.js';
import { FINETUNE_DEFAULTS, finetuneConfig } from '../runtime/train/finetune.js';
import { DEFAULT_KEEP_TARGET, fitMahalanobis, knnScores, fitLayered, layeredScores, mahalanobisScores } from '../runtime/train/openset.js';
import { auroc, energyScores, expectedCalibrationError, fitTemperature, keptShare, maxSoftmaxScores, quantile, temperedSoftmax } from '../runtime/train/openset-scores.js';
import { table } from '../runtime/core/format.js';
import { sharedRoot } from '../runtime/io/paths.js';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
};

/** The known-class splits of tf_flowers-dev's 5 kinds; the first TUNE_SPLITS chose the method (covariance kind, layers), the rest report it. */
const SPLITS: number[][] = [[0, 1, 2], [2, 3, 4], [0, 3, 4], [1, 2, 4]];
const TUNE_SPLITS = 2;

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
  const taps = arg('taps', openSetTaps(bb).join(',')).split(',').filter((t) => t && t !== 'none');
  const augment = parseAugmentation(FINETUNE_DEFAULTS.augment);
  const t0 = performance.now();
  // per layer (the embedding, then each tap): every flower photo in `views` views (view 0 clean); unknowns: the clean view only
  // one backbone pass gives the embedding and every tap (the Embedder opened with the taps, as finetune embeds)
  const e = await Embedder.open(bb, {}, { taps });
  let all: { train: EmbedResult; val: EmbedResult; pets: EmbedResult };
  try {
    all = {
      train: await e.embed(ftrain.items.map((i) => i.file), { views, augment }),
      val: await e.embed(fval.items.map((i) => i.file), { views: 1 }),
      pets: await e.embed([...ptrain.items, ...pval.items].map((i) => i.file), { views: 1 }),
    };
  } finally {
    await e.dispose();
  }
  // layer k (-1: the embedding) of a result, as a result of its own
  const layerOf = (r: EmbedResult, k: number): EmbedResult => (k < 0 ? r : { ...r, features: r.taps[k]!.features, dims: r.taps[k]!.dims });
  const layers = [-1, ...taps.map((_, k) => k)].map((k) => ({ name: k < 0 ? EMBEDDING_OUTPUT : taps[k]!, train: layerOf(all.train, k), val: layerOf(all.val, k), pets: layerOf(all.pets, k) }));
  const embedS = (performance.now() - t0) / 1000;
  const index = new Map(ftrain.items.map((it, i) => [it, i]));
  const C = ftrain.classes;
  const rows: (string | number)[][] = [['known', 'method', 'AUROC near', 'AUROC far', 'known kept', 'near rejected', 'far rejected']];
  const eceRows: (string | number)[][] = [['known', 'val acc', 'test acc', 'T', 'ECE before', 'ECE after']];
  const sums = new Map<string, { tune: number[]; report: number[] }>();
  for (const [si, known] of SPLITS.entries()) {
    const name = known.map((k) => C[k]).join('+') + (si < TUNE_SPLITS ? ' (tune)' : ' (report)');
    const relabel = (it: DatasetItem): DatasetItem => ({ file: it.file, label: known.indexOf(it.label) });
    const items = ftrain.items.filter((i) => known.includes(i.label));
    const { train, val } = stratifiedSplit(items.map(relabel), known.length, FINETUNE_DEFAULTS.valSplit, FINETUNE_DEFAULTS.seed);
    const origIndex = (it: DatasetItem): number => index.get(items.find((x) => x.file === it.file)!)!;
    const K = known.length;
    // one layer's sets for this split
    const setsOf = (l: (typeof layers)[number]) => {
      const d = l.train.dims;
      const row = (f: Float32Array, i: number, v = 0, vs = 1): Float32Array => f.subarray((i * vs + v) * d, (i * vs + v + 1) * d);
      const stack = (rs: Float32Array[]): Float32Array => {
        const out = new Float32Array(rs.length * d);
        rs.forEach((r, i) => out.set(r, i * d));
        return out;
      };
      const trSet: FeatureSet = {
        features: stack(train.flatMap((it) => Array.from({ length: views }, (_, v) => row(l.train.features, origIndex(it), v, views)))),
        labels: Int32Array.from(train.flatMap((it) => Array<number>(views).fill(it.label))),
        dims: d,
        classes: K,
      };
      const vaSet: FeatureSet = { features: stack(val.map((it) => row(l.train.features, origIndex(it), 0, views))), labels: Int32Array.from(val.map((i) => i.label)), dims: d, classes: K };
      const testItems = fval.items.map((it, i) => ({ it, i })).filter(({ it }) => known.includes(it.label));
      const test = stack(testItems.map(({ i }) => row(l.val.features, i)));
      const testLabels = Int32Array.from(testItems.map(({ it }) => known.indexOf(it.label)));
      const near = stack([
        ...ftrain.items.map((it, i) => ({ it, f: row(l.train.features, i, 0, views) })),
        ...fval.items.map((it, i) => ({ it, f: row(l.val.features, i) })),
      ].filter(({ it }) => !known.includes(it.label)).map((r) => r.f));
      return { tensor: l.name, trSet, vaSet, test, testLabels, near, far: l.pets.features };
    };
    const sets = layers.map(setsOf);
    const { trSet, vaSet, test, testLabels, near, far } = sets[0]!;
    const head = trainHeadSync(trSet, vaSet, finetuneConfig('linear')).head;
    const L = (f: Float32Array): Float32Array => headLogits(head, f);
    const [lv, lt, ln, lf] = [L(vaSet.features), L(test), L(near), L(far)];
    const T = fitTemperature(lv, vaSet.labels, K);
    const accOf = (l: Float32Array, y: Int32Array): number => computeMetrics(predictions(l, K), y, K).accuracy;
    eceRows.push([
      name, +accOf(lv, vaSet.labels).toFixed(3), +accOf(lt, testLabels).toFixed(3), +T.toFixed(2),
      +expectedCalibrationError(temperedSoftmax(lt, K, 1), testLabels, K).toFixed(3),
      +expectedCalibrationError(temperedSoftmax(lt, K, T), testLabels, K).toFixed(3),
    ]);
    const shared = fitMahalanobis(trSet, vaSet, { covariance: 'shared' });
    const perClass = fitMahalanobis(trSet, vaSet, { covariance: 'per-class' });
    // [val, test, near, far] scores of each method
    type Scores = [Float32Array, Float32Array, Float32Array, Float32Array];
    const fromLogits = (f: (l: Float32Array) => Float32Array): Scores => [f(lv), f(lt), f(ln), f(lf)];
    const fromFeatures = (f: (x: Float32Array) => Float32Array): Scores => [f(vaSet.features), f(test), f(near), f(far)];
    const layered = (ls: typeof sets): Scores => {
      const det = fitLayered(ls.map((l) => ({ tensor: l.tensor, train: l.trSet, val: l.vaSet })));
      const at = (k: 'vaSet' | 'test' | 'near' | 'far'): Float32Array => layeredScores(det, ls.map((l) => (k === 'vaSet' ? l.vaSet.features : l[k])));
      return [at('vaSet'), at('test'), at('near'), at('far')];
    };
    const methods: [string, () => Scores][] = [
      ['max-softmax', () => fromLogits((l) => maxSoftmaxScores(l, K, 1))],
      ['max-softmax (T)', () => fromLogits((l) => maxSoftmaxScores(l, K, T))],
      ['energy', () => fromLogits((l) => energyScores(l, K, 1))],
      ['kNN k=5', () => fromFeatures((f) => knnScores(trSet, f, 5))],
      ['Mahalanobis shared', () => fromFeatures((f) => mahalanobisScores(shared, f))],
      ['Mahalanobis per-class', () => fromFeatures((f) => mahalanobisScores(perClass, f))],
      ...(taps.length
        ? ([
            [`layers ${taps.join('+')} (shipped)`, () => layered(sets.slice(1))],
            [`layers ${taps.join('+')}+embedding`, () => layered(sets)],
          ] as [string, () => Scores][])
        : []),
    ];
    for (const [m, score] of methods) {
      const [sv, st, sn, sf] = score();
      const thr = quantile(sv, DEFAULT_KEEP_TARGET);
      const r = [auroc(st, sn), auroc(st, sf), keptShare(st, thr), 1 - keptShare(sn, thr), 1 - keptShare(sf, thr)];
      rows.push([name, m, ...r.map((x) => +x.toFixed(3))]);
      const s = sums.get(m) ?? { tune: [0, 0, 0, 0, 0], report: [0, 0, 0, 0, 0] };
      const part = si < TUNE_SPLITS ? s.tune : s.report;
      r.forEach((x, i) => (part[i]! += x / (si < TUNE_SPLITS ? TUNE_SPLITS : SPLITS.length - TUNE_SPLITS)));
      sums.set(m, s);
    }
  }
  for (const [m, s] of sums) rows.push(['mean, tuning splits', m, ...s.tune.map((x) => +x.toFixed(3))]);
  for (const [m, s] of sums) rows.push(['mean, report splits', m, ...s.report.map((x) => +x.toFixed(3))]);
  process.stdout.write(
    `unknown-input benchmark: ${model}, ${views} view(s) per training image, tf_flowers-dev (3 known kinds; the other 2 = near unknowns, ` +
      `${ptrain.items.length + pval.items.length} cats_dogs-dev photos = far unknowns), threshold = ${DEFAULT_KEEP_TARGET} quantile of each score on validation; ` +
      `splits 1-${TUNE_SPLITS} chose the method, the others report it; layers: ${taps.join(', ') || 'none'}; embedding ${embedS.toFixed(1)} s\n\n`,
  );
  process.stdout.write(table(rows));
  process.stdout.write('\nsoftmax calibration on the known test photos (temperature fitted on validation):\n\n');
  process.stdout.write(table(eceRows));
}

main().catch((err) => {
  process.stderr.write(`bench-unknown: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
