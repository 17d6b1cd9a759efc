// Backbone cut + head → one ONNX classifier. BROWSER-SAFE (no Node APIs): the CLI and the browser
// kiosk both use it.
//
//   findCut(model, hint?) → CutSpec: where the embedding is taken. A hint (registry `embedding.tensor`)
//     names the tensor; otherwise it is found: the data input of the last Gemm/MatMul/QLinearMatMul
//     (walking back through Reshape/Flatten/Squeeze/Identity/Dropout), or for a model with no dense head
//     (SqueezeNet) the input of the last Conv. A tensor that is not already pooled (its producer, seen through
//     Reshape/Flatten/Squeeze/Identity/Dropout and QDQ pairs, is not a pooling op) gets a GlobalAveragePool; a quantized tensor (produced by a QLinear* op) gets a
//     DequantizeLinear with the scale / zero point its consumer QLinearMatMul (or producer) uses.
//   embeddingModel(backbone, cut) → ONNX bytes whose one output `edgetune_embedding` is float [N, dims]:
//     the backbone pruned to what the embedding needs, plus the DequantizeLinear / GlobalAveragePool /
//     Flatten nodes of the cut.
//   embeddingGraph(backbone, cut) → EmbeddingGraph {model, bytes, cut}: the same, built once and kept,
//     so that the embedding session and the export share it (a fine-tune builds the graph once).
//   embeddingGraphWithTaps(graph, taps) → the embedding graph with more outputs: the open-set taps' features
//     (cut as the exported multi-layer score cuts them), so one backbone pass gives the embedding and the taps.
//   exportClassifierModel(backbone | EmbeddingGraph, cut, head, labels, preprocess, provenance?) → ONNX
//     bytes: the same embedding graph (reused when given an EmbeddingGraph) + the head (LpNormalization for a prototype head, Gemm [+ Relu + Gemm …]) + the
//     head's task's output: Softmax (classification) or Sigmoid (multilabel), output `probabilities`
//     float [N, classes]; nothing for regression, output `values` float [N, outputs] in the targets'
//     units (`labels` then name the outputs). Metadata_props `edgetune.model` (core/metadata.ts's
//     EmbeddedModelInfo, outputKind 'probabilities' so no softmax is applied after it, `task` set for
//     multilabel and regression) so `classify` serves it.
//   headFromModel(bytes) → the HeadWeights + labels + info of a model this module exported (for --resume).
//
// Both graphs share the embedding subgraph, so a model's predictions equal the head applied to the
// embeddings the embedding model computes (up to float rounding).

