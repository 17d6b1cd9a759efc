// Fine-tuning a head for the course's other tasks (Node): multilabel (sigmoid + binary cross-entropy,
// labels from a CSV `file,label1;label2`) and regression (linear output + mean squared error, values
// from a CSV `file,value`). The same pieces as classification: the backbone's embedding graph and its
// on-disk cache (embed.ts), views with the module's rule (view 0 clean, the others augmented), the
// trainer with its task losses (runtime/train/tasks.ts), and one exported ONNX file whose card says
// the task. Validation: a second CSV (multilabel: its labels a subset of the training CSV's), or a
// seeded 20% (FINETUNE_DEFAULTS.valSplit) of the rows.

import type { AugmentSpec } from '../augment/ops.js';
import { exportClassifierModel } from '../export.js';
import { FINETUNE_DEFAULTS, finetuneConfig, type HeadKind } from '../finetune.js';
import { predictHead, trainHead } from '../index.js';
import { multilabelMetrics, regressionMetrics, type MultilabelMetrics, type RegressionMetrics } from '../tasks.js';
import type { FeatureSet, TrainConfig, TrainHooks, TrainResult } from '../types.js';
import { createRng } from '../../core/rng.js';
import { EdgetuneError } from '../../core/errors.js';
import type { SessionOptions } from '../../session/session.js';
import { Embedder, type Backbone, type EmbeddingCache } from './embed.js';
import { findSharedFiles, type SharedFiles } from '../../io/files.js';
import { inTrainingOrder, readMultilabelCsv, readRegressionCsv, targetMatrix, type TargetDataset, type TargetItem } from './targets.js';

export interface TargetFinetuneOptions {
  task: 'multilabel' | 'regression';
  /** The training CSV (multilabel: a folder with labels.csv works too). */
  csv: string;
  /** A validation CSV; default a seeded `valSplit` of the training rows. */
  valCsv?: string;
  valSplit?: number;
  backbone: Backbone;
  augment: AugmentSpec;
  views: number;
  head: HeadKind;
  config: Partial<TrainConfig>;
  cache: EmbeddingCache | null;
  session: SessionOptions;
  signal?: AbortSignal;
  hooks?: TrainHooks;
  onProgress?(stage: 'train' | 'val', done: number, total: number): void;
}

export interface TargetFinetuneResult {
  bytes: Uint8Array;
  names: string[];
  train: TargetItem[];
  val: TargetItem[];
  skipped: { where: string; reason: string }[];
  training: TrainResult;
  /** Metrics on the validation rows (or the training rows without any). */
  metrics: MultilabelMetrics | RegressionMetrics;
  validated: boolean;
  /** Validation images byte-identical to training images (io/files.ts findSharedFiles). */
  leakage: SharedFiles;
  /** Multilabel: training labels that no validation row has (their support there is 0); [] otherwise. */
  noPositives: string[];
}

async function read(task: TargetFinetuneOptions['task'], csv: string): Promise<TargetDataset> {
  return task === 'multilabel' ? readMultilabelCsv(csv) : readRegressionCsv(csv);
}

/** Seeded split of rows (a fraction to validation, at least one when there are two or more rows). */
function splitRows(items: TargetItem[], fraction: number, seed: number): { train: TargetItem[]; val: TargetItem[] } {
  if (fraction <= 0 || items.length < 2) return { train: items, val: [] };
  const idx = items.map((_, i) => i);
  createRng(seed, 'split:targets').shuffle(idx);
  const k = Math.min(items.length - 1, Math.max(1, Math.round(items.length * fraction)));
  const held = new Set(idx.slice(0, k));
  return { train: items.filter((_, i) => !held.has(i)), val: items.filter((_, i) => held.has(i)) };
}

/**
 * Train and export a multilabel or regression head (see the module header). Errors: EINPUT for an
 * empty or mismatched dataset; EARG for `head: 'prototype'` (classification only).
 */
