// Scores from a classifier's logits and the measures of an open-set score (browser-safe): the
// max-softmax and energy baselines, the temperature-scaled softmax and its fit, the expected calibration
// error, AUROC and the threshold helpers (quantile, kept share). runtime/train/openset.ts fits the
// embedding scores (Mahalanobis, kNN) and uses these; scripts/bench-unknown.ts and `eval --unknown`
// report with them.
//
// Sources:
// - Energy: W. Liu, X. Wang, J. Owens, Y. Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020.
// - Max-softmax baseline: D. Hendrycks, K. Gimpel, "A Baseline for Detecting Misclassified and
//   Out-of-Distribution Examples", ICLR 2017.
// - Temperature scaling and the expected calibration error: C. Guo, G. Pleiss, Y. Sun, K. Weinberger,
//   "On Calibration of Modern Neural Networks", ICML 2017.

import { logSumExp } from './metrics.js';

/** Energy scores (Liu et al. 2020) of n×K logits: E = −T·log Σ exp(z/T); higher = less like anything taught. */
export function energyScores(logits: Float32Array, K: number, temperature = 1): Float32Array {
  const n = logits.length / K;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = -temperature * logSumExp(logits, i * K, K, 1 / temperature);
  return out;
}

/** Max-softmax baseline (Hendrycks & Gimpel 2017): 1 − max softmax(z/T); higher = less like anything taught. */
export function maxSoftmaxScores(logits: Float32Array, K: number, temperature = 1): Float32Array {
  const n = logits.length / K;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, logits[i * K + k]!);
    out[i] = 1 - Math.exp(m / temperature - logSumExp(logits, i * K, K, 1 / temperature));
  }
  return out;
}


/** softmax(z/T) of n×K logits. */
export function temperedSoftmax(logits: Float32Array, K: number, temperature = 1): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length / K; i++) {
    const lse = logSumExp(logits, i * K, K, 1 / temperature);
    for (let k = 0; k < K; k++) out[i * K + k] = Math.exp(logits[i * K + k]! / temperature - lse);
  }
  return out;
}

/** Mean negative log-likelihood of the labels under softmax(z/T). */
export function nll(logits: Float32Array, labels: ArrayLike<number>, K: number, temperature = 1): number {
  const n = labels.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += logSumExp(logits, i * K, K, 1 / temperature) - logits[i * K + labels[i]!]! / temperature;
  return n ? s / n : 0;
}

/**
 * Temperature scaling (Guo et al. 2017): the T in [0.05, 20] that minimises the validation NLL of
 * softmax(z/T), by golden-section search on log T (the NLL is convex in 1/T). 1 when there are no rows.
 */
export function fitTemperature(logits: Float32Array, labels: ArrayLike<number>, K: number): number {
  if (!labels.length) return 1;
  let lo = Math.log(0.05);
  let hi = Math.log(20);
  const f = (u: number): number => nll(logits, labels, K, Math.exp(u));
  const g = (Math.sqrt(5) - 1) / 2;
  let c = hi - g * (hi - lo);
  let e = lo + g * (hi - lo);
  let fc = f(c);
  let fe = f(e);
  for (let it = 0; it < 60; it++) {
    if (fc < fe) {
      hi = e;
      e = c;
      fe = fc;
      c = hi - g * (hi - lo);
      fc = f(c);
    } else {
      lo = c;
      c = e;
      fc = fe;
      e = lo + g * (hi - lo);
      fe = f(e);
    }
  }
  return Math.exp((lo + hi) / 2);
}

/** Expected calibration error (Guo et al. 2017) of n×K probabilities: Σ_bins (|bin|/n)·|accuracy − confidence| over `bins` equal-width confidence bins (default 15). */
export function expectedCalibrationError(probs: Float32Array, labels: ArrayLike<number>, K: number, bins = 15): number {
  const n = labels.length;
  if (!n) return 0;
  const conf = new Float64Array(bins);
  const acc = new Float64Array(bins);
  const cnt = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (probs[i * K + k]! > probs[i * K + best]!) best = k;
    const p = probs[i * K + best]!;
    const b = Math.min(bins - 1, Math.floor(p * bins));
    conf[b]! += p;
    acc[b]! += best === labels[i] ? 1 : 0;
    cnt[b]!++;
  }
  let e = 0;
  for (let b = 0; b < bins; b++) if (cnt[b]) e += Math.abs(acc[b]! - conf[b]!) / n;
  return e;
}

/** Area under the ROC curve for telling unknown (positive, higher score) from known rows: P(score_unknown > score_known), ties counting half (Mann–Whitney U). */
export function auroc(known: ArrayLike<number>, unknown: ArrayLike<number>): number {
  if (!known.length || !unknown.length) return NaN;
  const all = [...Array.from(known, (s) => ({ s, u: 0 })), ...Array.from(unknown, (s) => ({ s, u: 1 }))].sort((a, b) => a.s - b.s);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]!.s === all[i]!.s) j++;
    const r = (i + 1 + j) / 2; // mean rank of the tie group, 1-based
    for (let k = i; k < j; k++) if (all[k]!.u) rankSum += r;
    i = j;
  }
  const nu = unknown.length;
  return (rankSum - (nu * (nu + 1)) / 2) / (nu * known.length);
}

/** The q-quantile of scores (linear interpolation; q in [0, 1]). */
export function quantile(scores: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(scores).sort();
  if (!s.length) return NaN;
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo]! + (pos - lo) * (s[hi]! - s[lo]!);
}

/** Share of `scores` at or below `threshold` (kept as known). */
export function keptShare(scores: ArrayLike<number>, threshold: number): number {
  let k = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i]! <= threshold) k++;
  return scores.length ? k / scores.length : 0;
}
