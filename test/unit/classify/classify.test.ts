// Inference on real models and photos: labels, 1000-way accuracy on hymenoptera/val, fp16, batch,
// the wasm provider, odd image encodings and EXIF orientation.

import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier, type Classifier } from '../../../runtime/classify/classifier.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { liveSessionCount } from '../../../runtime/session/session.js';
import { specOf } from '../../../models/registry.js';
import { loadRegistry } from '../../../models/loader.js';
import { shared, tempDir } from '../../helpers.js';
import { writeOddFormats } from '../../fixtures.js';
import sharp from 'sharp';

const PHOTOS: [string, number, string][] = [
  ['winml_dog.jpg', 207, 'Golden Retriever'],
  ['hwacc_imagenet_finch.jpeg', 12, 'house finch'],
  ['winml_hummingbird.jpg', 94, 'hummingbird'],
];

async function hymenopteraTop1(c: Classifier): Promise<number> {
  let ok = 0;
  let n = 0;
  for (const [cls, idx] of [['ants', 310], ['bees', 309]] as const) {
    const dir = shared('datasets', 'hymenoptera', 'val', cls);
    const files = readdirSync(dir).sort().map((f) => path.join(dir, f));
    for await (const r of c.classifyFiles(files, { topK: 1, batch: c.maxBatch > 1 ? 16 : 1 })) {
      if (r.error) throw r.error;
      n++;
      if (r.top[0]!.index === idx) ok++;
    }
  }
  expect(n).toBe(153);
  return ok / n;
}

// Reference figures from a plain pipeline (MODELS.md); ours must match or beat them.
const MODELS: [string, number][] = [
  ['mobilenetv2-int8', 0.797],
  // The fp32 twin has no published figure on this set: 0.784 is what this pipeline measured (its int8 twin: 0.810).
  ['mobilenetv2-fp32', 0.784],
  ['squeezenet1.1', 0.647],
  ['mobilenetv1-0.25-128', 0.294],
];

describe.each(MODELS)('%s', (id, reference) => {
  let c: Classifier;
  beforeAll(async () => {
    c = await loadClassifier(id, { providers: ['cpu'], topK: 3 });
  });
  afterAll(() => c.dispose());

  it.each(PHOTOS)('classifies %s as %s', async (file, index, label) => {
    const r = await c.classify(shared('camera', file));
    expect(r.top[0]).toMatchObject({ index, label });
    // top-k agrees with the full distribution: the winner is its argmax, with the same probability
    const [p] = await c.probabilities([await c.decode(shared('camera', file))]);
    let best = 0;
    for (let i = 1; i < p!.length; i++) if (p![i]! > p![best]!) best = i;
    expect(best - c.post.labelOffset).toBe(index);
    expect(r.top[0]!.score).toBeCloseTo(p![best]!, 6);
  });

  it(`hymenoptera/val 1000-way top-1 matches or beats the reference ${reference}`, async () => {
    const acc = await hymenopteraTop1(c);
    // measured: mobilenetv2-int8 0.810, mobilenetv2-fp32 0.784, squeezenet1.1 0.647, mobilenetv1-0.25-128 0.379
    expect(acc).toBeGreaterThanOrEqual(reference);
  });
});

describe('other models and paths', () => {
  it('mnist reads the digit 8', async () => {
    const c = await loadClassifier('mnist', { providers: ['cpu'] });
    const r = await c.classify(shared('camera', 'winml_mnist_28.png'));
    expect(r.top[0]).toMatchObject({ index: 8, label: '8' });
    await c.dispose();
  });

  it('the fp16 SqueezeNet is fed float16 and agrees with the fp32 one', async () => {
    const f16 = await loadClassifier('squeezenet1.1-fp16', { providers: ['cpu'] });
    const f32 = await loadClassifier('squeezenet1.1', { providers: ['cpu'] });
    expect(f16.spec.dtype).toBe('float16');
    for (const [file, index] of PHOTOS) {
      const a = await f16.classify(shared('camera', file));
      const b = await f32.classify(shared('camera', file));
      expect(a.top[0]!.index).toBe(index);
      // measured at most 2.3e-4 (the fp32 file is an exact widening of the fp16 weights)
      expect(Math.abs(a.top[0]!.score - b.top[0]!.score)).toBeLessThan(2e-3);
    }
    await f16.dispose();
    await f32.dispose();
  });

  it('batch > 1 gives the same probabilities as one at a time', async () => {
    const c = await loadClassifier('mobilenetv2-int8', { providers: ['cpu'] });
    expect(c.maxBatch).toBeGreaterThan(1);
    const imgs = await Promise.all(PHOTOS.map(([f]) => c.decode(shared('camera', f))));
    const batched = await c.probabilities(imgs);
    for (let i = 0; i < imgs.length; i++) {
      const [single] = await c.probabilities([imgs[i]!]);
      let maxDiff = 0;
      for (let j = 0; j < single!.length; j++) maxDiff = Math.max(maxDiff, Math.abs(single![j]! - batched[i]![j]!));
      // measured 0 (bit-identical) on this CPU; the bound leaves room for batch-size-specific kernels elsewhere
      expect(maxDiff).toBeLessThan(1e-4);
    }
    await c.dispose();
  });

  it('the wasm provider (onnxruntime-web in Node) serves the same session API', async () => {
    const c = await loadClassifier('mobilenetv2-int8', { providers: ['wasm'], threads: 1 });
    expect(c.provider).toBe('wasm');
    const r = await c.classify(shared('camera', 'winml_dog.jpg'));
    expect(r.top[0]).toMatchObject({ index: 207, label: 'Golden Retriever' });
    await c.dispose();
  });

  it('a model file given by path with no registry entry works, and says what it assumed', async () => {
    // The registry's file name is what identifies a shared model; a copy under another name has no entry.
    const dir = tempDir();
    const copy = path.join(dir, 'my-model.onnx');
    await sharp(shared('camera', 'winml_dog.jpg')).toFile(path.join(dir, 'x.png'));
    const { copyFileSync } = await import('node:fs');
    copyFileSync(shared('models', 'mobilenetv2-12-int8.onnx'), copy);
    const c = await loadClassifier(copy, { providers: ['cpu'] });
    expect(c.entry).toBeUndefined();
    expect(c.assumptions.join('; ')).toMatch(/NCHW 224x224.*ImageNet labels/);
    const r = await c.classify(shared('camera', 'winml_dog.jpg'));
    expect(r.top[0]!.label).toBe('Golden Retriever');
    await c.dispose();
  });
});

