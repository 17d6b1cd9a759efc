// Range collection and calibration maths against hand-computed references: the streaming histogram
// (exact bin merging), percentile, TensorRT's KL threshold search, the MSE search, range rules for
// uint8/int8, and the scale/zero-point/bias arithmetic.
import { describe, expect, it } from 'vitest';
import {
  HALF_BINS,
  RangeCollector,
  computeRange,
  entropyThreshold,
  klCandidate,
  mseThreshold,
  percentileThreshold,
  quantizationMse,
} from '../../../calibration/ranges.js';
import { activationParams, fakeQuant, quantizeBias, quantizeWeights, roundHalfEven } from '../../../calibration/qparams.js';

describe('RangeCollector', () => {
  it('tracks min/max/count and merges bins exactly when the range grows', () => {
    const c = new RangeCollector();
    c.add(Float32Array.from([0.1, 0.2, -0.3, NaN]));
    expect(c.count).toBe(3);
    expect(c.width).toBe(Math.fround(0.3) / HALF_BINS);
    c.add(Float32Array.from([1.5]));
    // 0.3 → 0.6 → 1.2 → 2.4: three doublings
    expect(c.width).toBe((8 * Math.fround(0.3)) / HALF_BINS);
    expect(c.min).toBeCloseTo(-0.3, 6);
    expect(c.max).toBe(1.5);
    expect(c.count).toBe(4);
    const abs = c.absHistogram();
    const w = c.width;
    // each value sits where a histogram built at the final width would put it
    for (const v of [0.1, 0.2, 1.5]) expect(abs[Math.floor(Math.fround(v) / w)]).toBe(1);
    // the first batch's extreme sat in the top bin, which merged down to bin 255 (its value is 256.0 bins)
    expect(abs[255]).toBe(1);
    expect(abs.reduce((a, b) => a + b, 0)).toBe(4);
    // state round-trips
    const back = RangeCollector.fromState(JSON.parse(JSON.stringify(c.state())));
    expect(Array.from(back.absHistogram())).toEqual(Array.from(abs));
    expect([back.min, back.max, back.count, back.width]).toEqual([c.min, c.max, c.count, c.width]);
  });

  it('handles all-zero tensors', () => {
    const c = new RangeCollector();
    c.add(new Float32Array(10));
    expect(c.width).toBe(0);
    expect(computeRange(c, 'entropy')).toEqual({ min: 0, max: 0 });
    expect(activationParams(computeRange(c, 'minmax'), false)).toEqual({ type: 'uint8', scale: 1, zeroPoint: 0 });
    c.add(Float32Array.from([2]));
    expect(c.absHistogram()[0]).toBe(10);
    expect(computeRange(c, 'minmax')).toEqual({ min: 0, max: 2 });
  });
});

describe('thresholds', () => {
  it('percentile: upper edge of the bin where the cumulative count reaches p%', () => {
    const abs = new Float64Array(10).fill(1);
    expect(percentileThreshold(abs, 1, 50)).toBe(5);
    expect(percentileThreshold(abs, 1, 100)).toBe(10);
    expect(percentileThreshold(abs, 0.5, 99.999)).toBe(5);
    expect(percentileThreshold(abs, 1, 31)).toBe(4);
  });

  it('KL candidate matches a hand computation', () => {
    // i = 2, levels 2: P = [2, 2+2+2] / 8, Q = [2, 2] / 4
    const expected = 0.25 * Math.log(0.25 / 0.5) + 0.75 * Math.log(0.75 / 0.5);
    expect(klCandidate([2, 2, 2, 2], 2, 2)).toBeCloseTo(expected, 12);
    // i = 3: P = [2,2,4]/8; buckets [0,1) and [1,3): Q = [2, 2, 2]/6
    const e3 = 2 * 0.25 * Math.log(0.25 / (1 / 3)) + 0.5 * Math.log(0.5 / (1 / 3));
    expect(klCandidate([2, 2, 2, 2], 3, 2)).toBeCloseTo(e3, 12);
    expect(klCandidate([2, 2, 2, 2], 4, 2)).toBeCloseTo(0, 12);
    expect(entropyThreshold([2, 2, 2, 2], 0.5, 2)).toBe(2);
  });

  it('entropy clips a long thin tail, keeps a compact distribution whole', () => {
    // a Laplacian-like head (as activations have) and a long tail of single counts
    const abs = new Float64Array(HALF_BINS);
    for (let i = 0; i < HALF_BINS; i++) abs[i] = Math.round(1e6 * Math.exp(-i / 40)) + 1;
    const t = entropyThreshold(abs, 1, 128);
    expect(t).toBeLessThan(HALF_BINS);
    expect(t).toBeGreaterThanOrEqual(128);
    // brute force over every candidate agrees
    let best = Infinity;
    let bestI = 0;
    for (let i = 128; i <= HALF_BINS; i++) {
      const kl = klCandidate(abs, i, 128);
      if (kl < best - 1e-12) [best, bestI] = [kl, i];
    }
    expect(t).toBe(bestI);
    // a distribution inside 300 bins with no tail: the threshold covers all of it
    const compact = new Float64Array(HALF_BINS);
    for (let i = 0; i < 300; i++) compact[i] = 300 - i;
    expect(entropyThreshold(compact, 1, 128)).toBeGreaterThanOrEqual(290);
  });

  it('mse: hand-computed errors and the clipping choice', () => {
    // one bin centred at 3.5; t = 4 costs (4/127)^2/12 per value
    expect(quantizationMse([0, 0, 0, 10], 1, 4, 127)).toBeCloseTo((4 / 127) ** 2 / 12, 15);
    expect(quantizationMse([0, 0, 0, 10], 1, 3, 127)).toBeCloseTo(0.25, 15);
    expect(mseThreshold([0, 0, 0, 10], 1, 127)).toBe(4);
    // 1e6 values near 0 and one at 99.5, one level: t = 1 costs (1e6/12 + 98.5²)/(1e6+1), t = 100 costs 100²/12
    const abs = new Float64Array(100);
    abs[0] = 1e6;
    abs[99] = 1;
    expect(quantizationMse(abs, 1, 1, 1)).toBeCloseTo((1e6 / 12 + 98.5 ** 2) / (1e6 + 1), 9);
    expect(mseThreshold(abs, 1, 1)).toBe(1);
  });
});

