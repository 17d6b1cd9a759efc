// Mini-batch fine-tuning of a backbone tail + dense head on cut activations, through ONNX
// training graphs (autodiff.ts) run by an injected session factory (any ONNX Runtime backend). The
// activations are held in memory (TailData) or produced a mini-batch at a time (TailStream: phase 2's
// rows, so that its memory does not grow with the images).
// Optimizer state lives in runtime/train/optim.ts's optimizers (Float64 master weights, one slot per
// tensor); backbone and head get separate learning rates; L2 weight decay on weights (rank ≥ 2, not
// biases); seeded shuffling and dropout masks (runtime/core/rng.ts); early stopping on validation
// loss with the best weights restored; exportTail() writes the tuned weights back into the backbone.
// Browser-safe: no Node APIs, no onnxruntime import.

import { checkOneOf, EdgetuneError, invalidParameter, numberRangeText } from '../../core/errors.js';
import { checkOptionKeys, type AssertNever } from '../../core/options.js';
import { DataType, getInitializer, makeTensor, readFloat32, setInitializer } from '../../onnx/graph.js';
import { cloneModel, encodeModel, type OnnxModel } from '../../onnx/model.js';
import { concatFloat32, type TensorData } from '../../core/tensor.js';
import { checkDiverged } from '../diverge.js';
import { argmax, rowCrossEntropy } from '../metrics.js';
import { createOptimizer, DEFAULT_LR } from '../optim.js';
import { createRng, type Rng } from '../../core/rng.js';
import type { DenseLayer, HeadWeights, OptimizerName } from '../types.js';
import { buildTrainingGraph, defaultTrainable, type TrainingGraph } from './autodiff.js';
import { tailBlocks } from './cut.js';
import type { GraphSession, SessionFactory } from './session.js';

export interface TailTrainConfig {
  /** Default 10. */
  epochs: number;
  /** Mini-batch size; ≥ n = full batch. Default 32. */
  batchSize: number;
  /** Learning-rate schedule over epochs, for both rates (scheduleFactor): constant, cosine from the rate to 0 (as the head trainer), or warmup-cosine. Default constant. */
  schedule: TailSchedule;
  /** Default adam. */
  optimizer: OptimizerName;
  /** Head learning rate. Default DEFAULT_LR[optimizer] (adam 0.001). */
  lrHead: number;
  /** Backbone (tail) learning rate (of the block nearest the embedding; see layerLrDecay). Default lrHead / 100. */
  lrBackbone: number;
  /**
   * Learning rate of the trainable conv biases whose conv weight is frozen (BitFit's biases of the frozen
   * blocks: planUnfreeze's `biases`; layerLrDecay does not apply to them). Default lrHead: measured on beans
   * folds, the backbone rate (lrHead / 10 there) moved them by at most 0.004 (README "--unfreeze").
   */
  lrBiases: number;
  /**
   * Discriminative (layer-wise) learning rates: the tail's block k (1 = nearest the embedding, as
   * tailBlocks counts) trains at lrBackbone × layerLrDecay^(k−1) (layerRates). 1 = one rate for the whole
   * tail. Source: Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text Classification"
   * (ULMFiT), ACL, §3.2 (they divide by 2.6 per layer). Default 1.
   */
  layerLrDecay: number;
  /**
   * Weight averaging over the epochs: `none` (the weights after the last step), or `swa`, stochastic
   * weight averaging: the running mean of the weights at the end of every epoch from the first, which is
   * then what validation scores, early stopping keeps and the run returns (swaAverage). Batch
   * normalisation is folded in the tail, so the average needs no statistics update. Source: Izmailov et
   * al. 2018, "Averaging Weights Leads to Wider Optima and Better Generalization", UAI (constant rate,
   * one model per epoch). Default none.
   */
  average: TailAverage;
  /**
   * Mixup of the tail's inputs (the cut activations: manifold mixup at the cut, Verma et al. 2019, "Manifold
   * Mixup", ICML; Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization", ICLR): each training batch
   * is mixed with a seeded permutation of itself, x = λ·x_i + (1−λ)·x_j, targets λ·y_i + (1−λ)·y_j (label
   * smoothing on top), λ ~ Beta(mixup, mixup) once per batch (betaSample). 0 = off. Default 0.
   */
  mixup: number;
  /** Momentum for `momentum`. Default 0.9. */
  momentum: number;
  /** L2 penalty (λ/2)·‖W‖² on weights (rank ≥ 2), not biases; added to the gradient. Default 1e-4. */
  weightDecay: number;
  /** Dropout probability on the head's last layer input (inverted dropout, seeded masks). Default 0. */
  dropout: number;
  labelSmoothing: number;
  /** As the head trainer: `balanced` (n / (K·n_c)), `none`, or one weight per class. Default none. */
  classWeights: 'balanced' | 'none' | number[];
  /** Epochs without a validation-loss improvement (> minDelta) before stopping; 0 = never. Default 0. */
  patience: number;
  minDelta: number;
  seed: number;
  /** false: train the head only (the tail runs frozen in the same graph). Default true. */
  trainBackbone: boolean;
  /** Tail weights to train (default: every Conv/Gemm/MatMul weight and bias of the tail). */
  trainable?: string[];
}

