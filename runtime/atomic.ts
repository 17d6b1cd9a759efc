// Atomic file output (Node): write a temp file in the same folder, then rename over the target, so a
// reader never sees a partial file and a failed or interrupted run leaves the old file intact.

import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from './errors.js';

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
