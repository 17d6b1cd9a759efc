// QDQ rewriting (browser-safe graph editing): which nodes to quantize, which activation tensors need
// a range, and the rewrite that inserts QuantizeLinear/DequantizeLinear pairs so that ONNX Runtime's
// CPU EP fuses them into int8 kernels (QLinearConv, QLinearAdd, QLinearConcat, QLinearAveragePool …)
// and TensorRT reads them as explicit quantization.
//
// Layout rules (measured on onnxruntime-node 1.30, x86 with VNNI):
// - activations uint8 asymmetric by default, one shared Q→DQ per tensor; `symmetric` gives int8 with
//   zero point 0 and a dedicated Q→DQ pair per consumer (TensorRT's layout).
// - Relu / Clip(0, hi) after a quantized node are folded into its output range (uint8 zero point 0
//   clamps exactly like Relu; a calibrated max ≤ hi clamps like Clip), so Conv+Relu is one QLinearConv.
// - weights int8 symmetric in [-127, 127], per output channel by default (axis 0 for Conv, the N axis
//   for Gemm/MatMul); biases int32 with scale fround(input scale × weight scale[c]), no zero point.
// - MaxPool and data movement (Flatten, Reshape, Transpose, Squeeze, Unsqueeze) reuse their input's
//   scale/zero point (ORT drops the Q/DQ around them); Add, Mul, Concat, the average poolings and data
//   movement are quantized only when their result feeds another quantized node.
// - the graph's inputs and outputs stay float32; ranges of graph inputs and of tensors that only feed
//   float operators (the logits) use min/max whatever the method, so top-1 is not clipped away.

import { EdgetuneError } from '../runtime/core/errors.js';
import {
  DataType,
  consumerMap,
  getAttribute,
  getFloatAttribute,
  getInitializer,
  getIntAttribute,
  makeNode,
  makeTensor,
  nameGenerator,
  producerMap,
  pruneGraph,
  readFloat32,
  removeNodes,
  setInitializer,
  setIntAttribute,
  topologicalSort,
} from '../runtime/onnx/graph.js';
import type { GraphProto, NodeProto, OnnxModel } from '../runtime/onnx/model.js';
import { activationParams, quantizeBias, quantizeWeights, type QParams } from './qparams.js';
import type { Range } from './ranges.js';

export const HEAVY_OPS = ['Conv', 'Gemm', 'MatMul'] as const;
export const LIGHT_OPS = ['Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool', 'GlobalAveragePool'] as const;
/** Data-movement operators: quantized like light ones, their output reusing the input's parameters (ORT drops their Q/DQ). */
export const PASS_THROUGH_OPS = ['Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze'] as const;
const QUANTIZED_OPS = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'QLinearAdd',
  'QLinearMul',
  'QLinearConcat',
  'QLinearAveragePool',
  'QLinearGlobalAveragePool',
  'QLinearLeakyRelu',
  'QLinearSigmoid',
  'QLinearSoftmax',
  'QGemm',
  'ConvInteger',
  'MatMulInteger',
  'MatMulIntegerToFloat',
  'DynamicQuantizeMatMul',
]);

/** Throws when the model already contains quantized operators. */
export function refuseQuantized(g: GraphProto, what: string): void {
  const found = new Map<string, number>();
  for (const n of g.node) if (QUANTIZED_OPS.has(n.opType ?? '')) found.set(n.opType!, (found.get(n.opType!) ?? 0) + 1);
  if (found.size) {
    const list = [...found].map(([op, c]) => `${c} ${op}`).join(', ');
    throw new EdgetuneError('EMODEL', `${what}: model is already quantized (${list}); quantize its float original instead`, { subject: what });
  }
}

export interface PlanOptions {
  /** Node names, operator types or node output names kept in float. */
  exclude?: readonly string[];
  symmetric?: boolean;
}

export interface QuantizationPlan {
  /** Nodes that become int8 (by node identity in the float graph). */
  nodes: Set<NodeProto>;
  /** Relu/Clip nodes folded into the preceding quantized node (uint8 mode). */
  folded: Map<NodeProto, NodeProto>;
  /** Activation tensors that get Q/DQ, in graph order. */
  activations: string[];
  /** Tensors whose parameters are copied from another (MaxPool output ← input). */
  sharedFrom: Map<string, string>;
  /** Tensors calibrated with min/max whatever the method (graph inputs, tensors feeding only float ops). */
  minmaxOnly: Set<string>;
  /** Tensors that need a calibrated range. */
  calibrate: string[];
  /** Excluded nodes, by name/op (for the report). */
  excluded: string[];
  /** Inputs of quantized Conv/Gemm nodes: their per-channel means drive bias correction. */
  meanTensors: string[];
}

