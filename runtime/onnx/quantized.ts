// "Is it int8?", one rule (browser-safe): a graph is quantized when any node is a quantization
// operator, in either of ONNX's two int8 forms: QDQ (QuantizeLinear / DequantizeLinear pairs around
// float operators, what `edgetune quantize` and the TFLite importer write) or QOperator (QLinearConv,
// QLinearMatMul, … and the integer kernels ConvInteger / MatMulInteger, what the ONNX zoo's int8 files
// hold), onnxruntime's contrib operators (QGemm, QAttention, DynamicQuantizeMatMul, …) included.
// Such a graph has no float weights to train or to quantize again: `quantize` refuses it,
// `finetune --unfreeze` refuses it (naming the fp32 twin), `finetune --int8` writes it as it is.
// Within that rule, an int8 graph whose only quantization operators are DequantizeLinear stores int8
// weights but computes in float (a TFLite dynamic-range "hybrid" model, imported): `quantizesActivations`.

import type { GraphProto, NodeProto } from './model.js';

/** Quantization operators beyond the `QLinear*` family (which counts whole, by prefix). */
const QUANTIZED_OPS = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'QGemm',
  'QAttention',
  'ConvInteger',
  'MatMulInteger',
  'MatMulIntegerToFloat',
  'DynamicQuantizeMatMul',
  'DynamicQuantizeLSTM',
]);

/** Whether one node is a quantization operator (see the module header). */
export function isQuantizedOp(node: Pick<NodeProto, 'opType'>): boolean {
  const op = node.opType ?? '';
  return op.startsWith('QLinear') || QUANTIZED_OPS.has(op);
}

/** The quantization operators of a graph and how many of each, in first-seen order (empty: a float graph). */
export function quantizedOperators(g: Pick<GraphProto, 'node'>): Map<string, number> {
  const found = new Map<string, number>();
  for (const n of g.node) if (isQuantizedOp(n)) found.set(n.opType!, (found.get(n.opType!) ?? 0) + 1);
  return found;
}

/** Whether a graph is int8 (any quantization operator: the one rule, see the module header). */
export function isQuantizedGraph(g: Pick<GraphProto, 'node'>): boolean {
  return g.node.some(isQuantizedOp);
}

/**
 * Whether a graph computes in int8: it has a quantization operator (the one rule above) other than
 * DequantizeLinear, i.e. something quantizes activations at run time (QuantizeLinear of a QDQ pair,
 * QLinearConv, ConvInteger, DynamicQuantizeLinear…). False for a float graph and for an int8 graph
 * whose quantization operators are all DequantizeLinear: int8 weights dequantized to float at run
 * time, float activations (what a TFLite dynamic-range "hybrid" model imports as).
 */
export function quantizesActivations(g: Pick<GraphProto, 'node'>): boolean {
  return g.node.some((n) => isQuantizedOp(n) && n.opType !== 'DequantizeLinear');
}
