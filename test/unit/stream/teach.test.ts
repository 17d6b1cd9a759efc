// The teach module's pure rules (runtime/stream/teach.ts): which labels can be class folders, when a
// frame counts as unknown, and the old-class accuracy the 422 gate compares. The routes, training and
// swap run end to end in test/e2e/watch-teach.test.ts.

import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLabel, isUnknown, oldClassAccuracy, pruneTaughtModels } from '../../../runtime/stream/teach.js';
import { tempDir } from '../../helpers.js';
import type { StreamResult } from '../../../runtime/stream/pipeline.js';

describe('teach rules', () => {
  it('takes labels that are safe folder names and refuses path parts with the reason', () => {
    for (const ok of ['sunflowers', 'Golden Retriever', 'class_2', 'été', 'a.b-c+d']) expect(checkLabel(ok)).toBe(ok);
    for (const bad of ['', '..', '../models', 'a/b', 'a\\b', '.hidden', 'x'.repeat(65), 'ends.', ' lead']) {
      expect(() => checkLabel(bad)).toThrow(`Expected a label of 1 to 64 letters, digits, spaces or "_.+-" (starting with a letter or digit) but received ${JSON.stringify(bad)}`);
    }
  });

  it('a result is unknown when the stream shows "unknown", or by its own open-set flag', () => {
    const r = (index: number, unknown?: boolean) => ({ top: [{ index: 0, label: 'daisy', score: 0.9 }], smoothed: { label: index < 0 ? 'unknown' : 'daisy', index, score: 0.9 }, ...(unknown === undefined ? {} : { unknown }) }) as unknown as StreamResult;
    expect(isUnknown(r(-1))).toBe(true);
    expect(isUnknown(r(0))).toBe(false);
    expect(isUnknown(r(0, true))).toBe(true);
    expect(isUnknown(r(-1, false))).toBe(true);
  });

  it('older trained sets are removed whole, keeping the newest and the ones the stream holds', async () => {
    // Before, DIR/models/ grew by a set (~12 MB here: 3.4 MB model, 8.8 MB resume data, report) per
    // training for ever. The names and files are those one training of watch --teach wrote.
    const dir = tempDir('edgetune-teach-prune-');
    const stems = ['teach-2026-12-07T14-57-22-515Z', 'teach-2026-12-07T14-57-49-745Z', 'teach-2026-12-07T15-04-02-302Z', 'teach-2026-12-07T15-04-13-802Z'];
    for (const stem of stems) for (const ext of ['.onnx', '.resume.bin', '.report.json', '.report.png']) writeFileSync(path.join(dir, stem + ext), '');
    writeFileSync(path.join(dir, `.${stems[3]}.onnx.4242.17.tmp`), ''); // a set being written by another training
    // the oldest is held (the stream serves it after a rollback): it stays; the second oldest goes whole
    expect(await pruneTaughtModels(dir, 2, [path.join(dir, `${stems[0]}.onnx`)])).toEqual([stems[1]]);
    expect(readdirSync(dir).filter((f) => f.startsWith(stems[1]!))).toEqual([]);
    expect(readdirSync(dir)).toHaveLength(13);
    expect(await pruneTaughtModels(dir, 0)).toEqual([]);
    expect(await pruneTaughtModels(dir, 1)).toEqual([stems[2], stems[0]]);
    expect(readdirSync(dir).sort()).toEqual([`.${stems[3]}.onnx.4242.17.tmp`, ...['.onnx', '.report.json', '.report.png', '.resume.bin'].map((e) => stems[3] + e)].sort());
  });

  it('old-class accuracy counts the old rows of the confusion matrix, wherever their images went', () => {
    // the taught model of the e2e test: 30 old validation images, 27 on their own class, 3 to sunflowers
    const r = { labels: ['daisy', 'dandelion', 'roses', 'sunflowers'], confusion: [[9, 1, 0, 0], [0, 9, 0, 1], [0, 0, 9, 1], [0, 1, 0, 7]] };
    expect(oldClassAccuracy(r, ['daisy', 'dandelion', 'roses'])).toEqual({ accuracy: 27 / 30, images: 30 });
    expect(oldClassAccuracy(r, ['tulips'])).toEqual({ accuracy: null, images: 0 });
  });
});