export const DEFAULT_TAIL_CONFIG: Omit<TailTrainConfig, 'lrHead' | 'lrBackbone' | 'lrBiases'> = {
  epochs: 10,
  batchSize: 32,
  schedule: 'constant',
  layerLrDecay: 1,
  average: 'none',
  mixup: 0,
  optimizer: 'adam',
  momentum: 0.9,
  weightDecay: 1e-4,
  dropout: 0,
  labelSmoothing: 0,
  classWeights: 'none',
  patience: 0,
  minDelta: 1e-4,
  seed: 0,
  trainBackbone: true,
};

/** The weight averagings over the epochs (TailTrainConfig.average). */
export const TAIL_AVERAGES = ['none', 'swa'] as const;
export type TailAverage = (typeof TAIL_AVERAGES)[number];

/**
 * One step of the SWA running mean: avg ← avg + (w − avg)/(count + 1), in place, for the (count+1)-th
 * model (count = models already averaged; count 0 copies w). Izmailov et al. 2018, Algorithm 1.
 */
export function swaAverage(avg: Float64Array, w: ArrayLike<number>, count: number): Float64Array {
  if (avg.length !== w.length) throw new EdgetuneError('EARG', `swaAverage: ${avg.length} values averaged with ${w.length}`);
  const f = 1 / (count + 1);
  for (let i = 0; i < avg.length; i++) avg[i] = avg[i]! + (w[i]! - avg[i]!) * f;
  return avg;
}

/**
 * A Beta(a, a) sample from `rng`: X/(X+Y) with X, Y ~ Gamma(a), by Marsaglia & Tsang 2000 ("A simple
 * method for generating gamma variables", ACM TOMS 26(3)), with the boost Gamma(a) = Gamma(a+1)·U^(1/a)
 * for a < 1. Throws EARG for a ≤ 0.
 */
export function betaSample(rng: Rng, a: number): number {
  if (!(a > 0)) throw invalidParameter('mixup', 'a positive number', a);
  const gamma = (k: number): number => {
    if (k < 1) return gamma(k + 1) * Math.max(rng.next(), 1e-300) ** (1 / k);
    const d = k - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = rng.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = rng.next();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(Math.max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  };
  const x = gamma(a);
  const y = gamma(a);
  return x + y > 0 ? x / (x + y) : 0.5;
}

/**
 * Mix a batch (TailTrainConfig.mixup; Zhang et al. 2018): new rows lam·x[r] + (1 − lam)·x[perm[r]] of the input
 * (`x` is left as it is) and the soft targets [b, K] of their labels the same way.
 */
export function mixBatch(x: Float32Array, labels: ArrayLike<number>, K: number, perm: readonly number[], lam: number): { x: Float32Array; targets: Float32Array } {
  const b = perm.length;
  const size = x.length / b;
  const out = new Float32Array(x.length);
  const targets = new Float32Array(b * K);
  for (let r = 0; r < b; r++) {
    const j = perm[r]!;
    for (let i = 0; i < size; i++) out[r * size + i] = lam * x[r * size + i]! + (1 - lam) * x[j * size + i]!;
    targets[r * K + labels[r]!]! += lam;
    targets[r * K + labels[j]!]! += 1 - lam;
  }
  return { x: out, targets };
}

/** A learning-rate schedule over the epochs (scheduleFactor). */
export type TailSchedule = 'constant' | 'cosine' | 'warmup-cosine';

/**
 * The factor on both learning rates at step `step` (0-based, within the epoch) of epoch `epoch`
 * (0-based) of `epochs`, `steps` steps an epoch:
 *   - constant: 1;
 *   - cosine: ½(1 + cos(π·epoch/epochs)), per epoch from 1 (as the head trainer);
 *   - warmup-cosine: a linear warm-up over the first epoch, (step + 1)/steps, then the cosine over the
 *     remaining epochs, ½(1 + cos(π·(epoch − 1)/(epochs − 1))) from 1 at epoch 2 (one epoch: the warm-up only).
 * Warm-up: Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (gradual
 * warm-up), with cosine: Loshchilov & Hutter 2017, "SGDR" (ICLR). Throws EARG for another name.
 */
export function scheduleFactor(schedule: TailSchedule, epoch: number, epochs: number, step = 0, steps = 1): number {
  if (schedule === 'constant') return 1;
  if (schedule === 'cosine') return 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs));
  if (schedule === 'warmup-cosine') {
    if (epoch === 0) return (step + 1) / Math.max(1, steps);
    return 0.5 * (1 + Math.cos((Math.PI * (epoch - 1)) / Math.max(1, epochs - 1)));
  }
  throw invalidParameter('schedule', 'constant, cosine or warmup-cosine', schedule);
}

