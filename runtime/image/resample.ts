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
  /** Source index of each tap (edge-clamped), `stride` per output sample. */
  index: Int32Array;
  weights: Float32Array;
  /** Taps used by each output sample (≤ stride; the rest have weight 0). */
  count: Int32Array;
  stride: number;
}

/**
 * Weights for `n` output samples that start at resized coordinate `first`, on a source axis of `size`
 * pixels resized by `factor` (resized pixels per source pixel): output sample i's centre is resized
 * point first + i + ½, i.e. source point (first + i + ½)/factor; the kernel is stretched by the
 * shrink when downsizing (antialiasing) and edge pixels are repeated.
 */
function taps(size: number, factor: number, first: number, n: number, kernel: ResampleKernel): Taps {
  const { radius, f } = KERNELS[kernel];
  const scale = 1 / factor;
  const stretch = Math.max(1, scale);
  const support = radius * stretch;
  const stride = Math.ceil(support) * 2 + 1;
  const index = new Int32Array(n * stride);
  const weights = new Float32Array(n * stride);
  const count = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = (first + i + 0.5) * scale - 0.5;
    const lo = Math.ceil(c - support);
    const hi = Math.min(Math.floor(c + support), lo + stride - 1);
    let sum = 0;
    for (let j = lo; j <= hi; j++) {
      const k = i * stride + j - lo;
      index[k] = j < 0 ? 0 : j >= size ? size - 1 : j;
      sum += weights[k] = f((j - c) / stretch);
    }
    for (let j = lo; j <= hi; j++) weights[i * stride + j - lo]! /= sum;
    count[i] = hi - lo + 1;
  }
  return { index, weights, count, stride };
}

/**
 * Resize/crop/letterbox `src` (1–4 channels) to `spec.width × spec.height` exactly as fitGeometry
 * says. Letterbox bands are 0 in every colour channel. A 4th channel (alpha) is not resampled but
 * set to 255: flatten transparency before (the page draws on white). Values are rounded to the nearest integer and clamped to 0..255. Default kernel: lanczos3,
 * sharp's: on winml_dog.jpg at 224² (crop 0.875) it lands within mean 0.36 / max 5 levels of sharp,
 * the triangle kernel within 1.65 / 31 (test/unit/image/pixel-paths.test.ts).
 */
export function fitImage(src: HwcImage, spec: FitSpec, kernel: ResampleKernel = 'lanczos3'): HwcImage {
  const { width: sw, height: sh, channels: C, data } = src;
  const W = spec.width;
  const H = spec.height;
  const g = fitGeometry(sw, sh, spec);
  const out = new Uint8Array(W * H * C);
  if (C === 4) for (let i = 3; i < out.length; i += 4) out[i] = 255;
  const cw = g.crop.width;
  const ch = g.crop.height;
  const tx = taps(sw, g.scale.x, g.crop.x, cw, kernel);
  const ty = taps(sh, g.scale.y, g.crop.y, ch, kernel);
  // Horizontal pass of the source rows the vertical pass reads: `rows` holds row r0 + k at k·cw·C.
  let r0 = sh;
  let r1 = -1;
  for (let y = 0; y < ch; y++) {
    for (let k = 0; k < ty.count[y]!; k++) {
      const r = ty.index[y * ty.stride + k]!;
      if (r < r0) r0 = r;
      if (r > r1) r1 = r;
    }
  }
  // Colour channels resampled (alpha, the 4th, is 255: callers flatten transparency first).
  const K = C === 4 ? 3 : C;
  const line = cw * K;
  const rows = new Float32Array((r1 - r0 + 1) * line);
  for (let y = r0; y <= r1; y++) {
    const rowIn = y * sw * C;
    let o = (y - r0) * line;
    for (let x = 0; x < cw; x++) {
      const t0 = x * tx.stride;
      const n = tx.count[x]!;
      if (K === 3) {
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        for (let k = 0; k < n; k++) {
          const w = tx.weights[t0 + k]!;
          const p = rowIn + tx.index[t0 + k]! * C;
          a0 += w * data[p]!;
          a1 += w * data[p + 1]!;
          a2 += w * data[p + 2]!;
        }
        rows[o++] = a0;
        rows[o++] = a1;
        rows[o++] = a2;
      } else {
        for (let c = 0; c < K; c++) {
          let a = 0;
          for (let k = 0; k < n; k++) a += tx.weights[t0 + k]! * data[rowIn + tx.index[t0 + k]! * C + c]!;
          rows[o++] = a;
        }
      }
    }
  }
  // Vertical pass, one output row at a time, into the output (after the letterbox offset).
  const sum = new Float32Array(line);
  for (let y = 0; y < ch; y++) {
    sum.fill(0);
    const t0 = y * ty.stride;
    for (let k = 0; k < ty.count[y]!; k++) {
      const w = ty.weights[t0 + k]!;
      const p = (ty.index[t0 + k]! - r0) * line;
      for (let i = 0; i < line; i++) sum[i]! += w * rows[p + i]!;
    }
    const o = ((g.pad.top + y) * W + g.pad.left) * C;
    for (let x = 0; x < cw; x++) {
      for (let c = 0; c < K; c++) {
        const v = sum[x * K + c]!;
        out[o + x * C + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
      }
    }
  }
  return { data: out, width: W, height: H, channels: C };
}
