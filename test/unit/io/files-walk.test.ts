// Walking input folders: symbolic links to files and folders followed, a loop walked once, a dangling
// link and a non-UTF-8 name reported (not dropped), one list of extensions taken from sharp (so .jfif
// and .jpe are images everywhere), read errors in words, and byte-identical files across two sets.

import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { expandInputs, findSharedFiles, isImageFile, sharedFilesWarning, walkFiles, type WalkSkip } from '../../../runtime/io/files.js';
import { IMAGE_EXTENSIONS, readErrorReason } from '../../../runtime/image/decode.js';
import { listImages, type SkippedFile } from '../../../runtime/train/node/dataset.js';
import { shared, tempDir } from '../../helpers.js';

const daisy = shared('faults', 'divergence', 'ds', 'daisy');
const rose = shared('faults', 'divergence', 'ds', 'rose');

describe('one list of image extensions', () => {
  it('is what sharp decodes: .jfif and .jpe are JPEG, .bmp is not', () => {
    for (const e of sharp.format.jpeg.input.fileSuffix!) expect(IMAGE_EXTENSIONS).toContain(e);
    expect(isImageFile('a.JFIF')).toBe(true);
    expect(isImageFile('a.jpe')).toBe(true);
    expect(isImageFile('a.avif')).toBe(true);
    expect(isImageFile('a.bmp')).toBe(false);
  });

  it('finetune reads the same files as classify in names-and-extensions/ds, and names the unsupported one', async () => {
    const dir = shared('faults', 'names-and-extensions', 'ds');
    const skipped: SkippedFile[] = [];
    const apple = await listImages(path.join(dir, 'Apple Pink Lady'), skipped);
    expect(apple.map((f) => path.basename(f))).toEqual(['d6.jfif', 'd7.jpe', 'pic 1 ü.jpg', 'pic 2 ü.jpg', 'pic 3 ü.jpg', 'pic 4 ü.jpg', 'pic 5 ü.jpg']);
    const other = await listImages(path.join(dir, 'Äpfel 日本'), skipped);
    expect(other).toHaveLength(5);
    expect(skipped).toEqual([{ file: path.join(dir, 'Äpfel 日本', 'r6.bmp'), reason: expect.stringMatching(/^unsupported image format \(\.bmp;/) }]);
  });
});

describe('walkFiles / listImages with symbolic links', () => {
  function tree() {
    const d = tempDir();
    const store = path.join(d, 'store');
    mkdirSync(path.join(store, 'more'), { recursive: true });
    copyFileSync(path.join(daisy, 'daisy_1.jpg'), path.join(store, 'target.jpg'));
    copyFileSync(path.join(daisy, 'daisy_2.jpg'), path.join(store, 'more', 'inner.jpg'));
    const cls = path.join(d, 'cls');
    mkdirSync(cls);
    copyFileSync(path.join(rose, 'rose_1.jpg'), path.join(cls, 'real.jpg'));
    symlinkSync('../store/target.jpg', path.join(cls, 'link.jpg'));
    symlinkSync('../store/more', path.join(cls, 'linkdir'));
    symlinkSync('../store/nothing.jpg', path.join(cls, 'dangling.jpg'));
    symlinkSync('..', path.join(store, 'more', 'loop')); // store/more/loop → store: a cycle through linkdir
    return { d, cls };
  }

  it('follows links to files and folders, walks a loop once, reports a dangling link', async () => {
    const { cls } = tree();
    const skips: WalkSkip[] = [];
    const files = await walkFiles(cls, (s) => skips.push(s));
    // linkdir/loop leads back to store: its target.jpg is read once more by that path, store/more is not walked again
    expect(files.map((f) => path.relative(cls, f))).toEqual(['link.jpg', 'linkdir/inner.jpg', 'linkdir/loop/target.jpg', 'real.jpg']);
    expect(skips).toContainEqual({ file: path.join(cls, 'dangling.jpg'), reason: 'dangling symbolic link (its target does not exist)' });
    expect(skips.some((s) => /folder already read/.test(s.reason))).toBe(true);
  });

  it('classify\'s expandInputs returns the linked images and hands the dangling link to onSkip', async () => {
    const { cls } = tree();
    const skips: WalkSkip[] = [];
    const files = await expandInputs([cls], (s) => skips.push(s));
    expect(files).toContain(path.join(cls, 'link.jpg'));
    expect(files).toContain(path.join(cls, 'linkdir', 'inner.jpg'));
    expect(skips.map((s) => path.basename(s.file))).toContain('dangling.jpg');
  });

  it('a class folder that is a link is a class (scanDataset) and its images are read', async () => {
    const { d } = tree();
    const skipped: SkippedFile[] = [];
    const files = await listImages(path.join(d, 'cls'), skipped);
    expect(files).toContain(path.join(d, 'cls', 'link.jpg'));
    expect(skipped.map((s) => path.basename(s.file))).toContain('dangling.jpg');
  });

  it('a name that is not valid UTF-8 is reported as such, not as ENOENT', async () => {
    const d = tempDir();
    writeFileSync(Buffer.concat([Buffer.from(d + '/bad'), Buffer.from([0xff, 0xfe]), Buffer.from('.jpg')]), 'x');
    copyFileSync(path.join(daisy, 'daisy_1.jpg'), path.join(d, 'ok.jpg'));
    const skips: WalkSkip[] = [];
    const files = await walkFiles(d, (s) => skips.push(s));
    expect(files).toEqual([path.join(d, 'ok.jpg')]);
    expect(skips).toHaveLength(1);
    expect(skips[0]!.reason).toMatch(/not valid UTF-8/);
  });
});

describe('readErrorReason', () => {
  it('says permission denied for EACCES / EPERM (never "unsupported image format")', () => {
    expect(readErrorReason(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe('permission denied (EACCES)');
    expect(readErrorReason(Object.assign(new Error('x'), { code: 'EPERM' }))).toBe('permission denied (EPERM)');
    expect(readErrorReason(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe('cannot read file: no such file or directory (ENOENT)');
  });
});

describe('findSharedFiles', () => {
  it('finds byte-identical files across two sets, whatever their names', async () => {
    const a = tempDir();
    const b = tempDir();
    for (let i = 1; i <= 4; i++) copyFileSync(path.join(daisy, `daisy_${i}.jpg`), path.join(a, `a${i}.jpg`));
    copyFileSync(path.join(daisy, 'daisy_2.jpg'), path.join(b, 'renamed.jpg'));
    copyFileSync(path.join(rose, 'rose_1.jpg'), path.join(b, 'other.jpg'));
    copyFileSync(path.join(daisy, 'daisy_4.jpg'), path.join(b, 'again.jpg'));
    const files = async (d: string) => expandInputs([d]);
    const s = await findSharedFiles(await files(a), await files(b));
    expect(s.count).toBe(2);
    expect(s.examples).toContainEqual([path.join(b, 'renamed.jpg'), path.join(a, 'a2.jpg')]);
    expect(sharedFilesWarning(s, 'evaluation', 'calibration', 3)).toMatch(/^2 of 3 evaluation images are byte-identical to calibration images \(e\.g\. /);
    const none = await findSharedFiles(await files(a), [path.join(b, 'other.jpg')]);
    expect(none.count).toBe(0);
    expect(sharedFilesWarning(none, 'x', 'y', 1)).toBeUndefined();
  });
});
