// Bad-input fixtures generated at test time (nothing binary is committed): an empty file, a truncated
// JPEG, a text file named .jpg, a PNG whose header claims 30000x30000 pixels, and odd-format images
// (16-bit, CMYK, palette, grayscale+alpha) made with sharp from a real photo.

import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid PNG header (IHDR) for a width×height RGB image with a tiny IDAT: a decompression bomb header. */
export function bombPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1024))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export function writeBadInputs(dir: string, goodJpeg: string): Record<'empty' | 'truncated' | 'text' | 'bomb', string> {
  const files = {
    empty: path.join(dir, 'empty.jpg'),
    truncated: path.join(dir, 'truncated.jpg'),
    text: path.join(dir, 'notes.jpg'),
    bomb: path.join(dir, 'bomb.png'),
  };
  writeFileSync(files.empty, '');
  const jpg = readFileSync(goodJpeg);
  writeFileSync(files.truncated, jpg.subarray(0, Math.floor(jpg.length / 3)));
  writeFileSync(files.text, 'this is not an image\n');
  writeFileSync(files.bomb, bombPng(30000, 30000));
  return files;
}

/** The same photo in awkward encodings. */
export async function writeOddFormats(dir: string, photo: string): Promise<Record<string, string>> {
  const base = sharp(photo).resize(320, 320);
  const out = {
    rgb16: path.join(dir, 'rgb16.png'),
    cmyk: path.join(dir, 'cmyk.jpg'),
    palette: path.join(dir, 'palette.png'),
    grayAlpha: path.join(dir, 'gray-alpha.png'),
    rgba: path.join(dir, 'rgba.png'),
    rotated: path.join(dir, 'exif-rotated.jpg'),
  };
  await base.clone().toColourspace('rgb16').png().toFile(out.rgb16);
  await base.clone().toColourspace('cmyk').jpeg().toFile(out.cmyk);
  await base.clone().png({ palette: true, colours: 256 }).toFile(out.palette);
  await base.clone().greyscale().ensureAlpha().png().toFile(out.grayAlpha);
  await base.clone().ensureAlpha().png().toFile(out.rgba);
  // Pixels stored rotated 90° with an EXIF orientation (6 = rotate 90° CW to display) that undoes it.
  await base.clone().rotate(-90).withMetadata({ orientation: 6 }).jpeg().toFile(out.rotated);
  return out;
}
