// Head-only training on fixed embeddings, and the train/ barrel. BROWSER-SAFE (no Node APIs): the
// library's finetune() and the browser kiosk both import this module.
//
// API
//   trainHead(train, val, config?, hooks?) → Promise<TrainResult>   (yields to the event loop between epochs)
//   trainHeadSync(train, val, config?, hooks?) → TrainResult        (same maths, blocking)
//     train / val: FeatureSet {features: Float32Array n×dims row-major, labels: Int32Array, dims, classes,
//     targets?: Float32Array n×classes for multilabel (0/1) and regression (values)};
//     val may be undefined (then all epochs run and the last weights are kept).
//     config: Partial<TrainConfig> — task (classification = softmax + cross-entropy | multilabel =
//       sigmoid + binary cross-entropy per label | regression = linear + MSE on per-output standardised
//       targets, de-standardised into the last layer), hidden (0 = linear, 128 = one hidden layer,
//       [256, 64] = several, each ReLU + dropout), dropout, optimizer
//       (sgd | momentum | adagrad | adadelta | rmsprop | adam), lr, weightDecay (L2), l1, labelSmoothing,
//       epochs, batchSize, schedule (constant | cosine | step, stepSize, gamma), patience (early stopping on
//       validation loss, restoring the best weights), seed, classWeights (balanced | none | number[]),
//       standardize (per-dimension, folded into the head), normalize (L2 per row, exported as
//       LpNormalization), init. resolveConfig() fills the defaults (DEFAULT_CONFIG: linear, adam 0.001,
//       batch 32, 60 epochs, cosine, patience 10, weight decay 1e-4, no smoothing, balanced weights,
//       raw features) and throws "Expected … for <field> but received …" on a bad value.
//     hooks: {onEpoch(stats), signal: AbortSignal} — an aborted signal rejects with signal.reason.
//     TrainResult {head: HeadWeights, history: EpochStats[], bestEpoch, stoppedEarly, config, ms}.
//   predictHead(head, features, n) → Float32Array n×classes: softmax probabilities (classification),
//     sigmoid probabilities per label (multilabel) or values (regression).
//   headLogits(head, features, n) → Float32Array n×classes logits.
//   prototypeHead(train, {temperature}) → HeadWeights: nearest class mean of L2-normalised embeddings,
//     as a linear layer on the normalised embedding (argmax = nearest mean).
//   lossAndGradient(...) — the objective and its gradient, exported for tests.
//   learningRate(cfg, epoch), classWeightsOf(cfg, labels, classes), l2rows(features, dims) — helpers.
//   computeMetrics / predictions / headToJSON / headFromJSON re-exported; multilabelMetrics /
//   regressionMetrics and the task losses from tasks.ts.
// Beside it: config.ts (DEFAULT_CONFIG, resolveConfig and the checks, the schedule, class weights),
// heads.ts (headLogits, predictHead, prototypeHead and l2rows, the one L2 normalisation), tasks.ts (the
// per-task losses and penalties). This file is the trainer: the forward / backward passes, their float64
// scratch and the epoch loop share private structures.
// HeadWeights is what export.ts turns into ONNX nodes (Gemm / Relu / … / Gemm, then Softmax, Sigmoid or nothing).

import { EdgetuneError } from '../core/errors.js';
import { checkDiverged } from './diverge.js';
import { createOptimizer } from './optim.js';
import { addPenalty, rowHit, rowLoss, rowWeight, scoreOf, standardizeTargets, targetStats, type Objective } from './tasks.js';
import { createRng, type Rng } from '../core/rng.js';
import { bad, checkSet, classWeightsOf, hiddenSizes, learningRate, resolveConfig } from './config.js';
import { l2rows } from './heads.js';
import type {
  DenseLayer,
  EpochStats,
  FeatureSet,
  HeadWeights,
  TrainConfig,
  TrainHooks,
  TrainResult,
  TrainTask,
} from './types.js';

export * from './types.js';
export { computeMetrics, predictions, argmax, type Metrics, type ClassMetrics } from './metrics.js';
export { createRng, hashString, type Rng } from '../core/rng.js';
export { DEFAULT_LR } from './optim.js';
export { TASKS, sigmoid, multilabelMetrics, regressionMetrics, type MultilabelMetrics, type RegressionMetrics, type LabelMetrics, type OutputMetrics } from './tasks.js';
export { checkDiverged, FLOAT32_MAX } from './diverge.js';
export { DEFAULT_CONFIG, resolveConfig, hiddenSizes, learningRate, classWeightsOf } from './config.js';
export { l2rows, headLogits, predictHead, prototypeHead } from './heads.js';

