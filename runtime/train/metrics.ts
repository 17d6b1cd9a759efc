// Classification metrics from predictions: accuracy, confusion matrix (rows = true labels), and
// per-class precision / recall / F1 / support. Browser-safe.

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Metrics {
  accuracy: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  perClass: ClassMetrics[];
  /** Unweighted mean F1 over classes. */
  macroF1: number;
}

/** Index of the largest of `k` values at `offset`. */
export function argmax(x: ArrayLike<number>, offset = 0, k = x.length - offset): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (x[offset + j]! > x[offset + best]!) best = j;
  return best;
}

/** log Σ exp(s·z[off + k]) over k < K, computed stably (the largest term subtracted first). `s` defaults to 1 (a temperature T is s = 1/T). */
export function logSumExp(z: ArrayLike<number>, off: number, K: number, s = 1): number {
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, z[off + k]! * s);
  let t = 0;
  for (let k = 0; k < K; k++) t += Math.exp(z[off + k]! * s - m);
  return m + Math.log(t);
}

/** Cross-entropy of row `i` of n×K logits against its `label`: log Σ exp(logits) − logits[label] (logSumExp). */
export function rowCrossEntropy(logits: ArrayLike<number>, i: number, K: number, label: number): number {
  return logSumExp(logits, i * K, K) - logits[i * K + label]!;
}

/** Predicted class per row of an n×k probability (or score) matrix. */
export function predictions(probs: Float32Array, k: number): Int32Array {
  const n = probs.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = argmax(probs, i * k, k);
  return out;
}

export function computeMetrics(predicted: ArrayLike<number>, truth: ArrayLike<number>, classes: number): Metrics {
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    confusion[truth[i]!]![predicted[i]!]!++;
    if (truth[i] === predicted[i]) correct++;
  }
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < classes; c++) {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    let predictedC = 0;
    for (let r = 0; r < classes; r++) predictedC += confusion[r]![c]!;
    const precision = predictedC ? tp / predictedC : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    perClass.push({ precision, recall, f1, support });
  }
  return {
    accuracy: truth.length ? correct / truth.length : 0,
    confusion,
    perClass,
    macroF1: perClass.reduce((a, m) => a + m.f1, 0) / Math.max(1, classes),
  };
}
