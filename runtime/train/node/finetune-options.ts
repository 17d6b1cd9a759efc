// The options of the library's finetune() (runtime/train/node/finetune.ts) and their checks: the
// command's options under camelCase names with the same defaults and ranges (FINETUNE_DEFAULTS,
// UNFREEZE_DEFAULTS), the progress events, and a `{file, label}` list read as dataset items. Errors are
// EARG / EINPUT EdgetuneErrors naming the option ("Expected … for <option> but received …").

import path from 'node:path';
import type { AugmentSpec } from '../augment/ops.js';
import type { DatasetItem } from './dataset.js';
import { checkOptionKeys, type AssertNever } from '../../core/options.js';
import { EdgetuneError, numberRangeText } from '../../core/errors.js';
import type { TailEpochStats } from '../graph/tail-trainer.js';
import { SESSION_OPTION_KEYS, type SessionOptions } from '../../session/session.js';
import type { TASKS } from '../tasks.js';
import { checkCardLayerKeys, type CardLayer } from '../../core/model-card.js';
import { OPTIMIZERS, SCHEDULES, type EpochStats, type TrainConfig } from '../index.js';
import { FINETUNE_DEFAULTS as D, type HeadKind } from '../finetune.js';

/** One labelled image of a `{file, label}` list: `label` is the class name. */
export interface LabelledFile {
  file: string;
  label: string;
}

/** One class's folder of images (`addClass`, `addExamples`): `name` is the class. */
export interface ClassFolder {
  name: string;
  dir: string;
}
/** The keys of ClassFolder, for refusing a misspelt one (`{ nmae, dir }`). */
export const CLASS_FOLDER_KEYS = ['name', 'dir'] as const satisfies readonly (keyof ClassFolder)[];
/** `never` while CLASS_FOLDER_KEYS lists every key (a compile error names a missing one). */
export type UnlistedClassFolderKey = AssertNever<Exclude<keyof ClassFolder, (typeof CLASS_FOLDER_KEYS)[number]>>;

/**
 * The options of `finetune()`, those of `edgetune finetune` (its usage text says the same), with the
 * same defaults (FINETUNE_DEFAULTS, UNFREEZE_DEFAULTS). Every field is optional but `out`.
 */