interface Params {
  /** Per layer: weight (out×in) and bias, float64 while training. */
  W: Float64Array[];
  b: Float64Array[];
  sizes: number[]; // [dims, hidden?, classes]
}

function initParams(sizes: number[], init: TrainConfig['init'], rng: Rng): Params {
  const W: Float64Array[] = [];
  const b: Float64Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fin = sizes[l]!;
    const fout = sizes[l + 1]!;
    const w = new Float64Array(fin * fout);
    if (init === 'glorot') {
      const a = Math.sqrt(6 / (fin + fout));
      for (let i = 0; i < w.length; i++) w[i] = rng.uniform(-a, a);
    }
    W.push(w);
    b.push(new Float64Array(fout));
  }
  return { W, b, sizes };
}

function cloneParams(p: Params): Params {
  return { W: p.W.map((w) => w.slice()), b: p.b.map((b) => b.slice()), sizes: p.sizes };
}

interface Scratch {
  acts: Float64Array[]; // activations per layer input: acts[0] = x (after dropout for linear), acts[1] = hidden ...
  masks: (Float64Array | undefined)[];
  z: Float64Array;
  dz: Float64Array;
  da: Float64Array[];
}

function scratch(sizes: number[]): Scratch {
  return {
    acts: sizes.slice(0, -1).map((s) => new Float64Array(s)),
    masks: sizes.slice(0, -1).map(() => undefined),
    z: new Float64Array(sizes[sizes.length - 1]!),
    dz: new Float64Array(sizes[sizes.length - 1]!),
    da: sizes.slice(0, -1).map((s) => new Float64Array(s)),
  };
}

/**
 * Forward one example (x already standardised) into s.z (logits). `dropout` > 0 with an rng applies
 * inverted dropout to the input of every layer after a hidden one (each hidden layer's output), or to
 * the embedding of a linear head.
 */
function forward(p: Params, x: Float32Array | Float64Array, xOff: number, s: Scratch, dropout: number, rng?: Rng): void {
  const L = p.W.length;
  const a0 = s.acts[0]!;
  for (let i = 0; i < a0.length; i++) a0[i] = x[xOff + i]!;
  for (let l = 0; l < L; l++) {
    const ain = s.acts[l]!;
    if ((l > 0 || L === 1) && dropout > 0 && rng) {
      const keep = 1 - dropout;
      const m = (s.masks[l] ??= new Float64Array(ain.length));
      for (let i = 0; i < ain.length; i++) {
        m[i] = rng.next() < keep ? 1 / keep : 0;
        ain[i]! *= m[i]!;
      }
    } else {
      s.masks[l] = undefined;
    }
    const fin = p.sizes[l]!;
    const fout = p.sizes[l + 1]!;
    const W = p.W[l]!;
    const B = p.b[l]!;
    const out = l === L - 1 ? s.z : s.acts[l + 1]!;
    for (let o = 0; o < fout; o++) {
      let acc = B[o]!;
      const row = o * fin;
      for (let i = 0; i < fin; i++) acc += W[row + i]! * ain[i]!;
      out[o] = l === L - 1 ? acc : acc > 0 ? acc : 0; // ReLU between layers
    }
  }
}

/** The largest magnitude among the hidden activations and logits of the last forward() (NaN → Infinity). */
function peakOf(s: Scratch): number {
  let m = 0;
  for (let l = 1; l < s.acts.length; l++) for (const v of s.acts[l]!) if (!(Math.abs(v) <= m)) m = Number.isNaN(v) ? Infinity : Math.abs(v);
  for (const v of s.z) if (!(Math.abs(v) <= m)) m = Number.isNaN(v) ? Infinity : Math.abs(v);
  return m;
}

