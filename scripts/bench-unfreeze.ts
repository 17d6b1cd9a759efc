// `npm run bench:finetune` (second part): where phase 2's time goes, then head-only vs `--unfreeze 1` vs
// `--unfreeze 2` with mobilenetv2-fp32 on held-out photos. Prints the machine (machineLine) first and last.
// 1. Speed (BENCH_SPEED=0 skips it; BENCH_THREADS, default 1,2; BENCH_BIASES, default none,all): for the trained part of --unfreeze 1
//    and 2, with the frozen blocks' biases (`all`, the default: the trained graph starts at the input) or
//    without (`none`: it starts at the unfrozen blocks), one training step (batch 16,
//    the phase-2 default) against a bare forward run of the same tail (weights as prepacked initializers),
//    interleaved so both see the same load (median and ratio of the fastest runs), both in sessions whose
//    threads do not spin, as phase 2's (BENCH_SPIN=1: onnxruntime's spinning default); a phase-2 epoch
//    (trainTail with phase2Config's defaults, 3 epochs, the median one) on synthetic activations of
//    beans-dev's size, split into the training graph's runs, the validation pass and the rest (feeds,
//    optimizer, float32 copies); and onnxruntime's profile of the step by role: forward ops, and for
//    the backward which gradient (dX input, dW weight, dB bias, act = ReLU/Clip masks, loss) each kernel
//    computes, depthwise convolutions apart (e.g. `grad dX ConvTranspose(depthwise)`).
// 2. Accuracy (BENCH_ACCURACY=0 skips it): head-only vs `--unfreeze 1` and `--unfreeze 2` (the shipped
//    defaults: the frozen blocks' biases too, fresh augmented views every epoch, the never-worse rule, refit),
//    both without the biases, and `--unfreeze 2 --unfreeze-views cached --no-refit --unfreeze-biases none`
//    (phase 2 before issue 20, with the rule) (BENCH_SETTINGS picks some by key: head,u1,u2,u1-none,u2-none,
//    u2-old; default all), trained on the dev sets'
//    train/ alone (its default validation split, as a user runs it) and scored by `eval` on val/ (held
//    out) (BENCH_DATASETS, default beans-dev,cats_dogs-dev,tf_flowers-dev), over seeds (BENCH_SEEDS,
//    default 0,1): accuracy per run, whether phase 2 was kept, the mean over seeds, wall time per run on
//    this machine, and the time per epoch of phase 2 against a bare onnxruntime run of the trained part's
//    forward pass (from the cut phase 2 starts at) over the same rows. Runs the built CLI, one process per run, with one embedding cache warm from the first.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from '../runtime/core/format.js';
import { median } from '../runtime/core/stats.js';
import { interleavedTimes, machineLine } from './interleave.js';
import { sharedRoot } from '../runtime/io/paths.js';
import { createSession } from '../runtime/session/session.js';
import { planUnfreeze, UNFREEZE_DEFAULTS, type UnfreezeBiases } from '../runtime/train/finetune-tail.js';
import { loadBackbone } from '../runtime/train/node/embed.js';
import { encodeModel, type OnnxModel } from '../runtime/onnx/model.js';
import { readFloat32 } from '../runtime/onnx/graph.js';
import { buildTrainingGraph } from '../runtime/train/graph/autodiff.js';
import { trainTail } from '../runtime/train/graph/tail-trainer.js';
import { phase2Config } from '../runtime/train/phase2.js';
import { createRng } from '../runtime/core/rng.js';
import type { TensorData } from '../runtime/core/tensor.js';
import type { FinetuneReport } from '../runtime/train/node/finetune.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'runtime', 'cli', 'main.js');

const bareTailMs = new Map<string, Promise<number>>();
/** Median ms of a bare forward run of phase 2's trained part (cut → embedding) over `rows` activations, in batches of 16 (measured once per plan and rows). */
function bareTailEpochMs(unfreeze: number, biases: UnfreezeBiases, rows: number): Promise<number> {
  // with the biases of every frozen block the cut is at the input whatever `unfreeze` is: one measurement
  const key = `${biases === 'all' ? 'all' : `${unfreeze}:${biases}`}:${rows}`;
  if (!bareTailMs.has(key)) bareTailMs.set(key, measureBareTailEpochMs(unfreeze, biases, rows));
  return bareTailMs.get(key)!;
}

