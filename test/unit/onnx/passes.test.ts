// ONNX pre-passes for quantization on the real models: opset upgrade (SqueezeNet 7 → 13 with the
// Softmax/Dropout rewrites, MobileNetV1 11 → 13) gives the same outputs as the original in ONNX
// Runtime; fp16 widening of SqueezeNet_fp16 reproduces the fp32 file's outputs; BatchNormalization
// folding and Identity removal keep a small Conv+BN+Identity graph's outputs; already-quantized
// models are refused.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { prepareFloatModel } from '../../../calibration/index.js';
import { planQuantization, refuseQuantized } from '../../../calibration/plan.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { DataType, getOpsetVersion, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setFloatAttribute, setIntsAttribute } from '../../../runtime/onnx/graph.js';
import { decodeModel, encodeModel, type OnnxModel } from '../../../runtime/onnx/model.js';
import { foldBatchNorm } from '../../../runtime/onnx/passes/fold-batchnorm.js';
import { removeIdentity } from '../../../runtime/onnx/passes/remove-identity.js';
import { upgradeOpset } from '../../../runtime/onnx/passes/upgrade-opset.js';
import { widenFloat16 } from '../../../runtime/onnx/passes/widen-fp16.js';
import { toTensor, type PreprocessSpec } from '../../../runtime/image/preprocess.js';
import { createSession } from '../../../runtime/session/session.js';
import { asFloat32, type TensorData } from '../../../runtime/core/tensor.js';
import { shared } from '../../helpers.js';

const SQUEEZE: PreprocessSpec = { width: 224, height: 224, channels: 3, layout: 'NCHW', colorOrder: 'BGR', range: [0, 255], mean: [104, 117, 123], std: [1, 1, 1], resize: 'cover', crop: 1, dtype: 'float32' };
const MOBILE: PreprocessSpec = { width: 128, height: 128, channels: 3, layout: 'NCHW', colorOrder: 'RGB', range: [-1, 1], mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 0.875, dtype: 'float32' };

