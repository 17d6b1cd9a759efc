// Input files: which names are images (one list, runtime/image/decode.ts IMAGE_EXTENSIONS, taken from
// what sharp decodes), and walking folders for them: symbolic links to files and folders are followed
// (a folder reached twice, e.g. through a link loop, is walked once), a dangling link or a name that is
// not valid UTF-8 is reported, never silently dropped. expandInputs turns CLI inputs into files;
// findSharedFiles finds byte-identical files in two sets (leakage between training and validation). Node only.

import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { DECODED_IMAGE_EXTENSIONS, IMAGE_EXTENSIONS, readErrorReason } from '../image/decode.js';

/**
 * Whether a folder entry is hidden from every walk and class list: a name starting with "." (dotfiles,
 * macOS's `._photo.jpg` AppleDouble files) or `__MACOSX`, the metadata folder a zip made on macOS
 * unpacks (its `._*` files are not photos; as a class folder it stopped finetune and eval).
 */
export function isHiddenEntry(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX';
}

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
      if (isHiddenEntry(n) && !opts.hidden) continue;
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

/** Extensions of image formats this build of sharp does not decode (named as unsupported, not as "not an image"). */
const OTHER_IMAGE_EXTENSIONS = ['.bmp', '.dib', '.ico', '.cur', '.heic', '.heif', '.psd', '.jxl', '.jp2', '.j2k', '.dng', '.cr2', '.nef', '.arw', '.exr', '.hdr', '.tga', '.pcx', '.ppm', '.pgm', '.pbm', '.pnm'];

/** Whether a file name is of an image format this build of sharp does not decode (.heic, .bmp, …): named as unsupported, never passed over unseen. */
export function isUndecodedImageFile(name: string): boolean {
  return OTHER_IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** Why a file name is not taken as an image: an image format sharp does not decode, or not an image. */
export function notAnImage(name: string): string {
  const ext = path.extname(name);
  if (isUndecodedImageFile(name)) return `unsupported image format (${ext}; images are ${DECODED_IMAGE_EXTENSIONS.join(' ')})`;
  return `not an image file (${ext || 'no extension'})`;
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

/** Byte-identical files found in two lists (findSharedFiles). */
export interface SharedFiles {
  /** Files of `b` whose bytes equal some file of `a`. */
  count: number;
  /** Up to `examples` pairs [file of b, file of a]. */
  examples: [string, string][];
}

/**
 * Files of `b` byte-identical to a file of `a` (train/validation or calibration/evaluation leakage).
 * Only files whose size occurs in both lists are hashed (sha256), so distinct sets cost one stat per
 * file. Unreadable files are ignored (their readers report them).
 */
export async function findSharedFiles(a: readonly string[], b: readonly string[], examples = 3): Promise<SharedFiles> {
  const sizes = async (files: readonly string[]) => {
    const m = new Map<string, number>();
    for (const f of files) {
      const st = await stat(f).catch(() => undefined);
      if (st?.isFile()) m.set(f, st.size);
    }
    return m;
  };
  const sa = await sizes(a);
  const sb = await sizes(b);
  const sbSizes = new Set(sb.values());
  const common = new Set([...sa.values()].filter((s) => sbSizes.has(s)));
  const hash = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');
  const byHash = new Map<string, string>();
  for (const [f, s] of sa) if (common.has(s)) byHash.set(await hash(f).catch(() => ''), f);
  byHash.delete('');
  const out: SharedFiles = { count: 0, examples: [] };
  for (const [f, s] of sb) {
    if (!common.has(s)) continue;
    const match = byHash.get(await hash(f).catch(() => ''));
    if (match === undefined) continue;
    out.count++;
    if (out.examples.length < examples) out.examples.push([f, match]);
  }
  return out;
}

/** The warning for shared files, or undefined: `what` names b's role, `of` a's (e.g. 'validation', 'training'); `consequence`: what the overlap does (default: `what`'s score is overstated). */
export function sharedFilesWarning(s: SharedFiles, what: string, of: string, total: number, consequence = `the ${what} score is overstated`): string | undefined {
  if (!s.count) return undefined;
  const eg = s.examples.map(([x, y]) => `${x} = ${y}`).join('; ');
  return `${s.count} of ${total} ${what} images are byte-identical to ${of} images (e.g. ${eg}): ${consequence}; keep the two sets apart`;
}

/** Items of `b` whose content hash (`hashes`: file → sha256) is also one of `a`'s: the leakage of findSharedFiles when the hashes are known. */
export function sharedByHash(a: readonly { file: string }[], b: readonly { file: string }[], hashes: ReadonlyMap<string, string>, examples = 3): SharedFiles {
  const byHash = new Map(a.map((i) => [hashes.get(i.file), i.file] as const));
  byHash.delete(undefined);
  const hit = b.filter((i) => byHash.has(hashes.get(i.file)));
  return { count: hit.length, examples: hit.slice(0, examples).map((i) => [i.file, byHash.get(hashes.get(i.file))!]) };
}
