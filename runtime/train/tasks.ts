// The head trainer's losses per task: single-label classification (label-smoothed, class-weighted
// softmax cross-entropy), multilabel (binary cross-entropy on sigmoid outputs), regression (mean
// squared error), the L2 / L1 penalties, target standardisation for regression, and the metrics that
// fit each (multilabel precision / recall / F1 per label, micro / macro
// F1, exact match at a threshold; regression MAE / RMSE / R²). Browser-safe.

import { argmax } from './metrics.js';
import type { FeatureSet, TrainTask } from './types.js';

export const TASKS: readonly TrainTask[] = ['classification', 'multilabel', 'regression'];

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

/** σ(z) = 1 / (1 + e^−z) without overflow. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/**
 * Binary cross-entropy of one row's K logits `z` against 0/1 targets t[tOff..tOff+K) (sigmoid
 * inside): mean over labels of softplus(z) − t·z. Writes dz = w·(σ(z) − t)/K; returns the unweighted loss.
 */
export function bceRowLoss(z: Float64Array, t: ArrayLike<number>, tOff: number, w: number, dz: Float64Array): number {
  const K = z.length;
  let li = 0;
  for (let k = 0; k < K; k++) {
    const zk = z[k]!;
    const tk = t[tOff + k]!;
    li += softplus(zk) - tk * zk;
    dz[k] = (w * (sigmoid(zk) - tk)) / K;
  }
  return li / K;
}

/**
 * Squared error of one row's K outputs `z` against targets t[tOff..tOff+K): mean over outputs of
 * (z − t)². Writes dz = w·2(z − t)/K; returns the unweighted loss.
 */
export function mseRowLoss(z: Float64Array, t: ArrayLike<number>, tOff: number, w: number, dz: Float64Array): number {
  const K = z.length;
  let li = 0;
  for (let k = 0; k < K; k++) {
    const e = z[k]! - t[tOff + k]!;
    li += e * e;
    dz[k] = (w * 2 * e) / K;
  }
  return li / K;
}

/** Every label's decision right (logit > 0 ⇔ target > 0.5), for the multilabel exact-match ratio. */
export function exactMatch(z: Float64Array, t: ArrayLike<number>, tOff: number): boolean {
  for (let k = 0; k < z.length; k++) if (z[k]! > 0 !== t[tOff + k]! > 0.5) return false;
  return true;
}

/** Rows of a set: labels.length for classification, targets.length / classes for the other tasks. */
export function rowsOf(s: FeatureSet, task: TrainTask): number {
  if (task === 'classification') return s.labels.length;
  return s.targets ? s.targets.length / s.classes : 0;
}

/** Per-output mean and standard deviation (1 when an output is constant) of row-major [n, K] targets. */
export function targetStats(t: Float32Array, K: number): { mean: Float64Array; std: Float64Array } {
  const n = t.length / K;
  const mean = new Float64Array(K);
  const sq = new Float64Array(K);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) mean[k]! += t[i * K + k]! / n;
  for (let i = 0; i < n; i++)
    for (let k = 0; k < K; k++) {
      const e = t[i * K + k]! - mean[k]!;
      sq[k]! += e * e;
    }
  const std = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    const sd = Math.sqrt(sq[k]! / Math.max(1, n));
    std[k] = sd > 1e-12 ? sd : 1;
  }
  return { mean, std };
}

/** (t − mean) / std per output, as float64. */
export function standardizeTargets(t: Float32Array, st: { mean: Float64Array; std: Float64Array }): Float64Array {
  const K = st.mean.length;
  const out = new Float64Array(t.length);
  for (let i = 0; i < t.length; i++) out[i] = (t[i]! - st.mean[i % K]!) / st.std[i % K]!;
  return out;
}

export interface LabelMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Rows where the label is on. */
  support: number;
}

export interface MultilabelMetrics {
  threshold: number;
  perLabel: LabelMetrics[];
  /** F1 of the pooled true / false positives and false negatives of every label. */
  microF1: number;
  /**
   * Unweighted mean of the per-label F1 over the labels where F1 is defined (some row has the label on
   * or predicted on: tp + fp + fn > 0). A label absent from the rows and never predicted (e.g. a
   * validation CSV that covers a subset of the training labels) is left out instead of counting as 0.
   * 0 when no label qualifies.
   */
  macroF1: number;
  /** Rows whose every label decision is right. */
  exactMatch: number;
  /** Label decisions that are right (n·K of them). */
  labelAccuracy: number;
}

function f1of(tp: number, fp: number, fn: number): { precision: number; recall: number; f1: number } {
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
}

/**
 * Multilabel metrics of probabilities [n, K] against 0/1 truth [n, K] (row-major), a label being on
 * when its probability is above `threshold` (default 0.5).
 */
export function multilabelMetrics(probs: ArrayLike<number>, truth: ArrayLike<number>, K: number, threshold = 0.5): MultilabelMetrics {
  const n = truth.length / K;
  const tp = new Array<number>(K).fill(0);
  const fp = new Array<number>(K).fill(0);
  const fn = new Array<number>(K).fill(0);
  let exact = 0;
  let right = 0;
  for (let i = 0; i < n; i++) {
    let all = true;
    for (let k = 0; k < K; k++) {
      const p = probs[i * K + k]! > threshold;
      const t = truth[i * K + k]! > 0.5;
      if (p && t) tp[k]!++;
      else if (p) fp[k]!++;
      else if (t) fn[k]!++;
      if (p === t) right++;
      else all = false;
    }
    if (all) exact++;
  }
  const perLabel = tp.map((_, k) => ({ ...f1of(tp[k]!, fp[k]!, fn[k]!), support: tp[k]! + fn[k]! }));
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  return {
    threshold,
    perLabel,
    microF1: f1of(sum(tp), sum(fp), sum(fn)).f1,
    macroF1: (() => {
      const defined = perLabel.filter((_, k) => tp[k]! + fp[k]! + fn[k]! > 0);
      return defined.length ? defined.reduce((a, m) => a + m.f1, 0) / defined.length : 0;
    })(),
    exactMatch: n ? exact / n : 0,
    labelAccuracy: n ? right / (n * K) : 0,
  };
}

