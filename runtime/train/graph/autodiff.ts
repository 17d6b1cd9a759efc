// Training graphs for a backbone tail + dense head, as ONE plain ONNX model (opset 13) that any
// ONNX Runtime inference session runs: forward pass, softmax cross-entropy loss, and reverse-mode
// gradients of the loss w.r.t. every trainable weight (fed as graph inputs, not initializers, so the
// caller owns and updates them). The same builder makes loss-only and logits-only (eval) graphs with
// the same inputs. Per-operator rules live in grad-ops.ts. Browser-safe.
//
// Inputs:  x (the cut activation, [N, C, H, W] or whatever the tail's input is), `labels` int64 [N] or
//          `targets` float [N, K] (one-hot or soft), `mask.<l>` float [N, in_l] dropout masks (values 0
//          or 1/(1−p): inverted dropout, drawn by the caller so training is seeded and reproducible),
//          then the weights (tail Conv W/B under their own names, head `head.<l>.weight` [out, in] and
//          `head.<l>.bias` [out]).
// Outputs: `loss` (scalar), `logits` [N, K], `grad.<weight>` for each trainable weight.
// Loss: L = −Σₙ Σ_c w_c tₙc log softmax(zₙ)_c / Σₙ sₙ with sₙ = Σ_c w_c tₙc (class weights w, default
//   1): with one-hot targets the weighted mean of the per-sample cross-entropies (what the head
//   trainer in runtime/train/index.ts minimises). dL/dzₙ = (sₙ·softmax(zₙ) − w⊙tₙ) / Σ sₙ.

import { EdgetuneError, invalidParameter } from '../../core/errors.js';
import {
  DataType,
  getInitializer,
  makeNode,
  makeTensor,
  makeTensorType,
  makeValueInfo,
  nameGenerator,
  setFloatAttribute,
  setIntAttribute,
  setIntsAttribute,
  getOpsetVersion,
  topologicalSort,
} from '../../onnx/graph.js';
import { cloneModel, type NodeProto, type OnnxModel } from '../../onnx/model.js';
import { describeNode } from '../../onnx/topology.js';
import { foldBatchNorm } from '../../onnx/passes/fold-batchnorm.js';
import { upgradeOpset } from '../../onnx/passes/upgrade-opset.js';
import type { DenseLayer } from '../types.js';
import { GRAD_RULES, type AttrValue, type GradContext } from './grad-ops.js';
import { inferShapes, inputShapeOf, type Shape } from './shapes.js';

export interface TrainingGraphOptions {
  /** Head layers (only `in`/`out` are used: values are fed at run time). */
  head: readonly Pick<DenseLayer, 'in' | 'out'>[];
  /** Activation between head layers: `relu` (default, as the head trainer's MLP) or `none`. */
  headActivation?: 'relu' | 'none';
  /** Dropout probability on each head layer's input (one number = the last layer's input only, as the head trainer does). Default 0. */
  dropout?: number | readonly number[];
  /** `labels`: int64 class indices [N]; `probs`: float [N, K] one-hot or soft targets. Default labels. */
  targets?: 'labels' | 'probs';
  /** Per-class loss weights (K values). Default all 1. */
  classWeights?: ArrayLike<number>;
  /** Label smoothing ε: t ← (1−ε)·t + ε/K. Default 0. */
  labelSmoothing?: number;
  /** Tail weights to train (initializer names). Default: every float weight/bias of a Conv/Gemm/MatMul in the tail. [] = head only. */
  trainable?: readonly string[];
  /** `train` (loss, logits, grads), `loss` (loss, logits), `eval` (logits and the embedding; no labels, no masks). Default train. */
  mode?: 'train' | 'loss' | 'eval';
  /** Also output `grad.<input>`, the gradient w.r.t. the cut activation (tests). */
  inputGradient?: boolean;
}

export interface TrainingGraph {
  model: OnnxModel;
  /** The cut activation input. */
  input: string;
  /** Shape of `input` (batch 'N'). */
  inputShape: Shape;
  /** `labels` or `targets`, absent in eval mode. */
  labels?: string;
  masks: { name: string; layer: number; ratio: number; size: number }[];
  /** Trainable tail weights (graph inputs), with their shapes. */
  tailWeights: { name: string; dims: number[] }[];
  /** Head weights (graph inputs) `head.<l>.weight` / `head.<l>.bias`. */
  headWeights: { name: string; dims: number[] }[];
  embedding: string;
  logits: string;
  loss?: string;
  /** weight name → gradient output name (train mode). */
  grads: Record<string, string>;
}

const TAIL_WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul']);

