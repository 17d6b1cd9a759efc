// Atomic file output (Node). One temp-file scheme for everything edgetune writes (tempPathFor: a
// hidden `.<name>.<pid>.<n>.tmp` beside the target, removed by the next write there once its process
// is gone); writeAtomic, a temp file renamed over one target; writeAtomicSet, several outputs that
// belong together (a model, its report, its float twin, its resume data, its calibration table)
// replaced as one set through a journal, so that after a failure or a kill -9 at any instant the folder
// holds the whole old set or, once the next write there (or recoverSets) has run, the whole new one;
// and checkWritable, which refuses an output before any work: a folder that cannot be written (the
// errno in words), a target that is not a regular file (a FIFO, a device, a folder, a symbolic link),
// or a target that is one of the command's inputs.

import { constants } from 'node:fs';
import { access, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError } from '../core/errors.js';
import { checkDirPath } from './paths.js';
import { errnoWords, fsReason } from './errno.js';
import { fileKind } from './read-file.js';

let tmpCounter = 0;

/**
 * A temp path beside `file` owned by this process: `.<name>.<pid>.<n>.tmp` plus `suffix` (e.g. '.onnx'
 * for a tool that wants the extension). removeStaleTemps() recognises it once this process is gone.
 */
export function tempPathFor(file: string, suffix = ''): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}${tmpCounter++}.tmp${suffix}`);
}

const TEMP_NAME = /^\..+\.(\d+)\.\d+\.tmp(\.[^/]*)?$/;
/** The journal of a set being committed: `.<primary name>.set.json` beside the primary. */
const JOURNAL_NAME = /^\..+\.set\.json$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `name` (a file or folder name, no path) is a tempPathFor temp whose process is gone: left by a killed run. */
export function isStaleTemp(name: string): boolean {
  const m = TEMP_NAME.exec(name);
  return Boolean(m && !processAlive(Number(m[1])));
}

/**
 * Remove the temp files and folders (tempPathFor's names) that a killed run left in `dir`: those whose process is
 * no longer running. Returns the removed paths. Never throws (a folder that cannot be read is left).
 * Call recoverSets(dir) first: a committed set's temps are its new files.
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
    if (!isStaleTemp(n)) continue;
    const p = path.join(dir, n);
    // recursive: a temp folder (the kiosk bundle, a Triton entry being built)
    if (await rm(p, { force: true, recursive: true }).then(() => true, () => false)) removed.push(p);
  }
  return removed;
}

interface Journal {
  edgetune: 'atomic-set';
  version: 1;
  pid: number;
  entries: { file: string; temp?: string; remove?: true }[];
}

/** Apply a committed journal (idempotent: a step already done is skipped), then remove it. */
async function rollForward(journalFile: string, j: Journal, step: () => void = () => undefined): Promise<void> {
  for (const e of j.entries) {
    if (e.remove) {
      // only a file (or a link) is removed: a folder or a device in the way is left for the caller to report
      if (await lstat(e.file).then((st) => st.isFile() || st.isSymbolicLink(), () => false)) await rm(e.file, { force: true });
    } else if (e.temp && (await lstat(e.temp).then(() => true, () => false))) await rename(e.temp, e.file);
    step();
  }
  await rm(journalFile, { force: true });
}

/** Whether journal `file` (parsed as `j`) may be rolled forward (see recoverSets). */
async function trustedJournal(file: string, j: Journal): Promise<boolean> {
  const dir = path.dirname(file);
  const uid = process.getuid?.();
  if (uid !== undefined && (await lstat(file)).uid !== uid) return false;
  for (const e of j.entries) {
    if (typeof e?.file !== 'string' || path.dirname(e.file) !== dir) return false;
    if (e.remove) continue;
    if (typeof e.temp !== 'string' || path.dirname(e.temp) !== dir || !TEMP_NAME.test(path.basename(e.temp))) return false;
  }
  return true;
}

/**
 * Finish the output sets a killed writeAtomicSet committed in `dir` (its journal was written: every
 * new file is there, as a temp or already in place) by moving the rest into place, then remove the
 * stale temps of killed runs (a set killed before its commit: the old set stays whole). Journals of
 * running processes are left alone. Returns the targets completed. Errors: EIO naming the file.
 */
export async function recoverSets(dir: string): Promise<string[]> {
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const n of names.filter((x) => JOURNAL_NAME.test(x))) {
    const file = path.join(dir, n);
    let j: Journal;
    try {
      j = JSON.parse(await readFile(file, 'utf8')) as Journal;
    } catch {
      continue; // not one of ours
    }
    if (j?.edgetune !== 'atomic-set' || !Array.isArray(j.entries)) continue;
    if (j.pid !== process.pid && processAlive(j.pid)) continue;
    // A journal is obeyed only when it is ours to obey: written by this user, naming only files in its
    // own folder and temps of tempPathFor's form there. One planted in a shared folder (/tmp) cannot
    // make edgetune rename or remove anything elsewhere; it is left as it is.
    if (!(await trustedJournal(file, j))) continue;
    try {
      await rollForward(file, j);
    } catch (err) {
      throw new EdgetuneError('EIO', `cannot finish the output set recorded in ${file}: ${fsReason(err)}`, { subject: file, cause: err });
    }
    done.push(...j.entries.map((e) => e.file));
  }
  await removeStaleTemps(dir);
  return done;
}

/**
 * One output of writeAtomicSet: its bytes (`data`), a finished temp file to move into place (`from`,
 * a tempPathFor name), or `remove: true`: a file of the set this write does not produce (a report of
 * an older run), removed with the commit so no file describing an older set is left beside the new one.
 */
export interface AtomicEntry {
  file: string;
  data?: string | Uint8Array;
  from?: string;
  remove?: boolean;
}

/** Tests only: EDGETUNE_TEST_KILL_AT=<n> makes writeAtomicSet kill -9 its own process at its n-th step (see writeAtomicSet). */
function killHook(): () => void {
  const at = Number(process.env.EDGETUNE_TEST_KILL_AT);
  if (!Number.isInteger(at) || at < 1) return () => undefined;
  let n = 0;
  return () => {
    if (++n === at) process.kill(process.pid, 'SIGKILL');
  };
}

async function writeDurable(file: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(file, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Why `file` cannot be replaced by a new regular file (see checkWritable), or undefined when it can (absent or a regular file). */
async function targetProblem(file: string): Promise<string | undefined> {
  let st;
  try {
    st = await lstat(file);
  } catch {
    return undefined;
  }
  if (st.isFile()) return undefined;
  if (st.isSymbolicLink()) {
    const to = await readlink(file).catch(() => '?');
    return `it is a symbolic link (to ${to}); edgetune replaces files, never links: write to the link's target or to a new file, then point the link at it`;
  }
  if (st.isDirectory()) return 'it is a directory';
  return `it is ${fileKind(st)}, not a regular file`;
}

