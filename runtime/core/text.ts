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

/**
 * What a file that should be a model (ONNX, TFLite, a tfjs model.json or weights file) is instead,
 * when its first bytes say so: a Git LFS pointer (a repository cloned or downloaded without its LFS
 * objects: the file holds `version https://git-lfs.github.com/spec/v1`, an oid and a size) or an HTML
 * page (a repository's web page saved in place of the raw file). Undefined for anything else. The
 * text says what to do, to follow `<file>: `.
 */
export function placeholderKind(bytes: Uint8Array): string | undefined {
  const head = new TextDecoder('utf-8').decode(bytes.subarray(0, 512)).replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('version https://git-lfs.github.com/spec/')) {
    const size = /\nsize (\d+)/.exec(head)?.[1];
    return `a Git LFS pointer (${bytes.length} bytes${size ? ` standing for a ${size}-byte file` : ''}), not the model itself: fetch the file with "git lfs pull" in its repository, or download it directly`;
  }
  if (/^<(!doctype html|html[\s>])/i.test(head)) {
    return `an HTML page (${bytes.length} bytes), not a model: a web page was saved in place of the file; download the raw file (on GitHub: the "Download raw file" button, or a raw.githubusercontent.com address)`;
  }
  return undefined;
}
