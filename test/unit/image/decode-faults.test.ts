// Decode failures name the file's own problem: in a concurrent batch of broken files every error is
// about that file's own format (libvips keeps one error buffer per process, so a failure can be handed
// another file's message), an unsupported format is named as such, a dangling link is said to be one.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
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

// A HEIF file whose one image item is HEVC-coded ('hvc1'), as an iPhone's .HEIC photo is: ftyp, meta
// (hdlr pict, pitm, iinf/infe, iloc, iprp with hvcC + ispe) and mdat (ISO/IEC 23008-12). The payload is
// not real HEVC: libheif refuses the codec before it reads it.
function heicFile(width: number, height: number): Buffer {
  const box = (type: string, ...parts: Buffer[]) => {
    const body = Buffer.concat(parts);
    const h = Buffer.alloc(8);
    h.writeUInt32BE(8 + body.length);
    h.write(type, 4, 'latin1');
    return Buffer.concat([h, body]);
  };
  const full = (type: string, version: number, ...parts: Buffer[]) => box(type, Buffer.from([version, 0, 0, 0]), ...parts);
  const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const payload = Buffer.alloc(32, 7);
  const make = (offset: number) =>
    Buffer.concat([
      box('ftyp', Buffer.from('heic'), u32(0), Buffer.from('mif1heic')),
      full('meta', 0,
        full('hdlr', 0, u32(0), Buffer.from('pict'), Buffer.alloc(12), Buffer.from([0])),
        full('pitm', 0, u16(1)),
        full('iinf', 0, u16(1), full('infe', 2, u16(1), u16(0), Buffer.from('hvc1'), Buffer.from([0]))),
        full('iloc', 0, Buffer.from([0x44, 0x00]), u16(1), u16(1), u16(0), u16(1), u32(offset), u32(payload.length)),
        box('iprp', box('ipco', box('hvcC', Buffer.from([1]), Buffer.alloc(22)), full('ispe', 0, u32(width), u32(height))), full('ipma', 0, u32(1), u16(1), Buffer.from([2, 0x81, 0x02])))),
      box('mdat', payload),
    ]);
  return make(make(0).length - payload.length);
}

/** An uncompressed TIFF written by sharp whose one strip offset points past the end of the file. */
async function badStripTiff(): Promise<Buffer> {
  const tif = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 0, g: 100, b: 0 } } }).tiff({ compression: 'none' }).toBuffer();
  const le = tif[0] === 0x49;
  const u16 = (o: number) => (le ? tif.readUInt16LE(o) : tif.readUInt16BE(o));
  const ifd = le ? tif.readUInt32LE(4) : tif.readUInt32BE(4);
  for (let i = 0; i < u16(ifd); i++) {
    const e = ifd + 2 + 12 * i;
    if (u16(e) === 273) le ? tif.writeUInt32LE(0x7fffff00, e + 8) : tif.writeUInt32BE(0x7fffff00, e + 8); // StripOffsets
  }
  return tif;
}

