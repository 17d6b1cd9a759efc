// The report picture scales with the classes: past MATRIX_MAX_CLASSES the k² confusion matrix (over
// librsvg's limit of 1 000 000 XML elements at 1000 classes: "glib: cannot load more than 1000000 XML
// elements") is replaced by the top confusions, so a 1000-class report renders.

import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { MATRIX_MAX_CLASSES, reportPng, reportSvg, topConfusions, type ReportFigure } from '../../../runtime/train/node/report.js';

/** A synthetic report: k classes, each with 3 right and one confusion with the next class (class 0 twice). */
function figure(k: number): ReportFigure {
  const labels = Array.from({ length: k }, (_, i) => `class_${i}`);
  const confusion = labels.map((_, r) => labels.map((__, c) => (r === c ? 3 : c === (r + 1) % k ? (r === 0 ? 2 : 1) : 0)));
  const history = Array.from({ length: 5 }, (_, e) => ({ epoch: e + 1, lr: 0.001, trainLoss: 1 / (e + 1), trainAccuracy: 0.5 + e / 10, valLoss: 1.2 / (e + 1), valAccuracy: 0.4 + e / 10, ms: 1 }));
  return { title: `${k} classes`, history, bestEpoch: 5, labels, confusion, notes: ['synthetic'] };
}

const elements = (svg: string) => (svg.match(/<[a-z]/g) ?? []).length;

describe('report picture', () => {
  it('draws the matrix up to MATRIX_MAX_CLASSES classes', () => {
    const svg = reportSvg(figure(MATRIX_MAX_CLASSES));
    expect(svg).toContain('confusion (rows: true, columns: predicted)');
    expect(elements(svg)).toBeGreaterThan(MATRIX_MAX_CLASSES ** 2);
  });

  it('1000 classes: top confusions instead of the matrix, a bounded SVG, and a PNG', async () => {
    const f = figure(1000);
    const svg = reportSvg(f);
    expect(svg).not.toContain('confusion (rows: true');
    expect(svg).toContain('top 20 confusions of 1000 classes');
    expect(svg).toContain('class_0 → class_1: 2 (40%)');
    // the 1000-class matrix alone would be 2 000 000+ elements; the list keeps the picture at the 50-class size
    expect(elements(svg)).toBeLessThan(elements(reportSvg(figure(MATRIX_MAX_CLASSES))));
    const png = await reportPng(f);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1000, 700]);
  });

  it('topConfusions: largest off-diagonal cells first with their share of the true class', () => {
    const t = topConfusions(['a', 'b', 'c'], [[5, 3, 0], [1, 8, 1], [0, 4, 2]]);
    expect(t).toEqual([
      { true: 'c', predicted: 'b', count: 4, share: 4 / 6 },
      { true: 'a', predicted: 'b', count: 3, share: 3 / 8 },
      { true: 'b', predicted: 'a', count: 1, share: 0.1 },
      { true: 'b', predicted: 'c', count: 1, share: 0.1 },
    ]);
  });
});
