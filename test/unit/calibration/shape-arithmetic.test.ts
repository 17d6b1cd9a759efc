// A PyTorch export with a dynamic batch computes its Reshape target in int64 (Shape → Gather →
// Unsqueeze → Concat), as kamranakamal/Skin-Cancer-Classifier's model.onnx does. The quantization plan
// took that Concat for an activation (it feeds the quantized Reshape), tapped its output as float, and
// calibration failed: "Type (tensor(float)) of output arg (val_37) of node (node_Concat_33) does not
// match expected type (tensor(int64))". Non-float tensors are now found by propagating element types,
// and left alone.

import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { shared, tempDir } from '../../helpers.js';
import { quantizeModel } from '../../../calibration/index.js';
import { nonFloatTensors, planQuantization } from '../../../calibration/plan.js';
import { DataType, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntAttribute, setIntsAttribute, setTensorAttribute } from '../../../runtime/onnx/graph.js';
import type { NodeProto } from '../../../runtime/onnx/model.js';
import { decodeModel, encodeModel, type OnnxModel } from '../../../runtime/onnx/model.js';

/** input [batch_size,3,8,8] → Conv → Relu → GlobalAveragePool → Reshape to [batch, 4] (target computed from Shape) → Gemm → logits [batch, 2]. */
function dynamicBatchModel(): OnnxModel {
  const w = Float32Array.from({ length: 4 * 3 * 9 }, (_, i) => Math.sin(i * 1.3) * 0.3);
  const conv = makeNode('Conv', ['input', 'w', 'b'], ['conv'], { name: 'conv' });
  setIntsAttribute(conv, 'pads', [1, 1, 1, 1]);
  const gather = makeNode('Gather', ['shape', 'zero'], ['batch'], { name: 'gather' });
  setIntAttribute(gather, 'axis', 0);
  const concat = makeNode('Concat', ['batch_1d', 'four'], ['target'], { name: 'node_Concat_33' });
  setIntAttribute(concat, 'axis', 0);
  const gemm = makeNode('Gemm', ['flat', 'fc_w', 'fc_b'], ['output'], { name: 'classifier' });
  setIntAttribute(gemm, 'transB', 1);
  return makeModel(
    {
      node: [
        conv,
        makeNode('Relu', ['conv'], ['relu'], { name: 'relu' }),
        makeNode('GlobalAveragePool', ['relu'], ['pooled'], { name: 'pool' }),
        makeNode('Shape', ['pooled'], ['shape'], { name: 'shape' }),
        gather,
        makeNode('Unsqueeze', ['batch', 'axes0'], ['batch_1d'], { name: 'unsqueeze' }),
        concat,
        makeNode('Reshape', ['pooled', 'target'], ['flat'], { name: 'reshape' }),
        gemm,
      ],
      name: 'dynamic-batch',
      initializer: [
        makeTensor('w', DataType.FLOAT, [4, 3, 3, 3], w),
        makeTensor('b', DataType.FLOAT, [4], [0.1, -0.1, 0.2, 0]),
        makeTensor('zero', DataType.INT64, [], [0n]),
        makeTensor('axes0', DataType.INT64, [1], [0n]),
        makeTensor('four', DataType.INT64, [1], [4n]),
        makeTensor('fc_w', DataType.FLOAT, [2, 4], [1, -1, 0.5, 0.2, -0.3, 0.8, 1, -0.5]),
        makeTensor('fc_b', DataType.FLOAT, [2], [0.05, -0.05]),
      ],
      input: [makeValueInfo('input', makeTensorType(DataType.FLOAT, ['batch_size', 3, 8, 8]))],
      output: [makeValueInfo('output', makeTensorType(DataType.FLOAT, ['batch_size', 2]))],
    },
    { opset: 13 },
  );
}

describe('quantizing a model whose Reshape target is computed in int64', () => {
  it('the plan leaves the shape arithmetic alone', () => {
    const g = dynamicBatchModel().graph;
    expect([...nonFloatTensors(g)].sort()).toEqual(['axes0', 'batch', 'batch_1d', 'four', 'shape', 'target', 'zero']);
    const plan = planQuantization(g, 'dynamic-batch');
    expect([...plan.nodes].map((n) => n.name).sort()).toEqual(['classifier', 'conv', 'pool', 'reshape']);
    expect(plan.activations).not.toContain('target');
    expect(plan.activations).toEqual(['input', 'relu', 'pooled', 'flat']);
  });

  it('quantizeModel calibrates and writes it, and the batch stays dynamic', async () => {
    const dir = tempDir('edgetune-shape-arith-');
    const model = path.join(dir, 'dynamic-batch.onnx');
    writeFileSync(model, encodeModel(dynamicBatchModel()));
    const r = await quantizeModel({
      model,
      out: path.join(dir, 'dynamic-batch.int8.onnx'),
      calib: shared('datasets', 'flowers5-small', 'train'),
      calibCount: 8,
      correctionImages: 0,
      threads: 1,
      allowAssumed: true,
    });
    const q = decodeModel(readFileSync(r.out));
    expect(q.graph.node.filter((n) => n.opType === 'QuantizeLinear').length).toBeGreaterThan(0);
    // the int64 Concat is untouched: no QuantizeLinear reads its output
    expect(q.graph.node.some((n) => n.opType === 'QuantizeLinear' && n.input[0] === 'target')).toBe(false);
    expect(q.graph.input[0]!.type?.tensorType?.shape?.dim?.[0]?.dimParam).toBe('batch_size');
  });
});

