// Open-set recognition for a trained classifier head (browser-safe): a score from the embedding that
// says how unlike every taught class an input is (higher = less like anything taught), fitted on the
// training embeddings, with a threshold chosen on validation for a documented target share of known
// images kept, plus a softmax temperature fitted on validation so the class probabilities mean what
// they say. The baselines it was measured against (scripts/bench-unknown.ts) are here too.
//
// Sources:
// - Mahalanobis: K. Lee, K. Lee, H. Lee, J. Shin, "A Simple Unified Framework for Detecting
//   Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018 — class means and one shared
//   covariance; the score is the distance to the nearest class mean.
// - Shrinkage covariance: O. Ledoit, M. Wolf, "A well-conditioned estimator for large-dimensional
//   covariance matrices", J. Multivariate Analysis 2004 (needed: 1280 dims from ~100 images).
// - kNN: Y. Sun, Y. Ming, X. Zhu, Y. Li, "Out-of-Distribution Detection with Deep Nearest Neighbors",
//   ICML 2022 — distance to the k-th nearest L2-normalised training embedding.
// - Energy: W. Liu, X. Wang, J. Owens, Y. Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020.
// - Max-softmax baseline: D. Hendrycks, K. Gimpel, "A Baseline for Detecting Misclassified and
//   Out-of-Distribution Examples", ICLR 2017.
// - Temperature scaling and the expected calibration error: C. Guo, G. Pleiss, Y. Sun, K. Weinberger,
//   "On Calibration of Modern Neural Networks", ICML 2017.

import { EdgetuneError } from '../core/errors.js';
import type { FeatureSet, HeadWeights } from './types.js';
import { headLogits } from './index.js';

/** Open-set scores this module computes. `mahalanobis` is what finetune fits (chosen by measurement: README "Unknown inputs"). */
export type OpenSetMethod = 'mahalanobis' | 'knn' | 'energy' | 'max-softmax';

/** Share of known validation images a fitted threshold keeps by default (the rest are called unknown). */
export const DEFAULT_KEEP_TARGET = 0.95;

/**
 * A fitted Mahalanobis open-set detector (Lee et al. 2018 with a Ledoit–Wolf shared covariance).
 * For an embedding x (L2-normalised first when `normalize`), v_c = x − means_c and
 *   d²_c(x) = scale · (‖v_c‖² − ‖basis · v_c‖²)
 * is the squared Mahalanobis distance under Σ = a·I + b·XᵀX (the Woodbury form of Σ⁻¹: scale = 1/a,
 * basis = L⁻¹X with L Lᵀ = (a/b)·I + X Xᵀ, X the class-centred training embeddings), so no d×d matrix
 * is stored. The raw score is min_c d²_c / dims (per-dimension units); `unknownScore` = raw / threshold,
 * so the model's own threshold is 1 in those units.
 */
export interface MahalanobisDetector {
  method: 'mahalanobis';
  /** Embedding length d. */
  dims: number;
  classes: number;
  /** L2-normalise embeddings before the distance. */
  normalize: boolean;
  /** classes×dims, row-major. */
  means: Float32Array;
  /** rank×dims, row-major. */
  basis: Float32Array;
  rank: number;
  /** 1/a (see above). */
  scale: number;
  /** Ledoit–Wolf shrinkage intensity in [0, 1] toward a scaled identity. */
  shrinkage: number;
  /** Raw score (min_c d²_c / dims) at which the target share of known validation images is kept. */
  threshold: number;
}

/** What a classifier carries about unknown inputs (model card `openSet`, graph output `unknown_score`). */
export interface OpenSetCalibration {
  method: 'mahalanobis';
  /** Threshold on unknownScore (1: the raw threshold is folded into the graph output); above it = unknown. */
  threshold: number;
  /** Softmax temperature fitted on validation (probabilities = softmax(logits / temperature)); 1 = none. */
  temperature: number;
  /** Share of known validation images the threshold was chosen to keep. */
  target: number;
  /** What the threshold kept on validation (or on training when there was no validation set: `fittedOn`). */
  kept: number;
  fittedOn: 'validation' | 'training';
  /** Validation expected calibration error before / after the temperature (Guo et al. 2017, 15 bins). */
  ece?: { before: number; after: number };
}

