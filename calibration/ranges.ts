// Activation range collection and the four calibration methods (minmax, percentile, entropy, mse).
// Browser-safe, pure maths. A `RangeCollector` streams a tensor's values batch by batch into a
// signed histogram of 2×2048 bins centred on zero whose bin width doubles (pairs of bins merge,
// exactly) whenever a value falls outside the current range, so nothing but the histogram is kept.
// Every method except minmax reduces the folded |x| histogram (2048 bins over [0, R]) to a threshold
// t; the range is then [-t, t] for symmetric int8, or [max(min, -t), min(max, t)] widened to include
// 0 for asymmetric uint8.

import { invalidParameter } from '../runtime/core/errors.js';

export const CALIBRATION_METHODS = ['minmax', 'percentile', 'entropy', 'mse'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

/** Bins on each side of zero (the |x| histogram has this many bins, as TensorRT's does). */
export const HALF_BINS = 2048;

export interface Range {
  min: number;
  max: number;
}

/** A serialisable snapshot of a collector (for the calibration cache). */
export interface HistogramState {
  min: number;
  max: number;
  count: number;
  /** Bin width; 0 while every value seen was 0. */
  width: number;
  /** Sparse counts: [binIndex, count, ...] over the signed histogram (index 0 = most negative). */
  bins: number[];
}

export class RangeCollector {
  min = Infinity;
  max = -Infinity;
  count = 0;
  width = 0;
  /** counts[HALF_BINS + j] covers [j·w, (j+1)·w); counts[HALF_BINS - 1 - j] covers (-(j+1)·w, -j·w]. */
  readonly counts = new Float64Array(2 * HALF_BINS);

  /** Add a batch of values (NaN ignored). */
  add(data: ArrayLike<number>): void {
    let lo = Infinity;
    let hi = -Infinity;
    const n = data.length;
    for (let i = 0; i < n; i++) {
      const v = data[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo === Infinity) return; // empty or all NaN
    if (lo < this.min) this.min = lo;
    if (hi > this.max) this.max = hi;
    const absmax = Math.max(Math.abs(lo), Math.abs(hi));
    if (this.width === 0 && absmax > 0) {
      // First non-zero data fixes the resolution; zeros seen so far sit in bin +0 already.
      this.width = absmax / HALF_BINS;
    }
    while (absmax > this.width * HALF_BINS) this.grow();
    const counts = this.counts;
    if (this.width === 0) {
      for (let i = 0; i < n; i++) if (data[i] === 0) counts[HALF_BINS]!++;
      this.count += n;
      return;
    }
    const inv = 1 / this.width;
    const top = HALF_BINS - 1;
    let added = 0;
    for (let i = 0; i < n; i++) {
      const v = data[i]!;
      if (v >= 0) {
        let j = Math.floor(v * inv);
        if (j > top) j = top;
        counts[HALF_BINS + j]!++;
        added++;
      } else if (v < 0) {
        let j = Math.floor(-v * inv);
        if (j > top) j = top;
        counts[top - j]!++;
        added++;
      }
    }
    this.count += added;
  }

  /** Double the bin width, merging bin pairs towards zero (exact). */
  private grow(): void {
    const c = this.counts;
    for (let j = 0; j < HALF_BINS; j++) {
      const pos = j < HALF_BINS / 2 ? c[HALF_BINS + 2 * j]! + c[HALF_BINS + 2 * j + 1]! : 0;
      const neg = j < HALF_BINS / 2 ? c[HALF_BINS - 1 - 2 * j]! + c[HALF_BINS - 2 - 2 * j]! : 0;
      c[HALF_BINS + j] = pos;
      c[HALF_BINS - 1 - j] = neg;
    }
    this.width *= 2;
  }

  /** The folded histogram of |x|: HALF_BINS bins of `width` starting at 0. */
  absHistogram(): Float64Array {
    const out = new Float64Array(HALF_BINS);
    for (let j = 0; j < HALF_BINS; j++) out[j] = this.counts[HALF_BINS + j]! + this.counts[HALF_BINS - 1 - j]!;
    return out;
  }

  state(): HistogramState {
    const bins: number[] = [];
    this.counts.forEach((v, i) => {
      if (v) bins.push(i, v);
    });
    return { min: this.min, max: this.max, count: this.count, width: this.width, bins };
  }

  static fromState(s: HistogramState): RangeCollector {
    const r = new RangeCollector();
    r.min = s.min;
    r.max = s.max;
    r.count = s.count;
    r.width = s.width;
    for (let i = 0; i + 1 < s.bins.length; i += 2) r.counts[s.bins[i]!] = s.bins[i + 1]!;
    return r;
  }
}

/**
 * Percentile threshold on a |x| histogram: the upper edge of the first bin where the cumulative
 * count reaches `percentile`% of the total.
 */
export function percentileThreshold(abs: ArrayLike<number>, width: number, percentile: number): number {
  let total = 0;
  for (let i = 0; i < abs.length; i++) total += abs[i]!;
  if (total === 0) return 0;
  const target = (total * percentile) / 100;
  let cum = 0;
  for (let i = 0; i < abs.length; i++) {
    cum += abs[i]!;
    if (cum >= target - 1e-9 * total) return (i + 1) * width;
  }
  return abs.length * width;
}

/**
 * KL divergence between the reference distribution P (bins 0..i-1, outliers added to bin i-1) and
 * its quantization Q into `levels` buckets (expanded back over P's non-empty bins). Both are
 * normalised here. Returns Infinity when P is empty.
 */
export function klCandidate(abs: ArrayLike<number>, i: number, levels: number): number {
  const p = new Float64Array(i);
  let outliers = 0;
  for (let k = 0; k < abs.length; k++) {
    if (k < i) p[k] = abs[k]!;
    else outliers += abs[k]!;
  }
  p[i - 1]! += outliers;
  const q = new Float64Array(i);
  const merged = Math.floor(i / levels);
  for (let j = 0; j < levels; j++) {
    const start = j * merged;
    const stop = j === levels - 1 ? i : start + merged;
    let sum = 0;
    let nonzero = 0;
    for (let k = start; k < stop; k++) {
      sum += abs[k]!; // the quantized distribution is built from the clipped histogram, without outliers
      if (p[k]! > 0) nonzero++;
    }
    if (nonzero === 0) continue;
    const share = sum / nonzero;
    for (let k = start; k < stop; k++) if (p[k]! > 0) q[k] = share;
  }
  let sp = 0;
  let sq = 0;
  for (let k = 0; k < i; k++) {
    sp += p[k]!;
    sq += q[k]!;
  }
  if (sp === 0) return Infinity;
  let kl = 0;
  for (let k = 0; k < i; k++) {
    const pk = p[k]! / sp;
    if (pk === 0) continue;
    // Q is 0 where P is not when a bucket's only counts are outliers: smoothed to 1e-4 of a count
    // (as MXNet's reference implementation does), a large but finite penalty.
    const qk = (q[k]! > 0 ? q[k]! : 1e-4) / sq;
    kl += pk * Math.log(pk / qk);
  }
  return kl;
}

/**
 * TensorRT's entropy calibration: the number of bins i ∈ [levels, bins] minimising KL(P‖Q), as a
 * threshold i·width. Ties keep the smallest i.
 */
export function entropyThreshold(abs: ArrayLike<number>, width: number, levels = 128): number {
  const n = abs.length;
  let last = 0;
  for (let k = 0; k < n; k++) if (abs[k]! > 0) last = k;
  if (last === 0 && !(abs[0]! > 0)) return 0;
  if (n <= levels) return (last + 1) * width;
  let best = Infinity;
  let bestI = n;
  // Past the last non-empty bin every candidate is the same distribution with empty tail bins.
  const stopI = Math.max(levels, Math.min(n, last + 1));
  for (let i = levels; i <= stopI; i++) {
    const kl = klCandidate(abs, i, levels);
    if (kl < best - 1e-12) {
      best = kl;
      bestI = i;
    }
  }
  return bestI * width;
}

/**
 * Expected squared quantization error (per value) of a |x| histogram for threshold t and `levels`
 * steps over [0, t]: in-range values cost step²/12 (uniform rounding error), clipped ones
 * (centre − t)² (bin centres stand for their values).
 */
export function quantizationMse(abs: ArrayLike<number>, width: number, t: number, levels: number): number {
  const step = t / levels;
  const inRange = (step * step) / 12;
  let err = 0;
  let total = 0;
  for (let k = 0; k < abs.length; k++) {
    const c = abs[k]!;
    if (!c) continue;
    const centre = (k + 0.5) * width;
    err += centre > t ? c * (centre - t) * (centre - t) : c * inRange;
    total += c;
  }
  return total ? err / total : 0;
}

/** The threshold (a bin edge) minimising quantizationMse. Ties keep the smallest. */
export function mseThreshold(abs: ArrayLike<number>, width: number, levels = 127): number {
  let last = -1;
  for (let k = 0; k < abs.length; k++) if (abs[k]! > 0) last = k;
  if (last < 0) return 0;
  let best = Infinity;
  let bestT = (last + 1) * width;
  for (let i = 1; i <= last + 1; i++) {
    const t = i * width;
    const e = quantizationMse(abs, width, t, levels);
    if (e < best * (1 - 1e-12)) {
      best = e;
      bestT = t;
    }
  }
  return bestT;
}

export interface RangeOptions {
  /** Symmetric int8 (range [-t, t]); otherwise asymmetric uint8 (range includes 0). */
  symmetric?: boolean;
  /** Percentile for `percentile`, in (0, 100]. Default 99.999. */
  percentile?: number;
}

export const DEFAULT_PERCENTILE = 99.999;

/** Reduce a collector to a quantization range with one of the methods. */
export function computeRange(c: RangeCollector, method: CalibrationMethod, opts: RangeOptions = {}): Range {
  if (c.min === Infinity) return { min: 0, max: 0 };
  const absmax = Math.max(Math.abs(c.min), Math.abs(c.max));
  const nonNegative = c.min >= 0;
  let t: number;
  if (method === 'minmax') {
    t = absmax;
  } else {
    const abs = c.absHistogram();
    if (method === 'percentile') {
      const p = opts.percentile ?? DEFAULT_PERCENTILE;
      if (!(p > 0 && p <= 100)) throw invalidParameter('percentile', 'number in (0, 100]', p);
      t = percentileThreshold(abs, c.width, p);
    } else if (method === 'entropy') {
      // The zero bin of a post-ReLU tensor dwarfs everything else and would steer the search
      // towards tiny thresholds: it gets its neighbour's count (as NVIDIA's pytorch-quantization does).
      abs[0] = abs[1]!;
      t = entropyThreshold(abs, c.width, !opts.symmetric && nonNegative ? 256 : 128);
    } else if (method === 'mse') {
      t = mseThreshold(abs, c.width, opts.symmetric ? 127 : nonNegative ? 255 : 127.5);
    } else {
      throw invalidParameter('method', 'one of minmax, percentile, entropy, mse', method);
    }
    t = Math.min(t, absmax);
  }
  if (opts.symmetric) return { min: -t, max: t };
  return { min: Math.min(0, Math.max(c.min, -t)), max: Math.max(0, Math.min(c.max, t)) };
}

/** Streaming per-channel means of a tensor (for bias correction): channel axis 1 of NCHW, or the last axis of 2-D. */
export class ChannelMeans {
  sums: Float64Array = new Float64Array(0);
  count = 0;

  add(data: ArrayLike<number>, dims: readonly number[]): void {
    const axis = 1; // NCHW channels, or the features of a 2-D [N, K] Gemm input
    const channels = dims[axis] ?? 1;
    let inner = 1;
    for (let d = axis + 1; d < dims.length; d++) inner *= dims[d]!;
    if (this.sums.length === 0) this.sums = new Float64Array(channels);
    if (this.sums.length !== channels) return;
    const outer = data.length / (channels * inner);
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        let s = 0;
        const base = (o * channels + c) * inner;
        for (let i = 0; i < inner; i++) s += data[base + i]!;
        this.sums[c]! += s;
      }
    }
    this.count += outer * inner;
  }

  means(): Float64Array {
    return this.sums.map((s) => (this.count ? s / this.count : 0));
  }
}
