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

/** sRGB-encoded value 0..1 → linear light 0..1 (IEC 61966-2-1; extrapolated outside 0..1). */
export function srgbToLinear(v: number): number {
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

/** Linear light 0..1 → sRGB-encoded 0..1 (IEC 61966-2-1). */
export function linearToSrgb(y: number): number {
  return y <= 0.0031308 ? y * 12.92 : 1.055 * y ** (1 / 2.4) - 0.055;
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
