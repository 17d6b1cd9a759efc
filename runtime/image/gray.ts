// The one grayscale rule, used by every path that turns colour into gray (grayscale models in the
// page and the ffmpeg source, the augmentation grayscale op and colour jitter): libvips' own, which
// the sharp path applies with `toColourspace('b-w')` / `greyscale()`. libvips converts sRGB to
// linear light (colour/sRGB2scRGB.c), takes the CIE luminance Y = 0.2126 R + 0.7152 G + 0.0722 B
// (Rec.709 primaries, colour/scRGB2BW.c) and encodes Y with the sRGB curve again. Measured with
// sharp 0.35.5 / libvips 8.18.7: pure red → 127, green → 220, blue → 76 (gamma-space Rec.601 luma
// would give 76, 150, 29). Browser-safe: no Node APIs.

import type { HwcImage } from './preprocess.js';

/** Luminance weights of linear R, G, B (Rec.709 / sRGB primaries, D65). */
export const LUMA_709 = [0.2126, 0.7152, 0.0722] as const;

/**
 * The sRGB transfer curve (IEC 61966-2-1): linear = v / slope below `knee` (encoded), else
 * ((v + offset) / (1 + offset)) ^ gamma. Exported so that builders for other tools (the ffmpeg
 * filter in devices/sources/ffmpeg.ts) state the same curve.
 */
export const SRGB_CURVE = { knee: 0.04045, slope: 12.92, offset: 0.055, gamma: 2.4 } as const;

/** sRGB-encoded value 0..1 → linear light 0..1 (extrapolated outside 0..1). */
export function srgbToLinear(v: number): number {
  const { knee, slope, offset, gamma } = SRGB_CURVE;
  return v <= knee ? v / slope : ((v + offset) / (1 + offset)) ** gamma;
}

/** Linear light 0..1 → sRGB-encoded 0..1. */
export function linearToSrgb(y: number): number {
  const { knee, slope, offset, gamma } = SRGB_CURVE;
  return y <= knee / slope ? y * slope : (1 + offset) * y ** (1 / gamma) - offset;
}

const LINEAR = Float64Array.from({ length: 256 }, (_, v) => srgbToLinear(v / 255));

/** Gray level of an 8-bit sRGB colour, 0..255 (not rounded). Non-integer or out-of-range inputs are allowed. */
export function grayLevel(r: number, g: number, b: number): number {
  const lin = (v: number) => (Number.isInteger(v) && v >= 0 && v <= 255 ? LINEAR[v]! : srgbToLinear(v / 255));
  const y = LUMA_709[0] * lin(r) + LUMA_709[1] * lin(g) + LUMA_709[2] * lin(b);
  return 255 * linearToSrgb(y);
}

/** Gray level of an 8-bit sRGB colour as a byte (rounded, clamped to 0..255). */
export function grayByte(r: number, g: number, b: number): number {
  const v = Math.round(grayLevel(r, g, b));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Replace each pixel's R, G and B by its gray level, in place (alpha untouched; 1–2 channel images unchanged). */
export function grayInPlace(img: HwcImage): HwcImage {
  const { data, channels: C } = img;
  if (C < 3) return img;
  for (let i = 0; i < data.length; i += C) {
    const y = grayByte(data[i]!, data[i + 1]!, data[i + 2]!);
    data[i] = data[i + 1] = data[i + 2] = y;
  }
  return img;
}
