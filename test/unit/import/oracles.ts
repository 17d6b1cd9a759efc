// Test helpers for the importers: the reference runtimes of the source formats, run offline in Node
// (LiteRT.js — `@litertjs/core`, wasm — for .tflite; tfjs layers on the CPU backend for tfjs exports),
// photo preprocessing with sharp, and an onnxruntime-node session on converted models.
//
// LiteRT.js is written for browsers: it loads its wasm glue with a <script> tag (or importScripts in a
// worker). Here `importScripts` is provided (the glue runs in this context through node:vm), `self`
// is globalThis and `Module.locateFile` points at the package's wasm folder; the Emscripten glue then
// runs its Node path. Measured: loading ≈ 0.1 s, MobileNetV2 quant ≈ 0.1 s per image.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { repoRoot } from '../../helpers.js';
import { encodeModel, type OnnxModel } from '../../../runtime/onnx/index.js';
import { parseTflite } from '../../../runtime/onnx/import/index.js';

const LITERT_WASM = path.join(repoRoot, 'node_modules', '@litertjs', 'core', 'wasm') + path.sep;

type LiteRtModule = typeof import('@litertjs/core');
let litert: Promise<LiteRtModule> | undefined;

/** LiteRT.js, loaded once per test file. */
export function loadLiteRtNode(): Promise<LiteRtModule> {
  litert ??= (async () => {
    const g = globalThis as Record<string, unknown>;
    g.self ??= globalThis;
    g.__dirname ??= LITERT_WASM.slice(0, -1);
    g.__filename ??= path.join(LITERT_WASM, 'litert.js');
    g.require ??= createRequire(LITERT_WASM);
    g.importScripts = (url: string) => {
      const file = url.startsWith('file:') ? new URL(url).pathname : url;
      vm.runInThisContext(readFileSync(file, 'utf8'), { filename: file });
    };
    g.Module = { locateFile: (p: string) => LITERT_WASM + p };
    const mod = await import('@litertjs/core');
    await mod.loadLiteRt(LITERT_WASM);
    return mod;
  })();
  return litert;
}

export interface TfliteOracle {
  /** Run on one NHWC input (typed as the model's input wants); returns the first output as float. */
  run(input: Float32Array | Uint8Array | Int8Array, shape: number[]): Promise<Float32Array>;
  outputDtype: string;
}

/**
 * A compiled .tflite model on LiteRT.js's CPU (wasm/XNNPack) path. A quantized output comes back
 * as its integers; `dequantize` (the output tensor's scale and zero point) turns it into floats.
 */
export async function tfliteOracle(file: string, dequantize?: { scale: number; zeroPoint: number }): Promise<TfliteOracle> {
  const lt = await loadLiteRtNode();
  const model = await lt.loadAndCompile(new Uint8Array(readFileSync(file)), { accelerator: 'wasm' });
  const out = model.getOutputDetails()[0]!;
  return {
    outputDtype: out.dtype,
    async run(input, shape) {
      const t = new lt.Tensor(input as Float32Array<ArrayBuffer>, shape);
      const results = await model.run([t]);
      t.delete();
      const r = results[0]!;
      const data = r.toTypedArray() as ArrayLike<number>;
      const copy = dequantize ? Float32Array.from(data, (q) => (q - dequantize.zeroPoint) * dequantize.scale) : Float32Array.from(data);
      for (const x of results) x.delete();
      return copy;
    },
  };
}

/** Scale and zero point of a .tflite file's first output (read with the importer's own flatbuffer reader). */
export function outputQuantization(file: string): { scale: number; zeroPoint: number } {
  const sg = parseTflite(new Uint8Array(readFileSync(file))).subgraphs[0]!;
  const q = sg.tensors[sg.outputs[0]!]!.quantization!;
  return { scale: q.scale[0]!, zeroPoint: q.zeroPoint[0]! };
}

/** RGB HWC pixels of a photo: EXIF-rotated, shorter side resized to `size`, centre-cropped (sharp 'cover'). */
export async function photoPixels(file: string, size: number): Promise<Uint8Array> {
  const { data } = await sharp(file).rotate().removeAlpha().resize(size, size, { fit: 'cover', position: 'centre' }).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** HWC uint8 → NCHW float with (x − mean)/std (the card's preprocessing with range [0, 255]). */
export function toNchw(pixels: Uint8Array, size: number, mean: number, std: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = (pixels[p * 3 + c]! - mean) / std;
  return out;
}

/** HWC uint8 → NHWC float with (x − mean)/std. */
export function toNhwcFloat(pixels: Uint8Array, mean: number, std: number): Float32Array {
  return Float32Array.from(pixels, (x) => (x - mean) / std);
}

export async function ortSession(model: OnnxModel, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, interOpNumThreads: 1, ...options });
}

/** Run a one-input session on an NCHW float input; returns the named (default first) output. */
export async function runOrt(s: ort.InferenceSession, x: Float32Array, dims: number[], output?: string): Promise<Float32Array> {
  const r = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, dims) });
  return r[output ?? s.outputNames[0]!]!.data as Float32Array;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
