// What a QDQ rewrite produced (browser-safe graph reading): the quantized Conv/Gemm/MatMul layers of
// a QDQ model paired with the float nodes whose weights they rounded (GPTQ, the empirical bias
// correction and the sensitivity analysis work on these pairs), which calibrated tensor's parameters
// an activation uses, and operator counts for reports and tests.

import { getInitializer, producerMap, setInitializer } from '../runtime/onnx/graph.js';
import { EdgetuneError } from '../runtime/core/errors.js';
import { decodeModel, type GraphProto, type NodeProto, type OnnxModel } from '../runtime/onnx/model.js';
import { HEAVY_OPS, type QuantizationPlan } from './plan.js';

/** The calibrated tensor whose parameters `t` uses (itself unless shared). */
export function parameterSource(plan: QuantizationPlan, t: string): string {
  let s = t;
  for (let i = 0; plan.sharedFrom.has(s) && i < 1000; i++) s = plan.sharedFrom.get(s)!;
  return s;
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

/** Op counts of a model file's graph (tests and the bench use it to show what was quantized). Throws when `bytes` is not an ONNX model. */
export function countOps(bytes: Uint8Array): Record<string, number> {
  return opCounts(decodeModel(bytes).graph);
}

/**
 * The Relu/Clip the QDQ rewrite folded into an activation quantizer, put back after `t` in a copy of
 * the quantized graph: the float model's clamp node (and its min/max initializers, copied from the
 * float model into `g`) writing `output`. Returns the node to add, or undefined when `t` had no folded
 * clamp (its float producer is not a Relu/Clip, or the quantized graph still has it).
 * Used where an activation is read without its quantizer (sensitivity, bias-correction measurement).
 */
export function unfoldedClamp(
  floatModel: OnnxModel,
  g: GraphProto,
  t: string,
  output: string,
  nodeName: string,
  producers: { float: Map<string, NodeProto>; quant: Map<string, NodeProto> },
): NodeProto | undefined {
  const clamp = producers.float.get(t);
  const now = producers.quant.get(t);
  if (!clamp || (clamp.opType !== 'Relu' && clamp.opType !== 'Clip') || !now || now.opType === clamp.opType) return undefined;
  for (const x of clamp.input.slice(1)) {
    if (!x || getInitializer(g, x)) continue;
    const init = getInitializer(floatModel.graph, x);
    if (!init) throw new EdgetuneError('EMODEL', `float initializer "${x}" not found`);
    setInitializer(g, { ...init });
  }
  return { ...clamp, name: nodeName, input: [t, ...clamp.input.slice(1)], output: [output] };
}

