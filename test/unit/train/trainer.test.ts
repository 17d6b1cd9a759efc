// The head trainer against references: a closed-form optimum (symmetric 1-D problem), a plain
// full-batch gradient-descent implementation written here independently, finite-difference gradients,
// nearest-class-mean for the prototype head, early stopping and determinism.

import { describe, expect, it } from 'vitest';
import {
  classWeightsOf,
  computeMetrics,
  createRng,
  headFromJSON,
  headToJSON,
  lossAndGradient,
  OPTIMIZERS,
  predictHead,
  predictions,
  prototypeHead,
  resolveConfig,
  trainHead,
  trainHeadSync,
  type FeatureSet,
} from '../../../runtime/train/index.js';

/** Gaussian blobs, one per class, centres on a circle of radius `sep`. */
function blobs(perClass: number[], dims: number, sep: number, seed: number): FeatureSet {
  const rng = createRng(seed, 'blobs');
  const classes = perClass.length;
  const centres = Array.from({ length: classes }, () => Array.from({ length: dims }, () => rng.normal() * sep));
  const n = perClass.reduce((a, b) => a + b, 0);
  const features = new Float32Array(n * dims);
  const labels = new Int32Array(n);
  let i = 0;
  perClass.forEach((count, c) => {
    for (let k = 0; k < count; k++, i++) {
      labels[i] = c;
      for (let j = 0; j < dims; j++) features[i * dims + j] = centres[c]![j]! + rng.normal();
    }
  });
  return { features, labels, dims, classes };
}

