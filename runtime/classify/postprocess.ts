// Postprocessing: model output → probabilities → top-k with labels. Browser-safe.
// Softmax is applied only when the model outputs logits; a label offset (MobileNetV1's background
// class at index 0) maps output index → label index.

import type { ModelTask, OutputKind } from '../core/model-card.js';

/** One ranked class of a row. */
export interface Prediction {
  /** Class index in the label set (output index minus the label offset). */
  index: number;
  /** `labels[index]`, or the index as text when the card names no label there. */
  label: string;
  /** The class's probability after toProbabilities, 0..1 (multilabel: its own sigmoid, not a share of 1); for a regression model's row, its raw value (e.g. 23.0, any range). */
  score: number;
}

/** What postprocessing needs of a model card: how outputs become probabilities and how they are named. */
export interface PostprocessSpec {
  /** `logits` get a softmax; `probabilities` are used as they are; `auto` is decided per row. */
  kind: OutputKind;
  /** Output index of label 0 (1 when index 0 is a background class). */
  labelOffset: number;
  /** Class names; label i names output i + labelOffset. */
  labels: readonly string[];
}

/** Numerically stable softmax over `n` values starting at `offset`, written to a new array. */
export function softmax(x: ArrayLike<number>, offset = 0, n = x.length - offset): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[offset + i]! > max) max = x[offset + i]!;
  const out = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i] = Math.exp(x[offset + i]! - max);
  for (let i = 0; i < n; i++) out[i]! /= sum;
  return out;
}

/** Indices of the k largest values, largest first (partial selection, O(n·k)). */
export function topIndices(x: ArrayLike<number>, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (idx.length < k || v > x[idx[idx.length - 1]!]!) {
      let j = Math.min(idx.length, k - 1);
      if (idx.length < k) idx.push(i);
      while (j > 0 && x[idx[j - 1]!]! < v) {
        idx[j] = idx[j - 1]!;
        j--;
      }
      idx[j] = i;
    }
  }
  return idx;
}

/** Probabilities for one batch row of `classes` outputs. */
/** KL(p ‖ q) of two distributions over the same classes (q floored at 1e-12; terms with p = 0 skipped). */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    const v = p[i]!;
    if (v > 0) d += v * Math.log(v / Math.max(q[i]!, 1e-12));
  }
  return d;
}

/**
 * One output row → probabilities, by the model card's output kind: `logits` get a softmax,
 * `probabilities` are returned as they are, and `auto` (nothing says which: a model with no card)
 * keeps a row that is already a distribution (no negatives, sums to 1 within 1e-3) and applies
 * softmax to anything else. For a `multilabel` task each output is its own label's score: `logits`
 * get an element-wise sigmoid (never a softmax across labels, which made a one-label model's score
 * 100% for every image), and so does `auto`: the card decides a multilabel model's kind once, from
 * its graph (classify/describe.ts: an output a Sigmoid produces is `probabilities`), never from a
 * row's values (a logit of 0.4 lies in [0, 1] too). A `regression` model's row is its values, returned
 * as they are whatever `kind` says (a softmax made them a distribution summing to 1).
 * The result may share memory with `row`.
 */
export function toProbabilities(row: Float32Array, kind: OutputKind, task?: ModelTask): Float32Array {
  if (kind === 'probabilities' || task === 'regression') return row;
  if (task === 'multilabel') {
    return Float32Array.from(row, (v) => 1 / (1 + Math.exp(-v)));
  }
  if (kind === 'logits') return softmax(row);
  let s = 0;
  for (const v of row) {
    if (v < 0) return softmax(row);
    s += v;
  }
  return Math.abs(s - 1) < 1e-3 ? row : softmax(row);
}

/**
 * The `k` most probable classes of one row of probabilities (output order, length = outputs), highest
 * first: outputs below `spec.labelOffset` (a background class) are never returned, so fewer than `k`
 * come back only when the row has fewer labelled outputs. Ties keep the lower index first.
 */
export function topK(probs: ArrayLike<number>, k: number, spec: PostprocessSpec): Prediction[] {
  const picked = topIndices(probs, k + spec.labelOffset);
  const out: Prediction[] = [];
  for (const i of picked) {
    const index = i - spec.labelOffset;
    if (index < 0) continue; // background class
    out.push({ index, label: spec.labels[index] ?? String(index), score: probs[i]! });
    if (out.length === k) break;
  }
  return out;
}

/**
 * A multilabel model's row (sigmoid probabilities, one per label) → the labels whose probability is
 * above `threshold` (default 0.5), highest first. `labels[i]` names output i (missing names read as
 * the index). An empty list means no label applies.
 */
export function multilabelTop(probs: ArrayLike<number>, labels: readonly string[], threshold = 0.5): Prediction[] {
  const out: Prediction[] = [];
  for (let i = 0; i < probs.length; i++) if (probs[i]! > threshold) out.push({ index: i, label: labels[i] ?? String(i), score: probs[i]! });
  return out.sort((a, b) => b.score - a.score || a.index - b.index);
}

/** One named output of a regression model. */
export interface RegressionValue {
  index: number;
  name: string;
  /** In the units of the training targets. */
  value: number;
}

/** A regression model's row → its values named by `names` (the card's labels; a missing name reads `value<i>`), in output order. */
export function regressionValues(row: ArrayLike<number>, names: readonly string[]): RegressionValue[] {
  return Array.from({ length: row.length }, (_, i) => ({ index: i, name: names[i] ?? `value${i}`, value: row[i]! }));
}

/** A multilabel head's label is on above this probability (the trainer's metrics use the same). */
export const MULTILABEL_THRESHOLD = 0.5;

/**
 * A multilabel reading (readOutput's `labels`: every label above MULTILABEL_THRESHOLD) as one line:
 * `sunflowers (97.1%), yellow (93.4%)`, or `(no label above 50%)` when none is on. `digits`: decimals of
 * the percentages (default 1, as classify prints; watch and the kiosk page print 0). The one text form
 * classify, watch and the kiosk page show.
 */
export function multilabelText(labels: readonly Pick<Prediction, 'label' | 'score'>[], digits = 1): string {
  return labels.length ? labels.map((t) => `${t.label} (${(t.score * 100).toFixed(digits)}%)`).join(', ') : `(no label above ${MULTILABEL_THRESHOLD * 100}%)`;
}

/** What one output row says, by the model's task (see `readOutput`). */
export type OutputReading =
  | { task: 'classification'; top: Prediction[] }
  /** `labels`: every label above the threshold, highest first (may be empty); `top`: the k most probable. */
  | { task: 'multilabel'; labels: Prediction[]; top: Prediction[] }
  | { task: 'regression'; values: RegressionValue[] };

/**
 * One row (after `toProbabilities`) → what it says, by the card's task (absent = classification):
 * the top `k` predictions; for multilabel, the labels above MULTILABEL_THRESHOLD and the top `k`; for
 * regression, every output's value named by the labels, in output order. The one post-processing
 * rule `classify`, the library and the stream share.
 */
export function readOutput(row: ArrayLike<number>, task: ModelTask | undefined, k: number, spec: PostprocessSpec): OutputReading {
  if (task === 'regression') return { task, values: regressionValues(row, spec.labels) };
  if (task === 'multilabel') return { task, labels: multilabelTop(row, spec.labels, MULTILABEL_THRESHOLD), top: topK(row, k, spec) };
  return { task: 'classification', top: topK(row, k, spec) };
}