export interface FinetuneOptions {
  /** The backbone: a registry id, a path, a `.tflite` or tfjs `model.json` (default `mobilenetv2-int8`; ignored with `resume`). */
  model?: string;
  /** The model file to write (`.onnx`); the report, resume data (and with int8 the float model) go beside it. */
  out: string;
  /** Model-card fields describing the backbone (as the CLI's card flags). */
  card?: CardLayer;
  /** classification (default) | multilabel | regression (`data` is then a CSV, see the README). */
  task?: (typeof TASKS)[number];
  /** Validation data: a folder (same classes) or a list; a CSV for the other tasks. Default: a seeded `valSplit` of each class. */
  val?: string | readonly LabelledFile[];
  /** Fraction of each class held out without `val` (default 0.2; 0 = none), in [0, 0.9]. */
  valSplit?: number;
  /** Augmentation spec (`none`, `default`, `flip,rotate:15,…`) or a parsed spec (default `default`). */
  augment?: string | AugmentSpec;
  /** Embedded views per training image, 1 to 64 (default 4; 1 with augmentation none). */
  views?: number;
  /** Embedding cache folder (default `<EDGETUNE_CACHE>/embeddings`); null: no cache. */
  cache?: string | null;
  /** linear | mlp | prototype (default linear; mlp when `hidden` is given). */
  head?: HeadKind;
  /** Hidden layer widths of an MLP head (default 128). */
  hidden?: number | number[];
  optimizer?: TrainConfig['optimizer'];
  /** Learning rate (default DEFAULT_LR[optimizer]). */
  lr?: number;
  epochs?: number;
  batchSize?: number;
  weightDecay?: number;
  l1?: number;
  labelSmoothing?: number;
  dropout?: number;
  schedule?: TrainConfig['schedule'];
  stepSize?: number;
  gamma?: number;
  /** Early stopping on validation loss (default 10; 0 = off); given, it applies to phase 2 too (default 3 there). */
  patience?: number;
  seed?: number;
  /**
   * Phase 2: train the last `unfreeze` blocks of a float backbone with the head, `'all'` of them (the
   * whole backbone before its embedding), or cut at the named tensor (any other string).
   */
  unfreeze?: number | string;
  /** Phase-2 backbone learning rate (default 0.1 × the head's). */
  backboneLr?: number;
  /** Phase-2 maximum epochs (default 10). */
  unfreezeEpochs?: number;
  /**
   * Phase-2 training views: `fresh` (default) draws new augmented views of every training image each
   * epoch (the frozen part runs again, views not cached on disk); `cached` trains every epoch on the
   * `views` phase 1 embedded (UNFREEZE_DEFAULTS.freshViews, runtime/train/phase2.ts).
   */
  unfreezeViews?: 'fresh' | 'cached';
  /**
   * Phase-2 learning-rate schedule over its epochs, both rates (runtime/train/graph/tail-trainer.ts
   * scheduleFactor): constant, cosine to 0, or warmup-cosine (linear warm-up over the first epoch, then
   * cosine). Default UNFREEZE_DEFAULTS.schedule.
   */
  unfreezeSchedule?: 'constant' | 'cosine' | 'warmup-cosine';
  /**
   * Phase-2 layer-wise (discriminative) backbone rates: unfrozen block k (1 = nearest the embedding)
   * trains at backboneLr × layerLrDecay^(k−1), in (0, 1] (ULMFiT, Howard & Ruder 2018). Default
   * UNFREEZE_DEFAULTS.layerLrDecay (1: one rate for every unfrozen block).
   */
  layerLrDecay?: number;
  /**
   * Phase-2 weight averaging over its epochs (runtime/train/graph/tail-trainer.ts TailTrainConfig.average):
   * none, or swa (stochastic weight averaging, Izmailov et al. 2018). Default UNFREEZE_DEFAULTS.average.
   */
  unfreezeAverage?: 'none' | 'swa';
  /**
   * Phase-2 mixup of the tail's inputs (the cut activations; TailTrainConfig.mixup): Beta(α, α) mixing
   * weight per batch, α > 0; 0 = off. Default UNFREEZE_DEFAULTS.mixup.
   */
  unfreezeMixup?: number;
  /**
   * Phase-2 BitFit: the frozen blocks whose conv biases train too (runtime/train/finetune-tail.ts
   * UnfreezeBiases): `'none'`, `'all'` (every block) or the last k blocks (counted as `unfreeze` counts);
   * their weights stay frozen. Default UNFREEZE_DEFAULTS.biases.
   */
  unfreezeBiases?: 'none' | 'all' | number;
  /**
   * After phase 2 is validated (and kept), train it again on training + validation images for its best
   * epoch count (default UNFREEZE_DEFAULTS.refit; needs validation data).
   */
  refit?: boolean;
  /**
   * Keep phase 2's result even when the never-worse rule (runtime/train/phase2.ts keepPhase2: better than
   * the head alone on validation by more than one standard error of the paired loss difference) says
   * not to. Default false: then the head-only model is written and the report says why
   * (`unfreeze.kept`, `unfreeze.keepReason`).
   */
  keepUnfrozen?: boolean;
  /** Quantize the exported model to int8 (float backbones; calibrated on training images from a folder). */
  int8?: boolean;
  /** Extend this model (exported by finetune or the kiosk page) with `addClass`. */
  resume?: string;
  /** With `resume`: the new classes, one folder of images each. */
  addClass?: readonly ClassFolder[];
  /**
   * With `resume`: more images of classes the model already has, one folder each (`name`: the class).
   * They are embedded with the resumed model's own backbone (a tuned one stays tuned), as added classes
   * are, and the head is retrained on the resume data's rows plus theirs. Training images only: the
   * validation images stay the resumed model's, so accuracies before and after compare the same images.
   */
  addExamples?: readonly ClassFolder[];
  /** Session options (providers, threads) for embedding and training graphs (default CPU). */
  session?: SessionOptions;
  signal?: AbortSignal;
  onProgress?(e: FinetuneProgress): void;
  /** Each warning (also listed in the report's `warnings`). Default: none printed. */
  onWarning?(message: string): void;
}

/**
 * Every key of FinetuneOptions, for refusing a misspelt option from JavaScript (`{ epoch: 5 }` would
 * otherwise train 60 epochs without a word). The type below fails to compile when a key is missing.
 */
export const FINETUNE_OPTION_KEYS = [
  'model', 'out', 'card', 'task', 'val', 'valSplit', 'augment', 'views', 'cache', 'head', 'hidden', 'optimizer', 'lr', 'epochs',
  'batchSize', 'weightDecay', 'l1', 'labelSmoothing', 'dropout', 'schedule', 'stepSize', 'gamma', 'patience', 'seed', 'unfreeze',
  'backboneLr', 'unfreezeEpochs', 'unfreezeViews', 'unfreezeSchedule', 'layerLrDecay', 'unfreezeAverage', 'unfreezeMixup', 'unfreezeBiases', 'refit', 'keepUnfrozen', 'int8', 'resume',
  'addClass', 'addExamples', 'session', 'signal', 'onProgress', 'onWarning',
] as const satisfies readonly (keyof FinetuneOptions)[];
/** `never` while FINETUNE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedFinetuneOption = AssertNever<Exclude<keyof FinetuneOptions, (typeof FINETUNE_OPTION_KEYS)[number]>>;

/**
 * Refuse the keys of finetune options `o` that function `fn` does not take (`keys`: FINETUNE_OPTION_KEYS
 * or a subset), and those of the nested `session`, `card` and `addClass` / `addExamples` items; `within`
 * names `o` when it is itself nested (createTeach's `finetune`). Errors: EARG as checkOptionKeys
 * (`finetune: unknown option "session.thread" (session options: providers, …)`).
 */
