// TFLite import of inputs other than Coral's NHWC RGB, each from the structure of a real file that
// failed: a grayscale input (tflite-micro's person_detect.tflite, int8 [1,96,96,1]: the card kept three
// means and every command said "Expected 1 values for mean"), an NCHW input transposed to NHWC inside
// (PyTorch → TFLite, tflite-micro's mobilenet_v2_quantized_1x3x224x224.tflite: "Unsupported TFLite
// operator TRANSPOSE"), L2_NORMALIZATION (Coral's mobilenet_v1_1.0_224_l2norm_quant.tflite), and
// inputs that are no image (micro_speech [1,1960], Coral's head_layers [1,1,1,1024]: converted, then
// every command failed on "preprocess.width: required but missing"), refused at import.
// Small models written with tflite-builder.ts, checked against LiteRT.js; one runs end to end on a real photo.

import { describe, it, expect } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, shared, tempDir, thrown } from '../../helpers.js';
import { importTflite } from '../../../runtime/onnx/import/index.js';
import { checkSpec } from '../../../runtime/image/preprocess.js';
import { importModelFile } from '../../../models/import.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { buildTflite, f32, i32, type BuildOperator, type BuildTensor } from './tflite-builder.js';
import { maxAbsDiff, ortSession, runOrt, tfliteOracle } from './oracles.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/**
 * Float [1,8,8,1] grayscale → CONV_2D 3×3 (4 filters, RELU) → MEAN over H, W → FULLY_CONNECTED 2 →
 * SOFTMAX (person_detect's shape of work); `l2`: an L2_NORMALIZATION between the MEAN and the
 * classifier, as Coral's mobilenet_v1_1.0_224_l2norm_quant.tflite has.
 */
function grayscaleModel(l2 = false): Uint8Array {
  const r = rng(31);
  const rand = (n: number, k = 0.5) => Array.from({ length: n }, () => r() * k);
  const T: BuildTensor[] = [];
  const t = (name: string, shape: number[], data?: Uint8Array, type = 0) => T.push({ name, shape, data, type }) - 1;
  const x = t('image', [1, 8, 8, 1]);
  const w = t('w', [4, 3, 3, 1], f32(rand(36)));
  const b = t('b', [4], f32(rand(4)));
  const c = t('conv', [1, 8, 8, 4]);
  const axes = t('axes', [2], i32([1, 2]), 2);
  const m = t('pooled', [1, 4]);
  const n = l2 ? t('normalised', [1, 4]) : m;
  const wf = t('wf', [2, 4], f32(rand(8, 2)));
  const bf = t('bf', [2], f32(rand(2)));
  const f = t('logits', [1, 2]);
  const y = t('probs', [1, 2]);
  const O: BuildOperator[] = [
    { code: 3, inputs: [x, w, b], outputs: [c], options: { type: 1, fields: [[0, 'i8', 0], [1, 'i32', 1], [2, 'i32', 1], [3, 'i8', 1]] } },
    { code: 40, inputs: [c, axes], outputs: [m], options: { type: 27, fields: [[0, 'bool', 0]] } },
    ...(l2 ? [{ code: 11, inputs: [m], outputs: [n], options: { type: 40, fields: [[0, 'i8', 0]] } } satisfies BuildOperator] : []),
    { code: 9, inputs: [n, wf, bf], outputs: [f], options: { type: 8, fields: [[0, 'i8', 0]] } },
    { code: 25, inputs: [f], outputs: [y], options: { type: 9, fields: [[0, 'f32', 1]] } },
  ];
  return buildTflite(T, O, [x], [y]);
}

/**
 * Float NCHW [1,3,6,6] → TRANSPOSE (0,2,3,1) → CONV_2D → TRANSPOSE (0,3,1,2) back to NCHW → RESHAPE
 * [1,144] (so the element order after the transpose matters) → FULLY_CONNECTED 8 → L2_NORMALIZATION →
 * FULLY_CONNECTED 3 → SOFTMAX.
 */
function nchwModel(): Uint8Array {
  const r = rng(37);
  const rand = (n: number, k = 0.5) => Array.from({ length: n }, () => r() * k);
  const T: BuildTensor[] = [];
  const t = (name: string, shape: number[], data?: Uint8Array, type = 0) => T.push({ name, shape, data, type }) - 1;
  const x = t('input.1', [1, 3, 6, 6]);
  const p1 = t('perm_to_nhwc', [4], i32([0, 2, 3, 1]), 2);
  const xt = t('input_nhwc', [1, 6, 6, 3]);
  const w = t('w', [4, 3, 3, 3], f32(rand(108)));
  const b = t('b', [4], f32(rand(4)));
  const c = t('conv', [1, 6, 6, 4]);
  const p2 = t('perm_to_nchw', [4], i32([0, 3, 1, 2]), 2);
  const ct = t('conv_nchw', [1, 4, 6, 6]);
  const shape = t('shape', [2], i32([1, 144]), 2);
  const flat = t('flat', [1, 144]);
  const w1 = t('w1', [8, 144], f32(rand(1152, 0.2)));
  const f1 = t('fc1', [1, 8]);
  const l2 = t('l2', [1, 8]);
  const w2 = t('w2', [3, 8], f32(rand(24, 4)));
  const f2 = t('fc2', [1, 3]);
  const y = t('probs', [1, 3]);
  const O: BuildOperator[] = [
    { code: 39, inputs: [x, p1], outputs: [xt] },
    { code: 3, inputs: [xt, w, b], outputs: [c], options: { type: 1, fields: [[0, 'i8', 0], [1, 'i32', 1], [2, 'i32', 1], [3, 'i8', 0]] } },
    { code: 39, inputs: [c, p2], outputs: [ct] },
    { code: 22, inputs: [ct, shape], outputs: [flat], options: { type: 17, fields: [[0, 'ints', [1, 144]]] } },
    { code: 9, inputs: [flat, w1, -1], outputs: [f1], options: { type: 8, fields: [[0, 'i8', 0]] } },
    // L2NormOptions: fused_activation_function NONE
    { code: 11, inputs: [f1], outputs: [l2], options: { type: 40, fields: [[0, 'i8', 0]] } },
    { code: 9, inputs: [l2, w2, -1], outputs: [f2], options: { type: 8, fields: [[0, 'i8', 0]] } },
    { code: 25, inputs: [f2], outputs: [y], options: { type: 9, fields: [[0, 'f32', 1]] } },
  ];
  return buildTflite(T, O, [x], [y]);
}

describe('TFLite import: a grayscale input', () => {
  it('keeps one mean and one std, matches LiteRT, and classifies a real photo end to end', async () => {
    const bytes = grayscaleModel();
    const dir = tempDir('edgetune-import-');
    const file = path.join(dir, 'gray.tflite');
    writeFileSync(file, bytes);
    const { model, card } = importTflite(bytes);
    expect(card.layer.preprocess).toMatchObject({ width: 8, height: 8, channels: 1, mean: [127.5], std: [127.5] });
    // the check every session runs on a card (before: "Expected 1 values for mean but received [127.5,127.5,127.5]")
    expect(() => checkSpec(card.layer.preprocess)).not.toThrow();
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file);
    const r = rng(41);
    let worst = 0;
    for (let k = 0; k < 3; k++) {
      const x = Float32Array.from({ length: 64 }, () => r());
      worst = Math.max(worst, maxAbsDiff(await runOrt(session, x, [1, 1, 8, 8]), await oracle.run(x, [1, 8, 8, 1])));
    }
    console.log(`grayscale TFLite vs LiteRT: max |Δp| ${worst.toExponential(2)}`);
    // measured: max |Δp| 1.49e-8 (float32 summation order)
    expect(worst).toBeLessThan(1e-5);

    const out = path.join(dir, 'gray.onnx');
    writeFileSync(path.join(dir, 'labels.txt'), 'no person\nperson\n');
    writeFileSync(out, (await importModelFile(file)).bytes);
    const clf = await loadClassifier(out, { threads: 1, providers: ['cpu'] });
    try {
      const res = await clf.classify(shared('camera', 'winml_dog.jpg'));
      expect(res.top.map((p) => p.label).sort()).toEqual(['no person', 'person']);
      expect(res.top[0]!.score + res.top[1]!.score).toBeCloseTo(1, 5);
    } finally {
      await clf.dispose();
    }
    // edgetune import says grayscale (it printed "8x8 RGB")
    const cli = await runCli(['import', file, '--out', path.join(dir, 'gray-cli.onnx')], { env: { EDGETUNE_CACHE: path.join(dir, 'cache') } });
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('  preprocess     8x8 grayscale, range [0,255], mean [127.5], std [127.5], cover crop 1\n');
  });
});

