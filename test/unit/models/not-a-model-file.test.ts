// Files a user takes for a model that are something else, found on real repositories: a Git LFS
// pointer (a repository cloned without its LFS objects: the .onnx / .tflite / weights.bin holds
// "version https://git-lfs.github.com/spec/v1"), an HTML page saved as the model (sangeeta1998/wasi-gpu
// commits a 295 KB GitHub page as mobilenetv2-7.onnx), and a tfjs *graph* model (COLVERTYETY/cifar100edge's
// model_js/model.json). Before: "not a readable ONNX model (… wrong wire type 2 …)", "Corrupt TFLite
// file: file identifier is …", "tfjs weights file holds 132 bytes, but … needs 2154032", "model.json has
// no modelTopology with a class_name". Each now says what the file is and what to do.

import { describe, it, expect } from 'vitest';
import { copyFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { shared, tempDir } from '../../helpers.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { describeModel } from '../../../models/describe.js';
import { importModelFile } from '../../../models/import.js';
import { importTfjsLayers, type TfjsModelJson } from '../../../runtime/onnx/import/index.js';

/** An LFS pointer as git-lfs writes it, for the shared TM fruit model_unquant.tflite (its real oid and size). */
const POINTER = 'version https://git-lfs.github.com/spec/v1\noid sha256:4c6d191853a0cfc29d0cd4f7763e2161df3b9efafea91507bdb7bfd3ee5e0b2f\nsize 2090332\n';
const LFS = `a Git LFS pointer (${POINTER.length} bytes standing for a 2090332-byte file), not the model itself: fetch the file with "git lfs pull" in its repository, or download it directly`;
const PAGE = '\n\n\n\n<!DOCTYPE html>\n<html\n  lang="en"\n  data-color-mode="auto">\n<head><title>models/mobilenetv2-7.onnx at main</title></head><body></body></html>\n';
const HTML = `an HTML page (${PAGE.length} bytes), not a model: a web page was saved in place of the file; download the raw file (on GitHub: the "Download raw file" button, or a raw.githubusercontent.com address)`;

async function rejection(p: Promise<unknown>): Promise<EdgetuneError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof EdgetuneError) return e;
    throw e;
  }
  throw new Error('expected an EdgetuneError');
}

describe('a file in place of a model says what it is', () => {
  const dir = tempDir('edgetune-placeholder-');

  it('an LFS pointer or an HTML page named .onnx or .tflite', async () => {
    for (const [name, text, why] of [
      ['pointer.onnx', POINTER, LFS],
      ['pointer.tflite', POINTER, LFS],
      ['page.onnx', PAGE, HTML],
      ['page.tflite', PAGE, HTML],
    ] as const) {
      const file = path.join(dir, name);
      writeFileSync(file, text);
      const e = await rejection(describeModel(file));
      expect(e.code, name).toBe('EMODEL');
      expect(e.message, name).toBe(`${file}: ${why}`);
    }
  });

  it('a tfjs model.json or its weights.bin that is an LFS pointer', async () => {
    const tm = shared('models', 'teachable-machine', 'twins-tfjs');
    const json = path.join(dir, 'lfs-json', 'model.json');
    mkdirSync(path.dirname(json));
    writeFileSync(json, POINTER);
    expect((await rejection(importModelFile(json))).message).toBe(`${json}: ${LFS}`);

    const weights = path.join(dir, 'lfs-weights');
    mkdirSync(weights);
    for (const f of ['model.json', 'metadata.json']) copyFileSync(path.join(tm, f), path.join(weights, f));
    writeFileSync(path.join(weights, 'weights.bin'), POINTER);
    const e = await rejection(importModelFile(path.join(weights, 'model.json')));
    expect(e.message).toBe(`${path.join(weights, 'model.json')}: tfjs weights file "weights.bin" is ${LFS}`);
  });

  it('a Teachable Machine pose model says what it is (was: "expected an image input [null, H, W, C], found [null,14739]")', () => {
    // the structure of 1YAmmm/pose-led-control's my_model (tfjs-layers 1.7.4, @teachablemachine/pose 0.8.6)
    const dense = (name: string, units: number, activation: string, extra: object = {}) => ({ class_name: 'Dense', config: { units, activation, use_bias: name === 'dense_Dense7', name, ...extra } });
    const json = {
      modelTopology: {
        class_name: 'Sequential',
        config: { name: 'sequential_10', layers: [dense('dense_Dense7', 100, 'relu', { batch_input_shape: [null, 14739], dtype: 'float32' }), { class_name: 'Dropout', config: { rate: 0.5, name: 'dropout_Dropout4' } }, dense('dense_Dense8', 2, 'softmax')] },
        keras_version: 'tfjs-layers 1.7.4',
        backend: 'tensor_flow.js',
      },
      weightsManifest: [
        {
          paths: ['weights.bin'],
          weights: [
            { name: 'dense_Dense7/kernel', shape: [14739, 100], dtype: 'float32' },
            { name: 'dense_Dense7/bias', shape: [100], dtype: 'float32' },
            { name: 'dense_Dense8/kernel', shape: [100, 2], dtype: 'float32' },
          ],
        },
      ],
    } as unknown as TfjsModelJson;
    const weights = { 'weights.bin': new Uint8Array(4 * (14739 * 100 + 100 + 200)) };
    const metadata = { tmVersion: '0.8.6', packageName: '@teachablemachine/pose', modelName: 'my-pose-model', labels: ['led1', 'led2'] };
    let err: unknown;
    try {
      importTfjsLayers(json, weights, { metadata });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EdgetuneError);
    expect((err as EdgetuneError).message).toBe(
      "model.json is a Teachable Machine pose model (@teachablemachine/pose, input [null,14739]): it classifies PoseNet keypoints, not images; edgetune imports Teachable Machine's Image Project exports",
    );
  });

  it('a tfjs graph model (tensorflowjs_converter from a SavedModel) is named as such', async () => {
    const file = path.join(dir, 'graph', 'model.json');
    mkdirSync(path.dirname(file));
    // the head of COLVERTYETY/cifar100edge's model_js/model.json
    writeFileSync(
      file,
      JSON.stringify({
        format: 'graph-model',
        generatedBy: '2.11.0',
        convertedBy: 'TensorFlow.js Converter v4.1.0',
        signature: { inputs: { input: { name: 'input:0', dtype: 'DT_FLOAT' } } },
        modelTopology: { node: [{ name: 'input', op: 'Placeholder' }], library: {}, versions: { producer: 1286 } },
        weightsManifest: [],
      }),
    );
    const e = await rejection(importModelFile(file));
    expect(e.code).toBe('EMODEL');
    expect(e.message).toBe(
      `${file}: a TensorFlow.js graph model (format "graph-model", converted from a SavedModel or a frozen graph): edgetune imports tfjs layers models (Keras, Teachable Machine); convert the original model to ONNX (tf2onnx) or TFLite instead`,
    );
  });
});
