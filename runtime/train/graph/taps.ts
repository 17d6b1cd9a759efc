// Where a multi-layer open-set score (runtime/train/openset.ts fitLayered) taps a backbone, found from its
// graph: the activated outputs of the depthwise convolutions of its last residual blocks. One structural
// rule for every backbone (fp32, QDQ, QLinear int8, TFLite imports), no per-file table. Browser-safe.

import { consumerMap, producerMap, getIntAttribute } from '../../onnx/graph.js';
import { getInitializer } from '../../onnx/topology.js';
import type { GraphProto, NodeProto, OnnxModel } from '../../onnx/model.js';

/** How many taps the rule picks (the measured pair; see openSetTapsOf). */
export const OPEN_SET_TAP_COUNT = 2;

/**
 * Element-wise activations a depthwise convolution's output is read after (a QLinearConv has its own
 * fused). Its own list, not the cut's (cut.ts also reads through Sigmoid, Tanh, Softplus and Mul): the
 * taps were measured with these, and a Mul after a depthwise conv is an unfolded batch norm's scale.
 */
const ACTIVATIONS = new Set(['Relu', 'Clip', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'HardSwish', 'HardSigmoid']);

const CONVS = new Set(['Conv', 'QLinearConv']);
const QDQ = new Set(['QuantizeLinear', 'DequantizeLinear']);
/** Read through too: an unfolded batch normalization (a tfjs import keeps Conv → BatchNormalization → Clip). */
const NORMS = new Set(['BatchNormalization']);
const ADDS = new Set(['Add', 'Sum', 'QLinearAdd']);

/** What a backbone's open-set score reads: the tensors (in graph order) and which rule found them. */
export interface OpenSetTaps {
  /** Backbone tensors, cut as embeddings (runtime/train/export.ts findCut: dequantized, spatially averaged); empty: the embedding alone. */
  tensors: string[];
  /** `residual-depthwise`: depthwise outputs of the last residual blocks; `depthwise`: of the last blocks (no residual block has one); `none`: no depthwise convolution (SqueezeNet, a flattened MLP). */
  rule: 'residual-depthwise' | 'depthwise' | 'none';
}

/** The tensor `t` continues as when it has a single consumer of a kind in `through` (its output), else `t`. */
function follow(consumers: Map<string, NodeProto[]>, t: string, through: (op: string) => boolean): string {
  for (let i = 0; i < 8; i++) {
    const c = consumers.get(t) ?? [];
    if (c.length !== 1 || !through(c[0]!.opType ?? '') || !c[0]!.output[0]) return t;
    t = c[0]!.output[0];
  }
  return t;
}

/** The weight initializer's dims of a Conv (input 1) / QLinearConv (input 3), also behind a DequantizeLinear. */
function weightDims(g: GraphProto, producers: Map<string, NodeProto>, n: NodeProto): number[] | undefined {
  let w = n.input[n.opType === 'QLinearConv' ? 3 : 1];
  const dq = w ? producers.get(w) : undefined;
  if (dq?.opType === 'DequantizeLinear') w = dq.input[0];
  return w ? getInitializer(g, w)?.dims.map(Number) : undefined;
}

/**
 * The taps of a backbone's multi-layer open-set score, found in its graph from the structure: among the
 * nodes the `embedding` tensor depends on, the depthwise convolutions (Conv / QLinearConv with group > 1
 * and one input channel per group: weight [C, 1, kh, kw], also behind a DequantizeLinear), each read after
 * its activation (the Clip/Relu that follows, through a BatchNormalization a tfjs import keeps and the
 * QuantizeLinear → DequantizeLinear pair of a QDQ graph; a QLinearConv has it fused and findCut dequantizes
 * its output). Of those, the last `OPEN_SET_TAP_COUNT` whose block ends in its own residual Add (depthwise →
 * activation → 1×1 projection → Add/QLinearAdd whose other operand was computed before the depthwise
 * conv): for MobileNetV2 the depthwise outputs of the two repeated blocks of the last stage (7×7×960:
 * `603_quantized`, `612_quantized` in mobilenetv2-12-int8.onnx; `…/expanded_conv_14|15/depthwise/Relu6` in
 * the Coral TFLite MobileNetV2). Chosen by measurement (Lee et al., NeurIPS 2018's feature ensemble on
 * bench:unknown's tuning splits, mobilenetv2-int8: those two 0.803 near-unknown AUROC, the embedding alone
 * 0.741 with per-class covariances; the last block's depthwise output, which widens 160 → 320 without a
 * residual, 0.697 alone in the numpy replica). A backbone without residual blocks (MobileNetV1) gets its
 * last `OPEN_SET_TAP_COUNT` depthwise convolutions; one without depthwise convolutions (SqueezeNet, an MLP)
 * none: the score reads the embedding alone. Assumes the graph's nodes in topological order (as ONNX
 * requires). Pure; never throws (an embedding no node produces gives none).
 */
export function openSetTapsOf(model: OnnxModel, embedding: string): OpenSetTaps {
  const g = model.graph;
  const producers = producerMap(g);
  const consumers = consumerMap(g);
  // the nodes the embedding depends on
  const needed = new Set<NodeProto>();
  const stack = [embedding];
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    const p = producers.get(t);
    if (!p || needed.has(p)) continue;
    needed.add(p);
    for (const x of p.input) if (x) stack.push(x);
  }
  const order = new Map(g.node.map((n, i) => [n, i]));
  const inits = new Set(g.initializer.map((t) => t.name));
  const depthwise = g.node.filter((n) => {
    if (!needed.has(n) || !CONVS.has(n.opType ?? '') || (getIntAttribute(n, 'group') ?? 1) <= 1) return false;
    const dims = weightDims(g, producers, n);
    return dims?.length === 4 && dims[1] === 1;
  });
  const taps = depthwise.map((n) => {
    const activated = follow(consumers, n.output[0]!, (op) => ACTIVATIONS.has(op) || QDQ.has(op) || NORMS.has(op));
    // the block's projection (the next convolution, through Q/DQ), then whether its output is summed with a skip
    const proj = (consumers.get(activated) ?? []).find((c) => CONVS.has(c.opType ?? ''));
    const projected = proj?.output[0] ? follow(consumers, proj.output[0], (op) => QDQ.has(op) || NORMS.has(op)) : undefined;
    // the block's own skip: the Add's other operand was computed before the depthwise conv (not the next block's Add, which reads this block's output as its skip)
    const before = (x: string): boolean => {
      let p = producers.get(x);
      while (p && QDQ.has(p.opType ?? '')) p = producers.get(p.input[0]!);
      return !p || (order.get(p) ?? Infinity) < order.get(n)!;
    };
    const residual = !!projected && (consumers.get(projected) ?? []).some((c) => ADDS.has(c.opType ?? '') && c.input.some((x) => x && x !== projected && !inits.has(x) && before(x)));
    return { tensor: activated, residual };
  }).filter((t) => t.tensor !== embedding);
  const residual = taps.filter((t) => t.residual);
  if (residual.length >= OPEN_SET_TAP_COUNT) return { tensors: residual.slice(-OPEN_SET_TAP_COUNT).map((t) => t.tensor), rule: 'residual-depthwise' };
  if (taps.length) return { tensors: taps.slice(-OPEN_SET_TAP_COUNT).map((t) => t.tensor), rule: 'depthwise' };
  return { tensors: [], rule: 'none' };
}
