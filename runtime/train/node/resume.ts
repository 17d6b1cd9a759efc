// What `finetune --resume` needs, kept beside the model so that adding a class needs only the new
// class's images: `<name>.resume.bin` holds every image's embeddings (training images all their views,
// validation images view 0), its class, split, file name and content hash, the labels, and the sha256
// identity of the model it belongs to (resumeKey; written in one set with the model:
// runtime/io/atomic.ts writeAtomicSet).
// The layout is browser-safe (runtime/train/resume-format.ts: the kiosk page writes resume data too).
// Format (version 2): the magic line "edgetune.resume 2\n", a uint32 LE header length, the JSON header,
// zero padding to a multiple of 4 bytes, the float32 LE rows in the header's image order, then the
// 32-byte sha256 of everything before it. A file whose checksum does not match is refused with both
// hashes (flipped bytes in the embeddings would otherwise train a wrong model with exit 0). Version 1
// files (no checksum, written before it existed) are still read, with a warning that they cannot be
// verified; the model written from them carries a version 2 file. Version 3 is version 2 plus the
// open-set taps' rows (header `taps` [{tensor, dims}], their rows after the embedding rows), written when
// the model carries the multi-layer open-set score, so a resume keeps it; all three versions are read.

import { createHash } from 'node:crypto';
import { lstat, readFile, stat } from 'node:fs/promises';
import { loadModelFile } from '../../io/model-file.js';
import { MAX_MODEL_FILE_BYTES, readSideFile } from '../../io/read-file.js';
import type { OnnxModel } from '../../onnx/model.js';
import { headIsQuantized } from '../export.js';
import { METADATA_KEY, readMetadataProps } from '../../core/metadata.js';
import path from 'node:path';
import { EdgetuneError } from '../../core/errors.js';
import { concatFloat32 } from '../../core/tensor.js';
import { stratifiedSplit, type Transfer } from '../finetune.js';
import { listImages, noImagesMessage, type DatasetItem, type SkippedFile } from './dataset.js';
import { sha256 } from './embed.js';
import { CHECKSUM_BYTES, MAGIC, MAGIC_V1, MAGIC_V3, resumeLayout, type ResumeData, type ResumeImage, type ResumeTap } from '../resume-format.js';

export type { ResumeData, ResumeImage, ResumeTap } from '../resume-format.js';

/** resumeKey of a model file's bytes (see ResumeData.model). */
export function resumeKey(modelBytes: Uint8Array): string {
  return createHash('sha256').update(readMetadataProps(modelBytes)[METADATA_KEY] ?? '').digest('hex');
}

/**
 * The model `finetune --resume file` extends. A model written with --int8 has a quantized head, whose
 * float weights cannot be read back: its float pair `<name>.fp32.onnx` (written in the same set) is
 * resumed instead, with a warning; without the pair it is refused with the reason.
 * `keyBytes` are the named file's bytes (its resume data is keyed by them: resumeKey);
 * `model` is the float model to extend. External data is read relative to the model and inlined.
 * Errors: EMODEL `<file>: its head is quantized … and its float pair <pair> is missing …`.
 */
export async function openResumedModel(file: string, onWarning: (m: string) => void): Promise<{ keyBytes: Uint8Array; model: OnnxModel }> {
  const { bytes, model } = await loadModelFile(file);
  if (!headIsQuantized(model)) return { keyBytes: bytes, model };
  const pair = file.replace(/\.onnx$/i, '') + '.fp32.onnx';
  if (!(await stat(pair).then((st) => st.isFile(), () => false))) {
    throw new EdgetuneError(
      'EMODEL',
      `${file}: its head is quantized (a model written by finetune --int8) and its float pair ${pair} is missing: --resume needs the float weights; put the .fp32.onnx file beside it, or run finetune on the training folders with the new class in them`,
      { subject: file },
    );
  }
  onWarning(`${file} is an int8 model: resuming from its float pair ${path.basename(pair)} (add --int8 to write an int8 model again)`);
  return { keyBytes: bytes, model: (await loadModelFile(pair)).model };
}

/** `<dir>/<name>.resume.bin` for the model `<dir>/<name>.onnx`. */
export function resumePath(model: string): string {
  return model.replace(/\.onnx$/i, '') + '.resume.bin';
}

/** Encode resume data (version 2): resume-format.ts's layout, and the sha256 of everything before the checksum. */
export function encodeResume(d: ResumeData): Uint8Array {
  const { out, body } = resumeLayout(d);
  out.set(createHash('sha256').update(out.subarray(0, body)).digest(), body);
  return out;
}

/**
 * Decode resume data. `onUnverified` is told when the file is a version 1 file (no checksum).
 * Errors (EMODEL): "checksum mismatch (sha256 expected …, found …)", "not an edgetune resume file (…)".
 */