/** Accumulate gradients of one example given dz (dLoss/dlogits, already weighted). */
function backward(p: Params, s: Scratch, gW: Float64Array[], gb: Float64Array[]): void {
  const L = p.W.length;
  let dout = s.dz;
  for (let l = L - 1; l >= 0; l--) {
    const fin = p.sizes[l]!;
    const fout = p.sizes[l + 1]!;
    const ain = s.acts[l]!;
    const W = p.W[l]!;
    const gw = gW[l]!;
    const g = gb[l]!;
    for (let o = 0; o < fout; o++) {
      const d = dout[o]!;
      if (d === 0) continue;
      g[o]! += d;
      const row = o * fin;
      for (let i = 0; i < fin; i++) gw[row + i]! += d * ain[i]!;
    }
    if (l === 0) break;
    const da = s.da[l]!;
    da.fill(0);
    for (let o = 0; o < fout; o++) {
      const d = dout[o]!;
      if (d === 0) continue;
      const row = o * fin;
      for (let i = 0; i < fin; i++) da[i]! += d * W[row + i]!;
    }
    const m = s.masks[l];
    for (let i = 0; i < fin; i++) {
      // through dropout (the stored activation is post-mask) and the ReLU that produced it
      if (ain[i]! <= 0) da[i] = 0;
      else if (m) da[i]! *= m[i]!;
    }
    dout = da;
  }
}


function standardizer(train: FeatureSet, n: number): { mean: Float64Array; scale: Float64Array } {
  const d = train.dims;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  const f = train.features;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += f[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      const v = f[i * d + j]! - mean[j]!;
      sq[j]! += v * v;
    }
  const scale = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const sd = Math.sqrt(sq[j]! / n);
    scale[j] = sd > 1e-6 ? 1 / sd : 1; // constant features (e.g. dead ReLUs) stay as they are
  }
  return { mean, scale };
}

function applyStd(f: Float32Array, d: number, st?: { mean: Float64Array; scale: Float64Array }): Float32Array {
  if (!st) return f;
  const out = new Float32Array(f.length);
  for (let i = 0; i < f.length; i += d) for (let j = 0; j < d; j++) out[i + j] = (f[i + j]! - st.mean[j]!) * st.scale[j]!;
  return out;
}

/**
 * The training objective on a set of rows and its gradient (exported for tests), without dropout:
 * the mean over `rows` of the task's loss — classification: label-smoothed cross-entropy weighted by
 * `classWeights` (labels); multilabel: binary cross-entropy per label, averaged over labels (targets
 * 0/1, [n, K]); regression: squared error averaged over outputs (targets [n, K] taken as they are:
 * the trainer standardises them first) — plus (λ₂/2)·Σ‖W‖² (`weightDecay`) + λ₁·Σ|W| (`l1`, subgradient
 * sign(w), 0 at 0). `correct`: rows right (argmax = label, or every label decision right).
 */
export function lossAndGradient(
  params: { W: Float64Array[]; b: Float64Array[]; sizes: number[] },
  x: Float32Array,
  labels: Int32Array,
  rows: ArrayLike<number>,
  opts: { classWeights?: Float64Array; labelSmoothing?: number; weightDecay: number; l1?: number; task?: TrainTask; targets?: ArrayLike<number> },
): { loss: number; gW: Float64Array[]; gb: Float64Array[]; correct: number } {
  const p = params as Params;
  const K = p.sizes[p.sizes.length - 1]!;
  const d = p.sizes[0]!;
  const s = scratch(p.sizes);
  const probs = new Float64Array(K);
  const gW = p.W.map((w) => new Float64Array(w.length));
  const gb = p.b.map((b) => new Float64Array(b.length));
  const o: Objective = { task: opts.task ?? 'classification', labels, targets: opts.targets, K, classWeights: opts.classWeights, eps: opts.labelSmoothing ?? 0 };
  let wsum = 0;
  for (let r = 0; r < rows.length; r++) wsum += rowWeight(o, rows[r]!);
  if (wsum === 0) wsum = 1;
  let loss = 0;
  let correct = 0;
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r]!;
    forward(p, x, i * d, s, 0);
    const w = rowWeight(o, i) / wsum;
    const li = rowLoss(o, s, probs, i, w);
    if (rowHit(o, s.z, i)) correct++;
    loss += w * li;
    backward(p, s, gW, gb);
  }
  loss += addPenalty(p.W, gW, opts.weightDecay, opts.l1 ?? 0);
  return { loss, gW, gb, correct };
}