describe('image decoding', () => {
  const spec = specOf(loadRegistry().require('mobilenetv2-int8'));

  it('16-bit, CMYK, palette, gray+alpha and RGBA images all become 8-bit RGB and classify', async () => {
    const files = await writeOddFormats(tempDir(), shared('camera', 'winml_dog.jpg'));
    const c = await loadClassifier('mobilenetv2-int8', { providers: ['cpu'] });
    for (const [kind, file] of Object.entries(files)) {
      const img = await decodeImage(file, spec);
      expect(img, kind).toMatchObject({ width: 224, height: 224, channels: 3 });
      const r = await c.classify(file);
      expect(r.top[0]!.label, kind).toBe('Golden Retriever');
    }
    await c.dispose();
  });

  it('applies EXIF orientation', async () => {
    const dir = tempDir();
    const files = await writeOddFormats(dir, shared('camera', 'winml_dog.jpg'));
    const upright = await decodeImage(path.join(dir, 'rgba.png'), spec);
    const rotated = await decodeImage(files.rotated!, spec);
    // The same pixels stored sideways without the EXIF tag:
    const sideways = path.join(dir, 'sideways.jpg');
    await sharp(shared('camera', 'winml_dog.jpg')).resize(320, 320).rotate(-90).jpeg().toFile(sideways);
    const raw = await decodeImage(sideways, spec);
    const mad = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;
    // measured: 2.49 grey levels from the upright PNG (JPEG re-encoding), 58.3 for the sideways pixels
    expect(mad(upright.data as Uint8Array, rotated.data as Uint8Array)).toBeLessThan(6);
    expect(mad(upright.data as Uint8Array, raw.data as Uint8Array)).toBeGreaterThan(20);
  });
});

describe('lazy classifiers (describe from the ONNX file, open the session on first use)', () => {
  // A registry model, and an unregistered file described only by its graph (assumptions, sniffed outputs).
  const unregistered = path.join(tempDir('edgetune-lazy-'), 'squeeze-copy.onnx');
  beforeAll(() => copyFileSync(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'), unregistered));

  it.each([['mobilenetv2-int8'], ['unregistered file']])('%s: same description and predictions as an eager one, no session until used', async (which) => {
    const ref = which === 'mobilenetv2-int8' ? which : unregistered;
    const eager = await loadClassifier(ref, { threads: 1 });
    const before = liveSessionCount();
    const lazy = await loadClassifier(ref, { threads: 1, lazy: true });
    try {
      expect(liveSessionCount()).toBe(before);
      expect(lazy.provider).toBe('unopened');
      expect(() => lazy.session).toThrow(`${lazy.id}: the session of a lazy classifier is not open yet (await open() first)`);
      for (const k of ['id', 'spec', 'post', 'inputName', 'outputName', 'maxBatch', 'assumptions'] as const) expect(lazy[k], k).toEqual(eager[k]);
      if (which !== 'mobilenetv2-int8') expect(lazy.assumptions.length).toBeGreaterThan(0);
      const dog = shared('camera', 'winml_dog.jpg');
      const [a, b] = [await eager.classify(dog), await lazy.classify(dog)];
      expect(b.top).toEqual(a.top);
      if (which === 'mobilenetv2-int8') expect(b.top[0]!.index).toBe(207);
      expect(lazy.provider).toBe(eager.provider); // whatever this machine serves on (cpu here)
      expect(liveSessionCount()).toBe(before + 1);
      expect(await lazy.open()).toBe(lazy.session);
      expect(liveSessionCount()).toBe(before + 1);
    } finally {
      await lazy.dispose();
      await eager.dispose();
    }
    expect(liveSessionCount()).toBe(before - 1);
  });

  it('concurrent first uses open one session; a disposed lazy classifier refuses to reopen', async () => {
    const before = liveSessionCount();
    const lazy = await loadClassifier('squeezenet1.1', { threads: 1, lazy: true });
    const photos = PHOTOS.slice(0, 3).map(([f]) => shared('camera', f));
    const results = await Promise.all(photos.map((f) => lazy.classify(f)));
    expect(results).toHaveLength(3);
    expect(liveSessionCount()).toBe(before + 1);
    await lazy.dispose();
    expect(liveSessionCount()).toBe(before);
    await expect(lazy.open()).rejects.toThrow('squeezenet1.1: classifier was disposed');
  });

  it('a file that is not ONNX is refused at load, naming the file', async () => {
    const bad = path.join(tempDir('edgetune-lazy-bad-'), 'notes.onnx');
    writeFileSync(bad, 'not a model at all');
    await expect(loadClassifier(bad, { lazy: true })).rejects.toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not a readable ONNX model \\(`));
  });
});
