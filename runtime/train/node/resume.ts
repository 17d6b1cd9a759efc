// What `finetune --resume` needs, kept beside the model so that adding a class needs only the new
// class's images: `<name>.resume.bin` holds every image's embeddings (training images all their views,
// validation images view 0), its class, split, file name and content hash, the labels, and the sha256
// identity of the model it belongs to (resumeKey; written in one set with the model:
// runtime/io/atomic.ts writeAtomicSet).
// The format and its codec are browser-safe (runtime/train/resume-format.ts: the kiosk page writes
// resume data too); this file reads it beside a model and builds it from a dataset.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { METADATA_KEY, readMetadataProps } from '../../core/metadata.js';
import path from 'node:path';
import { EdgetuneError } from '../../core/errors.js';
import { stratifiedSplit, type Transfer } from '../finetune.js';
import { listImages, type DatasetItem, type SkippedFile } from './dataset.js';
import { decodeResume, type ResumeData, type ResumeImage } from '../resume-format.js';

export { encodeResume, decodeResume, type ResumeData, type ResumeImage } from '../resume-format.js';

/** resumeKey of a model file's bytes (see ResumeData.model). */
export function resumeKey(modelBytes: Uint8Array): string {
  return createHash('sha256').update(readMetadataProps(modelBytes)[METADATA_KEY] ?? '').digest('hex');
}

/** `<dir>/<name>.resume.bin` for the model `<dir>/<name>.onnx`. */
export function resumePath(model: string): string {
  return model.replace(/\.onnx$/i, '') + '.resume.bin';
}

/**
 * The resume data beside `model` when it belongs to the model whose resumeKey is `key`;
 * undefined when there is none. A file for another model (the model was replaced) or a damaged one is
 * reported through `onWarning` and not used.
 */
export async function readResume(model: string, key: string, onWarning: (m: string) => void): Promise<ResumeData | undefined> {
  const file = resumePath(model);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch {
    return undefined;
  }
  try {
    const d = decodeResume(bytes);
    if (d.model !== key) {
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
 * images' views, `rows` the transfer's training rows then its validation rows.
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
  return { labels: o.labels, dims: o.dims, images, features };
}
