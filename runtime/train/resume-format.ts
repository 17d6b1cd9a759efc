// Resume data (`<name>.resume.bin` beside a fine-tuned model): what `finetune --resume` needs so that
// adding a class embeds only the new class's images. BROWSER-SAFE: the library (runtime/train/node/resume.ts
// reads and builds it) and the kiosk page (teach.ts writes it beside a taught model) share this layout.
// Format (version 2; runtime/train/node/resume.ts decodes it and says more): the magic line
// "edgetune.resume 2\n", a uint32 LE header length, the JSON header, zero padding to a multiple of 4
// bytes, the float32 LE rows in the header's image order, then the 32-byte sha256 of all before it.
// Version 3 (written only with open-set tap rows: `taps`): magic "edgetune.resume 3\n", the header also
// lists `taps` [{tensor, dims}], and after the embedding rows come each tap's rows, same image order.
// Data without taps (the page's, a model without the multi-layer score) is still written as version 2.

import { invalidParameter } from '../core/errors.js';

/** Version 2's magic line (with the checksum) and version 1's (before it; read unverified). */
export const MAGIC = 'edgetune.resume 2\n';
/** Version 3's magic line: version 2 plus the open-set taps' rows (ResumeData.taps). */
export const MAGIC_V3 = 'edgetune.resume 3\n';
export const MAGIC_V1 = 'edgetune.resume 1\n';
/** The trailing sha256 of everything before it. */
export const CHECKSUM_BYTES = 32;

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
  /**
   * The open-set taps' rows (runtime/train/node/openset-taps.ts: the multi-layer score's features), per tap
   * Σ views × its dims floats in the same image order; absent in version 1 and 2 files (a resume from them
   * keeps the single-embedding score).
   */
  taps?: ResumeTap[];
}

/** One open-set tap's rows in resume data: the backbone tensor, its width, Σ views × dims floats. */
export interface ResumeTap {
  tensor: string;
  dims: number;
  features: Float32Array;
}

/**
 * The version 2 bytes of `d` with the last CHECKSUM_BYTES left zero for the caller's sha256 of
 * `out.subarray(0, body)` (Node: node:crypto, runtime/train/node/resume.ts encodeResume; the page:
 * WebCrypto). Errors: the features' length does not match the images' views × dims.
 */
export function resumeLayout(d: ResumeData): { out: Uint8Array; body: number } {
  const rows = d.images.reduce((a, im) => a + im.views, 0);
  if (d.features.length !== rows * d.dims) throw invalidParameter('the resume data', `${rows} × ${d.dims} floats`, d.features.length);
  const taps = d.taps ?? [];
  for (const t of taps) if (t.features.length !== rows * t.dims) throw invalidParameter(`the resume data's tap ${t.tensor}`, `${rows} × ${t.dims} floats`, t.features.length);
  const header = new TextEncoder().encode(JSON.stringify({ model: d.model, labels: d.labels, dims: d.dims, images: d.images, ...(taps.length ? { taps: taps.map((t) => ({ tensor: t.tensor, dims: t.dims })) } : {}) }));
  const magic = new TextEncoder().encode(taps.length ? MAGIC_V3 : MAGIC);
  const start = Math.ceil((magic.length + 4 + header.length) / 4) * 4;
  const body = start + d.features.byteLength + taps.reduce((a, t) => a + t.features.byteLength, 0);
  const out = new Uint8Array(body + CHECKSUM_BYTES);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(magic.length, header.length, true);
  out.set(header, magic.length + 4);
  const f = new DataView(out.buffer, start);
  let o = 0;
  for (const a of [d.features, ...taps.map((t) => t.features)]) for (let i = 0; i < a.length; i++) f.setFloat32(4 * o++, a[i]!, true);
  return { out, body };
}
