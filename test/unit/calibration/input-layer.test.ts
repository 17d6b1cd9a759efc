// quantizeModel's excludeInputLayer (what `finetune --int8` uses) on the real MobileNetV1-0.25: the
// unit of the layer reading the image (calibration/mixed.ts inputLayerUnit) is found on the model the
// quantizer decodes, kept float and reported, and the written model is byte for byte the one that
// passing that unit as `exclude` gives (the caller decoding the model a second time to find it, as
// runtime/train/node/int8.ts did).
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inputLayerUnit, quantizeModel } from '../../../calibration/index.js';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { shared, sharedDir, tempDir } from '../../helpers.js';

const resolve = { searchPath: [path.join(sharedDir, 'models'), path.join(sharedDir, 'labels')], download: false };

describe('excludeInputLayer on mobilenetv1-0.25-128', () => {
  it('keeps the input layer unit float, reports it, and writes what exclude: inputLayerUnit(model) writes', async () => {
    const dir = tempDir('edgetune-input-layer-');
    const common = { model: 'mobilenetv1-0.25-128', resolve, calib: shared('datasets', 'hymenoptera', 'train'), calibCount: 16, correctionImages: 0, threads: 1 };
    const r = await quantizeModel({ ...common, excludeInputLayer: true, out: path.join(dir, 'a.onnx') });
    // Conv2d_0 reads the image; its Relu6 (a Clip) is folded into it, so the unit is Conv2d_0 and the depthwise Conv reading its output
    const unit = ['TFLITE2ONNX_FAF_MobilenetV1/MobilenetV1/Conv2d_0/Relu6', 'TFLITE2ONNX_FAF_MobilenetV1/MobilenetV1/Conv2d_1_depthwise/Relu6'];
    expect(r.inputLayer).toEqual(unit);
    const written = decodeModel(readFileSync(r.out));
    const inits = new Set(written.graph.initializer.map((t) => t.name));
    const floatConvs = written.graph.node.filter((n) => n.opType === 'Conv' && inits.has(n.input[1]!)).map((n) => n.name);
    expect(floatConvs).toEqual(unit);
    const floatFile = shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx');
    const b = await quantizeModel({ ...common, exclude: inputLayerUnit(decodeModel(readFileSync(floatFile))), out: path.join(dir, 'b.onnx') });
    expect(b.inputLayer).toBeUndefined();
    expect(Buffer.compare(readFileSync(r.out), readFileSync(b.out))).toBe(0);
  }, 600_000);
});