/** Default trainable tail weights: float initializers read by Conv/Gemm/MatMul nodes (after input 0). */
export function defaultTrainable(tail: OnnxModel): string[] {
  const out: string[] = [];
  for (const n of tail.graph.node) {
    if (!TAIL_WEIGHTED.has(n.opType ?? '')) continue;
    for (const x of n.input.slice(1)) {
      const t = x ? getInitializer(tail.graph, x) : undefined;
      if (t && (t.dataType ?? 0) === DataType.FLOAT && !out.includes(x)) out.push(x);
    }
  }
  return out;
}

function setAttrs(node: NodeProto, attrs: Record<string, AttrValue>): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'number') setIntAttribute(node, k, v);
    else if (Array.isArray(v)) setIntsAttribute(node, k, v as number[]);
    else setFloatAttribute(node, k, (v as { f: number }).f);
  }
}

/**
 * Build the training (or loss / eval) graph of `tail` (one input → one [N, D] embedding output, e.g.
 * cutModel().tail) followed by the dense head. BatchNormalization is folded and the opset raised to 13
 * on a copy first. Throws EMODEL for an operator without a gradient rule on the path to the loss, EARG
 * for inconsistent head sizes.
 */
export function buildTrainingGraph(tail: OnnxModel, options: TrainingGraphOptions): TrainingGraph {
  const mode = options.mode ?? 'train';
  const m = cloneModel(tail);
  foldBatchNorm(m);
  if ((getOpsetVersion(m) ?? 1) < 13) upgradeOpset(m, 13);
  if (m.irVersion < 7) m.irVersion = 7;
  const g = m.graph;
  topologicalSort(g);
  const inits = new Set(g.initializer.map((t) => t.name));
  const realInputs = g.input.filter((v) => !inits.has(v.name));
  if (realInputs.length !== 1 || g.output.length !== 1) throw new EdgetuneError('EARG', `the tail needs exactly one input and one output (has ${realInputs.length} and ${g.output.length})`);
  const input = realInputs[0]!.name!;
  // the batch dimension is always the symbolic 'N' (masks and labels share it), whatever the tail calls it
  const inputShape: Shape = inputShapeOf(realInputs[0]!.type?.tensorType?.shape?.dim ?? [], { unnamed: '?' });
  if (inputShape.length < 2 || inputShape.slice(1).some((d) => typeof d !== 'number')) {
    throw new EdgetuneError('EARG', `the tail input "${input}" needs a static shape after the batch dimension (has [${inputShape}])`);
  }
  const embedding = g.output[0]!.name!;
  const names = nameGenerator(m);
  const reserve = (n: string) => {
    if (names.has(n)) throw new EdgetuneError('EARG', `the tail already uses the name "${n}"`);
    names.reserve(n);
    return n;
  };

  // Trainable tail weights become graph inputs.
  const trainable = options.trainable ?? defaultTrainable(m);
  const tailWeights = trainable.map((name) => {
    const t = getInitializer(g, name);
    if (!t) throw new EdgetuneError('EARG', `trainable weight "${name}" is not an initializer of the tail`, { subject: name });
    return { name, dims: [...t.dims] };
  });
  const trainSet = new Set(trainable);
  g.initializer = g.initializer.filter((t) => !trainSet.has(t.name ?? ''));
  g.input = [makeValueInfo(input, makeTensorType(DataType.FLOAT, inputShape))];

  // Head.
  const layers = options.head;
  if (!layers.length) throw new EdgetuneError('EARG', 'the head needs at least one layer');
  const shapes0 = inferShapes(g, { [input]: inputShape, ...Object.fromEntries(tailWeights.map((w) => [w.name, w.dims])) });
  const emb = shapes0.get(embedding)!;
  if (emb.length !== 2 || emb[1] !== layers[0]!.in) throw new EdgetuneError('EARG', `the embedding is [${emb}] but the head's first layer takes ${layers[0]!.in}`);
  const K = layers[layers.length - 1]!.out;
  const drops = typeof options.dropout === 'number' ? layers.map((_, l) => (l === layers.length - 1 ? (options.dropout as number) : 0)) : layers.map((_, l) => (options.dropout as readonly number[] | undefined)?.[l] ?? 0);
  const headWeights: { name: string; dims: number[] }[] = [];
  const masks: TrainingGraph['masks'] = [];
  let h = embedding;
  layers.forEach((layer, l) => {
    if (l > 0 && layer.in !== layers[l - 1]!.out) throw new EdgetuneError('EARG', `head layer ${l} takes ${layer.in} but the previous gives ${layers[l - 1]!.out}`);
    if (drops[l]! > 0 && mode !== 'eval') {
      const mask = reserve(`mask.${l}`);
      masks.push({ name: mask, layer: l, ratio: drops[l]!, size: layer.in });
      const dropped = names.next(`head.${l}.dropped`);
      g.node.push(makeNode('Mul', [h, mask], [dropped], { name: names.next(`head.${l}.Dropout`) }));
      h = dropped;
    }
    const W = reserve(`head.${l}.weight`);
    const B = reserve(`head.${l}.bias`);
    headWeights.push({ name: W, dims: [layer.out, layer.in] }, { name: B, dims: [layer.out] });
    const z = l === layers.length - 1 ? reserve('logits') : names.next(`head.${l}.z`);
    const gemm = makeNode('Gemm', [h, W, B], [z], { name: names.next(`head.${l}.Gemm`) });
    setIntAttribute(gemm, 'transB', 1);
    g.node.push(gemm);
    h = z;
    if (l < layers.length - 1 && (options.headActivation ?? 'relu') === 'relu') {
      const a = names.next(`head.${l}.relu`);
      g.node.push(makeNode('Relu', [z], [a], { name: names.next(`head.${l}.Relu`) }));
      h = a;
    }
  });
  const logits = 'logits';
  const shapeInputs: Record<string, Shape> = { [input]: inputShape };
  for (const w of [...tailWeights, ...headWeights]) shapeInputs[w.name] = w.dims;
  for (const mk of masks) shapeInputs[mk.name] = ['N', mk.size];
  const shapes = inferShapes(g, shapeInputs);

  const ctx: GradContext & { cache: Map<string, string> } = {
    cache: new Map(),
    graph: g,
    shape(name) {
      const s = shapes.get(name);
      if (!s) throw new EdgetuneError('EMODEL', `no static shape for "${name}"`);
      return s;
    },
    op(type, inputs, attrs = {}, hint = type) {
      const out = names.next(`grad.${hint}`);
      const node = makeNode(type, inputs, [out], { name: names.next(`${out}.${type}`) });
      setAttrs(node, attrs);
      g.node.push(node);
      return out;
    },
    constF(values, dims) {
      const key = `f${dims.join('x')}:${values.join(',')}`;
      let name = this.cache.get(key);
      if (!name) {
        name = names.next('grad.const');
        g.initializer.push(makeTensor(name, DataType.FLOAT, dims, Float32Array.from(values)));
        this.cache.set(key, name);
      }
      return name;
    },
    constI(values) {
      const key = `i:${values.join(',')}`;
      let name = this.cache.get(key);
      if (!name) {
        name = names.next('grad.shape');
        g.initializer.push(makeTensor(name, DataType.INT64, [values.length], values.map((v) => BigInt(v))));
        this.cache.set(key, name);
      }
      return name;
    },
  };

  const result: TrainingGraph = { model: m, input, inputShape, masks, tailWeights, headWeights, embedding, logits, grads: {} };
  const outputs = [makeValueInfo(logits, makeTensorType(DataType.FLOAT, ['N', K]))];
  if (mode === 'eval') {
    outputs.push(makeValueInfo(embedding, makeTensorType(DataType.FLOAT, emb)));
  } else {
    // Loss: targets → (smoothed) → weighted; log-softmax; dlogits.
    let t: string;
    if ((options.targets ?? 'labels') === 'labels') {
      result.labels = reserve('labels');
      g.input.push(makeValueInfo('labels', makeTensorType(DataType.INT64, ['N'])));
      t = ctx.op('OneHot', ['labels', ctx.constI([K]), ctx.constF([0, 1], [2])], { axis: -1 }, 'targets');
    } else {
      result.labels = reserve('targets');
      g.input.push(makeValueInfo('targets', makeTensorType(DataType.FLOAT, ['N', K])));
      t = 'targets';
    }
    const eps = options.labelSmoothing ?? 0;
    if (eps > 0) t = ctx.op('Add', [ctx.op('Mul', [t, ctx.constF([1 - eps], [])], {}, 'smooth'), ctx.constF([eps / K], [])], {}, 'smoothed');
    if (options.classWeights) {
      if (options.classWeights.length !== K) throw invalidParameter(undefined, `${K} class weights`, options.classWeights.length);
      t = ctx.op('Mul', [t, ctx.constF(Array.from(options.classWeights), [K])], {}, 'weighted');
    }
    const s = ctx.op('ReduceSum', [t, ctx.constI([1])], { keepdims: 1 }, 'sample_weight');
    const D = ctx.op('ReduceSum', [s], { keepdims: 0 }, 'weight_sum');
    const logp = ctx.op('LogSoftmax', [logits], { axis: -1 }, 'logp');
    const total = ctx.op('Neg', [ctx.op('ReduceSum', [ctx.op('Mul', [t, logp], {}, 'tlogp')], { keepdims: 0 }, 'tlogp_sum')], {}, 'loss_sum');
    const lossNode = makeNode('Div', [total, D], [reserve('loss')], { name: names.next('loss.Div') });
    g.node.push(lossNode);
    result.loss = 'loss';
    outputs.unshift(makeValueInfo('loss', makeTensorType(DataType.FLOAT, [])));
    if (mode === 'train') {
      const p = ctx.op('Exp', [logp], {}, 'softmax');
      const dz = ctx.op('Div', [ctx.op('Sub', [ctx.op('Mul', [s, p], {}, 'sp'), t], {}, 'sp_t'), D], {}, 'dlogits');
      const wrt = [...tailWeights, ...headWeights].map((w) => w.name);
      if (options.inputGradient) wrt.push(input);
      const grads = backprop(g.node.slice(), logits, dz, wrt, ctx);
      for (const w of wrt) {
        const name = reserve(`grad.${w}`);
        g.node.push(makeNode('Identity', [grads.get(w)!], [name], { name: names.next(`${name}.Identity`) }));
        const dims = w === input ? inputShape : shapeInputs[w]!;
        outputs.push(makeValueInfo(name, makeTensorType(DataType.FLOAT, dims)));
        result.grads[w] = name;
      }
    }
  }
  for (const mk of masks) g.input.push(makeValueInfo(mk.name, makeTensorType(DataType.FLOAT, ['N', mk.size])));
  for (const w of [...tailWeights, ...headWeights]) g.input.push(makeValueInfo(w.name, makeTensorType(DataType.FLOAT, w.dims)));
  g.output = outputs;
  g.valueInfo = [];
  topologicalSort(g);
  return result;
}

