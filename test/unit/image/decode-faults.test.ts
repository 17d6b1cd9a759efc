// Decode failures name the file's own problem: in a concurrent batch of broken files every error is
// about that file's own format (libvips keeps one error buffer per process, so a failure can be handed
// another file's message), an unsupported format is named as such, a dangling link is said to be one.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage, sniffFormat } from '../../../runtime/image/decode.js';
import type { PreprocessSpec } from '../../../runtime/image/preprocess.js';
import { shared, tempDir } from '../../helpers.js';

const spec = { width: 224, height: 224, channels: 3, mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 1, layout: 'nchw', scale: 255 } as unknown as PreprocessSpec;
const dir = shared('faults', 'decode-crosstalk');
const files = readdirSync(dir).sort();

const ownFormat = (f: string) => (f.endsWith('.png') ? { own: /png/i, other: /jpe?g/i } : { own: /jpe?g/i, other: /png/i });

describe('decode-crosstalk', () => {
  it('every broken file\'s error names its own format, in 25 concurrent rounds (paths and bytes)', async () => {
    expect(files).toHaveLength(12);
    const wrong: string[] = [];
    for (let round = 0; round < 25; round++) {
      const results = await Promise.all(
        files.map((f) => {
          const input = round % 2 ? readFileSync(path.join(dir, f)) : path.join(dir, f);
          return decodeImage(input instanceof Buffer ? new Uint8Array(input) : input, spec, {}, f).then(() => `${f}: decoded`, (e: Error) => e.message);
        }),
      );
      results.forEach((m, i) => {
        const { own, other } = ownFormat(files[i]!);
        const reason = m.slice(files[i]!.length + 2);
        if (!own.test(reason) || other.test(reason)) wrong.push(m);
      });
    }
    expect(wrong).toEqual([]);
  });
});

describe('format and read errors in words', () => {
  it('sniffFormat names formats by their first bytes', () => {
    expect(sniffFormat(new Uint8Array(readFileSync(path.join(dir, 'j0.jpg'))))).toBe('JPEG');
    expect(sniffFormat(new Uint8Array(readFileSync(path.join(dir, 'p0.png'))))).toBe('PNG');
    expect(sniffFormat(new Uint8Array(readFileSync(shared('faults', 'names-and-extensions', 'in', 'dog.bmp'))))).toBe('BMP');
  });

  it('a BMP is "unsupported image format (BMP; …)"', async () => {
    await expect(decodeImage(shared('faults', 'names-and-extensions', 'in', 'dog.bmp'), spec)).rejects.toThrow(/dog\.bmp: unsupported image format \(BMP; this build decodes .*\.jpg/);
  });

  it('.jfif and .jpe decode', async () => {
    for (const f of ['dog.jfif', 'dog.jpe']) expect((await decodeImage(shared('faults', 'names-and-extensions', 'in', f), spec)).width).toBe(224);
  });

  it('a dangling link is named as one', async () => {
    const d = tempDir();
    symlinkSync(path.join(d, 'nothing.jpg'), path.join(d, 'a.jpg'));
    await expect(decodeImage(path.join(d, 'a.jpg'), spec)).rejects.toThrow(/a\.jpg: dangling symbolic link/);
  });

  it('a FIFO and a device are "not a regular file", not an "empty file (0 bytes)" (their size is 0)', async () => {
    const d = tempDir();
    const fifo = path.join(d, 'frame.jpg');
    execFileSync('mkfifo', [fifo]);
    // before: `…/frame.jpg: empty file (0 bytes)` (a FIFO in a calibration folder, `classify /dev/zero`)
    await expect(decodeImage(fifo, spec)).rejects.toThrow(`${fifo}: not a regular file (it is a FIFO (named pipe))`);
    await expect(decodeImage('/dev/zero', spec)).rejects.toThrow('/dev/zero: not a regular file (it is a character device)');
  });
});
