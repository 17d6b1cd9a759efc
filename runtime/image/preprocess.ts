// Preprocessing spec → tensor. Browser-safe (no Node APIs): the Node path decodes with sharp
// (runtime/image/decode.ts), the web kiosk with canvas, and both end here, where HWC uint8 pixels become an
// NCHW (or NHWC) float tensor in one typed-array pass: out = pixel * a[c] + b[c], with the value
// range, mean, std and channel order folded into a and b.

import { invalidParameter, isPositiveInteger } from '../core/errors.js';
import { float32ToFloat16, type TensorData } from '../core/tensor.js';
import type { PreprocessSpec } from '../core/preprocess-spec.js';

/** An 8-bit image in HWC order, as sharp's raw output and canvas ImageData give it. */
export interface HwcImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: number;
}

/** The preprocessing spec (schema and type in core/preprocess-spec.ts, the contract's one definition). */
export type { PreprocessSpec } from '../core/preprocess-spec.js';

export const DEFAULT_SPEC: PreprocessSpec = {
  width: 224,
  height: 224,
  channels: 3,
  layout: 'NCHW',
  colorOrder: 'RGB',
  range: [0, 1],
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  resize: 'cover',
  crop: 1,
  dtype: 'float32',
};

export function checkSpec(spec: PreprocessSpec): PreprocessSpec {
  if (!isPositiveInteger(spec.width)) throw invalidParameter('width', 'positive integer', spec.width);
  if (!isPositiveInteger(spec.height)) throw invalidParameter('height', 'positive integer', spec.height);
  if (spec.channels !== 1 && spec.channels !== 3) throw invalidParameter('channels', '1 or 3', spec.channels);
  if (spec.mean.length !== spec.channels) throw invalidParameter('mean', `${spec.channels} values`, spec.mean);
  if (spec.std.length !== spec.channels || spec.std.some((s) => !(s > 0))) {
    throw invalidParameter('std', `${spec.channels} positive values`, spec.std);
  }
  if (!(spec.crop > 0 && spec.crop <= 1)) throw invalidParameter('crop', 'number in (0, 1]', spec.crop);
  return spec;
}

/** Per-channel affine coefficients, indexed by *source* channel (RGB order, or gray). */
export function affine(spec: PreprocessSpec): { a: Float32Array; b: Float32Array; order: number[] } {
  const [lo, hi] = spec.range;
  const scale = (hi - lo) / 255;
  const n = spec.channels;
  // order[k] = source channel feeding model channel k
  const order = n === 1 ? [0] : spec.colorOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    a[k] = scale / spec.std[k]!;
    b[k] = (lo - spec.mean[k]!) / spec.std[k]!;
  }
  return { a, b, order };
}

/**
 * Write one image into `out` at element `offset` (a batch slot). The image must already be
 * `spec.width × spec.height`; extra channels (alpha) are ignored; a 1-channel image feeding a
 * 3-channel model is replicated.
 */
export function writeImage(img: HwcImage, spec: PreprocessSpec, out: Float32Array, offset: number): void {
  const { width: W, height: H, channels: C } = spec;
  if (img.width !== W || img.height !== H) {
    throw invalidParameter('image size', `${W}x${H}`, `${img.width}x${img.height}`);
  }
  const { a, b, order } = affine(spec);
  const src = img.data;
  const sc = img.channels;
  const plane = W * H;
  for (let k = 0; k < C; k++) {
    const ch = sc === 1 ? 0 : order[k]!;
    const ak = a[k]!;
    const bk = b[k]!;
    if (spec.layout === 'NCHW') {
      let o = offset + k * plane;
      for (let p = ch; p < plane * sc; p += sc) out[o++] = src[p]! * ak + bk;
    } else {
      let o = offset + k;
      for (let p = ch; p < plane * sc; p += sc, o += C) out[o] = src[p]! * ak + bk;
    }
  }
}

/** Input dims for a batch of `n` images. */
export function inputDims(spec: PreprocessSpec, n: number): number[] {
  return spec.layout === 'NCHW' ? [n, spec.channels, spec.height, spec.width] : [n, spec.height, spec.width, spec.channels];
}

/** A batch of images → the model's input tensor (float32, or float16 when the model wants it). */
export function toTensor(images: readonly HwcImage[], spec: PreprocessSpec): TensorData {
  const per = spec.width * spec.height * spec.channels;
  const out = new Float32Array(per * images.length);
  images.forEach((img, i) => writeImage(img, spec, out, i * per));
  const dims = inputDims(spec, images.length);
  return spec.dtype === 'float16' ? { type: 'float16', data: float32ToFloat16(out), dims } : { type: 'float32', data: out, dims };
}
