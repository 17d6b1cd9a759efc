// Data augmentation, the browser-safe half: the `--augment` spec language, seeded per-view parameter
// sampling, and typed-array image operations (projective warp, colour jitter, grayscale, gaussian blur,
// gaussian noise, random erasing). runtime/train/node/augment-sharp.ts renders views with sharp in Node; the
// browser kiosk can render the same ViewParams with renderView() below (pure typed arrays).
//
// Spec: `none`, `default`, or a comma list of `op[:value]` (value is a number; a bare op uses its
// default value). Ops (value meaning, default):
//   flip (probability of a horizontal flip, 0.5)   vflip (probability of a vertical flip, 0.5)
//   rotate (max degrees ±, 15)                       shear (max degrees ±, 10)
//   crop (min area fraction of the evaluation crop kept: random resized crop, 0.6)
//   zoom (± scale, 0.15)       translate (max shift as a fraction of the crop, 0.1)
//   pad (max border as a fraction of the crop: zoom out with a filled border, 0.1)
//   perspective (corner displacement as a fraction of the size, 0.2)
//   brightness / contrast / saturation (± factor, 0.2)   hue (± degrees, 10)
//   color (brightness, contrast and saturation together, 0.2)
//   grayscale (probability, 0.1)   blur (max gaussian sigma in output pixels, 1.5; applied half the time)
//   noise (gaussian noise std as a fraction of 255, 0.03)
//   erase (probability of erasing one random rectangle, 0.25)
// `default` = flip,crop:0.7,rotate:10,color:0.2 (mild: with few images, strong augmentation hurts).

import { EdgetuneError, invalidParameter } from '../../core/errors.js';
import { createRng, hashString, type Rng } from '../../core/rng.js';
import { fitGeometry } from '../../image/geometry.js';
import { grayByte, grayInPlace, grayLevel } from '../../image/gray.js';
import type { HwcImage } from '../../image/preprocess.js';

export const AUGMENT_OPS = {
  flip: 0.5,
  vflip: 0.5,
  rotate: 15,
  shear: 10,
  crop: 0.6,
  zoom: 0.15,
  translate: 0.1,
  pad: 0.1,
  perspective: 0.2,
  brightness: 0.2,
  contrast: 0.2,
  saturation: 0.2,
  hue: 10,
  color: 0.2,
  grayscale: 0.1,
  blur: 1.5,
  noise: 0.03,
  erase: 0.25,
} as const;
export type AugmentOp = keyof typeof AUGMENT_OPS;

/** Valid value ranges per op. */
const RANGES: Record<AugmentOp, [number, number]> = {
  flip: [0, 1], vflip: [0, 1], rotate: [0, 180], shear: [0, 45], crop: [0.05, 1], zoom: [0, 0.9], translate: [0, 0.5],
  pad: [0, 1], perspective: [0, 0.9], brightness: [0, 0.95], contrast: [0, 0.95], saturation: [0, 1], hue: [0, 180],
  color: [0, 0.95], grayscale: [0, 1], blur: [0, 10], noise: [0, 1], erase: [0, 1],
};

export const DEFAULT_AUGMENT = 'flip,crop:0.7,rotate:10,color:0.2';

/** A parsed spec: op → value, in a canonical order (so equal specs have equal keys). */
export type AugmentSpec = Partial<Record<AugmentOp, number>>;

/** A bad augmentation spec: an EdgetuneError with code EARG (usage error, CLI exit code 2). */
export class AugmentError extends EdgetuneError {
  constructor(message: string) {
    super('EARG', message);
    this.name = 'AugmentError';
  }
}

/** Parse `none` / `default` / `flip,rotate:15,color:0.2,erase:0.25`. Throws AugmentError with a clear message. */
export function parseAugmentation(text: string): AugmentSpec {
  const t = text.trim();
  if (t === '' || t === 'none') return {};
  const spec: AugmentSpec = {};
  const names = Object.keys(AUGMENT_OPS) as AugmentOp[];
  for (const part of t.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (part === 'default') {
      Object.assign(spec, parseAugmentation(DEFAULT_AUGMENT));
      continue;
    }
    const [name, value, ...rest] = part.split(':');
    if (!(names as string[]).includes(name!)) {
      throw new AugmentError(`Unknown augmentation op "${name}": expected one of ${names.join(', ')} (or default, none)`);
    }
    const op = name as AugmentOp;
    let v: number = AUGMENT_OPS[op];
    if (value !== undefined || rest.length) {
      const n = rest.length ? NaN : Number(value);
      const [lo, hi] = RANGES[op];
      if (value === '' || !Number.isFinite(n) || n < lo || n > hi) {
        throw invalidParameter(`augmentation ${op}`, `number between ${lo} and ${hi}`, part.slice(name!.length + 1));
      }
      v = n;
    }
    spec[op] = v;
  }
  const out: AugmentSpec = {};
  for (const n of names) if (spec[n] !== undefined) out[n] = spec[n];
  return out;
}

