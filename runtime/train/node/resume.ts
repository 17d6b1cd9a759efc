// What `finetune --resume` needs, kept beside the model so that adding a class needs only the new
// class's images: `<name>.resume.bin` holds every image's embeddings (training images all their views,
// validation images view 0), its class, split, file name and content hash, the labels, and the sha256
// of the model it belongs to (written in one set with the model: runtime/io/atomic.ts writeAtomicSet).
// Format: the magic line "edgetune.resume 1\n", a uint32 LE header length, the JSON header, zero
// padding to a multiple of 4 bytes, then the float32 LE rows in the header's image order.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError } from '../../core/errors.js';
import { stratifiedSplit } from '../finetune.js';
import { listImages, type DatasetItem, type SkippedFile } from './dataset.js';

const MAGIC = 'edgetune.resume 1\n';

export interface ResumeImage {
  /** Class index into `labels`. */
  label: number;
  split: 'train' | 'val';
  /** Rows of this image (1 for a validation image). */
  views: number;
  /** File name relative to its class folder's parent (class/name.jpg), for reports; never read again. */
  name: string;
  /** sha256 of the image file's bytes. */
  sha256: string;
}

export interface ResumeData {
  /** sha256 of the model file this belongs to. */
  model: string;
  labels: string[];
  dims: number;
  images: ResumeImage[];
  /** Σ views × dims floats, the images' rows in order. */
  features: Float32Array;
}

/** `<dir>/<name>.resume.bin` for the model `<dir>/<name>.onnx`. */
export function resumePath(model: string): string {
  return model.replace(/\.onnx$/i, '') + '.resume.bin';
}

export function encodeResume(d: ResumeData): Uint8Array {
  const rows = d.images.reduce((a, im) => a + im.views, 0);
  if (d.features.length !== rows * d.dims) throw new Error(`Expected ${rows} × ${d.dims} floats for the resume data but received ${d.features.length}`);
  const header = new TextEncoder().encode(JSON.stringify({ model: d.model, labels: d.labels, dims: d.dims, images: d.images }));
  const magic = new TextEncoder().encode(MAGIC);
  const start = Math.ceil((magic.length + 4 + header.length) / 4) * 4;
  const out = new Uint8Array(start + d.features.byteLength);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(magic.length, header.length, true);
  out.set(header, magic.length + 4);
  const f = new DataView(out.buffer, start);
  d.features.forEach((v, i) => f.setFloat32(i * 4, v, true));
  return out;
}

export function decodeResume(bytes: Uint8Array): ResumeData {
  const magic = new TextEncoder().encode(MAGIC);
  const bad = (why: string) => new EdgetuneError('EMODEL', `not an edgetune resume file (${why})`);
  if (bytes.length < magic.length + 4 || new TextDecoder().decode(bytes.subarray(0, magic.length)) !== MAGIC) throw bad('no magic line');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hl = dv.getUint32(magic.length, true);
  if (magic.length + 4 + hl > bytes.length) throw bad('header past the end');
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(magic.length + 4, magic.length + 4 + hl))) as Omit<ResumeData, 'features'>;
  const start = Math.ceil((magic.length + 4 + hl) / 4) * 4;
  const rows = h.images.reduce((a, im) => a + im.views, 0);
  if (bytes.length - start !== rows * h.dims * 4) throw bad(`expected ${rows * h.dims} floats, found ${(bytes.length - start) / 4}`);
  const features = new Float32Array(rows * h.dims);
  for (let i = 0; i < features.length; i++) features[i] = dv.getFloat32(start + i * 4, true);
  if (!features.every(Number.isFinite)) throw bad('non-finite embedding values');
  return { ...h, features };
}

/**
 * The resume data beside `model` when it belongs to the model whose bytes hash to `modelSha256`;
 * undefined when there is none. A file for another model (the model was replaced) or a damaged one is
 * reported through `onWarning` and not used.
 */
export async function readResume(model: string, modelSha256: string, onWarning: (m: string) => void): Promise<ResumeData | undefined> {
  const file = resumePath(model);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch {
    return undefined;
  }
  try {
    const d = decodeResume(bytes);
    if (d.model !== modelSha256) {
      onWarning(`${file} belongs to another model (the model was replaced); the training folders are read again`);
      return undefined;
    }
    return d;
  } catch (err) {
    onWarning(`${file}: ${(err as Error).message}; the training folders are read again`);
    return undefined;
  }
}

/**
 * The items of added classes when resuming from resume data: class `base + i` for added[i], and the
 * seeded stratified `valSplit` of them held out (0 = none). Errors: a missing, empty or duplicate class.
 */
export async function addedItems(labels: readonly string[], added: readonly { name: string; dir: string }[], valSplit: number, seed: number): Promise<{ labels: string[]; train: DatasetItem[]; val: DatasetItem[]; skipped: SkippedFile[] }> {
  const all = [...labels];
  const skipped: SkippedFile[] = [];
  const items: DatasetItem[] = [];
  for (const a of added) {
    if (all.includes(a.name)) throw new EdgetuneError('EARG', `--add-class ${a.name}: the model already has a class "${a.name}"`);
    let files: string[];
    try {
      files = await listImages(a.dir, skipped);
    } catch {
      files = [];
    }
    if (!files.length) throw new EdgetuneError('EINPUT', `${a.dir}: class "${a.name}" has no images (or the folder does not exist)`, { subject: a.dir });
    all.push(a.name);
    items.push(...files.map((file) => ({ file, label: all.length - 1 })));
  }
  // stratifiedSplit walks every class; the old ones have no items here
  const s = valSplit > 0 ? stratifiedSplit(items, all.length, valSplit, seed) : { train: items, val: [] };
  return { labels: all, train: s.train, val: s.val, skipped };
}

/** A file's name for the resume data and reports: its class folder and base name. */
export function itemName(file: string): string {
  return path.join(path.basename(path.dirname(file)), path.basename(file));
}
