// Quantization planning (browser-safe graph reading): which nodes of a float graph become int8, which
// activation tensors need a calibrated range (and which reuse another's), which are calibrated with
// min/max whatever the method, and which Conv/Gemm inputs need per-channel means for bias correction.
// Also the refusal of models that are already quantized. The rewrite (rewrite.ts) applies the plan.
//
// Layout rules (measured on onnxruntime-node 1.30, x86 with VNNI):
// - activations uint8 asymmetric by default, one shared Q→DQ per tensor; `symmetric` gives int8 with
//   zero point 0 and a dedicated Q→DQ pair per consumer (TensorRT's layout).
// - Relu / Clip(0, hi) after a quantized node are folded into its output range (uint8 zero point 0
//   clamps exactly like Relu; a calibrated max ≤ hi clamps like Clip), so Conv+Relu is one QLinearConv.
// - MaxPool and data movement (Flatten, Reshape, Transpose, Squeeze, Unsqueeze) reuse their input's
//   scale/zero point (ORT drops the Q/DQ around them); Add, Mul, Concat, the average poolings and data
//   movement are quantized only when their result feeds another quantized node.
// - the graph's inputs and outputs stay float32; ranges of graph inputs and of tensors that only feed
//   float operators (the logits) use min/max whatever the method, so top-1 is not clipped away.

import { EdgetuneError } from '../runtime/core/errors.js';
import { DataType, consumerMap, getFloatAttribute, getInitializer, getIntAttribute, getTensorAttribute, readFloat32 } from '../runtime/onnx/graph.js';
import type { GraphProto, NodeProto } from '../runtime/onnx/model.js';
import { quantizedOperators } from '../runtime/onnx/quantized.js';

export const HEAVY_OPS = ['Conv', 'Gemm', 'MatMul'] as const;
export const LIGHT_OPS = ['Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool', 'GlobalAveragePool'] as const;
/** Data-movement operators: quantized like light ones, their output reusing the input's parameters (ORT drops their Q/DQ). */
export const PASS_THROUGH_OPS = ['Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze'] as const;
/** Throws when the model is already int8 (the one "is it int8?" rule, runtime/onnx/quantized.ts). */
export function refuseQuantized(g: GraphProto, what: string): void {
  const found = quantizedOperators(g);
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

function isFloatActivation(name: string, inits: Set<string>, nonFloat: ReadonlySet<string>): boolean {
  return name !== '' && !inits.has(name) && !nonFloat.has(name);
}

/** Operators whose output is int64 whatever their input (ONNX operator spec). */
const INT64_OUTPUT_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
/** Comparison and logical operators: their output is bool whatever their inputs (ONNX operator spec). */
const BOOL_OUTPUT_OPS = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);

/**
 * The tensors of `g` that are not floating point: shape arithmetic (PyTorch's dynamic-batch exports
 * compute a Reshape's target as Shape → Gather → Concat in int64), indices, booleans. A type the graph
 * declares (value_info, graph outputs) wins; otherwise element types are propagated in graph order
 * from the graph inputs and initializers by the ONNX operator spec: Shape/Size/NonZero/ArgMax give
 * int64, comparisons and logical operators bool, Cast its `to`, Constant its value's type,
 * ConstantOfShape its value's type (float when it has none), Where its input 1's type,
 * DequantizeLinear float, QuantizeLinear its zero point's type (uint8 when it has none), and any other
 * operator its first typed input's type (what the operators that pass shapes along do). Unknown types
 * count as float.
 */
export function nonFloatTensors(g: GraphProto): Set<string> {
  const type = new Map<string, number>();
  const declared = new Map<string, number>();
  for (const v of [...g.valueInfo, ...g.output]) {
    const t = v.type?.tensorType?.elemType;
    if (v.name && t) declared.set(v.name, t);
  }
  for (const v of g.input) {
    const t = v.type?.tensorType?.elemType;
    if (v.name && t) type.set(v.name, t);
  }
  for (const t of g.initializer) if (t.name && t.dataType) type.set(t.name, t.dataType);
  const typeOf = (x: string | undefined) => (x ? type.get(x) : undefined);
  for (const n of g.node) {
    const op = n.opType ?? '';
    let t: number | undefined;
    if ((n.domain ?? '') !== '' && (n.domain ?? '') !== 'ai.onnx') t = undefined;
    else if (INT64_OUTPUT_OPS.has(op)) t = DataType.INT64;
    else if (BOOL_OUTPUT_OPS.has(op)) t = DataType.BOOL;
    else if (op === 'Cast') t = getIntAttribute(n, 'to');
    else if (op === 'Constant') t = getTensorAttribute(n, 'value')?.dataType;
    else if (op === 'ConstantOfShape') t = getTensorAttribute(n, 'value')?.dataType ?? DataType.FLOAT;
    else if (op === 'Where') t = typeOf(n.input[1]);
    else if (op === 'DequantizeLinear') t = DataType.FLOAT;
    else if (op === 'QuantizeLinear') t = typeOf(n.input[2]) ?? DataType.UINT8;
    else t = n.input.map(typeOf).find((x) => x !== undefined);
    for (const o of n.output) {
      const d = o ? (declared.get(o) ?? t) : undefined;
      if (o && d !== undefined) type.set(o, d);
    }
  }
  return new Set([...type].filter(([, t]) => !FLOAT_TYPES.has(t)).map(([name]) => name));
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
  const nonFloat = nonFloatTensors(g);
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
    // shape arithmetic (int64 Concat/Mul… feeding a Reshape) is no activation to quantize
    if ((n.domain ?? '') !== '' || isExcluded(n) || n.output.some((o) => nonFloat.has(o))) continue;
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
  // Folding replaces Relu/Clip by the quantizer's clamp. A float Conv/Gemm/MatMul (excluded, or not
  // quantizable) reading the tensor reads the dequantized value through its own copy of the clamp
  // (rewrite.ts): the int8 producer keeps its clamped range. Unfolding instead would quantize the
  // producer's output before the clamp, over its whole range (MobileNetV2's ReLU6 outputs span [0, 6],
  // before the clamp about [-20, 20]): coarser steps for every reader. (A float reader gets the
  // dequantized value either way: onnxruntime's fused graph feeds it the int8 kernel's output.)
  for (const n of nodes) {
    const a = foldTarget(n);
    if (a) folded.set(n, a);
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
    const actInputs = (HEAVY_OPS as readonly string[]).includes(op) || passThrough ? [n.input[0]!] : n.input.filter((x) => isFloatActivation(x, inits, nonFloat));
    for (const x of actInputs) {
      add(x);
      if (graphInputs.has(x)) minmaxOnly.add(x);
    }
    const out = effectiveOut(n);
    const feedsQuantized = (consumers.get(out) ?? []).some((c) => nodes.has(c));
    // A Gemm/MatMul read only by float operators (the logits) keeps a float output: onnxruntime fuses
    // DQ → Gemm into QGemm and DQ → MatMul into MatMulIntegerToFloat with float outputs, so the int8
    // kernel stays and the logits are not rounded to 256 levels.
    if ((op === 'Gemm' || op === 'MatMul') && !feedsQuantized && !folded.has(n)) continue;
    add(out);
    if (op === 'MaxPool' || passThrough) sharedFrom.set(out, n.input[0]!);
    if (!feedsQuantized) minmaxOnly.add(out);
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