export function decodeResume(all: Uint8Array, onUnverified?: () => void): ResumeData {
  const magic = new TextEncoder().encode(MAGIC);
  const bad = (why: string) => new EdgetuneError('EMODEL', `not an edgetune resume file (${why})`);
  const head = all.length >= magic.length ? new TextDecoder().decode(all.subarray(0, magic.length)) : '';
  let bytes = all;
  if (head === MAGIC || head === MAGIC_V3) {
    if (all.length < magic.length + 4 + CHECKSUM_BYTES) throw bad('shorter than its header and checksum');
    bytes = all.subarray(0, all.length - CHECKSUM_BYTES);
    const expected = Buffer.from(all.subarray(all.length - CHECKSUM_BYTES)).toString('hex');
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (expected !== actual) throw new EdgetuneError('EMODEL', `checksum mismatch (sha256 expected ${expected}, found ${actual}): the file is damaged`);
  } else if (head === MAGIC_V1) onUnverified?.();
  if (bytes.length < magic.length + 4 || (head !== MAGIC && head !== MAGIC_V1 && head !== MAGIC_V3)) throw bad('no magic line');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hl = dv.getUint32(magic.length, true);
  if (magic.length + 4 + hl > bytes.length) throw bad('header past the end');
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(magic.length + 4, magic.length + 4 + hl))) as Omit<ResumeData, 'features' | 'taps'> & { taps?: { tensor: string; dims: number }[] };
  const start = Math.ceil((magic.length + 4 + hl) / 4) * 4;
  const rows = h.images.reduce((a, im) => a + im.views, 0);
  const tapHeads = head === MAGIC_V3 ? (h.taps ?? []) : [];
  const widths = [h.dims, ...tapHeads.map((t) => t.dims)];
  const floats = rows * widths.reduce((a, d) => a + d, 0);
  if (bytes.length - start !== floats * 4) throw bad(`expected ${floats} floats, found ${(bytes.length - start) / 4}`);
  let o = start;
  const [features, ...tapRows] = widths.map((d) => {
    const a = new Float32Array(rows * d);
    for (let i = 0; i < a.length; i++, o += 4) a[i] = dv.getFloat32(o, true);
    return a;
  });
  if (![features!, ...tapRows].every((a) => a.every(Number.isFinite))) throw bad('non-finite embedding values');
  const { taps: _, ...rest } = h;
  const taps: ResumeTap[] = tapHeads.map((t, k) => ({ tensor: t.tensor, dims: t.dims, features: tapRows[k]! }));
  return { ...rest, features: features!, ...(taps.length ? { taps } : {}) };
}

/**
 * The resume data beside `model` when it belongs to the model whose resumeKey is `key`;
 * undefined when there is none. A file for another model (the model was replaced) is reported through
 * `onWarning` and not used; so is a version 1 file (no checksum), which is used.
 * Errors: EMODEL `<file>: checksum mismatch (…)` / `<file>: not an edgetune resume file (…)` with the
 * fix (delete it to read the training folders again): damaged data is never trained on.
 */
