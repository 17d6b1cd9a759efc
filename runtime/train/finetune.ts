// Fine-tuning a head, one module for every driver. BROWSER-SAFE (no Node APIs, no onnxruntime): the
// library's finetune() (runtime/train/node/finetune.ts, which `edgetune finetune` drives) and the kiosk page
// (runtime/kiosk/page/teach.ts) both run split → views → embeddings → train → head → export through it, each
// with its own I/O: image decoding and the embedding session are injected (a ViewEmbedder: the library's wraps
// runtime/train/node/embed.ts on onnxruntime-node with its on-disk cache, the page's renders views from
// its decoded samples and runs onnxruntime-web).
//
// Shape (after the tfjs-models speech-commands transfer API):
//   const t = createTransfer({ labels });
//   const { train, val } = stratifiedSplit(items, labels.length, valSplit, seed);   // or a given val set
//   await collectEmbeddings(t, embedder, { train, val, augment, views, seed });   // or t.collectExample(label, rows, {views})
//   const result = await t.train({ head, config });                                // → head, metrics, baseline
//   const onnx = t.export(graph, spec, provenance);                                // one ONNX classifier
//
// The rules, stated once here:
//   - views: the number of embedded views per TRAINING image. View 0 is always the un-augmented
//     original (the evaluation preprocessing); views 1..views-1 are augmented, their parameters drawn by
//     viewParams(augment, seed, imageKey, v) where imageKey is the sha256 (hex) of the image file's bytes
//     (the page falls back to the sample's name where WebCrypto is missing: outside a secure context),
//     so a view depends only on the seed, the image content and its index. Validation images get view 0
//     only. With augmentation `none` there is one view (views is ignored).
//   - normalize: false by default, in both drivers: the head trains on the raw pooled embedding (no L2
//     normalisation; measured better, see FINETUNE_DEFAULTS). A prototype head always normalises.
//   - the split: stratifiedSplit, per class a seeded shuffle (stream `split:<class>`), round(n·fraction)
//     held out, at least one when the class has two or more images, never all of them.
//   - the head: linear by default (the CLI); `auto` (the page's default) is prototype below
//     AUTO_PROTOTYPE_BELOW (20) training images in some class, else linear (measured, see there).
// Every default (FINETUNE_DEFAULTS) is here; the CLI's usage text and the page's controls read them.

import { EdgetuneError, invalidParameter } from '../core/errors.js';
import { IDENTITY_VIEW, isIdentitySpec, sampleView, viewRng, type AugmentSpec, type ViewParams } from './augment/ops.js';
import { exportClassifierModel, type CutSpec, type EmbeddingGraph } from './export.js';
import { computeMetrics, createRng, DEFAULT_CONFIG, predictHead, predictions, prototypeHead, trainHead, type Metrics } from './index.js';
import type { FeatureSet, HeadWeights, TrainConfig, TrainHooks, TrainResult } from './types.js';
import type { OnnxModel } from '../onnx/model.js';
import type { PreprocessSpec } from '../image/preprocess.js';
import { concatFloat32 } from '../core/tensor.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';
import { TRAIN_CONFIG_KEYS } from './config.js';
import { openSetForHead } from './openset.js';

export type HeadKind = 'linear' | 'mlp' | 'prototype';

/**
 * The fine-tuning defaults of both drivers. Training fields are the trainer's DEFAULT_CONFIG
 * (runtime/train/index.ts), plus:
 *   augment  'default' = flip,crop:0.7,rotate:10,color:0.2
 *   views    4 embedded views per training image (view 0 un-augmented, 3 augmented)
 *   valSplit 0.2 of each class held out when no validation set is given
 *   head     linear softmax; hidden 128 units for an MLP head
 *   normalize false: raw embeddings. Measured with mobilenetv2-int8, seed 42, default augmentation, 4
 *            views, in `edgetune finetune`: hymenoptera val 0.961 raw vs 0.948 L2-normalised, flowers5-small
 *            val 0.700 raw vs 0.630 normalised (at the default adam lr 0.001 the normalised embeddings
 *            train too slowly). The page used to normalise its linear head; it now takes this one
 *            default too, and its few-shot default is the `auto` head (AUTO_PROTOTYPE_BELOW): on the
 *            kiosk test's 15 hymenoptera photos per class a raw linear head scores 0.856 on the 153 val
 *            photos, a normalised one 0.935, the prototype head 0.961 (0.967 taught in the page).
 */