async function measureBareTailEpochMs(unfreeze: number, biases: UnfreezeBiases, rows: number): Promise<number> {
  const bb = await loadBackbone('mobilenetv2-fp32');
  const plan = planUnfreeze(bb.model, bb.cut.tensor, unfreeze, 'mobilenetv2-fp32', undefined, biases);
  const per = plan.cut.cutShape.slice(1) as number[];
  const size = per.reduce((a, b) => a * b, 1);
  // a session like phase 2's (threads that sleep between operators), so the ratio compares like with like
  const s = await createSession(encodeModel(plan.cut.tail), { providers: ['cpu'], spinning: false });
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

/**
 * What each node of a training graph does, for the profile: `forward <op>` for the tail and head,
 * `loss`, and for the backward part (nodes named `grad.<hint>…` by autodiff.ts) the gradient it serves:
 * `dX`/`dW`/`dB` of a Conv (depthwise ones marked) with the operator that computes it, `act` for the
 * Relu/Clip masks, `sum` for accumulations. Keyed by node name and by first output (onnxruntime renames
 * fused nodes after either).
 */
function nodeRoles(model: OnnxModel): Map<string, string> {
  const roles = new Map<string, string>();
  const g = model.graph;
  const dw = new Set(g.node.filter((n) => n.opType === 'Conv' && Number(n.attribute.find((a) => a.name === 'group')?.i ?? 1) > 1).map((n) => n.output[0]!));
  for (const n of g.node) {
    const out = n.output[0] ?? '';
    let role: string;
    if (!out.startsWith('grad.')) role = out === 'loss' ? 'loss' : `forward ${n.opType}${dw.has(out) ? '(depthwise)' : ''}`;
    else {
      const hint = out.slice(5).replace(/_\d+$/, '');
      if (/^(dX|W_t|W_flip|dX_.*)$/.test(hint)) role = 'dX';
      else if (/^(dW|dW_.*|x_.*|dy_.*)$/.test(hint)) role = 'dW';
      else if (hint === 'dB') role = 'dB';
      else if (/^(relu_mask|dRelu.*|clip_.*|dClip.*)$/.test(hint)) role = 'act';
      else if (hint === 'accum') role = 'sum';
      else role = 'loss';
      // a depthwise conv's gradient nodes read its weight (dX) or write its weight's shape: mark by group
      const group = Number(n.attribute.find((a) => a.name === 'group')?.i ?? 1);
      role = `grad ${role} ${n.opType}${group > 1 ? '(depthwise)' : ''}`;
    }
    if (n.name) roles.set(n.name, role);
    roles.set(out, role);
  }
  return roles;
}

/** Kernel time (µs) per role from an onnxruntime profile file (Chrome trace JSON), summed over its runs. */
function profileRoles(file: string, roles: ReadonlyMap<string, string>): Map<string, number> {
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }[];
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.op_name || !e.name?.endsWith('_kernel_time')) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    const base = node.replace(/(_token_\d+|_nchwc|_output_\d+)$/, '');
    const role = roles.get(node) ?? roles.get(base) ?? (/^Reorder/.test(e.args.op_name) ? 'layout Reorder' : `other ${e.args.op_name}`);
    // the role names our node; the kernel that ran may be a fused one (FusedConv, NCHWc Conv)
    const key = role.split(' ')[0] === 'grad' || role.startsWith('forward') ? `${role.replace(/ \S+$/, '')} ${e.args.op_name}${role.includes('(depthwise)') ? '(depthwise)' : ''}` : role;
    out.set(key, (out.get(key) ?? 0) + (e.dur ?? 0));
  }
  return out;
}

export interface StepProfile {
  unfreeze: number;
  /** The frozen blocks' biases trained too ('all', the default) or not ('none'). */
  biases: UnfreezeBiases;
  threads: number | undefined;
  /** Median ms of one training step (session.run of the training graph, batch 16). */
  stepMs: number;
  /** Median ms of one bare forward run of the tail (batch 16, weights as initializers). */
  bareMs: number;
  /** Fastest training step over fastest bare run (less sensitive to other processes than the medians). */
  minRatio: number;
  /** A phase-2 epoch (trainTail, phase-2 defaults) over `rows` rows with `valRows` validation rows: median ms of the whole epoch, its graph runs and its validation. */
  epoch: { rows: number; valRows: number; ms: number; runMs: number; valMs: number };
  /** Share of kernel time per role (see profileRoles), largest first. */
  shares: [string, number][];
}

