// Open-set recognition for a trained classifier head (browser-safe): a score from the embedding that
// says how unlike every taught class an input is (higher = less like anything taught), fitted on the
// training embeddings, with a threshold chosen on validation for a documented target share of known
// images kept, plus a softmax temperature fitted on validation so the class probabilities mean what
// they say. The kNN score it was measured against (scripts/bench-unknown.ts) is here too.
//
// Sources:
// - Mahalanobis: K. Lee, K. Lee, H. Lee, J. Shin, "A Simple Unified Framework for Detecting
//   Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018 — class means and one shared
//   covariance; the score is the distance to the nearest class mean.
// - Shrinkage covariance: O. Ledoit, M. Wolf, "A well-conditioned estimator for large-dimensional
//   covariance matrices", J. Multivariate Analysis 2004 (needed: 1280 dims from ~100 images).
// - kNN: Y. Sun, Y. Ming, X. Zhu, Y. Li, "Out-of-Distribution Detection with Deep Nearest Neighbors",
//   ICML 2022 — distance to the k-th nearest L2-normalised training embedding.
// The logit scores it is measured against (max-softmax, energy), the temperature and the measures
// (ECE, AUROC, quantile, kept share) are in runtime/train/openset-scores.ts; the covariance algebra
// (Cholesky, Gram, symmetric eigen) in runtime/core/linalg.ts.

import { EdgetuneError } from '../core/errors.js';
import type { FeatureSet, HeadWeights } from './types.js';
import { headLogits } from './index.js';
import { cholesky, gram, symmetricEigen } from '../core/linalg.js';
import { auroc, expectedCalibrationError, fitTemperature, keptShare, quantile, temperedSoftmax } from './openset-scores.js';

/** Open-set scores this module computes. `mahalanobis` is what finetune fits (chosen by measurement: README "Unknown inputs"). */
export type OpenSetMethod = 'mahalanobis' | 'knn' | 'energy' | 'max-softmax';

/** Share of known validation images a fitted threshold keeps by default (the rest are called unknown). */
export const DEFAULT_KEEP_TARGET = 0.95;

/** Which covariance the Mahalanobis distance uses: one pooled within-class covariance (Lee et al. 2018) or one per class (a Gaussian per class, shrunk; measured better, README "Unknown inputs"). */
export type CovarianceKind = 'shared' | 'per-class';

/** Components of each class's covariance a per-class detector keeps (the rest is folded into its isotropic part; bench: 32 loses nothing against the full covariance). */
export const DEFAULT_CLASS_RANK = 32;

/**
 * A fitted Mahalanobis open-set detector (Lee et al. 2018 with Ledoit–Wolf shrinkage).
 * For an embedding x (L2-normalised first when `normalize`), v_c = x − means_c and
 *   d²_c(x) = scale_c · (‖v_c‖² − ‖B_c · v_c‖²)
 * is the squared Mahalanobis distance under a covariance a·I + (low-rank part), in the Woodbury form of
 * Σ⁻¹ so no d×d matrix is stored:
 * - `shared`: Σ = a·I + b·XᵀX for all classes (scale = 1/a, B = L⁻¹X with L Lᵀ = (a/b)·I + X Xᵀ, X the
 *   class-centred training embeddings);
 * - `per-class`: Σ_c = a_c·I + U_c diag(λ_c) U_cᵀ, the Ledoit–Wolf shrunk covariance of class c with its
 *   top `rank` eigenvectors U_c kept (the rest of its variance folded into a_c): scale_c = 1/a_c,
 *   B_c = diag(√(λ/(a_c+λ))) U_cᵀ.
 * The raw score is min_c d²_c / dims (per-dimension units); `unknownScore` = raw / threshold,
 * so the model's own threshold is 1 in those units.
 */