export const FINETUNE_DEFAULTS = Object.freeze({
  augment: 'default',
  views: 4,
  valSplit: 0.2,
  seed: DEFAULT_CONFIG.seed,
  head: 'linear' as HeadKind,
  hidden: 128,
  epochs: DEFAULT_CONFIG.epochs,
  batchSize: DEFAULT_CONFIG.batchSize,
  optimizer: DEFAULT_CONFIG.optimizer,
  weightDecay: DEFAULT_CONFIG.weightDecay,
  labelSmoothing: DEFAULT_CONFIG.labelSmoothing,
  dropout: DEFAULT_CONFIG.dropout,
  schedule: DEFAULT_CONFIG.schedule,
  patience: DEFAULT_CONFIG.patience,
  normalize: DEFAULT_CONFIG.normalize,
});

/**
 * `auto` head (the page's default): prototype when some class has fewer training images than this, else
 * linear. With few images per class the linear head on raw embeddings stops on a noisy validation loss;
 * the nearest class mean needs no training. Measured (mobilenetv2-int8, seed 42, default augmentation,
 * 4 views, 20% split of the first N photos per class; accuracy on the full val set, linear vs
 * prototype): hymenoptera N = 8: 0.863 vs 0.908, 12: 0.928 vs 0.948, 20: 0.935 vs 0.941, 30: 0.935 vs
 * 0.948, the kiosk test's 15 (25% split): 0.856 vs 0.961; flowers5-small N = 8: 0.570 vs 0.530, 12:
 * 0.560 vs 0.520, 20: 0.600 vs 0.570, 30: 0.650 vs 0.550, where linear is ahead. With 20 or more
 * training images in every class, auto trains the linear head.
 */
export const AUTO_PROTOTYPE_BELOW = 20;

/** Calibration images `finetune --int8` draws from the training images. */
export const INT8_CALIBRATION_IMAGES = 100;

/**
 * Seeded stratified split (the one rule of both drivers): per class c, the items of that class (in the
 * given order) are shuffled by createRng(seed, `split:c`) and the first round(n·fraction) go to
 * validation, at least one when the class has two or more items and fraction > 0, never all of them.
 * train and val list class 0's items, then class 1's, …, each in the given order. `fraction` in [0, 1);
 * 0 = no validation.
 */
export function stratifiedSplit<T extends { label: number }>(items: readonly T[], classes: number, fraction: number, seed: number): { train: T[]; val: T[] } {
  const train: T[] = [];
  const val: T[] = [];
  for (let c = 0; c < classes; c++) {
    const mine = items.filter((i) => i.label === c);
    const rng = createRng(seed, `split:${c}`);
    const idx = mine.map((_, i) => i);
    rng.shuffle(idx);
    let k = Math.round(mine.length * fraction);
    if (fraction > 0 && k === 0 && mine.length >= 2) k = 1;
    if (k >= mine.length) k = mine.length - 1;
    const chosen = new Set(idx.slice(0, k));
    mine.forEach((it, i) => (chosen.has(i) ? val : train).push(it));
  }
  return { train, val };
}

/** Views per training image for an augmentation: `views` (default 4, at least 1), or 1 when the augmentation is none. */
export function viewCount(augment: AugmentSpec, views: number = FINETUNE_DEFAULTS.views): number {
  if (!Number.isInteger(views) || views < 1) throw invalidParameter('views', 'a positive integer', views);
  return isIdentitySpec(augment) ? 1 : views;
}

/** The parameters of view `v` of the image whose content key is `imageKey`: view 0 is the un-augmented original. */
export function viewParams(augment: AugmentSpec, seed: number, imageKey: string, v: number): ViewParams {
  return v === 0 ? IDENTITY_VIEW : sampleView(augment, viewRng(seed, imageKey, v));
}

/** The trainer configuration of a fine-tune: FINETUNE_DEFAULTS under `overrides` (`hidden` set for an MLP head). */
export function finetuneConfig(head: HeadKind, overrides: Partial<TrainConfig> = {}): Partial<TrainConfig> {
  const d = FINETUNE_DEFAULTS;
  const base: Partial<TrainConfig> = {
    epochs: d.epochs, batchSize: d.batchSize, optimizer: d.optimizer, weightDecay: d.weightDecay, labelSmoothing: d.labelSmoothing,
    dropout: d.dropout, schedule: d.schedule, patience: d.patience, seed: d.seed, normalize: d.normalize, hidden: head === 'mlp' ? d.hidden : 0,
  };
  const set = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
  return { ...base, ...set, ...(head !== 'mlp' ? { hidden: 0 } : {}) };
}

