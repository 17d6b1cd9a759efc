// `npm run bench:soak`: memory over a long stream. Runs the watch pipeline (worker inference, smoothing,
// stats, result events) and the watch server, with HTTP clients coming and going in another process
// (scripts/soak-client.ts), on `test:testsrc2` frames (ffmpeg's synthetic source, as fast as possible)
// for SOAK_FRAMES frames (default 100 000). It samples memory every SOAK_EVERY frames (default 5 000)
// after a warm-up (SOAK_WARMUP, default 25 000: with the JPEG preview routes served, glibc's malloc
// arenas fill during the first ~3.5 minutes of clients; see the README's Long runs) and prints the
// least-squares slope of each reading, with its standard error, in MiB per 10 000 frames and per hour
// at the measured frame rate: the process RSS (everything, native included), the main isolate's V8
// heap, the inference worker's V8 heap, and `external` (ArrayBuffers and other memory V8 knows of
// outside its heap). A slope within two standard errors of zero is flat within noise; JavaScript heaps
// flat with a growing RSS point at native memory (onnxruntime, sharp, ffmpeg pipes, the allocator).
// Heap snapshots of both isolates are written after warm-up and near the end (SOAK_SNAPSHOTS: a folder,
// default <tmp>/edgetune-soak; `none` to skip) and compared by object kind (scripts/heap-diff.ts): what
// grew between them is what a JavaScript leak would be made of. Run with --expose-gc (npm run bench:soak
// does) so each sample follows a full collection in both isolates. Needs ffmpeg.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { createSource } from '../devices/index.js';
import { loadClassifier } from '../runtime/classify/classifier.js';
import { table } from '../runtime/core/format.js';
import { geometryOfClassifier, StreamPipeline } from '../runtime/stream/pipeline.js';
import { startServer } from '../runtime/stream/serve.js';
import { formatHeapDiff } from './heap-diff.js';

const frames = Number(process.env.SOAK_FRAMES ?? 100_000);
const warmup = Number(process.env.SOAK_WARMUP ?? 25_000);
const every = Number(process.env.SOAK_EVERY ?? 5_000);
const MiB = 1024 * 1024;
const snapDir = process.env.SOAK_SNAPSHOTS === 'none' ? undefined : (process.env.SOAK_SNAPSHOTS ?? path.join(os.tmpdir(), 'edgetune-soak'));
if (snapDir) mkdirSync(snapDir, { recursive: true });

/**
 * Least-squares slope of y over x and its standard error (σ̂ / √Σ(x − x̄)², σ̂² = residual sum of
 * squares / (n − 2)): a slope within 2 standard errors of zero is flat within the noise of the samples.
 */
function fit(xs: number[], ys: number[]): { slope: number; se: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  const slope = den ? num / den : 0;
  let rss = 0;
  for (let i = 0; i < n; i++) rss += (ys[i]! - my - slope * (xs[i]! - mx)) ** 2;
  return { slope, se: n > 2 && den ? Math.sqrt(rss / (n - 2) / den) : NaN };
}

