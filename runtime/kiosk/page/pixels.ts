// Pixel work in the page, the browser's stand-in for runtime/image.ts (sharp): camera frames and
// uploaded photos are drawn through a canvas with the same geometry the Node path uses — `cover`
// resizes the shorter side to the spec's resize target and centre-crops, `fill` stretches, `contain`
// letterboxes on black, transparency is flattened on white — and read back as an RGBA HwcImage that
// runtime/preprocess.ts `toTensor` turns into the model's input.

import { resizeTarget, type HwcImage, type PreprocessSpec } from '../../image/preprocess.js';

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

/** A whole drawable as an RGBA HwcImage at its own size (the source runtime/augment.ts renderView warps from). */
export function toSourceImage(src: CanvasImageSource): HwcImage {
  const { width, height } = sourceSize(src);
  if (!width || !height) throw new Error('image has no pixels');
  const ctx = context(width, height);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(src, 0, 0);
  return { data: ctx.getImageData(0, 0, width, height).data, width, height, channels: 4 };
}

/** Grayscale models: luminance into every colour channel (in place), as the model-size path does. */
export function toGrayInPlace(img: HwcImage): HwcImage {
  const data = img.data;
  const C = img.channels;
  if (C < 3) return img;
  for (let i = 0; i < data.length; i += C) {
    const y = Math.round(0.2126 * data[i]! + 0.7152 * data[i + 1]! + 0.0722 * data[i + 2]!);
    data[i] = data[i + 1] = data[i + 2] = y;
  }
  return img;
}