/** What collectExample / a ViewEmbedder reports for an image that could not be used. */
export interface SkippedImage {
  file: string;
  reason: string;
}

/**
 * The embedding session, injected by the driver. embed() returns, for item i and view v, row i·views + v
 * of `features` (dims floats each): view 0 the un-augmented image, views 1.. drawn by viewParams(augment,
 * seed, key, v) with the image's content key; with `rows`, only those rows, in that order. ok[i] is false
 * for an item that could not be decoded (its rows are ignored) and `skipped` says why. `hits` /
 * `computed`: embeddings from a cache / computed.
 */
export interface ViewEmbedder<T> {
  embed(
    items: readonly T[],
    opts: {
      views: number; augment: AugmentSpec; seed: number; signal?: AbortSignal; onProgress?(done: number, total: number): void;
      /** Views used once (phase 2's fresh views of each epoch): a driver's cache should not keep them. */
      transient?: boolean;
      /** The split these items are (collectEmbeddings says it): a driver may keep more per split (finetune: the open-set taps' rows). */
      split?: 'train' | 'val';
      /**
       * Only these rows (i·views + v, ascending, no repeats): `features` then holds rows.length × dims
       * floats, in this order, and nothing else is rendered or run. Phase 2 asks a mini-batch's views this
       * way (runtime/train/phase2.ts viewStream). Default: every row.
       */
      rows?: readonly number[];
    },
  ): Promise<{ features: Float32Array; dims: number; ok: boolean[]; skipped: SkippedImage[]; hits?: number; computed?: number }>;
}

export interface TrainOptions {
  /** linear (default) | mlp | prototype | auto (prototype below AUTO_PROTOTYPE_BELOW training images in a class). */
  head?: HeadKind | 'auto';
  /** Trainer overrides on FINETUNE_DEFAULTS (finetuneConfig). */
  config?: Partial<TrainConfig>;
}

const TRAIN_OPTION_KEYS = ['head', 'config'] as const satisfies readonly (keyof TrainOptions)[];
/** `never` while TRAIN_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedTrainOption = AssertNever<Exclude<keyof TrainOptions, (typeof TRAIN_OPTION_KEYS)[number]>>;

export interface TransferResult {
  head: HeadWeights;
  /** The trainer's result (undefined for a prototype head). */
  training?: TrainResult;
  /** Metrics on the validation examples, or on the training examples when there are none. */
  metrics: Metrics;
  /** Whether `metrics` were measured on validation examples. */
  validated: boolean;
  /** Validation accuracy of the nearest-class-mean baseline on the same embeddings (null without validation). */
  prototypeAccuracy: number | null;
  /** Accuracy of the head on the training examples (every view). */
  trainAccuracy: number;
}

export interface Transfer {
  readonly labels: readonly string[];
  /** Embedding width (0 until the first example). */
  readonly dims: number;
  /**
   * Add one image: `rows` holds its `views` embedding rows (default 1) back to back — a training image
   * its views (view 0 the un-augmented one), a validation image exactly one. `label` is a class index or
   * name; `split` defaults to train. The first example fixes the width (rows.length / views). Throws on
   * a bad label, width or view count.
   */
  collectExample(label: number | string, rows: Float32Array, opts?: { split?: 'train' | 'val'; views?: number }): void;
  /** Images collected per class. */
  counts(): { train: number[]; val: number[] };
  trainSet(): FeatureSet;
  /** undefined when no validation image was collected. */
  valSet(): FeatureSet | undefined;
  /** Train the head (refuses a class without training images, and an option or `config` key it does not take); keeps it for evaluate / export. */
  train(opts?: TrainOptions, hooks?: TrainHooks): Promise<TransferResult>;
  /** Metrics of the trained head on `set` (default: the validation examples, else the training ones). */
  evaluate(set?: FeatureSet): Metrics;
  /** The trained head (throws before train()). */
  head(): HeadWeights;
  /** Backbone (its embedding graph, built once) + trained head → one ONNX classifier with labels and preprocessing, and for a classification head its open-set calibration (openSetForHead: an `unknown_score` output, the card's `openSet`). */
  export(backbone: EmbeddingGraph | { model: OnnxModel; cut: CutSpec }, preprocess: PreprocessSpec, provenance?: Record<string, unknown>): Uint8Array;
}

