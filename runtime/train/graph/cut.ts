// Cutting a backbone for partial fine-tuning: split it at a tensor into a frozen part (model input →
// cut tensor, run once per image to cache activations) and a trainable tail (cut tensor → pooled
// embedding), and find block boundaries to cut at automatically.
//
// A tensor is a *single-path* point when every node computed after it (in topological order, on the
// way to the embedding) reads only that tensor, tensors computed after it, and initializers: the tail
// then needs nothing but that tensor. Block *boundaries* are the single-path points that end a block:
// the output of an Add (inverted-residual block) or a Concat (the two expand branches of a SqueezeNet
// fire module), the output of a Conv/Gemm/MatMul no activation follows (a block without residual: its
// linear bottleneck), and the feature map feeding the final pooling (the last 1×1 conv's activation).
// A plain chain with none of the first three (MobileNetV1, VGG: every conv followed by its activation)
// ends a block at the activation of each full (group-1) conv instead: MobileNetV1's blocks are its first
// conv and its 13 depthwise-separable pairs, as Howard et al. 2017 count them. Browser-safe.

import { EdgetuneError, invalidParameter } from '../../core/errors.js';
import { addGraphOutput, getIntAttribute, makeNode, makeTensorType, makeValueInfo, nameGenerator, DataType, producerMap, consumerMap, pruneGraph, setIntAttribute, topologicalSort } from '../../onnx/graph.js';
import { cloneModel } from '../../onnx/model.js';
import { describeNode } from '../../onnx/topology.js';
import type { GraphProto, OnnxModel } from '../../onnx/model.js';
import { inferShapes, inputShapeOf, type InputSize, type Shape } from './shapes.js';

/** A place to cut, counted from the embedding. */
export interface CutPoint {
  /** The tensor the tail starts from. */
  tensor: string;
  /** 1 for the boundary nearest the embedding (`--unfreeze 1`), 2 for the next, … */
  blocks: number;
  /** Nodes in the tail (cut tensor → embedding). */
  nodes: number;
  /** Conv weight and bias initializers in the tail (what fine-tuning trains). */
  weights: string[];
  /** Number of trainable values in `weights`. */
  parameters: number;
}

/** Element-wise activations (Mul: the product half of a swish x·sigmoid(x)): what the cut reads through. */
const ACTIVATIONS: ReadonlySet<string> = new Set(['Relu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Tanh', 'PRelu', 'Elu', 'Selu', 'Softplus', 'Mul']);
const POOLING = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'ReduceMean', 'Flatten', 'AveragePool']);
const WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul', 'ConvTranspose']);
/** Operators that merge the branches of a block (residual sum, SqueezeNet / Inception concatenation). */
const MERGING = new Set(['Add', 'Sum', 'Concat']);

/** The graph restricted to what `embedding` needs, topologically sorted (a copy). */
function graphTo(model: OnnxModel, embedding: string): OnnxModel {
  const m = cloneModel(model);
  const g = m.graph;
  if (!g.node.some((n) => n.output.includes(embedding))) throw new EdgetuneError('EARG', `no node produces the embedding tensor "${embedding}"`, { subject: embedding });
  g.output = [];
  addGraphOutput(g, embedding);
  pruneGraph(g, { removeUnusedInputs: true });
  topologicalSort(g);
  return m;
}

/** Single-path tensors of `g` (already restricted and sorted), in node order, graph input first. */
function singlePath(g: GraphProto): string[] {
  const inits = new Set(g.initializer.map((t) => t.name));
  const index = new Map<string, number>();
  g.node.forEach((n, i) => n.output.forEach((o) => index.set(o, i)));
  for (const v of g.input) if (v.name && !inits.has(v.name)) index.set(v.name, -1);
  const out: string[] = [];
  const candidates: [string, number][] = [...g.input.filter((v) => v.name && !inits.has(v.name)).map((v) => [v.name!, -1] as [string, number])];
  g.node.forEach((n, i) => {
    if (n.output.length === 1) candidates.push([n.output[0]!, i]);
  });
  for (const [t, i] of candidates) {
    let ok = true;
    for (let j = i + 1; j < g.node.length && ok; j++) {
      for (const x of g.node[j]!.input) {
        if (!x || x === t || inits.has(x)) continue;
        if ((index.get(x) ?? -2) <= i) {
          ok = false;
          break;
        }
      }
    }
    if (ok) out.push(t);
  }
  return out;
}

function tailInfo(g: GraphProto, tensor: string): { nodes: number; weights: string[]; parameters: number } {
  const producers = producerMap(g);
  const inits = new Map(g.initializer.map((t) => [t.name ?? '', t]));
  // nodes after the tensor's producer
  const p = producers.get(tensor);
  const start = p ? g.node.indexOf(p) + 1 : 0;
  const tail = g.node.slice(start);
  const weights: string[] = [];
  let parameters = 0;
  for (const n of tail) {
    if (!WEIGHTED.has(n.opType ?? '')) continue;
    for (const x of n.input.slice(1)) {
      const t = x ? inits.get(x) : undefined;
      if (t && (t.dataType ?? 0) === DataType.FLOAT && !weights.includes(x)) {
        weights.push(x);
        parameters += t.dims.reduce((a, b) => a * b, 1);
      }
    }
  }
  return { nodes: tail.length, weights, parameters };
}

