// `npm run bench:serve`: what the Open Inference Protocol costs. `edgetune serve` runs in its own
// process on loopback; this process classifies the same decoded photo locally and through the server
// (binary tensors, then JSON tensors), interleaved, and prints the median time per request by batch size.
// Env: BENCH_MODELS (default mobilenetv2-int8; found in EDGETUNE_MODEL_PATH, default the shared models), BENCH_ROUNDS (default 30), BENCH_THREADS (default 1,
// for both the local session and the server's).

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadClassifier, type Classifier } from '../runtime/classify/classifier.js';
import { table } from '../runtime/core/format.js';
import { median } from '../runtime/core/stats.js';
import { sharedRoot } from '../runtime/io/paths.js';

const models = (process.env.BENCH_MODELS ?? 'mobilenetv2-int8').split(',');
const rounds = Number(process.env.BENCH_ROUNDS ?? 30);
const threads = String(process.env.BENCH_THREADS ?? 1);
const photo = path.join(sharedRoot(), 'camera', 'winml_dog.jpg');
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'runtime', 'cli', 'main.js');

// The repository's models unless told otherwise (EDGETUNE_SHARED's models folder).
process.env.EDGETUNE_MODEL_PATH ??= path.join(sharedRoot(), 'models');
const child = spawn(process.execPath, [cli, 'serve', ...models, '--port', '0', '--threads', threads], { stdio: ['ignore', 'pipe', 'inherit'] });
const base = await new Promise<string>((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    const m = /serving \d+ models? at (http:\/\/\S+\/) /.exec(out);
    if (m) resolve(m[1]!);
  });
  child.on('exit', (code) => reject(new Error(`edgetune serve exited (${code})`)));
});
const rows: (string | number)[][] = [['model', 'batch', 'local ms', 'binary ms', 'JSON ms', 'binary / local']];
try {
  for (const m of models) {
    const variants: [string, Classifier][] = [
      ['local', await loadClassifier(m, { threads: Number(threads), providers: ['cpu'] })],
      ['binary', await loadClassifier(`${base}v2/models/${m}`, { remote: { binary: true } })],
      ['json', await loadClassifier(`${base}v2/models/${m}`, { remote: { binary: false } })],
    ];
    const img = await variants[0]![1].decode(photo);
    for (const batch of [1, Math.min(8, variants[0]![1].maxBatch)].filter((b, i, a) => a.indexOf(b) === i)) {
      const imgs = Array.from({ length: batch }, () => img);
      const times = new Map<string, number[]>(variants.map(([k]) => [k, []]));
      for (const [, c] of variants) await c.probabilities(imgs); // warm-up
      for (let r = 0; r < rounds; r++) {
        for (const [k, c] of variants) {
          const t0 = performance.now();
          await c.probabilities(imgs);
          times.get(k)!.push(performance.now() - t0);
        }
      }
      const [l, b, j] = ['local', 'binary', 'json'].map((k) => +median(times.get(k)!).toFixed(2));
      rows.push([m, batch, l!, b!, j!, +(b! / l!).toFixed(2)]);
    }
    for (const [, c] of variants) await c.dispose();
  }
} finally {
  child.kill('SIGINT');
}
process.stdout.write(table(rows));