/** A fresh transfer learner over `labels` (at least two classes). */
export function createTransfer(opts: { labels: readonly string[] }): Transfer {
  checkOptionKeys('createTransfer', opts, ['labels']);
  const labels = [...opts.labels];
  const K = labels.length;
  if (K < 2) throw new EdgetuneError('EINPUT', 'training needs at least two classes');
  let dims = 0;
  const rows = { train: [] as Float32Array[], val: [] as Float32Array[] };
  const rowLabels = { train: [] as number[], val: [] as number[] };
  const images = { train: new Array<number>(K).fill(0), val: new Array<number>(K).fill(0) };
  let trained: HeadWeights | undefined;
  const set = (which: 'train' | 'val'): FeatureSet => {
    return { features: concatFloat32(rows[which]), labels: Int32Array.from(rowLabels[which]), dims, classes: K };
  };
  const metricsOf = (head: HeadWeights, s: FeatureSet) => computeMetrics(predictions(predictHead(head, s.features), K), s.labels, K);
  const t: Transfer = {
    labels,
    get dims() {
      return dims;
    },
    collectExample(label, r, { split = 'train', views = 1 } = {}) {
      const y = typeof label === 'string' ? labels.indexOf(label) : label;
      if (!(Number.isInteger(y) && y >= 0 && y < K)) throw invalidParameter(undefined, `a class index in 0..${K - 1} or one of ${labels.join(', ')}`, label);
      if (!(Number.isInteger(views) && views >= 1)) throw invalidParameter('views', 'a positive integer', views);
      if (split === 'val' && views !== 1) throw invalidParameter('a validation image', 'one view', views);
      if (!dims) dims = r.length / views;
      if (!Number.isInteger(dims) || dims < 1 || r.length !== views * dims) {
        const d = dims;
        if (!Number.isInteger(d) || d < 1) dims = 0;
        throw new EdgetuneError('EARG', `Expected ${views} view(s) of ${Number.isInteger(d) && d >= 1 ? d : 'equal'} floats but received ${r.length} floats`);
      }
      for (let o = 0; o < r.length; o += dims) {
        rows[split].push(r.subarray(o, o + dims));
        rowLabels[split].push(y);
      }
      images[split][y]!++;
    },
    counts: () => ({ train: [...images.train], val: [...images.val] }),
    trainSet: () => set('train'),
    valSet: () => (rowLabels.val.length ? set('val') : undefined),
    async train(o = {}, hooks = {}) {
      checkOptionKeys('train', o, TRAIN_OPTION_KEYS);
      checkOptionKeys('train', o.config, TRAIN_CONFIG_KEYS, 'config');
      const empty = images.train.findIndex((n) => n === 0);
      if (empty >= 0) throw new EdgetuneError('EINPUT', `class "${labels[empty]}" has no training images`);
      const train = set('train');
      const val = t.valSet();
      let kind = o.head ?? FINETUNE_DEFAULTS.head;
      if (kind === 'auto') kind = Math.min(...images.train) < AUTO_PROTOTYPE_BELOW ? 'prototype' : 'linear';
      const proto = prototypeHead(train);
      let training: TrainResult | undefined;
      if (kind === 'prototype') trained = proto;
      else {
        training = await trainHead(train, val, finetuneConfig(kind, o.config), hooks);
        trained = training.head;
      }
      const metrics = metricsOf(trained, val ?? train);
      return {
        head: trained,
        training,
        metrics,
        validated: Boolean(val),
        prototypeAccuracy: val ? metricsOf(proto, val).accuracy : null,
        trainAccuracy: metricsOf(trained, train).accuracy,
      };
    },
    evaluate(s) {
      return metricsOf(t.head(), s ?? t.valSet() ?? set('train'));
    },
    head() {
      if (!trained) throw new EdgetuneError('EARG', 'no trained head yet: call train() first');
      return trained;
    },
    export(backbone, preprocess, provenance) {
      const graphOrModel = 'kind' in backbone ? backbone : backbone.model;
      // every classifier carries its open-set calibration (runtime/train/openset.ts): unknown_score + tempered softmax
      const openSet = openSetForHead(t.head(), set('train'), t.valSet());
      return exportClassifierModel(graphOrModel, backbone.cut, t.head(), labels, preprocess, provenance, openSet);
    },
  };
  return t;
}

export interface CollectOptions<T> {
  train: readonly T[];
  val?: readonly T[];
  augment: AugmentSpec;
  /** Views per training image (see the module header); 1 with augmentation none. Default FINETUNE_DEFAULTS.views. */
  views?: number;
  seed?: number;
  signal?: AbortSignal;
  onProgress?(stage: 'train' | 'val', done: number, total: number): void;
}

