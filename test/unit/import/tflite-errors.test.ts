// TFLite importer errors and small pieces: truncated and mislabelled files (slices and edits of the
// real Coral model), an unsupported operator in a tiny model built with tflite-builder.ts
// (also the int8 deprecated_builtin_code vs int32 builtin_code rule), label files, SAME padding.

import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { buildTflite } from './tflite-builder.js';
import * as ort from 'onnxruntime-node';
import { shared, thrown } from '../../helpers.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { encodeModel } from '../../../runtime/onnx/index.js';
import { decideLabels, importTflite, parseLabels, parseTflite } from '../../../runtime/onnx/import/index.js';
import { samePadding, transposeData } from '../../../runtime/onnx/import/common.js';

const CORAL = new Uint8Array(readFileSync(shared('models', 'tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite')));

/**
 * A one-operator model: float input "x" [1, 2, 2, 1] (a 2×2 grayscale image) → op → float output "y"
 * [1, 2, 2, 1]. `deprecated` and `builtin` are the two OperatorCode fields (int8 slot 0, int32 slot 3);
 * options: a Pool/activation-free op.
 */
function tinyTflite(deprecated: number, builtin: number): Uint8Array {
  const t = (name: string) => ({ name, shape: [1, 2, 2, 1] });
  return buildTflite([t('x'), t('y')], [{ code: builtin, deprecatedCode: deprecated, inputs: [0], outputs: [1] }], [0], [1]);
}

describe('TFLite importer errors', () => {
  it('a truncated file (the real Coral model cut at 1 MB) names what lies outside the file', () => {
    const e = thrown(() => importTflite(CORAL.slice(0, 1_000_000)));
    expect(e.code).toBe('EMODEL');
    expect(e.message).toBe('Corrupt TFLite file: Model operator_codes at byte 3588868 (+4) lies outside the 1000000-byte file');
  });

  it('a file cut to its first 6 bytes, and one of 0 bytes', () => {
    expect(thrown(() => importTflite(CORAL.slice(0, 6))).message).toBe('Corrupt TFLite file: 6 bytes is too short for a flatbuffer');
    expect(thrown(() => importTflite(new Uint8Array(0))).message).toBe('Corrupt TFLite file: 0 bytes is too short for a flatbuffer');
  });

  it('bad magic: the identifier is named', () => {
    const bad = CORAL.slice();
    bad.set(new TextEncoder().encode('ONNX'), 4);
    const e = thrown(() => importTflite(bad));
    expect(e.message).toBe('Corrupt TFLite file: file identifier is "ONNX", not "TFL3" (not a TFLite model, or truncated at the start)');
  });

  it('a root offset pointing past the end', () => {
    const bad = CORAL.slice(0, 4096);
    new DataView(bad.buffer).setUint32(0, 100_000, true);
    expect(thrown(() => parseTflite(bad)).message).toBe('Corrupt TFLite file: Model at byte 100000 (+4) lies outside the 4096-byte file');
  });

  it('an unsupported operator: its name, index and the tensor it produces', () => {
    const sin = tinyTflite(66, 66);
    expect(thrown(() => importTflite(sin)).message).toBe('Unsupported TFLite operator SIN (operator 0, producing tensor "y")');
    // extended codes: deprecated_builtin_code holds 127 (PLACEHOLDER_FOR_GREATER_OP_CODES), builtin_code the real one
    expect(thrown(() => importTflite(tinyTflite(127, 150))).message).toBe('Unsupported TFLite operator BUILTIN_150 (operator 0, producing tensor "y")');
  });

  it('a graph compiled for an accelerator (Edge TPU, Ethos-U) says so and which file to import instead', () => {
    // the structure of Coral's *_edgetpu.tflite / tflite-micro's person_detect_vela.tflite: one CUSTOM operator holding the compiled graph
    const compiled = (custom: string) =>
      buildTflite(
        [
          { name: 'input', shape: [1, 2, 2, 3], type: 3, quantization: { scale: [1 / 128], zeroPoint: [128] } },
          { name: 'MobilenetV1/Predictions/Reshape_1', shape: [1, 2], type: 3, quantization: { scale: [1 / 256], zeroPoint: [0] } },
        ],
        [{ code: 32, customCode: custom, inputs: [0], outputs: [1] }],
        [0],
        [1],
      );
    const tpu = thrown(() => importTflite(compiled('edgetpu-custom-op')));
    expect(tpu.code).toBe('EMODEL');
    expect(tpu.message).toBe(
      'Unsupported TFLite operator CUSTOM(edgetpu-custom-op) (operator 0, producing tensor "MobilenetV1/Predictions/Reshape_1"): the model is compiled for the Coral Edge TPU (the operator holds the compiled graph, which only an Edge TPU runs); import the CPU .tflite it was compiled from (Coral publishes each model without the _edgetpu suffix too; Teachable Machine: the "Tensorflow Lite" export, Quantized or Floating point)',
    );
    expect(thrown(() => importTflite(compiled('ethos-u'))).message).toMatch(/CUSTOM\(ethos-u\) .*: the model is compiled by Vela for an Arm Ethos-U NPU .*; import the \.tflite given to Vela$/);
    // another custom operator is only named
    expect(thrown(() => importTflite(compiled('TFLite_Detection_PostProcess'))).message).toBe(
      'Unsupported TFLite operator CUSTOM(TFLite_Detection_PostProcess) (operator 0, producing tensor "MobilenetV1/Predictions/Reshape_1")',
    );
  });

  it('old files with only deprecated_builtin_code still convert (RELU6 = 21), and load in a bare session', async () => {
    const { model, card } = importTflite(tinyTflite(21, 0));
    const s = await ort.InferenceSession.create(encodeModel(model));
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from([-1, 3, 7, 0.5]), [1, 1, 2, 2]) });
    expect(Array.from(r[card.layer.outputName]!.data as Float32Array)).toEqual([0, 3, 6, 0.5]);
  });
});

