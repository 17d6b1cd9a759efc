// Per-frame statistics for streams, browser-safe: smoothed probabilities with a thresholded,
// hysteretic label (LabelSmoother), latency percentiles over a window (LatencyWindow) and rates
// (RateMeter). Used by the Node pipeline (pipeline.ts) and usable in a page.

import { invalidParameter } from '../core/errors.js';

export interface LatencySummary {
  p50: number;
  p95: number;
  mean: number;
  n: number;
}

/** Fixed-size sample window for percentiles. */
export class LatencyWindow {
  private readonly buf: Float64Array;
  private n = 0;
  private sum = 0;
  private count = 0;
  constructor(size = 512) {
    this.buf = new Float64Array(size);
  }
  add(v: number): void {
    this.buf[this.n++ % this.buf.length] = v;
    this.sum += v;
    this.count++;
  }
  summary(): LatencySummary {
    const k = Math.min(this.n, this.buf.length);
    if (k === 0) return { p50: 0, p95: 0, mean: 0, n: 0 };
    const s = this.buf.slice(0, k).sort();
    const q = (p: number) => s[Math.min(k - 1, Math.max(0, Math.ceil(p * k) - 1))]!;
    const r = (v: number) => Math.round(v * 100) / 100;
    return { p50: r(q(0.5)), p95: r(q(0.95)), mean: r(this.sum / this.count), n: this.count };
  }
}

/** Events per second over a sliding window. */
export class RateMeter {
  private readonly times: number[] = [];
  constructor(private readonly windowMs = 3000) {}
  tick(t = performance.now()): void {
    this.times.push(t);
    while (this.times.length && this.times[0]! < t - this.windowMs) this.times.shift();
  }
  rate(t = performance.now()): number {
    while (this.times.length && this.times[0]! < t - this.windowMs) this.times.shift();
    if (this.times.length < 2) return 0;
    const span = Math.max(t - this.times[0]!, 1);
    return Math.round((this.times.length / span) * 1000 * 10) / 10;
  }
}

/** EMA over probabilities plus a thresholded label with hysteresis. */
export class LabelSmoother {
  private ema?: Float32Array;
  private current = -1;
  constructor(
    private readonly alpha: number,
    private readonly threshold: number,
    private readonly hysteresis: number,
  ) {
    if (!(alpha >= 0 && alpha < 1)) throw invalidParameter('smoothing', 'number in [0, 1)', alpha);
    if (!(threshold >= 0 && threshold <= 1)) throw invalidParameter('threshold', 'number between 0 and 1', threshold);
    if (!(hysteresis >= 0 && hysteresis <= threshold)) throw invalidParameter('hysteresis', `number between 0 and ${threshold}`, hysteresis);
  }
  /** The EMA weight of the history it was made with (0 = no smoothing). */
  get weight(): number {
    return this.alpha;
  }
  reset(): void {
    this.ema = undefined;
    this.current = -1;
  }
  /**
   * Feed one probability row; returns the smoothed row, the stable class index (-1 = unknown) and
   * the smoothed argmax (`best`, computed once here for the caller's display).
   */
  update(p: Float32Array): { smoothed: Float32Array; index: number; best: number } {
    if (!this.ema || this.ema.length !== p.length) {
      this.ema = Float32Array.from(p);
      this.current = -1;
    } else {
      const a = this.alpha;
      for (let i = 0; i < p.length; i++) this.ema[i] = a * this.ema[i]! + (1 - a) * p[i]!;
    }
    const s = this.ema;
    let best = 0;
    for (let i = 1; i < s.length; i++) if (s[i]! > s[best]!) best = i;
    if (this.current >= 0 && s[this.current]! >= this.threshold - this.hysteresis) {
      // Hold the current label unless another class is now confidently above it.
      if (best !== this.current && s[best]! >= this.threshold && s[best]! > s[this.current]!) this.current = best;
    } else {
      this.current = s[best]! >= this.threshold ? best : -1;
    }
    return { smoothed: s, index: this.current, best };
  }
}