/** Unweighted, unsmoothed mean loss and the accuracy-like score of a whole set. */
function evalSet(p: Params, x: Float32Array, o: Objective, n: number): { loss: number; accuracy: number } {
  const d = p.sizes[0]!;
  const s = scratch(p.sizes);
  const probs = new Float64Array(o.K);
  const plain: Objective = { ...o, eps: 0 };
  let loss = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    forward(p, x, i * d, s, 0);
    loss += rowLoss(plain, s, probs, i, 1);
    if (rowHit(plain, s.z, i)) hits++;
  }
  const mean = loss / Math.max(1, n);
  return { loss: mean, accuracy: scoreOf(o, mean, hits, n) };
}

/**
 * Fold the feature standardisation into the first layer (and, for regression, the target
 * de-standardisation y = σ·z + μ into the last) and convert to float32 HeadWeights.
 */
function toHead(
  p: Params,
  st: { mean: Float64Array; scale: Float64Array } | undefined,
  kind: HeadWeights['kind'],
  out?: { mean: Float64Array; std: Float64Array },
): HeadWeights {
  const L = p.W.length;
  const layers: DenseLayer[] = p.W.map((W, l) => {
    const fin = p.sizes[l]!;
    const fout = p.sizes[l + 1]!;
    const w = new Float32Array(W.length);
    const b = new Float32Array(fout);
    for (let o = 0; o < fout; o++) {
      const sd = l === L - 1 && out ? out.std[o]! : 1;
      let bias = p.b[l]![o]!;
      for (let i = 0; i < fin; i++) {
        let wi = W[o * fin + i]!;
        if (l === 0 && st) {
          // W·((x − μ)·s) + b = (W·s)·x + (b − Σ W·s·μ)
          wi *= st.scale[i]!;
          bias -= wi * st.mean[i]!;
        }
        w[o * fin + i] = wi * sd;
      }
      b[o] = l === L - 1 && out ? bias * sd + out.mean[o]! : bias;
    }
    return { in: fin, out: fout, weight: w, bias: b };
  });
  return { format: 'edgetune.head', version: 1, kind, dims: p.sizes[0]!, classes: p.sizes[p.sizes.length - 1]!, normalize: false, layers };
}

