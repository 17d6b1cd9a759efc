// Small statistics: the Wilson score interval the kiosk page shows beside a validation accuracy, so
// "100%" on 9 images reads as what it is.

import { describe, expect, it } from 'vitest';
import { accuracyText, median, wilsonInterval } from '../../../runtime/core/stats.js';

describe('wilsonInterval', () => {
  it("matches Wilson's formula at the edges and in the middle (reference values computed independently in Python)", () => {
    // 9 of 9 (the page's 15-photos-per-class teach with 3 held out per class): 0.7008–1
    const [lo9, hi9] = wilsonInterval(9, 9);
    expect(lo9).toBeCloseTo(0.700847, 6);
    expect(hi9).toBe(1);
    const [lo0, hi0] = wilsonInterval(0, 10);
    expect(lo0).toBe(0);
    expect(hi0).toBeCloseTo(0.277540, 6);
    const [lo, hi] = wilsonInterval(50, 100);
    expect(lo).toBeCloseTo(0.403830, 6);
    expect(hi).toBeCloseTo(0.596170, 6);
    // hymenoptera/val's 153 images at 0.961 (147 right): 0.917–0.982
    const [l, h] = wilsonInterval(147, 153);
    expect([l, h].map((v) => Math.round(v * 1000))).toEqual([917, 982]);
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
  });

  it('the page text says how many images and what they allow', () => {
    expect(accuracyText(9, 9)).toBe('100.0% of 9 (95% interval 70–100%)');
    expect(accuracyText(147, 153)).toBe('96.1% of 153 (95% interval 92–98%)');
  });

  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
