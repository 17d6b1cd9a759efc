// Types shared by the head trainer, its callers (CLI, browser kiosk) and the ONNX exporter.
// Browser-safe. HeadWeights is a plain object of typed arrays: structured-clone safe (postMessage,
// IndexedDB) and JSON-safe through headToJSON / headFromJSON (checked by `HeadJSONSchema`).

import * as v from 'valibot';
import { parseContract } from '../core/schema.js';

/**
 * What a head learns: `classification` (one label per row: softmax + cross-entropy), `multilabel`
 * (any number of labels per row: sigmoid + binary cross-entropy per label) or `regression` (real
 * values: linear outputs + mean squared error).
 */
export type TrainTask = 'classification' | 'multilabel' | 'regression';

/**
 * Training or validation examples: `n` rows of `dims` floats, row-major.
 * Classification reads `labels` (n class indices). Multilabel and regression read `targets`
 * (row-major [n, classes]: 0/1 per label, or the real values of each output) and ignore `labels`
 * (pass `new Int32Array(0)`); `classes` is then the number of labels / outputs.
 */
export interface FeatureSet {
  features: Float32Array;
  labels: Int32Array;
  dims: number;
  classes: number;
  targets?: Float32Array;
}

/** One dense layer: y = W x + b, W is out×in row-major. */
export interface DenseLayer {
  in: number;
  out: number;
  weight: Float32Array;
  bias: Float32Array;
}

/**
 * A trained head on raw embeddings: optional L2 normalisation of the embedding, then dense layers with
 * ReLU between them; the last layer gives logits (softmax → probabilities). Feature standardisation
 * used during training is folded into the first layer, so the head takes the embedding as it is.
 */
export interface HeadWeights {
  format: 'edgetune.head';
  version: 1;
  kind: 'linear' | 'mlp' | 'prototype';
  /**
   * What the outputs mean (absent = classification): classification logits → softmax, multilabel
   * logits → sigmoid per label, regression outputs are the values themselves (in the targets' units:
   * the standardisation used in training is folded into the last layer).
   */
  task?: TrainTask;
  dims: number;
  /** Outputs: classes, labels (multilabel) or values (regression). */
  classes: number;
  /** L2-normalise each embedding before the first layer (the prototype head). */
  normalize: boolean;
  layers: DenseLayer[];
}

export type OptimizerName = 'sgd' | 'momentum' | 'adagrad' | 'adadelta' | 'rmsprop' | 'adam';
export const OPTIMIZERS: readonly OptimizerName[] = ['sgd', 'momentum', 'adagrad', 'adadelta', 'rmsprop', 'adam'];
export type ScheduleName = 'constant' | 'cosine' | 'step';
export const SCHEDULES: readonly ScheduleName[] = ['constant', 'cosine', 'step'];

export interface TrainConfig {
  /** Hidden units of an MLP head: one layer (`128`) or several (`[256, 64]`), each with ReLU; 0 or [] = linear head. Default 0. */
  hidden: number | number[];
  /** Dropout probability on every hidden layer's output (the embedding for a linear head). Default 0. */
  dropout: number;
  /** What the head learns (see TrainTask). Default classification. */
  task: TrainTask;
  optimizer: OptimizerName;
  /** Base learning rate. Default: per optimizer (sgd 0.1, momentum 0.01, adagrad 0.05, adadelta 1, rmsprop 0.01, adam 0.001). */
  lr: number;
  /** Momentum for `momentum` (0.9). */
  momentum: number;
  /** L2 penalty (λ/2)·‖W‖² on weights, not biases. Default 1e-4. */
  weightDecay: number;
  /** L1 penalty λ·‖W‖₁ on weights, not biases (subgradient λ·sign(w)). Default 0. */
  l1: number;
  /** Label smoothing ε: targets (1-ε)·onehot + ε/K (classification only). Default 0. */
  labelSmoothing: number;
  epochs: number;
  /** Mini-batch size; 0 or ≥ n = full batch. Default 32. */
  batchSize: number;
  schedule: ScheduleName;
  /** `step`: multiply the rate by `gamma` every `stepSize` epochs. */
  stepSize: number;
  gamma: number;
  /** Early stopping: epochs without a validation-loss improvement before stopping. 0 = never stop early. */
  patience: number;
  /** Improvement smaller than this does not count. Default 1e-4. */
  minDelta: number;
  seed: number;
  /** `balanced` weights each class by n / (K · n_c); `none`; or one weight per class (classification only). Default balanced. */
  classWeights: 'balanced' | 'none' | number[];
  /** Standardise features (mean 0, std 1 per dimension) while training; folded into the head. Default false (pooled CNN features train better raw). */
  standardize: boolean;
  /** L2-normalise each embedding before the head (exported as LpNormalization). Default false. */
  normalize: boolean;
  /** Weight initialisation: glorot (uniform, seeded) or zeros (linear heads only). */
  init: 'glorot' | 'zeros';
}

