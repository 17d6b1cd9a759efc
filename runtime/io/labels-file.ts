// Reading a label file (Node): the formats users arrive with. One name per line (ImageNet/Coral
// `labels.txt`, blank trailing lines ignored), Teachable Machine's `0 Class name` lines (the index
// prefix is dropped when every line has the next index), or a JSON array of strings.

import { readFile } from 'node:fs/promises';
import { EdgetuneError } from '../core/errors.js';

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

/** Read and parse a label file. Errors: EINPUT naming the file (missing, unreadable, empty, bad JSON). */
export async function readLabelsFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EdgetuneError('EINPUT', `${file}: cannot read label file (${code === 'ENOENT' ? 'no such file' : code ?? String(err)})`, { subject: file });
  }
  return parseLabels(text, file);
}