/**
 * Replace a set of outputs together (the first entry is the primary, e.g. the model). Steps:
 *   1. finish or clean up what killed runs left in the target folders (recoverSets);
 *   2. write every entry to a temp file beside its target (or check its `from` temp exists); each
 *      target must be absent or a regular file (never a FIFO, device, folder or symbolic link);
 *   3. commit: write the journal `.<primary>.set.json` beside the primary (a temp renamed into place);
 *   4. rename each temp over its target, remove each `remove` entry; 5. remove the journal.
 * A failure or kill before 3 leaves the old set whole (its temps are removed now, or by the next write
 * there); from 3 on the new set is committed: a kill during 4 is finished by the next write in that
 * folder (or recoverSets). Temps are removed on failure. Errors: EdgetuneError EIO naming the file
 * and the errno in words.
 */
export async function writeAtomicSet(entries: readonly AtomicEntry[]): Promise<void> {
  if (!entries.length) return;
  const step = killHook();
  const abs = entries.map((e) => ({ ...e, file: path.resolve(e.file) }));
  // one folder per set: its journal names only files beside it (recoverSets obeys no other)
  const setDir = path.dirname(abs[0]!.file);
  const away = abs.find((e) => path.dirname(e.file) !== setDir || (e.from !== undefined && path.dirname(path.resolve(e.from)) !== setDir));
  if (away) throw new EdgetuneError('EIO', `cannot write ${away.file}: the files of one output set must be in one folder (${setDir})`, { subject: away.file });
  for (const d of new Set(abs.map((e) => path.dirname(e.file)))) await recoverSets(d);
  const temps: string[] = [];
  const owned: string[] = [];
  let current = abs[0]!.file;
  const fail = (err: unknown): EdgetuneError =>
    err instanceof EdgetuneError ? err : new EdgetuneError('EIO', `cannot write ${current}: ${fsReason(err)}`, { subject: current, cause: err });
  const journal: Journal = { edgetune: 'atomic-set', version: 1, pid: process.pid, entries: [] };
  const journalFile = path.join(path.dirname(abs[0]!.file), `.${path.basename(abs[0]!.file)}.set.json`);
  try {
    for (const e of abs) {
      current = e.file;
      if (e.remove) {
        journal.entries.push({ file: e.file, remove: true });
        continue;
      }
      const problem = await targetProblem(e.file);
      if (problem) throw new EdgetuneError('EIO', `cannot write ${e.file}: ${problem}`, { subject: e.file });
      let tmp: string;
      if (e.from !== undefined) {
        tmp = path.resolve(e.from);
        temps.push(tmp);
        await stat(tmp);
      } else {
        tmp = tempPathFor(e.file);
        temps.push(tmp);
        owned.push(tmp);
        await writeDurable(tmp, e.data ?? '');
      }
      journal.entries.push({ file: e.file, temp: tmp });
      step();
    }
  } catch (err) {
    for (const t of owned) await rm(t, { force: true });
    for (const t of temps) await rm(t, { force: true });
    throw fail(err);
  }
  const simple = abs.length === 1 && !abs[0]!.remove;
  try {
    if (simple) {
      // one file: its rename is the commit
      await rename(journal.entries[0]!.temp!, abs[0]!.file);
      return;
    }
    current = journalFile;
    const jt = tempPathFor(journalFile);
    temps.push(jt);
    await writeDurable(jt, JSON.stringify(journal));
    step();
    await rename(jt, journalFile);
    temps.length = 0; // committed: the temps are the new set now
    step();
  } catch (err) {
    for (const t of temps) await rm(t, { force: true });
    throw fail(err);
  }
  try {
    await rollForward(journalFile, journal, step);
  } catch (err) {
    throw new EdgetuneError('EIO', `cannot finish writing the output set of ${abs[0]!.file} (${fsReason(err)}); the next write in ${path.dirname(journalFile)} finishes it`, { subject: abs[0]!.file, cause: err });
  }
}

