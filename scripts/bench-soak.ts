// `npm run bench:soak`: memory over a long stream. Runs the watch pipeline (worker inference, smoothing,
// stats, result events) on `test:testsrc2` frames (ffmpeg's synthetic source, as fast as possible) for
// SOAK_FRAMES frames (default 100 000), samples the process RSS and the V8 heap every SOAK_EVERY frames
// after a warm-up (SOAK_WARMUP, default 5 000), and prints the least-squares slope of each in MiB per
// 10 000 frames and per hour at the measured frame rate. A flat RSS slope (within noise) means no leak;
// a heap slope near zero with a growing RSS points at native memory (onnxruntime, sharp, buffers).
// Needs ffmpeg.

import { createSource } from '../devices/index.js';
import { loadClassifier } from '../runtime/classify/classifier.js';
import { table } from '../runtime/core/format.js';
import { geometryOfClassifier, StreamPipeline } from '../runtime/stream/pipeline.js';

const frames = Number(process.env.SOAK_FRAMES ?? 100_000);
const warmup = Number(process.env.SOAK_WARMUP ?? 5_000);
const every = Number(process.env.SOAK_EVERY ?? 5_000);
const MiB = 1024 * 1024;

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den ? num / den : 0;
}

const clf = await loadClassifier(process.env.SOAK_MODEL ?? 'mobilenetv2-int8', { providers: ['cpu'], lazy: true });
const source = await createSource(`test:testsrc2?size=320x240&rate=30`, { realtime: false, ...geometryOfClassifier(clf) });
const pipeline = new StreamPipeline(source, clf, { maxFrames: frames, inference: 'worker' });
const at: number[] = [];
const rss: number[] = [];
const heap: number[] = [];
let seen = 0;
const t0 = performance.now();
pipeline.on('result', () => {
  seen++;
  if (seen >= warmup && (seen - warmup) % every === 0) {
    const m = process.memoryUsage();
    at.push(seen);
    rss.push(m.rss / MiB);
    heap.push(m.heapUsed / MiB);
    process.stderr.write(`frame ${seen}: rss ${(m.rss / MiB).toFixed(1)} MiB, heap ${(m.heapUsed / MiB).toFixed(1)} MiB\n`);
  }
});
const stats = await pipeline.run();
const seconds = (performance.now() - t0) / 1000;
await clf.dispose();
const fps = seen / seconds;
const per10k = (s: number) => s * 10_000;
const perHour = (s: number) => s * fps * 3600;
process.stdout.write(`${seen} frames in ${seconds.toFixed(0)} s (${fps.toFixed(0)} fps), ${at.length} samples after ${warmup} warm-up frames; dropped ${stats.dropped}\n`);
process.stdout.write(
  table([
    ['memory', 'first MiB', 'last MiB', 'MiB / 10k frames', 'MiB / hour at this rate'],
    ['RSS', rss[0]?.toFixed(1) ?? '-', rss.at(-1)?.toFixed(1) ?? '-', per10k(slope(at, rss)).toFixed(3), perHour(slope(at, rss)).toFixed(1)],
    ['V8 heap', heap[0]?.toFixed(1) ?? '-', heap.at(-1)?.toFixed(1) ?? '-', per10k(slope(at, heap)).toFixed(3), perHour(slope(at, heap)).toFixed(1)],
  ]),
);
