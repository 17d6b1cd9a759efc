// Image-folder datasets (torchvision ImageFolder layout: one sub-folder per class) for fine-tuning:
// scanning with clear refusals (missing folder, fewer than two classes, an empty class), files that
// are not images listed as skipped, per-class counts with an imbalance warning, and the items of a
// fine-tune (training folder + added classes + validation, split by runtime/train/finetune.ts's rule).

import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError } from '../../core/errors.js';
import { matchClassFolders } from '../../core/labels.js';
import { isHiddenEntry, walkFiles } from '../../io/files.js';
import { checkDirPath } from '../../io/paths.js';
import { stratifiedSplit } from '../finetune.js';
import { checkOptionKeys, type AssertNever } from '../../core/options.js';

export interface DatasetItem {
  file: string;
  /** Index into Dataset.classes. */
  label: number;
}

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface Dataset {
  root: string;
  classes: string[];
  items: DatasetItem[];
  skipped: SkippedFile[];
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** The image files of one class folder (recursive, sorted, symbolic links followed); other files, dangling links and unreadable names go to `skipped` with the reason. */
/**
 * `<dir>: class "<name>" has no images`, and when the folder held files that were passed over, how many
 * and the first one's reason (a phone's .HEIC photos: `(3 files passed over; the first, IMG_0001.HEIC:
 * unsupported image format (.HEIC; …))`), so the user sees why the folder counts as empty.
 */
export function noImagesMessage(dir: string, name: string, passedOver: readonly SkippedFile[], extra = ''): string {
  const first = passedOver[0];
  const why = first ? ` (${passedOver.length} file${passedOver.length === 1 ? '' : 's'} passed over; the first, ${path.relative(dir, first.file) || first.file}: ${first.reason})` : '';
  return `${dir}: class "${name}" has no images${extra}${why}`;
}

export async function listImages(dir: string, skipped: SkippedFile[]): Promise<string[]> {
  return walkFiles(dir, (s) => skipped.push(s));
}

/** Options of scanDataset: the class list and order to match folders to, and the folder's name in messages. */
export interface ScanOptions {
  classes?: readonly string[];
  what?: string;
}
const SCAN_OPTION_KEYS = ['classes', 'what'] as const satisfies readonly (keyof ScanOptions)[];
/** `never` while SCAN_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedScanOption = AssertNever<Exclude<keyof ScanOptions, (typeof SCAN_OPTION_KEYS)[number]>>;

/**
 * Scan a folder-per-class dataset. `classes` fixes the class list and order (a validation folder must
 * use the training classes; a class missing from it is allowed, an unknown class is an error). Its
 * folders are matched to `classes` by the folder rule every command uses (core/labels.ts): exactly,
 * else ignoring case and `_`/`-`, or as the plural of a class (`Ants` or `ants` for a training class `ant`).
 * `what` names the folder in messages (default "dataset"). Errors: EARG for an option it does not take,
 * or an empty root (`Expected a folder for root but received ""`).
 */
export async function scanDataset(root: string, opts: ScanOptions = {}): Promise<Dataset> {
  checkOptionKeys('scanDataset', opts, SCAN_OPTION_KEYS);
  // an empty root ("$DIR" unset) is said as such (it read as '": dataset folder not found"')
  checkDirPath(root, 'root');
  const what = opts.what ?? 'dataset';
  let st;
  try {
    st = await stat(root);
  } catch {
    throw new EdgetuneError('EINPUT', `${root}: ${what} folder not found`, { subject: root });
  }
  if (!st.isDirectory()) throw new EdgetuneError('EINPUT', `${root}: ${what} is not a folder (expected one sub-folder per class)`, { subject: root });
  const entries = (await readdir(root, { withFileTypes: true })).filter((e) => !isHiddenEntry(e.name));
  const found: string[] = [];
  for (const e of entries) if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(path.join(root, e.name))))) found.push(e.name);
  found.sort();
  const skipped: SkippedFile[] = [];
  for (const e of entries) if (!found.includes(e.name)) skipped.push({ file: path.join(root, e.name), reason: 'not inside a class folder' });
  let classes: string[];
  /** Class index of each found folder (the folder rule maps a validation folder to a training class). */
  const folderClass = new Map<string, number>();
  if (opts.classes) {
    const m = matchClassFolders(found, opts.classes, { kind: 'class', of: 'the training set' });
    if (m.problems.length) throw new EdgetuneError('EINPUT', `${root}: ${what}: ${m.problems.join('; ')}`, { subject: root });
    for (const x of m.matched) folderClass.set(x.folder, x.index);
    classes = [...opts.classes];
  } else {
    classes = found;
    if (classes.length < 2) {
      throw new EdgetuneError(
        'EINPUT',
        `${root}: ${what} has ${classes.length === 0 ? 'no class folders' : `only one class folder ("${classes[0]}")`}; a classifier needs at least 2 (one sub-folder of images per class)`,
        { subject: root },
      );
    }
  }
  if (!opts.classes) classes.forEach((c, i) => folderClass.set(c, i));
  const items: DatasetItem[] = [];
  for (const [name, label] of [...folderClass].sort((a, b) => a[1] - b[1])) {
    const dir = path.join(root, name);
    const before = skipped.length;
    const files = await listImages(dir, skipped);
    if (files.length === 0 && !opts.classes) {
      throw new EdgetuneError('EINPUT', noImagesMessage(dir, name, skipped.slice(before)), { subject: dir });
    }
    for (const file of files) items.push({ file, label });
  }
  return { root, classes, items, skipped };
}

