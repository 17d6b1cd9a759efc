// A calibration or --eval folder holding files that are not images this build decodes (a phone's
// .HEIC, notes, a dangling link): each is reported with the reason finetune and eval give, never
// passed over unseen (quantize said nothing about them), and the images are still listed.

import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCalibrationImages, type SkippedFile } from '../../../calibration/reader.js';
import { shared, tempDir } from '../../helpers.js';

describe('listCalibrationImages reports what it passes over', () => {
  it('a .HEIC, a .txt and a dangling link are reported with their reasons; the two photos are listed', async () => {
    const d = tempDir();
    mkdirSync(path.join(d, 'ants'));
    const ants = shared('datasets', 'hymenoptera', 'val', 'ants');
    copyFileSync(path.join(ants, '10308379_1b6c72e180.jpg'), path.join(d, 'ants', 'a.JPG'));
    copyFileSync(path.join(ants, '1053149811_f62a3410d3.jpg'), path.join(d, 'b.jpeg'));
    writeFileSync(path.join(d, 'IMG_0001.HEIC'), 'not decoded by this build');
    writeFileSync(path.join(d, 'notes.txt'), 'shot on a phone');
    symlinkSync(path.join(d, 'gone.jpg'), path.join(d, 'ants', 'c.jpg'));
    const skipped: SkippedFile[] = [];
    const files = await listCalibrationImages(d, 'calibration', (s) => skipped.push(s));
    expect(files).toEqual([path.join(d, 'ants', 'a.JPG'), path.join(d, 'b.jpeg')]);
    // before: nothing reported (the .HEIC and .txt were filtered out silently)
    expect(skipped.map((s) => [path.relative(d, s.file), s.error.replace(/; images are .*/, '')])).toEqual([
      ['IMG_0001.HEIC', 'unsupported image format (.HEIC'],
      [path.join('ants', 'c.jpg'), 'dangling symbolic link (its target does not exist)'],
      ['notes.txt', 'not an image file (.txt)'],
    ]);
  });
});