function isFloatActivation(g: GraphProto, name: string, inits: Set<string>): boolean {
  return name !== '' && !inits.has(name) && g.initializer.length >= 0;
}

function clipBounds(g: GraphProto, n: NodeProto): { lo?: number; hi?: number } {
  const read = (i: number, attr: string) => {
    const name = n.input[i];
    if (name) {
      const t = getInitializer(g, name);
      return t ? readFloat32(t)[0] : NaN;
    }
    return getFloatAttribute(n, attr);
  };
  return { lo: read(1, 'min'), hi: read(2, 'max') };
}

/** Decide what to quantize. Throws for an --exclude entry that matches no node name or operator type. */
export function planQuantization(g: GraphProto, what: string, opts: PlanOptions = {}): QuantizationPlan {
  const exclude = new Set(opts.exclude ?? []);
  for (const e of exclude) {
    if (!g.node.some((n) => n.name === e || n.opType === e || n.output.includes(e))) {
      throw new EdgetuneError('EARG', `--exclude "${e}": no node, operator type or node output of that name in ${what}`, { subject: e });
    }
  }
  const inits = new Set(g.initializer.map((t) => t.name ?? ''));
  const graphInputs = new Set(g.input.map((v) => v.name ?? ''));
  const graphOutputs = new Set(g.output.map((v) => v.name ?? ''));
  const consumers = consumerMap(g);
  // Nodes match by name, operator type, or an output name (SqueezeNet's nodes have no names).
  const isExcluded = (n: NodeProto) => exclude.has(n.name ?? '') || exclude.has(n.opType ?? '') || n.output.some((o) => exclude.has(o));
  const excluded = g.node.filter(isExcluded).map((n) => `${n.opType}${n.name ? ` ${n.name}` : ''}`);
  const folded = new Map<NodeProto, NodeProto>();
  const foldTarget = (n: NodeProto): NodeProto | undefined => {
    if (opts.symmetric) return undefined;
    const out = n.output[0]!;
    const cs = consumers.get(out) ?? [];
    if (cs.length !== 1 || graphOutputs.has(out)) return undefined;
    const a = cs[0]!;
    if ((a.domain ?? '') !== '' || isExcluded(a)) return undefined;
    if (a.opType === 'Relu') return a;
    if (a.opType === 'Clip') {
      const { lo, hi } = clipBounds(g, a);
      if (lo === 0 && (hi === undefined || hi > 0)) return a;
    }
    return undefined;
  };
  let decided = false;
  const effectiveOut = (n: NodeProto) => {
    const a = decided ? folded.get(n) : (folded.get(n) ?? foldTarget(n));
    return a ? a.output[0]! : n.output[0]!;
  };
  const weightOk = (n: NodeProto) => {
    if (n.opType === 'Conv') return inits.has(n.input[1] ?? '');
    if (n.opType === 'Gemm') return inits.has(n.input[1] ?? '') && !inits.has(n.input[0] ?? '') && (getIntAttribute(n, 'transA') ?? 0) === 0;
    if (n.opType === 'MatMul') return inits.has(n.input[1] ?? '') && !inits.has(n.input[0] ?? '');
    return false;
  };
  const nodes = new Set<NodeProto>();
  // Reverse graph order: a light node's decision needs its consumers' decisions.
  for (let i = g.node.length - 1; i >= 0; i--) {
    const n = g.node[i]!;
    if ((n.domain ?? '') !== '' || isExcluded(n)) continue;
    const op = n.opType ?? '';
    if ((HEAVY_OPS as readonly string[]).includes(op)) {
      if (weightOk(n)) nodes.add(n);
    } else if ((LIGHT_OPS as readonly string[]).includes(op) || (PASS_THROUGH_OPS as readonly string[]).includes(op)) {
      // Add/Mul with a constant operand would need that constant quantized too: left in float.
      if ((op === 'Add' || op === 'Mul') && n.input.some((x) => inits.has(x))) continue;
      const out = effectiveOut(n);
      if ((consumers.get(out) ?? []).some((c) => nodes.has(c))) nodes.add(n);
    }
  }
  // Folding replaces Relu/Clip by the quantizer's clamp, so every reader must read the dequantized
  // value: not possible when a float Conv/Gemm/MatMul (excluded, or not quantizable) reads it.
  const readsFloat = (c: NodeProto) => (HEAVY_OPS as readonly string[]).includes(c.opType ?? '') && (c.domain ?? '') === '' && !nodes.has(c);
  for (const n of nodes) {
    const a = foldTarget(n);
    if (a && !(consumers.get(a.output[0]!) ?? []).some(readsFloat)) folded.set(n, a);
  }
  decided = true;
  const activations: string[] = [];
  const seen = new Set<string>();
  const sharedFrom = new Map<string, string>();
  const minmaxOnly = new Set<string>();
  const add = (t: string) => {
    if (!seen.has(t)) {
      seen.add(t);
      activations.push(t);
    }
  };
  for (const n of g.node) {
    if (!nodes.has(n)) continue;
    const op = n.opType!;
    const passThrough = (PASS_THROUGH_OPS as readonly string[]).includes(op);
    const actInputs = (HEAVY_OPS as readonly string[]).includes(op) || passThrough ? [n.input[0]!] : n.input.filter((x) => isFloatActivation(g, x, inits));
    for (const x of actInputs) {
      add(x);
      if (graphInputs.has(x)) minmaxOnly.add(x);
    }
    const out = effectiveOut(n);
    add(out);
    if (op === 'MaxPool' || passThrough) sharedFrom.set(out, n.input[0]!);
    if (!(consumers.get(out) ?? []).some((c) => nodes.has(c))) minmaxOnly.add(out);
  }
  // Concat inputs that only feed the Concat take its output's parameters: the int8 Concat is then a
  // plain copy instead of a requantization (one rounding instead of two).
  for (const n of g.node) {
    if (!nodes.has(n) || n.opType !== 'Concat') continue;
    const out = effectiveOut(n);
    for (const x of n.input) {
      if (!seen.has(x) || sharedFrom.has(x) || graphInputs.has(x) || graphOutputs.has(x)) continue;
      if ((consumers.get(x) ?? []).length === 1) sharedFrom.set(x, out);
    }
  }
  // A MaxPool output shares its input's parameters: chains resolve to the first calibrated tensor.
  const calibrate = activations.filter((t) => !sharedFrom.has(t));
  const meanTensors = [...new Set(g.node.filter((n) => nodes.has(n) && (n.opType === 'Conv' || n.opType === 'Gemm')).map((n) => n.input[0]!))];
  return { nodes, folded, activations, sharedFrom, minmaxOnly, calibrate, excluded, meanTensors };
}

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

