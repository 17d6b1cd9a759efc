// Multilabel and regression datasets from CSV (runtime/train/node/targets.ts): real photos named
// relative to the CSV's folder, a folder holding labels.csv, bad rows and missing files reported
// with the CSV's name and line and skipped, a header naming the regression outputs, quoted names,
// and an empty result refused.

import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readMultilabelCsv, readRegressionCsv, splitCsvLine, targetMatrix } from '../../../runtime/train/node/targets.js';
import { shared, tempDir } from '../../helpers.js';

describe('CSV datasets for multilabel and regression heads', () => {
  const dir = tempDir('edgetune-targets-');
  let daisy: string[];
  let rust: string[];
  beforeAll(() => {
    // the real photos, reached through a link inside the CSV's folder so that rows can be relative
    symlinkSync(shared('datasets', 'tf_flowers-dev', 'train'), path.join(dir, 'flowers'));
    symlinkSync(shared('datasets', 'beans-dev', 'train'), path.join(dir, 'beans'));
    daisy = readdirSync(path.join(dir, 'flowers', 'daisy')).sort().slice(0, 2).map((f) => `flowers/daisy/${f}`);
    rust = readdirSync(path.join(dir, 'beans', 'bean_rust')).sort().slice(0, 2).map((f) => `beans/bean_rust/${f}`);
  });

  it('multilabel: a folder with labels.csv; bad rows and missing files skipped with file:line', async () => {
    writeFileSync(
      path.join(dir, 'labels.csv'),
      [
        'file,labels',
        `${daisy[0]},flower`,
        `${rust[0]},leaf; diseased;leaf`,
        '',
        '# a comment',
        `flowers/daisy/missing.jpg,flower`,
        `${daisy[1]}`,
        `"${rust[1]}",leaf;diseased`,
        `${daisy[1]},flower,extra`,
        `"unclosed,flower`,
        `${daisy[1]},`,
      ].join('\n'),
    );
    const d = await readMultilabelCsv(dir);
    const csv = path.join(dir, 'labels.csv');
    expect(d.csv).toBe(csv);
    expect(d.names).toEqual(['diseased', 'flower', 'leaf']);
    expect(d.items.map((i) => [path.relative(dir, i.file), i.targets])).toEqual([
      [daisy[0], [0, 1, 0]],
      [rust[0], [1, 0, 1]],
      [rust[1], [1, 0, 1]],
      [daisy[1], [0, 0, 0]], // an empty label list: no label applies
    ]);
    expect(d.skipped.map((s) => `${path.basename(s.where)}: ${s.reason}`)).toEqual([
      'labels.csv:6: file not found: flowers/daisy/missing.jpg',
      'labels.csv:7: expected 2 fields (file,value) but found 1',
      'labels.csv:9: expected 2 fields (file,value) but found 3',
      'labels.csv:10: unclosed double quote',
    ]);
    expect(d.skipped[0]!.where).toBe(`${csv}:6`);
    expect(d.skipped[0]!.file).toBe(path.join(dir, 'flowers/daisy/missing.jpg'));
    expect(Array.from(targetMatrix(d.items, 3))).toEqual([0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0]);
  });

  it('regression: header names the outputs; a non-number or a wrong count is skipped', async () => {
    const csv = path.join(dir, 'values.csv');
    writeFileSync(csv, ['file,brightness;greenness', `${daisy[0]},101.5;-3`, `${daisy[1]},abc;2`, `${rust[0]},7`, `${rust[1]}, 88 ; 12.25 `, 'nope.jpg,1;2'].join('\r\n') + '\r\n');
    const d = await readRegressionCsv(csv);
    expect(d.names).toEqual(['brightness', 'greenness']);
    expect(d.items.map((i) => [path.relative(dir, i.file), i.targets])).toEqual([
      [daisy[0], [101.5, -3]],
      [rust[1], [88, 12.25]],
    ]);
    expect(d.skipped.map((s) => `${path.basename(s.where)}: ${s.reason}`)).toEqual([
      'values.csv:3: not a number: "abc"',
      'values.csv:4: expected 2 value(s) (brightness;greenness) but found 1',
      'values.csv:6: file not found: nope.jpg',
    ]);
    // without a header: one output named `value`
    writeFileSync(csv, `${daisy[0]},0.5\n${rust[0]},1.5\n`);
    const one = await readRegressionCsv(csv);
    expect(one.names).toEqual(['value']);
    expect(one.items.map((i) => i.targets)).toEqual([[0.5], [1.5]]);
  });

  it('refuses a missing CSV, a folder without labels.csv, and a CSV with no usable row', async () => {
    await expect(readRegressionCsv(path.join(dir, 'absent.csv'))).rejects.toThrow(`${path.join(dir, 'absent.csv')}: regression CSV not found`);
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    await expect(readMultilabelCsv(empty)).rejects.toThrow(`${empty}: folder has no labels.csv`);
    writeFileSync(path.join(empty, 'labels.csv'), 'file,labels\ngone.jpg,flower\n');
    await expect(readMultilabelCsv(empty)).rejects.toThrow(`${path.join(empty, 'labels.csv')}: no usable multilabel rows; 1 row(s) skipped, first: ${path.join(empty, 'labels.csv')}:2: file not found: gone.jpg`);
  });

  it('splits quoted fields', () => {
    expect(splitCsvLine('"a,b.jpg",x;y')).toEqual(['a,b.jpg', 'x;y']);
    expect(splitCsvLine('"say ""hi"".jpg",1')).toEqual(['say "hi".jpg', '1']);
    expect(splitCsvLine('"open,1')).toBeUndefined();
  });
});