async function run(model: string | Uint8Array, input: string, x: TensorData): Promise<Float32Array> {
  const s = await createSession(model, { providers: ['cpu'] });
  try {
    const r = await s.run({ [input]: x });
    return asFloat32(Object.values(r)[0]!);
  } finally {
    await s.dispose();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const argmax = (a: Float32Array) => a.indexOf(Math.max(...a));

describe('opset upgrade', () => {
  it('SqueezeNet 1.1: opset 7 → 13 gives the same probabilities (Softmax over [1,1000,1,1] stays a softmax)', async () => {
    const file = shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx');
    const m = decodeModel(readFileSync(file));
    expect(getOpsetVersion(m)).toBe(7);
    const report = upgradeOpset(m, 13);
    expect(report.from).toBe(7);
    expect(getOpsetVersion(m)).toBe(13);
    expect(m.irVersion).toBeGreaterThanOrEqual(7); // opset 13 needs IR ≥ 7 (ONNX's versioning table); measured 7
    expect(report.rewrites.some((r) => r.startsWith('Softmax') && r.includes('Flatten'))).toBe(true);
    expect(report.rewrites.some((r) => r.startsWith('Dropout'))).toBe(true);
    // initializers are no longer declared as inputs
    expect(m.graph.input.map((i) => i.name)).toEqual(['data_0']);
    const x = toTensor([await decodeImage(shared('camera', 'winml_dog.jpg'), SQUEEZE)], SQUEEZE);
    const before = await run(file, 'data_0', x);
    const after = await run(encodeModel(m), 'data_0', x);
    // measured: max |Δ| 0 (the same kernels), sum 1.0000000185, top probability 0.987
    expect(maxDiff(before, after)).toBeLessThan(1e-6);
    expect(after.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    expect(Math.max(...after)).toBeLessThan(0.9999); // not the all-ones output of a per-element softmax
    expect(argmax(after)).toBe(207); // golden retriever
  });

  it('MobileNetV1: opset 11 → 13 (Clip inputs, last-axis Softmax) gives the same outputs; prepare drops nothing else', async () => {
    const file = shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx');
    const m = decodeModel(readFileSync(file));
    const { model: p, opsetFrom } = prepareFloatModel(m);
    expect(opsetFrom).toBe(11);
    expect(getOpsetVersion(p)).toBe(13);
    expect(p.graph.node.length).toBe(m.graph.node.length);
    const x = toTensor([await decodeImage(shared('camera', 'hwacc_imagenet_finch.jpeg'), MOBILE)], MOBILE);
    const before = await run(file, 'input', x);
    const after = await run(encodeModel(p), 'input', x);
    expect(maxDiff(before, after)).toBeLessThan(1e-6); // measured 0
  });

  it('refuses operators it cannot rewrite, naming the node', () => {
    const m = tinyModel(7);
    m.graph.node.push(makeNode('Upsample', ['y'], ['z'], { name: 'up1' }));
    expect(() => upgradeOpset(m, 13)).toThrow('cannot upgrade Upsample "up1" from opset 7 to 13: re-export the model at opset ≥ 13');
  });
});

describe('constant folding for the quantizer', () => {
  it('MNIST: weight Reshape folded, Conv+Add → Conv bias, MatMul+Add → Gemm, same outputs', async () => {
    const file = shared('models', 'mnist_winml.onnx');
    const m = decodeModel(readFileSync(file));
    expect(m.graph.node.filter((n) => n.opType === 'Add').length).toBe(3);
    const { model: p } = prepareFloatModel(m);
    const ops = p.graph.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Add')).toEqual([]);
    expect(ops.filter((o) => o === 'Gemm').length).toBe(1);
    expect(ops.filter((o) => o === 'Reshape').length).toBe(1); // the activation reshape stays
    for (const n of p.graph.node.filter((x) => x.opType === 'Conv')) expect(n.input.length).toBe(3);
    const spec: PreprocessSpec = { width: 28, height: 28, channels: 1, layout: 'NCHW', colorOrder: 'GRAY', range: [0, 255], mean: [0], std: [1], resize: 'fill', crop: 1, dtype: 'float32' };
    const x = toTensor([await decodeImage(shared('camera', 'winml_mnist_28.png'), spec)], spec);
    const before = await run(file, 'Input3', x);
    const after = await run(encodeModel(p), 'Input3', x);
    // measured 0: the folded Conv bias and Gemm compute the same sums
    expect(maxDiff(before, after)).toBeLessThan(1e-4);
    expect(argmax(after)).toBe(8);
  });
});

describe('fp16 widening', () => {
  it('SqueezeNet_fp16 widened equals the fp32 file (an exact widening of the same weights)', async () => {
    const m = decodeModel(readFileSync(shared('models', 'SqueezeNet_fp16.onnx')));
    const r = widenFloat16(m);
    // every initializer of the file is float16: 52 of 52 widened (measured)
    expect(r.tensors).toBe(m.graph.initializer.length);
    expect(r.tensors).toBe(52);
    expect(m.graph.initializer.every((t) => t.dataType === DataType.FLOAT)).toBe(true);
    expect(m.graph.input.find((i) => i.name === 'data_0')!.type!.tensorType!.elemType).toBe(DataType.FLOAT);
    const x = toTensor([await decodeImage(shared('camera', 'winml_cat.jpg'), SQUEEZE)], SQUEEZE);
    const widened = await run(encodeModel(m), 'data_0', x);
    const fp32 = await run(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'), 'data_0', x);
    expect(maxDiff(widened, fp32)).toBeLessThan(1e-6); // measured 0
  });
});

/** x[1,2,4,4] → Conv(2→3, 3x3, pad 1) → BatchNormalization → Identity → y */
function tinyModel(opset = 13): OnnxModel {
  const w = Float32Array.from({ length: 3 * 2 * 9 }, (_, i) => Math.sin(i * 1.7) * 0.5);
  const conv = makeNode('Conv', ['x', 'w', 'b'], ['c'], { name: 'conv' });
  setIntsAttribute(conv, 'pads', [1, 1, 1, 1]);
  const bn = makeNode('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'var'], ['n'], { name: 'bn' });
  setFloatAttribute(bn, 'epsilon', 1e-3);
  const id = makeNode('Identity', ['n'], ['y'], { name: 'id' });
  return makeModel(
    {
      node: [conv, bn, id],
      name: 'tiny',
      initializer: [
        makeTensor('w', DataType.FLOAT, [3, 2, 3, 3], w),
        makeTensor('b', DataType.FLOAT, [3], [0.1, -0.2, 0.3]),
        makeTensor('gamma', DataType.FLOAT, [3], [1.5, 0.5, -1]),
        makeTensor('beta', DataType.FLOAT, [3], [0.2, 0, -0.4]),
        makeTensor('mean', DataType.FLOAT, [3], [0.3, -0.1, 0.05]),
        makeTensor('var', DataType.FLOAT, [3], [2, 0.5, 1]),
      ],
      input: [makeValueInfo('x', makeTensorType(DataType.FLOAT, [1, 2, 4, 4]))],
      output: [makeValueInfo('y', makeTensorType(DataType.FLOAT, [1, 3, 4, 4]))],
    },
    { opset },
  );
}

describe('BatchNormalization folding and Identity removal', () => {
  it('fold Conv+BN and drop the Identity with the same outputs', async () => {
    const m = tinyModel();
    const x: TensorData = { type: 'float32', data: Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)), dims: [1, 2, 4, 4] };
    const before = await run(encodeModel(m), 'x', x);
    expect(foldBatchNorm(m)).toBe(1);
    expect(removeIdentity(m)).toBe(1);
    expect(m.graph.node.map((n) => n.opType)).toEqual(['Conv']);
    expect(m.graph.node[0]!.output).toEqual(['y']);
    expect(m.graph.initializer.map((t) => t.name).sort()).toEqual(['b', 'w']);
    const after = await run(encodeModel(m), 'x', x);
    expect(maxDiff(before, after)).toBeLessThan(1e-5); // measured 2.4e-7 (float32 rounding of the folded weights)
  });
});

describe('quantization planning', () => {
  it('refuses an already-quantized model', () => {
    const m = decodeModel(readFileSync(shared('models', 'mobilenetv2-12-int8.onnx')));
    expect(() => refuseQuantized(m.graph, 'mobilenetv2-12-int8.onnx')).toThrow(/^mobilenetv2-12-int8\.onnx: model is already quantized \(.*QLinearConv.*\); quantize its float original instead$/);
  });
  it('plans SqueezeNet: every Conv, Relu folded, MaxPool sharing its input parameters, logits range by min/max', () => {
    const p = prepareFloatModel(decodeModel(readFileSync(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx')))).model;
    const plan = planQuantization(p.graph, 'squeezenet');
    const ops = [...plan.nodes].map((n) => n.opType);
    expect(ops.filter((o) => o === 'Conv').length).toBe(26);
    expect(ops.filter((o) => o === 'Concat').length).toBe(8);
    expect(ops).not.toContain('GlobalAveragePool'); // feeds only the float Softmax
    expect(plan.folded.size).toBe(26);
    expect(plan.sharedFrom.get('pool1_1')).toBe('conv1_2');
    expect(plan.minmaxOnly.has('data_0')).toBe(true);
    expect(plan.minmaxOnly.has('conv10_2')).toBe(true);
    expect(() => planQuantization(p.graph, 'squeezenet', { exclude: ['nope'] })).toThrow('--exclude "nope": no node, operator type or node output of that name in squeezenet');
    const one = planQuantization(p.graph, 'squeezenet', { exclude: ['conv10_1'] }); // by output name
    expect([...one.nodes].filter((n) => n.opType === 'Conv').length).toBe(25);
    const ex = planQuantization(p.graph, 'squeezenet', { exclude: ['Concat'] });
    expect([...ex.nodes].some((n) => n.opType === 'Concat')).toBe(false);
  });
});