export function classCounts(items: readonly DatasetItem[], classes: number): number[] {
  const c = new Array<number>(classes).fill(0);
  for (const it of items) c[it.label]!++;
  return c;
}

/** A warning when the largest class has more than 1.5× the images of the smallest, else undefined. */
export function imbalanceWarning(counts: readonly number[], names: readonly string[]): string | undefined {
  const max = Math.max(...counts);
  const min = Math.min(...counts);
  if (min > 0 && max / min <= 1.5) return undefined;
  const lo = names[counts.indexOf(min)];
  const hi = names[counts.indexOf(max)];
  return `classes are imbalanced ("${hi}" ${max} images, "${lo}" ${min}); training uses balanced class weights`;
}

/** Refuse a class with no (decodable) training images. */
export function checkNoEmptyClass(items: readonly DatasetItem[], classes: readonly string[], root: string): void {
  const counts = classCounts(items, classes.length);
  const empty = counts.findIndex((c) => c === 0);
  if (empty >= 0) {
    throw new EdgetuneError('EINPUT', `${path.join(root, classes[empty]!)}: class "${classes[empty]}" has no usable training images`, { subject: classes[empty] });
  }
}

/** The seeded stratified split of both fine-tune drivers (runtime/train/finetune.ts). */
export { stratifiedSplit };

/**
 * The images of a fine-tune (`edgetune finetune`): the training folder's classes, then each added class
 * (`added`, one folder of images each, appended in order), with validation images from `valDir` (the
 * training classes; an added class has no folder there, so `addedValSplit` of its images are held out)
 * or, without it, a seeded stratified `valSplit` of every class (0 = none). Errors: a missing or empty
 * folder, an added class that already exists, unknown validation classes (scanDataset's refusals).
 */
export async function finetuneItems(o: {
  trainDir: string;
  valDir?: string;
  added?: readonly { name: string; dir: string }[];
  valSplit: number;
  addedValSplit: number;
  seed: number;
}): Promise<{ labels: string[]; train: DatasetItem[]; val: DatasetItem[]; skipped: SkippedFile[] }> {
  checkOptionKeys('finetuneItems', o, ['trainDir', 'valDir', 'added', 'valSplit', 'addedValSplit', 'seed']);
  const trainSet = await scanDataset(o.trainDir, { what: 'training set' });
  const labels = [...trainSet.classes];
  const base = labels.length;
  const skipped: SkippedFile[] = [...trainSet.skipped];
  let train = [...trainSet.items];
  for (const a of o.added ?? []) {
    if (labels.includes(a.name)) throw new EdgetuneError('EARG', `--add-class ${a.name}: the model already has a class "${a.name}"`);
    if (!(await isDir(a.dir))) {
      const exists = await stat(a.dir).then(() => true, () => false);
      throw new EdgetuneError('EINPUT', exists ? `${a.dir}: not a folder (class "${a.name}")` : `${a.dir}: folder for class "${a.name}" not found`, { subject: a.dir });
    }
    const before = skipped.length;
    const files = await listImages(a.dir, skipped);
    if (!files.length) throw new EdgetuneError('EINPUT', noImagesMessage(a.dir, a.name, skipped.slice(before)), { subject: a.dir });
    labels.push(a.name);
    train.push(...files.map((file) => ({ file, label: labels.length - 1 })));
  }
  let val: DatasetItem[] = [];
  if (o.valDir) {
    const vs = await scanDataset(path.resolve(o.valDir), { classes: trainSet.classes, what: 'validation set' });
    val = vs.items;
    skipped.push(...vs.skipped);
    // added classes have no folder in the old validation set: hold out part of their images
    if (labels.length > base) {
      const s = stratifiedSplit(train.filter((i) => i.label >= base), labels.length, o.addedValSplit, o.seed);
      train = [...train.filter((i) => i.label < base), ...s.train];
      val.push(...s.val);
    }
  } else if (o.valSplit > 0) {
    ({ train, val } = stratifiedSplit(train, labels.length, o.valSplit, o.seed));
  }
  return { labels, train, val, skipped };
}
