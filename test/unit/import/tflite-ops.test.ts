// TFLite import, operator by operator: a float model written with the flatbuffers Builder that uses
// every operator the importer converts and the real models do not all use (PAD, CONV_2D with fused
// RELU and stride 2 SAME padding, DEPTHWISE_CONV_2D with depth multiplier 2 and fused RELU6,
// MAX_POOL_2D, HARD_SWISH, MUL/SUB/ADD with broadcast constants, AVERAGE_POOL_2D with SAME padding,
// CONCATENATION on channels, RELU, MEAN keep_dims, SQUEEZE, RESHAPE of a 3×3 map, DEQUANTIZE of
// float16 weights, FULLY_CONNECTED with and without bias, LOGISTIC, SOFTMAX with beta), against LiteRT.js;
// and a uint8 model over the quantized operators the real files lack (QDQ semantics, a fused RELU6
// that must stay because the output's range is wider).

import { describe, it, expect } from 'vitest';
import { numberToFloat16 } from '../../../runtime/onnx/index.js';
import { importTflite } from '../../../runtime/onnx/import/index.js';
import { buildTflite, f32, i32, type BuildOperator, type BuildTensor } from './tflite-builder.js';
import { maxAbsDiff, ortSession, runOrt, tfliteOracle } from './oracles.js';
import { runCli, tempDir } from '../../helpers.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

function zooModel(): Uint8Array {
  const r = rng(3);
  const rand = (n: number, k = 0.5) => Array.from({ length: n }, () => r() * k);
  const T: BuildTensor[] = [];
  const t = (name: string, shape: number[], data?: Uint8Array, type = 0) => T.push({ name, shape, data, type }) - 1;
  const x = t('x', [1, 8, 8, 3]);
  const padding = t('paddings', [4, 2], i32([0, 0, 0, 1, 1, 1, 0, 0]), 2);
  const p = t('pad', [1, 9, 10, 3]);
  const w1 = t('w1', [4, 3, 3, 3], f32(rand(108)));
  const b1 = t('b1', [4], f32(rand(4)));
  const c1 = t('conv', [1, 5, 5, 4]);
  const w2 = t('w2', [1, 3, 3, 8], f32(rand(72)));
  const b2 = t('b2', [8], f32(rand(8)));
  const d1 = t('dw', [1, 5, 5, 8]);
  const m1 = t('maxpool', [1, 3, 3, 8]);
  const h1 = t('hardswish', [1, 3, 3, 8]);
  const k1 = t('k1', [8], f32(rand(8, 2)));
  const u1 = t('mul', [1, 3, 3, 8]);
  const a1 = t('avgpool', [1, 3, 3, 8]);
  const k2 = t('k2', [8], f32(rand(8)));
  const s1 = t('sub', [1, 3, 3, 8]);
  const cat = t('concat', [1, 3, 3, 16]);
  const r1 = t('relu', [1, 3, 3, 16]);
  const axes = t('axes', [2], i32([1, 2]), 2);
  const mn = t('mean', [1, 1, 1, 16]);
  const k3 = t('k3', [16], f32(rand(16)));
  const ad = t('add', [1, 1, 1, 16]);
  const sq = t('squeeze', [1, 16]);
  const shape = t('shape', [2], i32([1, 144]), 2);
  const rs = t('reshape', [1, 144]);
  const w3h = t('w3_fp16', [6, 144], new Uint8Array(Uint16Array.from(rand(864, 0.2), (v) => numberToFloat16(v)).buffer), 1);
  const w3 = t('w3', [6, 144]);
  const b3 = t('b3', [6], f32(rand(6)));
  const f1 = t('fc1', [1, 6]);
  const w4 = t('w4', [6, 16], f32(rand(96)));
  const f2 = t('fc2', [1, 6]);
  const f3 = t('sum', [1, 6]);
  const lg = t('logistic', [1, 6]);
  const f4 = t('sum2', [1, 6]);
  const out = t('probs', [1, 6]);
  const O: BuildOperator[] = [
    { code: 34, inputs: [x, padding], outputs: [p] },
    // Conv2DOptions: padding SAME(0), stride 2×2, fused RELU(1)
    { code: 3, inputs: [p, w1, b1], outputs: [c1], options: { type: 1, fields: [[0, 'i8', 0], [1, 'i32', 2], [2, 'i32', 2], [3, 'i8', 1]] } },
    // DepthwiseConv2DOptions: SAME, stride 1, depth_multiplier 2, fused RELU6(3)
    { code: 4, inputs: [c1, w2, b2], outputs: [d1], options: { type: 2, fields: [[0, 'i8', 0], [1, 'i32', 1], [2, 'i32', 1], [3, 'i32', 2], [4, 'i8', 3]] } },
    // Pool2DOptions: SAME, stride 2, filter 2×2
    { code: 17, inputs: [d1], outputs: [m1], options: { type: 5, fields: [[0, 'i8', 0], [1, 'i32', 2], [2, 'i32', 2], [3, 'i32', 2], [4, 'i32', 2]] } },
    { code: 117, inputs: [m1], outputs: [h1] },
    { code: 18, inputs: [h1, k1], outputs: [u1], options: { type: 21, fields: [[0, 'i8', 0]] } },
    { code: 1, inputs: [u1], outputs: [a1], options: { type: 5, fields: [[0, 'i8', 0], [1, 'i32', 1], [2, 'i32', 1], [3, 'i32', 2], [4, 'i32', 2]] } },
    { code: 41, inputs: [a1, k2], outputs: [s1], options: { type: 28, fields: [[0, 'i8', 0]] } },
    { code: 2, inputs: [h1, s1], outputs: [cat], options: { type: 10, fields: [[0, 'i32', -1], [1, 'i8', 0]] } },
    { code: 19, inputs: [cat], outputs: [r1] },
    { code: 40, inputs: [r1, axes], outputs: [mn], options: { type: 27, fields: [[0, 'bool', 1]] } },
    { code: 0, inputs: [mn, k3], outputs: [ad], options: { type: 11, fields: [[0, 'i8', 0]] } },
    { code: 43, inputs: [ad], outputs: [sq], options: { type: 30, fields: [[0, 'ints', [1, 2]]] } },
    { code: 22, inputs: [r1, shape], outputs: [rs], options: { type: 17, fields: [[0, 'ints', [1, 144]]] } },
    { code: 6, inputs: [w3h], outputs: [w3] },
    { code: 9, inputs: [rs, w3, b3], outputs: [f1], options: { type: 8, fields: [[0, 'i8', 0]] } },
    { code: 9, inputs: [sq, w4, -1], outputs: [f2], options: { type: 8, fields: [[0, 'i8', 0]] } },
    { code: 0, inputs: [f1, f2], outputs: [f3], options: { type: 11, fields: [[0, 'i8', 0]] } },
    { code: 14, inputs: [f3], outputs: [lg] },
    { code: 0, inputs: [f3, lg], outputs: [f4], options: { type: 11, fields: [[0, 'i8', 0]] } },
    { code: 25, inputs: [f4], outputs: [out], options: { type: 9, fields: [[0, 'f32', 0.5]] } },
  ];
  return buildTflite(T, O, [x], [out]);
}