export interface OutputMetrics {
  mae: number;
  rmse: number;
  /** 1 − SSE / SST around the output's own mean (0 = no better than predicting the mean; NaN for a constant output). */
  r2: number;
}

export interface RegressionMetrics extends OutputMetrics {
  /** Per output; the top-level figures are their unweighted means. */
  perOutput: OutputMetrics[];
}

/** MAE, RMSE and R² of predictions [n, K] against truth [n, K] (row-major, the targets' units). */
export function regressionMetrics(pred: ArrayLike<number>, truth: ArrayLike<number>, K: number): RegressionMetrics {
  const n = truth.length / K;
  const perOutput: OutputMetrics[] = [];
  for (let k = 0; k < K; k++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += truth[i * K + k]! / n;
    let abs = 0;
    let sse = 0;
    let sst = 0;
    for (let i = 0; i < n; i++) {
      const e = pred[i * K + k]! - truth[i * K + k]!;
      abs += Math.abs(e);
      sse += e * e;
      sst += (truth[i * K + k]! - mean) ** 2;
    }
    perOutput.push({ mae: abs / Math.max(1, n), rmse: Math.sqrt(sse / Math.max(1, n)), r2: sst > 0 ? 1 - sse / sst : NaN });
  }
  const avg = (f: (m: OutputMetrics) => number) => perOutput.reduce((a, m) => a + f(m), 0) / Math.max(1, K);
  return { mae: avg((m) => m.mae), rmse: avg((m) => m.rmse), r2: avg((m) => m.r2), perOutput };
}

/** Softmax of s.z in place into `probs`; returns log-sum-exp. */
export function softmaxInto(z: Float64Array, probs: Float64Array): number {
  let max = -Infinity;
  for (const v of z) if (v > max) max = v;
  let sum = 0;
  for (let k = 0; k < z.length; k++) sum += probs[k] = Math.exp(z[k]! - max);
  for (let k = 0; k < z.length; k++) probs[k]! /= sum;
  return max + Math.log(sum);
}

/**
 * Label-smoothed cross-entropy of one row from its logits `z` (softmax already in `probs`, `lse` its
 * log-sum-exp): writes the weighted logit gradient dz = w·(p − t) and returns the unweighted loss.
 */
export function smoothedRowLoss(z: Float64Array, probs: Float64Array, lse: number, y: number, eps: number, w: number, dz: Float64Array): number {
  const K = z.length;
  let li = 0;
  for (let k = 0; k < K; k++) {
    const t = (k === y ? 1 - eps : 0) + eps / K;
    li += t * (lse - z[k]!);
    dz[k] = w * (probs[k]! - t);
  }
  return li;
}

/** What the per-row loss reads: the task, its truth and (classification) weights and smoothing. */
export interface Objective {
  task: TrainTask;
  labels: Int32Array;
  /** [n, K] targets (regression: already standardised). */
  targets?: ArrayLike<number>;
  K: number;
  classWeights?: Float64Array;
  eps: number;
}

/** A row's weight before normalising by the batch's sum: its class weight (classification) or 1. */
export function rowWeight(o: Objective, i: number): number {
  return o.task === 'classification' && o.classWeights ? o.classWeights[o.labels[i]!]! : 1;
}

/** Loss of row i from its outputs `s.z` (unweighted); writes s.dz = w · dLoss/dz. `probs` is K scratch. */
export function rowLoss(o: Objective, s: { z: Float64Array; dz: Float64Array }, probs: Float64Array, i: number, w: number): number {
  if (o.task === 'multilabel') return bceRowLoss(s.z, o.targets!, i * o.K, w, s.dz);
  if (o.task === 'regression') return mseRowLoss(s.z, o.targets!, i * o.K, w, s.dz);
  const lse = softmaxInto(s.z, probs);
  return smoothedRowLoss(s.z, probs, lse, o.labels[i]!, o.eps, w, s.dz);
}

/** Whether row i counts as right: argmax = label, or every label decision right (multilabel); regression never. */
export function rowHit(o: Objective, z: Float64Array, i: number): boolean {
  if (o.task === 'multilabel') return exactMatch(z, o.targets!, i * o.K);
  if (o.task === 'regression') return false;
  return argmax(z) === o.labels[i];
}

/** The accuracy-like score of EpochStats from a mean loss and hit count (regression: 1 − MSE). */
export function scoreOf(o: Objective, meanLoss: number, hits: number, n: number): number {
  return o.task === 'regression' ? 1 - meanLoss : n ? hits / n : 0;
}

/** Add λ₂·w + λ₁·sign(w) to the weight gradients (not biases); returns (λ₂/2)·Σw² + λ₁·Σ|w|. */
export function addPenalty(W: Float64Array[], gW: Float64Array[], l2: number, l1: number): number {
  let pen = 0;
  if (!(l2 > 0) && !(l1 > 0)) return 0;
  for (let l = 0; l < W.length; l++) {
    const w = W[l]!;
    const g = gW[l]!;
    for (let i = 0; i < w.length; i++) {
      const v = w[i]!;
      g[i]! += l2 * v + l1 * Math.sign(v);
      pen += 0.5 * l2 * v * v + l1 * Math.abs(v);
    }
  }
  return pen;
}
