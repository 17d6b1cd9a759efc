// Importer files that must be UTF-8 text and are not: a tfjs model.json, Teachable Machine's
// metadata.json beside it, and the labels.txt packed inside a .tflite. Each is refused naming the file
// (runtime/core/text.ts utf8Text, the check label and card files go through), where it used to be read
// as text with U+FFFD or NUL characters in it: a corrupt label became a class name, a binary model.json
// was "not valid JSON". Real files (the Teachable Machine twins export, Coral's MobileNetV2 with its
// packed ImageNet labels) copied to a temp folder and corrupted.

import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { importModelFile } from '../../../models/import.js';
import { readAssociatedFiles } from '../../../runtime/onnx/import/tflite-card.js';
import { shared, tempDir } from '../../helpers.js';

const TWINS = shared('models', 'teachable-machine', 'twins-tfjs');
const CORAL = shared('models', 'tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite');
const work = tempDir('edgetune-import-not-text-');
const cacheDir = path.join(work, 'cache');

/** A copy of the twins export in a fresh folder; returns the folder. */
function copyTwins(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  for (const f of ['model.json', 'metadata.json', 'weights.bin']) copyFileSync(path.join(TWINS, f), path.join(dir, f));
  return dir;
}

/** `bytes` with the first occurrence of `find` replaced by `by` (same length), failing loudly when absent. */
function replaced(bytes: Uint8Array, find: string, by: Uint8Array): { bytes: Uint8Array; at: number } {
  const at = Buffer.from(bytes).indexOf(find, 0, 'latin1');
  if (at < 0) throw new Error(`"${find}" not found`);
  const out = Uint8Array.from(bytes);
  out.set(by, at);
  return { bytes: out, at };
}

/** A zip of `files` stored uncompressed (how the TFLite metadata writer packs associated files). */
function storedZip(files: [string, Uint8Array][]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const n = Buffer.from(name);
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(10, 4);
    head.writeUInt32LE(crc32(data), 14);
    head.writeUInt32LE(data.length, 18);
    head.writeUInt32LE(data.length, 22);
    head.writeUInt16LE(n.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(10, 4);
    dir.writeUInt16LE(10, 6);
    dir.writeUInt32LE(crc32(data), 16);
    dir.writeUInt32LE(data.length, 20);
    dir.writeUInt32LE(data.length, 24);
    dir.writeUInt16LE(n.length, 28);
    dir.writeUInt32LE(offset, 42);
    locals.push(head, n, data);
    central.push(dir, n);
    offset += head.length + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

describe('importer files that are not UTF-8 text', () => {
  it('tfjs model.json: invalid UTF-8 in a layer name, or a photo saved as model.json, is "not a text file"', async () => {
    const dir = copyTwins('model-json');
    const file = path.join(dir, 'model.json');
    // "sequential_8" → "\xffequential_8": still JSON, and was imported with a U+FFFD in the name
    writeFileSync(file, replaced(readFileSync(file), 'sequential_8', Uint8Array.of(0xff)).bytes);
    await expect(importModelFile(file, { cacheDir })).rejects.toMatchObject({
      code: 'EMODEL',
      message: `${file}: tfjs model.json is not a text file (it is not valid UTF-8; edgetune reads UTF-8 text)`,
    });
    copyFileSync(shared('camera', 'winml_dog.jpg'), file); // its 5th byte (offset 4) is a 0x00
    await expect(importModelFile(file, { cacheDir })).rejects.toMatchObject({
      code: 'EMODEL',
      message: `${file}: tfjs model.json is not a text file (byte 4 is a NUL byte; edgetune reads UTF-8 text)`,
    });
  });

  it("Teachable Machine metadata.json: a NUL or a Latin-1 byte in a label is refused, naming metadata.json", async () => {
    const dir = copyTwins('metadata-json');
    const model = path.join(dir, 'model.json');
    const meta = path.join(dir, 'metadata.json');
    const original = readFileSync(meta);
    // "twin2" → "twin\0" (was the class name "twin\u0000")
    const nul = replaced(original, 'twin2', Uint8Array.of(0x74, 0x77, 0x69, 0x6e, 0x00));
    writeFileSync(meta, nul.bytes);
    await expect(importModelFile(model, { cacheDir })).rejects.toMatchObject({
      code: 'EINPUT',
      message: `${meta}: Teachable Machine metadata is not a text file (byte ${nul.at + 4} is a NUL byte; edgetune reads UTF-8 text)`,
    });
    // "twin2" → "tw\xefn2" (Latin-1 ï)
    writeFileSync(meta, replaced(original, 'twin2', Uint8Array.of(0x74, 0x77, 0xef, 0x6e, 0x32)).bytes);
    await expect(importModelFile(model, { cacheDir })).rejects.toMatchObject({
      code: 'EINPUT',
      message: `${meta}: Teachable Machine metadata is not a text file (it is not valid UTF-8; edgetune reads UTF-8 text)`,
    });
    // the untouched file imports with its labels (the copies above are what broke it)
    writeFileSync(meta, original);
    expect((await importModelFile(model, { cacheDir })).card.layer.labels).toEqual(['twin1', 'twin2']);
  });

  it('labels packed in a .tflite: an invalid UTF-8 byte in imagenet_labels.txt is refused, naming the model and the packed file', async () => {
    const file = path.join(work, 'coral-v2.tflite');
    // "goldfish" → "g\xffldfish" inside the stored (uncompressed) imagenet_labels.txt: was the label "g\ufffdldfish"
    writeFileSync(file, replaced(readFileSync(CORAL), 'goldfish', Uint8Array.of(0x67, 0xff)).bytes);
    await expect(importModelFile(file, { cacheDir })).rejects.toMatchObject({
      code: 'EMODEL',
      message: `${file}: associated file imagenet_labels.txt is not a text file (it is not valid UTF-8; edgetune reads UTF-8 text)`,
    });
    // the original's packed labels are read (no labels.txt beside it)
    const ok = path.join(work, 'coral-v2-ok.tflite');
    copyFileSync(CORAL, ok);
    expect((await importModelFile(ok, { cacheDir })).card.layer.labels?.slice(0, 3)).toEqual(['background', 'tench, Tinca tinca', 'goldfish, Carassius auratus']);
  });

  it('a packed .txt that is not text and not the label list (its line count fits no class count) is skipped; the labels are still read', async () => {
    const original = readFileSync(CORAL);
    const labels = readAssociatedFiles(original).get('imagenet_labels.txt');
    if (!labels) throw new Error(`${CORAL}: packed imagenet_labels.txt missing`);
    // a JPEG's first 4 KiB (NUL bytes, invalid UTF-8) packed as vocab.txt ahead of the labels: the model
    // was refused whole ("associated file vocab.txt is not a text file") though vocab.txt is not its labels
    const binary = readFileSync(shared('camera', 'winml_dog.jpg')).subarray(0, 4096);
    const file = path.join(work, 'coral-v2-binary-txt.tflite');
    writeFileSync(file, Buffer.concat([original, storedZip([['vocab.txt', binary], ['imagenet_labels.txt', labels]])]));
    expect([...readAssociatedFiles(readFileSync(file)).keys()]).toEqual(['vocab.txt', 'imagenet_labels.txt']);
    const card = (await importModelFile(file, { cacheDir })).card;
    expect(card.layer.labels?.slice(0, 3)).toEqual(['background', 'tench, Tinca tinca', 'goldfish, Carassius auratus']);
    expect(card.notes).toContain('labels from the file\'s associated file imagenet_labels.txt');
  });
});