describe('TFLite import: every converted operator against LiteRT.js', () => {
  it('a 21-operator float model (float16 weights among them) matches within 1e-5', async () => {
    const bytes = zooModel();
    const file = path.join(tempDir('edgetune-import-'), 'zoo.tflite');
    writeFileSync(file, bytes);
    const { model, card } = importTflite(bytes);
    expect(card.precision).toBe('fp16');
    expect([card.layer.outputName, card.output, card.layer.outputKind]).toEqual(['probs', { dims: [1, 6], extractor: false }, 'probabilities']);
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file);
    const r = rng(5);
    let worst = 0;
    let spread = Infinity;
    for (let k = 0; k < 3; k++) {
      const nhwc = Float32Array.from({ length: 8 * 8 * 3 }, () => r() * 2);
      const nchw = new Float32Array(nhwc.length);
      for (let q = 0; q < 64; q++) for (let c = 0; c < 3; c++) nchw[c * 64 + q] = nhwc[q * 3 + c]!;
      const ours = await runOrt(session, nchw, [1, 3, 8, 8]);
      const ref = await oracle.run(nhwc, [1, 8, 8, 3]);
      worst = Math.max(worst, maxAbsDiff(ours, ref));
      spread = Math.min(spread, Math.max(...ref) - Math.min(...ref));
    }
    console.log(`TFLite operator zoo vs LiteRT: output spread ≥ ${spread.toFixed(3)}`);
    // not a degenerate output: the six probabilities differ (measured spread ≥ 0.179)
    expect(spread).toBeGreaterThan(0.02);
    console.log(`TFLite operator zoo vs LiteRT: max |Δp| ${worst.toExponential(2)}`);
    // measured: max |Δp| 4.47e-8 over three random inputs
    expect(worst).toBeLessThan(1e-5);
  });
});

