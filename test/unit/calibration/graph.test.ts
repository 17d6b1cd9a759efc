// The QDQ rewrite on a small synthetic graph with the operators the shared models lack — a residual
// Add, Gemm after Flatten, a Conv without the Relu folding — calibrated on random inputs through the
// same streaming collector: the int8 model tracks the float one, and ONNX Runtime fuses the Convs,
// the Add and the Gemm into int8 kernels (QLinearConv, QLinearAdd, QGemm).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectRanges, rangesFrom } from '../../../calibration/collect.js';
import { planQuantization } from '../../../calibration/plan.js';
import { activationParamsFor, applyQdq } from '../../../calibration/rewrite.js';
import { createRng } from '../../../runtime/core/rng.js';
import { DataType, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntAttribute, setIntsAttribute } from '../../../runtime/onnx/graph.js';
import { cloneModel, decodeModel, encodeModel, type OnnxModel } from '../../../runtime/onnx/model.js';
import { createSession } from '../../../runtime/session/session.js';
import { asFloat32, type TensorData } from '../../../runtime/core/tensor.js';
import { tempDir } from '../../helpers.js';

function weights(n: number, seed: number, scale: number): Float32Array {
  const r = createRng(seed).next;
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** x[1,3,16,16] → Conv→Relu (a) → Conv (b) → Add(a,b) → Relu → GlobalAveragePool → Flatten → Gemm(8→5) → y */
function residualModel(): OnnxModel {
  const c1 = makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], { name: 'conv1' });
  setIntsAttribute(c1, 'pads', [1, 1, 1, 1]);
  const r1 = makeNode('Relu', ['c1'], ['a'], { name: 'relu1' });
  const c2 = makeNode('Conv', ['a', 'w2', 'b2'], ['b'], { name: 'conv2' });
  setIntsAttribute(c2, 'pads', [1, 1, 1, 1]);
  const add = makeNode('Add', ['a', 'b'], ['s'], { name: 'add' });
  const r2 = makeNode('Relu', ['s'], ['t'], { name: 'relu2' });
  const gap = makeNode('GlobalAveragePool', ['t'], ['p'], { name: 'gap' });
  const flat = makeNode('Flatten', ['p'], ['f'], { name: 'flatten' });
  const gemm = makeNode('Gemm', ['f', 'wg', 'bg'], ['y'], { name: 'fc' });
  setIntAttribute(gemm, 'transB', 1);
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: [],
    trainingInfo: [],
    functions: [],
    configuration: [],
    graph: {
      node: [c1, r1, c2, add, r2, gap, flat, gemm],
      name: 'residual',
      initializer: [
        makeTensor('w1', DataType.FLOAT, [8, 3, 3, 3], weights(8 * 27, 1, 0.4)),
        makeTensor('b1', DataType.FLOAT, [8], weights(8, 2, 0.1)),
        makeTensor('w2', DataType.FLOAT, [8, 8, 3, 3], weights(8 * 72, 3, 0.2)),
        makeTensor('b2', DataType.FLOAT, [8], weights(8, 4, 0.1)),
        makeTensor('wg', DataType.FLOAT, [5, 8], weights(40, 5, 1)),
        makeTensor('bg', DataType.FLOAT, [5], weights(5, 6, 0.5)),
      ],
      input: [makeValueInfo('x', makeTensorType(DataType.FLOAT, [1, 3, 16, 16]))],
      output: [makeValueInfo('y', makeTensorType(DataType.FLOAT, [1, 5]))],
      valueInfo: [],
      quantizationAnnotation: [],
      sparseInitializer: [],
      metadataProps: [],
    },
  };
}

function input(seed: number): TensorData {
  return { type: 'float32', data: weights(3 * 16 * 16, 100 + seed, 1), dims: [1, 3, 16, 16] };
}


/**
 * Run the float and int8 models on inputs lo..hi-1 and expect the int8 output within 2% relative
 * RMS error; returns the path of the int8 session's optimised graph (for fusion checks).
 */
async function expectCloseToFloat(floatBytes: Uint8Array, int8Bytes: Uint8Array, lo: number, hi: number): Promise<string> {
  const optimized = path.join(tempDir('edgetune-qgraph-'), 'opt.onnx');
  const fs = await createSession(floatBytes, { providers: ['cpu'] });
  const qs = await createSession(int8Bytes, { providers: ['cpu'], optimizedModelFilePath: optimized });
  try {
    let err = 0;
    let mag = 0;
    for (let i = lo; i < hi; i++) {
      const a = asFloat32((await fs.run({ x: input(i) })).y!);
      const b = asFloat32((await qs.run({ x: input(i) })).y!);
      for (let k = 0; k < a.length; k++) {
        err += (a[k]! - b[k]!) ** 2;
        mag += a[k]! ** 2;
      }
    }
    // measured: 0.0027 (residual graph, inputs 100–109) and 0.0046 (the second graph, inputs 200–204); 4× the larger
    expect(Math.sqrt(err / mag)).toBeLessThan(0.02);
  } finally {
    await fs.dispose();
    await qs.dispose();
  }
  return optimized;
}