/**
 * Each trainable tail weight's learning-rate multiplier under layer-wise decay (TailTrainConfig.layerLrDecay):
 * decay^(k−1) for a weight of block k, the blocks counted from the embedding as tailBlocks(tail) counts
 * them (block 1 = what `--unfreeze 1` trains); a weight outside every block (none in practice) takes the
 * deepest block's. decay 1: every multiplier 1. Throws EARG for decay outside (0, 1].
 */
export function layerRates(tail: OnnxModel, trainable: readonly string[], decay: number): Map<string, number> {
  if (!(decay > 0 && decay <= 1)) throw invalidParameter('layerLrDecay', numberRangeText(0, 1, true), decay);
  const out = new Map(trainable.map((w) => [w, 1]));
  if (decay === 1 || trainable.length === 0) return out;
  const embedding = tail.graph.output[0]?.name ?? '';
  const points = tailBlocks(tail, embedding);
  for (const w of trainable) {
    const k = points.findIndex((p) => p.weights.includes(w));
    out.set(w, decay ** (k < 0 ? Math.max(0, points.length - 1) : k));
  }
  return out;
}

/** Cut activations held in memory: `n` rows of `x` ([n, ...inputShape.slice(1)] row-major) and labels. */
export interface TailData {
  x: Float32Array;
  labels: Int32Array;
}

/**
 * Cut activations produced on demand, a mini-batch at a time (phase 2 streams its rows this way: what is
 * alive is a batch, whatever the row count). `labels` gives the row count n; `read(rows)` resolves to
 * those rows (indices in 0..n-1, in that order, repeats allowed) back to back: rows.length × the row
 * size floats ([rows.length, ...inputShape.slice(1)] row-major). A row must read the same every time.
 */
export interface TailStream {
  labels: Int32Array;
  read(rows: readonly number[]): Promise<Float32Array>;
}

/** Training or validation rows: in memory, or streamed. */
export type TailRows = TailData | TailStream;

/**
 * Rows `rows` of `data` back to back (`size` floats each): copied from TailData's `x`, or read from a
 * TailStream. Throws EARG when a stream gives another number of values (`what` names the data).
 */
export async function readRows(data: TailRows, rows: readonly number[], size: number, what = 'rows'): Promise<Float32Array> {
  if ('read' in data) {
    const x = await data.read(rows);
    if (x.length !== rows.length * size) throw new EdgetuneError('EARG', `${what}: a read of ${rows.length} rows gave ${x.length} values, expected ${rows.length} × ${size}`);
    return x;
  }
  const x = new Float32Array(rows.length * size);
  for (let r = 0; r < rows.length; r++) x.set(data.x.subarray(rows[r]! * size, (rows[r]! + 1) * size), r * size);
  return x;
}