/**
 * One training step of the `unfreeze`-block tail of mobilenetv2-fp32 (batch 16, the phase-2 default,
 * 3-class linear head) against a bare forward run of the same tail, both median of `runs` after a
 * warm-up, and the per-role kernel profile of `profileRuns` more steps.
 */
async function profileTrainingStep(unfreeze: number, biases: UnfreezeBiases, threads: number | undefined, work: string, runs = 15, profileRuns = 5): Promise<StepProfile> {
  // as phase 2's sessions (runtime/train/node/finetune.ts); BENCH_SPIN=1 measures onnxruntime's spinning default
  const spinning = process.env.BENCH_SPIN === '1';
  const bb = await loadBackbone('mobilenetv2-fp32');
  const plan = planUnfreeze(bb.model, bb.cut.tensor, unfreeze, 'mobilenetv2-fp32', undefined, biases);
  const per = plan.cut.cutShape.slice(1) as number[];
  const size = per.reduce((a, b) => a * b, 1);
  const B = 16;
  const K = 3;
  const D = Number(plan.cut.tail.graph.output[0]?.type?.tensorType?.shape?.dim?.[1]?.dimValue ?? 0);
  const graph = buildTrainingGraph(plan.cut.tail, { head: [{ in: D, out: K }], mode: 'train', trainable: plan.trainable });
  const rng = createRng(0, 'bench-unfreeze');
  const x = Float32Array.from({ length: B * size }, () => Math.max(0, rng.normal()));
  const feeds: Record<string, TensorData> = {
    [graph.input]: { type: 'float32', data: x, dims: [B, ...per] },
    labels: { type: 'int64', data: BigInt64Array.from({ length: B }, (_, i) => BigInt(i % K)), dims: [B] },
  };
  const inits = new Map(plan.cut.tail.graph.initializer.map((t) => [t.name ?? '', t]));
  for (const w of graph.tailWeights) feeds[w.name] = { type: 'float32', data: readFloat32(inits.get(w.name)!), dims: w.dims };
  for (const w of graph.headWeights) feeds[w.name] = { type: 'float32', data: Float32Array.from({ length: w.dims.reduce((a, b) => a * b, 1) }, () => rng.normal() * 0.01), dims: w.dims };
  // the bare forward and the training step interleaved, so both see the same load on a shared machine
  const bare = await createSession(encodeModel(plan.cut.tail), { providers: ['cpu'], threads, spinning });
  const bareFeeds = { [bare.inputs[0]!.name]: feeds[graph.input]! };
  const bytes = encodeModel(graph.model);
  const train = await createSession(bytes, { providers: ['cpu'], threads, spinning });
  const { bare: tb, step: ts } = await interleavedTimes({ bare: () => bare.run(bareFeeds), step: () => train.run(feeds) }, runs, 3);
  await bare.dispose();
  await train.dispose();
  const bareMs = median(tb);
  const stepMs = median(ts);
  const minRatio = Math.min(...ts) / Math.min(...tb);
  // a phase-2 epoch as the CLI runs it (phase2Config defaults: batch 16, adam), on synthetic activations
  // of beans-dev's size (120 photos × 4 views, 60 validation photos), 3 epochs, the median one
  const rows = 480;
  const valRows = 60;
  const data = (n: number) => ({ x: Float32Array.from({ length: n * size }, () => Math.max(0, rng.normal())), labels: Int32Array.from({ length: n }, (_, i) => i % K) });
  const head = { format: 'edgetune.head' as const, version: 1 as const, kind: 'linear' as const, dims: D, classes: K, normalize: false, layers: [{ in: D, out: K, weight: feeds['head.0.weight']!.data as Float32Array, bias: new Float32Array(K) }] };
  const tt = await trainTail(
    { tail: plan.cut.tail, head, classes: K, train: data(rows), val: data(valRows), createSession: (b) => createSession(b, { providers: ['cpu'], threads, spinning }) },
    { ...phase2Config({}), trainable: plan.trainable, epochs: 3, patience: 0 },
  );
  const epoch = { rows, valRows, ms: median(tt.history.map((e) => e.ms)), runMs: median(tt.history.map((e) => e.runMs)), valMs: median(tt.history.map((e) => e.valMs ?? 0)) };
  const prefix = `profile-u${unfreeze}-${biases}-t${threads ?? 0}`;
  const prof = await createSession(bytes, { providers: ['cpu'], threads, spinning, enableProfiling: true, profileFilePrefix: path.join(work, prefix) });
  for (let i = 0; i < profileRuns + 1; i++) await prof.run(feeds);
  const named = prof.endProfiling();
  await prof.dispose();
  const file = named ?? readdirSync(work).filter((f) => f.startsWith(`${prefix}_`)).map((f) => path.join(work, f))[0];
  const by = file ? profileRoles(file, nodeRoles(graph.model)) : new Map<string, number>();
  const total = [...by.values()].reduce((a, b) => a + b, 0);
  const shares = [...by].map(([k, v]) => [k, v / total] as [string, number]).sort((a, b) => b[1] - a[1]);
  return { unfreeze, biases, threads, stepMs, bareMs, minRatio, epoch, shares };
}