describe('QDQ on a residual graph with a Gemm head', () => {
  it('quantizes Conv, Add and Gemm; outputs track float; ORT fuses them', async () => {
    const float = residualModel();
    const plan = planQuantization(float.graph, 'residual');
    expect([...plan.nodes].map((n) => n.name).sort()).toEqual(['add', 'conv1', 'conv2', 'fc', 'flatten', 'gap']);
    expect(plan.sharedFrom.get('f')).toBe('p'); // Flatten reuses the pooled tensor's parameters
    // the logits (the Gemm's output, read by no int8 node) get no quantizer: QGemm with a float output
    expect(plan.activations).not.toContain('y');
    expect([...plan.folded].map(([n, a]) => `${n.name}->${a.name}`).sort()).toEqual(['add->relu2', 'conv1->relu1']);
    async function* batches() {
      for (let i = 0; i < 32; i++) yield { tensor: input(i), files: [`random-${i}`] };
    }
    const { collectors, means } = await collectRanges(float, 'x', plan.calibrate, batches(), { meanTensors: plan.meanTensors });
    const ranges = rangesFrom(collectors, 'minmax', {}, plan.minmaxOnly);
    expect(ranges.get('a')!.min).toBe(0);
    const q = cloneModel(float);
    const qplan = planQuantization(q.graph, 'residual');
    const summary = applyQdq(q, qplan, activationParamsFor(qplan, ranges, false), {
      channelMeans: new Map([...means].map(([t, m]) => [t, m.means()])),
    });
    expect(summary.quantized).toEqual({ Conv: 2, Add: 1, Gemm: 1, GlobalAveragePool: 1, Flatten: 1 });
    expect(summary.biasCorrected).toBe(3);
    const bytes = encodeModel(q);
    const optimized = await expectCloseToFloat(encodeModel(float), bytes, 100, 110);
    const ops: Record<string, number> = {};
    for (const n of decodeModel(readFileSync(optimized)).graph.node) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
    expect(ops.QLinearConv).toBe(2);
    expect(ops.QLinearAdd).toBe(1);
    expect(ops.QGemm).toBe(1);
    expect(ops.QLinearGlobalAveragePool).toBe(1);
    expect(ops.Conv ?? 0).toBe(0);
    expect(ops.Gemm ?? 0).toBe(0);
  });

  it('--exclude keeps a Conv float for real: it reads the int8 tensor through its own copy of the folded Relu, and ORT does not requantize it', async () => {
    const float = residualModel();
    const plan = planQuantization(float.graph, 'residual', { exclude: ['conv2'] });
    expect([...plan.nodes].map((n) => n.name).sort()).toEqual(['add', 'conv1', 'fc', 'flatten', 'gap']);
    // relu1 stays folded for the int8 Add (its range keeps starting at 0); the float conv2 gets a Relu of its own
    expect([...plan.folded].map(([n, a]) => `${n.name}->${a.name}`).sort()).toEqual(['add->relu2', 'conv1->relu1']);
    async function* batches() {
      for (let i = 0; i < 16; i++) yield { tensor: input(i), files: [`random-${i}`] };
    }
    const { collectors } = await collectRanges(float, 'x', plan.calibrate, batches());
    const q = cloneModel(float);
    const qplan = planQuantization(q.graph, 'residual', { exclude: ['conv2'] });
    applyQdq(q, qplan, activationParamsFor(qplan, rangesFrom(collectors, 'minmax', {}, qplan.minmaxOnly), false));
    const conv2 = q.graph.node.find((n) => n.name === 'conv2')!;
    expect(conv2.input.slice(1)).toEqual(['w2', 'b2']); // float weights
    // …reading `a` dequantized through a re-applied Relu (conv1 now writes the unclamped value as `a`;
    // a float Conv straight after a DequantizeLinear would be requantized by ORT)
    const clamp = q.graph.node.find((n) => n.output[0] === conv2.input[0])!;
    expect(clamp.opType).toBe('Relu');
    const dq = q.graph.node.find((n) => n.output[0] === clamp.input[0])!;
    expect(dq.opType).toBe('DequantizeLinear');
    expect(q.graph.node.find((n) => n.output[0] === dq.input[0])!.input[0]).toBe('a');
    const optimized = await expectCloseToFloat(encodeModel(float), encodeModel(q), 200, 205);
    const ops = decodeModel(readFileSync(optimized)).graph.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Conv' || o === 'FusedConv').length).toBe(1);
  });
});
