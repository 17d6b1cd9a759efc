// Static shape propagation for the operators the training-graph builder understands (Conv, Relu,
// Clip, Add/Sub/Mul, GlobalAveragePool/GlobalMaxPool, MaxPool/AveragePool, Pad, Concat, Transpose,
// Squeeze/Unsqueeze, Flatten, Reshape, Gemm, MatMul, Dropout, Identity, …), following the ONNX operator
// spec (https://onnx.ai/onnx/operators/) for the window, padding and axis attributes.
// The gradient rules need spatial sizes (ConvTranspose output_padding, the dW convolution's crop,
// broadcast reductions), and cut models carry no value_info, so shapes are derived here from the
// graph input's shape. A dimension is a number or a symbolic name (the batch, usually 'N').
// Browser-safe.

import { EdgetuneError } from '../../core/errors.js';
import { getInitializer, getIntAttribute, getIntsAttribute, getStringAttribute, readInt64 } from '../../onnx/graph.js';
import type { GraphProto, NodeProto } from '../../onnx/model.js';
import { describeNode } from '../../onnx/topology.js';

export type Dim = number | string;
export type Shape = Dim[];

/** The pixel size a graph input runs at (the preprocessing's): fills its symbolic height and width, as `layout` places them. */
export interface InputSize {
  width: number;
  height: number;
  layout: 'NCHW' | 'NHWC';
}

/**
 * A graph input's Shape from its ONNX dimensions: the batch (first) is always the symbolic 'N', a
 * static dimension is kept, a symbolic one keeps its name (`unnamed` when it has none). With `size`,
 * the symbolic height and width (as `size.layout` places them) become its pixels; static ones stay.
 */
export function inputShapeOf(dims: readonly { dimValue?: number; dimParam?: string }[], o: { size?: InputSize; unnamed?: string } = {}): Shape {
  const [h, w] = o.size?.layout === 'NCHW' ? [2, 3] : [1, 2];
  return dims.map((d, i) => {
    if (i === 0) return 'N';
    if (d.dimValue !== undefined) return d.dimValue;
    if (o.size && (i === h || i === w)) return i === h ? o.size.height : o.size.width;
    return d.dimParam ?? o.unnamed ?? 'N';
  });
}

function fail(n: NodeProto, why: string): never {
  throw new EdgetuneError('EMODEL', `shape of the ${describeNode(n)}: ${why}`, { subject: n.name || n.output[0] });
}

/** Numpy-style broadcast of two shapes (symbolic dims broadcast against 1 and against themselves). */
export function broadcastShapes(a: Shape, b: Shape, n?: NodeProto): Shape {
  const r = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else if (typeof x === 'string' && typeof y === 'number') out.push(y);
    else if (typeof y === 'string' && typeof x === 'number') out.push(x);
    else if (n) fail(n, `cannot broadcast [${a}] with [${b}]`);
    else throw new EdgetuneError('EMODEL', `cannot broadcast [${a}] with [${b}]`);
  }
  return out;
}

/**
 * Sliding-window geometry of a Conv / MaxPool / AveragePool node over input spatial sizes `spatial`, as
 * the ONNX operator spec defines it: `strides`, `dilations` (default 1), `pads` [x1_begin, x2_begin, …,
 * x1_end, x2_end, …] (default 0) or `auto_pad` (VALID: no padding; SAME_UPPER / SAME_LOWER: output
 * ⌈in / stride⌉, the total padding max(0, (out − 1)·stride + (k − 1)·dilation + 1 − in) split evenly, the odd
 * one at the end for SAME_UPPER and at the beginning for SAME_LOWER). Output size ⌊(in + pads − ((k − 1)·d
 * + 1)) / s⌋ + 1, or with `ceil_mode` 1 (pools) the ceiling, less one when the last window would start at
 * or past the end of the input and its begin padding (onnxruntime's and PyTorch's rule). `pads` returned
 * are the explicit ones (auto_pad resolved).
 */
export function windowGeometry(n: NodeProto, spatial: number[], kernel: number[]) {
  const r = spatial.length;
  const autoPad = getStringAttribute(n, 'auto_pad') ?? 'NOTSET';
  const strides = getIntsAttribute(n, 'strides') ?? Array<number>(r).fill(1);
  const dilations = getIntsAttribute(n, 'dilations') ?? Array<number>(r).fill(1);
  const ceil = (getIntAttribute(n, 'ceil_mode') ?? 0) === 1;
  if (kernel.length !== r || strides.length !== r || dilations.length !== r) fail(n, `kernel, strides and dilations need ${r} values for a ${r}-D input`);
  let pads: number[];
  let out: number[];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    out = spatial.map((s, i) => Math.ceil(s / strides[i]!));
    const total = out.map((o, i) => Math.max(0, (o - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - spatial[i]!));
    const begin = total.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    pads = [...begin, ...total.map((t, i) => t - begin[i]!)];
  } else {
    if (autoPad !== 'NOTSET' && autoPad !== 'VALID') fail(n, `unknown auto_pad ${autoPad}`);
    pads = autoPad === 'VALID' ? Array<number>(2 * r).fill(0) : (getIntsAttribute(n, 'pads') ?? Array<number>(2 * r).fill(0));
    out = spatial.map((s, i) => {
      const span = s + pads[i]! + pads[i + r]! - ((kernel[i]! - 1) * dilations[i]! + 1);
      if (span < 0) fail(n, `the window (${kernel[i]} with dilation ${dilations[i]}) is larger than the padded input (${s + pads[i]! + pads[i + r]!})`);
      if (!ceil) return Math.floor(span / strides[i]!) + 1;
      let o = Math.ceil(span / strides[i]!) + 1;
      if ((o - 1) * strides[i]! >= s + pads[i]!) o--;
      return o;
    });
  }
  return { strides, dilations, pads, out, kernel };
}

