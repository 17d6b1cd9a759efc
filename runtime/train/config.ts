// The head trainer's configuration (runtime/train/index.ts trains with it): DEFAULT_CONFIG, the checked
// resolveConfig, the hidden-layer widths, the learning-rate schedule, class weights, and the checks of a
// FeatureSet. BROWSER-SAFE. Errors read "Expected … for <field> but received …".

import { invalidParameter } from '../core/errors.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';
import { DEFAULT_LR } from './optim.js';
import { rowsOf, TASKS } from './tasks.js';
import { OPTIMIZERS, SCHEDULES, type FeatureSet, type TrainConfig } from './types.js';

export const DEFAULT_CONFIG: Omit<TrainConfig, 'lr'> = {
  hidden: 0,
  dropout: 0,
  task: 'classification',
  optimizer: 'adam',
  momentum: 0.9,
  weightDecay: 1e-4,
  l1: 0,
  labelSmoothing: 0,
  epochs: 60,
  batchSize: 32,
  schedule: 'cosine',
  stepSize: 20,
  gamma: 0.1,
  patience: 10,
  minDelta: 1e-4,
  seed: 42,
  classWeights: 'balanced',
  standardize: false,
  normalize: false,
  init: 'glorot',
};

/** The trainer's argument error (core/errors.ts invalidParameter): "Expected <expected> for <name> but received <actual>". */
export const bad = invalidParameter;

/** Every key of TrainConfig, for refusing a misspelt one (`{ epoch: 5 }` would train the default 60 epochs, without a word). The type below fails to compile when a key is missing. */
export const TRAIN_CONFIG_KEYS = [
  'hidden', 'dropout', 'task', 'optimizer', 'lr', 'momentum', 'weightDecay', 'l1', 'labelSmoothing', 'epochs', 'batchSize', 'schedule', 'stepSize', 'gamma',
  'patience', 'minDelta', 'seed', 'classWeights', 'standardize', 'normalize', 'init',
] as const satisfies readonly (keyof TrainConfig)[];
/** `never` while TRAIN_CONFIG_KEYS lists every field (a compile error names a missing one). */
export type UnlistedTrainConfigKey = AssertNever<Exclude<keyof TrainConfig, (typeof TRAIN_CONFIG_KEYS)[number]>>;

/**
 * Defaults filled in and every field checked (errors read "Expected … for <name> but received …"); a
 * key TrainConfig lacks is refused as checkOptionKeys does (`<fn>: unknown option "epoch" (options: …)`,
 * `fn` the function the caller called).
 */