/**
 * Candidate cut points from the embedding backwards, only those whose tail holds trainable weights:
 * `tailBlocks(m, e)[k-1]` is what `--unfreeze k` cuts at. For MobileNetV2 (fp32 rebuilt) the first
 * is the input of the final 1×1 conv (tail = that conv), the second the last inverted-residual block's
 * input, and so on; for SqueezeNet 1.1 (embedding fire9/concat_1) the first is fire8's Concat (tail = fire9),
 * 8 in all; for MobileNetV1 the first is Conv2d_12's pointwise activation (tail = Conv2d_13's depthwise +
 * pointwise pair), 14 in all. Throws EARG when the embedding tensor does not exist.
 */
export function tailBlocks(model: OnnxModel, embedding: string): CutPoint[] {
  const g = graphTo(model, embedding).graph;
  const producers = producerMap(g);
  const consumers = consumerMap(g);
  const single = singlePath(g);
  // structural ends: a merge of branches, or a linear bottleneck (a weighted op no activation follows)
  const structural = (t: string) => {
    const p = producers.get(t);
    if (!p) return false;
    if (MERGING.has(p.opType ?? '')) return true;
    return WEIGHTED.has(p.opType ?? '') && !(consumers.get(t) ?? []).some((c) => ACTIVATIONS.has(c.opType ?? ''));
  };
  const plainChain = !single.some(structural);
  const boundaries = single.filter((t) => {
    const p = producers.get(t);
    if (!p) return true; // the graph input
    const cons = consumers.get(t) ?? [];
    if (structural(t)) return true;
    if (plainChain && ACTIVATIONS.has(p.opType ?? '')) {
      // a plain chain: the activation of a full (not depthwise/grouped) conv or dense layer ends a block
      const q = p.input[0] ? producers.get(p.input[0]) : undefined;
      if (q && WEIGHTED.has(q.opType ?? '') && (getIntAttribute(q, 'group') ?? 1) === 1) return true;
    }
    return cons.length > 0 && cons.every((c) => POOLING.has(c.opType ?? ''));
  });
  const points: CutPoint[] = [];
  for (const t of boundaries.reverse()) {
    const info = tailInfo(g, t);
    if (info.weights.length === 0) continue;
    if (points.length && points[points.length - 1]!.parameters === info.parameters) continue;
    points.push({ tensor: t, blocks: points.length + 1, ...info });
  }
  return points;
}

/**
 * The cut tensor for `unfreeze`: a block count (1 = the boundary nearest the embedding), `'all'` (every
 * block) or an explicit tensor name, which must be a single-path point. Throws EARG otherwise (a backbone
 * without blocks names the `--unfreeze` value asked for).
 */
export function resolveCut(model: OnnxModel, embedding: string, unfreeze: number | 'all' | string): string {
  if (typeof unfreeze === 'number' || unfreeze === 'all') {
    const pts = tailBlocks(model, embedding);
    if (pts.length === 0) {
      throw new EdgetuneError('EARG', `--unfreeze ${unfreeze}: the backbone has no block with trainable weights before its embedding "${embedding}", so there is nothing to unfreeze; train the head alone (without --unfreeze)`, { subject: 'unfreeze' });
    }
    // 'all': every block before the embedding (the cut at the deepest block boundary next to the input)
    if (unfreeze === 'all') return pts[pts.length - 1]!.tensor;
    if (!Number.isInteger(unfreeze) || unfreeze < 1 || unfreeze > pts.length) {
      const has = pts.length === 1 ? 'has one block' : `has ${pts.length} blocks`;
      const err = invalidParameter('unfreeze', `an integer between 1 and ${pts.length}`, unfreeze);
      throw new EdgetuneError('EARG', `${err.message}: the backbone ${has} with trainable weights before its embedding "${embedding}"`, { subject: 'unfreeze' });
    }
    return pts[unfreeze - 1]!.tensor;
  }
  const g = graphTo(model, embedding).graph;
  if (!singlePath(g).includes(unfreeze)) {
    throw new EdgetuneError('EARG', `"${unfreeze}" is not a single-path tensor on the way to "${embedding}" (the tail would need other activations)`, { subject: unfreeze });
  }
  return unfreeze;
}

export interface CutResult {
  /** model input → cut tensor (its only output). */
  frozen: OnnxModel;
  /** cut tensor (its only input, batch dim symbolic 'N') → embedding (its only output). */
  tail: OnnxModel;
  cut: string;
  /** The tail's output: the embedding tensor, or the flat [N, D] tensor cutModel ends an unflattened one with. */
  embedding: string;
  /** Shape of the cut tensor, batch first ('N'). */
  cutShape: Shape;
  embeddingShape: Shape;
}

