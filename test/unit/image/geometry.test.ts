// fitGeometry (runtime/image/geometry.ts), the one resize/crop geometry of every pixel path: hand-
// computed cases for each fit and odd sizes, invariants over many sizes, ffmpeg landing on the same
// pixels with and without the source size, the CSI crop, and the one grayscale rule
// (runtime/image/gray.ts) against libvips and ffmpeg.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { coverRegion } from '../../../devices/sources/csi.js';
import { ffmpegArgs } from '../../../devices/sources/ffmpeg.js';
import type { FrameGeometry } from '../../../devices/sources/types.js';
import { createRng } from '../../../runtime/core/rng.js';
import { fitGeometry, resizeTarget, sourceEdges, type FitSpec } from '../../../runtime/image/geometry.js';
import { grayByte, grayInPlace } from '../../../runtime/image/gray.js';
import { shared } from '../../helpers.js';

const cover = (width: number, height: number, crop = 1): FitSpec => ({ width, height, resize: 'cover', crop });

async function ffmpegFrame(input: string[], g: FrameGeometry, source?: { width: number; height: number }): Promise<Buffer> {
  const { stdout } = await promisify(execFile)('/usr/bin/ffmpeg', ffmpegArgs({ input: [...input, '-frames:v', '1'], geometry: g, source }), {
    encoding: 'buffer',
    maxBuffer: 1 << 26,
  });
  return stdout;
}

