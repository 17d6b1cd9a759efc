// Reading a label file (Node): the file's text, parsed by the one label parser (runtime/core/labels.ts:
// a JSON array, Teachable Machine's `0 Class name` lines, or one name per line). The file is read
// through runtime/io/read-file.ts: a regular file of at most MAX_TEXT_FILE_BYTES; a label file named
// by a model (a card's `labels`, a labels.txt beside a .tflite) must also lie inside the model's folder.

import { parseLabels } from '../core/labels.js';
import { MAX_TEXT_FILE_BYTES, readRegularText, sideFilePath } from './read-file.js';

export { parseLabels };

/**
 * Read and parse a label file the user named. Errors: EINPUT naming the file (missing, unreadable,
 * not a regular file, over MAX_TEXT_FILE_BYTES, empty, bad JSON, a blank line).
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