export interface FitOpenSetOptions {
  /** Share of known validation images to keep (0.5–1, default DEFAULT_KEEP_TARGET = 0.95). */
  target?: number;
  /** L2-normalise embeddings first (default true: measured better, README "Unknown inputs"). */
  normalize?: boolean;
}

function check(name: string, s: FeatureSet): number {
  const n = s.labels.length;
  if (!(s.dims > 0) || s.features.length !== n * s.dims) throw new EdgetuneError('EINPUT', `${name}: ${s.features.length} features for ${n} labels of ${s.dims} dims`);
  return n;
}

function rowsOf(f: Float32Array, n: number, d: number, normalize: boolean): Float64Array {
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += f[i * d + j]! ** 2;
    const inv = normalize ? 1 / Math.max(Math.sqrt(s), 1e-12) : 1;
    for (let j = 0; j < d; j++) x[i * d + j] = f[i * d + j]! * inv;
  }
  return x;
}

/** In-place Cholesky of an n×n symmetric positive-definite matrix (lower triangle L, A = L Lᵀ). */
function cholesky(a: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j]!;
    for (let k = 0; k < j; k++) s -= a[j * n + k]! ** 2;
    if (!(s > 0)) throw new EdgetuneError('EINPUT', 'open-set fit: covariance is not positive definite (duplicate or constant embeddings?)');
    const l = Math.sqrt(s);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j]!;
      for (let k = 0; k < j; k++) t -= a[i * n + k]! * a[j * n + k]!;
      a[i * n + j] = t / l;
    }
    for (let k = j + 1; k < n; k++) a[j * n + k] = 0;
  }
}

/**
 * Fit the Mahalanobis detector on training embeddings (class means, Ledoit–Wolf shared covariance)
 * and, when `val` has rows, its threshold on them (the `target` quantile of their scores); without
 * validation rows the threshold comes from the training rows (in-sample: it keeps fewer unseen known
 * images than the target). Errors: EINPUT for mismatched shapes, a class without training rows, or
 * fewer than two training rows.
 */
export function fitMahalanobis(train: FeatureSet, val?: FeatureSet, opts: FitOpenSetOptions = {}): MahalanobisDetector {
  const n = check('train', train);
  const d = train.dims;
  const K = train.classes;
  const target = opts.target ?? DEFAULT_KEEP_TARGET;
  if (!(target >= 0.5 && target <= 1)) throw new EdgetuneError('EARG', `open-set target must be between 0.5 and 1 (share of known images kept), got ${target}`);
  if (n < 2) throw new EdgetuneError('EINPUT', 'open-set fit needs at least two training embeddings');
  const normalize = opts.normalize ?? true;
  const x = rowsOf(train.features, n, d, normalize);
  const means = new Float64Array(K * d);
  const counts = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    const y = train.labels[i]!;
    counts[y]!++;
    for (let j = 0; j < d; j++) means[y * d + j]! += x[i * d + j]!;
  }
  for (let c = 0; c < K; c++) {
    if (!counts[c]) throw new EdgetuneError('EINPUT', `open-set fit: class ${c} has no training embeddings`);
    for (let j = 0; j < d; j++) means[c * d + j]! /= counts[c]!;
  }
  // centred rows X (n×d); S = XᵀX/n is the pooled within-class covariance
  for (let i = 0; i < n; i++) {
    const y = train.labels[i]!;
    for (let j = 0; j < d; j++) x[i * d + j]! -= means[y * d + j]!;
  }
  // Gram matrix G = X Xᵀ (n×n): everything Ledoit–Wolf needs is in it
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k <= i; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x[i * d + j]! * x[k * d + j]!;
      g[i * n + k] = s;
      g[k * n + i] = s;
    }
  let tr = 0;
  let fro2 = 0; // ‖S‖²_F = ‖G‖²_F / n²
  let sumNorm4 = 0;
  for (let i = 0; i < n; i++) {
    tr += g[i * n + i]!;
    sumNorm4 += g[i * n + i]! ** 2;
    for (let k = 0; k < n; k++) fro2 += g[i * n + k]! ** 2;
  }
  tr /= n;
  fro2 /= n * n;
  const mu = tr / d;
  const delta2 = Math.max(fro2 - 2 * mu * tr + mu * mu * d, 0) / d; // ‖S − μI‖²_F / d
  const beta2bar = Math.max(sumNorm4 - n * fro2, 0) / (n * n) / d; // (1/n²) Σ‖x xᵀ − S‖²_F / d
  const shrinkage = delta2 > 0 ? Math.min(beta2bar, delta2) / delta2 : 1;
  // Σ = a·I + b·XᵀX with a = shrinkage·μ, b = (1 − shrinkage)/n
  const a = Math.max(shrinkage * mu, 1e-12 * Math.max(mu, 1e-12));
  const b = (1 - shrinkage) / n;
  let basis: Float64Array;
  let rank = 0;
  if (b > 0) {
    // Σ⁻¹ = (1/a)(I − Xᵀ M⁻¹ X), M = (a/b)·I + X Xᵀ = L Lᵀ; basis = L⁻¹ X
    const m = Float64Array.from(g);
    for (let i = 0; i < n; i++) m[i * n + i]! += a / b;
    cholesky(m, n);
    basis = new Float64Array(n * d);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < d; j++) {
        let t = x[i * d + j]!;
        for (let k = 0; k < i; k++) t -= m[i * n + k]! * basis[k * d + j]!;
        basis[i * d + j] = t / m[i * n + i]!;
      }
    rank = n;
  } else basis = new Float64Array(0);
  const det: MahalanobisDetector = {
    method: 'mahalanobis',
    dims: d,
    classes: K,
    normalize,
    means: Float32Array.from(means),
    basis: Float32Array.from(basis),
    rank,
    scale: 1 / a,
    shrinkage,
    threshold: 0,
  };
  const ref = val && val.labels.length ? val : train;
  det.threshold = quantile(mahalanobisScores(det, ref.features), target);
  return det;
}

