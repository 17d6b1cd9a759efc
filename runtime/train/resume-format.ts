// Resume data (`<name>.resume.bin` beside a fine-tuned model): what `finetune --resume` needs so that
// adding a class embeds only the new class's images. BROWSER-SAFE: the library (runtime/train/node/resume.ts
// reads and builds it) and the kiosk page (teach.ts writes it beside a taught model) share this codec.
// Format: the magic line "edgetune.resume 1\n", a uint32 LE header length, the JSON header, zero
// padding to a multiple of 4 bytes, then the float32 LE rows in the header's image order.

import { EdgetuneError, invalidParameter } from '../core/errors.js';

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
  /**
   * The identity of the model this belongs to (resumeKey): the sha256 of its `edgetune.model` metadata
   * (labels, preprocessing, provenance with its creation time), unchanged when the file is re-encoded
   * or its weights are moved to external data.
   */
  model: string;
  labels: string[];
  dims: number;
  images: ResumeImage[];
  /** Σ views × dims floats, the images' rows in order. */
  features: Float32Array;
}

export function encodeResume(d: ResumeData): Uint8Array {
  const rows = d.images.reduce((a, im) => a + im.views, 0);
  if (d.features.length !== rows * d.dims) throw invalidParameter('the resume data', `${rows} × ${d.dims} floats`, d.features.length);
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