function* epochsOf(
  train: FeatureSet,
  val: FeatureSet | undefined,
  config: Partial<TrainConfig>,
  hooks: TrainHooks,
  done: (r: TrainResult) => void,
  fn: string,
): Generator<void> {
  const t0 = now();
  const cfg = resolveConfig(config, fn);
  const task = cfg.task;
  const n = checkSet('train', train, task);
  if (n === 0) throw new EdgetuneError('EINPUT', 'no training examples');
  const nv = val ? checkSet('val', val, task) : 0;
  if (val && (val.dims !== train.dims || val.classes !== train.classes)) throw bad('val dims/classes', `${train.dims}/${train.classes} like train`, [val.dims, val.classes]);
  const d = train.dims;
  const K = train.classes;
  const tf = cfg.normalize ? l2rows(train.features, d) : train.features;
  const st = cfg.standardize ? standardizer({ ...train, features: tf }, n) : undefined;
  const x = applyStd(tf, d, st);
  const xv = val && nv ? applyStd(cfg.normalize ? l2rows(val.features, d) : val.features, d, st) : undefined;
  // regression trains on targets standardised per output by the training set's statistics
  const ts = task === 'regression' ? targetStats(train.targets!, K) : undefined;
  const tgt = (s: FeatureSet) => (ts ? standardizeTargets(s.targets!, ts) : s.targets);
  const rng = createRng(cfg.seed, 'train');
  const hidden = hiddenSizes(cfg);
  const sizes = [d, ...hidden, K];
  let p = initParams(sizes, cfg.init, rng);
  const opt = createOptimizer(cfg.optimizer, { momentum: cfg.momentum });
  const obj: Objective = {
    task,
    labels: train.labels,
    targets: tgt(train),
    K,
    classWeights: task === 'classification' ? classWeightsOf(cfg, train.labels, K) : undefined,
    eps: task === 'classification' ? cfg.labelSmoothing : 0,
  };
  const vobj: Objective | undefined = val && xv ? { task, labels: val.labels, targets: tgt(val), K, eps: 0 } : undefined;
  const bs = cfg.batchSize <= 0 || cfg.batchSize >= n ? n : cfg.batchSize;
  const order = new Int32Array(n).map((_, i) => i);
  const history: EpochStats[] = [];
  let best: Params = cloneParams(p);
  let bestLoss = Infinity;
  let bestEpoch = 0;
  let sinceBest = 0;
  let stoppedEarly = false;
  const s = scratch(sizes);
  const probs = new Float64Array(K);
  const gW = p.W.map((w) => new Float64Array(w.length));
  const gb = p.b.map((b) => new Float64Array(b.length));
  let lastYield = now();
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    hooks.signal?.throwIfAborted();
    const te = now();
    const lr = learningRate(cfg, epoch);
    if (bs < n) rng.shuffle(order);
    let lossSum = 0;
    let correct = 0;
    let peak = 0;
    for (let start = 0; start < n; start += bs) {
      const end = Math.min(n, start + bs);
      for (const g of gW) g.fill(0);
      for (const g of gb) g.fill(0);
      let wsum = 0;
      for (let r = start; r < end; r++) wsum += rowWeight(obj, order[r]!);
      if (wsum === 0) wsum = 1;
      for (let r = start; r < end; r++) {
        const i = order[r]!;
        forward(p, x, i * d, s, cfg.dropout, rng);
        peak = Math.max(peak, peakOf(s));
        lossSum += rowLoss(obj, s, probs, i, rowWeight(obj, i) / wsum);
        if (rowHit(obj, s.z, i)) correct++;
        backward(p, s, gW, gb);
      }
      addPenalty(p.W, gW, cfg.weightDecay, cfg.l1);
      for (let l = 0; l < p.W.length; l++) {
        opt.step(2 * l, p.W[l]!, gW[l]!, lr);
        opt.step(2 * l + 1, p.b[l]!, gb[l]!, lr);
      }
      // a long epoch yields every ~200 ms too, so that trainHead stays responsive and Ctrl-C (the signal) stops it within the epoch
      if (now() - lastYield > 200) {
        yield;
        lastYield = now();
        hooks.signal?.throwIfAborted();
      }
    }
    const stats: EpochStats = { epoch: epoch + 1, lr, trainLoss: lossSum / n, trainAccuracy: scoreOf(obj, lossSum / n, correct, n), ms: 0 };
    checkDiverged(epoch + 1, stats.trainLoss, p, cfg.lr, peak);
    if (xv && vobj) {
      const ev = evalSet(p, xv, vobj, nv);
      stats.valLoss = ev.loss;
      stats.valAccuracy = ev.accuracy;
      if (ev.loss < bestLoss - cfg.minDelta) {
        bestLoss = ev.loss;
        best = cloneParams(p);
        bestEpoch = epoch + 1;
        sinceBest = 0;
      } else {
        sinceBest++;
      }
    } else {
      bestEpoch = epoch + 1;
    }
    stats.ms = now() - te;
    history.push(stats);
    hooks.onEpoch?.(stats);
    if (xv && cfg.patience > 0 && sinceBest >= cfg.patience) {
      stoppedEarly = epoch + 1 < cfg.epochs;
      break;
    }
    yield;
  }
  if (xv) p = best;
  // the kept weights on every training row: a logit past float32 would make the exported scores NaN
  {
    let peak = 0;
    for (let i = 0; i < n; i++) {
      forward(p, x, i * d, s, 0);
      peak = Math.max(peak, peakOf(s));
    }
    checkDiverged(bestEpoch || history.length, 0, p, cfg.lr, peak);
  }
  const head = toHead(p, st, hidden.length > 0 ? 'mlp' : 'linear', ts);
  head.normalize = cfg.normalize;
  if (task !== 'classification') head.task = task;
  done({ head, history, bestEpoch, stoppedEarly, config: cfg, ms: now() - t0 });
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/** Train a head; blocks until done. */
export function trainHeadSync(train: FeatureSet, val: FeatureSet | undefined, config: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): TrainResult {
  let result: TrainResult | undefined;
  for (const _ of epochsOf(train, val, config, hooks, (r) => (result = r), 'trainHeadSync')) void _;
  return result!;
}

/** Train a head, yielding to the event loop after every epoch (keeps a page or a CLI responsive). */
export async function trainHead(train: FeatureSet, val: FeatureSet | undefined, config: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  let result: TrainResult | undefined;
  for (const _ of epochsOf(train, val, config, hooks, (r) => (result = r), 'trainHead')) {
    void _;
    await new Promise<void>((r) => setTimeout(r, 0));
  }
  return result!;
}

// Partial fine-tuning (backbone tail + head) through generated ONNX training graphs.
export * from './graph/index.js';
