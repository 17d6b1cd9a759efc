// The model sees the same pixels on every path: a real photo through (a) the CLI's sharp decode
// (decodeImage + toTensor), (b) the camera path's ffmpeg (the filter our ffmpeg source builds, on the
// same JPEG as a one-frame input, rawvideo rgb24 out) and (c) the browser page's pixel path
// (runtime/image/resample.ts fitImage, the code runtime/kiosk/page/pixels.ts toModelImage runs after
// its 1:1 canvas read, here on sharp's full-resolution RGBA decode) → the input tensors are compared
// per path pair, and the three classify the dog alike.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegArgs } from '../../../devices/sources/ffmpeg.js';
import { loadClassifier, type Classifier } from '../../../runtime/classify/classifier.js';
import { decodeFull, decodeImage } from '../../../runtime/image/decode.js';
import { grayInPlace } from '../../../runtime/image/gray.js';
import { toTensor, type HwcImage, type PreprocessSpec } from '../../../runtime/image/preprocess.js';
import { fitImage } from '../../../runtime/image/resample.js';
import { argmax } from '../../../runtime/train/metrics.js';
import { specOf } from '../../../models/registry.js';
import { loadRegistry } from '../../../models/loader.js';
import { shared } from '../../helpers.js';

type Path = 'sharp' | 'ffmpeg' | 'page';

/** The three paths' model-size pixels for one photo. */
async function paths(file: string, spec: PreprocessSpec): Promise<Record<Path, HwcImage>> {
  const meta = await sharp(file).metadata();
  const source = { width: meta.autoOrient.width, height: meta.autoOrient.height };
  const g = { width: spec.width, height: spec.height, channels: spec.channels, resize: spec.resize, crop: spec.crop };
  const run = async (src?: typeof source) =>
    (await promisify(execFile)('/usr/bin/ffmpeg', ffmpegArgs({ input: ['-i', file], geometry: g, source: src }), { encoding: 'buffer', maxBuffer: 1 << 26 })).stdout;
  const ff = await run(source);
  // the filter for sources of unknown size (cameras) gives the same bytes
  expect((await run()).equals(ff), `${file}: ffmpeg with and without the source size`).toBe(true);
  // the page reads RGBA from its canvas (flattened on white): give fitImage the same 4 channels
  const full = await decodeFull(file);
  const rgba = new Uint8ClampedArray(full.width * full.height * 4).fill(255);
  for (let i = 0, j = 0; i < full.data.length; i += 3, j += 4) rgba.set(full.data.subarray(i, i + 3), j);
  const page = fitImage({ data: rgba, width: full.width, height: full.height, channels: 4 }, spec);
  return {
    sharp: await decodeImage(file, spec),
    ffmpeg: { data: new Uint8Array(ff), width: spec.width, height: spec.height, channels: spec.channels },
    page: spec.channels === 1 ? grayInPlace(page) : page,
  };
}

