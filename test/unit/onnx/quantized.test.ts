// "Is it int8?", one rule (runtime/onnx/quantized.ts), on the real models: the ONNX zoo's QOperator
// MobileNetV2, the QDQ graphs the TFLite importer writes for Coral's uint8 and Teachable Machine's int8
// files, and the float models beside them; the refusals that rule drives.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { refuseQuantized } from '../../../calibration/plan.js';
import { importTflite } from '../../../runtime/onnx/import/index.js';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { isQuantizedGraph, quantizedOperators } from '../../../runtime/onnx/quantized.js';
import { planUnfreeze } from '../../../runtime/train/finetune-tail.js';
import { shared } from '../../helpers.js';

const onnx = (f: string) => decodeModel(new Uint8Array(readFileSync(shared('models', f))));
const tflite = (...p: string[]) => importTflite(new Uint8Array(readFileSync(shared('models', ...p)))).model;

describe('is it int8?', () => {
  it('QOperator (the zoo int8 MobileNetV2) and QDQ (imported Coral uint8, Teachable Machine int8) are int8; the float files are not', () => {
    const zoo = quantizedOperators(onnx('mobilenetv2-12-int8.onnx').graph);
    // counted in the file: 1 QuantizeLinear in, 52 QLinearConv, 11 QLinearAdd, 1 QLinearGlobalAveragePool, 1 QLinearMatMul, 2 DequantizeLinear
    expect(Object.fromEntries(zoo)).toEqual({ QuantizeLinear: 1, QLinearConv: 52, QLinearAdd: 11, QLinearGlobalAveragePool: 1, DequantizeLinear: 2, QLinearMatMul: 1 });
    expect(isQuantizedGraph(tflite('tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite').graph)).toBe(true);
    const tm = tflite('teachable-machine', 'fruit-tflite', 'model.tflite');
    expect(quantizedOperators(tm.graph).get('DequantizeLinear')).toBeGreaterThan(0);
    for (const f of ['mobilenetv2-12-fp32-rebuilt.onnx', 'squeezenet1.1_fp32_from_winml_fp16.onnx', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx']) expect(isQuantizedGraph(onnx(f).graph)).toBe(false);
    expect(isQuantizedGraph(tflite('teachable-machine', 'fruit-tflite', 'model_unquant.tflite').graph)).toBe(false);
  });

  it('drives the refusals: quantize names the operators, --unfreeze names the fp32 twin, for both int8 forms', () => {
    expect(() => refuseQuantized(onnx('mobilenetv2-12-int8.onnx').graph, 'zoo.onnx')).toThrow('zoo.onnx: model is already quantized (1 QuantizeLinear, 52 QLinearConv, 11 QLinearAdd, 1 QLinearGlobalAveragePool, 2 DequantizeLinear, 1 QLinearMatMul); quantize its float original instead');
    const tm = tflite('teachable-machine', 'fruit-tflite', 'model.tflite');
    expect(() => refuseQuantized(tm.graph, 'tm.onnx')).toThrow(/^tm\.onnx: model is already quantized \(\d+ (QuantizeLinear|DequantizeLinear)/);
    expect(() => planUnfreeze(tm, 'sequential_1/global_average_pooling2d_GlobalAveragePooling2D1/Mean', 1, 'model.tflite')).toThrow(
      "--unfreeze trains the backbone's float weights, and model.tflite is int8: use its fp32 twin (e.g. --model mobilenetv2-fp32 for mobilenetv2-int8), then --int8 to quantize the result",
    );
  });
});