describe('TFLite importer on damaged bytes', () => {
  it('500 random 1–4 byte corruptions of a small model: converts or throws an EdgetuneError, nothing else', () => {
    const good = tinyTflite(21, 21);
    let s = 99;
    const r = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    let converted = 0;
    for (let k = 0; k < 500; k++) {
      const bad = good.slice();
      for (let j = 0, n = 1 + Math.floor(r() * 4); j < n; j++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      try {
        importTflite(bad);
        converted++;
      } catch (e) {
        if (!(e instanceof EdgetuneError)) throw new Error(`trial ${k}: ${String(e)}`);
      }
    }
    // measured: 36 of 500 still convert (corruptions in names, padding or values); 464 are EdgetuneErrors
    expect(converted).toBeLessThan(250);
  });
});

describe('importer helpers', () => {
  it('labels: Teachable Machine `i NAME`, plain lines, CRLF, background at 0', () => {
    expect(parseLabels('0 FRESH APPLE\n1 FRESH BANANA\n', 'l.txt')).toEqual(['FRESH APPLE', 'FRESH BANANA']);
    expect(parseLabels('background\r\ntench, Tinca tinca\r\n\r\n', 'l.txt')).toEqual(['background', 'tench, Tinca tinca']);
    expect(parseLabels('1 one\n0 zero', 'l.txt')).toEqual(['1 one', '0 zero']); // not in order: kept as written
    const d = (labels: string[], outputs: number) => decideLabels({ labels, labelsFrom: 'flags', outputs, model: 'm.onnx' });
    expect(d(['background', 'a', 'b'], 3)).toMatchObject({ labels: ['background', 'a', 'b'], labelOffset: 0 });
    expect(d(['a', 'b'], 3)).toMatchObject({ labels: ['a', 'b'], labelOffset: 1 });
    expect(d(['a', 'b'], 2)).toMatchObject({ labels: ['a', 'b'], labelOffset: 0 });
  });

  it('SAME padding as TensorFlow: ceil(in/stride) outputs, the odd pixel at the end', () => {
    expect(samePadding(224, 3, 2)).toEqual([0, 1]);
    expect(samePadding(112, 3, 1)).toEqual([1, 1]);
    expect(samePadding(7, 1, 1)).toEqual([0, 0]);
    expect(samePadding(5, 4, 1)).toEqual([1, 2]);
    expect(samePadding(10, 3, 1, 2)).toEqual([2, 2]);
  });

  it('transposeData moves axes like numpy.transpose', () => {
    // [2, 3] → [3, 2]
    expect(Array.from(transposeData(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3], [1, 0]))).toEqual([1, 4, 2, 5, 3, 6]);
    // NHWC [1, 1, 2, 3] → NCHW [1, 3, 1, 2]
    expect(Array.from(transposeData(Int8Array.from([1, 2, 3, 4, 5, 6]), [1, 1, 2, 3], [0, 3, 1, 2]))).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
