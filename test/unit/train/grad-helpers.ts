// Test helpers for training graphs: an onnxruntime-node session behind GraphSession, seeded random
// tensors, tiny hand-built tails, and a central-difference gradient check that runs the loss-only
// graph twice per sampled weight entry.

import * as ort from 'onnxruntime-node';
import { DataType, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntAttribute, setIntsAttribute, setStringAttribute } from '../../../runtime/onnx/graph.js';
import { encodeModel, type NodeProto, type OnnxModel, type TensorProto } from '../../../runtime/onnx/model.js';
import type { TensorData } from '../../../runtime/core/tensor.js';
import { buildTrainingGraph, type TrainingGraphOptions } from '../../../runtime/train/graph/autodiff.js';
import type { GraphSession } from '../../../runtime/train/graph/session.js';
import { createRng, type Rng } from '../../../runtime/core/rng.js';

export async function ortSession(model: OnnxModel | Uint8Array, threads = 1): Promise<GraphSession> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 });
  return {
    async run(feeds, fetches) {
      const f: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor(v.type as 'float32', v.data as Float32Array, v.dims as number[]);
      const out = fetches ? await s.run(f, fetches as string[]) : await s.run(f);
      const r: Record<string, TensorData> = {};
      for (const [k, v] of Object.entries(out)) r[k] = { type: v.type as 'float32', data: v.data as Float32Array, dims: [...v.dims] };
      return r;
    },
    dispose: () => s.release(),
  };
}

export const ortFactory = (bytes: Uint8Array) => ortSession(bytes, 2);

export function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

export const f32 = (data: Float32Array, dims: readonly number[]): TensorData => ({ type: 'float32', data, dims });

/** A tail model from nodes + initializers: input `x` [N, ...xDims] → output `emb` [N, D]. */
export function tinyTail(nodes: NodeProto[], inits: TensorProto[], xDims: number[], embDims: number[], opset = 13): OnnxModel {
  return makeModel(
    {
      name: 'tail',
      node: nodes,
      initializer: inits,
      input: [makeValueInfo('x', makeTensorType(DataType.FLOAT, ['N', ...xDims]))],
      output: [makeValueInfo('emb', makeTensorType(DataType.FLOAT, ['N', ...embDims]))],
    },
    { opset },
  );
}

export function conv(x: string, w: string, b: string | undefined, y: string, attrs: { strides?: number[]; pads?: number[]; group?: number; k: number }): NodeProto {
  const n = makeNode('Conv', b ? [x, w, b] : [x, w], [y], { name: y });
  setIntsAttribute(n, 'kernel_shape', [attrs.k, attrs.k]);
  setIntsAttribute(n, 'strides', attrs.strides ?? [1, 1]);
  setIntsAttribute(n, 'pads', attrs.pads ?? [0, 0, 0, 0]);
  setIntAttribute(n, 'group', attrs.group ?? 1);
  return n;
}

export function weight(rng: Rng, name: string, dims: number[], scale = 0.5): TensorProto {
  return makeTensor(name, DataType.FLOAT, dims, randn(rng, dims.reduce((a, b) => a * b, 1), scale));
}

export interface GradCheckResult {
  /** Per weight: max relative error over the sampled entries, and the sample count. */
  perWeight: Record<string, { maxRel: number; medianRel: number; checked: number; kinks: number }>;
  /** Entries skipped because the loss has a kink within the step (difference quotients disagree across step sizes). */
  kinks: number;
  checked: number;
  maxRel: number;
  loss: number;
}

/**
 * Central differences of the loss for `samples` random entries of every trainable weight (and the
 * input when `inputGradient`) vs the training graph's analytic gradient. Relative error
 * |a − f| / max(|a|, |f|, floor).
 */
