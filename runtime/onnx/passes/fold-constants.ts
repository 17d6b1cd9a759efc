// Pre-passes that expose weights and biases to the quantizer (browser-safe):
// - foldConstantReshapes: Reshape of an initializer by a constant shape becomes an initializer (old
//   exporters reshape weights at run time, e.g. MNIST's MatMul weights), so the weight is quantizable.
// - foldBiasAdds: Conv → Add(constant per output channel) becomes the Conv's bias, and a 2-D
//   MatMul(x, W) → Add(constant [N]) becomes Gemm(x, W, b), so the bias is quantized as int32 with
//   the layer instead of a float Add that blocks int8 fusion.
// Only when the intermediate value feeds nothing else and is no graph output.

import {
  DataType,
  consumerMap,
  findValueInfo,
  getInitializer,
  makeTensor,
  nameGenerator,
  readFloat32,
  readInt64,
  removeNodes,
  setInitializer,
} from '../graph.js';
import type { GraphProto, NodeProto, OnnxModel } from '../model.js';

function isDefault(n: NodeProto): boolean {
  return (n.domain ?? '') === '' || n.domain === 'ai.onnx';
}

/** Replace Reshape(initializer, constant shape) by an initializer. Returns how many were folded. */
export function foldConstantReshapes(model: OnnxModel): number {
  const g = model.graph;
  const outputs = new Set(g.output.map((o) => o.name));
  const drop: NodeProto[] = [];
  for (const n of g.node) {
    if (!isDefault(n) || n.opType !== 'Reshape' || outputs.has(n.output[0])) continue;
    const data = getInitializer(g, n.input[0] ?? '');
    const shapeT = getInitializer(g, n.input[1] ?? '');
    if (!data || !shapeT || data.dataType !== DataType.FLOAT) continue;
    const values = readFloat32(data);
    const shape = Array.from(readInt64(shapeT), (v) => Number(v));
    const known = shape.reduce((a, d, i) => (d === -1 ? a : a * (d === 0 ? data.dims[i]! : d)), 1);
    const dims = shape.map((d, i) => (d === -1 ? values.length / known : d === 0 ? data.dims[i]! : d));
    if (dims.reduce((a, b) => a * b, 1) !== values.length) continue;
    setInitializer(g, makeTensor(n.output[0]!, DataType.FLOAT, dims, values));
    drop.push(n);
  }
  removeNodes(g, drop);
  pruneInitializers(g);
  return drop.length;
}

function pruneInitializers(g: GraphProto): void {
  const read = new Set(g.node.flatMap((n) => n.input));
  for (const o of g.output) read.add(o.name ?? '');
  g.initializer = g.initializer.filter((t) => read.has(t.name ?? ''));
  const inits = new Set(g.initializer.map((t) => t.name));
  g.input = g.input.filter((v) => inits.has(v.name) || !g.initializer.length || read.has(v.name ?? ''));
}

/** The per-channel values of a constant that broadcasts along axis 1 of NCHW ([C], [C,1,1], [1,C,1,1]). */
function channelConstant(g: GraphProto, name: string, channels: number): Float32Array | undefined {
  const t = getInitializer(g, name);
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  const d = t.dims;
  const ok =
    (d.length === 3 && d[0] === channels && d[1] === 1 && d[2] === 1) ||
    (d.length === 4 && d[0] === 1 && d[1] === channels && d[2] === 1 && d[3] === 1);
  // ([C] alone broadcasts along the last axis, not the channels.)
  return ok ? readFloat32(t) : undefined;
}

function rankOf(g: GraphProto, name: string): number | undefined {
  const vi = findValueInfo(g, name)?.type?.tensorType?.shape?.dim.length;
  if (vi !== undefined) return vi;
  const p = g.node.find((n) => n.output.includes(name));
  if (p?.opType === 'Flatten') return 2;
  if (p?.opType === 'Reshape') {
    const s = getInitializer(g, p.input[1] ?? '');
    if (s) return s.dims[0];
  }
  return undefined;
}

/** Fold constant bias Adds into Conv / turn MatMul+Add into Gemm. Returns how many were folded. */
export function foldBiasAdds(model: OnnxModel): number {
  const g = model.graph;
  const names = nameGenerator(model);
  const outputs = new Set(g.output.map((o) => o.name));
  let folded = 0;
  for (;;) {
    const consumers = consumerMap(g);
    let done = false;
    for (const n of g.node) {
      if (!isDefault(n) || (n.opType !== 'Conv' && n.opType !== 'MatMul')) continue;
      const y = n.output[0]!;
      const cs = consumers.get(y) ?? [];
      if (cs.length !== 1 || outputs.has(y)) continue;
      const add = cs[0]!;
      if (!isDefault(add) || add.opType !== 'Add') continue;
      const other = add.input[0] === y ? add.input[1]! : add.input[0]!;
      const w = getInitializer(g, n.input[1] ?? '');
      if (!w) continue;
      if (n.opType === 'Conv') {
        const m = w.dims[0]!;
        const c = channelConstant(g, other, m);
        if (!c) continue;
        const prev = n.input[2] ? getInitializer(g, n.input[2]) : undefined;
        if (n.input[2] && !prev) continue;
        const b = prev ? readFloat32(prev).map((v, i) => v + c[i]!) : Float32Array.from(c);
        const bName = names.next(`${n.name || y}_bias`);
        setInitializer(g, makeTensor(bName, DataType.FLOAT, [m], b));
        n.input[2] = bName;
      } else {
        // MatMul(x[M,K], W[K,N]) + b[N] → Gemm
        if (w.dims.length !== 2 || rankOf(g, n.input[0]!) !== 2) continue;
        const bT = getInitializer(g, other);
        const nOut = w.dims[1]!;
        if (!bT || bT.dataType !== DataType.FLOAT) continue;
        const bd = bT.dims;
        if (!((bd.length === 1 && bd[0] === nOut) || (bd.length === 2 && bd[0] === 1 && bd[1] === nOut))) continue;
        const bName = names.next(`${n.name || y}_bias`);
        setInitializer(g, makeTensor(bName, DataType.FLOAT, [nOut], readFloat32(bT)));
        n.opType = 'Gemm';
        n.input = [n.input[0]!, n.input[1]!, bName];
      }
      n.output[0] = add.output[0]!;
      removeNodes(g, add);
      folded++;
      done = true;
      break;
    }
    if (!done) break;
  }
  pruneInitializers(g);
  return folded;
}
