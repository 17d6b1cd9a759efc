// Pixel work in the page, the browser's stand-in for runtime/image.ts (sharp): camera frames and
// uploaded photos are drawn through a canvas with the same geometry the Node path uses — `cover`
// resizes the shorter side to the spec's resize target and centre-crops, `fill` stretches, `contain`
// letterboxes on black, transparency is flattened on white — and read back as an RGBA HwcImage that
// runtime/preprocess.ts `toTensor` turns into the model's input.

import { resizeTarget, type HwcImage, type PreprocessSpec } from '../runtime/preprocess.js';

export type Source = CanvasImageSource & { width?: number; height?: number };

/** Natural size of anything drawable. */
export function sourceSize(src: CanvasImageSource): { width: number; height: number } {
  if (typeof HTMLVideoElement !== 'undefined' && src instanceof HTMLVideoElement) return { width: src.videoWidth, height: src.videoHeight };
  if (typeof HTMLImageElement !== 'undefined' && src instanceof HTMLImageElement) return { width: src.naturalWidth, height: src.naturalHeight };
  const s = src as { width: number | SVGAnimatedLength; height: number | SVGAnimatedLength };
  return { width: typeof s.width === 'number' ? s.width : s.width.baseVal.value, height: typeof s.height === 'number' ? s.height : s.height.baseVal.value };
}

/** Where the model's input window lies in the source image, for a given spec (source pixels). */
export function cropRect(sw: number, sh: number, spec: PreprocessSpec): { sx: number; sy: number; sw: number; sh: number; dx: number; dy: number; dw: number; dh: number } {
  const W = spec.width;
  const H = spec.height;
  if (spec.resize === 'fill') return { sx: 0, sy: 0, sw, sh, dx: 0, dy: 0, dw: W, dh: H };
  if (spec.resize === 'contain') {
    const s = Math.min(W / sw, H / sh);
    const dw = Math.round(sw * s);
    const dh = Math.round(sh * s);
    return { sx: 0, sy: 0, sw, sh, dx: Math.floor((W - dw) / 2), dy: Math.floor((H - dh) / 2), dw, dh };
  }
  // cover: scale so the resize target is covered, then the W×H window at the centre of that target.
  const t = resizeTarget(spec);
  const s = Math.max(t.width / sw, t.height / sh);
  const cw = W / s;
  const ch = H / s;
  return { sx: (sw - cw) / 2, sy: (sh - ch) / 2, sw: cw, sh: ch, dx: 0, dy: 0, dw: W, dh: H };
}

let scratch: { canvas: HTMLCanvasElement | OffscreenCanvas; ctx: CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D } | undefined;
function context(w: number, h: number) {
  if (!scratch) {
    const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(w, h) : Object.assign(document.createElement('canvas'), { width: w, height: h });
    const ctx = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
    if (!ctx) throw new Error('this browser has no 2D canvas');
    scratch = { canvas, ctx };
  }
  if (scratch.canvas.width !== w) scratch.canvas.width = w;
  if (scratch.canvas.height !== h) scratch.canvas.height = h;
  return scratch.ctx;
}

/** A drawable → the model-size HwcImage (RGBA, 4 channels; grayscale models get luminance in every channel). */
export function toModelImage(src: CanvasImageSource, spec: PreprocessSpec, region?: { x: number; y: number; w: number; h: number }): HwcImage {
  const size = region ? { width: region.w, height: region.h } : sourceSize(src);
  if (!size.width || !size.height) throw new Error('image has no pixels yet');
  const r = cropRect(size.width, size.height, spec);
  const ctx = context(spec.width, spec.height);
  ctx.globalCompositeOperation = 'source-over';
  ctx.fillStyle = spec.resize === 'contain' ? '#000' : '#fff';
  ctx.fillRect(0, 0, spec.width, spec.height);
  if (spec.resize === 'contain') {
    // letterbox bands are black; the image itself is flattened on white first
    ctx.fillStyle = '#fff';
    ctx.fillRect(r.dx, r.dy, r.dw, r.dh);
  }
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  const ox = region?.x ?? 0;
  const oy = region?.y ?? 0;
  ctx.drawImage(src, ox + r.sx, oy + r.sy, r.sw, r.sh, r.dx, r.dy, r.dw, r.dh);
  const data = ctx.getImageData(0, 0, spec.width, spec.height).data;
  if (spec.channels === 1) {
    for (let i = 0; i < data.length; i += 4) {
      const y = Math.round(0.2126 * data[i]! + 0.7152 * data[i + 1]! + 0.0722 * data[i + 2]!);
      data[i] = data[i + 1] = data[i + 2] = y;
    }
  }
  return { data, width: spec.width, height: spec.height, channels: 4 };
}

