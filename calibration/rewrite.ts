// QDQ rewriting (browser-safe graph editing): applies a quantization plan (plan.ts) to a float graph
// in place, inserting QuantizeLinear/DequantizeLinear pairs so that ONNX Runtime's CPU EP fuses them
// into int8 kernels (QLinearConv, QLinearAdd, QLinearConcat, QLinearAveragePool …) and TensorRT reads
// them as explicit quantization.
//
// - weights int8 symmetric in [-127, 127], per output channel by default (axis 0 for Conv, the N axis
//   for Gemm/MatMul); biases int32 with scale fround(input scale × weight scale[c]), no zero point;
//   with calibration means, each bias is corrected for the weights' rounding error.
// - activations get one Q→DQ per tensor (uint8 asymmetric), or with `symmetric` int8 zero point 0 and
//   a dedicated pair per consumer; folded Relu/Clip nodes are removed (the quantizer clamps), and a
//   float Conv/Gemm/MatMul reading a folded tensor reads it dequantized through its own copy of the clamp.

import { EdgetuneError } from '../runtime/core/errors.js';
import {
  DataType,
  consumerMap,
  getFloatAttribute,
  getInitializer,
  getIntAttribute,
  makeNode,
  makeTensor,
  nameGenerator,
  pruneGraph,
  readFloat32,
  removeNodes,
  setInitializer,
  setIntAttribute,
  topologicalSort,
} from '../runtime/onnx/graph.js';
import type { NodeProto, OnnxModel } from '../runtime/onnx/model.js';
import { HEAVY_OPS, type QuantizationPlan } from './plan.js';
import { activationParams, quantizeBias, quantizeWeights, type QParams } from './qparams.js';
import type { Range } from './ranges.js';

export interface QdqOptions {
  perChannel?: boolean;
  symmetric?: boolean;
  /**
   * Per-channel means of Conv/Gemm inputs (float model, calibration set): when given, each bias is
   * corrected by (W − dequant(Wq))·E[x] so the int8 layer's output mean matches the float one
   * (empirical bias correction, Nagel et al. 2019).
   */
  channelMeans?: ReadonlyMap<string, Float64Array>;
}

/** Δb[o] = Σ (W − Wq)[o, i, k] · mean[input channel of i] for Conv (grouped) and Gemm. */
function biasCorrection(n: NodeProto, w: Float32Array, dims: readonly number[], q: { data: Int8Array; scales: Float32Array }, axis: number, mean: Float64Array): Float32Array | undefined {
  const deq = (i: number, c: number) => q.data[i]! * q.scales[q.scales.length === 1 ? 0 : c]!;
  if (n.opType === 'Conv') {
    const m = dims[0]!;
    const cg = dims[1]!;
    let inner = 1;
    for (let d = 2; d < dims.length; d++) inner *= dims[d]!;
    const groups = getIntAttribute(n, 'group') ?? 1;
    if (mean.length !== cg * groups) return undefined;
    const perGroup = m / groups;
    const out = new Float32Array(m);
    for (let o = 0; o < m; o++) {
      const g0 = Math.floor(o / perGroup) * cg;
      let s = 0;
      for (let i = 0; i < cg; i++) {
        const mu = mean[g0 + i]!;
        const base = (o * cg + i) * inner;
        for (let k = 0; k < inner; k++) s += (w[base + k]! - deq(base + k, o)) * mu;
      }
      out[o] = s;
    }
    return out;
  }
  if (n.opType === 'Gemm' && dims.length === 2) {
    const [r, c] = dims as [number, number];
    const nOut = axis === 0 ? r : c;
    const k = axis === 0 ? c : r;
    if (mean.length !== k) return undefined;
    const out = new Float32Array(nOut);
    for (let o = 0; o < nOut; o++) {
      let s = 0;
      for (let j = 0; j < k; j++) {
        const i = axis === 0 ? o * c + j : j * c + o;
        s += (w[i]! - deq(i, o)) * mean[j]!;
      }
      out[o] = s;
    }
    return out;
  }
  return undefined;
}

export interface QdqSummary {
  /** Quantized nodes by operator type. */
  quantized: Record<string, number>;
  foldedActivations: number;
  /** Weight channels whose scale was raised (zero/near-zero channels, int32 bias fit). */
  adjustedChannels: number;
  /** Layers whose bias was corrected for the weight rounding error. */
  biasCorrected: number;
  params: Record<string, QParams>;
}