export async function readResume(model: string, key: string, onWarning: (m: string) => void): Promise<ResumeData | undefined> {
  const file = resumePath(model);
  let bytes: Uint8Array;
  try {
    // beside the model: inside its folder, a regular file (never a FIFO or a device)
    bytes = (await readSideFile(model, path.basename(file), { what: 'resume data', maxBytes: MAX_MODEL_FILE_BYTES, code: 'EINPUT' })).bytes;
  } catch (err) {
    if ((await lstat(file).then(() => true, () => false)) && err instanceof Error) onWarning(`${err.message}; the training folders are read again`);
    return undefined;
  }
  let d: ResumeData;
  let unverified = false;
  try {
    d = decodeResume(bytes, () => (unverified = true));
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${file}: ${(err as Error).message}; delete it to read the training folders again`, { subject: file });
  }
  if (d.model !== key) {
    onWarning(`${file} belongs to another model (the model was replaced); the training folders are read again`);
    return undefined;
  }
  if (unverified) onWarning(`${file} has no checksum (written by an older edgetune): its embeddings are used unverified`);
  return d;
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
    const before = skipped.length;
    try {
      files = await listImages(a.dir, skipped);
    } catch {
      files = [];
    }
    if (!files.length) throw new EdgetuneError('EINPUT', noImagesMessage(a.dir, a.name, skipped.slice(before), ' (or the folder does not exist)'), { subject: a.dir });
    all.push(a.name);
    items.push(...files.map((file) => ({ file, label: all.length - 1 })));
  }
  // stratifiedSplit walks every class; the old ones have no items here
  const s = valSplit > 0 ? stratifiedSplit(items, all.length, valSplit, seed) : { train: items, val: [] };
  return { labels: all, train: s.train, val: s.val, skipped };
}

/**
 * The items of `more` (extra images of classes the model already has, one folder each: resume's
 * `addExamples`), labelled by their index in `labels`, training images only: the validation images stay
 * those of the resumed model, so its accuracy before and after (teach's old-class check) is measured on
 * the same images. Unreadable files go to `skipped`. Errors: EARG for a name that is not a class of the
 * model (or given twice), EINPUT for a missing or empty folder.
 */
export async function exampleItems(labels: readonly string[], more: readonly { name: string; dir: string }[], skipped: SkippedFile[]): Promise<DatasetItem[]> {
  const items: DatasetItem[] = [];
  const seen = new Set<string>();
  for (const m of more) {
    const label = labels.indexOf(m.name);
    if (label < 0) throw new EdgetuneError('EARG', `--add-examples ${m.name}: the model has no class "${m.name}" (its classes: ${labels.join(', ')}); a new class is added with --add-class`);
    if (seen.has(m.name)) throw new EdgetuneError('EARG', `--add-examples ${m.name}: given twice (one folder per class)`);
    seen.add(m.name);
    let files: string[];
    try {
      files = await listImages(m.dir, skipped);
    } catch {
      files = [];
    }
    if (!files.length) throw new EdgetuneError('EINPUT', `${m.dir}: the examples of class "${m.name}" have no images (or the folder does not exist)`, { subject: m.dir });
    items.push(...files.map((file) => ({ file, label })));
  }
  return items;
}

/**
 * `items` split into those to embed and those whose bytes the resumed model's data already holds (its
 * images' sha256, the content hash the embedder keys them by): their embeddings are in it, so adding them
 * again (`--add-examples` naming photos it was trained on) would count each twice. A file that cannot be
 * read is kept: the embedder reports it.
 */
export async function withoutPriorImages(items: readonly DatasetItem[], prior: Pick<ResumeData, 'images'>): Promise<{ items: DatasetItem[]; known: DatasetItem[] }> {
  const held = new Set(prior.images.map((im) => im.sha256).filter(Boolean));
  const out: { items: DatasetItem[]; known: DatasetItem[] } = { items: [], known: [] };
  for (const it of items) {
    const bytes = held.size ? await readFile(it.file).catch(() => undefined) : undefined;
    (bytes && held.has(sha256(bytes)) ? out.known : out.items).push(it);
  }
  return out;
}

/** A file's name for the resume data and reports: its class folder and base name. */
export function itemName(file: string): string {
  return path.join(path.basename(path.dirname(file)), path.basename(file));
}

/** The resumed model's images as the transfer's first examples (rows in the resume data's order); their names and hashes go into `hashes`. */
export function feedPrior(t: Pick<Transfer, 'collectExample'>, prior: ResumeData, hashes: Map<string, string>): PriorItems {
  const out: PriorItems = { train: [], val: [], trainViews: [] };
  let o = 0;
  for (const im of prior.images) {
    t.collectExample(im.label, prior.features.subarray(o, o + im.views * prior.dims), { split: im.split, views: im.views });
    o += im.views * prior.dims;
    out[im.split].push({ file: im.name, label: im.label });
    if (im.split === 'train') out.trainViews.push(im.views);
    hashes.set(im.name, im.sha256);
  }
  return out;
}

/** What feedPrior collected: items named by the resume data's names, and each training image's views. */
export interface PriorItems {
  train: DatasetItem[];
  val: DatasetItem[];
  trainViews: number[];
}

/**
 * The resume data of a fine-tune (all but the model hash): `train` / `val` are every image in the
 * transfer's order (the prior ones first, named as in their resume data), `views` the new training
 * images' views, `rows` the transfer's training rows then its validation rows; `taps` (the open-set taps'
 * rows, runtime/train/node/openset-taps.ts TapSet, in the same order) make it a version 3 file.
 */
export function resumeDataOf(o: {
  labels: string[];
  dims: number;
  train: readonly DatasetItem[];
  val: readonly DatasetItem[];
  prior?: PriorItems;
  views: number;
  hashes: ReadonlyMap<string, string>;
  trainRows: Float32Array;
  valRows?: Float32Array;
  taps?: readonly { tensor: string; dims: number; train: Float32Array; val: Float32Array }[];
}): Omit<ResumeData, 'model'> {
  const p = o.prior ?? { train: [], val: [], trainViews: [] };
  const image = (i: DatasetItem, split: 'train' | 'val', views: number, old: boolean): ResumeImage => ({ label: i.label, split, views, name: old ? i.file : itemName(i.file), sha256: o.hashes.get(i.file) ?? '' });
  const images = [
    ...o.train.map((i, k) => image(i, 'train', k < p.trainViews.length ? p.trainViews[k]! : o.views, k < p.train.length)),
    ...o.val.map((i, k) => image(i, 'val', 1, k < p.val.length)),
  ];
  const features = new Float32Array(o.trainRows.length + (o.valRows?.length ?? 0));
  features.set(o.trainRows);
  if (o.valRows) features.set(o.valRows, o.trainRows.length);
  const taps = (o.taps ?? []).map((t) => ({ tensor: t.tensor, dims: t.dims, features: concatFloat32([t.train, t.val]) }));
  return { labels: o.labels, dims: o.dims, images, features, ...(taps.length ? { taps } : {}) };
}