/**
 * Reverse-mode accumulation over `forward` (topologically sorted) from `target` with seed gradient
 * `seed`: returns, for each name in `wrt`, the tensor holding d(loss)/d(name). Contributions from
 * several consumers are summed. Throws EMODEL when a node on the path has no rule, or a weight gets
 * no gradient (it does not influence the target).
 */
export function backprop(forward: readonly NodeProto[], target: string, seed: string, wrt: readonly string[], ctx: GradContext): Map<string, string> {
  // values that depend on a wrt value …
  const depends = new Set(wrt);
  for (const n of forward) if (n.input.some((x) => depends.has(x))) for (const o of n.output) depends.add(o);
  // … and that the target depends on
  const needed = new Set<string>([target]);
  for (let i = forward.length - 1; i >= 0; i--) {
    const n = forward[i]!;
    if (n.output.some((o) => needed.has(o))) for (const x of n.input) if (x) needed.add(x);
  }
  const relevant = (x: string) => !!x && depends.has(x) && needed.has(x);
  const contribs = new Map<string, string[]>([[target, [seed]]]);
  const total = (name: string): string | undefined => {
    const c = contribs.get(name);
    if (!c?.length) return undefined;
    if (c.length === 1) return c[0];
    const s = ctx.op('Sum', c, {}, 'accum');
    contribs.set(name, [s]);
    return s;
  };
  for (let i = forward.length - 1; i >= 0; i--) {
    const n = forward[i]!;
    const need = n.input.map(relevant);
    if (!need.some(Boolean)) continue;
    const dy = n.output.map(total);
    if (!dy.some(Boolean)) continue;
    const rule = (n.domain ?? '') === '' ? GRAD_RULES[n.opType ?? ''] : undefined;
    if (!rule) {
      throw new EdgetuneError(
        'EMODEL',
        `cannot train through the ${describeNode(n)}: training graphs have no gradient for ${n.opType} (they differentiate ${Object.keys(GRAD_RULES).sort().join(', ')}); unfreeze fewer blocks so the trained tail starts after it`,
        { subject: n.name || n.output[0] },
      );
    }
    const dx = rule(ctx, n, dy, need);
    n.input.forEach((x, k) => {
      if (!need[k] || !dx[k]) return;
      const list = contribs.get(x);
      if (list) list.push(dx[k]!);
      else contribs.set(x, [dx[k]!]);
    });
  }
  const out = new Map<string, string>();
  for (const w of wrt) {
    const d = total(w);
    if (!d) throw new EdgetuneError('EMODEL', `"${w}" does not influence "${target}": no gradient`, { subject: w });
    out.set(w, d);
  }
  return out;
}
