// Damaged TIFFs are named by their own problem, in the words the other formats' failures use
// (`corrupt image (a damaged TIFF file: …)`, `corrupt or truncated image (…)`): libtiff reports the codecs
// inside a TIFF (libjpeg's words about a JPEG-compressed strip were told as a "0-bit JPEG"), passes its
// warnings on ahead of the error, and libvips' one error buffer per process handed a TIFF failing beside
// another TIFF the other's reason. The TIFFs are a real photo (winml_dog.jpg) written by sharp, with one
// header field or strip byte changed at test time.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeFull, decodeImage } from '../../../runtime/image/decode.js';
import type { PreprocessSpec } from '../../../runtime/image/preprocess.js';
import { shared, tempDir } from '../../helpers.js';

const spec: PreprocessSpec = { width: 224, height: 224, channels: 3, layout: 'NCHW', colorOrder: 'RGB', range: [0, 1], mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 1, dtype: 'float32' };

/** winml_dog.jpg, 64 px wide, as a TIFF with `compression`. */
const photoTiff = (compression: 'jpeg' | 'lzw' | 'none') => sharp(shared('camera', 'winml_dog.jpg')).resize(64).tiff({ compression }).toBuffer();

/** The byte offset of the IFD entry of `tag` in a little-endian TIFF (TIFF 6.0 §2: 2-byte tag, type, 4-byte count, 4-byte value). */
function entryOf(tif: Buffer, tag: number): number {
  expect(tif.toString('latin1', 0, 2)).toBe('II');
  const ifd = tif.readUInt32LE(4);
  for (let i = 0; i < tif.readUInt16LE(ifd); i++) if (tif.readUInt16LE(ifd + 2 + 12 * i) === tag) return ifd + 2 + 12 * i;
  throw new Error(`no tag ${tag}`);
}

/** A copy of `tif` with `edit` applied. */
const damaged = (tif: Buffer, edit: (b: Buffer) => void): Buffer => {
  const b = Buffer.from(tif);
  edit(b);
  return b;
};

const dir = tempDir('edgetune-tiff-');
/** name → [bytes, the message decodeImage gives for the file alone]. */
const cases: Record<string, [Buffer, string]> = {};

beforeAll(async () => {
  const [jpeg, lzw] = await Promise.all([photoTiff('jpeg'), photoTiff('lzw')]);
  const strip = jpeg.readUInt32LE(entryOf(jpeg, 273) + 8); // StripOffsets: the first strip's JPEG stream
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]), strip);
  expect(sof).toBeGreaterThan(strip);
  const add = (name: string, b: Buffer, message: string) => (cases[name] = [b, message]);
  // before: `unsupported image format (0-bit JPEG; this build decodes 8-bit JPEG); convert it to an 8-bit JPEG or a PNG first`
  add('precision.tif', damaged(jpeg, (b) => (b[sof + 4] = 0)), 'corrupt image (a damaged TIFF file: Unsupported JPEG data precision 0)');
  // before: `tiff2vips: Not a JPEG file: starts with 0x00 0xd8`
  add('soi.tif', damaged(jpeg, (b) => (b[strip] = 0)), 'corrupt image (a damaged TIFF file: Not a JPEG file: starts with 0x00 0xd8)');
  // before: `tiff2vips: source input: Bad value 0 for "Orientation" tag`
  add('orientation.tif', damaged(lzw, (b) => b.writeUInt16LE(0, entryOf(lzw, 274) + 8)), 'corrupt image (a damaged TIFF file: Bad value 0 for "Orientation" tag)');
  // BitsPerSample's entry renamed InkNames (333): before, libtiff's warning was told, cut short:
  // `Input file has corrupt header: tiff2vips: Warning source input; Tag InkNames:`
  add('inknames.tif', damaged(lzw, (b) => b.writeUInt16LE(333, entryOf(lzw, 258))), 'corrupt image (a damaged TIFF file: samples_per_pixel not a whole number of bytes)');
  // PhotometricInterpretation 255: before, `vips_colourspace: no known route from 'multiband' to 'srgb'`
  add('photometric.tif', damaged(lzw, (b) => b.writeUInt16LE(255, entryOf(lzw, 262) + 8)), 'corrupt image (a damaged TIFF file: its header\'s 3 channels in colour space "multiband" do not convert to RGB)');
  // StripByteCounts 65535, past the end of the file: before, `corrupt or truncated image (tiff2vips: Read error …)`
  const stripLzw = lzw.readUInt32LE(entryOf(lzw, 273) + 8);
  add('strip.tif', damaged(lzw, (b) => b.writeUInt32LE(0xffff, entryOf(lzw, 279) + 8)), `corrupt or truncated image (a damaged TIFF file: Read error at scanline 4294967295; got ${lzw.length - stripLzw} bytes, expected 65535)`);
  for (const [name, [bytes]] of Object.entries(cases)) writeFileSync(path.join(dir, name), bytes);
});

describe('a damaged TIFF says what is wrong with it', () => {
  it('alone: the file, then its own problem, from a path and from bytes', async () => {
    for (const [name, [bytes, message]] of Object.entries(cases)) {
      const f = path.join(dir, name);
      await expect(decodeImage(f, spec), name).rejects.toThrow(`${f}: ${message}`);
      await expect(decodeImage(new Uint8Array(bytes), spec, {}, name), name).rejects.toThrow(`${name}: ${message}`);
      await expect(decodeFull(f), name).rejects.toThrow(`${f}: ${message}`);
    }
  });

  it('alone, a failed decode runs once; beside another decode it is run again (the crosstalk check)', async () => {
    // before: every failure was re-run at least once, alone or not (2 to 4 runs: a single `classify
    // bad.tif` paid twice; a damaged 8000x8000 LZW TIFF 272 ms against 163 ms for one run, review1 S1)
    const runs = vi.spyOn(sharp.prototype, 'toBuffer');
    try {
      for (const [name, [, message]] of Object.entries(cases)) {
        runs.mockClear();
        await expect(decodeImage(path.join(dir, name), spec), name).rejects.toThrow(message);
        // inknames.tif fails reading its header (metadata()), before any pixels are asked for
        expect(runs.mock.calls.length, name).toBe(name === 'inknames.tif' ? 0 : 1);
      }
      runs.mockClear();
      const names = Object.keys(cases);
      await Promise.all(names.map((n) => decodeImage(path.join(dir, n), spec).catch(() => undefined)));
      // 5 first runs ask for pixels; each failure that overlapped another decode is run again
      expect(runs.mock.calls.length).toBeGreaterThan(names.length - 1);
    } finally {
      runs.mockRestore();
    }
  });

  it('decoded all at once, 8 rounds: each error is its own file\'s (before: another TIFF\'s reason, 20 of 120 in one run)', async () => {
    const names = Object.keys(cases);
    const wrong: string[] = [];
    for (let round = 0; round < 8; round++) {
      const got = await Promise.all(names.map((n) => decodeImage(path.join(dir, n), spec).then(() => 'decoded', (e: Error) => e.message)));
      got.forEach((m, i) => m !== `${path.join(dir, names[i]!)}: ${cases[names[i]!]![1]}` && wrong.push(m));
    }
    expect(wrong).toEqual([]);
  });
});