/** A uint8 model (per-tensor, Coral style) over operators the real quantized files lack. */
function quantZoo(): Uint8Array {
  const r = rng(9);
  const u8 = (n: number) => Uint8Array.from({ length: n }, () => Math.floor((r() + 1) * 127.5));
  const T: BuildTensor[] = [];
  const t = (name: string, shape: number[], scale: number, zp: number, data?: Uint8Array, type = 3) =>
    T.push({ name, shape, type, data, quantization: { scale: [scale], zeroPoint: [zp] } }) - 1;
  const x = t('x', [1, 6, 6, 4], 0.05, 100);
  const mp = t('maxpool', [1, 3, 3, 4], 0.05, 100);
  const w1 = t('w1', [4, 3, 3, 4], 0.02, 120, u8(144));
  const b1 = t('b1', [4], 0.05 * 0.02, 0, i32([300, -200, 50, 0]), 2);
  const c1 = t('conv', [1, 3, 3, 4], 0.1, 90);
  const cat = t('concat', [1, 3, 3, 8], 0.08, 80);
  const hs = t('hardswish', [1, 3, 3, 8], 0.06, 30);
  const mu = t('mul', [1, 3, 3, 8], 0.5, 20);
  const axes = T.push({ name: 'axes', shape: [2], type: 2, data: i32([1, 2]) }) - 1;
  const mn = t('mean', [1, 8], 0.2, 20);
  const w2 = t('w2', [5, 8], 0.001, 128, u8(40));
  const b2 = t('b2', [5], 0.2 * 0.001, 0, i32([100, -100, 0, 30, -30]), 2);
  const fc = t('fc', [1, 5], 0.05, 128);
  const lg = t('logistic', [1, 5], 1 / 256, 0);
  const O: BuildOperator[] = [
    { code: 17, inputs: [x], outputs: [mp], options: { type: 5, fields: [[0, 'i8', 1], [1, 'i32', 2], [2, 'i32', 2], [3, 'i32', 2], [4, 'i32', 2]] } },
    // fused RELU6 kept: the output's range (−9 … 16.5) is wider than [0, 6]
    { code: 3, inputs: [x, w1, b1], outputs: [c1], options: { type: 1, fields: [[0, 'i8', 0], [1, 'i32', 2], [2, 'i32', 2], [3, 'i8', 3]] } },
    { code: 2, inputs: [mp, c1], outputs: [cat], options: { type: 10, fields: [[0, 'i32', 3]] } },
    { code: 117, inputs: [cat], outputs: [hs] },
    { code: 18, inputs: [hs, cat], outputs: [mu], options: { type: 21, fields: [[0, 'i8', 0]] } },
    { code: 40, inputs: [mu, axes], outputs: [mn], options: { type: 27, fields: [[0, 'bool', 0]] } },
    { code: 9, inputs: [mn, w2, b2], outputs: [fc], options: { type: 8, fields: [[0, 'i8', 0]] } },
    { code: 14, inputs: [fc], outputs: [lg] },
  ];
  return buildTflite(T, O, [x], [lg]);
}

describe('TFLite import: uint8 QDQ operators against LiteRT.js', () => {
  it('MAX_POOL, CONV_2D with a clamping RELU6, CONCATENATION, HARD_SWISH, MUL, MEAN, FULLY_CONNECTED, LOGISTIC', async () => {
    const bytes = quantZoo();
    const file = path.join(tempDir('edgetune-import-'), 'quant-zoo.tflite');
    writeFileSync(file, bytes);
    const { model, card } = importTflite(bytes);
    expect(card.precision).toBe('int8');
    expect(card.layer.preprocess).toMatchObject({ mean: [100, 100, 100], std: [20, 20, 20] });
    expect(model.graph.node.filter((n) => n.opType === 'Clip')).toHaveLength(1);
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file, { scale: 1 / 256, zeroPoint: 0 });
    const r = rng(21);
    let worst = 0;
    for (let k = 0; k < 5; k++) {
      const px = Uint8Array.from({ length: 6 * 6 * 4 }, () => Math.floor((r() + 1) * 127.5));
      // the float input is the dequantized pixel: (x − 100) · 0.05, NCHW
      const nchw = new Float32Array(px.length);
      for (let q = 0; q < 36; q++) for (let c = 0; c < 4; c++) nchw[c * 36 + q] = (px[q * 4 + c]! - 100) * 0.05;
      const ours = await runOrt(session, nchw, [1, 4, 6, 6]);
      const ref = await oracle.run(px, [1, 6, 6, 4]);
      worst = Math.max(worst, maxAbsDiff(ours, ref));
    }
    console.log(`TFLite uint8 operator zoo vs LiteRT: max |Δ| ${worst.toFixed(4)} (output step ${(1 / 256).toFixed(4)})`);
    // measured: max |Δ| 0.0039 (one output step) over five random inputs whose outputs spread 0.000 … 0.996
    expect(worst).toBeLessThanOrEqual(2 / 256);
  });
});

