// Static shape rules (runtime/train/graph/shapes.ts) against the shapes onnxruntime actually produces:
// every node output of the real SqueezeNet 1.1, MobileNetV1 0.25 and Teachable Machine imports (tflite
// and tfjs: MaxPool, AveragePool, Pad, Concat, Transpose, Reshape, …), and one-node models for the window
// and padding attributes those files do not use (ceil_mode, SAME_UPPER/LOWER, dilations, negative pads,
// Pad's axes input and attribute form, Concat's negative axis, Squeeze/Unsqueeze).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataType, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntAttribute, setIntsAttribute, setStringAttribute } from '../../../runtime/onnx/graph.js';
import { decodeModel, type NodeProto, type OnnxModel, type TensorProto } from '../../../runtime/onnx/model.js';
import { importTflite, importTfjsLayers, type TfjsModelJson } from '../../../runtime/onnx/import/index.js';
import { inferShapes, type Shape } from '../../../runtime/train/graph/shapes.js';
import { shared } from '../../helpers.js';
import { f32, ortSession, poolNode, type PoolAttrs } from './grad-helpers.js';

/** Every node's first output as a graph output, run once on zeros of `input`'s static shape: name → dims. */
async function ortShapes(model: OnnxModel, input: string, dims: number[]): Promise<Map<string, number[]>> {
  const m: OnnxModel = { ...model, graph: { ...model.graph, output: model.graph.node.map((n) => makeValueInfo(n.output[0]!, makeTensorType(DataType.FLOAT))), valueInfo: [] } };
  const s = await ortSession(m);
  const out = await s.run({ [input]: f32(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims) });
  await s.dispose();
  return new Map(Object.entries(out).map(([k, v]) => [k, [...v.dims]]));
}

async function compareAll(model: OnnxModel, expectOps: string[]): Promise<number> {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  const input = model.graph.input.find((v) => !inits.has(v.name))!;
  const dims = input.type!.tensorType!.shape!.dim.map((d) => d.dimValue ?? 1);
  const inferred = inferShapes(model.graph, { [input.name!]: dims });
  const actual = await ortShapes(model, input.name!, dims);
  const ops = new Set(model.graph.node.map((n) => n.opType));
  for (const op of expectOps) expect(ops.has(op), op).toBe(true);
  for (const n of model.graph.node) expect(inferred.get(n.output[0]!), `${n.opType} ${n.output[0]}`).toEqual(actual.get(n.output[0]!));
  return model.graph.node.length;
}

const model = (...p: string[]) => decodeModel(new Uint8Array(readFileSync(shared('models', ...p))));

describe('shape rules vs onnxruntime on real models', () => {
  it('SqueezeNet 1.1 (MaxPool, Concat, Dropout with a mask output)', async () => {
    expect(await compareAll(model('squeezenet1.1_fp32_from_winml_fp16.onnx'), ['MaxPool', 'Concat', 'Dropout'])).toBe(66);
  });

  it('MobileNetV1 0.25 from tflite2onnx (asymmetric pads, AveragePool VALID, Transpose, Reshape)', async () => {
    expect(await compareAll(model('mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx'), ['AveragePool', 'Transpose', 'Reshape'])).toBe(59);
  });

  it('Teachable Machine imports: the float tflite and the tfjs export (Pad before the stride-2 convs)', async () => {
    const tm = 'teachable-machine';
    const tfl = importTflite(new Uint8Array(readFileSync(shared('models', tm, 'fruit-tflite', 'model_unquant.tflite')))).model;
    await compareAll(tfl, ['Pad', 'GlobalAveragePool', 'Reshape', 'Gemm']);
    const json = JSON.parse(readFileSync(shared('models', tm, 'twins-tfjs', 'model.json'), 'utf8')) as TfjsModelJson;
    const tfjs = importTfjsLayers(json, { 'weights.bin': new Uint8Array(readFileSync(shared('models', tm, 'twins-tfjs', 'weights.bin'))) }).model;
    await compareAll(tfjs, ['Pad', 'BatchNormalization']);
  });
});

/** One node on input `x` [1, ...dims]: the rule's shape and onnxruntime's. */
async function one(node: NodeProto, dims: number[], o: { inits?: TensorProto[]; opset?: number; extra?: Record<string, number[]> } = {}): Promise<{ inferred: Shape; actual: number[] }> {
  const extra = Object.entries(o.extra ?? {});
  const m = makeModel(
    {
      node: [node],
      initializer: o.inits ?? [],
      input: [makeValueInfo('x', makeTensorType(DataType.FLOAT, [1, ...dims])), ...extra.map(([k, d]) => makeValueInfo(k, makeTensorType(DataType.FLOAT, d)))],
      output: [makeValueInfo('y', makeTensorType(DataType.FLOAT))],
    },
    { opset: o.opset ?? 13 },
  );
  const inferred = inferShapes(m.graph, { x: [1, ...dims], ...o.extra }).get('y')!;
  const s = await ortSession(m);
  const feeds = { x: f32(new Float32Array(dims.reduce((a, b) => a * b, 1)), [1, ...dims]) };
  for (const [k, d] of extra) Object.assign(feeds, { [k]: f32(new Float32Array(d.reduce((a, b) => a * b, 1)), d) });
  const out = await s.run(feeds);
  await s.dispose();
  return { inferred, actual: [...out.y!.dims] };
}

const pool = (op: 'MaxPool' | 'AveragePool', a: PoolAttrs): NodeProto => poolNode(op, 'x', 'y', a);

