// Reading the files a model names (Node): the one reader every model, label, card and weight file goes
// through, so that edgetune reads only what the user named. A file is opened without blocking, checked
// on the open descriptor (a regular file, not a FIFO, a device or a folder; no larger than the caller's
// bound) and only then read, so `/dev/zero`, a FIFO or a 20 GB file is refused before a byte is read.
// A **side file** (a tfjs weight shard, ONNX external data, a `.card.json`'s label file, Teachable
// Machine's metadata.json, a labels.txt beside a .tflite) is named by a model file, not by the user:
// it must also resolve, symbolic links included (real paths), to a file inside the model's own folder.

import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, type ErrorCode } from '../core/errors.js';
import { fsReason } from './errno.js';
import { utf8Text } from '../core/text.js';

/** Largest model file read (bytes): 2 GiB, protobuf's limit for one ONNX message. */
export const MAX_MODEL_FILE_BYTES = 2 ** 31;
/**
 * Largest label, card or metadata JSON file read (bytes): 16 MiB. ImageNet-21k's 21 841 names take
 * 0.4 MB; a label file is bounded by the names it may hold, not by the disk.
 */
export const MAX_TEXT_FILE_BYTES = 16 * 2 ** 20;

export interface ReadFileOptions {
  /** What the file is, for messages ("label file", "weights file"). */
  what: string;
  /** Largest size accepted, bytes. */
  maxBytes: number;
  /** Why that is the bound, for the message. Default "the largest accepted". */
  bound?: string;
  /** Error code of the refusals. Default EINPUT. */
  code?: ErrorCode;
}

/** What a file that is not a regular file is, in words ("a FIFO (named pipe)", "a character device"…). */
export function fileKind(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a plain file';
}

/**
 * Open `file` for reading and check it: a regular file (not a FIFO, device, socket or directory; the
 * open never waits on a FIFO) of at most `o.maxBytes`. Returns the open handle (the caller closes it)
 * and the size. Errors (o.code, default EINPUT), naming the file:
 *   `<file>: cannot read <what> (<errno in words>)`,
 *   `<file>: <what> is not a regular file (it is a FIFO (named pipe))`,
 *   `<file>: <what> is <n> bytes, more than <max> (<bound>)`.
 */
export async function openRegularFile(file: string, o: ReadFileOptions): Promise<{ handle: FileHandle; size: number }> {
  const code = o.code ?? 'EINPUT';
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') throw new EdgetuneError(code, `${file}: ${o.what} is not a regular file (it is a directory)`, { subject: file });
    throw new EdgetuneError(code, `${file}: cannot read ${o.what} (${fsReason(err)})`, { subject: file, cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new EdgetuneError(code, `${file}: ${o.what} is not a regular file (it is ${fileKind(st)})`, { subject: file });
    if (st.size > o.maxBytes) throw new EdgetuneError(code, `${file}: ${o.what} is ${st.size} bytes, more than ${o.maxBytes} (${o.bound ?? 'the largest accepted'})`, { subject: file });
    return { handle, size: st.size };
  } catch (err) {
    await handle.close();
    if (err instanceof EdgetuneError) throw err;
    throw new EdgetuneError(code, `${file}: cannot read ${o.what} (${fsReason(err)})`, { subject: file, cause: err });
  }
}

/** Read `length` bytes at `offset` from an open handle (fewer only at the end of the file). */
export async function readRange(handle: FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(out, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? out : out.subarray(0, got);
}

/** Read a whole file after openRegularFile's checks (see there for the errors). */
export async function readRegularFile(file: string, o: ReadFileOptions): Promise<Uint8Array> {
  const { handle, size } = await openRegularFile(file, o);
  try {
    return await readRange(handle, 0, size);
  } catch (err) {
    throw new EdgetuneError(o.code ?? 'EINPUT', `${file}: cannot read ${o.what} (${fsReason(err)})`, { subject: file, cause: err });
  } finally {
    await handle.close();
  }
}

/**
 * readRegularFile as UTF-8 text (runtime/core/text.ts utf8Text: a leading UTF-8 byte-order mark is
 * dropped; a binary file, a photo named as a label file, is refused rather than read as lines of
 * U+FFFD). Errors (o.code, default EINPUT), naming the file, besides readRegularFile's:
 *   `<file>: <what> is not a text file (byte <n> is a NUL byte; edgetune reads UTF-8 text)`,
 *   `<file>: <what> is not a text file (it is not valid UTF-8; edgetune reads UTF-8 text)`.
 */
export async function readRegularText(file: string, o: ReadFileOptions): Promise<string> {
  return utf8Text(await readRegularFile(file, o), { what: o.what, file, code: o.code });
}

/**
 * The real path of side file `ref` named by `model` (see the module header): relative to the model's
 * folder, and inside it once every symbolic link is resolved. Errors (o.code, default EMODEL) naming
 * the model:
 *   `<model>: <what> "<ref>" is outside the model's folder <dir> (side files must be inside it)`,
 *   `<model>: <what> "<ref>" is a symbolic link to <real>, outside the model's folder <dir> (…)`,
 *   `<model>: <what> <path> cannot be read (<errno in words>)` when it does not resolve.
 */
export async function sideFilePath(model: string, ref: string, o: { what: string; code?: ErrorCode }): Promise<string> {
  const code = o.code ?? 'EMODEL';
  const dir = path.dirname(path.resolve(model));
  const where = path.resolve(dir, ref);
  const outside = (how: string) => new EdgetuneError(code, `${model}: ${o.what} "${ref}" ${how}outside the model's folder ${dir} (side files must be inside it)`, { subject: model });
  if (!ref || path.isAbsolute(ref) || !where.startsWith(dir + path.sep)) throw outside('is ');
  let realDir: string;
  let real: string;
  try {
    realDir = await realpath(dir);
    real = await realpath(where);
  } catch (err) {
    throw new EdgetuneError(code, `${model}: ${o.what} ${where} cannot be read (${fsReason(err)})`, { subject: where, cause: err });
  }
  if (!real.startsWith(realDir + path.sep)) throw outside(`is a symbolic link to ${real}, `);
  return real;
}

/**
 * Read side file `ref` of `model`: sideFilePath's check, then readRegularFile's (regular file, at
 * most o.maxBytes). Returns the real path and the bytes. Errors: as those two, with o.code (default EMODEL).
 */
export async function readSideFile(model: string, ref: string, o: ReadFileOptions): Promise<{ file: string; bytes: Uint8Array }> {
  const code = o.code ?? 'EMODEL';
  const file = await sideFilePath(model, ref, { what: o.what, code });
  return { file, bytes: await readRegularFile(file, { ...o, code }) };
}
