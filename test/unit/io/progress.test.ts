// Progress lines on a terminal: each stage's clock and ETA start with the stage, not with the command
// (`quantize` makes every stage's bar up front; before, `evaluating 1/153 29.7s eta 4520s` counted the
// calibration's time), and every quantize stage reports its start (0 done) before its first item.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { progress } from '../../../runtime/io/progress.js';
import { quantizeModel, type QuantizeStage } from '../../../calibration/index.js';
import { shared, tempDir } from '../../helpers.js';

/** A terminal stand-in: records what was written; isTTY as a terminal says. */
function terminal(isTTY = true) {
  const out: string[] = [];
  return { out, stderr: Object.assign({ write: (s: string) => out.push(s) > 0 }, { isTTY }) as unknown as NodeJS.WritableStream & { isTTY?: boolean } };
}

describe('progress', () => {
  it("counts a stage's time and ETA from its own first report, not from when the bar was made", () => {
    let ms = 0;
    const t = terminal();
    const bar = progress(t, 'evaluating', () => ms);
    ms = 60_000; // a minute of earlier stages (calibration) before this one begins
    bar.update(0, 153);
    expect(t.out.at(-1)).toBe('\r\x1b[Kevaluating 0/153 0.0s');
    ms += 200; // one image in 0.2 s: 152 left → 30 s
    bar.update(1, 153);
    expect(t.out.at(-1)).toBe('\r\x1b[Kevaluating 1/153 0.2s eta 30s');
    ms += 19_800; // 100 images in 20 s → 53 left at 0.2 s each
    bar.update(100, 153);
    expect(t.out.at(-1)).toBe('\r\x1b[Kevaluating 100/153 20.0s eta 11s');
    ms += 10_600;
    bar.done();
    expect(t.out.at(-1)).toBe('\r\x1b[Kevaluating done in 30.6s\n');
  });

  it('a stage whose first report is already past 0 estimates from the items after it', () => {
    let ms = 5_000;
    const t = terminal();
    const bar = progress(t, 'embedding', () => ms);
    bar.update(3, 10); // no rate yet: no ETA
    expect(t.out.at(-1)).toBe('\r\x1b[Kembedding 3/10 0.0s');
    ms += 1_000; // 2 items in 1 s → 5 left at 0.5 s
    bar.update(5, 10);
    expect(t.out.at(-1)).toBe('\r\x1b[Kembedding 5/10 1.0s eta 3s');
  });

  it('writes nothing when stderr is not a terminal', () => {
    const t = terminal(false);
    const bar = progress(t, 'x');
    bar.update(0, 2);
    bar.update(1, 2);
    bar.done();
    expect(t.out).toEqual([]);
  });

  it('every quantize stage reports its start (0 done) before its first item', async () => {
    const first = new Map<QuantizeStage, number>();
    const calls: [QuantizeStage, number, number][] = [];
    await quantizeModel({
      model: 'squeezenet1.1',
      calib: shared('datasets', 'hymenoptera', 'train'),
      calibCount: 4,
      correctionImages: 2,
      gptqImages: 2,
      sensitivityImages: 2,
      eval: shared('datasets', 'hymenoptera', 'val'),
      evalCount: 3,
      method: 'minmax',
      out: path.join(tempDir(), 'sq.onnx'),
      providers: ['cpu'],
      onProgress: (stage, done, total) => {
        if (!first.has(stage)) first.set(stage, done);
        calls.push([stage, done, total]);
      },
    });
    expect([...first.keys()]).toEqual(['calibrate', 'gptq', 'correct', 'sensitivity', 'evaluate']);
    for (const [stage, done] of first) expect(done, stage).toBe(0);
    // and each stage ends at its total
    for (const stage of first.keys()) {
      const last = calls.filter((c) => c[0] === stage).at(-1)!;
      expect(last[1], stage).toBe(last[2]);
    }
  });
});
