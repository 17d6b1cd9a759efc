// Reading a label file (Node): the file's text, parsed by the one label parser (runtime/core/labels.ts:
// a JSON array, Teachable Machine's `0 Class name` lines, or one name per line).

import { readFile } from 'node:fs/promises';
import { EdgetuneError } from '../core/errors.js';
import { parseLabels } from '../core/labels.js';

export { parseLabels };

/** Read and parse a label file. Errors: EINPUT naming the file (missing, unreadable, empty, bad JSON, a blank line). */
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
