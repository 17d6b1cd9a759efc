// Reading a label file (Node): the formats users arrive with. One name per line (ImageNet/Coral
// `labels.txt`, blank trailing lines ignored), Teachable Machine's `0 Class name` lines (the index
// prefix is dropped when every line has the next index), or a JSON array of strings. The file is read
// through runtime/io/read-file.ts: a regular file of at most MAX_TEXT_FILE_BYTES; a label file named
// by a model (a card's `labels`, a labels.txt beside a .tflite) must also lie inside the model's folder.

import { EdgetuneError } from '../core/errors.js';
import { MAX_TEXT_FILE_BYTES, readRegularText, sideFilePath } from './read-file.js';

/** Parse label-file text (see the module header for the formats). `file` names the file in errors. */
export function parseLabels(text: string, file: string): string[] {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch (err) {
      throw new EdgetuneError('EINPUT', `${file}: label file is not valid JSON (${(err as Error).message})`, { subject: file });
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new EdgetuneError('EINPUT', `${file}: expected a JSON array of label strings`, { subject: file });
    return v as string[];
  }
  const lines = trimmed.split(/\r?\n/).map((l) => l.trim());
  if (lines.length === 0 || (lines.length === 1 && lines[0] === '')) throw new EdgetuneError('EINPUT', `${file}: label file is empty`, { subject: file });
  const indexed = lines.every((l, i) => new RegExp(`^${i}\\s+\\S`).test(l));
  return indexed ? lines.map((l) => l.replace(/^\d+\s+/, '')) : lines;
}

/**
 * Read and parse a label file the user named. Errors: EINPUT naming the file (missing, unreadable,
 * not a regular file, over MAX_TEXT_FILE_BYTES, empty, bad JSON).
 */
export async function readLabelsFile(file: string): Promise<string[]> {
  return parseLabels(await readRegularText(file, { what: 'label file', maxBytes: MAX_TEXT_FILE_BYTES, code: 'EINPUT' }), file);
}

/**
 * Read and parse a label file named by `model`'s side file (a card's `labels`, a labels.txt beside a
 * .tflite): readLabelsFile's checks, and it must resolve inside the model's folder (read-file.ts
 * sideFilePath). Returns the real path and the labels. Errors: EINPUT naming the model or the file.
 */
export async function readSideLabelsFile(model: string, ref: string): Promise<{ file: string; labels: string[] }> {
  const file = await sideFilePath(model, ref, { what: 'label file', code: 'EINPUT' });
  return { file, labels: await readLabelsFile(file) };
}
