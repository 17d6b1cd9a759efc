// Input files: which names are images (one list, runtime/image/decode.ts IMAGE_EXTENSIONS, taken from
// what sharp decodes), and walking folders for them: symbolic links to files and folders are followed
// (a folder reached twice, e.g. through a link loop, is walked once), a dangling link or a name that is
// not valid UTF-8 is reported, never silently dropped. expandInputs turns CLI inputs into files. Node only.

import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_EXTENSIONS, readErrorReason } from '../image/decode.js';

export function isImageFile(f: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
}

/** A file a walk did not return, and why. */
export interface WalkSkip {
  file: string;
  reason: string;
}

/**
 * Every file under `dir` (recursive, sorted by name per folder), following symbolic links; `keep(name)`
 * decides which regular files are returned (the others go to onSkip with "unsupported image format
 * (.ext)" / "no extension"). Reported through onSkip: dangling links, unreadable entries, names that
 * are not valid UTF-8 (Node cannot open them by a string path: rename the file), and link loops.
 */
export async function walkFiles(dir: string, onSkip: (s: WalkSkip) => void, keep: (name: string) => boolean = isImageFile, opts: { hidden?: boolean; reportOthers?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    let real: string;
    try {
      real = await realpath(d);
    } catch (err) {
      onSkip({ file: d, reason: readErrorReason(err) });
      return;
    }
    if (seen.has(real)) {
      onSkip({ file: d, reason: `folder already read (symbolic link loop or second link to ${real})` });
      return;
    }
    seen.add(real);
    let raw: Buffer[];
    try {
      raw = await readdir(d, { encoding: 'buffer' });
    } catch (err) {
      onSkip({ file: d, reason: readErrorReason(err) });
      return;
    }
    const names: string[] = [];
    for (const b of raw) {
      const n = b.toString('utf8');
      if (!Buffer.from(n, 'utf8').equals(b)) {
        onSkip({ file: path.join(d, n), reason: 'file name is not valid UTF-8 (cannot be opened by name; rename it)' });
        continue;
      }
      names.push(n);
    }
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const n of names) {
      if (n.startsWith('.') && !opts.hidden) continue;
      const p = path.join(d, n);
      let st;
      try {
        st = await stat(p); // follows links
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        onSkip({ file: p, reason: code === 'ENOENT' ? 'dangling symbolic link (its target does not exist)' : readErrorReason(err) });
        continue;
      }
      if (st.isDirectory()) await walk(p);
      else if (st.isFile() && keep(n)) out.push(p);
      else if (opts.reportOthers !== false) onSkip({ file: p, reason: st.isFile() ? notAnImage(n) : 'not a regular file' });
    }
  };
  await walk(dir);
  return out;
}

/** Why a file name is not taken as an image. */
export function notAnImage(name: string): string {
  const ext = path.extname(name);
  return ext ? `unsupported image format (${ext}; images are ${IMAGE_EXTENSIONS.join(' ')})` : 'not an image file (no extension)';
}

/**
 * Expand CLI inputs: files are kept as given (whatever their extension, so a bad file gets its own
 * error), directories are walked recursively (links followed, see walkFiles), sorted: image files
 * first by name, and non-image files too, so that they are reported, not hidden. A missing path is
 * returned as-is so the caller reports it per file; a dangling link or a non-UTF-8 name inside a folder
 * is returned as its path too (the caller's read names the problem) unless `onSkip` is given.
 */
export async function expandInputs(inputs: readonly string[], onSkip?: (s: WalkSkip) => void): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = await stat(input);
    } catch {
      out.push(input);
      continue;
    }
    if (!st.isDirectory()) {
      out.push(input);
      continue;
    }
    out.push(...(await walkFiles(input, (s) => (onSkip ? onSkip(s) : out.push(s.file)), () => true)));
  }
  return out;
}