/** Raw Mahalanobis scores (min over classes of d²_c / dims; higher = less like anything taught) of n rows of embeddings; `nearest` gets each row's nearest class when given. */
export function mahalanobisScores(det: MahalanobisDetector, features: Float32Array, nearest?: Int32Array): Float32Array {
  const { dims: d, classes: K, rank: r } = det;
  const n = features.length / d;
  if (!Number.isInteger(n)) throw new EdgetuneError('EINPUT', `open-set scores: ${features.length} values are not rows of ${d}`);
  const x = rowsOf(features, n, d, det.normalize);
  const out = new Float32Array(n);
  const v = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let arg = 0;
    for (let c = 0; c < K; c++) {
      let q = 0;
      for (let j = 0; j < d; j++) {
        v[j] = x[i * d + j]! - det.means[c * d + j]!;
        q += v[j]! * v[j]!;
      }
      for (let k = 0; k < r; k++) {
        let p = 0;
        for (let j = 0; j < d; j++) p += det.basis[k * d + j]! * v[j]!;
        q -= p * p;
      }
      if (q < best) {
        best = q;
        arg = c;
      }
    }
    out[i] = (det.scale * best) / d;
    if (nearest) nearest[i] = arg;
  }
  return out;
}

/** kNN scores (Sun et al. 2022): Euclidean distance of each L2-normalised row to its k-th nearest L2-normalised training row (k default 5, at most the training rows). */
export function knnScores(train: FeatureSet, features: Float32Array, k = 5): Float32Array {
  const d = train.dims;
  const nt = check('train', train);
  const n = features.length / d;
  const t = rowsOf(train.features, nt, d, true);
  const x = rowsOf(features, n, d, true);
  const kk = Math.max(1, Math.min(k, nt));
  const out = new Float32Array(n);
  const sims = new Float64Array(nt);
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < nt; m++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x[i * d + j]! * t[m * d + j]!;
      sims[m] = s;
    }
    const sorted = Float64Array.from(sims).sort().reverse();
    out[i] = Math.sqrt(Math.max(0, 2 - 2 * sorted[kk - 1]!));
  }
  return out;
}

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

function logSumExp(z: Float32Array, off: number, K: number, s: number): number {
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, z[off + k]! * s);
  let t = 0;
  for (let k = 0; k < K; k++) t += Math.exp(z[off + k]! * s - m);
  return m + Math.log(t);
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

/**
 * Everything a classifier carries about unknown inputs, fitted in one call (what finetune, the page's
 * teach path and a kiosk's retraining use): the Mahalanobis detector on `train` with its threshold on
 * `val`, and the softmax temperature on the validation logits `valLogits` (n_val×classes; absent or
 * no validation rows: temperature 1). Errors as fitMahalanobis.
 */