export interface TailEpochStats {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  /** Wall time of the epoch (training steps + validation; a TailStream's reads included). */
  ms: number;
  /** Time inside the training session's run() this epoch. */
  runMs: number;
  /** Time of the validation pass (eval graph), when there is one. */
  valMs?: number;
}

export interface TailTrainResult {
  /** Tuned tail weights (best epoch when validating), by initializer name. */
  tailWeights: Record<string, Float32Array>;
  head: HeadWeights;
  history: TailEpochStats[];
  bestEpoch: number;
  stoppedEarly: boolean;
  config: TailTrainConfig;
  ms: number;
}

export interface TailTrainInput {
  /** cutModel().tail: cut activation → [N, D] embedding. BN folded (buildTrainingGraph folds too). */
  tail: OnnxModel;
  /** Initial head (e.g. from trainHead on pooled features); default a seeded Glorot linear head. */
  head?: HeadWeights | readonly DenseLayer[];
  classes: number;
  /** In memory or streamed (TailStream: each batch read when its step runs). */
  train: TailRows;
  val?: TailRows;
  createSession: SessionFactory;
  /**
   * Fresh training rows for epoch `epoch` (2, 3, …; epoch 1 trains on `train`): e.g. the same images'
   * newly augmented views. Same row count, labels and row shape as `train`. Default: `train` every epoch.
   */
  refresh?(epoch: number): Promise<TailRows>;
}

/** Every key of TailTrainInput and of TailTrainConfig, for refusing a misspelt one (trainTail, trainUnfrozen). The types below fail to compile when a key is missing. */
export const TAIL_INPUT_KEYS = ['tail', 'head', 'classes', 'train', 'val', 'createSession', 'refresh'] as const satisfies readonly (keyof TailTrainInput)[];
export const TAIL_CONFIG_KEYS = [
  'epochs', 'batchSize', 'schedule', 'optimizer', 'lrHead', 'lrBackbone', 'lrBiases', 'layerLrDecay', 'average', 'mixup', 'momentum', 'weightDecay', 'dropout',
  'labelSmoothing', 'classWeights', 'patience', 'minDelta', 'seed', 'trainBackbone', 'trainable',
] as const satisfies readonly (keyof TailTrainConfig)[];
/** The keys of trainTail's hooks. */
export const TAIL_HOOK_KEYS = ['onEpoch', 'signal'] as const;
/** `never` while the key lists above list every key (a compile error names a missing one). */
export type UnlistedTailKey = AssertNever<Exclude<keyof TailTrainInput, (typeof TAIL_INPUT_KEYS)[number]> | Exclude<keyof TailTrainConfig, (typeof TAIL_CONFIG_KEYS)[number]>>;

/** Per-class loss weights, as the head trainer's classWeightsOf (runtime/train/index.ts). */
function classWeightsOf(spec: TailTrainConfig['classWeights'], labels: Int32Array, K: number): Float64Array {
  const w = new Float64Array(K).fill(1);
  if (Array.isArray(spec)) {
    if (spec.length !== K || spec.some((v) => !(v >= 0))) throw invalidParameter('classWeights', `${K} non-negative numbers`, spec);
    w.set(spec);
  } else if (spec === 'balanced') {
    const counts = new Float64Array(K);
    for (const y of labels) counts[y]!++;
    for (let c = 0; c < K; c++) w[c] = counts[c] ? labels.length / (K * counts[c]!) : 0;
  }
  return w;
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function glorotLinear(d: number, k: number, rng: Rng): DenseLayer[] {
  const a = Math.sqrt(6 / (d + k));
  return [{ in: d, out: k, weight: Float32Array.from({ length: d * k }, () => rng.uniform(-a, a)), bias: new Float32Array(k) }];
}

/** Mean cross-entropy (unweighted, unsmoothed) and accuracy of logits [n, K]. */
export function crossEntropy(logits: Float32Array, labels: Int32Array, K: number): { loss: number; accuracy: number } {
  const n = labels.length;
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    loss += rowCrossEntropy(logits, i, K, labels[i]!);
    if (argmax(logits, i * K, K) === labels[i]) correct++;
  }
  return { loss: loss / Math.max(1, n), accuracy: n ? correct / n : 0 };
}