describe('fitGeometry', () => {
  it('cover: shorter side to the resize target, centred window (an odd remainder rounds up)', () => {
    // 1280×720 → 224²: 1280·224/720 = 398.2 → 398 wide; window at (398 − 224)/2 = 87.
    const g = fitGeometry(1280, 720, cover(224, 224));
    expect(g.resized).toEqual({ width: 398, height: 224 });
    expect(g.crop).toEqual({ x: 87, y: 0, width: 224, height: 224 });
    expect(g.pad).toEqual({ left: 0, top: 0, right: 0, bottom: 0 });
    expect(g.scale).toEqual({ x: 398 / 1280, y: 224 / 720 });
    expect(g.fixed).toBe('height');
    expect(g.source.x).toBeCloseTo((87 * 1280) / 398, 9);
    expect(g.source.width).toBeCloseTo((224 * 1280) / 398, 9);
    expect(g.source.height).toBe(720);
    expect(g.frame).toEqual(g.source);
    // crop 0.875: target round(224/0.875) = 256; 1280·256/720 = 455.1 → 455; window at (ceil(115.5), 16).
    expect(resizeTarget(cover(224, 224, 0.875))).toEqual({ width: 256, height: 256 });
    const c = fitGeometry(1280, 720, cover(224, 224, 0.875));
    expect(c.resized).toEqual({ width: 455, height: 256 });
    expect(c.crop).toEqual({ x: 116, y: 16, width: 224, height: 224 });
    expect(c.source.y).toBeCloseTo(45, 9);
    expect(c.source.height).toBeCloseTo(630, 9);
    // a square source at the target size is untouched
    expect(fitGeometry(224, 224, cover(224, 224))).toMatchObject({ resized: { width: 224, height: 224 }, crop: { x: 0, y: 0, width: 224, height: 224 } });
  });

  it('cover at odd sizes: non-square outputs, portrait sources, half-pixel centres round up', () => {
    // 500×416 → 97×61, crop 0.875: target round(110.86) × round(69.71) = 111 × 70; width constrains
    // (111/500 > 70/416), 416·111/500 = 92.35 → 92 high; window at 14/2 = 7, ceil(31/2) = 16.
    const g = fitGeometry(500, 416, cover(97, 61, 0.875));
    expect(g.resized).toEqual({ width: 111, height: 92 });
    expect(g.fixed).toBe('width');
    expect(g.crop).toEqual({ x: 7, y: 16, width: 97, height: 61 });
    // 3 × 2 → 2 × 1: 3·1/2 = 1.5 → 2 wide (half up), window at ceil(0/2) = 0; 5 × 2 → 2 × 1: 2.5 → 3, window at ceil(1/2) = 1.
    expect(fitGeometry(5, 2, cover(2, 1))).toMatchObject({ resized: { width: 3, height: 1 }, crop: { x: 1, y: 0 } });
    // portrait 533×800 → 224²: 224·800/533 = 336.2 → 336 high, window at 56.
    const p = fitGeometry(533, 800, cover(224, 224));
    expect(p.resized).toEqual({ width: 224, height: 336 });
    expect(p.crop).toEqual({ x: 0, y: 56, width: 224, height: 224 });
    // a source smaller than the output is enlarged: 7×5 → 3×3 target 3, 3·7/5 = 4.2 → 4, window at ceil(1/2) = 1.
    expect(fitGeometry(7, 5, cover(3, 3))).toMatchObject({ resized: { width: 4, height: 3 }, crop: { x: 1, y: 0 } });
    expect(fitGeometry(1, 1, cover(224, 224)).resized).toEqual({ width: 224, height: 224 });
  });

  it('fill stretches; contain letterboxes with floor offsets and the remainder after', () => {
    const f = fitGeometry(800, 533, { width: 97, height: 61, resize: 'fill', crop: 1 });
    expect(f.resized).toEqual({ width: 97, height: 61 });
    expect(f.source).toEqual({ x: 0, y: 0, width: 800, height: 533 });
    // 800×533 → 224²: 224·533/800 = 149.24 → 149 high; bands floor(75/2) = 37 above, 38 below.
    const c = fitGeometry(800, 533, { width: 224, height: 224, resize: 'contain', crop: 1 });
    expect(c.resized).toEqual({ width: 224, height: 149 });
    expect(c.crop).toEqual({ x: 0, y: 0, width: 224, height: 149 });
    expect(c.pad).toEqual({ left: 0, top: 37, right: 0, bottom: 38 });
    expect(c.source).toEqual({ x: 0, y: 0, width: 800, height: 533 });
    // the whole frame reaches past the image where the bands are
    expect(c.frame.y).toBeCloseTo((-37 * 533) / 149, 9);
    expect(c.frame.height).toBeCloseTo((224 * 533) / 149, 9);
    // odd: 333×127 → 97×61: 61·333/127 = 159.9 > 97, so 97 wide; 97·127/333 = 36.99 → 37 high; bands 12 / 12.
    expect(fitGeometry(333, 127, { width: 97, height: 61, resize: 'contain', crop: 0.875 })).toMatchObject({
      resized: { width: 97, height: 37 },
      pad: { left: 0, top: 12, right: 0, bottom: 12 },
    });
    // crop applies to cover only
    expect(resizeTarget({ width: 224, height: 224, resize: 'contain', crop: 0.875 })).toEqual({ width: 224, height: 224 });
    expect(() => fitGeometry(0, 10, cover(224, 224))).toThrow('Expected at least 1x1 for source size but received "0x10"');
  });

  it('holds its invariants over many source and output sizes', () => {
    const rng = createRng(7, 'geometry');
    for (let i = 0; i < 2000; i++) {
      const sw = 1 + rng.int(3000);
      const sh = 1 + rng.int(3000);
      const spec: FitSpec = { width: 1 + rng.int(400), height: 1 + rng.int(400), resize: (['cover', 'fill', 'contain'] as const)[rng.int(3)]!, crop: rng.chance(0.5) ? 1 : rng.uniform(0.5, 1) };
      const g = fitGeometry(sw, sh, spec);
      const ctx = `${sw}x${sh} → ${JSON.stringify(spec)}`;
      for (const v of [g.resized.width, g.resized.height, g.crop.x, g.crop.y, g.pad.left, g.pad.top, g.pad.right, g.pad.bottom]) expect(Number.isInteger(v), ctx).toBe(true);
      expect(g.crop.x + g.crop.width, ctx).toBeLessThanOrEqual(g.resized.width);
      expect(g.crop.y + g.crop.height, ctx).toBeLessThanOrEqual(g.resized.height);
      expect(g.pad.left + g.crop.width + g.pad.right, ctx).toBe(spec.width);
      expect(g.pad.top + g.crop.height + g.pad.bottom, ctx).toBe(spec.height);
      expect(g.source.x + g.source.width, ctx).toBeLessThanOrEqual(sw + 1e-9);
      expect(g.source.y + g.source.height, ctx).toBeLessThanOrEqual(sh + 1e-9);
      if (spec.resize === 'cover' || (spec.resize === 'contain' && Math.min(g.resized.width, g.resized.height) > 1)) {
        // aspect kept up to the rounding of one dimension (half a pixel; contain clamps a dimension at 1)
        const ratio = sw / sh;
        expect(Math.abs(g.resized.width - g.resized.height * ratio), ctx).toBeLessThanOrEqual(0.5 * Math.max(1, ratio) + 1e-9);
      }
      if (spec.resize === 'cover') {
        // centred: the window leaves at most one pixel more before it than after it
        const after = g.resized.width - g.crop.x - g.crop.width;
        expect(g.crop.x - after, ctx).toBeGreaterThanOrEqual(0);
        expect(g.crop.x - after, ctx).toBeLessThanOrEqual(1);
      }
    }
  });

  it('the CSI crop is the source window with rounded edges', () => {
    const g: FrameGeometry = { width: 224, height: 224, channels: 3, resize: 'cover', crop: 0.875 };
    const f = fitGeometry(1280, 720, g);
    expect(coverRegion(1280, 720, g)).toEqual(sourceEdges(f, 1280, 720));
    expect(coverRegion(1280, 720, g)).toEqual({ left: 326, top: 45, right: 956, bottom: 675 });
  });

  it('ffmpeg lands on the same pixels with and without the source size (its rounding is fitGeometry’s)', async () => {
    // testsrc2 frames of odd sizes through both filter forms; any different rounding shifts the image.
    for (const [sw, sh] of [
      [333, 127],
      [127, 333],
      [501, 417],
      [640, 361],
    ] as const) {
      for (const g of [
        { width: 97, height: 61, channels: 3, resize: 'cover', crop: 0.875 },
        { width: 61, height: 97, channels: 3, resize: 'cover', crop: 1 },
        { width: 97, height: 61, channels: 3, resize: 'contain', crop: 1 },
        { width: 64, height: 64, channels: 1, resize: 'cover', crop: 0.875 },
      ] as FrameGeometry[]) {
        // rgb24 at the source: yuv420p would round odd sizes down to even ones
        const input = ['-f', 'lavfi', '-i', `testsrc2=size=${sw}x${sh}:rate=1,format=rgb24`];
        const known = await ffmpegFrame(input, g, { width: sw, height: sh });
        const unknown = await ffmpegFrame(input, g);
        expect(known.length, `${sw}x${sh} ${JSON.stringify(g)}`).toBe(g.width * g.height * g.channels);
        expect(unknown.equals(known), `${sw}x${sh} ${JSON.stringify(g)}`).toBe(true);
      }
    }
  });
});