const COLLECT_OPTION_KEYS = ['train', 'val', 'augment', 'views', 'seed', 'signal', 'onProgress'] as const satisfies readonly (keyof CollectOptions<unknown>)[];
/** `never` while COLLECT_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedCollectOption = AssertNever<Exclude<keyof CollectOptions<unknown>, (typeof COLLECT_OPTION_KEYS)[number]>>;

export interface CollectResult<T> {
  /** The items that embedded (the others are in `skipped`). */
  train: T[];
  val: T[];
  views: number;
  dims: number;
  skipped: SkippedImage[];
  /** Embeddings computed / taken from the embedder's cache. */
  computed: number;
  hits: number;
  /** Wall time of the embedding, in seconds. */
  seconds: number;
}

/** Embed the training images (`views` each) and the validation images (view 0) with `embedder` and collect them into `t`. Errors: EARG for an option it does not take (checkOptionKeys). */
export async function collectEmbeddings<T extends { label: number }>(t: Transfer, embedder: ViewEmbedder<T>, o: CollectOptions<T>): Promise<CollectResult<T>> {
  checkOptionKeys('collectEmbeddings', o, COLLECT_OPTION_KEYS);
  const t0 = performance.now();
  const views = viewCount(o.augment, o.views);
  const seed = o.seed ?? FINETUNE_DEFAULTS.seed;
  const tr = await embedder.embed(o.train, { views, augment: o.augment, seed, split: 'train', signal: o.signal, onProgress: (d, n) => o.onProgress?.('train', d, n) });
  const val = o.val ?? [];
  const va = val.length
    ? await embedder.embed(val, { views: 1, augment: {}, seed, split: 'val', signal: o.signal, onProgress: (d, n) => o.onProgress?.('val', d, n) })
    : { features: new Float32Array(0), dims: tr.dims, ok: [], skipped: [], hits: 0, computed: 0 };
  const keptTrain: T[] = [];
  const keptVal: T[] = [];
  o.train.forEach((it, i) => {
    if (!tr.ok[i]) return;
    t.collectExample(it.label, tr.features.subarray(i * views * tr.dims, (i + 1) * views * tr.dims), { split: 'train', views });
    keptTrain.push(it);
  });
  val.forEach((it, i) => {
    if (!va.ok[i]) return;
    t.collectExample(it.label, va.features.subarray(i * va.dims, (i + 1) * va.dims), { split: 'val' });
    keptVal.push(it);
  });
  return {
    train: keptTrain,
    val: keptVal,
    views,
    dims: tr.dims,
    skipped: [...tr.skipped, ...va.skipped],
    computed: (tr.computed ?? 0) + (va.computed ?? 0),
    hits: (tr.hits ?? 0) + (va.hits ?? 0),
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The provenance a fine-tuned model carries in its `edgetune.model` metadata, one shape for every driver
 * (the CLI and library: tool 'edgetune finetune'; the kiosk page: 'edgetune kiosk'). `finetune --resume`
 * reads it: the backbone comes from `base`, the earlier classes from the resume data beside the model
 * (`dataset.resume`), or without it from the dataset folders again.
 */
export interface FinetuneProvenance {
  tool: 'edgetune finetune' | 'edgetune kiosk';
  /** The base model (id, file sha256), the cut, and `key`: the embedding-cache key of the backbone the exported model embeds with (after phase 2 the tuned one's, never the base's). */
  base: { id: string; sha256: string; key: string; cut: string };
  /**
   * Folders as given relative to the working directory when inside it, else their names (never an
   * absolute path: a model is shared; the page writes FROM_PAGE); `sha256` hashes the sorted content
   * hashes of every image used, `images` counts them, `resume` names the resume data written beside the model;
   * `examples`: folders of more images of existing classes added when resuming (finetune's `addExamples`).
   */
  dataset: { train: string; val?: string; valSplit: number; added: { name: string; dir: string }[]; examples?: { name: string; dir: string }[]; images?: number; sha256?: string; resume?: string };
  augment: string;
  views: number;
  head: string;
  seed: number;
  /** ISO 8601 time of the export. */
  created: string;
  /** With phase 2: where the backbone was cut, the blocks asked for (null for a named tensor), the backbone learning rate. */
  unfreeze?: { cut: string; blocks: number | null; lrBackbone: number };
}

/** `dataset.train` of a model taught in the kiosk page: its samples have no folder (resume it from its resume data). */
export const FROM_PAGE = '(kiosk samples)';