/** Decode an image file/blob (EXIF orientation applied). Errors name the file. */
export async function decodeBlob(blob: Blob, name: string): Promise<ImageBitmap> {
  if (blob.size === 0) throw new Error(`${name}: empty file (0 bytes)`);
  try {
    return await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new Error(`${name}: not a supported image (the browser cannot decode it)`);
  }
}

/**
 * A stored sample: the source scaled so its shorter side is `side` px (never upscaled), as a JPEG
 * blob — small enough for IndexedDB, large enough for crop augmentation before the model crop.
 */
export async function sampleBlob(src: CanvasImageSource, side = 288, quality = 0.9): Promise<{ blob: Blob; width: number; height: number }> {
  const { width, height } = sourceSize(src);
  const s = Math.min(1, side / Math.min(width, height));
  const w = Math.max(1, Math.round(width * s));
  const h = Math.max(1, Math.round(height * s));
  const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(w, h) : Object.assign(document.createElement('canvas'), { width: w, height: h });
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(src, 0, 0, width, height, 0, 0, w, h);
  const blob =
    canvas instanceof OffscreenCanvas
      ? await canvas.convertToBlob({ type: 'image/jpeg', quality })
      : await new Promise<Blob>((res, rej) => (canvas as HTMLCanvasElement).toBlob((b) => (b ? res(b) : rej(new Error('canvas encode failed'))), 'image/jpeg', quality));
  return { blob, width: w, height: h };
}

/** One augmented view: geometry and colour changes applied while drawing (see web/teach.ts). */
export interface ViewParams {
  /** Fraction of the model's crop window kept (area), e.g. 0.6..1. */
  scale: number;
  /** Width/height ratio change of the window, e.g. 0.8..1.25. */
  aspect: number;
  /** Window centre shift as a fraction of the free room on each axis, −1..1. */
  dx: number;
  dy: number;
  flip: boolean;
  /** Degrees. */
  rotate: number;
  /** CSS filter factors, 1 = unchanged. */
  brightness: number;
  contrast: number;
  saturation: number;
}

/**
 * The model-size image of an augmented view of `src`: the spec's crop window is shrunk to `scale`
 * of its area with the given aspect change, shifted, rotated and flipped, then colour-jittered with
 * canvas filters; the result goes through the same toTensor as every other image.
 */
export function toAugmentedImage(src: CanvasImageSource, spec: PreprocessSpec, v: ViewParams): HwcImage {
  const size = sourceSize(src);
  const base = cropRect(size.width, size.height, spec);
  if (spec.resize !== 'cover') {
    // fill/contain models see the whole frame: augment within it
    base.sx = 0;
    base.sy = 0;
    base.sw = size.width;
    base.sh = size.height;
  }
  const s = Math.sqrt(Math.max(0.05, Math.min(1, v.scale)));
  const r = Math.sqrt(v.aspect);
  let cw = base.sw * s * r;
  let ch = (base.sh * s) / r;
  cw = Math.min(cw, size.width);
  ch = Math.min(ch, size.height);
  // centre: the base window's centre moved by dx/dy of the room left inside the image
  const cx0 = base.sx + base.sw / 2;
  const cy0 = base.sy + base.sh / 2;
  const roomX = Math.max(0, Math.min(cx0 - cw / 2, size.width - cw / 2 - cx0));
  const roomY = Math.max(0, Math.min(cy0 - ch / 2, size.height - ch / 2 - cy0));
  const sx = Math.min(Math.max(0, cx0 + v.dx * roomX - cw / 2), size.width - cw);
  const sy = Math.min(Math.max(0, cy0 + v.dy * roomY - ch / 2), size.height - ch);
  const W = spec.width;
  const H = spec.height;
  const ctx = context(W, H);
  ctx.save();
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  ctx.filter = `brightness(${v.brightness}) contrast(${v.contrast}) saturate(${v.saturation})`;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.translate(W / 2, H / 2);
  if (v.rotate) ctx.rotate((v.rotate * Math.PI) / 180);
  if (v.flip) ctx.scale(-1, 1);
  // a rotated window would show corners: zoom in just enough to cover them
  const rad = Math.abs((v.rotate * Math.PI) / 180);
  const zoom = rad ? Math.cos(rad) + Math.sin(rad) * Math.max(W / H, H / W) : 1;
  ctx.drawImage(src, sx, sy, cw, ch, (-W / 2) * zoom, (-H / 2) * zoom, W * zoom, H * zoom);
  ctx.restore();
  const data = ctx.getImageData(0, 0, W, H).data;
  if (spec.channels === 1) {
    for (let i = 0; i < data.length; i += 4) {
      const y = Math.round(0.2126 * data[i]! + 0.7152 * data[i + 1]! + 0.0722 * data[i + 2]!);
      data[i] = data[i + 1] = data[i + 2] = y;
    }
  }
  return { data, width: W, height: H, channels: 4 };
}
