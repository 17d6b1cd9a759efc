// Atomic file output (Node): write a temp file in the same folder, then rename over the target, so a
// reader never sees a partial file and a failed or interrupted run leaves the old file intact; and
// checkWritable, which refuses an output path before any work is done.

import { access, constants, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from '../core/errors.js';

export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new EdgetuneError('EIO', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`, { subject: file, cause: err });
  }
}

/** Refuse an --out that cannot be written before any work is done. */
export async function checkWritable(file: string, flag = '--out'): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  try {
    if ((await stat(dir)).isDirectory() === false) throw Object.assign(new Error(), { code: 'ENOTDIR' });
    await access(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'directory does not exist' : code === 'ENOTDIR' ? 'not a directory' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'directory is not writable' : code ?? messageOf(err);
    throw new EdgetuneError('EIO', `cannot write ${flag} ${file}: ${why} (${dir})`, { subject: file });
  }
  try {
    if ((await stat(file)).isDirectory()) throw new EdgetuneError('EIO', `cannot write ${flag} ${file}: it is a directory`, { subject: file });
  } catch (err) {
    if (err instanceof EdgetuneError) throw err;
  }
}