/** The calibrated tensor whose parameters `t` uses (itself unless shared). */
export function parameterSource(plan: QuantizationPlan, t: string): string {
  let s = t;
  for (let i = 0; plan.sharedFrom.has(s) && i < 1000; i++) s = plan.sharedFrom.get(s)!;
  return s;
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
  for (const [n, a] of plan.folded) {
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

export interface QuantizedLayer {
  /** The float model's Conv/Gemm/MatMul. */
  float: NodeProto;
  /** Its quantized counterpart in the QDQ model (same weights, rounded). */
  quant: NodeProto;
  /** The int8 weight initializer and its scale. */
  weightsQuantized: string;
  weightScale: string;
  /** The int32 bias initializer and its scale, when the layer has a bias. */
  biasQuantized?: string;
  biasScale?: string;
}

/** The QDQ model's quantized Conv/Gemm/MatMul nodes, each paired with the float node whose weights it rounded. */
export function quantizedLayers(floatModel: OnnxModel, qmodel: OnnxModel): QuantizedLayer[] {
  const producer = producerMap(qmodel.graph);
  const byWeight = new Map<string, NodeProto>();
  for (const n of floatModel.graph.node) if ((HEAVY_OPS as readonly string[]).includes(n.opType ?? '')) byWeight.set(n.input[1]!, n);
  const out: QuantizedLayer[] = [];
  for (const n of qmodel.graph.node) {
    if (!(HEAVY_OPS as readonly string[]).includes(n.opType ?? '')) continue;
    const w = producer.get(n.input[1] ?? '');
    if (w?.opType !== 'DequantizeLinear') continue;
    const f = byWeight.get(w.input[0]!.replace(/_quantized(_\d+)?$/, ''));
    if (!f) continue;
    const b = n.input[2] ? producer.get(n.input[2]) : undefined;
    out.push({
      float: f,
      quant: n,
      weightsQuantized: w.input[0]!,
      weightScale: w.input[1]!,
      ...(b?.opType === 'DequantizeLinear' ? { biasQuantized: b.input[0]!, biasScale: b.input[1]! } : {}),
    });
  }
  return out;
}

/** Count of each operator type (for reports and tests). */
export function opCounts(g: GraphProto): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of g.node) out[n.opType ?? '?'] = (out[n.opType ?? '?'] ?? 0) + 1;
  return out;
}

export { getAttribute };
