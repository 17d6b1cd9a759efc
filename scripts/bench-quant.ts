// `npm run bench:quant`: int8 vs fp32 latency for squeezenet1.1 and mobilenetv1-0.25-128 on this CPU,
// measured in one run: each model is quantized (percentile, the default method; 100 calibration images from
// hymenoptera/train, cached in the temp folder), then fp32 and int8 sessions run the same photo
// interleaved, single image, and the medians and their ratio are printed for 1 thread and the
// default thread count. A per-operator profile of both shows where the time goes (and whether any
// Conv stayed in float). Env: BENCH_RUNS (default 200), BENCH_CALIB (default 100).

import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';

let profiled = 0;
import { tmpdir } from 'node:os';
import path from 'node:path';
import { quantizeModel } from '../calibration/index.js';
import { resolveModel } from '../models/loader.js';
import { table } from '../runtime/core/format.js';
import { decodeImage } from '../runtime/image/decode.js';
import { readModelInfo } from '../runtime/io/model-file.js';
import { decodeModel } from '../runtime/onnx/model.js';
import { sharedRoot } from '../runtime/io/paths.js';
import { toTensor } from '../runtime/image/preprocess.js';
import { createSession, type ModelSession } from '../runtime/session/session.js';
import type { TensorData } from '../runtime/core/tensor.js';

const runs = Number(process.env.BENCH_RUNS ?? 200);
const calibCount = Number(process.env.BENCH_CALIB ?? 100);
const models = (process.env.BENCH_MODELS ?? 'squeezenet1.1,mobilenetv1-0.25-128').split(',');
const work = path.join(tmpdir(), 'edgetune-bench-quant');
const image = path.join(sharedRoot(), 'camera', 'winml_dog.jpg');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function time(s: ModelSession, feeds: Record<string, TensorData>): Promise<number> {
  const t0 = performance.now();
  await s.run(feeds);
  return performance.now() - t0;
}

/** Total node time per operator type from an onnxruntime profile (Chrome trace JSON). */
function profileByOp(file: string): Map<string, number> {
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }[];
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.op_name || !e.name?.endsWith('_kernel_time')) continue;
    const key = /depthwise/i.test(e.name) ? `${e.args.op_name}(depthwise)` : e.args.op_name;
    out.set(key, (out.get(key) ?? 0) + (e.dur ?? 0));
  }
  rmSync(file, { force: true });
  return out;
}

async function profile(model: string | Uint8Array, feeds: Record<string, TensorData>, n: number): Promise<string> {
  const prefix = `profile-${++profiled}`;
  const s = await createSession(model, { providers: ['cpu'], enableProfiling: true, profileFilePrefix: path.join(work, prefix) });
  for (let i = 0; i < n; i++) await s.run(feeds);
  // onnxruntime-node does not return the file name: find it by its prefix.
  const named = s.endProfiling();
  await s.dispose();
  const file = named ?? readdirSync(work).filter((f) => f.startsWith(`${prefix}_`)).map((f) => path.join(work, f))[0];
  if (!file) return '(no profile written)';
  const by = [...profileByOp(file)].sort((a, b) => b[1] - a[1]);
  const total = by.reduce((a, [, d]) => a + d, 0);
  return by
    .slice(0, 6)
    .map(([op, d]) => `${op} ${((100 * d) / total).toFixed(0)}%`)
    .join(', ');
}

mkdirSync(work, { recursive: true });
const rows: (string | number)[][] = [['model', 'threads', 'fp32 ms', 'int8 ms', 'int8/fp32', 'int8 kernels']];
const profiles: string[] = [];
for (const id of models) {
  const out = path.join(work, `${id}-int8.onnx`);
  process.stderr.write(`quantizing ${id} (${calibCount} calibration images)…\n`);
  await quantizeModel({
    model: id,
    out,
    calib: path.join(sharedRoot(), 'datasets', 'hymenoptera', 'train'),
    calibCount,
    method: 'percentile',
    cache: path.join(work, `${id}.calib.json`),
  });
  const floatPath = (await resolveModel(id)).path;
  const spec = (await readModelInfo(out))!.preprocess;
  const x = toTensor([await decodeImage(image, spec)], spec);
  const optimized = path.join(work, `${id}-int8.optimized.onnx`);
  const probe = await createSession(out, { providers: ['cpu'], optimizedModelFilePath: optimized });
  const inputName = probe.inputs[0]!.name;
  await probe.dispose();
  const ops: Record<string, number> = {};
  for (const n of decodeModel(readFileSync(optimized)).graph.node) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
  const fused = Object.entries(ops)
    .filter(([op]) => op.startsWith('QLinear') || op.includes('Integer') || op === 'Conv' || op === 'FusedConv')
    .map(([op, n]) => `${n} ${op}`)
    .join(', ');
  const feeds = { [inputName]: x };
  for (const threads of [1, undefined]) {
    const fs = await createSession(floatPath, { providers: ['cpu'], threads });
    const qs = await createSession(out, { providers: ['cpu'], threads });
    for (let i = 0; i < 10; i++) {
      await fs.run(feeds);
      await qs.run(feeds);
    }
    const tf: number[] = [];
    const tq: number[] = [];
    for (let i = 0; i < runs; i++) {
      tf.push(await time(fs, feeds));
      tq.push(await time(qs, feeds));
    }
    await fs.dispose();
    await qs.dispose();
    const mf = median(tf);
    const mq = median(tq);
    rows.push([id, threads ?? 'default', Number(mf.toFixed(3)), Number(mq.toFixed(3)), Number((mq / mf).toFixed(3)), fused]);
  }
  profiles.push(`${id} fp32: ${await profile(floatPath, feeds, 30)}`);
  profiles.push(`${id} int8: ${await profile(out, feeds, 30)}`);
}
process.stdout.write(`image: ${image}; ${runs} interleaved runs per model, medians; cpu provider\n`);
process.stdout.write(table(rows));
process.stdout.write('\nwhere the time goes (share of kernel time by operator):\n' + profiles.map((p) => `  ${p}`).join('\n') + '\n');