import { decodeModel, encodeModel, type GraphProto, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from '../onnx/model.js';
import { DataType, findConsumers, getOpsetVersion, makeNode, makeTensor, makeTensorType, makeValueInfo, producerMap, pruneGraph, setIntAttribute, setIntsAttribute } from '../onnx/graph.js';
import * as v from 'valibot';
import { EdgetuneError, invalidParameter } from '../core/errors.js';
import { checkOptionKeys } from '../core/options.js';
import { METADATA_KEY, ModelInfoSchema } from '../core/metadata.js';
import { parseJsonContract } from '../core/schema.js';
import type { PreprocessSpec } from '../image/preprocess.js';
import type { DenseLayer, HeadWeights } from './types.js';
import type { LayeredDetector, MahalanobisDetector, OpenSetCalibration } from './openset.js';
import type { OpenSetSpec } from '../core/model-card.js';

/** metadata_props key of the model description (core/metadata.ts). */
export const MODEL_INFO_KEY = METADATA_KEY;
export const EMBEDDING_OUTPUT = 'edgetune_embedding';
export const PROBABILITIES_OUTPUT = 'probabilities';
/** Output of a regression head's model: the values, [N, outputs]. */
export const VALUES_OUTPUT = 'values';
/** Graph output of a classifier with an open-set calibration: float [N, 1], higher = less like anything taught, above the card's `openSet.threshold` = unknown. */
export const UNKNOWN_OUTPUT = 'unknown_score';
const PREFIX = 'edgetune_head/';

export interface CutSpec {
  /** The backbone tensor the embedding is taken from. */
  tensor: string;
  /** Average over the spatial dimensions (for an unpooled feature map). */
  pool: boolean;
  /** Initializer names of the scale and zero point when the tensor is quantized. */
  dequantize?: { scale: string; zeroPoint: string };
  /** Embedding width when known (from the graph's value_info or initializers), else 0. */
  dims: number;
}

const POOL_OPS = new Set(['GlobalAveragePool', 'QLinearGlobalAveragePool', 'AveragePool', 'ReduceMean', 'GlobalMaxPool', 'MaxPool']);
const PASS_OPS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Identity', 'Dropout']);
/**
 * What the "already pooled" test sees through besides PASS_OPS: a QDQ pair keeps the values' shape,
 * so an int8 import's pooled tensor (GlobalAveragePool → Reshape → QuantizeLinear → DequantizeLinear,
 * Teachable Machine's int8 `model.tflite`) is pooled too.
 */
const SHAPE_KEEPING_OPS = new Set([...PASS_OPS, 'QuantizeLinear', 'DequantizeLinear']);
/** Input index of the output scale (zero point follows) of QOperator ops (onnxruntime contrib ops included). */
const OUTPUT_QPARAMS: Record<string, number> = {
  QLinearConv: 6,
  QLinearMatMul: 6,
  QLinearAdd: 6,
  QLinearMul: 6,
  QLinearGlobalAveragePool: 3,
  QLinearAveragePool: 3,
  QLinearLeakyRelu: 3,
  QLinearSigmoid: 3,
  QLinearSoftmax: 3,
  QLinearConcat: 0,
};
const DENSE_OPS = new Set(['Gemm', 'MatMul', 'QLinearMatMul', 'MatMulInteger']);

function notFound(msg: string): EdgetuneError {
  return new EdgetuneError('EMODEL', msg);
}

/** Where to cut a backbone (see the module comment). */
export function findCut(model: OnnxModel, hint?: string | null): CutSpec {
  const g = model.graph;
  const prod = producerMap(g);
  const inits = new Set(g.initializer.map((t) => t.name));
  let tensor: string;
  let dense: NodeProto | undefined;
  if (hint) {
    if (!prod.has(hint)) throw notFound(`embedding tensor "${hint}" is not produced by any node of the model`);
    tensor = hint;
  } else {
    dense = [...g.node].reverse().find((n) => DENSE_OPS.has(n.opType ?? '') && n.input[0] && !inits.has(n.input[0]));
    let start: string | undefined = dense?.input[0];
    if (!start) {
      const conv = [...g.node].reverse().find((n) => n.opType === 'Conv' || n.opType === 'QLinearConv');
      if (!conv) throw notFound('cannot find an embedding: the model has no Gemm/MatMul/QLinearMatMul and no Conv; give the tensor name (registry embedding.tensor)');
      start = conv.input[0]!;
    }
    tensor = start;
    for (let p = prod.get(tensor); p && PASS_OPS.has(p.opType ?? ''); p = prod.get(tensor)) tensor = p.input[0]!;
  }
  const producer = prod.get(tensor)!;
  // Already pooled: produced by a pooling op, also through reshapes (an imported Keras
  // GlobalAveragePooling2D is GlobalAveragePool → Reshape to [N, C]), or a tensor of rank 2 ([N, C]).
  let source: NodeProto | undefined = producer;
  while (source && SHAPE_KEEPING_OPS.has(source.opType ?? '') && source.input[0]) source = prod.get(source.input[0]);
  const pooled = POOL_OPS.has(source?.opType ?? '') || rankOf(model, tensor) === 2;
  let dequantize: CutSpec['dequantize'];
  if ((producer.opType ?? '').startsWith('QLinear') || producer.opType === 'QuantizeLinear') {
    // Scale / zero point: from the QLinearMatMul that consumes it (through reshapes), else the producer's output qparams.
    let consumer = dense;
    if (!consumer) {
      const seen = [tensor];
      for (let i = 0; i < seen.length && !consumer; i++) {
        for (const c of findConsumers(g, seen[i]!)) {
          if (c.opType === 'QLinearMatMul' && c.input[0] === seen[i]) consumer = c;
          else if (PASS_OPS.has(c.opType ?? '')) seen.push(c.output[0]!);
        }
      }
    }
    if (consumer?.opType === 'QLinearMatMul') dequantize = { scale: consumer.input[1]!, zeroPoint: consumer.input[2]! };
    else if (producer.opType === 'QuantizeLinear') dequantize = { scale: producer.input[1]!, zeroPoint: producer.input[2]! };
    else {
      const at = OUTPUT_QPARAMS[producer.opType ?? ''];
      if (at === undefined) throw notFound(`cannot dequantize embedding tensor "${tensor}": unknown quantized operator ${producer.opType}`);
      dequantize = { scale: producer.input[at]!, zeroPoint: producer.input[at + 1]! };
    }
  }
  // Unpooled feature maps ([N,C,H,W] after a local pool, as MNIST's) are flattened: C·H·W values.
  return { tensor, pool: !pooled, dequantize, dims: pooled ? flatSizeOf(model, tensor) : channelsOf(model, tensor) };
}

function rankOf(model: OnnxModel, tensor: string): number | undefined {
  const vi = [...model.graph.valueInfo, ...model.graph.output].find((v) => v.name === tensor);
  return vi?.type?.tensorType?.shape?.dim?.length ?? producedRank(model, tensor);
}

/** Operators whose output has their first input's rank (element-wise, and the inference forms of normalisation). */
const RANK_KEEPING_OPS = new Set([
  'Relu', 'Clip', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softmax', 'Identity', 'Dropout',
  'Add', 'Sub', 'Mul', 'Div', 'BatchNormalization', 'QuantizeLinear', 'DequantizeLinear', 'Cast',
]);

/**
 * A tensor's rank from the nodes that make it, when no value_info says (tf2onnx writes none for its
 * dense layers): Flatten and Gemm give 2 (ONNX: Gemm's inputs are matrices), a Reshape to a constant
 * shape that shape's length, a MatMul by a matrix its first input's rank, element-wise operators their
 * first input's. Undefined when the chain reaches anything else.
 */
function producedRank(model: OnnxModel, tensor: string): number | undefined {
  const prod = producerMap(model.graph);
  const inits = new Map(model.graph.initializer.map((t) => [t.name ?? '', t]));
  for (let name = tensor, steps = 0; steps < 64; steps++) {
    const p = prod.get(name);
    if (!p) return undefined;
    const op = p.opType ?? '';
    if (op === 'Flatten' || op === 'Gemm') return 2;
    if (op === 'Reshape') {
      const shape = inits.get(p.input[1] ?? '');
      return shape?.dims.length === 1 ? Number(shape.dims[0]) : undefined;
    }
    if (op === 'MatMul' && inits.get(p.input[1] ?? '')?.dims.length !== 2) return undefined;
    if (op !== 'MatMul' && !RANK_KEEPING_OPS.has(op)) return undefined;
    name = p.input[0] ?? '';
  }
  return undefined;
}

/** Values per row of a tensor ([N, …] → product of the rest) from value_info, or 0 when unknown. */
function flatSizeOf(model: OnnxModel, tensor: string): number {
  const vi = [...model.graph.valueInfo, ...model.graph.output].find((v) => v.name === tensor);
  const dims = vi?.type?.tensorType?.shape?.dim?.slice(1) ?? [];
  if (!dims.length || dims.some((d) => typeof d.dimValue !== 'number')) return 0;
  return dims.reduce((a, d) => a * (d.dimValue as number), 1);
}

function channelsOf(model: OnnxModel, tensor: string): number {
  const vi = [...model.graph.valueInfo, ...model.graph.output].find((v) => v.name === tensor);
  const d = vi?.type?.tensorType?.shape?.dim?.[1]?.dimValue;
  return typeof d === 'number' ? d : 0;
}

/** A node with integer attributes, built with the ONNX toolkit (makeNode, setIntAttribute). */
function node(opType: string, inputs: string[], outputs: string[], name: string, ints: Record<string, number> = {}): NodeProto {
  const n = makeNode(opType, inputs, outputs, { name });
  for (const [k, v] of Object.entries(ints)) setIntAttribute(n, k, v);
  return n;
}

/** A float [batch, width] graph output, its batch dim named or sized as the image input's. */
function floatOutput(name: string, batch: ValueInfoProto | undefined, width: number): ValueInfoProto {
  const b = batch?.type?.tensorType?.shape?.dim?.[0];
  return makeValueInfo(name, makeTensorType(DataType.FLOAT, [b?.dimParam ?? b?.dimValue ?? 1, width > 0 ? width : 'features']));
}

function batchDim(input: ValueInfoProto | undefined): string | number {
  const b = input?.type?.tensorType?.shape?.dim?.[0];
  return b?.dimParam ?? b?.dimValue ?? 1;
}

/**
 * The Mahalanobis unknown score (runtime/train/openset.ts, Lee et al. 2018) as ONNX nodes from the
 * embedding [N, d] to UNKNOWN_OUTPUT [N]: x (LpNormalization when the detector normalises) → Reshape
 * [N, 1, d] → Sub class means [K, d] → v [N, K, d]; q = ReduceSum(v·v) − ReduceSum((v·Bᵀ)²) over the
 * last axis → [N, K]; Mul by scale / (dims · threshold); ReduceMin over classes (keepdims: [N, 1]). 1 = the fitted threshold.
 * Reduce ops take their axes as an attribute or an input as the model's opset asks (ReduceSum: input from
 * opset 13, ReduceMin: from 18).
 */
function mahalanobisNodes(
  det: MahalanobisDetector, embedding: string, opset: number, nodes: NodeProto[], inits: TensorProto[],
  o: { prefix?: string; output?: string; threshold?: number } = {},
): void {
  const P = o.prefix ?? `${PREFIX}openset/`;
  const threshold = o.threshold ?? det.threshold;
  const { dims: d, classes: K, rank: r } = det;
  let x = embedding;
  if (det.normalize) {
    nodes.push(node('LpNormalization', [x], [P + 'normalized'], P + 'normalize', { axis: 1, p: 2 }));
    x = P + 'normalized';
  }
  inits.push(makeTensor(P + 'shape', DataType.INT64, [3], [-1, 1, d]), makeTensor(P + 'means', DataType.FLOAT, [K, d], det.means));
  nodes.push(node('Reshape', [x, P + 'shape'], [P + 'x3'], P + 'reshape'));
  nodes.push(node('Sub', [P + 'x3', P + 'means'], [P + 'v'], P + 'center'));
  const reduce = (op: 'ReduceSum' | 'ReduceMin', input: string, output: string, axis: number, keepdims = 0): void => {
    const asInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
    const axes = `${P}axes${axis}`;
    if (asInput && !inits.some((t) => t.name === axes)) inits.push(makeTensor(axes, DataType.INT64, [1], [axis]));
    const n = node(op, asInput ? [input, axes] : [input], [output], `${P}${op}_${output.replace(/\W/g, '_')}`, { keepdims });
    if (!asInput) setIntsAttribute(n, 'axes', [axis]);
    nodes.push(n);
  };
  nodes.push(node('Mul', [P + 'v', P + 'v'], [P + 'v2'], P + 'square'));
  reduce('ReduceSum', P + 'v2', P + 'q1', 2);
  let q = P + 'q1';
  const perClass = det.covariance === 'per-class';
  if (r > 0 && perClass) {
    // per-class bases B_c [K, d, r]: v [N, K, d] → [N, K, 1, d] · B_c → [N, K, 1, r]
    const bt = new Float32Array(K * d * r);
    for (let c = 0; c < K; c++) for (let k = 0; k < r; k++) for (let j = 0; j < d; j++) bt[(c * d + j) * r + k] = det.basis[(c * r + k) * d + j]!;
    inits.push(makeTensor(P + 'basis_t', DataType.FLOAT, [K, d, r], bt), makeTensor(P + 'shape4', DataType.INT64, [4], [-1, K, 1, d]), makeTensor(P + 'shape2', DataType.INT64, [2], [-1, K]));
    nodes.push(node('Reshape', [P + 'v', P + 'shape4'], [P + 'v4'], P + 'reshape_v'));
    nodes.push(node('MatMul', [P + 'v4', P + 'basis_t'], [P + 'p'], P + 'project'));
    nodes.push(node('Mul', [P + 'p', P + 'p'], [P + 'p2'], P + 'square_p'));
    reduce('ReduceSum', P + 'p2', P + 'q2_3', 3);
    nodes.push(node('Reshape', [P + 'q2_3', P + 'shape2'], [P + 'q2'], P + 'reshape_q'));
    nodes.push(node('Sub', [P + 'q1', P + 'q2'], [P + 'q'], P + 'woodbury'));
    q = P + 'q';
  } else if (r > 0) {
    const bt = new Float32Array(d * r); // Bᵀ, d×r
    for (let k = 0; k < r; k++) for (let j = 0; j < d; j++) bt[j * r + k] = det.basis[k * d + j]!;
    inits.push(makeTensor(P + 'basis_t', DataType.FLOAT, [d, r], bt));
    nodes.push(node('MatMul', [P + 'v', P + 'basis_t'], [P + 'p'], P + 'project'));
    nodes.push(node('Mul', [P + 'p', P + 'p'], [P + 'p2'], P + 'square_p'));
    reduce('ReduceSum', P + 'p2', P + 'q2', 2);
    nodes.push(node('Sub', [P + 'q1', P + 'q2'], [P + 'q'], P + 'woodbury'));
    q = P + 'q';
  }
  // scale_c / (dims · threshold): one per class (per-class) or one for all
  if (perClass) inits.push(makeTensor(P + 'scale', DataType.FLOAT, [K], Float32Array.from(det.scales!, (a) => a / d / threshold)));
  else inits.push(makeTensor(P + 'scale', DataType.FLOAT, [], [det.scale / d / threshold]));
  nodes.push(node('Mul', [q, P + 'scale'], [P + 'scaled'], P + 'scale'));
  // [N, 1]: one value per image with a batch dimension Triton can batch (dims [1])
  reduce('ReduceMin', P + 'scaled', o.output ?? UNKNOWN_OUTPUT, 1, 1);
}

/**
 * The multi-layer unknown score (runtime/train/openset.ts LayeredDetector, the feature ensemble of Lee et
 * al. 2018) as ONNX nodes: per layer, its backbone tensor (found in `model` and cut as findCut cuts an
 * embedding: DequantizeLinear for a quantized tensor, GlobalAveragePool, Flatten; the embedding itself for
 * EMBEDDING_OUTPUT) → its Mahalanobis nodes (raw score [N, 1]) → (s − mean) / std; Sum over layers →
 * Exp((sum − threshold) / spread) = UNKNOWN_OUTPUT [N, 1], 1 at the fitted threshold.
 */
function layeredNodes(det: LayeredDetector, model: OnnxModel, embedding: string, opset: number, nodes: NodeProto[], inits: TensorProto[]): void {
  const P = `${PREFIX}openset/`;
  const z: string[] = [];
  det.layers.forEach((l, i) => {
    const L = `${P}layer${i}/`;
    const x = l.tensor === EMBEDDING_OUTPUT ? embedding : tapFeatureNodes(model, l.tensor, L, L + 'features', nodes).output;
    mahalanobisNodes(l.detector, x, opset, nodes, inits, { prefix: L, output: L + 'score', threshold: 1 });
    inits.push(makeTensor(L + 'mean', DataType.FLOAT, [], [l.mean]), makeTensor(L + 'inverse_std', DataType.FLOAT, [], [1 / l.std]));
    nodes.push(node('Sub', [L + 'score', L + 'mean'], [L + 'centred'], L + 'centre'));
    nodes.push(node('Mul', [L + 'centred', L + 'inverse_std'], [L + 'z'], L + 'standardise'));
    z.push(L + 'z');
  });
  nodes.push(node('Sum', z, [P + 'sum'], P + 'sum'));
  inits.push(makeTensor(P + 'threshold', DataType.FLOAT, [], [det.threshold]), makeTensor(P + 'inverse_spread', DataType.FLOAT, [], [1 / det.spread]));
  nodes.push(node('Sub', [P + 'sum', P + 'threshold'], [P + 'excess'], P + 'excess'));
  nodes.push(node('Mul', [P + 'excess', P + 'inverse_spread'], [P + 'exponent'], P + 'exponent'));
  nodes.push(node('Exp', [P + 'exponent'], [UNKNOWN_OUTPUT], P + 'exp'));
}

/**
 * A tap's features as nodes appended to `nodes`: the backbone tensor `tensor` cut as findCut cuts an
 * embedding (DequantizeLinear for a quantized tensor, GlobalAveragePool for a feature map, Cast to float
 * for a float16 model, Flatten) → `output`, float [N, dims] (dims 0 when the graph does not say). The one
 * place a tap is cut: the exported multi-layer score (layeredNodes) and the embedding session's tap
 * outputs (embeddingGraphWithTaps) compute the same features. Errors: EMODEL when no node produces `tensor`.
 */
function tapFeatureNodes(model: OnnxModel, tensor: string, prefix: string, output: string, nodes: NodeProto[]): { output: string; dims: number } {
  const cut = findCut(model, tensor);
  cutNodes(cut, imageInput(model.graph)?.type?.tensorType?.elemType === 10, prefix, output, nodes);
  return { output, dims: cut.dims };
}

/**
 * The nodes of a cut (the embedding's, buildEmbedding; a tap's, tapFeatureNodes), appended to `nodes`:
 * DequantizeLinear (a quantized tensor), GlobalAveragePool (a feature map), Cast to float (`half`: a
 * float16 model), Flatten → `output`. Node and tensor names start with `prefix`.
 */
function cutNodes(cut: CutSpec, half: boolean, prefix: string, output: string, nodes: NodeProto[]): void {
  let x = cut.tensor;
  if (cut.dequantize) {
    nodes.push(node('DequantizeLinear', [x, cut.dequantize.scale, cut.dequantize.zeroPoint], [prefix + 'dequantized'], prefix + 'dequantize'));
    x = prefix + 'dequantized';
  }
  if (cut.pool) {
    nodes.push(node('GlobalAveragePool', [x], [prefix + 'pooled'], prefix + 'pool'));
    x = prefix + 'pooled';
  }
  if (half) {
    nodes.push(node('Cast', [x], [prefix + 'float'], prefix + 'cast', { to: 1 }));
    x = prefix + 'float';
  }
  nodes.push(node('Flatten', [x], [output], prefix + 'flatten', { axis: 1 }));
}

/** Graph output of tap i in an embedding graph with taps (embeddingGraphWithTaps): `edgetune_tap/<i>`. */
export const TAP_OUTPUT_PREFIX = 'edgetune_tap/';

/** An embedding graph with tap outputs: what a multi-output embedding session opens. */
export interface TapsGraph {
  /** The ONNX bytes: outputs EMBEDDING_OUTPUT, then one per tap. */
  readonly bytes: Uint8Array;
  /** Per tap, in the order asked: the backbone tensor, its graph output, its width (0 when the graph does not say). */
  readonly taps: readonly { tensor: string; output: string; dims: number }[];
}

/**
 * `graph` (an embedding graph) with more outputs: the features of each backbone tensor in `taps` (the
 * open-set taps, runtime/train/graph/taps.ts openSetTapsOf), cut exactly as the exported multi-layer
 * score cuts them (tapFeatureNodes), output i+1 `edgetune_tap/<i>` float [N, dims_i]. One session.run of
 * it gives the embedding and every tap from one backbone pass. `graph` is not changed (the export extends
 * its model, without the tap outputs). Errors: EMODEL when a tap is not computed by the embedding graph
 * (not upstream of the embedding).
 */
export function embeddingGraphWithTaps(graph: EmbeddingGraph, taps: readonly string[]): TapsGraph {
  const g = graph.model.graph;
  const nodes: NodeProto[] = [];
  const batch = imageInput(g);
  const outs = taps.map((tensor, i) => {
    const t = tapFeatureNodes(graph.model, tensor, `${PREFIX}tap${i}/`, `${TAP_OUTPUT_PREFIX}${i}`, nodes);
    return { tensor, output: t.output, dims: t.dims };
  });
  const model: OnnxModel = { ...graph.model, graph: { ...g, node: [...g.node, ...nodes], output: [...g.output, ...outs.map((o) => floatOutput(o.output, batch, o.dims))] } };
  return { bytes: encodeModel(model), taps: outs };
}

/** The graph input that is not an initializer (old IR versions list initializers as inputs too). */
function imageInput(g: GraphProto): ValueInfoProto | undefined {
  const inits = new Set(g.initializer.map((t) => t.name));
  return g.input.find((i) => !inits.has(i.name));
}

/** The backbone pruned to `outputs`, with the cut's nodes appended; graph outputs replaced. */
function buildEmbedding(model: OnnxModel, cut: CutSpec): { model: OnnxModel; embedding: string } {
  const g = model.graph;
  if (cut.dequantize && (getOpsetVersion(model) ?? 1) < 10) throw notFound('cannot dequantize the embedding: the model\'s opset is below 10');
  const extra: NodeProto[] = [];
  const already = cut.tensor === EMBEDDING_OUTPUT; // a model this module exported, cut again (--resume)
  if (already && (cut.pool || cut.dequantize)) throw notFound(`${EMBEDDING_OUTPUT} is already pooled and dequantized`);
  // A float16 backbone (its image input is FLOAT16): the embedding, and the float32 head on it, are float32.
  if (!already) cutNodes(cut, imageInput(g)?.type?.tensorType?.elemType === 10, PREFIX, EMBEDDING_OUTPUT, extra);
  // The embedding becomes the only output; the toolkit prunes everything it does not need.
  const graph: GraphProto = { ...g, node: [...g.node, ...extra], output: [floatOutput(EMBEDDING_OUTPUT, imageInput(g), cut.dims)] };
  pruneGraph(graph);
  return { model: { ...model, graph, metadataProps: model.metadataProps.filter((p) => p.key !== MODEL_INFO_KEY) }, embedding: EMBEDDING_OUTPUT };
}

function asModel(backbone: Uint8Array | OnnxModel): OnnxModel {
  return backbone instanceof Uint8Array ? decodeModel(backbone) : backbone;
}

/** ONNX bytes computing the embedding (output `edgetune_embedding`, float [N, dims]). */
export function embeddingModel(backbone: Uint8Array | OnnxModel, cut: CutSpec): Uint8Array {
  return embeddingGraph(backbone, cut).bytes;
}

/** A backbone cut into its embedding graph, built once: `bytes` open the embedding session, `model` is what the export extends. */
export interface EmbeddingGraph {
  readonly kind: 'edgetune.embedding-graph';
  /** The pruned backbone whose one output is `edgetune_embedding` (not mutated by the export). */
  readonly model: OnnxModel;
  /** `model` encoded: what an embedding session opens. */
  readonly bytes: Uint8Array;
  readonly cut: CutSpec;
}

/** Build the embedding graph of `backbone` at `cut` once (see EmbeddingGraph). */
export function embeddingGraph(backbone: Uint8Array | OnnxModel, cut: CutSpec): EmbeddingGraph {
  const { model } = buildEmbedding(asModel(backbone), cut);
  return { kind: 'edgetune.embedding-graph', model, bytes: encodeModel(model), cut };
}

function isEmbeddingGraph(x: Uint8Array | OnnxModel | EmbeddingGraph): x is EmbeddingGraph {
  return (x as EmbeddingGraph).kind === 'edgetune.embedding-graph';
}

/** The information a classifier model this module exports carries: core/metadata.ts's contract, narrowed. */
export const ExportedModelInfoSchema = v.object({
  ...ModelInfoSchema.entries,
  outputKind: v.literal('probabilities'),
  outputName: v.string(),
});
export type ExportedModelInfo = v.InferOutput<typeof ExportedModelInfoSchema>;

function checkHead(head: HeadWeights, labels: readonly string[], dims: number): void {
  if (labels.length !== head.classes) throw invalidParameter('the head', `${head.classes} labels`, labels.length);
  if (dims > 0 && head.dims !== dims) throw invalidParameter("the head's embedding size", String(dims), head.dims);
  head.layers.forEach((l: DenseLayer, i) => {
    if (l.weight.length !== l.in * l.out || l.bias.length !== l.out) throw new EdgetuneError('EARG', `head layer ${i}: weight/bias sizes do not match ${l.out}×${l.in}`);
    // a NaN or float32-overflowing weight makes every score NaN: never export it (a diverged run or a poisoned embedding)
    for (const a of [l.weight, l.bias]) {
      for (let j = 0; j < a.length; j++) {
        if (!(Math.abs(a[j]!) <= 3.4028234663852886e38)) {
          throw new EdgetuneError('EARG', `head layer ${i} has a non-finite weight (${a[j]}): training diverged or an embedding is corrupt; lower the learning rate (--lr) or clear the embedding cache`);
        }
      }
    }
  });
}

/**
 * Backbone + cut + trained head + labels + preprocessing → one ONNX classifier (see the module comment).
 * Given an EmbeddingGraph (built for the embedding session), its graph is reused, not rebuilt; `cut` must be its cut.
 */
export function exportClassifierModel(
  backbone: Uint8Array | OnnxModel | EmbeddingGraph,
  cut: CutSpec,
  head: HeadWeights,
  labels: readonly string[],
  preprocess: PreprocessSpec,
  provenance?: Record<string, unknown>,
  openSet?: { detector: MahalanobisDetector | LayeredDetector; calibration: OpenSetCalibration },
): Uint8Array {
  checkOptionKeys('exportClassifierModel', openSet, ['detector', 'calibration'], 'openSet');
  checkHead(head, labels, cut.dims);
  if (openSet && (head.task ?? 'classification') !== 'classification') throw new EdgetuneError('EARG', 'an open-set calibration needs a classification head');
  if (openSet?.detector.method === 'mahalanobis' && openSet.detector.dims !== head.dims) throw invalidParameter("the open-set detector's embedding size", String(head.dims), openSet.detector.dims);
  for (const l of openSet?.detector.method === 'mahalanobis-layers' ? openSet.detector.layers : []) {
    if (l.tensor === EMBEDDING_OUTPUT && l.detector.dims !== head.dims) throw invalidParameter("the open-set detector's embedding size", String(head.dims), l.detector.dims);
  }
  if (isEmbeddingGraph(backbone) && backbone.cut.tensor !== cut.tensor) throw new EdgetuneError('EARG', `the embedding graph is cut at "${backbone.cut.tensor}", not at "${cut.tensor}"`);
  const { model, embedding } = isEmbeddingGraph(backbone) ? { model: backbone.model, embedding: EMBEDDING_OUTPUT } : buildEmbedding(asModel(backbone), cut);
  const g = model.graph;
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let t = embedding;
  if (head.normalize) {
    nodes.push(node('LpNormalization', [t], [PREFIX + 'normalized'], PREFIX + 'normalize', { axis: 1, p: 2 }));
    t = PREFIX + 'normalized';
  }
  head.layers.forEach((L, l) => {
    const w = `${PREFIX}dense${l}/weight`;
    const b = `${PREFIX}dense${l}/bias`;
    inits.push(makeTensor(w, DataType.FLOAT, [L.out, L.in], L.weight), makeTensor(b, DataType.FLOAT, [L.out], L.bias));
    const out = `${PREFIX}dense${l}`;
    const gemm = node('Gemm', [t, w, b], [out], `${PREFIX}gemm${l}`, { transB: 1 });
    if (l === 0) gemm.docString = `edgetune head: ${head.kind}`;
    nodes.push(gemm);
    t = out;
    if (l < head.layers.length - 1) {
      nodes.push(node('Relu', [t], [`${out}/relu`], `${PREFIX}relu${l}`));
      t = `${out}/relu`;
    }
  });
  const task = head.task ?? 'classification';
  const outputName = task === 'regression' ? VALUES_OUTPUT : PROBABILITIES_OUTPUT;
  let spec: OpenSetSpec | undefined;
  if (task === 'classification' && openSet) {
    // the temperature (Guo et al. 2017) as Mul(1/T) before the softmax: headFromModel still reads the untempered head
    const T = openSet.calibration.temperature;
    if (T !== 1) {
      inits.push(makeTensor(`${PREFIX}inverse_temperature`, DataType.FLOAT, [], [1 / T]));
      nodes.push(node('Mul', [t, `${PREFIX}inverse_temperature`], [`${PREFIX}tempered`], `${PREFIX}temperature`));
      t = `${PREFIX}tempered`;
    }
    const det = openSet.detector;
    if (det.method === 'mahalanobis-layers') layeredNodes(det, model, embedding, getOpsetVersion(model) ?? 13, nodes, inits);
    else mahalanobisNodes(det, embedding, getOpsetVersion(model) ?? 13, nodes, inits);
    const c = openSet.calibration;
    spec = {
      method: c.method, output: UNKNOWN_OUTPUT, threshold: c.threshold, temperature: T, target: c.target, kept: c.kept, fittedOn: c.fittedOn,
      covariance: det.method === 'mahalanobis-layers' ? det.layers[0]!.detector.covariance ?? 'shared' : det.covariance ?? 'shared',
      ...(det.method === 'mahalanobis-layers' ? { layers: det.layers.map((l) => l.tensor) } : {}),
    };
  }
  if (task === 'classification') nodes.push(node('Softmax', [t], [outputName], PREFIX + 'softmax', { axis: 1 }));
  else if (task === 'multilabel') nodes.push(node('Sigmoid', [t], [outputName], PREFIX + 'sigmoid'));
  else nodes.push(node('Identity', [t], [outputName], PREFIX + 'values'));
  const info: ExportedModelInfo = {
    version: 1,
    labels: [...labels],
    preprocess,
    outputKind: 'probabilities',
    outputName,
    ...(task !== 'classification' ? { task } : {}),
    ...(spec ? { openSet: spec } : {}),
    provenance,
  };
  const out: OnnxModel = {
    ...model,
    producerName: 'edgetune',
    producerVersion: '0.1.0',
    graph: {
      ...g,
      node: [...g.node, ...nodes],
      initializer: [...g.initializer, ...inits],
      output: [
        floatOutput(outputName, imageInput(g), head.classes),
        ...(spec ? [makeValueInfo(UNKNOWN_OUTPUT, makeTensorType(DataType.FLOAT, [batchDim(imageInput(g)), 1]))] : []),
      ],
    },
    metadataProps: [...model.metadataProps, { key: MODEL_INFO_KEY, value: JSON.stringify(info) }],
  };
  return encodeModel(out);
}

function readFloats(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.length) {
    const v = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    return Float32Array.from({ length: t.rawData.byteLength / 4 }, (_, i) => v.getFloat32(i * 4, true));
  }
  return Float32Array.from(t.floatData);
}

