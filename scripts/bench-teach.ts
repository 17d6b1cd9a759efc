// `npm run bench:teach`: does a training stall the stream? A 20 fps test pattern is classified by a
// StreamPipeline while a teach training runs, (thread) as `watch --teach` runs it — createTeach's train(),
// finetune() on a worker thread (runtime/stream/teach-worker.ts) — and (same thread) finetune() called
// on the stream's own thread, as it ran before. Reported per scenario: the training's wall time, the
// frames classified during it, and the median and largest gap between two classified frames.
// Data: a tf_flowers-dev head on daisy / dandelion / roses / sunflowers (40 photos each, 8 views) is the
// base; 40 tulips are taught. A fresh embedding cache per scenario (both embed the same images).
// Env: BENCH_RATE (frames per second of the pattern, default 20); EDGETUNE_MODEL_PATH (default the shared models).

import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSource } from '../devices/index.js';
import { loadClassifier } from '../runtime/classify/classifier.js';
import { table } from '../runtime/core/format.js';
import { median } from '../runtime/core/stats.js';
import { sharedRoot } from '../runtime/io/paths.js';
import { geometryOfClassifier, StreamPipeline } from '../runtime/stream/pipeline.js';
import { createTeach } from '../runtime/stream/teach.js';
import { finetune } from '../runtime/train/node/finetune.js';

const RATE = Number(process.env.BENCH_RATE ?? 20);
process.env.EDGETUNE_MODEL_PATH ??= path.join(sharedRoot(), 'models');
const flowers = path.join(sharedRoot(), 'datasets', 'tf_flowers-dev', 'train');

async function scenario(name: 'thread' | 'same thread', base: string): Promise<string[]> {
  const work = await mkdtemp(path.join(tmpdir(), 'edgetune-bench-teach-'));
  const cache = path.join(work, 'cache');
  const clf = await loadClassifier(base, { topK: 1 });
  const source = await createSource(`test:?rate=${RATE}`, geometryOfClassifier(clf));
  const p = new StreamPipeline(source, clf, { topK: 1 });
  const stamps: number[] = [];
  p.on('result', () => stamps.push(performance.now()));
  const running = p.run();
  while (stamps.length < RATE) await new Promise((r) => setTimeout(r, 50));
  const teach = await createTeach(p, { dir: path.join(work, 'teach'), loadModel: (f) => loadClassifier(f, { topK: 1 }), finetune: { cache } });
  const tulips = readdirSync(path.join(flowers, 'tulips')).sort().map((f) => path.join(flowers, 'tulips', f));
  for (const f of tulips) await teach.addExample('tulips', readFileSync(f));
  const t0 = performance.now();
  if (name === 'thread') await teach.train();
  else await finetune(undefined, { resume: base, addClass: [{ name: 'tulips', dir: path.join(work, 'teach', 'examples', 'tulips') }], out: path.join(work, 'same.onnx'), cache });
  const t1 = performance.now();
  await teach.close();
  p.stop();
  await running;
  await clf.dispose();
  const during = stamps.filter((t) => t >= t0 && t <= t1);
  const gaps = during.slice(1).map((t, i) => t - during[i]!);
  return [name, ((t1 - t0) / 1000).toFixed(1), String(during.length), median(gaps).toFixed(0), Math.max(...gaps).toFixed(0)];
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'edgetune-bench-teach-base-'));
  const train = path.join(work, 'train');
  mkdirSync(train);
  for (const c of ['daisy', 'dandelion', 'roses', 'sunflowers']) symlinkSync(path.join(flowers, c), path.join(train, c));
  const base = path.join(work, 'flowers4.onnx');
  process.stderr.write('bench:teach: training the base (4 classes, 8 views)…\n');
  await finetune(train, { views: 8, out: base });
  const rows = [await scenario('thread', base), await scenario('same thread', base)];
  process.stdout.write(`stream of ${RATE} fps while a training teaches tulips (40 photos):\n`);
  process.stdout.write(table([['training on', 'seconds', 'frames during', 'median gap ms', 'largest gap ms'], ...rows]) + '\n');
}

await main();