/** Canonical text of a spec (`none` when empty). */
export function formatAugmentation(spec: AugmentSpec): string {
  const parts = Object.entries(spec).map(([k, v]) => `${k}:${v}`);
  return parts.length ? parts.join(',') : 'none';
}

export function isIdentitySpec(spec: AugmentSpec): boolean {
  return Object.keys(spec).length === 0;
}

/** One augmented view's parameters: everything random is drawn here, so rendering is deterministic. */
export interface ViewParams {
  hflip: boolean;
  vflip: boolean;
  /** Rotation in degrees (counter-clockwise) and shear angles, about the crop centre. */
  angle: number;
  shearX: number;
  shearY: number;
  /** Crop rectangle relative to the evaluation crop: centre offset (fractions of its size) and size scale. */
  cx: number;
  cy: number;
  sw: number;
  sh: number;
  /** Perspective: 4 output corners (TL, TR, BR, BL) displaced by these fractions (x, y pairs), or null. */
  corners: number[] | null;
  brightness: number;
  contrast: number;
  saturation: number;
  /** Hue rotation in degrees. */
  hue: number;
  grayscale: boolean;
  /** Gaussian blur sigma in output pixels (0 = none). */
  blur: number;
  /** Noise std in 0..255 units (0 = none) and its seed. */
  noise: number;
  noiseSeed: number;
  /** Erased rectangle in output fractions [x, y, w, h], or null; filled with seeded noise. */
  erase: number[] | null;
}

export const IDENTITY_VIEW: ViewParams = {
  hflip: false, vflip: false, angle: 0, shearX: 0, shearY: 0, cx: 0, cy: 0, sw: 1, sh: 1, corners: null,
  brightness: 1, contrast: 1, saturation: 1, hue: 0, grayscale: false, blur: 0, noise: 0, noiseSeed: 0, erase: null,
};

/** The rng for one view of one image: independent of every other image, so adding images changes nothing else. */
export function viewRng(seed: number, imageKey: string, view: number): Rng {
  return createRng(seed, `${imageKey}#${view}`);
}

/** Draw one view's parameters. */
export function sampleView(spec: AugmentSpec, rng: Rng): ViewParams {
  const p: ViewParams = { ...IDENTITY_VIEW };
  const sym = (a: number) => rng.uniform(-a, a);
  if (spec.flip !== undefined) p.hflip = rng.chance(spec.flip);
  if (spec.vflip !== undefined) p.vflip = rng.chance(spec.vflip);
  if (spec.rotate) p.angle = sym(spec.rotate);
  if (spec.shear) {
    p.shearX = sym(spec.shear);
    p.shearY = sym(spec.shear) / 2;
  }
  let scale = 1;
  let ratio = 1;
  if (spec.crop !== undefined && spec.crop < 1) {
    scale = Math.sqrt(rng.uniform(spec.crop, 1));
    ratio = Math.exp(rng.uniform(Math.log(3 / 4), Math.log(4 / 3)));
  }
  if (spec.zoom) scale *= 1 + sym(spec.zoom);
  if (spec.pad) scale *= 1 + 2 * rng.uniform(0, spec.pad);
  p.sw = scale * Math.sqrt(ratio);
  p.sh = scale / Math.sqrt(ratio);
  // a smaller crop can sit anywhere inside the evaluation crop
  const ox = (1 - p.sw) / 2;
  const oy = (1 - p.sh) / 2;
  if (ox > 0) p.cx = rng.uniform(-ox, ox);
  if (oy > 0) p.cy = rng.uniform(-oy, oy);
  if (spec.translate) {
    p.cx += sym(spec.translate);
    p.cy += sym(spec.translate);
  }
  if (spec.perspective) {
    const d = spec.perspective / 2;
    // each corner moves inward by up to d of the size
    p.corners = [rng.uniform(0, d), rng.uniform(0, d), -rng.uniform(0, d), rng.uniform(0, d), -rng.uniform(0, d), -rng.uniform(0, d), rng.uniform(0, d), -rng.uniform(0, d)];
  }
  const jitter = (a: number | undefined) => (a ? 1 + sym(a) : 1);
  p.brightness = jitter(spec.brightness ?? spec.color);
  p.contrast = jitter(spec.contrast ?? spec.color);
  p.saturation = jitter(spec.saturation ?? spec.color);
  if (spec.hue) p.hue = sym(spec.hue);
  if (spec.grayscale !== undefined) p.grayscale = rng.chance(spec.grayscale);
  if (spec.blur && rng.chance(0.5)) p.blur = rng.uniform(0.3, Math.max(0.3, spec.blur));
  if (spec.noise) {
    p.noise = rng.uniform(0, spec.noise) * 255;
    p.noiseSeed = rng.int(2 ** 31);
  }
  if (spec.erase !== undefined && rng.chance(spec.erase)) {
    const area = rng.uniform(0.02, 0.2);
    const r = Math.exp(rng.uniform(Math.log(0.3), Math.log(3.3)));
    const w = Math.min(1, Math.sqrt(area * r));
    const h = Math.min(1, Math.sqrt(area / r));
    p.erase = [rng.uniform(0, 1 - w), rng.uniform(0, 1 - h), w, h];
    p.noiseSeed ||= rng.int(2 ** 31);
  }
  return p;
}