/**
 * True when an edgetune head's Gemm weights or biases are not float32 initializers: the quantizer
 * (finetune --int8) replaced them by int8 initializers behind DequantizeLinear nodes.
 */
export function headIsQuantized(model: OnnxModel): boolean {
  const g = model.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  return g.node
    .filter((n) => n.opType === 'Gemm' && (n.name ?? '').startsWith(PREFIX))
    .some((n) => [n.input[1], n.input[2]].some((name) => inits.get(name ?? '')?.dataType !== 1));
}

/**
 * What a model exported by exportClassifierModel holds: its head, labels, info and the embedding cut.
 * `source` names the model in errors. Errors: EMODEL when it has no edgetune head (`<source>: not a model
 * exported by edgetune finetune (no edgetune head in the graph)`), or its
 * `edgetune.model` metadata breaks the contract (`<source>: edgetune.model: labels[1]: …`).
 */
export function headFromModel(bytes: Uint8Array | OnnxModel, source = 'model'): { head: HeadWeights; info: ExportedModelInfo; model: OnnxModel; cut: CutSpec } {
  const model = asModel(bytes);
  const raw = model.metadataProps.find((p) => p.key === MODEL_INFO_KEY)?.value;
  const g = model.graph;
  const gemms = g.node.filter((n) => n.opType === 'Gemm' && (n.name ?? '').startsWith(PREFIX));
  if (!raw || gemms.length === 0 || !g.node.some((n) => n.output.includes(EMBEDDING_OUTPUT))) {
    throw new EdgetuneError('EMODEL', `${source}: not a model exported by edgetune finetune (no edgetune head in the graph)`, { subject: source });
  }
  const info = parseJsonContract(ExportedModelInfoSchema, raw, `${source}: ${MODEL_INFO_KEY}`, 'EMODEL');
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  if (headIsQuantized(model)) {
    throw new EdgetuneError('EMODEL', `${source}: its head is quantized (a model written by finetune --int8), so its float weights cannot be read; use its float pair (<name>.fp32.onnx)`, { subject: source });
  }
  const layers: DenseLayer[] = gemms.map((n) => {
    const w = inits.get(n.input[1]!)!;
    const b = inits.get(n.input[2]!)!;
    return { out: w.dims[0]!, in: w.dims[1]!, weight: readFloats(w), bias: readFloats(b) };
  });
  const normalize = g.node.some((n) => n.opType === 'LpNormalization' && (n.name ?? '').startsWith(PREFIX));
  const named = /^edgetune head: (linear|mlp|prototype)$/.exec(gemms[0]!.docString ?? '')?.[1] as HeadWeights['kind'] | undefined;
  const kind = named ?? (layers.length > 1 ? 'mlp' : normalize ? 'prototype' : 'linear');
  const head: HeadWeights = { format: 'edgetune.head', version: 1, kind, dims: layers[0]!.in, classes: layers.at(-1)!.out, normalize, layers };
  if (info.task && info.task !== 'classification') head.task = info.task;
  return { head, info, model, cut: { tensor: EMBEDDING_OUTPUT, pool: false, dims: head.dims } };
}