/** A graph of `nodes` over float input `x` [1,3,8,8] and `inits`; output `out` (float unless `outType`), `valueInfo` declared types. */
function graphOf(nodes: NodeProto[], inits: ReturnType<typeof makeTensor>[] = [], valueInfo: [string, number][] = [], outType: number = DataType.FLOAT) {
  return makeModel(
    {
      node: nodes,
      initializer: inits,
      valueInfo: valueInfo.map(([n, t]) => makeValueInfo(n, makeTensorType(t))),
      input: [makeValueInfo('x', makeTensorType(DataType.FLOAT, [1, 3, 8, 8]))],
      output: [makeValueInfo('out', makeTensorType(outType))],
    },
    { opset: 13 },
  ).graph;
}

// Before: any operator not special-cased took its first typed input's type, so each of these read wrong
// and the wrong type spread to the nodes after it (which then silently stayed float).
describe('nonFloatTensors: element types by the ONNX operator spec', () => {
  it('ConstantOfShape is float without a value attribute (its int64 shape input does not count), else its value type', () => {
    const typed = makeNode('ConstantOfShape', ['s'], ['ints'], { name: 'cos_int' });
    setTensorAttribute(typed, 'value', makeTensor('value', DataType.INT32, [1], [7]));
    const g = graphOf([makeNode('Shape', ['x'], ['s']), makeNode('ConstantOfShape', ['s'], ['zeros']), typed, makeNode('Add', ['zeros', 'x'], ['out'])]);
    expect([...nonFloatTensors(g)].sort()).toEqual(['ints', 's']);
  });

  it('Where takes input 1 (not the bool condition); comparisons and logical ops give bool', () => {
    const cast = makeNode('Cast', ['x'], ['cond'], { name: 'cast' });
    setIntAttribute(cast, 'to', DataType.BOOL);
    const g = graphOf(
      [cast, makeNode('Where', ['cond', 'x', 'x'], ['picked']), makeNode('Greater', ['x', 'zero'], ['gt']), makeNode('Not', ['gt'], ['ngt']), makeNode('Relu', ['picked'], ['out'])],
      [makeTensor('zero', DataType.FLOAT, [], [0])],
    );
    expect([...nonFloatTensors(g)].sort()).toEqual(['cond', 'gt', 'ngt']);
  });

  it('DequantizeLinear gives float; QuantizeLinear its zero point type, uint8 without one', () => {
    const g = graphOf(
      [makeNode('DequantizeLinear', ['qw', 'sc', 'zp8'], ['w']), makeNode('QuantizeLinear', ['x', 'sc'], ['qu']), makeNode('QuantizeLinear', ['x', 'sc', 'zp8'], ['qi']), makeNode('Mul', ['x', 'w'], ['out'])],
      [makeTensor('qw', DataType.INT8, [1], [3]), makeTensor('sc', DataType.FLOAT, [], [0.1]), makeTensor('zp8', DataType.INT8, [], [0])],
    );
    const t = nonFloatTensors(g);
    expect([...t].sort()).toEqual(['qi', 'qu', 'qw', 'zp8']);
  });

  it('Cast gives its `to`, Shape and Size int64', () => {
    const cast = makeNode('Cast', ['x'], ['xi'], { name: 'cast' });
    setIntAttribute(cast, 'to', DataType.INT32);
    const back = makeNode('Cast', ['xi'], ['xf'], { name: 'back' });
    setIntAttribute(back, 'to', DataType.FLOAT);
    const g = graphOf([cast, back, makeNode('Shape', ['xf'], ['s']), makeNode('Size', ['xf'], ['n']), makeNode('Relu', ['xf'], ['out'])]);
    expect([...nonFloatTensors(g)].sort()).toEqual(['n', 's', 'xi']);
  });

  it('a type the graph declares (value_info, graph outputs) wins over propagation', () => {
    // a custom-domain op's output has no propagated type; value_info says int64, the graph output int32
    const g = graphOf([makeNode('Custom', ['x'], ['idx'], { domain: 'com.example' }), makeNode('Custom', ['x'], ['out'], { domain: 'com.example' })], [], [['idx', DataType.INT64]], DataType.INT32);
    expect([...nonFloatTensors(g)].sort()).toEqual(['idx', 'out']);
  });

  it('a float ConstantOfShape added before a Conv leaves the Conv quantized', () => {
    const conv = makeNode('Conv', ['sum', 'w'], ['out'], { name: 'conv' });
    const g = graphOf(
      [makeNode('Shape', ['x'], ['s'], { name: 'shape' }), makeNode('ConstantOfShape', ['s'], ['zeros'], { name: 'cos' }), makeNode('Add', ['zeros', 'x'], ['sum'], { name: 'add' }), conv],
      [makeTensor('w', DataType.FLOAT, [2, 3, 1, 1], [1, 0, 0, 0, 1, 0])],
    );
    // before, zeros read as int64 and so did sum and out: nothing was quantized
    expect([...planQuantization(g, 'constant-of-shape').nodes].map((n) => n.name)).toContain('conv');
  });
});