/**
 * Split `model` at `cut` (a single-path tensor, see resolveCut). Shapes come from the model input's
 * static dims; `size` fills its symbolic height/width (a fully convolutional backbone with a dynamic
 * input, run at the preprocessing's size: the tail's training graph needs static spatial sizes);
 * `inputShape` overrides the whole shape (e.g. [ 'N', 3, 224, 224 ]). Neither part is otherwise
 * changed: fold BatchNormalization / upgrade the opset before cutting when the tail will be trained.
 * An embedding tensor of rank > 2 (an unpooled feature map [N, C, H, W], or MobileNetV1's AveragePool
 * output [N, C, 1, 1]) gets, in the tail only, what embeddingModel (runtime/train/export.ts) puts after it:
 * a GlobalAveragePool when `pool` (the CutSpec's), then a Flatten; the tail's output is then that
 * [N, D] tensor (`embedding` in the result names it), what the head reads.
 */
export function cutModel(model: OnnxModel, cut: string, embedding: string, opts: { inputShape?: Shape; size?: InputSize; pool?: boolean } = {}): CutResult {
  const full = graphTo(model, embedding);
  const g = full.graph;
  if (!singlePath(g).includes(cut)) throw new EdgetuneError('EARG', `"${cut}" is not a single-path tensor on the way to "${embedding}"`, { subject: cut });
  const inits = new Set(g.initializer.map((t) => t.name));
  const input = g.input.find((v) => v.name && !inits.has(v.name));
  if (!input) throw new EdgetuneError('EMODEL', 'the model has no graph input');
  const dims = input.type?.tensorType?.shape?.dim ?? [];
  const inputShape: Shape = opts.inputShape ?? inputShapeOf(dims, { size: opts.size });
  const shapes = inferShapes(g, { [input.name!]: inputShape });
  const cutShape = shapes.get(cut)!;
  const embeddingShape = shapes.get(embedding)!;

  const frozen = cloneModel(full);
  frozen.graph.output = [makeValueInfo(cut, makeTensorType(DataType.FLOAT, cutShape))];
  pruneGraph(frozen.graph);

  const tail = cloneModel(full);
  const tg = tail.graph;
  tg.node = tg.node.filter((n) => !n.output.includes(cut));
  tg.input = [makeValueInfo(cut, makeTensorType(DataType.FLOAT, cutShape))];
  tg.output = [makeValueInfo(embedding, makeTensorType(DataType.FLOAT, embeddingShape))];
  pruneGraph(tg, { removeUnusedInputs: true });
  const defined = new Set<string>([cut, ...tg.initializer.map((t) => t.name ?? '')]);
  for (const n of tg.node) {
    for (const x of n.input) if (x && !defined.has(x)) throw new EdgetuneError('EMODEL', `tail ${describeNode(n)} reads "${x}" from the frozen part`);
    for (const o of n.output) defined.add(o);
  }
  tg.valueInfo = [];
  if (embeddingShape.length > 2) return flattenTail(tail, cut, embedding, embeddingShape, opts.pool ?? false, frozen, cutShape);
  return { frozen, tail, cut, embedding, cutShape, embeddingShape };
}

/** The tail ended by [GlobalAveragePool →] Flatten (see cutModel), its output the flat [N, D] embedding. */
function flattenTail(tail: OnnxModel, cut: string, embedding: string, shape: Shape, pool: boolean, frozen: OnnxModel, cutShape: Shape): CutResult {
  const tg = tail.graph;
  const names = nameGenerator(tail);
  let x = embedding;
  if (pool) {
    const pooled = names.next(`${embedding}/edgetune_pooled`);
    tg.node.push(makeNode('GlobalAveragePool', [x], [pooled], { name: names.next(`${embedding}/edgetune_pool`) }));
    x = pooled;
  }
  const flat = names.next(`${embedding}/edgetune_flat`);
  const node = makeNode('Flatten', [x], [flat], { name: names.next(`${embedding}/edgetune_flatten`) });
  setIntAttribute(node, 'axis', 1);
  tg.node.push(node);
  const rest = pool ? shape.slice(1, 2) : shape.slice(1);
  if (rest.some((d) => typeof d !== 'number')) throw new EdgetuneError('EMODEL', `the embedding "${embedding}" is [${shape}]: its sizes after the batch must be static to flatten it`, { subject: embedding });
  const flatShape: Shape = [shape[0]!, (rest as number[]).reduce((a, b) => a * b, 1)];
  tg.output = [makeValueInfo(flat, makeTensorType(DataType.FLOAT, flatShape))];
  return { frozen, tail, cut, embedding: flat, cutShape, embeddingShape: flatShape };
}
