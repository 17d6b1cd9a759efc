// A full-resolution HwcImage → the model's input size, in typed arrays, following fitGeometry
// (runtime/image/geometry.ts): resize, centre crop or letterbox. This is the browser page's
// resampler (runtime/kiosk/page/pixels.ts reads camera frames and photos 1:1 from a canvas and
// resizes here instead of in drawImage, whose filter is the browser's own), and it runs the same in
// Node, where test/unit/image/pixel-paths.test.ts compares it with the sharp and ffmpeg paths.
// Browser-safe: no Node APIs.

import { fitGeometry, type FitSpec } from './geometry.js';
import type { HwcImage } from './preprocess.js';

/**
 * Separable kernels, as functions of the distance in source pixels (after scaling for downsizing)
 * and their radius. `lanczos3` is libvips' default (sharp's resize kernel).
 */
const KERNELS = {
  triangle: { radius: 1, f: (x: number) => Math.max(0, 1 - Math.abs(x)) },
  lanczos3: {
    radius: 3,
    f: (x: number) => {
      if (x === 0) return 1;
      if (Math.abs(x) >= 3) return 0;
      const px = Math.PI * x;
      return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
    },
  },
} as const;
export type ResampleKernel = keyof typeof KERNELS;

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  /** Taps per output sample (the stride of `weights`). */
  stride: number;
}

/**
 * Weights for `n` output samples that start at resized coordinate `first`, on a source axis of `size`
 * pixels resized to `resized`: output sample i's centre is resized point first + i + ½, i.e. source
 * point (first + i + ½)·size/resized; the kernel is stretched by the shrink factor when downsizing
 * (antialiasing) and edge pixels are repeated.
 */
function taps(size: number, resized: number, first: number, n: number, kernel: ResampleKernel): Taps {
  const { radius, f } = KERNELS[kernel];
  const scale = size / resized;
  const stretch = Math.max(1, scale);
  const support = radius * stretch;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Float32Array(n * stride);
  for (let i = 0; i < n; i++) {
    const c = (first + i + 0.5) * scale - 0.5;
    const lo = Math.ceil(c - support);
    const hi = Math.min(Math.floor(c + support), lo + stride - 1);
    let sum = 0;
    for (let j = lo; j <= hi; j++) sum += weights[i * stride + j - lo] = f((j - c) / stretch);
    for (let j = lo; j <= hi; j++) weights[i * stride + j - lo]! /= sum;
    start[i] = lo;
    count[i] = hi - lo + 1;
  }
  return { start, count, weights, stride };
}

/**
 * Resize/crop/letterbox `src` (any channel count) to `spec.width × spec.height` exactly as
 * fitGeometry says. Letterbox bands are 0 in every colour channel, with alpha (the 4th channel)
 * 255. Values are rounded to the nearest integer and clamped to 0..255. Default kernel: triangle
 * (bilinear, stretched when downsizing) — chosen by measurement against sharp and ffmpeg, see
 * test/unit/image/pixel-paths.test.ts.
 */
export function fitImage(src: HwcImage, spec: FitSpec, kernel: ResampleKernel = 'triangle'): HwcImage {
  const { width: sw, height: sh, channels: C, data } = src;
  const W = spec.width;
  const H = spec.height;
  const g = fitGeometry(sw, sh, spec);
  const out = new Uint8Array(W * H * C);
  if (C === 4) for (let i = 3; i < out.length; i += 4) out[i] = 255;
  const cw = g.crop.width;
  const ch = g.crop.height;
  const tx = taps(sw, g.resized.width, g.crop.x, cw, kernel);
  const ty = taps(sh, g.resized.height, g.crop.y, ch, kernel);
  // Source rows the vertical pass reads (edge-clamped), and the horizontal pass of each into `rows`.
  const r0 = Math.max(0, ty.start[0]!);
  const r1 = Math.min(sh - 1, ty.start[ch - 1]! + ty.count[ch - 1]! - 1);
  const rows = new Float32Array((r1 - r0 + 1) * cw * C);
  for (let y = r0; y <= r1; y++) {
    const rowIn = y * sw * C;
    const rowOut = (y - r0) * cw * C;
    for (let x = 0; x < cw; x++) {
      const s = tx.start[x]!;
      const n = tx.count[x]!;
      const w0 = x * tx.stride;
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let k = 0; k < n; k++) {
          const j = s + k;
          acc += tx.weights[w0 + k]! * data[rowIn + (j < 0 ? 0 : j >= sw ? sw - 1 : j) * C + c]!;
        }
        rows[rowOut + x * C + c] = acc;
      }
    }
  }
  for (let y = 0; y < ch; y++) {
    const s = ty.start[y]!;
    const n = ty.count[y]!;
    const w0 = y * ty.stride;
    const o = ((g.pad.top + y) * W + g.pad.left) * C;
    for (let i = 0; i < cw * C; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) {
        const j = s + k;
        acc += ty.weights[w0 + k]! * rows[((j < r0 ? r0 : j > r1 ? r1 : j) - r0) * cw * C + i]!;
      }
      out[o + i] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
    }
  }
  return { data: out, width: W, height: H, channels: C };
}