export function checkFinetuneOptionKeys(fn: string, o: Partial<FinetuneOptions>, keys: readonly string[], within?: string): void {
  const at = (key: string) => (within ? `${within}.${key}` : key);
  checkOptionKeys(fn, o, keys, within);
  checkOptionKeys(fn, o.session, SESSION_OPTION_KEYS, at('session'));
  checkCardLayerKeys(fn, o.card, at('card'));
  for (const key of ['addClass', 'addExamples'] as const) o[key]?.forEach((f, i) => checkOptionKeys(fn, f, CLASS_FOLDER_KEYS, `${at(key)}[${i}]`));
}

/** Progress of a fine-tune: embedding (`train` / `val` images), phase-2 activations, each epoch of either phase, and the int8 step (0/1 when it starts, 1/1 when done). */
export type FinetuneProgress =
  | { stage: 'embed'; split: 'train' | 'val'; done: number; total: number }
  | { stage: 'activations'; cut: string; done: number; total: number }
  | { stage: 'int8'; done: number; total: number }
  | { stage: 'epoch'; phase: 1; epochs: number; stats: EpochStats }
  | { stage: 'epoch'; phase: 2; epochs: number; stats: TailEpochStats };

/** `Expected <expected> for <name> but received <v>` (EARG; `subject` the option, which the CLI says as its flag: cli/args.ts withFlagName). */
export function arg(name: string, expected: string, v: unknown): EdgetuneError {
  return new EdgetuneError('EARG', `Expected ${expected} for ${name} but received ${JSON.stringify(v)}`, { subject: name });
}

export function intIn(name: string, v: number | undefined, lo: number, hi: number): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= lo && v <= hi)) throw arg(name, `integer between ${lo} and ${hi}`, v);
}

export function numIn(name: string, v: number | undefined, lo: number, hi: number, loOpen = false): void {
  if (v !== undefined && !(Number.isFinite(v) && v >= lo && v <= hi && !(loOpen && v === lo))) throw arg(name, numberRangeText(lo, hi, loOpen), v);
}

/** The trainer config of the options (FINETUNE_DEFAULTS for what is not given); checks every field. */
export function trainConfigOf(o: FinetuneOptions, head: HeadKind): Partial<TrainConfig> {
  if (o.optimizer !== undefined && !OPTIMIZERS.includes(o.optimizer)) throw arg('optimizer', `one of ${OPTIMIZERS.join(', ')}`, o.optimizer);
  if (o.schedule !== undefined && !SCHEDULES.includes(o.schedule)) throw arg('schedule', `one of ${SCHEDULES.join(', ')}`, o.schedule);
  numIn('lr', o.lr, 0, Infinity, true);
  intIn('epochs', o.epochs, 1, 100000);
  intIn('batchSize', o.batchSize, 0, 1_000_000);
  numIn('weightDecay', o.weightDecay, 0, 10);
  numIn('l1', o.l1, 0, 10);
  numIn('labelSmoothing', o.labelSmoothing, 0, 0.99);
  numIn('dropout', o.dropout, 0, 0.95);
  intIn('patience', o.patience, 0, 100000);
  intIn('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  intIn('stepSize', o.stepSize, 1, 100000);
  numIn('gamma', o.gamma, 0, 1, true);
  const c: Partial<TrainConfig> = {
    optimizer: o.optimizer, schedule: o.schedule, lr: o.lr, epochs: o.epochs ?? D.epochs, batchSize: o.batchSize, weightDecay: o.weightDecay ?? D.weightDecay, l1: o.l1,
    labelSmoothing: o.labelSmoothing ?? D.labelSmoothing, dropout: o.dropout ?? D.dropout, patience: o.patience ?? D.patience, seed: o.seed ?? D.seed, stepSize: o.stepSize, gamma: o.gamma,
  };
  if (head === 'mlp') {
    const sizes = o.hidden === undefined ? [D.hidden] : Array.isArray(o.hidden) ? o.hidden : [o.hidden];
    if (!sizes.length || sizes.length > 8) throw arg('hidden', '1 to 8 hidden layers', o.hidden);
    for (const h of sizes) intIn('hidden', h, 1, 65536);
    c.hidden = sizes.length === 1 ? sizes[0]! : [...sizes];
  }
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
}

/** Items of a `{file, label}` list: classes sorted by name (as class folders are), files resolved. */
export function itemsOfList(list: readonly LabelledFile[], labels?: readonly string[], what = 'data'): { labels: string[]; items: DatasetItem[] } {
  const names = labels ? [...labels] : [...new Set(list.map((i) => i.label))].sort();
  if (!labels && names.length < 2) throw new EdgetuneError('EINPUT', `${what}: the list has ${names.length} class(es); a classifier needs at least 2`);
  const items = list.map((i, k) => {
    if (typeof i?.file !== 'string' || typeof i.label !== 'string') throw arg(`${what}[${k}]`, 'an object {file: string, label: string}', i);
    const label = names.indexOf(i.label);
    if (label < 0) throw new EdgetuneError('EINPUT', `${what}[${k}]: class "${i.label}" is not a training class (${names.join(', ')})`);
    return { file: path.resolve(i.file), label };
  });
  return { labels: names, items };
}