const i64 = (name: string, v: number[]) => makeTensor(name, DataType.INT64, [v.length], v.map(BigInt));

describe('shape rules vs onnxruntime on one-node models', () => {
  it.each([
    ['MaxPool 3×3/2 floor (SqueezeNet)', pool('MaxPool', { k: [3, 3], s: [2, 2] }), [2, 111, 111], [1, 2, 55, 55]],
    ['MaxPool 3×3/2 ceil_mode, even size', pool('MaxPool', { k: [3, 3], s: [2, 2], ceil: true }), [2, 8, 8], [1, 2, 4, 4]],
    // ceil_mode's last window would start in the end padding: dropped (5 + 1 + 1 − 2 = 5, ⌈5/2⌉ + 1 = 4 → 3)
    ['MaxPool 2×2/2 pads 1 ceil_mode, last window dropped', pool('MaxPool', { k: [2, 2], s: [2, 2], pads: [1, 1, 1, 1], ceil: true }), [2, 5, 5], [1, 2, 3, 3]],
    ['MaxPool dilations 2', pool('MaxPool', { k: [3, 3], dil: [2, 2] }), [2, 9, 8], [1, 2, 5, 4]],
    ['MaxPool SAME_LOWER 4×4/3', pool('MaxPool', { k: [4, 4], s: [3, 3], auto: 'SAME_LOWER' }), [2, 10, 11], [1, 2, 4, 4]],
    ['AveragePool 4×4/2 VALID (MobileNetV1)', pool('AveragePool', { k: [4, 4], s: [2, 2], auto: 'VALID' }), [3, 4, 4], [1, 3, 1, 1]],
    ['AveragePool SAME_UPPER 3×3/2', pool('AveragePool', { k: [3, 3], s: [2, 2], auto: 'SAME_UPPER' }), [3, 7, 6], [1, 3, 4, 3]],
    ['AveragePool asymmetric pads ceil_mode', pool('AveragePool', { k: [3, 2], s: [2, 3], pads: [0, 1, 2, 0], ceil: true }), [3, 9, 10], [1, 3, 5, 4]],
  ] as const)('%s', async (_, node, dims, want) => {
    const r = await one(node, [...dims]);
    expect(r.actual).toEqual(want);
    expect(r.inferred).toEqual(r.actual);
  });

  it('Pad: pads input with negative (cropping) values, the axes input (opset 18), the attribute form (opset 2)', async () => {
    const padIn = makeNode('Pad', ['x', 'p'], ['y']);
    let r = await one(padIn, [3, 6, 5], { inits: [i64('p', [0, 0, 1, -2, 0, 0, 2, 1])] });
    expect(r.actual).toEqual([1, 3, 9, 4]);
    expect(r.inferred).toEqual(r.actual);
    const padAxes = makeNode('Pad', ['x', 'p', '', 'a'], ['y']);
    r = await one(padAxes, [3, 6, 5], { inits: [i64('p', [2, 0, -1, 3]), i64('a', [-1, 1])], opset: 18 });
    expect(r.actual).toEqual([1, 6, 6, 6]);
    expect(r.inferred).toEqual(r.actual);
    const padAttr = makeNode('Pad', ['x'], ['y']);
    setIntsAttribute(padAttr, 'pads', [0, 0, 0, 1, 0, 0, 0, 1]);
    setStringAttribute(padAttr, 'mode', 'reflect');
    r = await one(padAttr, [3, 6, 5], { opset: 2 });
    expect(r.actual).toEqual([1, 3, 6, 7]);
    expect(r.inferred).toEqual(r.actual);
  });

  it('Concat (negative axis), Transpose, Squeeze / Unsqueeze with axes inputs', async () => {
    const cat = makeNode('Concat', ['x', 'z'], ['y']);
    setIntAttribute(cat, 'axis', -3);
    let r = await one(cat, [3, 4, 5], { extra: { z: [1, 5, 4, 5] } });
    expect(r.actual).toEqual([1, 8, 4, 5]);
    expect(r.inferred).toEqual(r.actual);
    const tr = makeNode('Transpose', ['x'], ['y']);
    setIntsAttribute(tr, 'perm', [0, 2, 3, 1]);
    r = await one(tr, [3, 4, 5]);
    expect(r.inferred).toEqual([1, 4, 5, 3]);
    expect(r.inferred).toEqual(r.actual);
    r = await one(makeNode('Squeeze', ['x', 'a'], ['y']), [3, 1, 1], { inits: [i64('a', [2, -1])] });
    expect(r.inferred).toEqual([1, 3]);
    expect(r.inferred).toEqual(r.actual);
    r = await one(makeNode('Unsqueeze', ['x', 'a'], ['y']), [3], { inits: [i64('a', [-1, 1])] });
    expect(r.inferred).toEqual([1, 1, 3, 1]);
    expect(r.inferred).toEqual(r.actual);
  });

  it('names the node it cannot shape', () => {
    const g = makeModel({ node: [makeNode('MaxPool', ['x'], ['y'], { name: 'pool9' })], input: [], output: [] }).graph;
    expect(() => inferShapes(g, { x: ['N', 3, 8, 8] })).toThrow('shape of the MaxPool node "pool9": no kernel_shape');
    const h = makeModel({ node: [makeNode('TopK', ['x', 'k'], ['y'], { name: 'top' })], input: [], output: [] }).graph;
    expect(() => inferShapes(h, { x: ['N', 3], k: [1] })).toThrow(/shape of the TopK node "top": training graphs cannot train through TopK/);
  });
});
