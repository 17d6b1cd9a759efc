// Augmented views rendered with sharp (Node): the image is decoded once (EXIF-rotated, shorter side at
// the model's pre-crop size, aspect kept), then each view runs flips, rotation + shear (one affine),
// the random-resized crop / zoom / translate / pad window (extend + extract + resize), colour jitter
// (modulate + linear) and gaussian blur in libvips; grayscale, perspective, noise and random erasing
// are typed-array passes from runtime/train/augment/ops.ts. The identity view is the evaluation preprocessing itself
// (runtime/image/decode.ts decodeImage), so un-augmented embeddings match what a deployed model sees.

import sharp, { type Sharp } from 'sharp';
import { EdgetuneError, messageOf } from '../../core/errors.js';
import { DEFAULT_MAX_PIXELS, refuseVector } from '../../image/decode.js';
import { finishView, grayscale, type ViewParams } from '../augment/ops.js';
import { fitGeometry } from '../../image/geometry.js';
import type { HwcImage, PreprocessSpec } from '../../image/preprocess.js';

sharp.cache(false);

function raw(img: HwcImage) {
  return { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 2 | 3 | 4 } };
}

async function toImage(s: Sharp): Promise<HwcImage> {
  const { data, info } = await s.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: info.channels };
}

/**
 * Decode once for augmentation: whole image (not centre-cropped), resized as fitGeometry's `cover`
 * resizes it before the crop (shorter side at the model's pre-crop size).
 */
export async function decodeBase(input: string | Uint8Array, spec: PreprocessSpec, name?: string): Promise<HwcImage> {
  const label = name ?? (typeof input === 'string' ? input : '<buffer>');
  try {
    const img = sharp(input, { limitInputPixels: DEFAULT_MAX_PIXELS, failOn: 'error' });
    const { autoOrient, format } = await img.metadata();
    refuseVector(format);
    const g = fitGeometry(autoOrient.width, autoOrient.height, { ...spec, resize: 'cover' });
    return await toImage(
      img
        .rotate()
        .flatten({ background: { r: 255, g: 255, b: 255 } })
        .resize(g.fixed === 'width' ? { width: g.resized.width } : { height: g.resized.height })
        .toColourspace(spec.channels === 1 ? 'b-w' : 'srgb'),
    );
  } catch (err) {
    throw new EdgetuneError('EINPUT', `${label}: ${messageOf(err).split('\n')[0]}`, { subject: label, cause: err });
  }
}

/** Render one augmented view at the model's input size. */
export async function renderViewSharp(base: HwcImage, p: ViewParams, spec: PreprocessSpec): Promise<HwcImage> {
  const outW = spec.width;
  const outH = spec.height;
  const bg = { r: 0, g: 0, b: 0, alpha: 1 };
  // Stage 1: flips and rotation + shear about the image centre (the affine output is the bounding box
  // of the transformed image, so the input centre lands on the output centre).
  let img = base;
  const t = (p.angle * Math.PI) / 180;
  const tx = Math.tan((p.shearX * Math.PI) / 180);
  const ty = Math.tan((p.shearY * Math.PI) / 180);
  // sampling map R·S (output offset → source offset); sharp wants source → output, its inverse
  const rs = [Math.cos(t) + Math.sin(t) * ty, Math.cos(t) * tx + Math.sin(t), -Math.sin(t) + Math.cos(t) * ty, -Math.sin(t) * tx + Math.cos(t)];
  const det = rs[0]! * rs[3]! - rs[1]! * rs[2]!;
  const M = [rs[3]! / det, -rs[1]! / det, -rs[2]! / det, rs[0]! / det];
  const affine = p.angle !== 0 || p.shearX !== 0 || p.shearY !== 0;
  if (p.hflip || p.vflip || affine) {
    let s = sharp(img.data, raw(img));
    if (p.hflip) s = s.flop();
    if (p.vflip) s = s.flip();
    if (affine) {
      img = await toImage(s);
      s = sharp(img.data, raw(img)).affine([M[0]!, M[1]!, M[2]!, M[3]!], { background: bg, interpolator: sharp.interpolators.bilinear });
    }
    img = await toImage(s);
  }
  // Stage 2: the crop window, in the stage-1 image, axis-aligned around centre + M·offset, where the
  // offset is the evaluation frame's (fitGeometry) from the base centre plus the view's own.
  const e = fitGeometry(base.width, base.height, spec).frame;
  const dx = e.x + e.width / 2 - base.width / 2 + p.cx * e.width;
  const dy = e.y + e.height / 2 - base.height / 2 + p.cy * e.height;
  const cx = img.width / 2 + (affine ? M[0]! * dx + M[1]! * dy : dx);
  const cy = img.height / 2 + (affine ? M[2]! * dx + M[3]! * dy : dy);
  const w = Math.max(1, Math.round(e.width * p.sw));
  const h = Math.max(1, Math.round(e.height * p.sh));
  let left = Math.round(cx - w / 2);
  let top = Math.round(cy - h / 2);
  const pad = { left: Math.max(0, -left), top: Math.max(0, -top), right: Math.max(0, left + w - img.width), bottom: Math.max(0, top + h - img.height) };
  if (pad.left || pad.top || pad.right || pad.bottom) {
    img = await toImage(sharp(img.data, raw(img)).extend({ ...pad, background: bg }));
    left += pad.left;
    top += pad.top;
  }
  let s = sharp(img.data, raw(img)).extract({ left, top, width: w, height: h }).resize(outW, outH, { fit: 'fill' });
  // Stage 3: colour.
  if (p.brightness !== 1 || p.saturation !== 1 || p.hue !== 0) {
    s = s.modulate({ brightness: p.brightness, saturation: p.saturation, hue: Math.round(p.hue) });
  }
  if (p.contrast !== 1) s = s.linear(p.contrast, 128 * (1 - p.contrast));
  if (p.blur >= 0.3) s = s.blur(p.blur);
  s = s.toColourspace(spec.channels === 1 ? 'b-w' : 'srgb');
  const out = await toImage(s);
  // Stage 4: typed-array passes (libvips grayscale would drop to one channel).
  if (p.grayscale) grayscale(out);
  return finishView(out, p);
}