describe('TFLite import: L2_NORMALIZATION before the classifier (Coral l2norm models)', () => {
  it('converts it, matches LiteRT, and the embedding is still the pooled features', async () => {
    const bytes = grayscaleModel(true);
    const file = path.join(tempDir('edgetune-import-'), 'l2norm.tflite');
    writeFileSync(file, bytes);
    const { model, card } = importTflite(bytes);
    expect(card.layer.embedding).toMatchObject({ tensor: 'pooled', dims: 4 });
    expect(card.layer.outputKind).toBe('probabilities');
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file);
    const r = rng(59);
    let worst = 0;
    for (let k = 0; k < 3; k++) {
      const x = Float32Array.from({ length: 64 }, () => r());
      worst = Math.max(worst, maxAbsDiff(await runOrt(session, x, [1, 1, 8, 8]), await oracle.run(x, [1, 8, 8, 1])));
    }
    console.log(`l2norm TFLite vs LiteRT: max |Δp| ${worst.toExponential(2)}`);
    // measured: max |Δp| 1.86e-8
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('TFLite import: an NCHW input transposed to NHWC inside (PyTorch → TFLite)', () => {
  it('takes the NCHW input as it is, converts TRANSPOSE and L2_NORMALIZATION, matches LiteRT', async () => {
    const bytes = nchwModel();
    const file = path.join(tempDir('edgetune-import-'), 'nchw.tflite');
    writeFileSync(file, bytes);
    const { model, card } = importTflite(bytes);
    expect(card.sourceInput).toMatchObject({ name: 'input.1', shape: [1, 3, 6, 6], layout: 'NCHW' });
    expect(card.layer.preprocess).toMatchObject({ width: 6, height: 6, channels: 3, layout: 'NCHW' });
    expect(model.graph.input[0]!.type?.tensorType?.shape?.dim?.map((d) => Number(d.dimValue))).toEqual([1, 3, 6, 6]);
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file);
    const r = rng(43);
    let worst = 0;
    let spread = Infinity;
    for (let k = 0; k < 3; k++) {
      const x = Float32Array.from({ length: 108 }, () => r());
      // the same NCHW floats to both: no layout change on either side
      const ref = await oracle.run(x, [1, 3, 6, 6]);
      worst = Math.max(worst, maxAbsDiff(await runOrt(session, x, [1, 3, 6, 6]), ref));
      spread = Math.min(spread, Math.max(...ref) - Math.min(...ref));
    }
    console.log(`NCHW TFLite vs LiteRT: max |Δp| ${worst.toExponential(2)}, output spread ≥ ${spread.toFixed(3)}`);
    // not a degenerate output: the three probabilities differ (measured spread ≥ 0.595)
    expect(spread).toBeGreaterThan(0.05);
    // measured: max |Δp| 3.58e-7
    expect(worst).toBeLessThan(1e-5);
  });
});

/**
 * Float input quantized at once (TFLiteConverter's full-integer model with float I/O): x [1,6,6,3] →
 * QUANTIZE (`q` type and parameters) → CONV_2D (uint8/int8, per-tensor) → DEQUANTIZE → y [1,6,6,4].
 */
function floatIoModel(q: { type: number; scale: number; zeroPoint: number }): Uint8Array {
  const r = rng(47);
  const T: BuildTensor[] = [];
  const x = T.push({ name: 'x', shape: [1, 6, 6, 3] }) - 1;
  const xq = T.push({ name: 'x_quantized', shape: [1, 6, 6, 3], type: q.type, quantization: { scale: [q.scale], zeroPoint: [q.zeroPoint] } }) - 1;
  const signed = q.type === 9;
  const wdata = signed ? new Uint8Array(Int8Array.from({ length: 108 }, () => Math.round(r() * 100)).buffer) : Uint8Array.from({ length: 108 }, () => Math.round((r() + 1) * 100));
  const w = T.push({ name: 'w', shape: [4, 3, 3, 3], type: q.type, data: wdata, quantization: { scale: [0.01], zeroPoint: [signed ? 0 : 100] } }) - 1;
  const b = T.push({ name: 'b', shape: [4], type: 2, data: i32([10, -20, 0, 5]), quantization: { scale: [q.scale * 0.01], zeroPoint: [0] } }) - 1;
  const c = T.push({ name: 'conv', shape: [1, 6, 6, 4], type: q.type, quantization: { scale: [0.02], zeroPoint: signed ? [0] : [128] } }) - 1;
  const y = T.push({ name: 'y', shape: [1, 6, 6, 4] }) - 1;
  const O: BuildOperator[] = [
    { code: 114, inputs: [x], outputs: [xq] },
    { code: 3, inputs: [xq, w, b], outputs: [c], options: { type: 1, fields: [[0, 'i8', 0], [1, 'i32', 1], [2, 'i32', 1], [3, 'i8', 0]] } },
    { code: 6, inputs: [c], outputs: [y] },
  ];
  return buildTflite(T, O, [x], [y]);
}

describe('TFLite import: a float input quantized at once says its preprocessing by its calibrated range', () => {
  it('[0, 1] → x/255, [−1, 1] → x/127.5 − 1, another range → assumed; the card then feeds what LiteRT gets', async () => {
    // uint8, scale 1/255, zero point 0: range [0, 1] (a model trained on x/255; the card assumed x/127.5 − 1 before)
    const unit = importTflite(floatIoModel({ type: 3, scale: 1 / 255, zeroPoint: 0 }));
    expect(unit.card.layer.preprocess).toMatchObject({ mean: [0, 0, 0], std: [255, 255, 255] });
    expect(unit.card.preprocessSource).toBe('input-quantization');
    expect(unit.card.notes).toContain('float input quantized at once: its calibrated range [0.000, 1.000] is that of x/255 (pixels in [0, 1])');
    // int8, scale 1/127.5, zero point −1: range [−0.996, 1.004]
    const pm1 = importTflite(floatIoModel({ type: 9, scale: 1 / 127.5, zeroPoint: -1 }));
    expect(pm1.card.layer.preprocess).toMatchObject({ mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] });
    expect(pm1.card.preprocessSource).toBe('input-quantization');
    // a range that is no pixel scaling ([−2.36, 2.74]): assumed, as before
    const other = importTflite(floatIoModel({ type: 9, scale: 0.02, zeroPoint: -10 }));
    expect(other.card.preprocessSource).toBe('assumed');

    // pixels through the card's x/255 reach the int8 kernel as LiteRT's x/255 floats do
    const bytes = floatIoModel({ type: 3, scale: 1 / 255, zeroPoint: 0 });
    const file = path.join(tempDir('edgetune-import-'), 'float-io.tflite');
    writeFileSync(file, bytes);
    const session = await ortSession(unit.model);
    const oracle = await tfliteOracle(file);
    const r = rng(53);
    let worst = 0;
    let levels = 0;
    for (let k = 0; k < 3; k++) {
      const px = Uint8Array.from({ length: 108 }, () => Math.floor((r() + 1) * 127.5));
      const nchw = new Float32Array(108);
      for (let q = 0; q < 36; q++) for (let ch = 0; ch < 3; ch++) nchw[ch * 36 + q] = (px[q * 3 + ch]! - 0) / 255;
      const ours = await runOrt(session, nchw, [1, 3, 6, 6]);
      const ref = await oracle.run(Float32Array.from(px, (v) => v / 255), [1, 6, 6, 3]);
      const refNchw = new Float32Array(144);
      for (let q = 0; q < 36; q++) for (let ch = 0; ch < 4; ch++) refNchw[ch * 36 + q] = ref[q * 4 + ch]!;
      worst = Math.max(worst, maxAbsDiff(ours, refNchw));
      levels = Math.max(levels, new Set(ref).size);
    }
    console.log(`float-I/O uint8 conv vs LiteRT: max |Δ| ${worst.toFixed(4)} (output step 0.02), ${levels} output levels`);
    expect(levels).toBeGreaterThan(20); // not saturated (measured: 103 distinct output values)
    // measured: max |Δ| 0.0000 (bit-identical)
    expect(worst).toBeLessThanOrEqual(0.02 + 1e-6);
  });
});

/**
 * Cropping as Keras writes it (Cropping2D in NASNet-mobile, slicing in custom models): x [1,6,6,4] →
 * STRIDED_SLICE begin [0,1,0,0] end [0,5,6,3] strides [1,1,2,1] with begin/end masks on the batch axis →
 * [1,4,3,3] → SLICE begin [0,0,1,0] size [-1,2,-1,-1] → [1,2,2,3] → RESHAPE [1,12] → SOFTMAX.
 * `shrink`: a shrink-axis mask on the strided slice (refused).
 */
function sliceModel(shrink = 0): Uint8Array {
  const T: BuildTensor[] = [];
  const t = (name: string, shape: number[], data?: Uint8Array, type = 0) => T.push({ name, shape, data, type }) - 1;
  const x = t('x', [1, 6, 6, 4]);
  const b1 = t('begin', [4], i32([0, 1, 0, 0]), 2);
  const e1 = t('end', [4], i32([0, 5, 6, 3]), 2);
  const s1 = t('strides', [4], i32([1, 1, 2, 1]), 2);
  const c1 = t('cropped', [1, 4, 3, 3]);
  const b2 = t('slice_begin', [4], i32([0, 0, 1, 0]), 2);
  const z2 = t('slice_size', [4], i32([-1, 2, -1, -1]), 2);
  const c2 = t('sliced', [1, 2, 2, 3]);
  const shape = t('shape', [2], i32([1, 12]), 2);
  const flat = t('flat', [1, 12]);
  const y = t('probs', [1, 12]);
  const O: BuildOperator[] = [
    { code: 45, inputs: [x, b1, e1, s1], outputs: [c1], options: { type: 32, fields: [[0, 'i32', 1], [1, 'i32', 1], [4, 'i32', shrink]] } },
    { code: 65, inputs: [c1, b2, z2], outputs: [c2] },
    { code: 22, inputs: [c2, shape], outputs: [flat], options: { type: 17, fields: [[0, 'ints', [1, 12]]] } },
    { code: 25, inputs: [flat], outputs: [y], options: { type: 9, fields: [[0, 'f32', 1]] } },
  ];
  return buildTflite(T, O, [x], [y]);
}

describe('TFLite import: STRIDED_SLICE and SLICE (cropping)', () => {
  it('match LiteRT; a shrink-axis mask is refused naming it', async () => {
    const bytes = sliceModel();
    const file = path.join(tempDir('edgetune-import-'), 'slice.tflite');
    writeFileSync(file, bytes);
    const { model } = importTflite(bytes);
    const session = await ortSession(model);
    const oracle = await tfliteOracle(file);
    const r = rng(61);
    let worst = 0;
    let spread = Infinity;
    for (let k = 0; k < 3; k++) {
      const nhwc = Float32Array.from({ length: 144 }, () => r() * 3);
      const nchw = new Float32Array(144);
      for (let q = 0; q < 36; q++) for (let c = 0; c < 4; c++) nchw[c * 36 + q] = nhwc[q * 4 + c]!;
      const ref = await oracle.run(nhwc, [1, 6, 6, 4]);
      worst = Math.max(worst, maxAbsDiff(await runOrt(session, nchw, [1, 4, 6, 6]), ref));
      spread = Math.min(spread, Math.max(...ref) - Math.min(...ref));
    }
    console.log(`slice TFLite vs LiteRT: max |Δp| ${worst.toExponential(2)}, output spread ≥ ${spread.toFixed(3)}`);
    expect(spread).toBeGreaterThan(0.05); // not a degenerate output (measured spread ≥ 0.285)
    // measured: max |Δp| 2.98e-8 (the end mask on the batch axis matters: its end is 0)
    expect(worst).toBeLessThan(1e-6);
    expect(thrown(() => importTflite(sliceModel(2))).message).toBe('Unsupported TFLite operator STRIDED_SLICE (operator 0, producing tensor "cropped"): shrink axis mask 2');
  });
});

describe('TFLite import: inputs that are no image are refused at import', () => {
  it('a vector (micro_speech [1,1960] int8), a 1024-channel feature map (Coral head_layers), a 5-channel map', () => {
    const one = (shape: number[], type: number, q?: { scale: number[]; zeroPoint: number[] }) =>
      buildTflite(
        [
          { name: 'features', shape, type, quantization: q },
          { name: 'y', shape, type, quantization: q },
        ],
        [{ code: 19, inputs: [0], outputs: [1] }],
        [0],
        [1],
      );
    const rule = 'not an image; edgetune imports image models, whose input is [1, height, width, channels] (NHWC) with 1 or 3 channels';
    const speech = thrown(() => importTflite(one([1, 1960], 9, { scale: [0.1], zeroPoint: [-128] })));
    expect(speech.code).toBe('EMODEL');
    expect(speech.message).toBe(`the input "features" is INT8 [1,1960]: ${rule}`);
    expect(thrown(() => importTflite(one([1, 1, 1, 1024], 3, { scale: [0.02], zeroPoint: [0] }))).message).toBe(`the input "features" is UINT8 [1,1,1,1024]: ${rule}`);
    expect(thrown(() => importTflite(one([1, 4, 4, 5], 0))).message).toBe(`the input "features" is FLOAT32 [1,4,4,5]: ${rule}`);
  });
});

/** A zip of `files`, stored (no compression), as TFLite metadata packs associated files after the flatbuffer (CRCs left 0: the reader does not check them). */
function storedZip(files: [string, string][]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, text] of files) {
    const n = enc.encode(name);
    const data = enc.encode(text);
    const local = new Uint8Array(30 + n.length + data.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 10, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, n.length, true);
    local.set(n, 30);
    local.set(data, 30 + n.length);
    const cd = new Uint8Array(46 + n.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 10, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, n.length, true);
    cv.setUint32(42, offset, true);
    cd.set(n, 46);
    locals.push(local);
    central.push(cd);
    offset += local.length;
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return Uint8Array.from([...locals.flatMap((l) => [...l]), ...central.flatMap((c) => [...c]), ...eocd]);
}

describe('TFLite import: a packed label file', () => {
  it('is read even when a label holds "/" (labels name outputs, not folders)', () => {
    const fruit = new Uint8Array(readFileSync(shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite')));
    const labels = ['FRESH/APPLE', 'FRESH/BANANA', 'FRESH/ORANGE', 'ROTTEN/APPLE', 'ROTTEN/ORANGE', 'ROTTEN/BANANA'];
    const zip = storedZip([['labels.txt', labels.join('\n') + '\n']]);
    const packed = new Uint8Array(fruit.length + zip.length);
    packed.set(fruit);
    packed.set(zip, fruit.length);
    // before: parseLabels refused "FRESH/APPLE" and the loop's bare catch dropped the file: labels "0".."5"
    expect(importTflite(packed).card.layer.labels).toEqual(labels);
  });
});
