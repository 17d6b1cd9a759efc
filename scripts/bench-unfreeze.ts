// `npm run bench:finetune` (second part): head-only vs `--unfreeze 1` vs `--unfreeze 2` on beans-dev with
// mobilenetv2-fp32 (the shipped defaults: default augmentation, 4 views), over seeds (BENCH_SEEDS,
// default 0,1,2): validation accuracy and wall time per run on this machine, and the time per epoch
// of phase 2 against a bare onnxruntime run of the tail's forward pass over the same rows (the
// training graph's overhead: gradients, weights fed as inputs instead of prepacked constants).
// Runs the built CLI, one process per run, each with its own embedding cache warm from the first.

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

async function main(): Promise<void> {
  const beans = path.join(sharedRoot(), 'datasets', 'beans-dev');
  const seeds = (process.env.BENCH_SEEDS ?? '0,1,2').split(',').map(Number);
  const work = mkdtempSync(path.join(tmpdir(), 'edgetune-bench-unfreeze-'));
  const cache = path.join(work, 'cache');
  const rows: (string | number)[][] = [['run', 'seed', 'val accuracy', 'phase 2 gain', 'wall s', 'phase 2 s/epoch', 'bare tail s/epoch', 'ratio']];
  const acc: Record<string, number[]> = {};
  try {
    for (const seed of seeds) {
      for (const u of [0, 1, 2]) {
        const out = path.join(work, `beans-${u}-${seed}.onnx`);
        const args = [cli, 'finetune', path.join(beans, 'train'), '--val', path.join(beans, 'val'), '--model', 'mobilenetv2-fp32', '--seed', String(seed), '--out', out, '--json', ...(u ? ['--unfreeze', String(u)] : [])];
        const t0 = performance.now();
        const r = spawnSync(process.execPath, args, { env: { ...process.env, EDGETUNE_CACHE: cache }, encoding: 'utf8', maxBuffer: 1 << 26 });
        const wall = (performance.now() - t0) / 1000;
        if (r.status !== 0) throw new Error(`finetune failed: ${r.stderr}`);
        const rep = JSON.parse(readFileSync(out.replace(/\.onnx$/, '.report.json'), 'utf8')) as FinetuneReport;
        const name = u ? `--unfreeze ${u}` : 'head only';
        (acc[name] ??= []).push(rep.accuracy!);
        if (u && rep.unfreeze) {
          const perEpoch = median(rep.unfreeze.history.map((e) => e.ms)) / 1000;
          const bare = (await bareTailEpochMs(u, rep.unfreeze.history.length ? Object.values(rep.counts.train).reduce((a, b) => a + b, 0) * rep.views : 0)) / 1000;
          rows.push([name, seed, rep.accuracy!.toFixed(3), (rep.unfreeze.gain >= 0 ? '+' : '') + rep.unfreeze.gain.toFixed(3), wall.toFixed(1), perEpoch.toFixed(2), bare.toFixed(2), (perEpoch / bare).toFixed(1)]);
        } else rows.push([name, seed, rep.accuracy!.toFixed(3), '', wall.toFixed(1), '', '', '']);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(table(rows));
  process.stdout.write('\nmean validation accuracy over seeds ' + seeds.join(',') + ': ' + Object.entries(acc).map(([k, v]) => `${k} ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(3)}`).join(', ') + '\n');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
