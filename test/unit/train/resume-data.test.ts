// The resume data written beside a fine-tuned model (<name>.resume.bin): embeddings, classes, splits
// and content hashes round-trip exactly; a file of another model or a damaged one is not used; the
// added classes' items are split with the one stratified rule.

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addedItems, decodeResume, encodeResume, readResume, resumePath, type ResumeData } from '../../../runtime/train/node/resume.js';
import { shared, tempDir } from '../../helpers.js';

const data: ResumeData = {
  model: 'f'.repeat(64),
  labels: ['daisy', 'rose'],
  dims: 3,
  images: [
    { label: 0, split: 'train', views: 2, name: 'daisy/a.jpg', sha256: '1'.repeat(64) },
    { label: 1, split: 'train', views: 1, name: 'rose/b.jpg', sha256: '2'.repeat(64) },
    { label: 1, split: 'val', views: 1, name: 'rose/c.jpg', sha256: '3'.repeat(64) },
  ],
  features: Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2.25),
};

describe('resume data', () => {
  it('round-trips', () => {
    const back = decodeResume(encodeResume(data));
    expect(back).toEqual(data);
  });

  it('refuses a wrong row count and a damaged file', () => {
    expect(() => encodeResume({ ...data, features: new Float32Array(11) })).toThrow(/Expected 4 × 3 floats/);
    const b = encodeResume(data);
    expect(() => decodeResume(b.subarray(0, b.length - 4))).toThrow(/expected 12 floats, found 11/);
    expect(() => decodeResume(new TextEncoder().encode('hello'))).toThrow(/not an edgetune resume file/);
  });

  it('readResume: used only for the model it belongs to', async () => {
    const d = tempDir();
    const model = path.join(d, 'm.onnx');
    expect(resumePath(model)).toBe(path.join(d, 'm.resume.bin'));
    const warnings: string[] = [];
    expect(await readResume(model, data.model, (m) => warnings.push(m))).toBeUndefined();
    writeFileSync(resumePath(model), encodeResume(data));
    expect((await readResume(model, data.model, (m) => warnings.push(m)))?.labels).toEqual(['daisy', 'rose']);
    expect(await readResume(model, 'e'.repeat(64), (m) => warnings.push(m))).toBeUndefined();
    expect(warnings).toEqual([`${resumePath(model)} belongs to another model (the model was replaced); the training folders are read again`]);
  });

  it('addedItems: only the new folders are read, a seeded split of them held out', async () => {
    const d = tempDir();
    const src = shared('faults', 'divergence', 'ds', 'rose');
    mkdirSync(path.join(d, 'tulip'));
    for (let i = 1; i <= 5; i++) copyFileSync(path.join(src, `rose_${i}.jpg`), path.join(d, 'tulip', `t${i}.jpg`));
    const r = await addedItems(['daisy', 'rose'], [{ name: 'tulip', dir: path.join(d, 'tulip') }], 0.2, 42);
    expect(r.labels).toEqual(['daisy', 'rose', 'tulip']);
    expect(r.train).toHaveLength(4);
    expect(r.val).toHaveLength(1);
    expect([...r.train, ...r.val].every((i) => i.label === 2)).toBe(true);
    await expect(addedItems(['daisy', 'rose'], [{ name: 'rose', dir: path.join(d, 'tulip') }], 0.2, 42)).rejects.toThrow(/already has a class "rose"/);
    await expect(addedItems(['daisy', 'rose'], [{ name: 'x', dir: path.join(d, 'nope') }], 0.2, 42)).rejects.toThrow(/class "x" has no images/);
  });
});