export function resolveConfig(c: Partial<TrainConfig> = {}, fn = 'resolveConfig'): TrainConfig {
  checkOptionKeys(fn, c, TRAIN_CONFIG_KEYS);
  const optimizer = c.optimizer ?? DEFAULT_CONFIG.optimizer;
  if (!OPTIMIZERS.includes(optimizer)) throw bad('optimizer', `one of ${OPTIMIZERS.join(', ')}`, optimizer);
  const cfg: TrainConfig = { ...DEFAULT_CONFIG, ...stripUndefined(c), optimizer, lr: c.lr ?? DEFAULT_LR[optimizer] };
  const int = (k: keyof TrainConfig, min: number) => {
    const v = cfg[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw bad(k, min === 0 ? 'integer >= 0' : 'positive integer', v);
  };
  const num = (k: keyof TrainConfig, lo: number, hi: number, loOpen = false) => {
    const v = cfg[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) throw bad(k, `number ${loOpen ? '>' : '>='} ${lo}${hi < Infinity ? ` and <= ${hi}` : ''}`, v);
  };
  hiddenSizes(cfg);
  if (!TASKS.includes(cfg.task)) throw bad('task', `one of ${TASKS.join(', ')}`, cfg.task);
  if (cfg.task !== 'classification' && cfg.labelSmoothing !== 0) throw bad('labelSmoothing', `0 for a ${cfg.task} head (label smoothing is for classification)`, cfg.labelSmoothing);
  if (cfg.task !== 'classification' && Array.isArray(cfg.classWeights)) throw bad('classWeights', `balanced or none for a ${cfg.task} head (class weights are for classification)`, cfg.classWeights);
  int('epochs', 1);
  int('batchSize', 0);
  int('stepSize', 1);
  int('patience', 0);
  int('seed', 0);
  num('dropout', 0, 0.95);
  num('lr', 0, Infinity, true);
  num('momentum', 0, 1);
  num('weightDecay', 0, Infinity);
  num('l1', 0, Infinity);
  num('labelSmoothing', 0, 0.99);
  num('gamma', 0, 1, true);
  num('minDelta', 0, Infinity);
  if (!SCHEDULES.includes(cfg.schedule)) throw bad('schedule', `one of ${SCHEDULES.join(', ')}`, cfg.schedule);
  if (cfg.init !== 'glorot' && cfg.init !== 'zeros') throw bad('init', 'glorot or zeros', cfg.init);
  if (cfg.init === 'zeros' && hiddenSizes(cfg).length > 0) throw bad('init', 'glorot for an MLP head (zeros cannot break symmetry)', cfg.init);
  return cfg;
}

/**
 * The hidden layer widths of a config: `hidden` 0 → [] (linear), 128 → [128], [256, 64] as given.
 * Errors: "Expected integer >= 0 or a list of positive integers for hidden but received …".
 */
export function hiddenSizes(cfg: Pick<TrainConfig, 'hidden'>): number[] {
  const h = cfg.hidden;
  const ok = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  if (Array.isArray(h) ? h.every((v) => ok(v, 1)) : ok(h, 0)) return Array.isArray(h) ? [...h] : h > 0 ? [h] : [];
  throw bad('hidden', 'integer >= 0 or a list of positive integers', h);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Checks a FeatureSet for `task` (shape, labels or targets) and returns its row count. */
export function checkSet(name: string, s: FeatureSet, task: TrainConfig['task'] = 'classification'): number {
  if (task !== 'classification') {
    if (!(s.dims > 0) || !(s.classes >= 1)) throw bad(`${name} dims/outputs`, 'dims > 0 and classes >= 1', [s.dims, s.classes]);
    if (!s.targets) throw bad(`${name} targets`, `a Float32Array of n × ${s.classes} ${task} targets`, s.targets);
    const n = rowsOf(s, task);
    if (!Number.isInteger(n) || s.features.length !== n * s.dims) throw bad(`${name} targets length`, `a multiple of ${s.classes} matching ${s.features.length / s.dims} rows`, s.targets.length);
    for (let i = 0; i < s.targets.length; i++) {
      const t = s.targets[i]!;
      if (task === 'multilabel' ? t !== 0 && t !== 1 : !Number.isFinite(t)) throw bad(`${name} target ${i}`, task === 'multilabel' ? '0 or 1' : 'a finite number', t);
    }
    return n;
  }
  if (!(s.dims > 0) || !(s.classes >= 2)) throw bad(`${name} dims/classes`, 'dims > 0 and classes >= 2', [s.dims, s.classes]);
  const n = s.labels.length;
  if (s.features.length !== n * s.dims) throw bad(`${name} features length`, `${n} × ${s.dims} = ${n * s.dims}`, s.features.length);
  for (let i = 0; i < n; i++) {
    const y = s.labels[i]!;
    if (!(y >= 0 && y < s.classes)) throw bad(`${name} label ${i}`, `class index in 0..${s.classes - 1}`, y);
  }
  return n;
}

/** Learning rate for a 0-based epoch. */
export function learningRate(cfg: TrainConfig, epoch: number): number {
  if (cfg.schedule === 'cosine') return 0.5 * cfg.lr * (1 + Math.cos((Math.PI * epoch) / cfg.epochs));
  if (cfg.schedule === 'step') return cfg.lr * cfg.gamma ** Math.floor(epoch / cfg.stepSize);
  return cfg.lr;
}

/** Per-class loss weights. */
export function classWeightsOf(cfg: Pick<TrainConfig, 'classWeights'>, labels: Int32Array, classes: number): Float64Array {
  const w = new Float64Array(classes).fill(1);
  if (Array.isArray(cfg.classWeights)) {
    if (cfg.classWeights.length !== classes || cfg.classWeights.some((v) => !(v >= 0))) throw bad('classWeights', `${classes} non-negative numbers`, cfg.classWeights);
    w.set(cfg.classWeights);
  } else if (cfg.classWeights === 'balanced') {
    const counts = new Float64Array(classes);
    for (const y of labels) counts[y]!++;
    for (let c = 0; c < classes; c++) w[c] = counts[c] ? labels.length / (classes * counts[c]!) : 0;
  }
  return w;
}

