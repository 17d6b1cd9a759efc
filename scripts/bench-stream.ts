// `npm run bench:stream`: stream throughput vs bare session.run throughput, measured in the same run
// on the same model and thread settings, plus per-stage latency. Scenarios:
//   bare       session.run on one pre-made tensor, back to back (the ceiling)
//   source     the ffmpeg file source alone (decode + scale; no model)
//   pre-decoded  60 video frames decoded once and replayed through the pipeline (lossless): the
//                pipeline is inference-bound, so stream/bare should be ≥ 0.9
//   file         file → ffmpeg → pipeline, as fast as possible (decode shares the cores)
//   (worker|main) inference on a worker thread (default) or on the main thread
//   live       a 30 fps real-time test pattern: not inference-bound; fps out should match fps in
// Env: BENCH_MODELS (default mobilenetv2-int8,squeezenet1.1), BENCH_FRAMES (default 300),
// BENCH_THREADS (intra-op threads for both bare and stream sessions; default onnxruntime's),
// BENCH_ROUNDS (default 3: each stream run is paired with a bare run just before it; median reported).

import path from 'node:path';
import { createSource, type Frame, type FrameSource } from '../devices/index.js';
import { loadClassifier, type Classifier } from '../runtime/classify/classifier.js';
import { table } from '../runtime/core/format.js';
import { median } from '../runtime/core/stats.js';
import { sharedRoot } from '../runtime/io/paths.js';
import { toTensor } from '../runtime/image/preprocess.js';
import { geometryOfClassifier, STAGES, StreamPipeline, type StreamStats } from '../runtime/stream/pipeline.js';

const video = `file://${path.join(sharedRoot(), 'camera', 'slow_traffic_small.mp4')}`;
const models = (process.env.BENCH_MODELS ?? 'mobilenetv2-int8,squeezenet1.1').split(',');
const N = Number(process.env.BENCH_FRAMES ?? 300);
const threads = process.env.BENCH_THREADS ? Number(process.env.BENCH_THREADS) : undefined;

async function bare(clf: Classifier, n: number): Promise<number> {
  const src = await createSource(video, { realtime: false, ...geometryOfClassifier(clf) });
  let frame;
  for await (const f of src.frames()) {
    frame = f;
    break;
  }
  await src.close();
  const inputName = clf.entry?.input.name ?? clf.session.inputs[0]!.name;
  const tensor = toTensor([frame!], clf.spec);
  for (let i = 0; i < 10; i++) await clf.session.run({ [inputName]: tensor });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await clf.session.run({ [inputName]: tensor });
  return (n * 1000) / (performance.now() - t0);
}

async function sourceOnly(clf: Classifier, n: number): Promise<number> {
  const src = await createSource(video, { realtime: false, ...geometryOfClassifier(clf) });
  let count = 0;
  let t0 = 0;
  for await (const f of src.frames()) {
    if (f.seq === 0) t0 = performance.now();
    if (++count >= n) break;
  }
  const fps = ((count - 1) * 1000) / (performance.now() - t0);
  await src.close();
  return fps;
}

/** The first `k` video frames, decoded once, replayed `n` times in a lossless in-memory source. */
async function memorySource(clf: Classifier, k: number, n: number): Promise<FrameSource> {
  const src = await createSource(video, { realtime: false, ...geometryOfClassifier(clf) });
  const cached: Frame[] = [];
  for await (const f of src.frames()) if (cached.push(f) >= k) break;
  await src.close();
  let closed = false;
  return {
    uri: `memory:${k}-frames`, kind: 'memory', live: false, reconnects: 0,
    width: cached[0]!.width, height: cached[0]!.height, channels: cached[0]!.channels,
    subscribe: () => () => undefined,
    async *frames() {
      for (let seq = 0; seq < n && !closed; seq++) yield { ...cached[seq % k]!, seq, timestamp: Date.now() };
    },
    async close() {
      closed = true;
    },
  };
}

/** Steady-state throughput: results after the first, over the time since the first. */
async function stream(clf: Classifier, uri: string, n: number, inference: 'worker' | 'main', realtime: boolean): Promise<{ fps: number; stats: StreamStats }> {
  const src = uri === 'memory' ? await memorySource(clf, 60, n) : await createSource(uri, { realtime, ...geometryOfClassifier(clf) });
  const p = new StreamPipeline(src, clf, { maxFrames: n, inference, sessionOptions: { providers: ['cpu'], threads } });
  let first = 0;
  let last = 0;
  let count = 0;
  p.on('result', () => {
    last = performance.now();
    if (count++ === 0) first = last;
  });
  const stats = await p.run();
  return { fps: ((count - 1) * 1000) / (last - first), stats };
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const rows: (string | number)[][] = [['model', 'scenario', 'frames', 'fps', 'bare fps', 'vs bare', 'dropped', ...STAGES.map((s) => `${s} p50/p95 ms`)]];
const f1 = (v: number) => v.toFixed(1);
for (const m of models) {
  const clf = await loadClassifier(m, { providers: ['cpu'], threads });
  const bareRuns: number[] = [];
  for (let r = 0; r < ROUNDS; r++) bareRuns.push(await bare(clf, N));
  rows.push([m, 'bare session.run', N, f1(median(bareRuns)), f1(median(bareRuns)), '1.00', '-', ...STAGES.map(() => '-')]);
  rows.push([m, 'ffmpeg source only', N, f1(await sourceOnly(clf, N)), '-', '-', '-', ...STAGES.map(() => '-')]);
  for (const [name, uri, inference, realtime, n] of [
    ['stream, pre-decoded frames (worker)', 'memory', 'worker', false, N],
    ['stream, pre-decoded frames (main)', 'memory', 'main', false, N],
    ['stream, file via ffmpeg (worker)', video, 'worker', false, N],
    ['stream, file via ffmpeg (main)', video, 'main', false, N],
    ['live 30 fps (worker)', 'test:testsrc2?rate=30', 'worker', true, 150],
  ] as const) {
    // The machine may be shared: each stream run is compared with a bare run right before it, and
    // the median round is reported.
    const rounds: { fps: number; bare: number; stats: StreamStats }[] = [];
    for (let r = 0; r < (realtime ? 1 : ROUNDS); r++) {
      const b = await bare(clf, N);
      rounds.push({ ...(await stream(clf, uri, n, inference, realtime)), bare: b });
    }
    rounds.sort((a, b) => a.fps / a.bare - b.fps / b.bare);
    const { fps, bare: b, stats } = rounds[Math.floor(rounds.length / 2)]!;
    rows.push([
      m,
      name,
      stats.processed,
      f1(fps),
      realtime ? '-' : f1(b),
      realtime ? '-' : (fps / b).toFixed(2),
      stats.dropped,
      ...STAGES.map((s) => `${stats.latency[s].p50.toFixed(1)}/${stats.latency[s].p95.toFixed(1)}`),
    ]);
  }
  await clf.dispose();
}
process.stdout.write(`video: ${video} (640x360 H.264, 29.97 fps); threads: ${threads ?? 'onnxruntime default'}; cpu provider\n`);
process.stdout.write(table(rows));
process.stdout.write(
  'goal: stream/bare ≥ 0.9 when inference-bound (pre-decoded rows: the pipeline alone). File rows also decode H.264 on the\n' +
    'same cores, so with a fast model they are bound by decode + inference together; live rows are paced by the source (≈ 30 fps).\n',
);