/** Stable text of view parameters (cache keys). Numbers rounded to 1e-6. */
export function viewKey(p: ViewParams): string {
  return JSON.stringify(p, (_k, v) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v));
}

export function isIdentityView(p: ViewParams): boolean {
  return viewKey(p) === viewKey(IDENTITY_VIEW);
}

// ---------------------------------------------------------------------------------------------------
// Geometry: 3×3 matrices (row-major) mapping output pixel centres to source pixel coordinates.

export type Mat3 = number[];

export function mul3(a: Mat3, b: Mat3): Mat3 {
  const o = new Array<number>(9).fill(0);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) o[r * 3 + c]! += a[r * 3 + k]! * b[k * 3 + c]!;
  return o;
}

export function apply3(m: Mat3, x: number, y: number): [number, number] {
  const w = m[6]! * x + m[7]! * y + m[8]!;
  return [(m[0]! * x + m[1]! * y + m[2]!) / w, (m[3]! * x + m[4]! * y + m[5]!) / w];
}

/** Solve the homography taking 4 points `from` to 4 points `to` (x, y pairs). */
export function homography(from: number[], to: number[]): Mat3 {
  // 8×8 linear system A h = b, h33 = 1, Gaussian elimination with partial pivoting.
  const A: number[][] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y, u, v] = [from[2 * i]!, from[2 * i + 1]!, to[2 * i]!, to[2 * i + 1]!];
    A.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
    A.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
  }
  for (let c = 0; c < 8; c++) {
    let piv = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[piv]![c]!)) piv = r;
    [A[c], A[piv]] = [A[piv]!, A[c]!];
    for (let r = 0; r < 8; r++) {
      if (r === c) continue;
      const f = A[r]![c]! / A[c]![c]!;
      for (let k = c; k < 9; k++) A[r]![k]! -= f * A[c]![k]!;
    }
  }
  const h = A.map((row, i) => row[8]! / row[i]!);
  return [...h, 1];
}

/**
 * Output (outW×outH) → source (W×H) mapping of a view: flips, crop, rotation, shear (no perspective).
 * The view's window is placed relative to the evaluation crop, fitGeometry's `cover` frame
 * (runtime/image/geometry.ts) with centre-crop fraction `crop`.
 */
export function viewMatrix(p: ViewParams, W: number, H: number, outW: number, outH: number, crop: number): Mat3 {
  const e = fitGeometry(W, H, { width: outW, height: outH, resize: 'cover', crop }).frame;
  const w = e.width * p.sw;
  const h = e.height * p.sh;
  const cx = e.x + e.width / 2 + p.cx * e.width;
  const cy = e.y + e.height / 2 + p.cy * e.height;
  // output pixel → centred crop coordinates
  const toCrop: Mat3 = [w / outW, 0, -w / 2, 0, h / outH, -h / 2, 0, 0, 1];
  const t = (p.angle * Math.PI) / 180;
  const rot: Mat3 = [Math.cos(t), Math.sin(t), 0, -Math.sin(t), Math.cos(t), 0, 0, 0, 1];
  const shear: Mat3 = [1, Math.tan((p.shearX * Math.PI) / 180), 0, Math.tan((p.shearY * Math.PI) / 180), 1, 0, 0, 0, 1];
  const place: Mat3 = [1, 0, cx, 0, 1, cy, 0, 0, 1];
  let m = mul3(place, mul3(rot, mul3(shear, toCrop)));
  // flips mirror the source about its centre
  if (p.hflip) m = mul3([-1, 0, W, 0, 1, 0, 0, 0, 1], m);
  if (p.vflip) m = mul3([1, 0, 0, 0, -1, H, 0, 0, 1], m);
  return m;
}

