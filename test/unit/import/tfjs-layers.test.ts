// tfjs layers import, layer by layer: a small functional model built and saved by tfjs-layers itself
// (ZeroPadding2D, Conv2D, BatchNormalization, DepthwiseConv2D with depth multiplier 2, Add,
// Concatenate, ReLU max_value, LeakyReLU, pooling, Flatten over a 4×4 map, Dense, Dropout,
// Activation) with random weights, converted and compared with tfjs on the CPU backend; then the same
// model with its weights stored uint8-quantized in the manifest (tfjs dequantizes them too).

import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { importTfjsLayers, type TfjsModelJson, type TfjsWeightSpec } from '../../../runtime/onnx/import/index.js';
import { maxAbsDiff, ortSession, runOrt } from './oracles.js';

/** Deterministic pseudo-random numbers in [−1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

function buildModel(): tfl.LayersModel {
  const inp = tfl.input({ shape: [15, 15, 3] });
  let x = tfl.layers.zeroPadding2d({ padding: [[1, 2], [0, 1]] }).apply(inp) as tfl.SymbolicTensor; // 18×16
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }).apply(x) as tfl.SymbolicTensor; // 9×8
  x = tfl.layers.batchNormalization({ epsilon: 0.01 }).apply(x) as tfl.SymbolicTensor;
  const a = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }).apply(x) as tfl.SymbolicTensor; // 16 ch
  const b = tfl.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false }).apply(x) as tfl.SymbolicTensor;
  let y = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
  y = tfl.layers.reLU({ maxValue: 6 }).apply(y) as tfl.SymbolicTensor;
  const p = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(y) as tfl.SymbolicTensor; // 5×4
  const q = tfl.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(y) as tfl.SymbolicTensor;
  let z = tfl.layers.concatenate().apply([p, q]) as tfl.SymbolicTensor; // 32 ch
  z = tfl.layers.leakyReLU({ alpha: 0.1 }).apply(z) as tfl.SymbolicTensor;
  z = tfl.layers.depthwiseConv2d({ kernelSize: [2, 1], padding: 'valid', activation: 'tanh' }).apply(z) as tfl.SymbolicTensor; // 4×4
  z = tfl.layers.flatten().apply(z) as tfl.SymbolicTensor;
  z = tfl.layers.dense({ units: 12, activation: 'relu' }).apply(z) as tfl.SymbolicTensor;
  z = tfl.layers.dropout({ rate: 0.5 }).apply(z) as tfl.SymbolicTensor;
  z = tfl.layers.dense({ units: 5 }).apply(z) as tfl.SymbolicTensor;
  z = tfl.layers.activation({ activation: 'softmax' }).apply(z) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: inp, outputs: z });
  const r = rng(7);
  model.setWeights(
    model.weights.map((w) => {
      const n = w.shape.reduce<number>((s, d) => s * (d ?? 1), 1);
      const positive = w.name.includes('moving_variance');
      return tf.tensor(Float32Array.from({ length: n }, () => (positive ? 0.5 + Math.abs(r()) : r() * 0.6)), w.shape as number[]);
    }),
  );
  return model;
}

async function save(model: tfl.LayersModel): Promise<{ json: TfjsModelJson; bin: Uint8Array }> {
  let json: TfjsModelJson | undefined;
  let bin: Uint8Array | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      json = { modelTopology: a.modelTopology as TfjsModelJson['modelTopology'], weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs as TfjsWeightSpec[] }] };
      bin = new Uint8Array(a.weightData as ArrayBuffer).slice();
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return { json: json!, bin: bin! };
}

/** The weights stored as uint8 with per-weight scale and min (tfjs' quantization format). */
function quantizeUint8(json: TfjsModelJson, bin: Uint8Array): { json: TfjsModelJson; bin: Uint8Array } {
  const specs = json.weightsManifest[0]!.weights;
  const f = new Float32Array(bin.buffer, bin.byteOffset, bin.length / 4);
  const out: number[] = [];
  let pos = 0;
  const qspecs = specs.map((s) => {
    const n = s.shape.reduce((a, d) => a * d, 1);
    const v = f.subarray(pos, pos + n);
    pos += n;
    const min = Math.min(...v);
    const max = Math.max(...v);
    const scale = (max - min) / 255 || 1;
    for (const x of v) out.push(Math.round((x - min) / scale));
    return { ...s, quantization: { dtype: 'uint8', scale, min } };
  });
  return { json: { ...json, weightsManifest: [{ paths: ['weights.bin'], weights: qspecs }] }, bin: Uint8Array.from(out) };
}

async function compare(json: TfjsModelJson, bin: Uint8Array): Promise<number> {
  const ref = await tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology as object, weightSpecs: json.weightsManifest[0]!.weights as tf.io.WeightsManifestEntry[], weightData: bin.slice().buffer }),
  );
  const { model, card } = importTfjsLayers(json, { 'weights.bin': bin });
  expect(card.layer.preprocess).toMatchObject({ width: 15, height: 15, channels: 3, layout: 'NCHW', dtype: 'float32' });
  expect(card.layer.outputKind).toBe('probabilities');
  const session = await ortSession(model);
  const r = rng(11);
  let worst = 0;
  for (let k = 0; k < 3; k++) {
    const nhwc = Float32Array.from({ length: 15 * 15 * 3 }, () => r());
    const nchw = new Float32Array(nhwc.length);
    for (let p = 0; p < 225; p++) for (let c = 0; c < 3; c++) nchw[c * 225 + p] = nhwc[p * 3 + c]!;
    const x = tf.tensor4d(nhwc, [1, 15, 15, 3]);
    const y = ref.predict(x) as tf.Tensor;
    const want = (await y.data()) as Float32Array;
    x.dispose();
    y.dispose();
    worst = Math.max(worst, maxAbsDiff(await runOrt(session, nchw, [1, 3, 15, 15]), want));
  }
  return worst;
}

describe('tfjs import: every supported layer against tfjs-layers (CPU backend)', () => {
  let saved: { json: TfjsModelJson; bin: Uint8Array };
  beforeAll(async () => {
    await tf.setBackend('cpu');
    saved = await save(buildModel());
  });

  it('float32 weights: outputs within 1e-5', async () => {
    const worst = await compare(saved.json, saved.bin);
    console.log(`tfjs layer zoo, float32 weights: max |Δp| ${worst.toExponential(2)}`);
    // measured: max |Δp| 1.22e-6 over three random inputs (float32 summation order)
    expect(worst).toBeLessThan(1e-5);
  });

  it('uint8-quantized weights in the manifest: dequantized as tfjs does (within 1e-5)', async () => {
    const q = quantizeUint8(saved.json, saved.bin);
    const worst = await compare(q.json, q.bin);
    console.log(`tfjs layer zoo, uint8 weights: max |Δp| ${worst.toExponential(2)}`);
    // measured: max |Δp| 4.17e-7
    expect(worst).toBeLessThan(1e-5);
  });
});