describe('head trainer', () => {
  it('reaches the closed-form optimum of a symmetric 1-D problem', () => {
    // x = +a (class 1) and x = −a (class 0), weight decay λ, no smoothing: by symmetry w1 = −w0 = w
    // with λ·w = a·σ(−2·w·a), solved here by bisection.
    const a = 1.5;
    const lambda = 0.05;
    const sigma = (t: number) => 1 / (1 + Math.exp(-t));
    let lo = 0;
    let hi = a / lambda;
    for (let k = 0; k < 200; k++) {
      const mid = (lo + hi) / 2;
      if (lambda * mid - a * sigma(-2 * mid * a) > 0) hi = mid;
      else lo = mid;
    }
    const wStar = (lo + hi) / 2;
    const set: FeatureSet = { features: Float32Array.from([a, -a]), labels: Int32Array.from([1, 0]), dims: 1, classes: 2 };
    const r = trainHeadSync(set, undefined, {
      optimizer: 'sgd', lr: 0.5, epochs: 3000, batchSize: 0, schedule: 'constant', weightDecay: lambda,
      labelSmoothing: 0, standardize: false, init: 'zeros', classWeights: 'none',
    });
    const [w0, w1] = r.head.layers[0]!.weight;
    // float32 weights: agreement to float32 precision of the optimum
    expect(Math.abs(w1! - wStar)).toBeLessThan(wStar * 1e-5);
    expect(Math.abs(w0! + wStar)).toBeLessThan(wStar * 1e-5);
    expect(r.head.layers[0]!.bias[0]).toBeCloseTo(r.head.layers[0]!.bias[1]!, 6);
  });

  it('matches a plain full-batch gradient-descent reference exactly (weights, smoothing, class weights, L2)', () => {
    const set = blobs([30, 12, 20], 5, 2, 7);
    const cfg = { optimizer: 'sgd' as const, lr: 0.3, epochs: 40, batchSize: 0, schedule: 'constant' as const, weightDecay: 0.01, labelSmoothing: 0.1, standardize: false, init: 'zeros' as const, classWeights: 'balanced' as const };
    const r = trainHeadSync(set, undefined, cfg);
    // Reference: textbook softmax regression, written with plain arrays.
    const { dims: d, classes: K } = set;
    const n = set.labels.length;
    const counts = Array(K).fill(0);
    for (const y of set.labels) counts[y]++;
    const cw = counts.map((c) => n / (K * c));
    let W = Array.from({ length: K }, () => Array(d).fill(0));
    let b = Array(K).fill(0);
    for (let e = 0; e < cfg.epochs; e++) {
      const gW = Array.from({ length: K }, () => Array(d).fill(0));
      const gb = Array(K).fill(0);
      let wsum = 0;
      for (let i = 0; i < n; i++) wsum += cw[set.labels[i]!];
      for (let i = 0; i < n; i++) {
        const x = Array.from(set.features.subarray(i * d, i * d + d));
        const z = W.map((row, k) => row.reduce((s, w, j) => s + w * x[j]!, b[k]));
        const m = Math.max(...z);
        const ex = z.map((v) => Math.exp(v - m));
        const S = ex.reduce((s, v) => s + v, 0);
        const y = set.labels[i]!;
        for (let k = 0; k < K; k++) {
          const t = (k === y ? 0.9 : 0) + 0.1 / K;
          const g = (cw[y] / wsum) * (ex[k]! / S - t);
          gb[k] += g;
          for (let j = 0; j < d; j++) gW[k]![j] += g * x[j]!;
        }
      }
      W = W.map((row, k) => row.map((w, j) => w - cfg.lr * (gW[k]![j] + cfg.weightDecay * w)));
      b = b.map((v, k) => v - cfg.lr * gb[k]);
    }
    const L = r.head.layers[0]!;
    for (let k = 0; k < K; k++) {
      expect(L.bias[k]).toBeCloseTo(b[k], 5);
      for (let j = 0; j < d; j++) expect(L.weight[k * d + j]).toBeCloseTo(W[k]![j], 5);
    }
  });

  it('computes exact gradients for linear and MLP heads (finite differences)', () => {
    const set = blobs([6, 5, 4], 4, 1, 3);
    for (const sizes of [[4, 3], [4, 6, 3]]) {
      const rng = createRng(1, 'params');
      const W = sizes.slice(1).map((o, l) => Float64Array.from({ length: o * sizes[l]! }, () => rng.normal() * 0.5));
      const b = sizes.slice(1).map((o) => Float64Array.from({ length: o }, () => rng.normal() * 0.1));
      const rows = Array.from(set.labels, (_, i) => i);
      const opts = { classWeights: classWeightsOf({ classWeights: 'balanced' }, set.labels, 3), labelSmoothing: 0.1, weightDecay: 0.03 };
      const { gW, gb } = lossAndGradient({ W, b, sizes }, set.features, set.labels, rows, opts);
      const h = 1e-6;
      const params = [...W, ...b];
      const grads = [...gW, ...gb];
      params.forEach((p, pi) => {
        for (let i = 0; i < p.length; i++) {
          const keep = p[i]!;
          p[i] = keep + h;
          const up = lossAndGradient({ W, b, sizes }, set.features, set.labels, rows, opts).loss;
          p[i] = keep - h;
          const down = lossAndGradient({ W, b, sizes }, set.features, set.labels, rows, opts).loss;
          p[i] = keep;
          expect(grads[pi]![i]).toBeCloseTo((up - down) / (2 * h), 6);
        }
      });
    }
  });

  it('every optimizer and both schedules separate a separable set', async () => {
    const train = blobs([40, 40, 40], 8, 4, 11);
    for (const optimizer of OPTIMIZERS) {
      // adadelta's step starts near sqrt(1e-6) and needs more steps to grow
      const r = await trainHead(train, undefined, { optimizer, epochs: optimizer === 'adadelta' ? 150 : 100, batchSize: 8, standardize: true, seed: 1 });
      const acc = computeMetrics(predictions(predictHead(r.head, train.features), 3), train.labels, 3).accuracy;
      expect(acc, optimizer).toBe(1);
      expect(r.history.at(-1)!.trainLoss, optimizer).toBeLessThan(r.history[0]!.trainLoss);
    }
    const mlp = trainHeadSync(train, undefined, { hidden: 16, dropout: 0.2, schedule: 'step', stepSize: 10, epochs: 30, lr: 0.01, standardize: true });
    expect(mlp.head.kind).toBe('mlp');
    expect(mlp.history.map((h) => h.lr).slice(9, 11)).toEqual([0.01, 0.01 * 0.1]);
    expect(computeMetrics(predictions(predictHead(mlp.head, train.features), 3), train.labels, 3).accuracy).toBe(1);
  });

  it('stops early on validation loss and restores the best weights, folded standardisation included', () => {
    // Overlapping classes + a tiny train set: validation loss turns up while training loss falls.
    const all = blobs([25, 25], 30, 0.35, 5);
    const pick = (idx: number[]): FeatureSet => ({
      features: Float32Array.from(idx.flatMap((i) => Array.from(all.features.subarray(i * 30, i * 30 + 30)))),
      labels: Int32Array.from(idx.map((i) => all.labels[i]!)),
      dims: 30,
      classes: 2,
    });
    const idx = Array.from({ length: 50 }, (_, i) => i);
    const train = pick(idx.filter((i) => i % 5 < 2));
    const val = pick(idx.filter((i) => i % 5 >= 2));
    const r = trainHeadSync(train, val, { epochs: 300, patience: 5, lr: 0.05, weightDecay: 0, labelSmoothing: 0, schedule: 'constant' });
    expect(r.stoppedEarly).toBe(true);
    expect(r.history.length).toBe(r.bestEpoch + 5);
    const losses = r.history.map((h) => h.valLoss!);
    expect(losses[r.bestEpoch - 1]).toBe(Math.min(...losses));
    // The returned head (raw features, standardisation folded in) gives the best epoch's val loss.
    const p = predictHead(r.head, val.features);
    let ce = 0;
    val.labels.forEach((y, i) => (ce -= Math.log(p[i * 2 + y]!)));
    expect(ce / val.labels.length).toBeCloseTo(losses[r.bestEpoch - 1]!, 4);
  });

  it('is seeded: same seed, same head; other seed, other head; JSON round trip', () => {
    const train = blobs([20, 20], 6, 2, 2);
    const a = trainHeadSync(train, undefined, { hidden: 8, dropout: 0.3, epochs: 5, seed: 9 });
    const b = trainHeadSync(train, undefined, { hidden: 8, dropout: 0.3, epochs: 5, seed: 9 });
    const c = trainHeadSync(train, undefined, { hidden: 8, dropout: 0.3, epochs: 5, seed: 10 });
    expect(a.head.layers[0]!.weight).toEqual(b.head.layers[0]!.weight);
    expect(a.head.layers[0]!.weight).not.toEqual(c.head.layers[0]!.weight);
    const back = headFromJSON(JSON.parse(JSON.stringify(headToJSON(a.head))));
    expect(predictHead(back, train.features)).toEqual(predictHead(a.head, train.features));
  });

  it('prototype head = nearest mean of L2-normalised embeddings', () => {
    const train = blobs([5, 3, 4], 6, 1.5, 4);
    const test = blobs([10, 10, 10], 6, 1.5, 4);
    const head = prototypeHead(train);
    const norm = (v: number[]) => {
      const s = Math.hypot(...v);
      return v.map((x) => x / s);
    };
    const rows = (s: FeatureSet) => Array.from(s.labels, (_, i) => norm(Array.from(s.features.subarray(i * 6, i * 6 + 6))));
    const tr = rows(train);
    const means = [0, 1, 2].map((c) => {
      const mine = tr.filter((_, i) => train.labels[i] === c);
      return mine[0]!.map((_, j) => mine.reduce((s, r) => s + r[j]!, 0) / mine.length);
    });
    const expected = rows(test).map((x) => {
      const dist = means.map((m) => m.reduce((s, v, j) => s + (v - x[j]!) ** 2, 0));
      return dist.indexOf(Math.min(...dist));
    });
    expect(Array.from(predictions(predictHead(head, test.features), 3))).toEqual(expected);
  });

  it('stops when its AbortSignal fires, reporting each finished epoch', async () => {
    const train = blobs([20, 20], 4, 2, 6);
    const ac = new AbortController();
    const seen: number[] = [];
    const run = trainHead(train, undefined, { epochs: 50 }, {
      signal: ac.signal,
      onEpoch: (s) => {
        seen.push(s.epoch);
        if (s.epoch === 3) ac.abort(new Error('stop now'));
      },
    });
    await expect(run).rejects.toThrow('stop now');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('rejects bad configuration with clear messages', () => {
    expect(() => resolveConfig({ optimizer: 'lbfgs' as never })).toThrow('Expected one of sgd, momentum, adagrad, adadelta, rmsprop, adam for optimizer but received "lbfgs"');
    expect(() => resolveConfig({ epochs: 0 })).toThrow('Expected positive integer for epochs but received 0');
    expect(() => resolveConfig({ dropout: 1 })).toThrow('for dropout but received 1');
    const set = blobs([3, 3], 2, 1, 1);
    expect(() => trainHeadSync({ ...set, labels: Int32Array.from([0, 0, 0, 1, 1, 5]) }, undefined)).toThrow('for train label 5');
  });
});