/** The step-profile table and each setting's kernel-time shares (roles of at least 1%). */
function printProfiles(profiles: StepProfile[]): void {
  const rows: (string | number)[][] = [['tail', 'biases', 'threads', 'train step ms', 'bare forward ms', 'ratio', 'ratio of mins', 'epoch s', 'graph runs s', 'validation s', 'rest s', 'bare epoch s', 'epoch ratio']];
  for (const p of profiles) {
    const e = p.epoch;
    const bareEpoch = (p.bareMs * Math.ceil(e.rows / 16)) / 1000;
    rows.push([`--unfreeze ${p.unfreeze}`, p.biases, p.threads ?? 'default', p.stepMs.toFixed(1), p.bareMs.toFixed(1), (p.stepMs / p.bareMs).toFixed(1), p.minRatio.toFixed(1), (e.ms / 1000).toFixed(2), (e.runMs / 1000).toFixed(2), (e.valMs / 1000).toFixed(2), ((e.ms - e.runMs - e.valMs) / 1000).toFixed(2), bareEpoch.toFixed(2), (e.ms / 1000 / bareEpoch).toFixed(1)]);
  }
  const e0 = profiles[0]?.epoch;
  process.stdout.write(
    `training step (batch 16) vs a bare forward of the same trained part (biases all: from the input; none: from the unfrozen blocks), mobilenetv2-fp32; a phase-2 epoch (${e0?.rows} rows, ${e0?.valRows} validation, synthetic activations) split into its graph runs, validation and the rest (feeds, optimizer), against bare forward runs over its rows:\n` +
      table(rows),
  );
  for (const p of profiles) {
    const parts = p.shares.filter(([, v]) => v >= 0.01).map(([k, v]) => `${k} ${(100 * v).toFixed(0)}%`);
    process.stdout.write(`  profile --unfreeze ${p.unfreeze}, biases ${p.biases}, threads ${p.threads ?? 'default'}: ${parts.join(', ')}\n`);
  }
  process.stdout.write('\n');
}

/**
 * The accuracy part's runs: `key` for BENCH_SETTINGS, the CLI arguments, the unfrozen blocks and whether the
 * frozen blocks' biases train (UNFREEZE_DEFAULTS.biases unless the arguments say `--unfreeze-biases none`).
 */
const SETTINGS: { key: string; name: string; args: string[]; unfreeze: number; biases: UnfreezeBiases | '' }[] = [
  { key: 'head', name: 'head only', args: [], unfreeze: 0, biases: '' },
  // the defaults: the frozen blocks' conv biases train too (BitFit), so the trained part starts at the input
  { key: 'u1', name: '--unfreeze 1', args: ['--unfreeze', '1'], unfreeze: 1, biases: UNFREEZE_DEFAULTS.biases },
  { key: 'u2', name: '--unfreeze 2', args: ['--unfreeze', '2'], unfreeze: 2, biases: UNFREEZE_DEFAULTS.biases },
  { key: 'u1-none', name: '--unfreeze 1 --unfreeze-biases none', args: ['--unfreeze', '1', '--unfreeze-biases', 'none'], unfreeze: 1, biases: 'none' },
  { key: 'u2-none', name: '--unfreeze 2 --unfreeze-biases none', args: ['--unfreeze', '2', '--unfreeze-biases', 'none'], unfreeze: 2, biases: 'none' },
  // the old phase 2 as a whole (before fresh views, the refit and the biases), not one change at a time: the
  // screens that chose each change are in the README's phase-2 section
  { key: 'u2-old', name: '--unfreeze 2 --unfreeze-views cached --no-refit --unfreeze-biases none', args: ['--unfreeze', '2', '--unfreeze-views', 'cached', '--no-refit', '--unfreeze-biases', 'none'], unfreeze: 2, biases: 'none' },
];

