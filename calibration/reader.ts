// The calibration reader (Node): an image folder (recursive, any class layout) → a seeded sample of
// `count` files → model-ready input tensors in batches, decoded with the model's own preprocessing
// (runtime/image/decode.ts) a few files ahead of the consumer. Undecodable files are reported through
// `onSkip` and skipped; a folder with no decodable image at all is an error naming the folder.
// keepImages keeps the first decoded images of a batch stream, one tensor each, for later passes.

import { stat } from 'node:fs/promises';
import { walkFiles } from '../runtime/io/files.js';
import { EdgetuneError, messageOf } from '../runtime/core/errors.js';
import { decodeImage } from '../runtime/image/decode.js';
import { toTensor, type HwcImage, type PreprocessSpec } from '../runtime/image/preprocess.js';
import type { TensorData } from '../runtime/core/tensor.js';
import { createRng } from '../runtime/core/rng.js';

/** `count` items drawn without replacement with a seeded Fisher–Yates shuffle (all of them, shuffled, when count ≥ length). */
export function seededSample<T>(items: readonly T[], count: number, seed = 1): T[] {
  const a = [...items];
  // core/rng's mulberry32: the same seed picks the same calibration sample everywhere.
  const rnd = createRng(seed).next;
  const n = Math.min(count, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rnd() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

/**
 * Image files under a folder (recursive, sorted), or the error saying why there are none. `what` names
 * the folder in errors (default 'calibration'; 'evaluation' for quantize's --eval): `<dir>: <what>
 * folder not found`, `<dir>: <what> path is not a folder`, `<dir>: no image files in the <what> folder`.
 * `onSkip` hears of each file the walk passes over, with the reason finetune and eval give for it (an
 * image format this build does not decode, such as a phone's `.HEIC`, not an image file, a dangling link).
 */
export async function listCalibrationImages(dir: string, what = 'calibration', onSkip?: (s: SkippedFile) => void): Promise<string[]> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new EdgetuneError('EINPUT', `${dir}: ${what} folder not found`, { subject: dir });
  }
  if (!st.isDirectory()) throw new EdgetuneError('EINPUT', `${dir}: ${what} path is not a folder`, { subject: dir });
  const files = await walkFiles(dir, (s) => onSkip?.({ file: s.file, error: s.reason }));
  if (files.length === 0) throw new EdgetuneError('EINPUT', `${dir}: no image files in the ${what} folder`, { subject: dir });
  return files;
}

export interface SkippedFile {
  file: string;
  error: string;
}

export interface BatchOptions {
  /** Images per tensor. Default 1. */
  batch?: number;
  /** Files decoded ahead of the consumer. Default 4. */
  ahead?: number;
  signal?: AbortSignal;
  onSkip?: (s: SkippedFile) => void;
  /** Called after each file, decoded or skipped. */
  onProgress?: (done: number, total: number) => void;
}

export interface CalibrationBatch {
  tensor: TensorData;
  files: string[];
}

/**
 * Decoded, preprocessed batches over `files`. Throws when not one file decodes (naming `what`,
 * usually the folder, and the first errors).
 */
export async function* calibrationBatches(files: readonly string[], spec: PreprocessSpec, what: string, opts: BatchOptions = {}): AsyncGenerator<CalibrationBatch> {
  const batch = Math.max(1, opts.batch ?? 1);
  const ahead = Math.max(1, opts.ahead ?? 4);
  const pending: { file: string; img: Promise<HwcImage> }[] = [];
  let next = 0;
  let done = 0;
  let good = 0;
  const skipped: SkippedFile[] = [];
  const fill = () => {
    while (pending.length < ahead && next < files.length) {
      const file = files[next++]!;
      const img = decodeImage(file, spec);
      img.catch(() => undefined);
      pending.push({ file, img });
    }
  };
  fill();
  let group: { file: string; img: HwcImage }[] = [];
  opts.onProgress?.(0, files.length); // the stage begins (its progress clock starts here)
  while (pending.length) {
    opts.signal?.throwIfAborted();
    const p = pending.shift()!;
    fill();
    try {
      group.push({ file: p.file, img: await p.img });
      good++;
    } catch (err) {
      const s = { file: p.file, error: messageOf(err) };
      skipped.push(s);
      opts.onSkip?.(s);
    }
    opts.onProgress?.(++done, files.length);
    if (group.length === batch || (pending.length === 0 && group.length)) {
      yield { tensor: toTensor(group.map((g) => g.img), spec), files: group.map((g) => g.file) };
      group = [];
    }
  }
  if (good === 0) {
    const why = skipped.slice(0, 3).map((s) => s.error).join('; ');
    throw new EdgetuneError('EINPUT', `${what}: no decodable images among ${files.length} file(s)${why ? ` (${why})` : ''}`, { subject: what });
  }
}

/**
 * `batches` passed through unchanged, the first `count` images copied into `into` as one tensor each
 * (dims [1, …], the same values batch-1 decoding gives: preprocessing is per image), so a later pass
 * over the same images does not decode them again.
 */
export async function* keepImages(batches: AsyncIterable<CalibrationBatch>, count: number, into: TensorData[]): AsyncGenerator<CalibrationBatch> {
  for await (const b of batches) {
    const n = b.tensor.dims[0] ?? 1;
    const per = b.tensor.data.length / n;
    for (let i = 0; i < n && into.length < count; i++) {
      into.push({ type: b.tensor.type, data: b.tensor.data.slice(i * per, (i + 1) * per), dims: [1, ...b.tensor.dims.slice(1)] });
    }
    yield b;
  }
}
