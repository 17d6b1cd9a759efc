// `npm run bench:finetune`: wall time of head-only fine-tuning on hymenoptera with mobilenetv2-int8,
// with 1 and 4 views per training image, split into embedding (decode + augment + session.run) and
// head training, from a cold embedding cache each time (a fresh temp dir) and once warm. Prints a
// table with the machine (machineLine); timings on a shared machine are noisy.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAugmentation } from '../runtime/train/augment/ops.js';
import { scanDataset } from '../runtime/train/node/dataset.js';
import { Embedder, EmbeddingCache, loadBackbone } from '../runtime/train/node/embed.js';
import { computeMetrics, predictHead, predictions, trainHeadSync, type FeatureSet } from '../runtime/train/index.js';
import { table } from '../runtime/core/format.js';
import { sharedRoot } from '../runtime/io/paths.js';
import { machineLine } from './interleave.js';

async function main(): Promise<void> {
  const root = path.join(sharedRoot(), 'datasets', 'hymenoptera');
  const train = await scanDataset(path.join(root, 'train'));
  const val = await scanDataset(path.join(root, 'val'), { classes: train.classes });
  const bb = await loadBackbone('mobilenetv2-int8');
  const rows: (string | number)[][] = [['views', 'cache', 'embedded', 'embedding s', 'training s', 'total s', 'val accuracy']];
  const augment = parseAugmentation('default');
  const dir = mkdtempSync(path.join(tmpdir(), 'edgetune-bench-ft-'));
  try {
    for (const [views, warm] of [[1, false], [4, false], [4, true]] as const) {
      const cacheDir = path.join(dir, warm ? 'warm' : `cold-${views}`);
      const cache = new EmbeddingCache(cacheDir);
      const t0 = performance.now();
      const e = await Embedder.open(bb);
      const et = await e.embed(train.items.map((i) => i.file), { views, augment, cache });
      const ev = await e.embed(val.items.map((i) => i.file), { views: 1, cache });
      await e.dispose();
      const t1 = performance.now();
      const set = (items: typeof train.items, f: Float32Array, v: number): FeatureSet => ({
        features: f,
        labels: Int32Array.from(items.flatMap((i) => Array<number>(v).fill(i.label))),
        dims: et.dims,
        classes: train.classes.length,
      });
      const tr = set(train.items, et.features, views);
      const va = set(val.items, ev.features, 1);
      const r = trainHeadSync(tr, va, {});
      const t2 = performance.now();
      const acc = computeMetrics(predictions(predictHead(r.head, va.features), 2), va.labels, 2).accuracy;
      rows.push([views, warm ? 'warm' : 'cold', et.computed + ev.computed, +((t1 - t0) / 1000).toFixed(1), +((t2 - t1) / 1000).toFixed(2), +((t2 - t0) / 1000).toFixed(1), +acc.toFixed(3)]);
      if (!warm && views === 4) {
        // prime the warm row's cache with the same views
        rmSync(path.join(dir, 'warm'), { recursive: true, force: true });
        const { cpSync } = await import('node:fs');
        cpSync(cacheDir, path.join(dir, 'warm'), { recursive: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`finetune benchmark: hymenoptera (${train.items.length} train, ${val.items.length} val), mobilenetv2-int8, --augment default, onnxruntime's default threads (one per physical core)\n${machineLine()}\n\n`);
  process.stdout.write(table(rows));
}

main().catch((err) => {
  process.stderr.write(`bench-finetune: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
