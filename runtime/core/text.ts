// Bytes that must be UTF-8 text (label lists, cards, JSON metadata, a .tflite's associated labels.txt):
// the one check that refuses a binary file (a photo named as a label file, a corrupt metadata.json)
// rather than reading it as lines of U+FFFD. Browser-safe (the importers run in the kiosk page too);
// runtime/io/read-file.ts readRegularText reads a file through it.

import { EdgetuneError, type ErrorCode } from './errors.js';

/**
 * `bytes` as UTF-8 text (a leading byte-order mark dropped). `file` (when given) and `what` name the
 * source. Errors (`code`, default EINPUT):
 *   `<file>: <what> is not a text file (byte <n> is a NUL byte; edgetune reads UTF-8 text)`,
 *   `<file>: <what> is not a text file (it is not valid UTF-8; edgetune reads UTF-8 text)`.
 */
export function utf8Text(bytes: Uint8Array, o: { what: string; file?: string; code?: ErrorCode }): string {
  const notText = (why: string) =>
    new EdgetuneError(o.code ?? 'EINPUT', `${o.file ? `${o.file}: ` : ''}${o.what} is not a text file (${why}; edgetune reads UTF-8 text)`, o.file ? { subject: o.file } : {});
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw notText(`byte ${nul} is a NUL byte`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw notText('it is not valid UTF-8');
  }
}
