// Augmentation (spec language, seeded sampling, geometry, typed-array pixel ops, sharp renderer vs the
// browser renderer) and folder-per-class datasets (scan, refusals, stratified split), on real images.

import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  IDENTITY_VIEW,
  adjustColor,
  apply3,
  eraseRect,
  formatAugmentation,
  gaussianBlur,
  homography,
  parseAugmentation,
  renderView,
  sampleView,
  viewKey,
  viewRng,
  addNoise,
} from '../../../runtime/train/augment/ops.js';
import { decodeBase, renderViewSharp } from '../../../runtime/train/node/augment-sharp.js';
import { classCounts, imbalanceWarning, scanDataset, stratifiedSplit } from '../../../runtime/train/node/dataset.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { grayByte } from '../../../runtime/image/gray.js';
import type { HwcImage, PreprocessSpec } from '../../../runtime/image/preprocess.js';
import { shared, tempDir } from '../../helpers.js';

const spec: PreprocessSpec = { width: 224, height: 224, channels: 3, layout: 'NCHW', colorOrder: 'RGB', range: [0, 1], mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 0.875, dtype: 'float32' };
const meanAbs = (a: HwcImage, b: HwcImage) => {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i]! - b.data[i]!);
  return s / a.data.length;
};
const flat = (w: number, h: number, v: number[]): HwcImage => {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(v, i * 3);
  return { data, width: w, height: h, channels: 3 };
};

