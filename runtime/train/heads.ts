// Heads on fixed embeddings (BROWSER-SAFE): the head's answer for rows of raw embeddings (headLogits,
// predictHead), the few-shot prototype head, and the one L2 row normalisation they and the trainer use
// (l2rows; the exported model does the same with LpNormalization).

import { EdgetuneError } from '../core/errors.js';
import { bad, checkSet } from './config.js';
import { sigmoid, softmaxInto } from './tasks.js';
import type { FeatureSet, HeadWeights } from './types.js';

/** Rows scaled to unit L2 norm (as LpNormalization does). */
export function l2rows(f: Float32Array, d: number): Float32Array {
  const out = new Float32Array(f.length);
  for (let i = 0; i < f.length; i += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += f[i + j]! * f[i + j]!;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < d; j++) out[i + j] = f[i + j]! * inv;
  }
  return out;
}

/** Logits of a head for n rows of raw embeddings. */
export function headLogits(head: HeadWeights, features: Float32Array, n = features.length / head.dims): Float32Array {
  const d = head.dims;
  if (features.length < n * d) throw bad('features length', `${n} × ${d}`, features.length);
  const out = new Float32Array(n * head.classes);
  const x = head.normalize ? l2rows(features.subarray(0, n * d), d) : features;
  let a: Float64Array = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    a = new Float64Array(d);
    for (let i = 0; i < d; i++) a[i] = x[r * d + i]!;
    head.layers.forEach((L, l) => {
      const z = new Float64Array(L.out);
      for (let o = 0; o < L.out; o++) {
        let acc = L.bias[o]!;
        for (let i = 0; i < L.in; i++) acc += L.weight[o * L.in + i]! * a[i]!;
        z[o] = l < head.layers.length - 1 ? Math.max(0, acc) : acc;
      }
      a = z;
    });
    out.set(a, r * head.classes);
  }
  return out;
}

/**
 * The head's answer for n rows of raw embeddings, n×classes: class probabilities (softmax of the
 * logits) for classification, per-label probabilities (sigmoid) for multilabel, the values (in the
 * targets' units) for regression.
 */
export function predictHead(head: HeadWeights, features: Float32Array, n = features.length / head.dims): Float32Array {
  const z = headLogits(head, features, n);
  if (head.task === 'regression') return z;
  if (head.task === 'multilabel') return z.map((v) => sigmoid(v));
  const K = head.classes;
  const p = new Float64Array(K);
  for (let r = 0; r < n; r++) {
    softmaxInto(Float64Array.from(z.subarray(r * K, (r + 1) * K)), p);
    for (let k = 0; k < K; k++) z[r * K + k] = p[k]!;
  }
  return z;
}

/**
 * Few-shot head: each class's mean m_c of L2-normalised embeddings. For a normalised x,
 * −‖x − m_c‖² = 2·m_c·x − ‖m_c‖² − 1, so the nearest mean is the argmax of a linear layer with
 * W_c = 2T·m_c, b_c = −T·‖m_c‖² on the normalised embedding (T, the temperature, only sharpens the
 * softmax).
 */
export function prototypeHead(train: FeatureSet, opts: { temperature?: number } = {}): HeadWeights {
  const n = checkSet('train', train);
  const T = opts.temperature ?? 10;
  const { dims: d, classes: K } = train;
  const means = new Float64Array(K * d);
  const counts = new Float64Array(K);
  const x = l2rows(train.features.subarray(0, n * d), d);
  for (let i = 0; i < n; i++) {
    const y = train.labels[i]!;
    for (let j = 0; j < d; j++) means[y * d + j]! += x[i * d + j]!;
    counts[y]!++;
  }
  const weight = new Float32Array(K * d);
  const bias = new Float32Array(K);
  for (let c = 0; c < K; c++) {
    if (!counts[c]) throw new EdgetuneError('EINPUT', `class ${c} has no training examples`);
    let sq = 0;
    for (let j = 0; j < d; j++) {
      const m = means[c * d + j]! / counts[c]!;
      weight[c * d + j] = 2 * T * m;
      sq += m * m;
    }
    bias[c] = -T * sq;
  }
  return { format: 'edgetune.head', version: 1, kind: 'prototype', dims: d, classes: K, normalize: true, layers: [{ in: d, out: K, weight, bias }] };
}