export interface MahalanobisDetector {
  method: 'mahalanobis';
  /** Default 'shared' when absent (a detector from before per-class covariances). */
  covariance?: CovarianceKind;
  /** Embedding length d. */
  dims: number;
  classes: number;
  /** L2-normalise embeddings before the distance. */
  normalize: boolean;
  /** classes×dims, row-major. */
  means: Float32Array;
  /** shared: rank×dims; per-class: classes×rank×dims (class c's rank rows, then c+1's); row-major. */
  basis: Float32Array;
  rank: number;
  /** shared: 1/a (see above). */
  scale: number;
  /** per-class: 1/a_c, one per class. */
  scales?: Float32Array;
  /** Ledoit–Wolf shrinkage intensity in [0, 1] toward a scaled identity (per-class: the mean over classes). */
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
  /**
   * Covariance kind. fitMahalanobis / fitOpenSet default to 'shared': alone on the embedding, 'per-class'
   * raises near-unknown AUROC (bench:unknown tuning splits 0.703 → 0.741) but rejects far fewer far unknowns
   * at its threshold (0.896 → 0.588). fitLayered defaults to 'per-class' (measured better in the ensemble).
   */
  covariance?: CovarianceKind;
  /** Per-class covariance components kept (default DEFAULT_CLASS_RANK). */
  rank?: number;
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

/** Ledoit–Wolf shrinkage intensity and mean variance μ of centred rows from their Gram matrix G = X Xᵀ (n×n). */
function ledoitWolf(g: Float64Array, n: number, d: number): { shrinkage: number; mu: number } {
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
  return { shrinkage: delta2 > 0 ? Math.min(beta2bar, delta2) / delta2 : 1, mu };
}

/** The shared Ledoit–Wolf covariance of centred rows x (n×d) in Woodbury form (see MahalanobisDetector). */
function shrunkCovariance(x: Float64Array, n: number, d: number): { basis: Float64Array; rank: number; scale: number; shrinkage: number } {
  const g = gram(x, n, d);
  const { shrinkage, mu } = ledoitWolf(g, n, d);
  // Σ = a·I + b·XᵀX with a = shrinkage·μ, b = (1 − shrinkage)/n
  const a = Math.max(shrinkage * mu, 1e-12 * Math.max(mu, 1e-12));
  const b = (1 - shrinkage) / n;
  if (!(b > 0)) return { basis: new Float64Array(0), rank: 0, scale: 1 / a, shrinkage };
  // Σ⁻¹ = (1/a)(I − Xᵀ M⁻¹ X), M = (a/b)·I + X Xᵀ = L Lᵀ; basis = L⁻¹ X
  const m = Float64Array.from(g);
  for (let i = 0; i < n; i++) m[i * n + i]! += a / b;
  if (!cholesky(m, n)) throw new EdgetuneError('EINPUT', 'open-set fit: covariance is not positive definite (duplicate or constant embeddings?)');
  const basis = new Float64Array(n * d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      let t = x[i * d + j]!;
      for (let k = 0; k < i; k++) t -= m[i * n + k]! * basis[k * d + j]!;
      basis[i * d + j] = t / m[i * n + i]!;
    }
  return { basis, rank: n, scale: 1 / a, shrinkage };
}

/** Rows a class's eigenbasis is computed from at most (evenly strided beyond it; Ledoit–Wolf uses every row). */
const MAX_EIGEN_ROWS = 384;

/**
 * One class's Ledoit–Wolf shrunk covariance with its top `rank` components: from the class-centred rows
 * x (n×d), S = XᵀX/n, Σ = s·μ·I + (1 − s)·S (s the shrinkage); its top eigenpairs (w_k, u_k) of (1 − s)·S
 * are kept and the rest of the trace folded into a, so Σ ≈ a·I + Σ_k w_k u_k u_kᵀ. The eigenpairs come from
 * the Gram matrix (X Xᵀ q = σ q ⇒ S u = (σ/n) u with u = Xᵀ q / √σ).
 */
function classCovariance(x: Float64Array, n: number, d: number, rank: number): { u: Float64Array; w: Float64Array; a: number; shrinkage: number } {
  const g = gram(x, n, d);
  const { shrinkage, mu } = n > 1 ? ledoitWolf(g, n, d) : { shrinkage: 1, mu: 0 };
  let trace = 0;
  for (let i = 0; i < n; i++) trace += g[i * n + i]!;
  trace /= n;
  // the eigenbasis from at most MAX_EIGEN_ROWS rows (strided), scaled to the full class
  const m = Math.min(n, MAX_EIGEN_ROWS);
  const pick = Array.from({ length: m }, (_, i) => Math.floor((i * n) / m));
  const gs = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let k = 0; k < m; k++) gs[i * m + k] = g[pick[i]! * n + pick[k]!]!;
  const { values, vectors } = symmetricEigen(gs, m);
  const r = Math.min(rank, m, d);
  const u = new Float64Array(r * d);
  const w = new Float64Array(r);
  let kept = 0;
  let used = 0;
  for (let k = 0; k < r; k++) {
    const sigma = values[k]!;
    if (!(sigma > 1e-12 * Math.max(values[0]!, 1e-300))) break;
    const inv = 1 / Math.sqrt(sigma);
    for (let i = 0; i < m; i++) {
      const q = vectors[k * m + i]! * inv;
      if (q === 0) continue;
      const row = pick[i]!;
      for (let j = 0; j < d; j++) u[k * d + j]! += q * x[row * d + j]!;
    }
    w[k] = ((1 - shrinkage) * sigma) / m;
    kept += w[k]!;
    used++;
  }
  const a = Math.max(shrinkage * mu + ((1 - shrinkage) * trace - kept) / d, 1e-12 * Math.max(mu, 1e-12), 1e-12);
  return { u: u.subarray(0, used * d), w: w.subarray(0, used), a, shrinkage };
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
  const covariance = opts.covariance ?? 'shared';
  let det: MahalanobisDetector;
  const base = { method: 'mahalanobis' as const, covariance, dims: d, classes: K, normalize, means: Float32Array.from(means), threshold: 0 };
  if (covariance === 'shared') {
    const c = shrunkCovariance(x, n, d);
    det = { ...base, basis: Float32Array.from(c.basis), rank: c.rank, scale: c.scale, shrinkage: c.shrinkage };
  } else {
    let rank = Math.min(Math.max(1, Math.floor(opts.rank ?? DEFAULT_CLASS_RANK)), d, MAX_EIGEN_ROWS, ...Array.from(counts));
    const parts: { u: Float64Array; w: Float64Array; a: number; shrinkage: number }[] = [];
    for (let c = 0; c < K; c++) {
      const idx: number[] = [];
      for (let i = 0; i < n; i++) if (train.labels[i] === c) idx.push(i);
      const xc = new Float64Array(idx.length * d);
      idx.forEach((i, k) => xc.set(x.subarray(i * d, (i + 1) * d), k * d));
      parts.push(classCovariance(xc, idx.length, d, rank));
    }
    rank = Math.max(1, rank);
    const basis = new Float32Array(K * rank * d);
    const scales = new Float32Array(K);
    parts.forEach((p, c) => {
      scales[c] = 1 / p.a;
      for (let k = 0; k < p.w.length; k++) {
        const f = Math.sqrt(p.w[k]! / (p.a + p.w[k]!));
        for (let j = 0; j < d; j++) basis[(c * rank + k) * d + j] = f * p.u[k * d + j]!;
      }
    });
    det = { ...base, basis, rank, scale: 1, scales, shrinkage: parts.reduce((t, p) => t + p.shrinkage, 0) / K };
  }
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
      const perClass = det.covariance === 'per-class';
      const off = perClass ? c * r * d : 0;
      for (let k = 0; k < r; k++) {
        let p = 0;
        for (let j = 0; j < d; j++) p += det.basis[off + k * d + j]! * v[j]!;
        q -= p * p;
      }
      q *= perClass ? det.scales![c]! : det.scale;
      if (q < best) {
        best = q;
        arg = c;
      }
    }
    out[i] = best / d;
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
  const { temperature, ece } = hasVal && valLogits ? softmaxCalibration(valLogits, val!.labels, train.classes) : { temperature: 1, ece: undefined };
  return {
    detector,
    calibration: { method: 'mahalanobis', threshold: 1, temperature, target, kept, fittedOn: hasVal ? 'validation' : 'training', ...(ece ? { ece } : {}) },
  };
}