/** Mean and max absolute difference of two tensors (model input units). */
function diff(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

type Pair = 'sharp-ffmpeg' | 'sharp-page' | 'ffmpeg-page';
const PAIRS: [Path, Path][] = [
  ['sharp', 'ffmpeg'],
  ['sharp', 'page'],
  ['ffmpeg', 'page'],
];

describe('the same pixels on every path', () => {
  const spec = specOf(loadRegistry().require('mobilenetv2-int8'));
  let clf: Classifier;
  beforeAll(async () => {
    clf = await loadClassifier('mobilenetv2-int8', { providers: ['cpu'] });
  });
  afterAll(async () => {
    await clf?.dispose();
  });

  // Measured (sharp 0.35.5 / libvips 8.18.7, ffmpeg 5.1 with flags=bicubic; tensor units, one 8-bit
  // level is 1/255/std ≈ 0.0174 for std 0.225), mobilenetv2-int8's input (224², cover, crop 0.875):
  //   winml_dog.jpg 1080×1080: sharp–ffmpeg mean 0.0176 max 0.349, sharp–page mean 0.0063 max 0.087,
  //                            ffmpeg–page mean 0.0174 max 0.349
  //   bee 800×533:             sharp–ffmpeg mean 0.0361 max 0.906, sharp–page mean 0.0080 max 0.174,
  //                            ffmpeg–page mean 0.0346 max 0.906
  // ffmpeg differs most (its JPEG decoder's chroma upsampling and its bicubic kernel against libvips'
  // lanczos3; the max is at sharp edges); the page's lanczos3 resampler is within a few levels of
  // sharp. Bounds are about 1.5× the measured figures.
  const bounds: Record<string, Record<Pair, { mean: number; max: number }>> = {
    'winml_dog.jpg': { 'sharp-ffmpeg': { mean: 0.027, max: 0.53 }, 'sharp-page': { mean: 0.0095, max: 0.14 }, 'ffmpeg-page': { mean: 0.027, max: 0.53 } },
    'bee.jpg': { 'sharp-ffmpeg': { mean: 0.055, max: 1.36 }, 'sharp-page': { mean: 0.012, max: 0.27 }, 'ffmpeg-page': { mean: 0.052, max: 1.36 } },
  };
  const photos: Record<string, string> = {
    'winml_dog.jpg': shared('camera', 'winml_dog.jpg'),
    'bee.jpg': shared('datasets', 'hymenoptera', 'val', 'bees', '6a00d8341c630a53ef00e553d0beb18834-800wi.jpg'),
  };

  for (const [name, file] of Object.entries(photos)) {
    it(`${name}: the input tensors agree within the measured bounds, and the top-1 class is the same`, async () => {
      const imgs = await paths(file, spec);
      const tensors = Object.fromEntries(Object.entries(imgs).map(([k, img]) => [k, toTensor([img], spec).data as Float32Array])) as Record<Path, Float32Array>;
      const top: Record<string, number> = {};
      for (const [k, img] of Object.entries(imgs)) top[k] = argmax((await clf.probabilities([img]))[0]!);
      const measured: Record<string, { mean: number; max: number }> = {};
      for (const [a, b] of PAIRS) measured[`${a}-${b}`] = diff(tensors[a], tensors[b]);
      console.log(name, JSON.stringify({ measured, top }));
      for (const [pair, m] of Object.entries(measured)) {
        const bound = bounds[name]![pair as Pair];
        expect(m.mean, `${name} ${pair} mean`).toBeLessThan(bound.mean);
        expect(m.max, `${name} ${pair} max`).toBeLessThan(bound.max);
      }
      expect(new Set(Object.values(top)).size, JSON.stringify(top)).toBe(1);
      if (name === 'winml_dog.jpg') expect(top.sharp).toBe(207); // Golden Retriever
    });
  }

  it('other fits, odd sizes and grayscale land on the same pixels too, none shifted by a pixel', async () => {
    // Measured on the bee photo, mean / max difference in 8-bit levels over the interior (2-pixel
    // margin), sharp–ffmpeg and sharp–page:
    //   contain 224²:          1.51 / 64, 0.46 / 15 (ffmpeg's max on the image's top and bottom rows)
    //   cover 97×61 crop .875: 1.68 / 20, 1.31 / 13 (a 7.6× reduction: libvips shrinks with a box
    //                                                 filter first, the others do not)
    //   fill 97×61 gray:       1.49 / 16, 1.40 / 15
    // The same comparison with one image moved by a pixel (the best of the 8 directions) is at least
    // 4.9× worse (contain sharp–ffmpeg: 7.43 against 1.51; the others 9× to 16×): the geometry is the
    // same, what is left is the resampling filters. Bounds: 1.5× the means and maxima, and unshifted
    // at least 4× better than shifted.
    const cases: [PreprocessSpec, Record<'sharp-ffmpeg' | 'sharp-page', { mean: number; max: number }>][] = [
      [{ ...spec, resize: 'contain', crop: 1 }, { 'sharp-ffmpeg': { mean: 2.3, max: 96 }, 'sharp-page': { mean: 0.7, max: 23 } }],
      [{ ...spec, width: 97, height: 61 }, { 'sharp-ffmpeg': { mean: 2.55, max: 30 }, 'sharp-page': { mean: 2.0, max: 20 } }],
      [
        { ...spec, width: 97, height: 61, resize: 'fill', channels: 1, colorOrder: 'GRAY', mean: [0], std: [1] },
        { 'sharp-ffmpeg': { mean: 2.2, max: 24 }, 'sharp-page': { mean: 2.1, max: 23 } },
      ],
    ];
    for (const [s, bound] of cases) {
      const imgs = await paths(photos['bee.jpg']!, s);
      const { width: W, height: H, channels: C } = s;
      // mean and max level difference over the interior (2-pixel margin), with b moved by (dx, dy)
      const level = (a: HwcImage, b: HwcImage, dx = 0, dy = 0) => {
        let sum = 0;
        let max = 0;
        let n = 0;
        for (let y = 2; y < H - 2; y++) {
          for (let x = 2; x < W - 2; x++) {
            for (let c = 0; c < C; c++) {
              const d = Math.abs(a.data[(y * W + x) * a.channels + c]! - b.data[((y + dy) * W + x + dx) * b.channels + c]!);
              sum += d;
              max = Math.max(max, d);
              n++;
            }
          }
        }
        return { mean: sum / n, max };
      };
      const ctx = `${W}x${H} ${s.resize} ${C} channel(s)`;
      for (const other of ['ffmpeg', 'page'] as const) {
        const pair = `sharp-${other}` as const;
        const m = level(imgs.sharp, imgs[other]);
        let shifted = Infinity;
        for (const [dx, dy] of [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]] as const) shifted = Math.min(shifted, level(imgs.sharp, imgs[other], dx, dy).mean);
        console.log(ctx, pair, JSON.stringify({ ...m, shifted }));
        expect(m.mean, `${ctx} ${pair} mean`).toBeLessThan(bound[pair].mean);
        expect(m.max, `${ctx} ${pair} max`).toBeLessThan(bound[pair].max);
        expect(m.mean * 4, `${ctx} ${pair}: unshifted against shifted by a pixel`).toBeLessThan(shifted);
      }
    }
  });
});
