// Atomic file output (Node): write a temp file in the same folder, then rename over the target, so a
// reader never sees a partial file and a failed or interrupted run leaves the old file intact; and
// checkWritable, which refuses an output path before any work is done; writeAtomicSet, which replaces
// several outputs that belong together (a model and its report, a float/int8 pair) so that no mix of
// old and new files is ever left; and the removal of temp files left by a killed run.

import { access, constants, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from '../core/errors.js';

let tmpCounter = 0;

/**
 * A temp path beside `file` owned by this process: `.<name>.<pid>.<n>.tmp` plus `suffix` (e.g. '.onnx'
 * for a tool that wants the extension). removeStaleTemps() recognises it once this process is gone.
 */
export function tempPathFor(file: string, suffix = ''): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}${tmpCounter++}.tmp${suffix}`);
}

const TEMP_NAME = /^\..+\.(\d+)\.\d+\.tmp(\.[^/]*)?$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the temp files and folders (tempPathFor's names) that a killed run left in `dir`: those whose process is
 * no longer running. Returns the removed paths. Never throws (a folder that cannot be read is left).
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = TEMP_NAME.exec(n);
    if (!m || processAlive(Number(m[1]))) continue;
    const p = path.join(dir, n);
    if (await rm(p, { force: true, recursive: true }).then(() => true, () => false)) removed.push(p); // recursive: a temp folder (a Triton entry being built)
  }
  return removed;
}

/** One output of writeAtomicSet: its bytes, or `from`, a finished temp file (tempPathFor) to move into place. */
export interface AtomicEntry {
  file: string;
  data?: string | Uint8Array;
  from?: string;
}

/**
 * Replace a set of outputs together. Every entry is first written to a temp file beside its target
 * (or is already one: `from`); only when all are written, the old files of entries 2..n are removed and
 * the entries are renamed into place in order (entry 1, the primary such as the model, first). A failure
 * or kill before the renames leaves the old set whole; one during them leaves the new primary with part
 * of its set and never a file describing an older one (a report beside a model it does not describe).
 * Temps are removed on failure; stale temps of killed runs in the target folders are removed first.
 * Errors: EdgetuneError EIO naming the file.
 */
export async function writeAtomicSet(entries: readonly AtomicEntry[]): Promise<void> {
  for (const d of new Set(entries.map((e) => path.dirname(path.resolve(e.file))))) await removeStaleTemps(d);
  const temps: string[] = [];
  let current = '';
  try {
    for (const e of entries) {
      current = e.file;
      if (e.from !== undefined) temps.push(e.from);
      else {
        const tmp = tempPathFor(e.file);
        temps.push(tmp);
        await writeFile(tmp, e.data ?? '');
      }
    }
    for (const e of entries.slice(1)) {
      current = e.file;
      await rm(e.file, { force: true });
    }
    for (const [i, e] of entries.entries()) {
      current = e.file;
      await rename(temps[i]!, e.file);
      temps[i] = '';
    }
  } catch (err) {
    for (const t of temps) if (t) await rm(t, { force: true });
    throw new EdgetuneError('EIO', `cannot write ${current}: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`, { subject: current, cause: err });
  }
}

/** Write one file atomically (temp file beside it, then rename); stale temps of killed runs there are removed first. Errors: EdgetuneError EIO. */
export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await removeStaleTemps(path.dirname(path.resolve(file)));
  const tmp = tempPathFor(file);
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