describe('libvips messages with paths, codecs and signatures (photos users bring)', () => {
  it('an HEVC HEIC photo is named as one, with what to do (was "x.heic: x.heic: bad seek to 3587", one of libheif\'s probing lines)', async () => {
    const f = path.join(tempDir(), 'IMG_0001.HEIC');
    writeFileSync(f, heicFile(64, 48));
    const expected = `${f}: unsupported image compression (AVIF/HEIF compressed with HEVC, a HEIC photo as phones save it: this build decodes HEIF only as AVIF); convert it to JPEG or PNG first`;
    await expect(decodeImage(f, spec)).rejects.toThrow(expected);
    await expect(decodeImage(new Uint8Array(readFileSync(f)), spec, {}, 'IMG_0001.HEIC')).rejects.toThrow(/^IMG_0001\.HEIC: unsupported image compression \(AVIF\/HEIF compressed with HEVC/);
  });

  it('damaged TIFFs decoded 12 at once: each error is about its own file, its path said once (libtiff prefixes lines with the path it read)', async () => {
    const d = tempDir();
    const bad = await badStripTiff();
    const names = Array.from({ length: 12 }, (_, i) => path.join(d, `scan-${i}.tif`));
    for (const n of names) writeFileSync(n, bad);
    for (let round = 0; round < 5; round++) {
      const messages = await Promise.all(names.map((n) => decodeImage(n, spec).then(() => `${n}: decoded`, (e: Error) => e.message)));
      messages.forEach((m, i) => {
        expect(m.startsWith(`${names[i]}: `)).toBe(true);
        // before: `…/scan-3.tif: …/scan-3.tif: bad seek to 2147483392` (its own path twice) or another scan's path
        expect(m.slice(names[i]!.length + 2)).not.toContain(d);
        expect(m.slice(names[i]!.length + 2)).not.toMatch(/bad seek/);
      });
    }
  });

  it('JPEG 2000 and BigTIFF are named by their signatures; a TIFF its decoder does not recognise is damaged, not "unsupported (TIFF; this build decodes … .tif)"', async () => {
    const jp2 = Buffer.concat([Buffer.from('0000000c6a5020200d0a870a', 'hex'), Buffer.alloc(64, 0x41)]);
    const bigTiff = Buffer.concat([Buffer.from('49492b000800000000ffffffffffff80', 'hex'), Buffer.alloc(64, 0x41)]);
    const tiff = Buffer.concat([Buffer.from('49492a00ffffff7f', 'hex'), Buffer.alloc(64, 0x41)]);
    expect(sniffFormat(jp2)).toBe('JPEG 2000');
    expect(sniffFormat(Buffer.from('ff4fff51', 'hex'))).toBe('JPEG 2000');
    expect(sniffFormat(bigTiff)).toBe('TIFF');
    expect(sniffFormat(Buffer.from('4d4d002b', 'hex'))).toBe('TIFF');
    // before: 'not a supported image (unsupported image format)' for both
    await expect(decodeImage(new Uint8Array(jp2), spec, {}, 'scan.jp2')).rejects.toThrow(/^scan\.jp2: unsupported image format \(JPEG 2000; this build decodes .*\.jpg/);
    await expect(decodeImage(new Uint8Array(bigTiff), spec, {}, 'big.tif')).rejects.toThrow('big.tif: corrupt image (a damaged TIFF file: its decoder does not recognise it)');
    await expect(decodeImage(new Uint8Array(tiff), spec, {}, 'old.tif')).rejects.toThrow('old.tif: corrupt image (a damaged TIFF file: its decoder does not recognise it)');
  });
});

describe('formats this build does not decode, named (libjpeg-turbo testimages: monkey12.jpg, testorig.ppm)', () => {
  it('a 12-bit JPEG says so (was libjpeg\'s "VipsJpeg: Unsupported JPEG data precision 12"); a PPM is named PNM (was "not a supported image")', async () => {
    const jpeg = await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 90, g: 120, b: 30 } } }).jpeg().toBuffer();
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(0);
    jpeg[sof + 4] = 12; // the frame header's sample precision (ITU T.81 B.2.2): 12 bits
    await expect(decodeImage(new Uint8Array(jpeg), spec, {}, 'scan12.jpg')).rejects.toThrow('scan12.jpg: unsupported image format (12-bit JPEG; this build decodes 8-bit JPEG); convert it to an 8-bit JPEG or a PNG first');
    const ppm = Buffer.concat([Buffer.from('P6\n2 2\n255\n'), Buffer.alloc(12, 200)]);
    expect(sniffFormat(ppm)).toBe('PNM');
    await expect(decodeImage(new Uint8Array(ppm), spec, {}, 'frame.ppm')).rejects.toThrow(/^frame\.ppm: unsupported image format \(PNM; this build decodes .*\.jpg/);
  });
});
