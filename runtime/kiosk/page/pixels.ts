// Pixel work in the page, the browser's stand-in for runtime/image/decode.ts (sharp): camera frames
// and uploaded photos are read 1:1 from a canvas (transparency flattened on white), then resized,
// centre-cropped or letterboxed in typed arrays by runtime/image/resample.ts with fitGeometry
// (runtime/image/geometry.ts), the geometry every other path follows, and turned to gray for
// grayscale models by the one grayscale rule (runtime/image/gray.ts). drawImage never resamples the
// model's input (its filter is the browser's own), so Node can run the same code
// (test/unit/image/pixel-paths.test.ts). runtime/image/preprocess.ts `toTensor` makes the tensor.

import { grayInPlace } from '../../image/gray.js';
import type { HwcImage, PreprocessSpec } from '../../image/preprocess.js';
import { fitImage } from '../../image/resample.js';
import { MAX_IMAGE_PIXELS, pixelLimitMessage } from '../../image/geometry.js';

export type Source = CanvasImageSource & { width?: number; height?: number };

/** Natural size of anything drawable. */
export function sourceSize(src: CanvasImageSource): { width: number; height: number } {
  if (typeof HTMLVideoElement !== 'undefined' && src instanceof HTMLVideoElement) return { width: src.videoWidth, height: src.videoHeight };
  if (typeof HTMLImageElement !== 'undefined' && src instanceof HTMLImageElement) return { width: src.naturalWidth, height: src.naturalHeight };
  const s = src as { width: number | SVGAnimatedLength; height: number | SVGAnimatedLength };
  return { width: typeof s.width === 'number' ? s.width : s.width.baseVal.value, height: typeof s.height === 'number' ? s.height : s.height.baseVal.value };
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

/**
 * A drawable (or the `region` of it, in source pixels, rounded to whole pixels) → the model-size
 * HwcImage: RGBA, 4 channels; grayscale models get their gray level in every colour channel.
 */
export function toModelImage(src: CanvasImageSource, spec: PreprocessSpec, region?: { x: number; y: number; w: number; h: number }): HwcImage {
  const img = fitImage(toSourceImage(src, region), spec);
  return spec.channels === 1 ? grayInPlace(img) : img;
}

/**
 * Decode an image file/blob (EXIF orientation applied). Errors name the file. An image declaring more
 * than `maxPixels` (default MAX_IMAGE_PIXELS, Node's limit too) is refused from its header, before the
 * browser decodes it: a 20000×14000 JPEG took 6 s and 1.1 GB, and the oversized scratch canvas left
 * every later photo classified wrong.
 */
export async function decodeBlob(blob: Blob, name: string, maxPixels = MAX_IMAGE_PIXELS): Promise<ImageBitmap> {
  if (blob.size === 0) throw new Error(`${name}: empty file (0 bytes)`);
  const declared = await headerSize(blob);
  if (declared && declared.width * declared.height > maxPixels) throw new Error(`${name}: ${pixelLimitMessage(declared.width, declared.height, maxPixels)}`);
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new Error(`${name}: not a supported image (the browser cannot decode it)`);
  }
  if (bmp.width * bmp.height > maxPixels) {
    bmp.close();
    throw new Error(`${name}: ${pixelLimitMessage(bmp.width, bmp.height, maxPixels)}`);
  }
  return bmp;
}

/**
 * An image's size from its header (an <img> that is loaded but never drawn: the browser reads the
 * header and defers decoding the pixels), or undefined where there is no DOM or the browser cannot read it.
 */
async function headerSize(blob: Blob): Promise<{ width: number; height: number } | undefined> {
  if (typeof Image === 'undefined' || typeof URL.createObjectURL !== 'function') return undefined;
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error('unreadable'));
      img.src = url;
    });
    return { width: img.naturalWidth, height: img.naturalHeight };
  } catch {
    return undefined;
  } finally {
    URL.revokeObjectURL(url);
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

/**
 * A whole drawable, or its `region` (source pixels, rounded to whole pixels), as an RGBA HwcImage at
 * its own resolution (1:1, no resampling), flattened on white: what toModelImage resizes and
 * runtime/train/augment/ops.ts renderView warps from.
 */
export function toSourceImage(src: CanvasImageSource, region?: { x: number; y: number; w: number; h: number }): HwcImage {
  const size = sourceSize(src);
  const x = Math.round(region?.x ?? 0);
  const y = Math.round(region?.y ?? 0);
  const width = Math.round(region?.w ?? size.width);
  const height = Math.round(region?.h ?? size.height);
  if (!width || !height) throw new Error('image has no pixels yet');
  const ctx = context(width, height);
  ctx.globalCompositeOperation = 'source-over';
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(src, x, y, width, height, 0, 0, width, height);
  return { data: ctx.getImageData(0, 0, width, height).data, width, height, channels: 4 };
}

/** Grayscale models: the gray level (runtime/image/gray.ts) into every colour channel, in place. */
export const toGrayInPlace: (img: HwcImage) => HwcImage = grayInPlace;
