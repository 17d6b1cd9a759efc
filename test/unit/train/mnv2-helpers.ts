// Real-asset helpers for the tail-training tests: the fp32 MobileNetV2 backbone, a beans-dev subset
// decoded with sharp (shorter side → 224, centre crop, RGB, x/255, ImageNet mean/std: DEFAULT_SPEC),
// and cut activations from the frozen part, run once per image with onnxruntime-node.

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { decodeImage } from '../../../runtime/image/decode.js';
import { decodeModel, type OnnxModel } from '../../../runtime/onnx/model.js';
import { DEFAULT_SPEC, toTensor } from '../../../runtime/image/preprocess.js';
import { concatFloat32 } from '../../../runtime/core/tensor.js';
import { shared } from '../../helpers.js';
import { ortSession } from './grad-helpers.js';

export const MNV2 = 'mobilenetv2-12-fp32-rebuilt.onnx';
export const EMBEDDING = 'features';

export function loadBackbone(): OnnxModel {
  return decodeModel(readFileSync(shared('models', MNV2)));
}

/** Image files of a split, class folders sorted, at most `perClass` each (sorted names, so deterministic). */
export function listSplit(split: 'train' | 'val', perClass = Infinity): { files: string[]; labels: Int32Array; classes: string[] } {
  const root = shared('datasets', 'beans-dev', split);
  const classes = readdirSync(root).filter((d) => !d.startsWith('.')).sort();
  const files: string[] = [];
  const labels: number[] = [];
  classes.forEach((c, k) => {
    const names = readdirSync(path.join(root, c)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, perClass);
    for (const f of names) {
      files.push(path.join(root, c, f));
      labels.push(k);
    }
  });
  return { files, labels: Int32Array.from(labels), classes };
}

/** Preprocessed NCHW float32 input batch for the files. */
export async function preprocess(files: readonly string[]): Promise<Float32Array> {
  const imgs = await Promise.all(files.map((f) => decodeImage(f, DEFAULT_SPEC)));
  return toTensor(imgs, DEFAULT_SPEC).data as Float32Array;
}

/** Run a model with one input over `x` ([n, ...per] rows) in batches; returns the named output, concatenated. */
export async function runBatched(model: OnnxModel | Uint8Array, input: string, output: string, x: Float32Array, per: number[], batch = 16): Promise<Float32Array> {
  const s = await ortSession(model, 2);
  const size = per.reduce((a, b) => a * b, 1);
  const n = x.length / size;
  const parts: Float32Array[] = [];
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const out = await s.run({ [input]: { type: 'float32', data: x.subarray(i * size, (i + b) * size), dims: [b, ...per] } }, [output]);
    parts.push(out[output]!.data as Float32Array);
  }
  await s.dispose();
  return concatFloat32(parts);
}
