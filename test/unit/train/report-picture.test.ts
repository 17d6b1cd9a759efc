// The fine-tune report picture: the legend sits above the plotting area (never on the curves), and with
// phase 2 each phase's epochs and best epoch are labelled in that phase's own numbers, the ones the
// command's summary prints ("phase 2: … best epoch 3/10").

import { describe, expect, it } from 'vitest';
import { reportSvg, type ReportFigure } from '../../../runtime/train/node/report.js';
import type { EpochStats } from '../../../runtime/train/types.js';

/** Epochs whose curves touch the top of the plot (accuracy 1.0, loss at its maximum) at the start and end: where a legend inside the plot would sit on them. */
function epochs(n: number, from = 0): EpochStats[] {
  return Array.from({ length: n }, (_, i) => ({ epoch: i + 1, lr: 0.001, trainLoss: 2 - (1.5 * (from + i)) / 20, trainAccuracy: 1, valLoss: 2 - (1.4 * (from + i)) / 20, valAccuracy: i % 2 ? 1 : 0.9, ms: 10 }));
}

const figure = (o: Partial<ReportFigure> = {}): ReportFigure => ({ title: 't', history: epochs(12), bestEpoch: 8, labels: ['a', 'b'], confusion: [[5, 0], [1, 4]], notes: ['one note'], ...o });

/** y of every legend swatch (a 10×3 rect) and every curve point, per chart (charts told apart by their x range). */
function geometry(svg: string) {
  const legend = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="10" height="3"/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]) }));
  const points = [...svg.matchAll(/<polyline [^>]*points="([^"]+)"/g)].flatMap((m) => m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]));
  return { legend, points };
}

describe('report picture', () => {
  it('puts the legend above the plotting area: every swatch is higher than every curve point of its chart', () => {
    const { legend, points } = geometry(reportSvg(figure()));
    expect(legend).toHaveLength(4); // train + validation, in the loss and the accuracy charts
    for (const chartX of [20, 510]) {
      const swatches = legend.filter((l) => l.x > chartX && l.x < chartX + 470);
      const curve = points.filter(([x]) => x > chartX && x < chartX + 470);
      expect(swatches).toHaveLength(2);
      expect(curve.length).toBeGreaterThan(0);
      // the swatch's 3 px and its label's 10 px text end above the highest point (smaller y is higher)
      expect(Math.max(...swatches.map((s) => s.y + 5))).toBeLessThan(Math.min(...curve.map(([, y]) => y)));
    }
  });

  it("labels each phase's epochs and best epoch in its own numbers (the summary's), at the right place on the shared axis", () => {
    const history = [...epochs(12), ...epochs(10, 12)];
    const svg = reportSvg(figure({ history, bestEpoch: 15, phases: [{ name: 'phase 1', epochs: 12, best: 8 }, { name: 'phase 2', epochs: 10, best: 3 }] }));
    expect(svg).toContain('>epoch (phase 1 1–12, phase 2 1–10)</text>');
    expect(svg).toContain('>phase 1 best 8</text>');
    expect(svg).toContain('>phase 2 best 3</text>');
    expect(svg).not.toContain('best 15');
    // phase 2's best epoch 3 is the 15th point of the 22 (x of point i: 60 + 420·i/21 in the loss chart)
    const x = (i: number) => 20 + 40 + (420 * i) / 21;
    expect(svg).toContain(`<line x1="${x(14)}" x2="${x(14)}"`);
    expect(svg).toContain(`<line x1="${x(7)}" x2="${x(7)}"`); // phase 1's best, epoch 8
  });

  it('one phase keeps the plain numbering', () => {
    const svg = reportSvg(figure());
    expect(svg).toContain('>epoch (1–12)</text>');
    expect(svg).toContain('>best 8</text>');
  });
});