/** Output → output mapping of the perspective distortion (identity when corners is null). */
export function perspectiveMatrix(corners: number[] | null, outW: number, outH: number): Mat3 {
  if (!corners) return [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const square = [0, 0, outW, 0, outW, outH, 0, outH];
  const quad = square.map((v, i) => v + corners[i]! * (i % 2 === 0 ? outW : outH));
  // the source square lands on the displaced quad; sampling needs quad → square
  return homography(quad, square);
}

/**
 * Projective resample (bilinear) of `src` into an outW×outH image: out(x, y) = src(M·(x+½, y+½) − ½).
 * Pixels that map outside the source get `fill` (per channel).
 */
export function warpImage(src: HwcImage, m: Mat3, outW: number, outH: number, fill: number[] = [0, 0, 0]): HwcImage {
  const C = src.channels;
  const out = new Uint8Array(outW * outH * C);
  const { width: W, height: H, data } = src;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const [sx, sy] = apply3(m, x + 0.5, y + 0.5);
      const fx = sx - 0.5;
      const fy = sy - 0.5;
      const o = (y * outW + x) * C;
      if (!(fx > -1 && fy > -1 && fx < W && fy < H)) {
        for (let c = 0; c < C; c++) out[o + c] = fill[c] ?? 0;
        continue;
      }
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      const ax = fx - x0;
      const ay = fy - y0;
      const xa = Math.max(0, x0);
      const xb = Math.min(W - 1, x0 + 1);
      const ya = Math.max(0, y0);
      const yb = Math.min(H - 1, y0 + 1);
      for (let c = 0; c < C; c++) {
        const v00 = data[(ya * W + xa) * C + c]!;
        const v01 = data[(ya * W + xb) * C + c]!;
        const v10 = data[(yb * W + xa) * C + c]!;
        const v11 = data[(yb * W + xb) * C + c]!;
        out[o + c] = Math.round((v00 * (1 - ax) + v01 * ax) * (1 - ay) + (v10 * (1 - ax) + v11 * ax) * ay);
      }
    }
  }
  return { data: out, width: outW, height: outH, channels: C };
}

// ---------------------------------------------------------------------------------------------------
// Colour and pixel operations (in place on 8-bit RGB(A)/gray HWC images)

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/**
 * Colour jitter as torchvision defines it: brightness multiplies, contrast blends with the mean gray
 * level, saturation blends with the per-pixel gray, hue rotates in YIQ space. Gray is the one
 * grayscale rule (runtime/image/gray.ts, libvips'); the 0.299/0.587/0.114 row below is the Y of the
 * YIQ transform that the hue rotation goes through and back, not a grayscale rule.
 */
export function adjustColor(img: HwcImage, o: { brightness?: number; contrast?: number; saturation?: number; hue?: number }): void {
  const { data, channels: C } = img;
  const n = img.width * img.height;
  const b = o.brightness ?? 1;
  const c = o.contrast ?? 1;
  const s = o.saturation ?? 1;
  const hue = ((o.hue ?? 0) * Math.PI) / 180;
  const gray = (i: number) => (C >= 3 ? grayByte(data[i]!, data[i + 1]!, data[i + 2]!) : data[i]!);
  let mean = 0;
  if (c !== 1) {
    for (let i = 0; i < n; i++) mean += gray(i * C) * b;
    mean /= n;
  }
  const cosH = Math.cos(hue);
  const sinH = Math.sin(hue);
  for (let i = 0; i < n; i++) {
    const o0 = i * C;
    const k = C >= 3 ? 3 : 1;
    const px = [0, 0, 0];
    for (let j = 0; j < k; j++) px[j] = data[o0 + j]! * b;
    if (c !== 1) for (let j = 0; j < k; j++) px[j] = (px[j]! - mean) * c + mean;
    if (k === 3 && s !== 1) {
      const g = grayLevel(px[0]!, px[1]!, px[2]!);
      for (let j = 0; j < 3; j++) px[j] = g + (px[j]! - g) * s;
    }
    if (k === 3 && hue !== 0) {
      const Y = 0.299 * px[0]! + 0.587 * px[1]! + 0.114 * px[2]!;
      const I = 0.596 * px[0]! - 0.274 * px[1]! - 0.322 * px[2]!;
      const Q = 0.211 * px[0]! - 0.523 * px[1]! + 0.312 * px[2]!;
      const I2 = I * cosH - Q * sinH;
      const Q2 = I * sinH + Q * cosH;
      px[0] = Y + 0.956 * I2 + 0.621 * Q2;
      px[1] = Y - 0.272 * I2 - 0.647 * Q2;
      px[2] = Y - 1.106 * I2 + 1.703 * Q2;
    }
    for (let j = 0; j < k; j++) data[o0 + j] = clamp(px[j]!);
  }
}