describe('the grayscale rule', () => {
  it('is libvips’ linear-light Rec.709 luminance', async () => {
    // Primaries measured with sharp's toColourspace('b-w'): red 127, green 220, blue 76.
    expect([grayByte(255, 0, 0), grayByte(0, 255, 0), grayByte(0, 0, 255), grayByte(128, 128, 128), grayByte(0, 0, 0), grayByte(255, 255, 255)]).toEqual([127, 220, 76, 128, 0, 255]);
    // On a real photo's pixels it is within one level of libvips (measured: max 1, mean 0.16 on the
    // dog at 300², libvips rounds through lookup tables).
    const rgb = await sharp(shared('camera', 'winml_dog.jpg')).resize(300, 300).toColourspace('srgb').raw().toBuffer();
    const vips = await sharp(rgb, { raw: { width: 300, height: 300, channels: 3 } }).toColourspace('b-w').raw().toBuffer();
    const ours = grayInPlace({ data: new Uint8Array(rgb), width: 300, height: 300, channels: 3 });
    let sum = 0;
    let max = 0;
    for (let i = 0; i < 300 * 300; i++) {
      const d = Math.abs(ours.data[i * 3]! - vips[i]!);
      sum += d;
      max = Math.max(max, d);
    }
    expect(max).toBeLessThanOrEqual(1);
    expect(sum / (300 * 300)).toBeLessThan(0.25);
  });

  it('is what ffmpeg delivers for grayscale models', async () => {
    // The same frame as rgb24 and as gray: gray is grayByte of the rgb within one level (measured on
    // winml_Input.jpg at 256²: max 1, mean 0.19; ffmpeg's own rgb → gray would be Rec.601 luma).
    const input = ['-i', shared('camera', 'winml_Input.jpg')];
    const g: FrameGeometry = { width: 256, height: 256, channels: 3, resize: 'fill', crop: 1 };
    const rgb = await ffmpegFrame(input, g);
    const gray = await ffmpegFrame(input, { ...g, channels: 1 });
    let sum = 0;
    let max = 0;
    for (let i = 0; i < 256 * 256; i++) {
      const d = Math.abs(gray[i]! - grayByte(rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!));
      sum += d;
      max = Math.max(max, d);
    }
    expect(max).toBeLessThanOrEqual(1);
    expect(sum / (256 * 256)).toBeLessThan(0.3);
  });
});