/** Float in, float out, int8 inside (the TFLite converter's default for full-integer models with float I/O). */
function int8FloatIo(): Uint8Array {
  const r = rng(17);
  const T: BuildTensor[] = [];
  const i8 = (n: number) => new Uint8Array(Int8Array.from({ length: n }, () => Math.round(r() * 127)).buffer);
  const x = T.push({ name: 'x', shape: [1, 5, 5, 3] }) - 1;
  const xq = T.push({ name: 'x_int8', shape: [1, 5, 5, 3], type: 9, quantization: { scale: [0.02], zeroPoint: [-10] } }) - 1;
  // per-channel int8 weights (4 output channels, axis 0) and int32 biases
  const wScales = [0.01, 0.02, 0.005, 0.015];
  const w = T.push({ name: 'w', shape: [4, 3, 3, 3], type: 9, data: i8(108), quantization: { scale: wScales, zeroPoint: [0, 0, 0, 0], dim: 0 } }) - 1;
  const b = T.push({ name: 'b', shape: [4], type: 2, data: i32([500, -300, 0, 1000]), quantization: { scale: wScales.map((s) => s * 0.02), zeroPoint: [0, 0, 0, 0] } }) - 1;
  const c = T.push({ name: 'conv', shape: [1, 5, 5, 4], type: 9, quantization: { scale: [0.05], zeroPoint: [3] } }) - 1;
  const y = T.push({ name: 'y', shape: [1, 5, 5, 4] }) - 1;
  const O: BuildOperator[] = [
    { code: 114, inputs: [x], outputs: [xq] },
    { code: 3, inputs: [xq, w, b], outputs: [c], options: { type: 1, fields: [[0, 'i8', 0], [1, 'i32', 1], [2, 'i32', 1], [3, 'i8', 0]] } },
    { code: 6, inputs: [c], outputs: [y] },
  ];
  return buildTflite(T, O, [x], [y]);
}

describe('TFLite import: float I/O around an int8 per-channel convolution', () => {
  it('QUANTIZE → CONV_2D (int8, per-channel) → DEQUANTIZE matches LiteRT within one output step', async () => {
    const bytes = int8FloatIo();
    const file = path.join(tempDir('edgetune-import-'), 'int8-float-io.tflite');
    writeFileSync(file, bytes);
    const { model, card } = importTflite(bytes);
    expect(card.sourceInput.dtype).toBe('float32');
    expect(card.output.dims).toEqual([1, 4, 5, 5]);
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file);
    const r = rng(23);
    let worst = 0;
    let levels = 0;
    for (let k = 0; k < 3; k++) {
      const nhwc = Float32Array.from({ length: 75 }, () => r() * 2);
      const nchw = new Float32Array(75);
      for (let q = 0; q < 25; q++) for (let ch = 0; ch < 3; ch++) nchw[ch * 25 + q] = nhwc[q * 3 + ch]!;
      const ours = await runOrt(session, nchw, [1, 3, 5, 5]);
      const ref = await oracle.run(nhwc, [1, 5, 5, 3]); // NHWC [1,5,5,4]
      const refNchw = new Float32Array(100);
      for (let q = 0; q < 25; q++) for (let ch = 0; ch < 4; ch++) refNchw[ch * 25 + q] = ref[q * 4 + ch]!;
      worst = Math.max(worst, maxAbsDiff(ours, refNchw));
      levels = Math.max(levels, new Set(ref).size);
    }
    console.log(`TFLite int8 float-I/O conv vs LiteRT: max |Δ| ${worst.toFixed(4)} (output step 0.05), ${levels} output levels`);
    expect(levels).toBeGreaterThan(20); // not saturated (measured: 79 distinct output values)
    // measured: max |Δ| 0.0000 over three random inputs (bit-identical)
    expect(worst).toBeLessThanOrEqual(0.05 + 1e-6);
  });
});