async function main(): Promise<void> {
  const datasets = (process.env.BENCH_DATASETS ?? 'beans-dev,cats_dogs-dev,tf_flowers-dev').split(',');
  const seeds = (process.env.BENCH_SEEDS ?? '0,1').split(',').map(Number);
  const work = mkdtempSync(path.join(tmpdir(), 'edgetune-bench-unfreeze-'));
  const threadList = (process.env.BENCH_THREADS ?? '1,2').split(',').map((t) => (t === 'default' ? undefined : Number(t)));
  const biasesList = (process.env.BENCH_BIASES ?? 'none,all').split(',').filter(Boolean) as UnfreezeBiases[];
  const keys = (process.env.BENCH_SETTINGS ?? SETTINGS.map((x) => x.key).join(',')).split(',');
  const unknown = keys.filter((k) => !SETTINGS.some((x) => x.key === k));
  if (unknown.length) throw new Error(`BENCH_SETTINGS: unknown ${unknown.join(', ')} (keys: ${SETTINGS.map((x) => x.key).join(', ')})`);
  const settings = SETTINGS.filter((x) => keys.includes(x.key));
  process.stdout.write(`${machineLine()}; threads 'default' = onnxruntime's (one per physical core); the accuracy runs use the CLI's default threads\n\n`);
  const profiles: StepProfile[] = [];
  try {
    if (process.env.BENCH_SPEED !== '0') for (const b of biasesList) for (const u of [1, 2]) for (const t of threadList) profiles.push(await profileTrainingStep(u, b, t, work));
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  if (profiles.length) printProfiles(profiles);
  if (process.env.BENCH_ACCURACY === '0') {
    rmSync(work, { recursive: true, force: true });
    process.stdout.write(`at the end: ${machineLine()}\n`);
    return;
  }
  const cache = path.join(work, 'cache');
  const rows: (string | number)[][] = [['data', 'run', 'biases', 'seed', 'held-out accuracy', 'phase 2 kept', 'wall s', 'phase 2 s/epoch', 'bare s/epoch', 'ratio']];
  const means: (string | number)[][] = [['data', 'run', 'biases', ...seeds.map((s) => `seed ${s}`), 'mean', 'kept', 'mean wall s']];
  try {
    for (const ds of datasets) {
      const root = path.join(sharedRoot(), 'datasets', ds);
      for (const st of settings) {
        const acc: number[] = [];
        const walls: number[] = [];
        let kept = 0;
        for (const seed of seeds) {
          const out = path.join(work, `${ds}-${st.key}-${seed}.onnx`);
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
            const bare = (await bareTailEpochMs(st.unfreeze, st.biases || 'none', Object.values(rep.counts.train).reduce((a, b) => a + b, 0) * rep.views)) / 1000;
            rows.push([ds, st.name, st.biases, seed, test.toFixed(3), u.kept ? 'yes' : 'no', wall.toFixed(1), perEpoch.toFixed(2), bare.toFixed(2), (perEpoch / bare).toFixed(1)]);
          } else rows.push([ds, st.name, st.biases, seed, test.toFixed(3), '', wall.toFixed(1), '', '', '']);
          // progress, and each run's row kept on stderr should the bench be stopped before its tables
          process.stderr.write(`${rows[rows.length - 1]!.join(' | ')}\n`);
        }
        const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
        means.push([ds, st.name, st.biases, ...acc.map((a) => a.toFixed(3)), mean(acc).toFixed(3), st.unfreeze ? `${kept}/${seeds.length}` : '', mean(walls).toFixed(1)]);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(table(rows));
  process.stdout.write(`\naccuracy on val/ (held out; trained on train/ with its default validation split), mean over seeds ${seeds.join(',')}:\n`);
  process.stdout.write(table(means));
  process.stdout.write(`\nat the end: ${machineLine()}\n`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
