// `npm run bench:finetune` (second part): head-only vs `--unfreeze 1` vs `--unfreeze 2` (the shipped
// defaults: fresh augmented views every epoch, the never-worse rule) and `--unfreeze 2 --unfreeze-views
// cached` (the views phase 1 cached, every epoch: phase 2 before issue 20), with mobilenetv2-fp32, trained
// on the dev sets' train/ alone (its default validation split, as a user runs it) and scored by `eval` on
// val/ (held out) (BENCH_DATASETS, default beans-dev,cats_dogs-dev,tf_flowers-dev), over seeds
// (BENCH_SEEDS, default 0,1): accuracy per run, whether phase 2 was kept, the mean over seeds,
// wall time per run on this machine, and the time per epoch of phase 2 against a bare onnxruntime run of
// the tail's forward pass over the same rows (the training graph's overhead: gradients, weights fed as
// inputs instead of prepacked constants). Runs the built CLI, one process per run, with one embedding
// cache warm from the first.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from '../runtime/core/format.js';
import { median } from '../runtime/core/stats.js';
import { sharedRoot } from '../runtime/io/paths.js';
import { createSession } from '../runtime/session/session.js';
import { planUnfreeze } from '../runtime/train/finetune-tail.js';
import { loadBackbone } from '../runtime/train/node/embed.js';
import { encodeModel } from '../runtime/onnx/model.js';
import type { FinetuneReport } from '../runtime/train/node/finetune.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'runtime', 'cli', 'main.js');

/** Median ms of a bare forward run of the tail over `rows` activations, in batches of 16. */
async function bareTailEpochMs(unfreeze: number, rows: number): Promise<number> {
  const bb = await loadBackbone('mobilenetv2-fp32');
  const plan = planUnfreeze(bb.model, bb.cut.tensor, unfreeze);
  const per = plan.cut.cutShape.slice(1) as number[];
  const size = per.reduce((a, b) => a * b, 1);
  const s = await createSession(encodeModel(plan.cut.tail), { providers: ['cpu'] });
  const x = new Float32Array(16 * size).map((_, i) => (i % 97) / 97);
  const times: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    for (let done = 0; done < rows; done += 16) await s.run({ [s.inputs[0]!.name]: { type: 'float32', data: x, dims: [16, ...per] } });
    times.push(performance.now() - t0);
  }
  await s.dispose();
  return median(times);
}

const SETTINGS: { name: string; args: string[]; unfreeze: number }[] = [
  { name: 'head only', args: [], unfreeze: 0 },
  { name: '--unfreeze 1', args: ['--unfreeze', '1'], unfreeze: 1 },
  { name: '--unfreeze 2', args: ['--unfreeze', '2'], unfreeze: 2 },
  { name: '--unfreeze 2 --unfreeze-views cached', args: ['--unfreeze', '2', '--unfreeze-views', 'cached'], unfreeze: 2 },
];

async function main(): Promise<void> {
  const datasets = (process.env.BENCH_DATASETS ?? 'beans-dev,cats_dogs-dev,tf_flowers-dev').split(',');
  const seeds = (process.env.BENCH_SEEDS ?? '0,1').split(',').map(Number);
  const work = mkdtempSync(path.join(tmpdir(), 'edgetune-bench-unfreeze-'));
  const cache = path.join(work, 'cache');
  const rows: (string | number)[][] = [['data', 'run', 'seed', 'held-out accuracy', 'phase 2 kept', 'wall s', 'phase 2 s/epoch', 'bare tail s/epoch', 'ratio']];
  const means: (string | number)[][] = [['data', 'run', ...seeds.map((s) => `seed ${s}`), 'mean', 'kept', 'mean wall s']];
  try {
    for (const ds of datasets) {
      const root = path.join(sharedRoot(), 'datasets', ds);
      for (const st of SETTINGS) {
        const acc: number[] = [];
        const walls: number[] = [];
        let kept = 0;
        for (const seed of seeds) {
          const out = path.join(work, `${ds}-${st.unfreeze}-${seed}.onnx`);
          // as a user runs it: the training folder alone (its default validation split), then the held-out val/ photos
          const args = [cli, 'finetune', path.join(root, 'train'), '--model', 'mobilenetv2-fp32', '--seed', String(seed), '--out', out, '--json', ...st.args];
          const t0 = performance.now();
          const r = spawnSync(process.execPath, args, { env: { ...process.env, EDGETUNE_CACHE: cache }, encoding: 'utf8', maxBuffer: 1 << 26 });
          const wall = (performance.now() - t0) / 1000;
          if (r.status !== 0) throw new Error(`finetune ${args.slice(2).join(' ')} failed: ${r.stderr}`);
          const rep = JSON.parse(readFileSync(out.replace(/\.onnx$/, '.report.json'), 'utf8')) as FinetuneReport;
          const ev = spawnSync(process.execPath, [cli, 'eval', path.join(root, 'val'), '--model', out, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
          if (ev.status !== 0) throw new Error(`eval ${out} failed: ${ev.stderr}`);
          const test = (JSON.parse(ev.stdout) as { accuracy: number }).accuracy;
          acc.push(test);
          walls.push(wall);
          const u = rep.unfreeze;
          if (u?.kept) kept++;
          if (u) {
            const perEpoch = median(u.history.map((e) => e.ms)) / 1000;
            const bare = (await bareTailEpochMs(st.unfreeze, Object.values(rep.counts.train).reduce((a, b) => a + b, 0) * rep.views)) / 1000;
            rows.push([ds, st.name, seed, test.toFixed(3), u.kept ? 'yes' : 'no', wall.toFixed(1), perEpoch.toFixed(2), bare.toFixed(2), (perEpoch / bare).toFixed(1)]);
          } else rows.push([ds, st.name, seed, test.toFixed(3), '', wall.toFixed(1), '', '', '']);
        }
        const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
        means.push([ds, st.name, ...acc.map((a) => a.toFixed(3)), mean(acc).toFixed(3), st.unfreeze ? `${kept}/${seeds.length}` : '', mean(walls).toFixed(1)]);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(table(rows));
  process.stdout.write(`\naccuracy on val/ (held out; trained on train/ with its default validation split), mean over seeds ${seeds.join(',')}:\n`);
  process.stdout.write(table(means));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