const clf = await loadClassifier(process.env.SOAK_MODEL ?? 'mobilenetv2-int8', { providers: ['cpu'], lazy: true });
const source = await createSource(`test:testsrc2?size=320x240&rate=30`, { realtime: false, ...geometryOfClassifier(clf) });
const pipeline = new StreamPipeline(source, clf, { maxFrames: frames, inference: 'worker' });
const at: number[] = [];
const series = { rss: [] as number[], heap: [] as number[], worker: [] as number[], external: [] as number[] };
let seen = 0;
let sampling: Promise<void> = Promise.resolve();
const snapshots: Record<'warm' | 'end', { main?: string; worker?: string }> = { warm: {}, end: {} };
/** Both isolates' heap snapshots (each forces a full GC first). */
async function snapshot(tag: 'warm' | 'end'): Promise<void> {
  if (!snapDir) return;
  snapshots[tag].main = writeHeapSnapshot(path.join(snapDir, `main-${tag}.heapsnapshot`));
  snapshots[tag].worker = await pipeline.worker?.writeHeapSnapshot(path.join(snapDir, `worker-${tag}.heapsnapshot`));
}
const t0 = performance.now();
pipeline.on('result', () => {
  seen++;
  // samples end one interval before the last frame: the worker is still there to answer
  if (seen >= warmup && seen < frames && (seen - warmup) % every === 0) {
    const n = seen;
    sampling = sampling.then(async () => {
      if (n === warmup) await snapshot('warm');
      // live memory, not garbage waiting for a collection: both isolates collect first (npm run bench:soak
      // starts node with --expose-gc, which the worker inherits)
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      const w = await pipeline.worker?.memory().catch(() => undefined);
      at.push(n);
      series.rss.push(m.rss / MiB);
      series.heap.push(m.heapUsed / MiB);
      series.worker.push((w?.heapUsed ?? 0) / MiB);
      series.external.push((m.external + (w?.external ?? 0)) / MiB);
      process.stderr.write(`frame ${n}: rss ${(m.rss / MiB).toFixed(1)} MiB, main heap ${(m.heapUsed / MiB).toFixed(1)} MiB, worker heap ${((w?.heapUsed ?? 0) / MiB).toFixed(1)} MiB, external ${((m.external + (w?.external ?? 0)) / MiB).toFixed(1)} MiB\n`);
      if (n + every >= frames && n > warmup) await snapshot('end');
    });
  }
});
// HTTP clients coming and going, as a kiosk's dashboard and browsers do: the watch server's routes
// polled, and event / MJPEG streams opened for a second and dropped (SOAK_HTTP=0: none)
const http = process.env.SOAK_HTTP === '0' ? undefined : await startServer(pipeline, { port: 0, log: () => undefined });
let requests = 0;
let client: ChildProcess | undefined;
if (http) {
  // The clients (scripts/soak-client.ts) run in a child process, so the memory measured is the server's alone (an HTTP client in
  // this process would add its own connection pool and buffers to the readings).
  // SOAK_ROUTES limits them to some routes (comma-separated, e.g. `/healthz,/metrics`): all by default.
  const routes = process.env.SOAK_ROUTES ?? '/healthz,/metrics,/snapshot.jpg,/events,/stream.mjpg';
  client = spawn(process.execPath, [fileURLToPath(new URL('./soak-client.js', import.meta.url)), http.url, routes], { stdio: ['ignore', 'pipe', 'inherit'] });
  client.stdout!.on('data', (d: Buffer) => {
    const m = /(\d+)\s*$/.exec(d.toString());
    if (m) requests = Number(m[1]);
  });
}
const stats = await pipeline.run();
if (client) {
  const gone = new Promise((r) => client!.once('exit', r));
  client.kill();
  await gone;
}
await http?.close();
await sampling;
const seconds = (performance.now() - t0) / 1000;
await clf.dispose();
const fps = seen / seconds;
const per10k = (s: number) => s * 10_000;
const perHour = (s: number) => s * fps * 3600;
process.stdout.write(`${seen} frames in ${seconds.toFixed(0)} s (${fps.toFixed(0)} fps), ${at.length} samples after ${warmup} warm-up frames; dropped ${stats.dropped}; ${http ? `${requests} HTTP requests served` : 'no HTTP clients'}\n`);
const row = (name: string, ys: number[]) => {
  const f = fit(at, ys);
  const verdict = !Number.isFinite(f.se) ? 'too few samples' : Math.abs(f.slope) <= 2 * f.se ? 'flat within noise' : f.slope > 0 ? 'grows' : 'shrinks';
  return [name, ys[0]?.toFixed(1) ?? '-', ys.at(-1)?.toFixed(1) ?? '-', `${per10k(f.slope).toFixed(3)} ± ${per10k(f.se).toFixed(3)}`, perHour(f.slope).toFixed(1), verdict];
};
process.stdout.write(
  table([
    ['memory', 'first MiB', 'last MiB', 'MiB / 10k frames (± SE)', 'MiB / hour at this rate', 'slope vs 2 SE'],
    row('RSS (process)', series.rss),
    row('V8 heap, main', series.heap),
    row('V8 heap, inference worker', series.worker),
    row('external (both isolates)', series.external),
  ]),
);
for (const which of ['main', 'worker'] as const) {
  const a = snapshots.warm[which];
  const b = snapshots.end[which];
  if (a && b) process.stdout.write(`\nheap snapshots, ${which} isolate (after warm-up → frame ${at.at(-1)}):\n${formatHeapDiff(a, b, 10)}`);
}