export interface EpochStats {
  epoch: number;
  lr: number;
  /** Mean training loss over the epoch's mini-batches (with smoothing and weights, without the L2 / L1 terms). */
  trainLoss: number;
  /**
   * Accuracy of the epoch's mini-batch predictions (training mode): classification accuracy,
   * multilabel exact-match ratio (threshold 0.5), regression 1 − MSE on the standardised targets (≈ R²).
   */
  trainAccuracy: number;
  /** Validation loss, when there is a set: cross-entropy (no smoothing, no weights), mean binary cross-entropy per label, or MSE on the targets standardised by the training statistics. */
  valLoss?: number;
  /** The same measure as trainAccuracy, on the validation set. */
  valAccuracy?: number;
  ms: number;
}

export interface TrainResult {
  head: HeadWeights;
  history: EpochStats[];
  /** 1-based epoch whose weights were kept (the best validation loss, or the last epoch without validation). */
  bestEpoch: number;
  stoppedEarly: boolean;
  config: TrainConfig;
  ms: number;
}

export interface TrainHooks {
  onEpoch?(stats: EpochStats): void;
  signal?: AbortSignal;
}

const size = v.pipe(v.number(), v.integer(), v.minValue(1));

/** JSON form of a head (typed arrays as number arrays); `HeadJSON` is derived from it. */
export const HeadJSONSchema = v.pipe(
  v.object({
    format: v.literal('edgetune.head'),
    version: v.literal(1),
    kind: v.picklist(['linear', 'mlp', 'prototype']),
    task: v.optional(v.picklist(['classification', 'multilabel', 'regression'])),
    dims: size,
    classes: size,
    normalize: v.boolean(),
    layers: v.pipe(
      v.array(
        v.pipe(
          v.object({ in: size, out: size, weight: v.array(v.number()), bias: v.array(v.number()) }),
          v.check(
            (l) => l.weight.length === l.in * l.out && l.bias.length === l.out,
            (issue) => {
              const l = issue.input as { in: number; out: number; weight: unknown[]; bias: unknown[] };
              return `expected ${l.out}×${l.in} weights and ${l.out} biases but received ${l.weight.length} and ${l.bias.length}`;
            },
          ),
        ),
      ),
      v.minLength(1, 'expected at least one layer'),
    ),
  }),
  v.check(
    (h) => h.layers.length === 0 || (h.layers[0]!.in === h.dims && h.layers.at(-1)!.out === h.classes && h.layers.every((l, i) => i === 0 || l.in === h.layers[i - 1]!.out)),
    (issue) => {
      const h = issue.input as { dims: number; classes: number; layers: { in: number; out: number }[] };
      return `layers ${h.layers.map((l) => `${l.in}→${l.out}`).join(', ')} do not lead from ${h.dims} dims to ${h.classes} classes`;
    },
  ),
);
export type HeadJSON = v.InferOutput<typeof HeadJSONSchema>;

export function headToJSON(h: HeadWeights): HeadJSON {
  return { ...h, layers: h.layers.map((l) => ({ in: l.in, out: l.out, weight: Array.from(l.weight), bias: Array.from(l.bias) })) };
}

/**
 * A head from its JSON form (parsed), checked. `source` names it in errors. Errors: EINPUT, one line
 * per problem: `<source>: layers[0]: expected 2×1280 weights and 2 biases but received 2559 and 2`.
 */
export function headFromJSON(json: unknown, source = 'head JSON'): HeadWeights {
  const j = parseContract(HeadJSONSchema, json, source);
  return { ...j, layers: j.layers.map((l) => ({ in: l.in, out: l.out, weight: Float32Array.from(l.weight), bias: Float32Array.from(l.bias) })) };
}
