// tfjs layers import of the real Teachable Machine export twins-tfjs (a Sequential nesting a
// Sequential that wraps the functional MobileNetV2 "model2", then a Sequential dense head): the
// converted ONNX against tfjs itself (tfjs-layers on the CPU backend, loaded from memory) on a few
// photos; the card from metadata.json; weight-manifest errors on temp copies.

import { describe, it, expect, beforeAll } from 'vitest';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';
import { shared, tempDir } from '../../helpers.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { decodeTfjsWeights, importTfjsLayers, type ImportResult, type TfjsModelJson, type TfjsWeightSpec } from '../../../runtime/onnx/import/index.js';
import { argmax, maxAbsDiff, ortSession, photoPixels, runOrt, toNchw, toNhwcFloat } from './oracles.js';

const DIR = shared('models', 'teachable-machine', 'twins-tfjs');
const modelJson = JSON.parse(readFileSync(path.join(DIR, 'model.json'), 'utf8')) as TfjsModelJson;
const weightsBin = new Uint8Array(readFileSync(path.join(DIR, 'weights.bin')));
const metadata = JSON.parse(readFileSync(path.join(DIR, 'metadata.json'), 'utf8')) as { labels: string[]; tmVersion: string };

describe('tfjs import: Teachable Machine twins (nested Sequential / functional MobileNetV2)', () => {
  let conv: ImportResult;
  let tfModel: LayersModel;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    conv = importTfjsLayers(modelJson, { 'weights.bin': weightsBin }, { metadata });
    const specs = modelJson.weightsManifest.flatMap((g) => g.weights);
    tfModel = await loadLayersModel(
      tf.io.fromMemory({
        modelTopology: modelJson.modelTopology as object,
        weightSpecs: specs as tf.io.WeightsManifestEntry[],
        weightData: weightsBin.slice().buffer,
      }),
    );
  });

  it('describes the export: labels from metadata.json, Teachable Machine preprocessing, softmax output, pooled 1280-d embedding', () => {
    const c = conv.card;
    expect(c.layer.inputName).toBe('input');
    expect(c.sourceInput).toEqual({ name: 'input_1', shape: [1, 224, 224, 3], layout: 'NHWC', dtype: 'float32' });
    expect(c.layer.labels).toEqual(['twin1', 'twin2']);
    expect(c.layer.labelOffset).toBe(0);
    expect(c.preprocessSource).toBe('teachable-machine');
    expect(c.layer.preprocess).toEqual({
      width: 224,
      height: 224,
      channels: 3,
      layout: 'NCHW',
      colorOrder: 'RGB',
      range: [0, 255],
      mean: [127.5, 127.5, 127.5],
      std: [127.5, 127.5, 127.5],
      resize: 'cover',
      crop: 1,
      dtype: 'float32',
    });
    expect([c.layer.outputName, c.output, c.layer.outputKind]).toEqual(['dense_Dense4', { dims: [1, 2], extractor: false }, 'probabilities']);
    expect(c.layer.embedding).toMatchObject({ tensor: 'global_average_pooling2d_GlobalAveragePooling2D2', dims: 1280 });
  });

  it('matches tfjs (CPU backend) on photos', async () => {
    const session = await ortSession(conv.model);
    let worst = 0;
    for (const file of ['winml_dog.jpg', 'winml_hummingbird.jpg', 'winml_cat.jpg']) {
      const px = await photoPixels(shared('camera', file), 224);
      const ours = await runOrt(session, toNchw(px, 224, 127.5, 127.5), [1, 3, 224, 224]);
      const x = tf.tensor4d(toNhwcFloat(px, 127.5, 127.5), [1, 224, 224, 3]);
      const y = tfModel.predict(x) as tf.Tensor;
      const ref = (await y.data()) as Float32Array;
      x.dispose();
      y.dispose();
      expect(argmax(ours), file).toBe(argmax(ref));
      worst = Math.max(worst, maxAbsDiff(ours, ref));
    }
    console.log(`twins tfjs vs tfjs-cpu: max |Δp| ${worst.toExponential(2)}`);
    // measured: max |Δp| 8.34e-7 over the three photos
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('tfjs weights', () => {
  const spec = (name: string, shape: number[], dtype: string, quantization?: TfjsWeightSpec['quantization']): TfjsWeightSpec => ({ name, shape, dtype, ...(quantization ? { quantization } : {}) });

  it('dequantizes uint8/uint16 (q·scale + min) and float16, reads int32, concatenates shards in order', () => {
    const manifest = [
      {
        paths: ['a.bin', 'b.bin'],
        weights: [
          spec('u8', [3], 'float32', { dtype: 'uint8', scale: 0.5, min: -1 }),
          spec('u16', [1], 'float32', { dtype: 'uint16', scale: 0.25, min: 1 }),
          spec('f16', [2], 'float32', { dtype: 'float16' }),
          spec('i32', [1], 'int32'),
          spec('f32', [1], 'float32'),
        ],
      },
    ];
    const bytes = new Uint8Array(3 + 2 + 4 + 4 + 4);
    const dv = new DataView(bytes.buffer);
    bytes.set([0, 2, 4], 0);
    dv.setUint16(3, 8, true);
    dv.setUint16(5, 0x3c00, true); // 1.0
    dv.setUint16(7, 0xc000, true); // −2.0
    dv.setInt32(9, -7, true);
    dv.setFloat32(13, 3.5, true);
    const w = decodeTfjsWeights(manifest, { 'a.bin': bytes.subarray(0, 6), 'b.bin': bytes.subarray(6) });
    expect(Array.from(w.get('u8')!.data)).toEqual([-1, 0, 1]);
    expect(Array.from(w.get('u16')!.data)).toEqual([3]);
    expect(Array.from(w.get('f16')!.data)).toEqual([1, -2]);
    expect(Array.from(w.get('i32')!.data)).toEqual([-7]);
    expect(Array.from(w.get('f32')!.data)).toEqual([3.5]);
  });

  /** What a caller does with an export folder: model.json, plus every shard the manifest names that exists. */
  function importFolder(dir: string) {
    const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as TfjsModelJson;
    const files = new Map<string, Uint8Array>();
    for (const p of json.weightsManifest.flatMap((g) => g.paths)) {
      if (existsSync(path.join(dir, p))) files.set(p, new Uint8Array(readFileSync(path.join(dir, p))));
    }
    return importTfjsLayers(json, files);
  }

  it('missing weights.bin (a temp copy of the export without it): an EINPUT error naming the file', () => {
    const dir = tempDir('edgetune-import-');
    copyFileSync(path.join(DIR, 'model.json'), path.join(dir, 'model.json'));
    expect(() => importFolder(dir)).toThrow(
      new EdgetuneError('EINPUT', 'tfjs weights file "weights.bin" is missing (named by the model.json weight manifest)', { subject: 'weights.bin' }),
    );
  });

  it('short weights.bin (a temp copy cut at 1 MB): the file and both byte counts', () => {
    const dir = tempDir('edgetune-import-');
    copyFileSync(path.join(DIR, 'model.json'), path.join(dir, 'model.json'));
    writeFileSync(path.join(dir, 'weights.bin'), weightsBin.subarray(0, 1_000_000));
    expect(() => importFolder(dir)).toThrow(
      new EdgetuneError('EINPUT', 'tfjs weights file "weights.bin" holds 1000000 bytes, but the model.json weight manifest needs 2154032', { subject: 'weights.bin' }),
    );
    // the complete copy converts
    copyFileSync(path.join(DIR, 'weights.bin'), path.join(dir, 'weights.bin'));
    expect(importFolder(dir).card.layer.labels).toBeUndefined();
  });

  it('an unsupported layer is named with its class and index', () => {
    const edited = JSON.parse(JSON.stringify(modelJson)) as TfjsModelJson;
    const head = (edited.modelTopology as { config: { layers: { config: { layers: { class_name: string }[] } }[] } }).config.layers[1]!.config.layers;
    head[0]!.class_name = 'LSTM';
    let message = '';
    try {
      importTfjsLayers(edited, { 'weights.bin': weightsBin });
    } catch (e) {
      message = (e as Error).message;
    }
    // layer 155: the 0-based position among leaf layers in execution order (154 backbone layers + the pooling come first)
    expect(message).toBe('Unsupported tfjs layer LSTM "dense_Dense3" (layer 155): no converter for this layer class');
  });
});