/** Write one file atomically (temp file beside it, then rename; see writeAtomicSet). Errors: EdgetuneError EIO. */
export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await writeAtomicSet([{ file, data }]);
}

/** Whether two existing paths name the same file (same device and inode: hard links and symbolic links included). */
export interface CheckWritableOptions {
  /** Files the command reads (its model, label file, calibration cache…): none may be an output. Ones that do not exist are ignored. */
  inputs?: readonly (string | undefined)[];
  /** The other files of the output set (a report, a float twin), checked like `file`. */
  also?: readonly string[];
}

/**
 * Refuse an output before any work is done (before calibrating or training). Errors (EdgetuneError
 * EIO, naming the flag and the file):
 *   `cannot write --out X: directory does not exist (D)` / `…: not a directory (D)`,
 *   `cannot write --out X: read-only file system (EROFS) (D)` (any errno, in words: a temp file is
 *   created and removed in D to find out),
 *   `cannot write --out X: it is a directory` / `…: it is a FIFO (named pipe), not a regular file` /
 *   `…: it is a symbolic link (to T); edgetune replaces files, never links: …`,
 *   `cannot write --out X: it is the input Y (the same file); write to another file`.
 * Also finishes or cleans what killed runs left in D (recoverSets).
 */
export async function checkWritable(file: string, flag = '--out', o: CheckWritableOptions = {}): Promise<void> {
  for (const f of [file, ...(o.also ?? [])]) {
    const dir = path.dirname(path.resolve(f));
    const refuse = (why: string) => new EdgetuneError('EIO', `cannot write ${flag} ${f}: ${why}`, { subject: f });
    try {
      if ((await stat(dir)).isDirectory() === false) throw Object.assign(new Error(), { code: 'ENOTDIR' });
      await access(dir, constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw refuse(`${code === 'ENOENT' ? 'directory does not exist' : code === 'ENOTDIR' ? 'not a directory' : fsReason(err)} (${dir})`);
    }
    const problem = await targetProblem(f);
    if (problem) throw refuse(problem);
    // the target is stat'ed once; a target that does not exist yet is none of the inputs (eval passes every image)
    const target = o.inputs?.length ? await stat(f).catch(() => undefined) : undefined;
    if (target) {
      for (const input of o.inputs ?? []) {
        const s = input ? await stat(input).catch(() => undefined) : undefined;
        if (s && s.dev === target.dev && s.ino === target.ino) throw refuse(`it is the input ${input} (the same file); write to another file`);
      }
    }
    await recoverSets(dir);
    // access() does not see every reason a write fails (a read-only bind mount, a full quota): try one.
    const probe = tempPathFor(f);
    try {
      await writeDurable(probe, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw refuse(`${code ? errnoWords(code) : fsReason(err)} (${dir})`);
    } finally {
      await rm(probe, { force: true });
    }
  }
}

/**
 * Create folder `dir` (and its parents) for output and prove it writable by creating and removing a
 * temp file there, before any work. Errors (EdgetuneError EIO): `cannot write <flag> <dir>: <errno in
 * words> (<the folder that refused>)`, e.g. `read-only file system (EROFS)`: a folder that cannot be
 * made is reported with the reason of its nearest existing parent, never as a bare ENOENT; a file at
 * `dir` is `cannot write <flag> <dir>: it is a file, not a folder (<dir, absolute>)`; an empty `dir`
 * is checkDirPath's EARG (never the current directory).
 */
export async function ensureWritableDir(dir: string, flag = '--out'): Promise<void> {
  const abs = path.resolve(checkDirPath(dir, flag));
  const refuse = (why: string, where: string) => new EdgetuneError('EIO', `cannot write ${flag} ${dir}: ${why} (${where})`, { subject: dir });
  try {
    await mkdir(abs, { recursive: true });
  } catch (err) {
    // a file where the folder should be (`export … --out model.onnx`): mkdir's EEXIST would read as if the folder existed
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refuse('it is a file, not a folder', abs);
    // the nearest folder that exists says why (a read-only parent can surface as ENOENT from a recursive mkdir)
    let up = path.dirname(abs);
    while (up !== path.dirname(up) && !(await stat(up).then((st) => st.isDirectory(), () => false))) up = path.dirname(up);
    const why = await access(up, constants.W_OK).then(
      () => undefined,
      (e: unknown) => fsReason(e),
    );
    throw refuse(why ?? fsReason(err), why ? up : abs);
  }
  await recoverSets(abs);
  const probe = tempPathFor(path.join(abs, 'probe'));
  try {
    await writeDurable(probe, '');
  } catch (err) {
    throw refuse(fsReason(err), abs);
  } finally {
    await rm(probe, { force: true });
  }
}
