// The one resize/crop geometry every pixel path follows — sharp (runtime/image/decode.ts), ffmpeg
// (devices/sources/ffmpeg.ts), GStreamer on Jetson (devices/sources/csi.ts), augmentation
// (runtime/train/augment/ops.ts, runtime/train/node/augment-sharp.ts) and the browser page
// (runtime/kiosk/page/pixels.ts through runtime/image/resample.ts) — so the model sees the same
// pixels everywhere. Browser-safe: no Node APIs.

import { invalidParameter } from '../core/errors.js';
import type { PreprocessSpec } from './preprocess.js';

/** The parts of a preprocessing spec that decide the geometry. */
export type FitSpec = Pick<PreprocessSpec, 'width' | 'height' | 'resize' | 'crop'>;

/** A rectangle: x, y = top-left corner, width, height; units given where it is used. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface FitGeometry {
  /** Integer size, in pixels, the whole source image is resized to (aspect kept for cover/contain). */
  resized: { width: number; height: number };
  /**
   * Integer rectangle of the resized image that is kept, in resized pixels: `cover` keeps the
   * centred `width × height` window, `fill` and `contain` keep all of it.
   */
  crop: Rect;
  /**
   * Integer letterbox bands, in output pixels, around the kept rectangle (`contain`; zeros otherwise).
   * left + crop.width + right = spec.width; top + crop.height + bottom = spec.height.
   */
  pad: { left: number; top: number; right: number; bottom: number };
  /** The kept rectangle in source pixels (fractional): `crop` mapped back through the per-axis scale. */
  source: Rect;
  /**
   * The source-pixel rectangle (fractional) the whole output frame covers: `source` for cover and fill;
   * for contain it reaches past the image edges, where the letterbox bands are. Output pixel centre
   * (x + ½, y + ½) samples source point (frame.x + (x + ½)·frame.width/W, frame.y + (y + ½)·frame.height/H).
   */
  frame: Rect;
}

/**
 * The image size before the centre crop: for `cover` with crop < 1 the image is resized to cover
 * round(W / crop) × round(H / crop) first (ImageNet's 0.875: 224 → 256), then cropped to W × H.
 * fill, contain and crop = 1 give W × H.
 */
export function resizeTarget(spec: FitSpec): { width: number; height: number } {
  if (spec.resize !== 'cover' || spec.crop >= 1) return { width: spec.width, height: spec.height };
  return { width: Math.round(spec.width / spec.crop), height: Math.round(spec.height / spec.crop) };
}

/**
 * Where a `sw × sh` source image (pixels, after EXIF rotation) lands in the model's `W × H` input.
 *
 * - `fill`: resized to W × H (aspect not kept), nothing cropped.
 * - `cover`: with T = resizeTarget(spec), resized to
 *   `max(Tw, round(Th·sw/sh)) × max(Th, round(Tw·sh/sw))` (the shorter side becomes T, the other
 *   keeps the aspect, rounded half up), then the W × H window at
 *   `(floor((resized.width − W)/2), floor((resized.height − H)/2))` is kept.
 * - `contain`: resized to `min(W, round(H·sw/sh)) × min(H, round(W·sh/sw))` (at least 1 × 1) and
 *   letterboxed: `pad.left = floor((W − width)/2)`, `pad.top = floor((H − height)/2)`.
 *
 * These are ffmpeg's rounding rules too (`scale=…:force_original_aspect_ratio=increase|decrease`
 * rounds with av_rescale, `crop`/`pad` centre with the truncating `(in − out)/2`), so an ffmpeg filter
 * that does not know the source size yet lands on the same pixels. Throws EdgetuneError (EARG) for a
 * source smaller than 1 × 1.
 */
export function fitGeometry(sw: number, sh: number, spec: FitSpec): FitGeometry {
  if (!(sw >= 1 && sh >= 1)) throw invalidParameter('source size', 'at least 1x1', `${sw}x${sh}`);
  const W = spec.width;
  const H = spec.height;
  let rw: number;
  let rh: number;
  let crop: Rect;
  const pad = { left: 0, top: 0, right: 0, bottom: 0 };
  if (spec.resize === 'cover') {
    const t = resizeTarget(spec);
    rw = Math.max(t.width, Math.round((t.height * sw) / sh));
    rh = Math.max(t.height, Math.round((t.width * sh) / sw));
    crop = { x: Math.floor((rw - W) / 2), y: Math.floor((rh - H) / 2), width: W, height: H };
  } else if (spec.resize === 'contain') {
    rw = Math.max(1, Math.min(W, Math.round((H * sw) / sh)));
    rh = Math.max(1, Math.min(H, Math.round((W * sh) / sw)));
    crop = { x: 0, y: 0, width: rw, height: rh };
    pad.left = Math.floor((W - rw) / 2);
    pad.top = Math.floor((H - rh) / 2);
    pad.right = W - rw - pad.left;
    pad.bottom = H - rh - pad.top;
  } else {
    rw = W;
    rh = H;
    crop = { x: 0, y: 0, width: W, height: H };
  }
  // resized → source pixels, per axis (multiplied first so that whole-image rectangles are exact)
  const sx = (v: number) => (v * sw) / rw;
  const sy = (v: number) => (v * sh) / rh;
  const source = { x: sx(crop.x), y: sy(crop.y), width: sx(crop.width), height: sy(crop.height) };
  const frame = { x: sx(crop.x - pad.left), y: sy(crop.y - pad.top), width: sx(W), height: sy(H) };
  return { resized: { width: rw, height: rh }, crop, pad, source, frame };
}

/**
 * `source` rounded to whole source pixels (hardware croppers such as nvvidconv take integer edges):
 * left/top/right/bottom are the rounded edges, clamped to the image.
 */
export function sourceEdges(g: FitGeometry, sw: number, sh: number): { left: number; top: number; right: number; bottom: number } {
  const s = g.source;
  return {
    left: Math.max(0, Math.round(s.x)),
    top: Math.max(0, Math.round(s.y)),
    right: Math.min(sw, Math.round(s.x + s.width)),
    bottom: Math.min(sh, Math.round(s.y + s.height)),
  };
}