/** Feeds of one batch: `x` (rows `rows` of data, readRows), weights as float32. */
function batchFeeds(graph: TrainingGraph, per: number[], data: TailRows, rows: ArrayLike<number>, x: Float32Array, weights: Map<string, Float32Array>, withLabels: boolean): Record<string, TensorData> {
  const b = rows.length;
  const feeds: Record<string, TensorData> = { [graph.input]: { type: 'float32', data: x, dims: [b, ...per] } };
  if (withLabels) feeds.labels = { type: 'int64', data: BigInt64Array.from(Array.from(rows, (i) => BigInt(data.labels[i]!))), dims: [b] };
  for (const w of [...graph.tailWeights, ...graph.headWeights]) feeds[w.name] = { type: 'float32', data: weights.get(w.name)!, dims: w.dims };
  return feeds;
}

/**
 * Rows `start .. start+size` of 0..n-1 as one batch of exactly `size` rows (size <= n): a short last
 * batch is padded by repeating its last row (inference: the padded outputs are dropped). Every run of a
 * session then sees one input shape: TensorRT builds an engine per shape, and a smaller last batch would
 * rebuild it every epoch.
 */
export function paddedRows(start: number, size: number, n: number): { rows: number[]; real: number } {
  const real = Math.min(size, n - start);
  return { rows: Array.from({ length: Math.min(size, n) }, (_, i) => start + Math.min(i, real - 1)), real };
}

/**
 * One training batch of exactly `size` rows (size <= n) from the epoch's shuffled `order`: a short last
 * batch is filled with rows from the start of the order (seen twice this epoch), so the training graph
 * runs on one input shape (see paddedRows). `real` rows are new this batch.
 */
export function trainingRows(order: readonly number[], start: number, size: number): { rows: number[]; real: number } {
  const n = order.length;
  const real = Math.min(size, n - start);
  const rows = order.slice(start, start + real);
  for (let i = 0; rows.length < Math.min(size, n); i++) rows.push(order[i]!);
  return { rows, real };
}

/** Logits [n, K] of `data` (in memory or streamed) under `weights` through an eval-graph session, in batches of one shape (paddedRows). */
export async function evaluateTail(session: GraphSession, graph: TrainingGraph, data: TailRows, weights: Map<string, Float32Array>, batch = 32): Promise<Float32Array> {
  const per = graph.inputShape.slice(1) as number[];
  const size = per.reduce((a, b) => a * b, 1);
  const n = data.labels.length;
  const parts: Float32Array[] = [];
  for (let s = 0; s < n; s += batch) {
    const { rows, real } = paddedRows(s, batch, n);
    const x = await readRows(data, rows, size, 'evaluated rows');
    const out = await session.run(batchFeeds(graph, per, data, rows, x, weights, false), [graph.logits]);
    const logits = out[graph.logits]!.data as Float32Array;
    parts.push(logits.subarray(0, (logits.length / rows.length) * real));
  }
  return concatFloat32(parts);
}

/**
 * Train tail + head. Each step runs the training graph once (loss, logits, gradients), adds the L2
 * term to weight gradients and applies the optimizer in float64. Throws EARG on mismatched data, and
 * EARG `training diverged at epoch N: …; lower the learning rate (--lr, now …; --backbone-lr, now …)`
 * on a non-finite loss, or a weight or logit beyond float32 (runtime/train/diverge.ts); EARG for a key
 * `input`, `config` or `hooks` does not take (`trainTail: unknown option "config.epoch" (config options: …)`).
 */