/** The grayscale op: every pixel's R, G, B become its gray level (runtime/image/gray.ts), in place. */
export function grayscale(img: HwcImage): void {
  grayInPlace(img);
}

/** Separable gaussian blur (kernel radius ⌈3σ⌉, edges clamped). */
export function gaussianBlur(img: HwcImage, sigma: number): void {
  if (!(sigma > 0)) return;
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = Float64Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const ks = k.reduce((a, b) => a + b, 0);
  for (let i = 0; i < k.length; i++) k[i]! /= ks;
  const { width: W, height: H, channels: C, data } = img;
  const tmp = new Float64Array(W * H * C);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) acc += k[i + r]! * data[(y * W + Math.min(W - 1, Math.max(0, x + i))) * C + c]!;
        tmp[(y * W + x) * C + c] = acc;
      }
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) acc += k[i + r]! * tmp[(Math.min(H - 1, Math.max(0, y + i)) * W + x) * C + c]!;
        data[(y * W + x) * C + c] = clamp(acc);
      }
}

/** Additive gaussian noise with std `sigma` (0..255 units), seeded. */
export function addNoise(img: HwcImage, sigma: number, seed: number): void {
  if (!(sigma > 0)) return;
  const rng = createRng(seed, 'noise');
  const { data } = img;
  for (let i = 0; i < data.length; i++) data[i] = clamp(data[i]! + rng.normal() * sigma);
}

/** Random erasing: the rectangle [x, y, w, h] (fractions) filled with seeded uniform noise. */
export function eraseRect(img: HwcImage, rect: number[], seed: number): void {
  const rng = createRng(seed, 'erase');
  const { width: W, height: H, channels: C, data } = img;
  const x0 = Math.round(rect[0]! * W);
  const y0 = Math.round(rect[1]! * H);
  const x1 = Math.min(W, x0 + Math.max(1, Math.round(rect[2]! * W)));
  const y1 = Math.min(H, y0 + Math.max(1, Math.round(rect[3]! * H)));
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) for (let c = 0; c < C; c++) data[(y * W + x) * C + c] = rng.int(256);
}

/** The pixel-level ops every renderer applies after geometry and colour: perspective, noise, erasing. */
export function finishView(img: HwcImage, p: ViewParams): HwcImage {
  let out = img;
  if (p.corners) out = warpImage(img, perspectiveMatrix(p.corners, img.width, img.height), img.width, img.height);
  if (p.noise) addNoise(out, p.noise, p.noiseSeed);
  if (p.erase) eraseRect(out, p.erase, p.noiseSeed);
  return out;
}

/**
 * Render a view with typed arrays only (the browser path): geometry as one projective resample from
 * the full source image, then colour jitter, grayscale, blur, perspective, noise and erasing.
 * `crop` is the model's centre-crop fraction (PreprocessSpec.crop).
 */
export function renderView(src: HwcImage, p: ViewParams, outW: number, outH: number, crop = 1): HwcImage {
  const m = viewMatrix(p, src.width, src.height, outW, outH, crop);
  const img = warpImage(src, m, outW, outH);
  adjustColor(img, p);
  if (p.grayscale) grayscale(img);
  if (p.blur) gaussianBlur(img, p.blur);
  return finishView(img, p);
}

/** A stable 32-bit key of an augmentation spec + seed, for cache file names. */
export function specHash(spec: AugmentSpec, seed: number): number {
  return hashString(`${formatAugmentation(spec)}|${seed}`);
}
