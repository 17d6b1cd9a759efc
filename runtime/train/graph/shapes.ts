// Static shape propagation for the operators the training-graph builder understands (Conv, Relu,
// Clip, Add/Sub/Mul, GlobalAveragePool, Flatten, Reshape, Gemm, MatMul, Dropout, Identity, …).
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

/** Conv geometry of a node with input spatial sizes `spatial` (explicit pads; auto_pad VALID/NOTSET only). */
export function convGeometry(n: NodeProto, spatial: number[], kernel: number[]) {
  const r = spatial.length;
  const autoPad = getStringAttribute(n, 'auto_pad') ?? 'NOTSET';
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') fail(n, `auto_pad ${autoPad} is not supported (explicit pads only)`);
  const strides = getIntsAttribute(n, 'strides') ?? Array<number>(r).fill(1);
  const dilations = getIntsAttribute(n, 'dilations') ?? Array<number>(r).fill(1);
  const pads = getIntsAttribute(n, 'pads') ?? Array<number>(2 * r).fill(0);
  const group = getIntAttribute(n, 'group') ?? 1;
  const out = spatial.map((s, i) => Math.floor((s + pads[i]! + pads[i + r]! - ((kernel[i]! - 1) * dilations[i]! + 1)) / strides[i]!) + 1);
  return { strides, dilations, pads, group, out, kernel };
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
        const spatial = x.slice(2);
        if (spatial.some((d) => typeof d !== 'number')) fail(n, 'spatial sizes must be static');
        const geo = convGeometry(n, spatial as number[], (getIntsAttribute(n, 'kernel_shape') ?? w.slice(2)) as number[]);
        y = [x[0]!, w[0]!, ...geo.out];
        break;
      }
      case 'GlobalAveragePool':
        y = [x[0]!, x[1]!, ...x.slice(2).map(() => 1)];
        break;
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