/**
 * The softmax temperature fitted on validation logits (n×classes, Guo et al. 2017) and the expected calibration
 * error before and after it; temperature 1 and no ECE when the logits do not match the labels' count.
 */
function softmaxCalibration(valLogits: Float32Array, labels: Int32Array, classes: number): { temperature: number; ece: OpenSetCalibration['ece'] } {
  if (!labels.length || valLogits.length !== labels.length * classes) return { temperature: 1, ece: undefined };
  const temperature = fitTemperature(valLogits, labels, classes);
  return {
    temperature,
    ece: {
      before: expectedCalibrationError(temperedSoftmax(valLogits, classes, 1), labels, classes),
      after: expectedCalibrationError(temperedSoftmax(valLogits, classes, temperature), labels, classes),
    },
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

/**
 * A multi-layer open-set detector (the feature ensemble of Lee et al. 2018): one Mahalanobis detector per
 * backbone activation (each tensor's channel means over space, GlobalAveragePool, as the embedding is),
 * each layer's raw score standardised by its mean and standard deviation on the known validation images,
 * the standardised scores summed (no unknown data is used anywhere), and
 *   unknownScore = exp((Σ_l (s_l − mean_l) / std_l − threshold) / spread)
 * so that the model's own threshold is 1 (as for a single detector), `threshold` being the target quantile
 * of the validation sums and `spread` their standard deviation.
 */
export interface LayeredDetector {
  method: 'mahalanobis-layers';
  layers: OpenSetLayer[];
  /** Target quantile of the validation sums of standardised layer scores. */
  threshold: number;
  /** Standard deviation of those sums (the unit of unknownScore's exponent). */
  spread: number;
}

/** One layer of a LayeredDetector. */
export interface OpenSetLayer {
  /** The backbone tensor (an activation before the embedding, or the embedding output itself) whose channel means the detector reads. */
  tensor: string;
  detector: MahalanobisDetector;
  /** Mean and standard deviation of the detector's raw scores on the known validation images. */
  mean: number;
  std: number;
}

/** Per layer: its tensor name, training rows and validation rows (same images, same order, in every layer). */
export interface LayerFeatures {
  tensor: string;
  train: FeatureSet;
  val: FeatureSet;
}

/**
 * Validation rows a multi-layer fit needs at least: each layer's score is standardised by its spread over them
 * (one row has none: every score became 0 or infinite) and the threshold is their `target` quantile.
 * `finetune` keeps the single embedding score below it.
 */
export const MIN_LAYERED_VAL_ROWS = 10;

/**
 * Fit a LayeredDetector: fitMahalanobis per layer on its training rows (options as there; covariance default 'per-class'), standardised on
 * its validation rows, threshold = `target` quantile of the validation sums. Errors: EINPUT without layers,
 * with fewer than MIN_LAYERED_VAL_ROWS validation rows, or when the layers' row counts differ.
 */
export function fitLayered(layers: readonly LayerFeatures[], opts: FitOpenSetOptions = {}): LayeredDetector {
  if (!layers.length) throw new EdgetuneError('EINPUT', 'a layered open-set fit needs at least one layer');
  const nv = layers[0]!.val.labels.length;
  if (nv < MIN_LAYERED_VAL_ROWS) throw new EdgetuneError('EINPUT', `a layered open-set fit needs at least ${MIN_LAYERED_VAL_ROWS} validation rows (each layer is standardised on them), got ${nv}`);
  for (const l of layers) if (l.val.labels.length !== nv) throw new EdgetuneError('EINPUT', `layer ${l.tensor}: ${l.val.labels.length} validation rows, the first layer has ${nv}`);
  const out: OpenSetLayer[] = [];
  const sums = new Float64Array(nv);
  for (const l of layers) {
    const detector = fitMahalanobis(l.train, l.val, { covariance: 'per-class', ...opts });
    const s = mahalanobisScores(detector, l.val.features);
    const { mean, std } = meanStd(s);
    s.forEach((x, i) => (sums[i]! += (x - mean) / std));
    out.push({ tensor: l.tensor, detector, mean, std });
  }
  return { method: 'mahalanobis-layers', layers: out, threshold: quantile(sums, opts.target ?? DEFAULT_KEEP_TARGET), spread: Math.max(meanStd(sums).std, 1e-6) };
}

/** Mean and (population) standard deviation of scores; the deviation floored at 1e-12 of the mean's size so dividing by it is safe. */
function meanStd(s: ArrayLike<number>): { mean: number; std: number } {
  let mean = 0;
  for (let i = 0; i < s.length; i++) mean += s[i]! / s.length;
  let v = 0;
  for (let i = 0; i < s.length; i++) v += (s[i]! - mean) ** 2 / s.length;
  return { mean, std: Math.max(Math.sqrt(v), 1e-12 * Math.max(Math.abs(mean), 1e-12)) };
}

/** unknownScore of n images under a LayeredDetector (1 = its threshold): `features[l]` holds the n rows of layer l. */
export function layeredScores(det: LayeredDetector, features: readonly Float32Array[]): Float32Array {
  if (features.length !== det.layers.length) throw new EdgetuneError('EINPUT', `layered open-set scores: ${features.length} feature sets for ${det.layers.length} layers`);
  let sums: Float64Array | undefined;
  det.layers.forEach((l, i) => {
    const s = mahalanobisScores(l.detector, features[i]!);
    sums ??= new Float64Array(s.length);
    if (s.length !== sums.length) throw new EdgetuneError('EINPUT', `layer ${l.tensor}: ${s.length} rows, the first layer has ${sums.length}`);
    s.forEach((x, k) => (sums![k]! += (x - l.mean) / l.std));
  });
  return Float32Array.from(sums!, (x) => Math.exp((x - det.threshold) / det.spread));
}

/**
 * The open-set calibration of a classifier head with a multi-layer score: fitLayered on `layers` (the taps'
 * rows of the head's training / validation images), the softmax temperature from the head's logits on `val`
 * (its validation embedding rows); `kept` is the layered threshold's share of validation kept. Errors as
 * fitLayered (validation rows are required).
 */
export function layeredOpenSetForHead(
  head: HeadWeights, val: FeatureSet, layers: readonly LayerFeatures[], opts: FitOpenSetOptions = {},
): { detector: LayeredDetector; calibration: OpenSetCalibration } {
  const detector = fitLayered(layers, opts);
  const { temperature, ece } = softmaxCalibration(headLogits(head, val.features), val.labels, val.classes);
  const kept = keptShare(layeredScores(detector, layers.map((l) => l.val.features)), 1);
  const target = opts.target ?? DEFAULT_KEEP_TARGET;
  return { detector, calibration: { method: 'mahalanobis', threshold: 1, temperature, target, kept, fittedOn: 'validation', ...(ece ? { ece } : {}) } };
}