describe('augmentation spec', () => {
  it('parses default, compositions and canonical text', () => {
    expect(parseAugmentation('none')).toEqual({});
    expect(formatAugmentation(parseAugmentation('default'))).toBe('flip:0.5,rotate:10,crop:0.7,color:0.2');
    expect(parseAugmentation('flip,rotate:15,color:0.2,erase:0.25')).toEqual({ flip: 0.5, rotate: 15, color: 0.2, erase: 0.25 });
    // order-independent canonical form (cache keys)
    expect(formatAugmentation(parseAugmentation('erase:0.25,flip'))).toBe(formatAugmentation(parseAugmentation('flip,erase:0.25')));
  });

  it('refuses unknown ops and bad values with clear messages', () => {
    expect(() => parseAugmentation('flip,twirl:3')).toThrow(/^Unknown augmentation op "twirl": expected one of flip, vflip, rotate, .* \(or default, none\)$/);
    expect(() => parseAugmentation('rotate:abc')).toThrow('Expected number between 0 and 180 for augmentation rotate but received "abc"');
    expect(() => parseAugmentation('erase:2')).toThrow('Expected number between 0 and 1 for augmentation erase but received "2"');
    expect(() => parseAugmentation('rotate:')).toThrow('for augmentation rotate but received ""');
    // a usage error like every other bad option: EdgetuneError with code EARG
    const err = (() => {
      try {
        parseAugmentation('flip,twirl');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(EdgetuneError);
    expect(err).toMatchObject({ code: 'EARG', name: 'AugmentError' });
  });

  it('samples views reproducibly per (seed, image, view)', () => {
    const s = parseAugmentation('flip,rotate:15,crop:0.5,color:0.3,perspective,noise,erase:1');
    const a = sampleView(s, viewRng(7, 'img', 1));
    expect(viewKey(sampleView(s, viewRng(7, 'img', 1)))).toBe(viewKey(a));
    expect(viewKey(sampleView(s, viewRng(7, 'img', 2)))).not.toBe(viewKey(a));
    expect(viewKey(sampleView(s, viewRng(8, 'img', 1)))).not.toBe(viewKey(a));
    expect(Math.abs(a.angle)).toBeLessThanOrEqual(15);
    expect(a.erase).not.toBeNull();
    expect(sampleView({}, viewRng(7, 'img', 1))).toEqual(IDENTITY_VIEW);
  });
});

describe('geometry and pixel ops', () => {
  it('solves homographies exactly', () => {
    const from = [0, 0, 10, 0, 10, 10, 0, 10];
    const to = [1, 2, 9, 1, 11, 12, -1, 8];
    const H = homography(from, to);
    for (let i = 0; i < 4; i++) {
      const [x, y] = apply3(H, from[2 * i]!, from[2 * i + 1]!);
      expect(x).toBeCloseTo(to[2 * i]!, 9);
      expect(y).toBeCloseTo(to[2 * i + 1]!, 9);
    }
  });

  it('colour jitter follows its definitions', () => {
    const a = flat(4, 4, [100, 50, 200]);
    adjustColor(a, { brightness: 1.5 });
    expect(Array.from(a.data.slice(0, 3))).toEqual([150, 75, 255]);
    const g = flat(4, 4, [100, 50, 200]);
    adjustColor(g, { saturation: 0 });
    const gray = grayByte(100, 50, 200); // the one grayscale rule (runtime/image/gray.ts)
    expect(Array.from(g.data.slice(0, 3))).toEqual([gray, gray, gray]);
    const c = flat(2, 1, [0, 0, 0]);
    c.data.set([200, 200, 200], 3);
    adjustColor(c, { contrast: 0 }); // everything becomes the mean gray level
    expect(Array.from(c.data)).toEqual([100, 100, 100, 100, 100, 100]);
    const h = flat(2, 2, [120, 80, 40]);
    adjustColor(h, { hue: 0 });
    expect(Array.from(h.data.slice(0, 3))).toEqual([120, 80, 40]);
  });

  it('blur keeps flat images flat, noise is seeded, erasing covers its rectangle', () => {
    const b = flat(16, 16, [90, 90, 90]);
    gaussianBlur(b, 2);
    expect(new Set(b.data).size).toBe(1);
    const n1 = flat(8, 8, [128, 128, 128]);
    const n2 = flat(8, 8, [128, 128, 128]);
    addNoise(n1, 10, 3);
    addNoise(n2, 10, 3);
    expect(n1.data).toEqual(n2.data);
    expect(new Set(n1.data).size).toBeGreaterThan(1);
    const e = flat(10, 10, [0, 0, 0]);
    eraseRect(e, [0.2, 0.3, 0.5, 0.4], 1);
    let touched = 0;
    for (let i = 0; i < 100; i++) if (e.data[i * 3] || e.data[i * 3 + 1] || e.data[i * 3 + 2]) touched++;
    expect(touched).toBeLessThanOrEqual(5 * 4);
    expect(touched).toBeGreaterThan(10);
  });

  it('the identity view is the evaluation preprocessing; sharp and typed-array renderers agree', async () => {
    const bytes = new Uint8Array(await readFile(shared('camera', 'winml_dog.jpg')));
    const clean = await decodeImage(bytes, spec);
    const base = await decodeBase(bytes, spec);
    expect(meanAbs(await renderViewSharp(base, IDENTITY_VIEW, spec), clean)).toBeLessThan(1);
    expect(meanAbs(renderView(base, IDENTITY_VIEW, 224, 224, spec.crop), clean)).toBeLessThan(1);
    // a horizontal flip is the mirror image of the clean view
    const flipped = await renderViewSharp(base, { ...IDENTITY_VIEW, hflip: true }, spec);
    const mirror = { ...clean, data: new Uint8Array(clean.data.length) };
    for (let y = 0; y < 224; y++) for (let x = 0; x < 224; x++) for (let c = 0; c < 3; c++) mirror.data[(y * 224 + x) * 3 + c] = clean.data[(y * 224 + (223 - x)) * 3 + c]!;
    expect(meanAbs(flipped, mirror)).toBeLessThan(1);
    // geometric ops: both renderers land much closer to each other than to the clean view
    for (const op of ['rotate:30', 'shear:20', 'crop:0.3', 'translate:0.3', 'pad:0.5', 'perspective:0.5']) {
      const p = sampleView(parseAugmentation(op), viewRng(1, 'dog', 3));
      const s = await renderViewSharp(base, p, spec);
      const t = renderView(base, p, 224, 224, spec.crop);
      expect(meanAbs(s, t), op).toBeLessThan(meanAbs(s, clean) / 2);
    }
  });
});

describe('folder-per-class datasets', () => {
  const flowers = shared('datasets', 'flowers5-small', 'train');
  function make(classes: Record<string, number>, extra: (root: string) => void = () => {}): string {
    const root = tempDir('edgetune-ds-');
    for (const [name, n] of Object.entries(classes)) {
      mkdirSync(path.join(root, name));
      const src = path.join(flowers, 'daisy');
      readdirSync(src).slice(0, n).forEach((f) => copyFileSync(path.join(src, f), path.join(root, name, f)));
    }
    extra(root);
    return root;
  }

  it('scans classes, counts, skips non-images, splits stratified and seeded', async () => {
    const root = make({ a: 10, b: 5 }, (r) => writeFileSync(path.join(r, 'a', 'notes.txt'), 'x'));
    const ds = await scanDataset(root);
    expect(ds.classes).toEqual(['a', 'b']);
    expect(classCounts(ds.items, 2)).toEqual([10, 5]);
    expect(ds.skipped).toEqual([{ file: path.join(root, 'a', 'notes.txt'), reason: 'not an image file (.txt)' }]);
    expect(imbalanceWarning([10, 5], ds.classes)).toBe('classes are imbalanced ("a" 10 images, "b" 5); training uses balanced class weights');
    const s1 = stratifiedSplit(ds.items, 2, 0.2, 1);
    expect(classCounts(s1.val, 2)).toEqual([2, 1]);
    expect(s1.train.length + s1.val.length).toBe(15);
    expect(stratifiedSplit(ds.items, 2, 0.2, 1)).toEqual(s1);
    expect(stratifiedSplit(ds.items, 2, 0.2, 2).val).not.toEqual(s1.val);
  });

  it('refuses a missing folder, one class, an empty class, unknown validation classes', async () => {
    await expect(scanDataset('/nonexistent/data')).rejects.toThrow('/nonexistent/data: dataset folder not found');
    const one = make({ only: 3 });
    await expect(scanDataset(one)).rejects.toThrow(`${one}: dataset has only one class folder ("only"); a classifier needs at least 2 (one sub-folder of images per class)`);
    const empty = make({ a: 3, b: 0 });
    await expect(scanDataset(empty)).rejects.toThrow(`${path.join(empty, 'b')}: class "b" has no images`);
    // a class of phone photos (.HEIC, which this build does not decode) says why it is empty (before: only "has no images")
    const heic = make({ a: 3, b: 0 });
    for (const n of ['IMG_0001.HEIC', 'IMG_0002.HEIC']) writeFileSync(path.join(heic, 'b', n), 'a phone photo');
    const msg = await scanDataset(heic).then(() => 'scanned', (e: Error) => e.message);
    expect(msg.replace(/; images are [^)]*\)/, '; …)')).toBe(`${path.join(heic, 'b')}: class "b" has no images (2 files passed over; the first, IMG_0001.HEIC: unsupported image format (.HEIC; …))`);
    // a dataset unzipped from a zip made on macOS: its __MACOSX folder of ._ files is not a class (before:
    // 'class "__MACOSX" has no images', finetune and eval stopped)
    const zipped = make({ a: 2, b: 2 }, (root) => {
      mkdirSync(path.join(root, '__MACOSX', 'a'), { recursive: true });
      writeFileSync(path.join(root, '__MACOSX', 'a', '._photo.jpg'), Buffer.from('0005160700020000', 'hex'));
    });
    const z = await scanDataset(zipped);
    expect([z.classes, z.items.length, z.skipped]).toEqual([['a', 'b'], 4, []]);
    const val = make({ a: 2, c: 2 });
    await expect(scanDataset(val, { classes: ['a', 'b'], what: 'validation set' })).rejects.toThrow(`${val}: validation set: class folder "c" is not a class of the training set (its classes: a, b)`);
  });
});