export async function trainTail(input: TailTrainInput, config: Partial<TailTrainConfig> = {}, hooks: { onEpoch?(s: TailEpochStats): void; signal?: AbortSignal } = {}): Promise<TailTrainResult> {
  checkOptionKeys('trainTail', input, TAIL_INPUT_KEYS, 'input');
  checkOptionKeys('trainTail', config, TAIL_CONFIG_KEYS, 'config');
  checkOptionKeys('trainTail', hooks, TAIL_HOOK_KEYS, 'hooks');
  const t0 = now();
  const base = { ...DEFAULT_TAIL_CONFIG, ...config };
  const lrHead = config.lrHead ?? DEFAULT_LR[base.optimizer];
  const cfg: TailTrainConfig = { ...base, lrHead, lrBackbone: config.lrBackbone ?? lrHead / 100, lrBiases: config.lrBiases ?? lrHead };
  const K = input.classes;
  const rngInit = createRng(cfg.seed, 'tail-init');
  const embDims = (() => {
    const o = input.tail.graph.output[0]?.type?.tensorType?.shape?.dim;
    return o?.[1]?.dimValue;
  })();
  if (input.head && 'normalize' in input.head && input.head.normalize) throw new EdgetuneError('EARG', 'heads on L2-normalised embeddings (normalize: true) are not supported by the tail trainer');
  const layers: readonly DenseLayer[] = input.head ? ('layers' in input.head ? input.head.layers : input.head) : glorotLinear(embDims ?? 0, K, rngInit);
  for (const d of [input.train, input.val]) {
    if (d && d.labels.some((y) => !(y >= 0 && y < K))) throw new EdgetuneError('EARG', `labels must be integers in [0, ${K})`);
  }
  if (layers[layers.length - 1]!.out !== K) throw new EdgetuneError('EARG', `the head gives ${layers[layers.length - 1]!.out} classes, expected ${K}`);
  const trainable = cfg.trainBackbone ? (cfg.trainable ?? defaultTrainable(input.tail)) : [];
  const layerRate = layerRates(input.tail, trainable, cfg.layerLrDecay);
  // BitFit biases: a trained conv bias whose weight is not trained (lrBiases)
  const trainSet = new Set(trainable);
  const frozenBiases = new Set(input.tail.graph.node.filter((n) => n.opType === 'Conv' && n.input[2] && trainSet.has(n.input[2]) && !trainSet.has(n.input[1] ?? '')).map((n) => n.input[2]!));
  const cw = classWeightsOf(cfg.classWeights, input.train.labels, K);
  const common = { head: layers, trainable, labelSmoothing: cfg.labelSmoothing, classWeights: cfg.classWeights === 'none' ? undefined : cw };
  if (!(cfg.mixup >= 0)) throw invalidParameter('mixup', numberRangeText(0, Infinity), cfg.mixup);
  const trainGraph = buildTrainingGraph(input.tail, { ...common, dropout: cfg.dropout, mode: 'train', targets: cfg.mixup > 0 ? 'probs' : 'labels' });
  const evalGraph = buildTrainingGraph(input.tail, { ...common, mode: 'eval' });
  const per = trainGraph.inputShape.slice(1) as number[];
  const size = per.reduce((a, b) => a * b, 1);
  const n = input.train.labels.length;
  // (a stream's rows are checked as they are read: readRows)
  if ('x' in input.train && input.train.x.length !== n * size) throw new EdgetuneError('EARG', `train.x has ${input.train.x.length} values, expected ${n} × ${size}`);
  if (input.val && 'x' in input.val && input.val.x.length !== input.val.labels.length * size) throw new EdgetuneError('EARG', `val.x has ${input.val.x.length} values, expected ${input.val.labels.length} × ${size}`);

  // Parameters: float64 master copies, float32 views fed to the graph.
  const params = new Map<string, Float64Array>();
  const isHead = new Set<string>();
  for (const w of trainGraph.tailWeights) {
    const t = getInitializer(input.tail.graph, w.name)!;
    params.set(w.name, Float64Array.from(readFloat32(t)));
  }
  layers.forEach((l, i) => {
    params.set(`head.${i}.weight`, Float64Array.from(l.weight));
    params.set(`head.${i}.bias`, Float64Array.from(l.bias));
    isHead.add(`head.${i}.weight`).add(`head.${i}.bias`);
  });
  const rank = new Map([...trainGraph.tailWeights, ...trainGraph.headWeights].map((w) => [w.name, w.dims.length]));
  // float32 copies fed to the graphs and float64 gradient buffers, allocated once and rewritten in place
  // every step (allocating them per step cost ~half the JS time of a step: bench:finetune)
  const f32 = new Map([...params].map(([k, v]) => [k, Float32Array.from(v)]));
  const sync = () => {
    for (const [k, v] of params) f32.get(k)!.set(v);
  };
  const gbuf = new Map([...params].map(([k, v]) => [k, new Float64Array(v.length)]));
  const rates = `--lr, now ${cfg.lrHead}; --backbone-lr, now ${cfg.lrBackbone}`;
  const trainSession = await input.createSession(encodeModel(trainGraph.model));
  const evalSession = input.val ? await input.createSession(encodeModel(evalGraph.model)) : undefined;
  const opt = createOptimizer(cfg.optimizer, { momentum: cfg.momentum });
  const slots = new Map([...params.keys()].map((k, i) => [k, i]));
  const shuffle = createRng(cfg.seed, 'tail-shuffle');
  const dropRng = createRng(cfg.seed, 'tail-dropout');
  const mixRng = createRng(cfg.seed, 'tail-mixup');
  const order = Array.from({ length: n }, (_, i) => i);
  const bs = cfg.batchSize <= 0 || cfg.batchSize >= n ? n : cfg.batchSize;
  const history: TailEpochStats[] = [];
  let best = new Map([...params].map(([k, v]) => [k, v.slice()]));
  // SWA: the running mean of the end-of-epoch weights (float64) and its float32 copy for the eval graph
  const swa = checkOneOf('average', cfg.average, TAIL_AVERAGES) === 'swa' ? new Map([...params].map(([k, v]) => [k, v.slice()])) : undefined;
  // (only validation reads it)
  const swa32 = swa && input.val ? new Map([...params].map(([k, v]) => [k, Float32Array.from(v)])) : undefined;
  let bestLoss = Infinity;
  let bestEpoch = 0;
  let sinceBest = 0;
  let stoppedEarly = false;
  try {
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      if (hooks.signal?.aborted) throw hooks.signal.reason ?? new Error('aborted');
      // (a refresh's time is the caller's: the epoch's ms are its training steps, with a stream's reads, and validation)
      const train = epoch > 0 && input.refresh ? await input.refresh(epoch + 1) : input.train;
      if (train.labels.length !== n || ('x' in train && train.x.length !== n * size)) throw new EdgetuneError('EARG', `refreshed training rows for epoch ${epoch + 1}: ${train.labels.length} rows, expected ${n}`);
      const te = now();
      let runMs = 0;
      const steps = Math.ceil(n / bs);
      shuffle.shuffle(order);
      let lossSum = 0;
      let correct = 0;
      let peak = 0;
      for (let s = 0; s < n; s += bs) {
        const decay = scheduleFactor(cfg.schedule, epoch, cfg.epochs, s / bs, steps);
        // every batch has bs rows (one input shape for the session: see trainingRows)
        const { rows, real } = trainingRows(order, s, bs);
        const feeds = batchFeeds(trainGraph, per, train, rows, await readRows(train, rows, size, `training rows of epoch ${epoch + 1}`), f32, cfg.mixup <= 0);
        // each row's label for the training accuracy: with mixup, the one of the pair with the larger weight
        let counted: (r: number) => number = (r) => train.labels[rows[r]!]!;
        if (cfg.mixup > 0) {
          const perm = rows.map((_, r) => r);
          mixRng.shuffle(perm);
          const mixed = mixBatch(feeds[trainGraph.input]!.data as Float32Array, rows.map((i) => train.labels[i]!), K, perm, betaSample(mixRng, cfg.mixup));
          feeds[trainGraph.input] = { ...feeds[trainGraph.input]!, data: mixed.x };
          feeds[trainGraph.labels!] = { type: 'float32', data: mixed.targets, dims: [rows.length, K] };
          counted = (r) => argmax(mixed.targets, r * K, K);
        }
        for (const m of trainGraph.masks) {
          const keep = 1 / (1 - m.ratio);
          feeds[m.name] = { type: 'float32', data: Float32Array.from({ length: rows.length * m.size }, () => (dropRng.chance(m.ratio) ? 0 : keep)), dims: [rows.length, m.size] };
        }
        const tr = now();
        const out = await trainSession.run(feeds);
        runMs += now() - tr;
        const batchLoss = (out[trainGraph.loss!]!.data as Float32Array)[0]!;
        lossSum += batchLoss * real;
        // a non-finite batch loss ends the run at once (later steps would only spread the NaN)
        if (!Number.isFinite(batchLoss)) checkDiverged(epoch + 1, batchLoss, { W: [], b: [] }, rates);
        const logits = out[trainGraph.logits]!.data as Float32Array;
        for (let i = 0; i < logits.length; i++) {
          const v = Math.abs(logits[i]!);
          if (!(v <= peak)) peak = v;
        }
        for (let r = 0; r < real; r++) if (argmax(logits, r * K, K) === counted(r)) correct++;
        for (const [name, gname] of Object.entries(trainGraph.grads)) {
          const p = params.get(name)!;
          const g = gbuf.get(name)!;
          const g32 = out[gname]!.data as Float32Array;
          const wd = rank.get(name)! >= 2 ? cfg.weightDecay : 0;
          if (wd > 0) for (let i = 0; i < p.length; i++) g[i] = g32[i]! + wd * p[i]!;
          else g.set(g32);
          opt.step(slots.get(name)!, p, g, decay * (isHead.has(name) ? cfg.lrHead : frozenBiases.has(name) ? cfg.lrBiases : cfg.lrBackbone * (layerRate.get(name) ?? 1)));
        }
        sync();
      }
      const stats: TailEpochStats = { epoch: epoch + 1, trainLoss: lossSum / n, trainAccuracy: correct / n, ms: 0, runMs };
      // as the head trainer: non-finite loss, a weight or a logit beyond float32 (the export is float32)
      checkDiverged(epoch + 1, stats.trainLoss, { W: [...params.values()], b: [] }, rates, peak);
      if (swa) {
        for (const [k, v] of params) swaAverage(swa.get(k)!, v, epoch);
        if (swa32) for (const [k, v] of swa) swa32.get(k)!.set(v);
      }
      const current = swa ?? params;
      if (input.val && evalSession) {
        const tv = now();
        const ev = crossEntropy(await evaluateTail(evalSession, evalGraph, input.val, swa32 ?? f32, bs), input.val.labels, K);
        stats.valMs = now() - tv;
        stats.valLoss = ev.loss;
        stats.valAccuracy = ev.accuracy;
        if (ev.loss < bestLoss - cfg.minDelta) {
          bestLoss = ev.loss;
          best = new Map([...current].map(([k, v]) => [k, v.slice()]));
          bestEpoch = epoch + 1;
          sinceBest = 0;
        } else sinceBest++;
      } else bestEpoch = epoch + 1;
      stats.ms = now() - te;
      history.push(stats);
      hooks.onEpoch?.(stats);
      if (input.val && cfg.patience > 0 && sinceBest >= cfg.patience) {
        stoppedEarly = epoch + 1 < cfg.epochs;
        break;
      }
    }
  } finally {
    await trainSession.dispose();
    await evalSession?.dispose();
  }
  const final = input.val ? best : (swa ?? params);
  const tailWeights: Record<string, Float32Array> = {};
  for (const w of trainGraph.tailWeights) tailWeights[w.name] = Float32Array.from(final.get(w.name)!);
  const head: HeadWeights = {
    format: 'edgetune.head',
    version: 1,
    kind: layers.length > 1 ? 'mlp' : 'linear',
    dims: layers[0]!.in,
    classes: K,
    normalize: false,
    layers: layers.map((l, i) => ({ in: l.in, out: l.out, weight: Float32Array.from(final.get(`head.${i}.weight`)!), bias: Float32Array.from(final.get(`head.${i}.bias`)!) })),
  };
  return { tailWeights, head, history, bestEpoch, stoppedEarly, config: cfg, ms: now() - t0 };
}

/**
 * The backbone with tuned tail weights written back (a copy): frozen part unchanged, tail initializers
 * replaced by name. The backbone must be the model the tail was cut from (same initializer names and
 * dims; fold BatchNormalization before cutting). Append the head with runtime/train/export.ts. Throws
 * EARG for an unknown name or a size mismatch.
 */
export function exportTail(backbone: OnnxModel, tailWeights: Record<string, Float32Array>): OnnxModel {
  const m = cloneModel(backbone);
  for (const [name, values] of Object.entries(tailWeights)) {
    const t = getInitializer(m.graph, name);
    if (!t) throw new EdgetuneError('EARG', `the backbone has no initializer "${name}"`, { subject: name });
    if (t.dims.reduce((a, b) => a * b, 1) !== values.length) throw new EdgetuneError('EARG', `"${name}" has ${t.dims.join('×')} values in the backbone, got ${values.length}`, { subject: name });
    setInitializer(m.graph, makeTensor(name, DataType.FLOAT, t.dims, values));
  }
  return m;
}
