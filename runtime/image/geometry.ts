// The one resize/crop geometry every pixel path follows — sharp (runtime/image/decode.ts), ffmpeg
// (devices/sources/ffmpeg.ts), GStreamer on Jetson (devices/sources/csi.ts), augmentation
// (runtime/train/augment/ops.ts, runtime/train/node/augment-sharp.ts) and the browser page
// (runtime/kiosk/page/pixels.ts through runtime/image/resample.ts) — so the model sees the same
// pixels everywhere. Browser-safe: no Node APIs.

import { invalidParameter } from '../core/errors.js';
import type { PreprocessSpec } from './preprocess.js';

/**
 * The most pixels (width × height) an image may declare before it is decoded: 100 000 000 (e.g.
 * 10000×10000, past any camera's photo). A larger one is refused as a possible decompression bomb, by
 * sharp's limitInputPixels in Node (runtime/image/decode.ts) and by the page before the browser decodes it.
 */
export const MAX_IMAGE_PIXELS = 100_000_000;

/** The refusal of an image over `limit` pixels, in the one wording every path gives (after the file's name). */
export function pixelLimitMessage(width: number, height: number, limit = MAX_IMAGE_PIXELS): string {
  return `image is ${width}x${height} (${width * height} pixels), over the limit of ${limit} pixels; refused as a possible decompression bomb`;
}

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
   * Resized pixels per source pixel, per axis: resized.width / sw and resized.height / sh (each axis
   * mapped onto its rounded size, as ffmpeg's scale does; for cover and contain the two factors differ
   * by that rounding only).
   */
  scale: { x: number; y: number };
  /**
   * The resized side given exactly (the other follows the aspect, rounded): `width` or `height` for
   * cover and contain, `both` for fill. sharp is asked for this side only: it derives the other
   * with the same rounding (half up, checked on exact halves such as 513×512 → 257×256) and its pixels
   * stay those of its own cover/contain, which the reference accuracies were measured with.
   */
  fixed: 'width' | 'height' | 'both';
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
  /** The kept rectangle in source pixels (fractional): `crop` divided by `scale`. */
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
 * These are sharp's (libvips') rules, which the reference accuracies were measured with:
 *
 * - `fill`: resized to W × H (each axis by its own factor), nothing cropped.
 * - `cover`: with T = resizeTarget(spec) and s = max(Tw/sw, Th/sh), the constraining side becomes
 *   exactly its T, the other round(s·length) (half up); then the W × H window at
 *   `(ceil((resized.width − W)/2), ceil((resized.height − H)/2))` is kept — centred as libvips
 *   centres a crop, an odd remainder leaving the extra pixel before the window.
 * - `contain`: with s = min(W/sw, H/sh), the constraining side becomes exactly W or H, the other
 *   round(s·length) (at least 1), letterboxed with `pad.left = floor((W − width)/2)`,
 *   `pad.top = floor((H − height)/2)` as libvips embeds.
 *
 * ffmpeg's `scale=…:force_original_aspect_ratio=increase|decrease` sizes the same way (av_rescale
 * rounds half up), so an ffmpeg filter that does not know the source size yet still lands on these
 * pixels when it centres its crop with ceil. Throws EdgetuneError (EARG) for a source smaller than
 * 1 × 1.
 */
export function fitGeometry(sw: number, sh: number, spec: FitSpec): FitGeometry {
  if (!(sw >= 1 && sh >= 1)) throw invalidParameter('source size', 'at least 1x1', `${sw}x${sh}`);
  const W = spec.width;
  const H = spec.height;
  let rw: number;
  let rh: number;
  let crop: Rect;
  let fixed: FitGeometry['fixed'] = 'both';
  const pad = { left: 0, top: 0, right: 0, bottom: 0 };
  if (spec.resize === 'fill') {
    rw = W;
    rh = H;
    crop = { x: 0, y: 0, width: W, height: H };
  } else {
    // the target the image covers (cover) or fits inside (contain), and which side constrains
    const t = spec.resize === 'cover' ? resizeTarget(spec) : { width: W, height: H };
    const byWidth = spec.resize === 'cover' ? t.width / sw >= t.height / sh : t.width / sw <= t.height / sh;
    const s = byWidth ? t.width / sw : t.height / sh;
    rw = byWidth ? t.width : Math.max(1, Math.round(sw * s));
    rh = byWidth ? Math.max(1, Math.round(sh * s)) : t.height;
    fixed = byWidth ? 'width' : 'height';
    if (spec.resize === 'cover') {
      crop = { x: Math.ceil((rw - W) / 2), y: Math.ceil((rh - H) / 2), width: W, height: H };
    } else {
      crop = { x: 0, y: 0, width: rw, height: rh };
      pad.left = Math.floor((W - rw) / 2);
      pad.top = Math.floor((H - rh) / 2);
      pad.right = W - rw - pad.left;
      pad.bottom = H - rh - pad.top;
    }
  }
  // resized → source pixels, per axis (multiplied first, so that whole sides are exact)
  const sx = (v: number) => (v * sw) / rw;
  const sy = (v: number) => (v * sh) / rh;
  const scale = { x: rw / sw, y: rh / sh };
  const source = { x: sx(crop.x), y: sy(crop.y), width: sx(crop.width), height: sy(crop.height) };
  const frame = { x: sx(crop.x - pad.left), y: sy(crop.y - pad.top), width: sx(W), height: sy(H) };
  return { resized: { width: rw, height: rh }, scale, fixed, crop, pad, source, frame };
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