/** Conv geometry of a node with input spatial sizes `spatial` (windowGeometry, plus its `group`). */
export function convGeometry(n: NodeProto, spatial: number[], kernel: number[]) {
  return { ...windowGeometry(n, spatial, kernel), group: getIntAttribute(n, 'group') ?? 1 };
}

/** Static spatial sizes of `x` ([N, C, ...spatial]), or an error naming the node. */
function staticSpatial(n: NodeProto, x: Shape): number[] {
  const spatial = x.slice(2);
  if (x.length < 3 || spatial.some((d) => typeof d !== 'number')) fail(n, `spatial sizes must be static (input [${x}])`);
  return spatial as number[];
}

/** An int64 initializer's values (a Pad's pads, a Squeeze's axes, …), or an error naming the node. */
function intsInput(graph: GraphProto, n: NodeProto, k: number, what: string): number[] | undefined {
  const name = n.input[k];
  if (!name) return undefined;
  const t = getInitializer(graph, name);
  if (!t) fail(n, `${what} (input "${name}") must be an initializer`);
  return Array.from(readInt64(t), Number);
}

/**
 * A Pad node's padding per axis of a rank-`rank` input: [begin_0, …, begin_{r−1}, end_0, …, end_{r−1}]
 * (negative values crop), from its `pads` input (opset ≥ 11, with the optional `axes` input of opset 18)
 * or attribute (opset < 11).
 */
export function padAmounts(graph: GraphProto, n: NodeProto, rank: number): number[] {
  const given = intsInput(graph, n, 1, 'the pads') ?? getIntsAttribute(n, 'pads') ?? getIntsAttribute(n, 'paddings');
  if (!given) fail(n, 'no pads');
  const axes = (intsInput(graph, n, 3, 'the axes') ?? [...Array(rank).keys()]).map((a) => (a < 0 ? a + rank : a));
  if (given.length !== 2 * axes.length) fail(n, `${given.length} pads for ${axes.length} axes`);
  const pads = Array<number>(2 * rank).fill(0);
  axes.forEach((a, i) => {
    pads[a] = given[i]!;
    pads[a + rank] = given[i + axes.length]!;
  });
  return pads;
}