/** Parameters for every activation of the plan from calibrated ranges. */
export function activationParamsFor(plan: QuantizationPlan, ranges: ReadonlyMap<string, Range>, symmetric: boolean): Map<string, QParams> {
  const out = new Map<string, QParams>();
  const resolve = (t: string): QParams => {
    const hit = out.get(t);
    if (hit) return hit;
    const src = plan.sharedFrom.get(t);
    let p: QParams;
    if (src) p = resolve(src);
    else {
      const r = ranges.get(t);
      if (!r) throw new EdgetuneError('EARG', `no calibrated range for tensor "${t}" (stale calibration cache?)`, { subject: t });
      p = activationParams(r, symmetric);
    }
    out.set(t, p);
    return p;
  };
  for (const t of plan.activations) resolve(t);
  return out;
}

/** Rewrite the float graph in place into QDQ form. */
export function applyQdq(model: OnnxModel, plan: QuantizationPlan, params: ReadonlyMap<string, QParams>, opts: QdqOptions = {}): QdqSummary {
  const g = model.graph;
  const names = nameGenerator(model);
  const perChannel = opts.perChannel ?? true;
  const symmetric = Boolean(opts.symmetric);
  const summary: QdqSummary = { quantized: {}, foldedActivations: 0, adjustedChannels: 0, biasCorrected: 0, params: {} };
  // 1. Fold Relu/Clip into the producing node.
  const foldedAt = new Map<string, NodeProto>();
  for (const [n, a] of plan.folded) {
    foldedAt.set(a.output[0]!, a);
    n.output[0] = a.output[0]!;
    summary.foldedActivations++;
  }
  removeNodes(g, [...plan.folded.values()]);
  const newNodes: NodeProto[] = [];
  const scalarType = symmetric ? DataType.INT8 : DataType.UINT8;
  // 2. Weights and biases.
  for (const n of g.node) {
    if (!plan.nodes.has(n)) continue;
    summary.quantized[n.opType!] = (summary.quantized[n.opType!] ?? 0) + 1;
    if (!(HEAVY_OPS as readonly string[]).includes(n.opType!)) continue;
    const inP = params.get(n.input[0]!);
    if (!inP) throw new EdgetuneError('EARG', `no parameters for input "${n.input[0]}" of ${n.opType} "${n.name ?? ''}"`);
    const wT = getInitializer(g, n.input[1]!)!;
    const dims = wT.dims;
    let axis = 0;
    if (n.opType === 'Gemm') axis = (getIntAttribute(n, 'transB') ?? 0) === 1 ? 0 : 1;
    if (n.opType === 'MatMul') axis = dims.length === 2 ? 1 : 0;
    const pc = perChannel && (n.opType !== 'MatMul' || dims.length === 2);
    let biasName = n.opType === 'MatMul' ? undefined : n.input[2];
    let bias = biasName ? getInitializer(g, biasName) : undefined;
    if (n.opType === 'Gemm') {
      const alpha = getFloatAttribute(n, 'alpha') ?? 1;
      const beta = getFloatAttribute(n, 'beta') ?? 1;
      if (alpha !== 1 || beta !== 1 || (bias && bias.dims.length !== 1)) {
        biasName = undefined;
        bias = undefined;
      }
    }
    let biasData = bias ? readFloat32(bias) : undefined;
    const wData = readFloat32(wT);
    const q = quantizeWeights(wData, dims, axis, pc, biasData, inP.scale);
    const mean = opts.channelMeans?.get(n.input[0]!);
    if (mean && biasData && biasName) {
      const delta = biasCorrection(n, wData, dims, q, axis, mean);
      if (delta) {
        biasData = biasData.map((b, c) => b + delta[c]!);
        summary.biasCorrected++;
      }
    }
    summary.adjustedChannels += q.adjusted.length;
    const base = n.input[1]!;
    const wq = names.next(`${base}_quantized`);
    const ws = names.next(`${base}_scale`);
    const wz = names.next(`${base}_zero_point`);
    const wdq = names.next(`${base}_dequantized`);
    const cdims = pc ? [q.scales.length] : [];
    setInitializer(g, makeTensor(wq, DataType.INT8, dims, q.data));
    setInitializer(g, makeTensor(ws, DataType.FLOAT, cdims, q.scales));
    setInitializer(g, makeTensor(wz, DataType.INT8, cdims, new Int8Array(q.scales.length)));
    const wNode = makeNode('DequantizeLinear', [wq, ws, wz], [wdq], { name: names.next(`${base}_DequantizeLinear`) });
    if (pc) setIntAttribute(wNode, 'axis', axis);
    newNodes.push(wNode);
    n.input[1] = wdq;
    if (bias && biasData && biasName) {
      const b = quantizeBias(biasData, inP.scale, q.scales);
      const bq = names.next(`${biasName}_quantized`);
      const bs = names.next(`${biasName}_scale`);
      const bdq = names.next(`${biasName}_dequantized`);
      const scalar = q.scales.length === 1;
      setInitializer(g, makeTensor(bq, DataType.INT32, bias.dims, b.data));
      setInitializer(g, makeTensor(bs, DataType.FLOAT, scalar ? [] : [b.scales.length], scalar ? b.scales.subarray(0, 1) : b.scales));
      const bNode = makeNode('DequantizeLinear', [bq, bs], [bdq], { name: names.next(`${biasName}_DequantizeLinear`) });
      if (!scalar) setIntAttribute(bNode, 'axis', 0);
      newNodes.push(bNode);
      n.input[2] = bdq;
    }
  }
  // 3. Activations: Q → DQ after the producer; readers switch to the dequantized value.
  const consumers = consumerMap(g);
  for (const t of plan.activations) {
    const p = params.get(t)!;
    summary.params[t] = p;
    const s = names.next(`${t}_scale`);
    const z = names.next(`${t}_zero_point`);
    setInitializer(g, makeTensor(s, DataType.FLOAT, [], [p.scale]));
    setInitializer(g, p.type === 'uint8' ? makeTensor(z, DataType.UINT8, [], [p.zeroPoint]) : makeTensor(z, DataType.INT8, [], [p.zeroPoint]));
    void scalarType;
    // An excluded Conv/Gemm/MatMul keeps reading the float tensor: between a DequantizeLinear and a
    // QuantizeLinear, ONNX Runtime (≥ 1.20) would quantize its float weights by itself (and wrongly
    // for depthwise Convs), so it must not see a DQ → node → Q sandwich.
    const keepsFloat = (c: NodeProto) => !plan.nodes.has(c) && (HEAVY_OPS as readonly string[]).includes(c.opType ?? '') && (c.domain ?? '') === '';
    const readers = (consumers.get(t) ?? []).filter((c) => !keepsFloat(c));
    // A folded Relu/Clip: the producer now writes the unclamped value under `t`, so float readers read
    // the dequantized value through a copy of the clamp (the float model's node): a float Conv right
    // after a DequantizeLinear would be the sandwich above.
    const clamp = foldedAt.get(t);
    const floatReaders = (consumers.get(t) ?? []).filter(keepsFloat);
    if (clamp && floatReaders.length) {
      const clamped = names.next(`${t}_clamped`);
      const copy: NodeProto = { ...clamp, name: names.next(`${clamp.name || t}_float`), input: [t, ...clamp.input.slice(1)], output: [clamped] };
      newNodes.push(copy);
      readers.push(copy);
      for (const r of floatReaders) r.input = r.input.map((x) => (x === t ? clamped : x));
    }
    const groups = symmetric ? readers.map((r) => [r]) : [readers];
    for (const grp of groups) {
      if (grp.length === 0) continue;
      const tq = names.next(`${t}_quantized`);
      const tdq = names.next(`${t}_dequantized`);
      newNodes.push(makeNode('QuantizeLinear', [t, s, z], [tq], { name: names.next(`${t}_QuantizeLinear`) }));
      newNodes.push(makeNode('DequantizeLinear', [tq, s, z], [tdq], { name: names.next(`${t}_DequantizeLinear`) }));
      for (const r of grp) r.input = r.input.map((x) => (x === t ? tdq : x));
    }
  }
  g.node.push(...newNodes);
  topologicalSort(g);
  pruneGraph(g);
  return summary;
}