/**
 * A dynamic-range ("hybrid") model, what the TFLite converter writes with only
 * `optimizations = [DEFAULT]` and no representative data: float input, float activations, int8
 * per-channel weights (dequantized at run time), float bias. A 3×3 VALID convolution of a 3×3 image:
 * one row of 4 class scores, so `edgetune import` takes it as a classifier.
 */
function hybridConv(): Uint8Array {
  const r = rng(29);
  const T: BuildTensor[] = [];
  const i8 = (n: number) => new Uint8Array(Int8Array.from({ length: n }, () => Math.round(r() * 127)).buffer);
  const x = T.push({ name: 'x', shape: [1, 3, 3, 3] }) - 1;
  const wScales = [0.01, 0.02, 0.005, 0.015];
  const w = T.push({ name: 'w', shape: [4, 3, 3, 3], type: 9, data: i8(108), quantization: { scale: wScales, zeroPoint: [0, 0, 0, 0], dim: 0 } }) - 1;
  const b = T.push({ name: 'b', shape: [4], data: f32([0.1, -0.2, 0, 0.3]) }) - 1;
  const y = T.push({ name: 'y', shape: [1, 1, 1, 4] }) - 1;
  const O: BuildOperator[] = [{ code: 3, inputs: [x, w, b], outputs: [y], options: { type: 1, fields: [[0, 'i8', 1], [1, 'i32', 1], [2, 'i32', 1], [3, 'i8', 0]] } }];
  return buildTflite(T, O, [x], [y]);
}

describe('TFLite import: a dynamic-range ("hybrid") model is int8 weights, float activations', () => {
  it('card and `edgetune import` say so (not "runs as QLinearConv"); the full-integer model still says int8 activations', async () => {
    const dir = tempDir('edgetune-import-');
    const file = path.join(dir, 'hybrid.tflite');
    writeFileSync(file, hybridConv());
    const { model, card } = importTflite(hybridConv());
    // int8 by the one rule (DequantizeLinear of the weights), but nothing quantizes an activation
    expect(card.precision).toBe('int8');
    expect(card.activations).toBe('float');
    expect(model.graph.node.map((n) => n.opType).filter((op) => op === 'QuantizeLinear')).toEqual([]);
    expect(importTflite(int8FloatIo()).card.activations).toBe('int8');
    const cli = await runCli(['import', file, '--out', path.join(dir, 'hybrid.onnx')], { env: { EDGETUNE_CACHE: path.join(dir, 'cache') } });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/precision +int8 weights, float activations \(dynamic-range: weights dequantized to float at run time\)\n/);
    expect(cli.stdout).not.toContain('QLinearConv');
    const json = await runCli(['import', file, '--out', path.join(dir, 'hybrid2.onnx'), '--json'], { env: { EDGETUNE_CACHE: path.join(dir, 'cache') } });
    expect(JSON.parse(json.stdout)).toMatchObject({ precision: 'int8', activations: 'float' });
    // and it runs as TFLite runs it (float conv over the dequantized weights)
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file);
    const rr = rng(31);
    const nhwc = Float32Array.from({ length: 27 }, () => rr() * 2);
    const nchw = new Float32Array(27);
    for (let q = 0; q < 9; q++) for (let ch = 0; ch < 3; ch++) nchw[ch * 9 + q] = nhwc[q * 3 + ch]!;
    const ours = await runOrt(session, nchw, [1, 3, 3, 3]);
    const ref = await oracle.run(nhwc, [1, 3, 3, 3]); // [1,1,1,4]: the same order as NCHW [1,4,1,1]
    const worst = maxAbsDiff(ours, ref);
    console.log(`TFLite hybrid conv vs LiteRT: max |Δ| ${worst.toFixed(5)}`);
    // measured: max |Δ| 0.0172 (LiteRT's hybrid kernel quantizes the input to int8 on the fly; the
    // imported graph convolves the float input with the dequantized weights)
    expect(worst).toBeLessThan(0.05);
  });
});