describe('computeRange', () => {
  const c = new RangeCollector();
  c.add(Float32Array.from([-1, 0, 0.5, 3]));
  it('minmax: asymmetric keeps [min,max], symmetric takes max|x|', () => {
    expect(computeRange(c, 'minmax')).toEqual({ min: -1, max: 3 });
    expect(computeRange(c, 'minmax', { symmetric: true })).toEqual({ min: -3, max: 3 });
  });
  it('non-negative tensors keep a 0 lower bound', () => {
    const r = new RangeCollector();
    r.add(Float32Array.from([0.5, 2]));
    expect(computeRange(r, 'minmax')).toEqual({ min: 0, max: 2 });
  });
  it('percentile clips outliers of a uniform set', () => {
    const r = new RangeCollector();
    const data = new Float32Array(100_000);
    for (let i = 0; i < data.length; i++) data[i] = (i % 1000) / 1000;
    data[0] = 50; // one outlier
    r.add(data);
    const got = computeRange(r, 'percentile', { percentile: 99.9 });
    expect(got.min).toBe(0);
    expect(got.max).toBeGreaterThan(0.99);
    expect(got.max).toBeLessThan(1.05);
    expect(computeRange(r, 'minmax').max).toBe(50);
    expect(() => computeRange(r, 'percentile', { percentile: 0 })).toThrow('Expected number in (0, 100] for percentile but received 0');
  });
});

describe('quantization parameters', () => {
  it('round half to even', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2]);
  });
  it('uint8 asymmetric and int8 symmetric activations', () => {
    expect(activationParams({ min: -1, max: 3 }, false)).toEqual({ type: 'uint8', scale: Math.fround(4 / 255), zeroPoint: 64 });
    expect(activationParams({ min: 0, max: 6 }, false)).toEqual({ type: 'uint8', scale: Math.fround(6 / 255), zeroPoint: 0 });
    expect(activationParams({ min: -2, max: 1 }, true)).toEqual({ type: 'int8', scale: Math.fround(2 / 127), zeroPoint: 0 });
    const q = activationParams({ min: 0, max: 6 }, false);
    expect(fakeQuant(-3, q)).toBe(0); // Relu folded into the range
    expect(fakeQuant(7, q)).toBeCloseTo(6, 5); // Relu6 too
  });
  it('per-channel weights with a zero channel and a bias that would overflow int32', () => {
    // 3 output channels × 2 weights
    const w = Float32Array.from([0.5, -1.27, 0, 0, 1e-9, -2e-9]);
    const bias = Float32Array.from([0.1, 0.2, 5]);
    const inScale = 0.01;
    const q = quantizeWeights(w, [3, 2], 0, true, bias, inScale);
    expect(q.scales[0]).toBe(Math.fround(1.27 / 127));
    expect(Array.from(q.data.slice(0, 2))).toEqual([50, -127]);
    expect(Array.from(q.data.slice(2, 4))).toEqual([0, 0]);
    expect(q.adjusted).toEqual([1, 2]);
    const b = quantizeBias(bias, inScale, q.scales);
    for (let c = 0; c < 3; c++) {
      expect(b.scales[c]).toBe(Math.fround(inScale * q.scales[c]!));
      expect(Math.abs(b.data[c]!)).toBeLessThan(2 ** 31 - 1);
      expect(b.data[c]! * b.scales[c]!).toBeCloseTo(bias[c]!, 4);
    }
    const pt = quantizeWeights(w, [3, 2], 0, false);
    expect(pt.scales.length).toBe(1);
    expect(pt.scales[0]).toBe(Math.fround(1.27 / 127));
  });
});
