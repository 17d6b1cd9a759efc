// Pre-pass: fold inference BatchNormalization into the Conv that feeds it:
//   w'[m] = w[m]·γ[m]/√(var[m]+ε),  b'[m] = (b[m] − mean[m])·γ[m]/√(var[m]+ε) + β[m].
// Only when the Conv output feeds nothing but the BN, every parameter is an initializer, and the
// BN's extra (training) outputs are unused. Weights shared with another node are copied, not edited.
// Browser-safe.

import {
  DataType,
  consumerMap,
  getFloatAttribute,
  getInitializer,
  makeTensor,
  nameGenerator,
  readFloat32,
  setInitializer,
  removeNodes,
} from '../graph.js';
import type { NodeProto, OnnxModel } from '../model.js';

/** Fold every foldable Conv → BatchNormalization pair in place. Returns how many were folded. */
export function foldBatchNorm(model: OnnxModel): number {
  const g = model.graph;
  const names = nameGenerator(model);
  const consumers = consumerMap(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const producers = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) producers.set(o, n);
  const useCount = (name: string) => (consumers.get(name)?.length ?? 0) + (outputs.has(name) ? 1 : 0);
  const drop: NodeProto[] = [];
  for (const bn of g.node) {
    if (bn.opType !== 'BatchNormalization' || (bn.domain ?? '') !== '') continue;
    if (bn.output.slice(1).some((o) => o && useCount(o) > 0)) continue;
    const conv = producers.get(bn.input[0]!);
    if (!conv || conv.opType !== 'Conv' || (conv.domain ?? '') !== '') continue;
    if (useCount(bn.input[0]!) !== 1) continue;
    const [scaleT, betaT, meanT, varT] = bn.input.slice(1, 5).map((n) => getInitializer(g, n));
    const wT = getInitializer(g, conv.input[1]!);
    const bT = conv.input[2] ? getInitializer(g, conv.input[2]) : undefined;
    if (!scaleT || !betaT || !meanT || !varT || !wT || (conv.input[2] && !bT)) continue;
    const eps = getFloatAttribute(bn, 'epsilon') ?? 1e-5;
    const gamma = readFloat32(scaleT);
    const beta = readFloat32(betaT);
    const mean = readFloat32(meanT);
    const variance = readFloat32(varT);
    const w = readFloat32(wT).slice();
    const m = wT.dims[0]!;
    const per = w.length / m;
    const b = bT ? readFloat32(bT).slice() : new Float32Array(m);
    for (let c = 0; c < m; c++) {
      const k = gamma[c]! / Math.sqrt(variance[c]! + eps);
      for (let i = c * per; i < (c + 1) * per; i++) w[i] = w[i]! * k;
      b[c] = (b[c]! - mean[c]!) * k + beta[c]!;
    }
    const wName = useCount(conv.input[1]!) > 1 ? names.next(`${conv.input[1]}_bnfold`) : conv.input[1]!;
    const bName = bT && useCount(conv.input[2]!) === 1 ? conv.input[2]! : names.next(`${conv.name || conv.output[0]}_bias_bnfold`);
    setInitializer(g, makeTensor(wName, DataType.FLOAT, wT.dims, w));
    setInitializer(g, makeTensor(bName, DataType.FLOAT, [m], b));
    conv.input[1] = wName;
    conv.input[2] = bName;
    conv.output[0] = bn.output[0]!;
    drop.push(bn);
  }
  removeNodes(g, drop);
  // BN parameters nothing reads any more
  const read = new Set(g.node.flatMap((n) => n.input));
  g.initializer = g.initializer.filter((t) => read.has(t.name ?? '') || outputs.has(t.name ?? ''));
  const inits = new Set(g.initializer.map((t) => t.name));
  g.input = g.input.filter((v) => !(v.name && !inits.has(v.name) && !read.has(v.name) && drop.some((d) => d.input.includes(v.name!))));
  return drop.length;
}