export async function gradCheck(
  tail: OnnxModel,
  options: TrainingGraphOptions,
  feeds: { x: Float32Array; labels?: BigInt64Array; targets?: Float32Array; masks?: Record<string, Float32Array>; head: Record<string, Float32Array> },
  opts: {
    batch: number;
    samples?: number;
    eps?: number;
    /** Absolute floor of the relative error's denominator. Default 1e-3. */
    floor?: number;
    /** Floor relative to the weight's largest |gradient| (float32 loss noise swamps tiny entries). Default 0. */
    floorRel?: number;
    /** Sample half of the entries among the largest |gradient|. */
    largest?: boolean;
    seed?: number;
    kinkTol?: number;
  } = { batch: 2 },
): Promise<GradCheckResult> {
  const train = buildTrainingGraph(tail, { ...options, mode: 'train' });
  const lossG = buildTrainingGraph(tail, { ...options, mode: 'loss' });
  const ts = await ortSession(train.model);
  const ls = await ortSession(lossG.model);
  const values: Record<string, Float32Array> = { ...feeds.head };
  for (const w of train.tailWeights) {
    const t = tail.graph.initializer.find((i) => i.name === w.name)!;
    values[w.name] = Float32Array.from(t.rawData ? new Float32Array(t.rawData.slice().buffer) : t.floatData);
  }
  values[train.input] = feeds.x;
  const dimsOf = (name: string): number[] => {
    if (name === train.input) return [opts.batch, ...(train.inputShape.slice(1) as number[])];
    const m = train.masks.find((k) => k.name === name);
    if (m) return [opts.batch, m.size];
    return [...train.tailWeights, ...train.headWeights].find((w) => w.name === name)!.dims;
  };
  for (const [k, v] of Object.entries(feeds.masks ?? {})) values[k] = v;
  const feed = (): Record<string, TensorData> => {
    const f: Record<string, TensorData> = {};
    for (const [k, v] of Object.entries(values)) f[k] = f32(v, dimsOf(k));
    if (feeds.labels) f.labels = { type: 'int64', data: feeds.labels, dims: [opts.batch] };
    if (feeds.targets) f.targets = f32(feeds.targets, [opts.batch, feeds.targets.length / opts.batch]);
    return f;
  };
  const out = await ts.run(feed());
  const loss = (out.loss!.data as Float32Array)[0]!;
  const rng = createRng(opts.seed ?? 7, 'gradcheck');
  const eps = opts.eps ?? 1e-2;
  const floor = opts.floor ?? 1e-3;
  const perWeight: GradCheckResult['perWeight'] = {};
  let maxRel = 0;
  let totalKinks = 0;
  let checked = 0;
  for (const [w, gname] of Object.entries(train.grads)) {
    const g = out[gname]!.data as Float32Array;
    const v = values[w]!;
    const rels: number[] = [];
    let kinks = 0;
    const idx = new Set<number>();
    const want = Math.min(opts.samples ?? 6, v.length);
    let gmax = 0;
    for (const x of g) gmax = Math.max(gmax, Math.abs(x));
    if (opts.largest) {
      // half of the sample from the entries with the largest |gradient| (where the signal is)
      const order = Array.from(g.keys()).sort((p, q) => Math.abs(g[q]!) - Math.abs(g[p]!));
      for (const i of order.slice(0, want >> 1)) idx.add(i);
    }
    while (idx.size < want) idx.add(rng.int(v.length));
    const wfloor = Math.max(floor, (opts.floorRel ?? 0) * gmax);
    const lossAt = async (i: number, delta: number) => {
      const orig = v[i]!;
      v[i] = orig + delta;
      const l = ((await ls.run(feed(), ['loss'])).loss!.data as Float32Array)[0]!;
      v[i] = orig;
      return l;
    };
    const central = async (i: number, e: number) => ((await lossAt(i, e)) - (await lossAt(i, -e))) / (2 * e);
    const relErr = (a: number, f: number) => Math.abs(a - f) / Math.max(Math.abs(a), Math.abs(f), wfloor);
    const tol = opts.kinkTol ?? 1e-2;
    for (const i of idx) {
      const a = g[i]!;
      const fd1 = await central(i, eps);
      let rel = relErr(a, fd1);
      if (rel > tol) {
        // A ReLU/Clip kink inside [w − eps, w + eps] makes the difference quotient meaningless there:
        // retry with 4× and 16× smaller steps. The best agreement counts; if none agrees and the
        // quotients disagree among themselves, the entry sits on a kink and is skipped (counted).
        const fds = [fd1, await central(i, eps / 4), await central(i, eps / 16)];
        rel = Math.min(...fds.map((f) => relErr(a, f)));
        const spread = Math.max(relErr(fds[0]!, fds[1]!), relErr(fds[1]!, fds[2]!), relErr(fds[0]!, fds[2]!));
        if (process.env.GRADCHECK_DEBUG) console.log('retry', w, i, a, fds, rel, spread);
        if (rel > tol && spread > tol) {
          kinks++;
          continue;
        }
      }
      rels.push(rel);
    }
    rels.sort((a, b) => a - b);
    const mr = rels[rels.length - 1] ?? 0;
    perWeight[w] = { maxRel: mr, medianRel: rels[rels.length >> 1] ?? 0, checked: rels.length, kinks };
    totalKinks += kinks;
    checked += rels.length;
    maxRel = Math.max(maxRel, mr);
  }
  await ts.dispose();
  await ls.dispose();
  return { perWeight, maxRel, loss, kinks: totalKinks, checked };
}