/** Normalised axis of a rank-`rank` tensor (negative counts from the end), or an error naming the node. */
function axisOf(n: NodeProto, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(n, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/**
 * Shapes of every value reachable from `inputs` (name → shape) through `graph`'s nodes, in node order
 * (the graph must be topologically sorted). Initializers have their own dims. Throws EMODEL on an
 * operator it does not know or a shape it cannot derive.
 */
export function inferShapes(graph: GraphProto, inputs: Record<string, Shape>): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const t of graph.initializer) shapes.set(t.name ?? '', [...t.dims]);
  for (const [k, v] of Object.entries(inputs)) shapes.set(k, [...v]);
  const get = (n: NodeProto, name: string): Shape => {
    const s = shapes.get(name);
    if (!s) fail(n, `input "${name}" has no known shape`);
    return s;
  };
  for (const n of graph.node) {
    const x = n.input[0] ? get(n, n.input[0]) : [];
    let y: Shape;
    switch (n.opType) {
      case 'Relu':
      case 'Clip':
      case 'Sigmoid':
      case 'Identity':
      case 'Dropout':
      case 'BatchNormalization':
      case 'Softmax':
      case 'LogSoftmax':
      case 'Neg':
      case 'Exp':
        y = [...x];
        break;
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Where':
        y = n.input.slice(1).reduce((acc, name) => broadcastShapes(acc, get(n, name), n), x);
        break;
      case 'Conv': {
        const w = get(n, n.input[1]!);
        const geo = convGeometry(n, staticSpatial(n, x), (getIntsAttribute(n, 'kernel_shape') ?? w.slice(2)) as number[]);
        y = [x[0]!, w[0]!, ...geo.out];
        break;
      }
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
        y = [x[0]!, x[1]!, ...x.slice(2).map(() => 1)];
        break;
      case 'MaxPool':
      case 'AveragePool': {
        if (n.output.length > 1 && n.output[1]) fail(n, 'the Indices output is not supported');
        const kernel = getIntsAttribute(n, 'kernel_shape');
        if (!kernel) fail(n, 'no kernel_shape');
        y = [x[0]!, x[1]!, ...windowGeometry(n, staticSpatial(n, x), kernel).out];
        break;
      }
      case 'Pad': {
        const pads = padAmounts(graph, n, x.length);
        y = x.map((d, i) => (pads[i] === 0 && pads[i + x.length] === 0 ? d : typeof d === 'number' ? d + pads[i]! + pads[i + x.length]! : fail(n, `cannot pad the symbolic dimension ${d}`)));
        if (y.some((d) => typeof d === 'number' && d < 0)) fail(n, `pads ${pads} crop more than [${x}] holds`);
        break;
      }
      case 'Concat': {
        const axis = axisOf(n, getIntAttribute(n, 'axis') ?? fail(n, 'no axis'), x.length);
        const parts = n.input.map((name) => get(n, name));
        y = [...x];
        let size: Dim = 0;
        for (const p of parts) {
          if (p.length !== x.length || p.some((d, i) => i !== axis && d !== x[i] && typeof d === 'number' && typeof x[i] === 'number')) fail(n, `cannot concatenate [${p}] with [${x}] on axis ${axis}`);
          const d = p[axis]!;
          size = typeof size === 'number' && typeof d === 'number' ? size + d : fail(n, `symbolic size on the concatenation axis ${axis}`);
        }
        y[axis] = size;
        break;
      }
      case 'Transpose': {
        const perm = getIntsAttribute(n, 'perm') ?? [...x.keys()].reverse();
        if (perm.length !== x.length) fail(n, `perm ${perm} for rank ${x.length}`);
        y = perm.map((p) => x[p]!);
        break;
      }
      case 'Squeeze': {
        const given = intsInput(graph, n, 1, 'the axes') ?? getIntsAttribute(n, 'axes');
        const axes = given ? given.map((a) => axisOf(n, a, x.length)) : [...x.keys()].filter((i) => x[i] === 1);
        for (const a of axes) if (x[a] !== 1) fail(n, `cannot squeeze axis ${a} of [${x}]`);
        y = x.filter((_, i) => !axes.includes(i));
        break;
      }
      case 'Unsqueeze': {
        const given = intsInput(graph, n, 1, 'the axes') ?? getIntsAttribute(n, 'axes') ?? fail(n, 'no axes');
        const rank = x.length + given.length;
        const axes = given.map((a) => axisOf(n, a, rank));
        y = [];
        let k = 0;
        for (let i = 0; i < rank; i++) y.push(axes.includes(i) ? 1 : x[k++]!);
        break;
      }
      case 'Flatten': {
        let axis = getIntAttribute(n, 'axis') ?? 1;
        if (axis < 0) axis += x.length;
        const prod = (s: Shape): Dim => (s.every((d) => typeof d === 'number') ? (s as number[]).reduce((a, b) => a * b, 1) : s.length === 1 ? s[0]! : fail(n, 'symbolic dims inside a flattened group'));
        y = [prod(x.slice(0, axis)), prod(x.slice(axis))];
        break;
      }
      case 'Reshape': {
        const t = getInitializer(graph, n.input[1]!);
        if (!t) fail(n, 'the target shape must be an initializer');
        const spec = Array.from(readInt64(t), Number);
        y = spec.map((d, i) => (d === 0 ? x[i]! : d));
        const known = (s: Shape) => s.filter((d): d is number => typeof d === 'number' && d >= 0).reduce((a, b) => a * b, 1);
        const symIn = x.filter((d) => typeof d === 'string');
        const symOut = y.filter((d) => typeof d === 'string');
        const k = y.indexOf(-1);
        if (k >= 0) {
          const rest = symIn.filter((s) => !symOut.includes(s));
          const ratio = known(x) / known(y);
          if (rest.length === 0) y[k] = ratio;
          else if (rest.length === 1 && ratio === 1) y[k] = rest[0]!;
          else fail(n, `cannot resolve -1 from [${x}]`);
        }
        break;
      }
      case 'Gemm': {
        const b = get(n, n.input[1]!);
        const m = getIntAttribute(n, 'transA') ? x[1]! : x[0]!;
        const k = getIntAttribute(n, 'transB') ? b[0]! : b[1]!;
        y = [m, k];
        break;
      }
      case 'MatMul': {
        const b = get(n, n.input[1]!);
        if (x.length !== 2 || b.length !== 2) fail(n, 'only 2-D MatMul is supported');
        y = [x[0]!, b[1]!];
        break;
      }
      default:
        fail(n, `training graphs cannot train through ${n.opType}; unfreeze fewer blocks so the trained tail starts after it`);
    }
    shapes.set(n.output[0]!, y);
  }
  return shapes;
}