export function fitOpenSet(train: FeatureSet, val: FeatureSet | undefined, valLogits: Float32Array | undefined, opts: FitOpenSetOptions = {}): { detector: MahalanobisDetector; calibration: OpenSetCalibration } {
  const hasVal = !!val && val.labels.length > 0;
  const detector = fitMahalanobis(train, hasVal ? val : undefined, opts);
  const target = opts.target ?? DEFAULT_KEEP_TARGET;
  const ref = hasVal ? val! : train;
  const kept = keptShare(mahalanobisScores(detector, ref.features), detector.threshold);
  let temperature = 1;
  let ece: OpenSetCalibration['ece'];
  if (hasVal && valLogits && valLogits.length === val!.labels.length * train.classes) {
    temperature = fitTemperature(valLogits, val!.labels, train.classes);
    ece = {
      before: expectedCalibrationError(temperedSoftmax(valLogits, train.classes, 1), val!.labels, train.classes),
      after: expectedCalibrationError(temperedSoftmax(valLogits, train.classes, temperature), val!.labels, train.classes),
    };
  }
  return {
    detector,
    calibration: { method: 'mahalanobis', threshold: 1, temperature, target, kept, fittedOn: hasVal ? 'validation' : 'training', ...(ece ? { ece } : {}) },
  };
}

/**
 * The open-set calibration a classifier head carries when exported (undefined for multilabel and
 * regression heads): fitOpenSet on the head's training rows (every view) and validation rows, the
 * temperature from the head's validation logits. What `finetune`, the page's export and phase 2 call.
 */
export function openSetForHead(head: HeadWeights, train: FeatureSet, val: FeatureSet | undefined, opts: FitOpenSetOptions = {}): ReturnType<typeof fitOpenSet> | undefined {
  if ((head.task ?? 'classification') !== 'classification') return undefined;
  return fitOpenSet(train, val, val && val.labels.length ? headLogits(head, val.features) : undefined, opts);
}

/** What `eval --unknown` reports (runtime/cli/commands/eval.ts). */
export interface OpenSetEvaluation {
  /** Which score ranked the images: the model's unknown score, or 1 − max softmax for a model without a calibration. */
  score: 'unknown_score' | 'max-softmax';
  /** AUROC of the score for telling the unknown images from the known ones (0.5 = chance, 1 = perfect). */
  auroc: number;
  /** Threshold in use (undefined: none, so nothing is rejected and no shares are given). */
  threshold?: number;
  /** Share of known images kept (score ≤ threshold). */
  knownKept?: number;
  /** Share of unknown images rejected (score > threshold). */
  unknownRejected?: number;
  /** Accuracy on the kept known images (all known images without a threshold). */
  keptAccuracy: number;
  /** Expected calibration error of the known images' probabilities (15 bins, Guo et al. 2017). */
  ece: number;
  known: number;
  unknown: number;
}

/**
 * Open-set metrics of a classifier on known images (their scores, probabilities n×K over the dataset's
 * classes, true labels) and unknown images (their scores), at `threshold` when there is one.
 */
export function evaluateOpenSet(o: {
  score: OpenSetEvaluation['score'];
  knownScores: ArrayLike<number>;
  unknownScores: ArrayLike<number>;
  knownProbs: Float32Array;
  knownLabels: ArrayLike<number>;
  classes: number;
  threshold?: number;
}): OpenSetEvaluation {
  const n = o.knownLabels.length;
  const K = o.classes;
  let kept = 0;
  let keptRight = 0;
  for (let i = 0; i < n; i++) {
    if (o.threshold !== undefined && !(o.knownScores[i]! <= o.threshold)) continue;
    kept++;
    let best = 0;
    for (let k = 1; k < K; k++) if (o.knownProbs[i * K + k]! > o.knownProbs[i * K + best]!) best = k;
    if (best === o.knownLabels[i]) keptRight++;
  }
  return {
    score: o.score,
    auroc: auroc(o.knownScores, o.unknownScores),
    ...(o.threshold !== undefined ? { threshold: o.threshold, knownKept: keptShare(o.knownScores, o.threshold), unknownRejected: 1 - keptShare(o.unknownScores, o.threshold) } : {}),
    keptAccuracy: kept ? keptRight / kept : 0,
    ece: expectedCalibrationError(o.knownProbs, o.knownLabels, K),
    known: n,
    unknown: o.unknownScores.length,
  };
}