export async function finetuneTargets(o: TargetFinetuneOptions): Promise<TargetFinetuneResult> {
  if (o.head === 'prototype') {
    throw new EdgetuneError('EARG', `--head prototype is nearest-class-mean classification and has no ${o.task} form: use --head linear or --head mlp with --task ${o.task}`);
  }
  const ds = await read(o.task, o.csv);
  const skipped = [...ds.skipped];
  let train = ds.items;
  let val: TargetItem[] = [];
  const seed = o.config.seed ?? FINETUNE_DEFAULTS.seed;
  if (o.valCsv) {
    const v = await read(o.task, o.valCsv);
    skipped.push(...v.skipped);
    val = o.task === 'multilabel' ? inTrainingOrder(v, ds, o.csv) : v.items;
    if (o.task === 'regression' && v.names.join('\u0000') !== ds.names.join('\u0000')) {
      throw new EdgetuneError('EINPUT', `${o.valCsv}: names ${v.names.join(', ')} differ from ${o.csv}'s (${ds.names.join(', ')})`, { subject: o.valCsv });
    }
  } else ({ train, val } = splitRows(train, o.valSplit ?? FINETUNE_DEFAULTS.valSplit, seed));
  const K = ds.names.length;
  // leakage: validation images byte-identical to training images (as for class folders)
  const leakage = await findSharedFiles(train.map((i) => i.file), val.map((i) => i.file));
  const embedder = await Embedder.open(o.backbone, o.session);
  let tr;
  let va;
  try {
    tr = await embedder.embed(train.map((i) => i.file), { views: o.views, augment: o.augment, seed, cache: o.cache, signal: o.signal, onProgress: (d, n) => o.onProgress?.('train', d, n) });
    va = val.length ? await embedder.embed(val.map((i) => i.file), { views: 1, cache: o.cache, signal: o.signal, onProgress: (d, n) => o.onProgress?.('val', d, n) }) : undefined;
  } finally {
    await embedder.dispose();
  }
  // Rows of images that could not be decoded are dropped (and reported).
  const keep = (items: TargetItem[], r: { ok: boolean[]; features: Float32Array; dims: number; views: number; skipped: { file: string; reason: string }[] }) => {
    for (const s of r.skipped) skipped.push({ where: s.file, reason: s.reason });
    const kept = items.filter((_, i) => r.ok[i]);
    const rows: Float32Array[] = [];
    items.forEach((_, i) => {
      if (r.ok[i]) rows.push(r.features.subarray(i * r.views * r.dims, (i + 1) * r.views * r.dims));
    });
    const features = new Float32Array(rows.reduce((a, x) => a + x.length, 0));
    let off = 0;
    for (const x of rows) features.set(x, (off += x.length) - x.length);
    const targets = targetMatrix(kept.flatMap((it) => Array<TargetItem>(r.views).fill(it)), K);
    const set: FeatureSet = { features, labels: new Int32Array(0), targets, dims: r.dims, classes: K };
    return { kept, set };
  };
  const t = keep(train, tr);
  if (!t.kept.length) throw new EdgetuneError('EINPUT', `${o.csv}: no training image could be read`, { subject: o.csv });
  const v = va ? keep(val, va) : undefined;
  const config = { ...finetuneConfig(o.head, o.config), task: o.task };
  const training = await trainHead(t.set, v?.set, config, { signal: o.signal, ...o.hooks });
  const evalSet = v?.set ?? t.set;
  const pred = predictHead(training.head, evalSet.features);
  const metrics = o.task === 'multilabel' ? multilabelMetrics(pred, evalSet.targets!, K) : regressionMetrics(pred, evalSet.targets!, K);
  const bytes = exportClassifierModel(o.backbone.model, o.backbone.cut, training.head, ds.names, o.backbone.spec, {
    tool: 'edgetune finetune',
    task: o.task,
    base: { id: o.backbone.id, sha256: o.backbone.sha256, cut: o.backbone.cut.tensor },
    dataset: { csv: o.csv.split(/[\\/]/).pop(), rows: t.kept.length, ...(o.valCsv ? { valCsv: o.valCsv.split(/[\\/]/).pop() } : {}) },
    seed,
  });
  // multilabel: training labels no validation row has (a validation CSV of a subset of them, or a small split)
  const noPositives = o.task === 'multilabel' && v?.kept.length ? ds.names.filter((_, k) => v.kept.every((it) => !it.targets[k])) : [];
  return { bytes, names: ds.names, train: t.kept, val: v?.kept ?? [], skipped, training, metrics, validated: Boolean(v), leakage, noPositives };
}