/** Window options of a MaxPool / AveragePool node (ONNX attribute names in comments). */
export interface PoolAttrs {
  k: number[]; // kernel_shape
  s?: number[]; // strides
  pads?: number[];
  ceil?: boolean; // ceil_mode
  dil?: number[]; // dilations
  auto?: string; // auto_pad
  includePad?: boolean; // count_include_pad (AveragePool)
}

/** A MaxPool / AveragePool node `x` → `y` with `a`'s attributes; named `name` when given. */
export function poolNode(op: 'MaxPool' | 'AveragePool', x: string, y: string, a: PoolAttrs, name?: string): NodeProto {
  const n = makeNode(op, [x], [y], name ? { name } : {});
  setIntsAttribute(n, 'kernel_shape', a.k);
  if (a.s) setIntsAttribute(n, 'strides', a.s);
  if (a.pads) setIntsAttribute(n, 'pads', a.pads);
  if (a.ceil) setIntAttribute(n, 'ceil_mode', 1);
  if (a.dil) setIntsAttribute(n, 'dilations', a.dil);
  if (a.auto) setStringAttribute(n, 'auto_pad', a.auto);
  if (a.includePad) setIntAttribute(n, 'count_include_pad', 1);
  return n;
}

/**
 * The small tail the phase-2 tests train: x [4, 5, 5] → conv W1, B1 (3×3, pads 1, 6 channels) → (with
 * `blocks` 2: conv W2, B2, 1×1, a block boundary at "a") → Clip 0..6 → GlobalAveragePool → Flatten → emb [6].
 * Weights drawn from `rng` in the order W1, B1, W2, B2.
 */
export function clipPoolTail(rng: Rng, blocks: 1 | 2 = 1): OnnxModel {
  const nodes = [conv('x', 'W1', 'B1', 'a', { k: 3, pads: [1, 1, 1, 1] })];
  const inits = [weight(rng, 'W1', [6, 4, 3, 3], 0.2), weight(rng, 'B1', [6], 0.05)];
  let last = 'a';
  if (blocks === 2) {
    nodes.push(conv('a', 'W2', 'B2', 'y', { k: 1 }));
    inits.push(weight(rng, 'W2', [6, 6, 1, 1], 0.3), weight(rng, 'B2', [6], 0.05));
    last = 'y';
  }
  nodes.push(makeNode('Clip', [last, 'lo', 'hi'], ['c']), makeNode('GlobalAveragePool', ['c'], ['p']), makeNode('Flatten', ['p'], ['emb']));
  inits.push(makeTensor('lo', DataType.FLOAT, [], [0]), makeTensor('hi', DataType.FLOAT, [], [6]));
  return tinyTail(nodes, inits, [4, 5, 5], [6]);
}
