// The resume data written beside a fine-tuned model (<name>.resume.bin): embeddings, classes, splits
// and content hashes round-trip exactly; a file of another model is not used, a damaged one is refused
// (checksum), an older unchecksummed one is read with a warning; the
// added classes' items are split with the one stratified rule.

import { createHash } from 'node:crypto';
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

  it('version 3 carries the open-set taps\' rows; data without taps is still written as version 2, byte for byte', () => {
    const taps = [
      { tensor: '603_quantized', dims: 2, features: Float32Array.from({ length: 8 }, (_, i) => i + 0.25) },
      { tensor: '612_quantized', dims: 1, features: Float32Array.from({ length: 4 }, (_, i) => -i) },
    ];
    const v3 = encodeResume({ ...data, taps });
    expect(new TextDecoder().decode(v3.subarray(0, 18))).toBe('edgetune.resume 3\n');
    expect(decodeResume(v3)).toEqual({ ...data, taps });
    const v2 = encodeResume(data);
    expect(new TextDecoder().decode(v2.subarray(0, 18))).toBe('edgetune.resume 2\n');
    expect(encodeResume({ ...data, taps: [] })).toEqual(v2);
    // version 2 and 1 files decode without taps (a resume from them keeps the single-embedding score)
    expect(decodeResume(v2).taps).toBeUndefined();
    // a tap's rows must cover every image's views, as the embedding's do
    expect(() => encodeResume({ ...data, taps: [{ ...taps[0]!, features: new Float32Array(7) }] })).toThrow(/Expected 4 × 2 floats/);
    // the checksum covers the taps' rows: a flipped bit in the last tap's last float is refused
    const bad = v3.slice();
    bad[bad.length - 33]! ^= 1;
    expect(() => decodeResume(bad)).toThrow(/^checksum mismatch/);
  });

  it('refuses a wrong row count and a damaged file', () => {
    expect(() => encodeResume({ ...data, features: new Float32Array(11) })).toThrow(/Expected 4 × 3 floats/);
    const b = encodeResume(data);
    expect(() => decodeResume(b.subarray(0, b.length - 4))).toThrow(/^checksum mismatch \(sha256 expected [0-9a-f]{64}, found [0-9a-f]{64}\): the file is damaged$/);
    // the layout is still checked in a version 1 file (no checksum)
    const v1 = b.slice(0, b.length - 32);
    v1.set(new TextEncoder().encode('edgetune.resume 1\n'), 0);
    expect(() => decodeResume(v1.subarray(0, v1.length - 4))).toThrow(/expected 12 floats, found 11/);
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

  it('checksummed: a flipped byte is refused with both hashes; a version 1 file (no checksum) is read with a warning', async () => {
    const d = tempDir();
    const model = path.join(d, 'm.onnx');
    const good = encodeResume(data);
    const bad = good.slice();
    bad[bad.length - 40]! ^= 1; // the last float's bits
    writeFileSync(resumePath(model), bad);
    const expected = Buffer.from(bad.subarray(bad.length - 32)).toString('hex');
    const actual = createHash('sha256').update(bad.subarray(0, bad.length - 32)).digest('hex');
    await expect(readResume(model, data.model, () => undefined)).rejects.toThrow(
      `${resumePath(model)}: checksum mismatch (sha256 expected ${expected}, found ${actual}): the file is damaged; delete it to read the training folders again`,
    );
    // version 1 (before the checksum): the same layout with its own magic line and no trailing hash
    const v1 = good.slice(0, good.length - 32);
    v1.set(new TextEncoder().encode('edgetune.resume 1\n'), 0);
    writeFileSync(resumePath(model), v1);
    const warnings: string[] = [];
    expect(await readResume(model, data.model, (m) => warnings.push(m))).toEqual(data);
    expect(warnings).toEqual([`${resumePath(model)} has no checksum (written by an older edgetune): its embeddings are used unverified`]);
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
