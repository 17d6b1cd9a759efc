// `finetune(data, options)`: the library's fine-tune (Node), everything `edgetune finetune` does; the
// command is a thin driver over it (parse → call → print). It reads the dataset (a folder of class
// folders, or a `{file, label}` list; a CSV for the multilabel / regression tasks), embeds with
// runtime/train/node/embed.ts (onnxruntime-node, cached on disk), trains through the browser-safe
// fine-tune module (runtime/train/finetune.ts, the one the kiosk page drives too) and, with `unfreeze`,
// the one phase-2 module (runtime/train/phase2.ts), and writes the output set atomically
// (runtime/io/atomic.ts writeAtomicSet): the ONNX model, `<name>.resume.bin` (what `resume` needs),
// `<name>.report.json`, with `int8` the float model `<name>.fp32.onnx` and the calibration table; the
// picture `<name>.report.png` is drawn last and a failure to draw it is a warning. `resume` extends a
// model this function (or the kiosk page) exported from its resume data, reading only the added
// classes' folders and `addExamples`' folders (more images of its own classes). Progress goes to
// `onProgress`, warnings to `onWarning` (and the report); an aborted `signal` stops the run between
// steps with nothing written.

import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { formatAugmentation, isIdentitySpec, parseAugmentation, type AugmentSpec } from '../augment/ops.js';
import { checkNoEmptyClass, classCounts, finetuneItems, imbalanceWarning, type DatasetItem, type SkippedFile } from './dataset.js';
import { Embedder, EmbeddingCache, loadBackbone, sha256, type Backbone, type EmbedResult } from './embed.js';
import { checkOneOf, EdgetuneError, invalidParameter, messageOf } from '../../core/errors.js';
import { TAIL_AVERAGES } from '../graph/tail-trainer.js';
import { CLASS_NAME_RULE, isClassName } from '../../core/labels.js';
import { exportClassifierModel, headFromModel } from '../export.js';
import { layeredOpenSetForHead, MIN_LAYERED_VAL_ROWS, openSetForHead } from '../openset.js';
import { openSetLayers, openSetTaps, priorTapRows, tapRowsOf, tapSets } from './openset-taps.js';
import { checkUnfreezeBiases, frozenUnder, planUnfreeze, UNFREEZE_DEFAULTS } from '../finetune-tail.js';
import { runPhase2, tailWeightsBytes, tunedKeyText, type Phase2Summary } from '../phase2.js';
import type { SessionFactory } from '../graph/session.js';
import { createSession, type SessionOptions } from '../../session/session.js';
import { finetuneTargets } from './finetune-targets.js';
import { TASKS, type MultilabelMetrics, type RegressionMetrics } from '../tasks.js';
import { finetuneSummary, type FinetuneSummary } from '../summary.js';
import { reportPng } from './report.js';
import type { HeadWeights, Metrics, TrainConfig, TrainResult } from '../index.js';
import { collectEmbeddings, createTransfer, FINETUNE_DEFAULTS as D, stratifiedSplit, viewCount, type FinetuneProvenance, type HeadKind, type ViewEmbedder } from '../finetune.js';
import { checkWritable, writeAtomicSet, type AtomicEntry } from '../../io/atomic.js';
import { checkDirPath, checkPathGiven } from '../../io/paths.js';
import { addedItems, encodeResume, exampleItems, feedPrior, itemName, openResumedModel, readResume, resumeDataOf, resumeKey, resumePath, withoutPriorImages, type ResumeData } from './resume.js';
import { sharedByHash, sharedFilesWarning, type SharedFiles } from '../../io/files.js';
import { isQuantizedGraph } from '../../onnx/quantized.js';
import { calibrationTablePathOf, fp32PathOf, quantizeFinetuned, type Int8Report } from './int8.js';
import { arg, checkFinetuneOptionKeys, FINETUNE_OPTION_KEYS, intIn, itemsOfList, numIn, trainConfigOf, type FinetuneOptions, type LabelledFile } from './finetune-options.js';

export type { FinetuneOptions, FinetuneProgress, LabelledFile } from './finetune-options.js';

/**
 * What finetune() returns and writes as `<name>.report.json`: the one FinetuneSummary both drivers fill
 * (runtime/train/summary.ts: labels, counts, head, epochs, accuracy, baseline, per-class scores,
 * confusion, history, phase 2 as `unfreeze`), with this run's files, timing and warnings.
 */
export interface FinetuneReport extends FinetuneSummary {
  task?: 'classification';
  /** The model file written (absolute). */
  model: string;
  /** The backbone's id. */
  base: string;
  skipped: SkippedFile[];
  augment: string;
  views: number;
  /** Wall seconds: embedding the images, training (both phases), fitting the open-set score and building the exported graph, and the whole run. */
  timing: { embeddingS: number; trainingS: number; openSetS: number; totalS: number; embedded: number; cacheHits: number };
  warnings: string[];
  report: { json: string; png: string };
  /** sha256 of the model file this report describes. */
  modelSha256?: string;
  /** Validation images byte-identical to training images: count and up to 3 [validation, training] pairs. */
  leakage?: SharedFiles;
  /**
   * With int8 and a float backbone: the float file kept beside the int8 one, the quantized op counts,
   * the calibration images (drawn from the training folder), and both models scored on the same
   * held-apart validation images (`images` of them; null fields without validation data).
   */
  int8?: Int8Report;
  /** With resume's `addExamples`: the images embedded for each class they added to (training images; included in `counts.train`). */
  examples?: Record<string, number>;
}

/** The report of a multilabel or regression fine-tune (`<name>.report.json`). */
export interface TargetsReport {
  task: 'multilabel' | 'regression';
  model: string;
  base: string;
  names: string[];
  train: number;
  val: number;
  views: number;
  augment: string;
  head: HeadWeights['kind'];
  config: TrainConfig;
  bestEpoch: number;
  epochs: number;
  validated: boolean;
  metrics: MultilabelMetrics | RegressionMetrics;
  history: TrainResult['history'];
  skipped: { where: string; reason: string }[];
  /** Validation images byte-identical to training images. */
  leakage: SharedFiles;
  warnings: string[];
  totalS: number;
}

const round = (s: number) => Math.round(s * 100) / 100;

/** A folder as provenance keeps it: relative to the working directory when inside it, else its name. */
function shownDir(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.basename(dir);
}

/** `<name>.report.json` / `<name>.report.png` beside `<name>.onnx`. */
export function reportPaths(out: string): { json: string; png: string } {
  const base = out.replace(/\.onnx$/i, '');
  return { json: `${base}.report.json`, png: `${base}.report.png` };
}

/**
 * Fine-tune a classifier on `data` and write the output set (see the module header): `data` is a folder
 * with one sub-folder of images per class, a `{file, label}` list, or, with `task` multilabel /
 * regression, a CSV (multilabel: or a folder with labels.csv); with `resume`, `data` is unused (pass
 * undefined), `addClass` names the new classes' folders and `addExamples` folders of more images of
 * classes the model has (training images, embedded with its own backbone). Returns the report written as
 * `<name>.report.json`. Errors (EdgetuneError): EARG for a bad option, EINPUT for bad data (a missing
 * or empty class, a folder with one class), EMODEL for a model that cannot be read or resumed, the
 * trainer's divergence error, and `signal.reason` when aborted; nothing is written then.
 */
export async function finetune(data: string | readonly LabelledFile[] | undefined, o: FinetuneOptions & { task?: 'classification' }): Promise<FinetuneReport>;
export async function finetune(data: string, o: FinetuneOptions & { task: 'multilabel' | 'regression' }): Promise<TargetsReport>;
export async function finetune(data: string | readonly LabelledFile[] | undefined, o: FinetuneOptions): Promise<FinetuneReport | TargetsReport>;
export async function finetune(data: string | readonly LabelledFile[] | undefined, o: FinetuneOptions): Promise<FinetuneReport | TargetsReport> {
  const t0 = performance.now();
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    o.onWarning?.(m);
  };
  const progress = o.onProgress ?? (() => undefined);
  // ---- options (all checked before any work)
  checkFinetuneOptionKeys('finetune', o, FINETUNE_OPTION_KEYS);
  // an empty path ("$DIR" unset) is refused naming its option: '' is the current directory, which was read as the data
  if (typeof data === 'string') checkPathGiven(data, 'data', 'a folder or CSV file');
  if (typeof o.val === 'string') checkPathGiven(o.val, 'val', 'a folder or CSV file');
  if (o.resume !== undefined) checkPathGiven(o.resume, 'resume', 'a model file');
  o.addClass?.forEach((a, i) => checkDirPath(a.dir, `addClass[${i}].dir`));
  o.addExamples?.forEach((a, i) => checkDirPath(a.dir, `addExamples[${i}].dir`));
  let augment: AugmentSpec;
  try {
    augment = typeof o.augment === 'object' ? o.augment : parseAugmentation(o.augment ?? D.augment);
  } catch (err) {
    throw new EdgetuneError('EARG', messageOf(err));
  }
  intIn('views', o.views, 1, 64);
  const viewsAsked = o.views ?? D.views;
  if (isIdentitySpec(augment) && o.views !== undefined && viewsAsked > 1) warn('--augment none: one view per image (--views ignored)');
  let headKind: HeadKind = o.head ?? (o.hidden !== undefined ? 'mlp' : D.head);
  if (!['linear', 'mlp', 'prototype'].includes(headKind)) throw arg('head', 'one of linear, mlp, prototype', headKind);
  if (headKind === 'linear' && o.hidden !== undefined) throw new EdgetuneError('EARG', '--hidden needs --head mlp');
  let cfg = trainConfigOf(o, headKind);
  const seed = cfg.seed ?? D.seed;
  numIn('valSplit', o.valSplit, 0, 0.9);
  const valSplit = o.valSplit ?? D.valSplit;
  if (typeof o.out !== 'string' || !/\.onnx$/i.test(o.out)) throw arg('out', 'a file name ending in .onnx', o.out);
  const out = path.resolve(o.out);
  const added = o.addClass ?? [];
  if (added.length && !o.resume) throw new EdgetuneError('EARG', '--add-class needs --resume <model.onnx>');
  // a label the card, `classify`'s lines, Triton's labels.txt and a class folder can all hold
  for (const a of added) {
    if (!isClassName(a.name)) throw invalidParameter('--add-class', CLASS_NAME_RULE, a.name);
  }
  if (o.addExamples?.length && !o.resume) throw new EdgetuneError('EARG', '--add-examples needs --resume <model.onnx>');
  if (!o.resume && data === undefined) throw new EdgetuneError('EARG', 'finetune: expected the training data (a folder of class folders, or a {file, label} list)');
  if (o.resume && data !== undefined) throw new EdgetuneError('EARG', 'finetune: with resume the data comes from the resumed model and addClass: pass undefined as the data');
  const unfreeze = o.unfreeze;
  if (unfreeze !== undefined && typeof unfreeze === 'number') intIn('unfreeze', unfreeze, 1, 1000);
  if (unfreeze === undefined && (o.backboneLr !== undefined || o.unfreezeEpochs !== undefined)) throw new EdgetuneError('EARG', '--backbone-lr and --unfreeze-epochs need --unfreeze <n> or --unfreeze-from <tensor>');
  if (unfreeze !== undefined && headKind === 'prototype') throw new EdgetuneError('EARG', '--unfreeze needs a trained head: --head linear or mlp');
  if (unfreeze !== undefined && o.resume) {
    throw new EdgetuneError('EARG', "--unfreeze trains from every image's pixels and --resume keeps only their embeddings: resume without --unfreeze (a tuned backbone stays tuned), or run finetune --unfreeze on the training folders with the new class in them");
  }
  if (unfreeze === undefined && (o.unfreezeViews !== undefined || o.unfreezeSchedule !== undefined || o.layerLrDecay !== undefined || o.unfreezeAverage !== undefined || o.unfreezeMixup !== undefined || o.unfreezeBiases !== undefined || o.refit !== undefined || o.keepUnfrozen !== undefined)) {
    throw new EdgetuneError('EARG', '--unfreeze-views, --unfreeze-schedule, --layer-lr-decay, --unfreeze-average, --unfreeze-mixup, --unfreeze-biases, --refit and --keep-unfrozen need --unfreeze <n|all> or --unfreeze-from <tensor>');
  }
  if (o.unfreezeViews !== undefined && !['fresh', 'cached'].includes(o.unfreezeViews)) throw arg('unfreezeViews', 'fresh or cached', o.unfreezeViews);
  if (o.unfreezeSchedule !== undefined && !['constant', 'cosine', 'warmup-cosine'].includes(o.unfreezeSchedule)) throw arg('unfreezeSchedule', 'constant, cosine or warmup-cosine', o.unfreezeSchedule);
  numIn('layerLrDecay', o.layerLrDecay, 0, 1, true);
  if (o.unfreezeAverage !== undefined) checkOneOf('unfreezeAverage', o.unfreezeAverage, TAIL_AVERAGES);
  numIn('unfreezeMixup', o.unfreezeMixup, 0, Infinity);
  if (o.unfreezeBiases !== undefined) checkUnfreezeBiases(o.unfreezeBiases);
  numIn('backboneLr', o.backboneLr, 0, 10, true);
  intIn('unfreezeEpochs', o.unfreezeEpochs, 1, 100000);
  const task = o.task ?? 'classification';
  if (!TASKS.includes(task)) throw arg('task', `one of ${TASKS.join(', ')}`, task);
  if (task !== 'classification' && (unfreeze !== undefined || o.resume || o.int8)) throw new EdgetuneError('EARG', `--task ${task} trains a head on the frozen backbone: --unfreeze, --resume and --int8 are for classification`);
  const list = Array.isArray(data) ? (data as readonly LabelledFile[]) : undefined;
  if (list && task !== 'classification') throw new EdgetuneError('EARG', `--task ${task} reads its targets from a CSV: give its path as the data`);
  if (list && o.int8) throw new EdgetuneError('EARG', 'int8 calibrates on a folder of training images: give the data as a folder (or quantize the exported model with quantizeModel)');
  const paths = reportPaths(out);
  const resumeFile = resumePath(out);
  // every file of the output set, before any work; none may be the base model (`resume: m.onnx` with
  // `out: m.onnx` replaces m.onnx on purpose)
  await checkWritable(out, '--out', {
    also: [paths.json, resumeFile, fp32PathOf(out), calibrationTablePathOf(out)],
    inputs: o.resume ? [] : [o.model],
  });
  const session = o.session ?? {};
  // an empty --cache is refused (it was the default cache without a word)
  const cache = o.cache === null ? null : new EmbeddingCache(o.cache !== undefined ? path.resolve(checkDirPath(o.cache, 'cache')) : undefined);

  // ---- backbone and data
  let backbone: Backbone;
  let trainDir: string | undefined = typeof data === 'string' ? path.resolve(data) : undefined;
  let prior: ResumeData | undefined;
  let provTrain: string | undefined;
  let provAdded: { name: string; dir: string }[] = [];
  let valDir = typeof o.val === 'string' ? o.val : undefined;
  const valList = Array.isArray(o.val) ? (o.val as readonly LabelledFile[]) : undefined;
  let split = o.val ? 0 : valSplit;
  const addedDirs: { name: string; dir: string }[] = added.map((a) => ({ name: a.name, dir: path.resolve(a.dir) }));
  // resume's more images of existing classes (and, without resume data, those of earlier resumes, read again)
  const exampleDirs: { name: string; dir: string }[] = (o.addExamples ?? []).map((a) => ({ name: a.name, dir: path.resolve(a.dir) }));
  let provExamples: { name: string; dir: string }[] = [];
  if (o.resume) {
    const file = path.resolve(o.resume);
    // external data (weights in model.onnx.data) is read relative to the model file and inlined: the model written is self-contained
    // an int8 model is resumed from its float pair (<name>.fp32.onnx); its resume data is keyed by the named file
    const { keyBytes, model: loaded } = await openResumedModel(file, warn);
    const prev = headFromModel(loaded, o.resume);
    // the resumed model's head kind (an MLP's hidden sizes too) unless the options name one: a prototype or
    // MLP model resumed stays one (it became a linear head without a word)
    if (o.head === undefined && o.hidden === undefined && prev.head.kind !== headKind) {
      headKind = prev.head.kind;
      cfg = trainConfigOf({ ...o, ...(headKind === 'mlp' ? { hidden: prev.head.layers.slice(0, -1).map((l) => l.out) } : {}) }, headKind);
    }
    prior = await readResume(file, resumeKey(keyBytes), warn);
    const prov = prev.info.provenance as unknown as FinetuneProvenance | undefined;
    // a multilabel / regression model has provenance too (its CSV), but no resume data: say which it is
    if (prev.head.task && prev.head.task !== 'classification') throw new EdgetuneError('EARG', `${o.resume}: a ${prev.head.task} model; --resume is for classification models: train again on its CSV with the new rows`, { subject: o.resume });
    if (!prov?.base?.key || !prov.dataset?.train) throw new EdgetuneError('EMODEL', `${o.resume}: has no fine-tuning provenance (base model, dataset folders); it cannot be resumed`);
    backbone = { id: prov.base.id, model: prev.model, spec: prev.info.preprocess, cut: prev.cut, key: prov.base.key, sha256: prov.base.sha256 };
    trainDir = path.resolve(prov.dataset.train);
    provTrain = path.isAbsolute(prov.dataset.train) ? shownDir(trainDir) : prov.dataset.train;
    // with resume data the earlier added classes are in it: their folders are kept as provenance only
    if (prior) provAdded = (prov.dataset.added ?? []).filter((a) => !added.some((n) => n.name === a.name)).map((a) => ({ name: a.name, dir: path.isAbsolute(a.dir) ? shownDir(a.dir) : a.dir }));
    if (!valDir && prov.dataset.val && !prior) valDir = prov.dataset.val;
    if (!valDir && o.valSplit === undefined) split = prov.dataset.valSplit;
    const earlier = (prov.dataset.examples ?? []).filter((a) => !exampleDirs.some((n) => n.name === a.name));
    if (prior) provExamples = earlier.map((a) => ({ name: a.name, dir: path.isAbsolute(a.dir) ? shownDir(a.dir) : a.dir }));
    else exampleDirs.unshift(...earlier.map((a) => ({ name: a.name, dir: path.resolve(a.dir) })));
    if (!prior) addedDirs.unshift(...(prov.dataset.added ?? []).filter((a) => !added.some((n) => n.name === a.name)).map((a) => ({ name: a.name, dir: path.resolve(a.dir) })));
    if (!o.augment) augment = parseAugmentation(prov.augment);
    if (o.model) warn('--model is ignored with --resume (the backbone comes from the resumed model)');
  } else {
    backbone = await loadBackbone(o.model ?? 'mobilenetv2-int8', o.card);
    if (backbone.assumed) warn(`${backbone.id}: nothing describes some of this backbone; assumed ${backbone.assumed.join('; ')}`);
  }
  const views = viewCount(augment, viewsAsked);
  if (task !== 'classification') return finetuneTargetsRun(task, { csv: trainDir!, valCsv: valDir, valSplit: split, backbone, augment, views, head: headKind, config: cfg, out, paths, cache, session, o, warn, warnings, t0 });
  // phase 2: where to cut, checked before any embedding work (an int8 backbone is refused here)
  const plan = unfreeze !== undefined ? planUnfreeze(backbone.model, backbone.cut.tensor, unfreeze, backbone.id, backbone.spec, o.unfreezeBiases ?? UNFREEZE_DEFAULTS.biases) : undefined;
  // resuming with the resume data: only the added classes' folders are read
  let labels: string[];
  let trainItems: DatasetItem[];
  let valItems: DatasetItem[];
  let skipped: SkippedFile[];
  if (prior) {
    ({ labels, train: trainItems, val: valItems, skipped } = await addedItems(prior.labels, addedDirs, prior.images.some((im) => im.split === 'val') || split > 0 ? valSplit : 0, seed));
  } else if (list) {
    const t = itemsOfList(list);
    labels = t.labels;
    skipped = [];
    if (valList) {
      trainItems = t.items;
      valItems = itemsOfList(valList, labels, 'val').items;
    } else ({ train: trainItems, val: valItems } = createSplit(t.items, labels.length, split, seed));
  } else {
    ({ labels, train: trainItems, val: valItems, skipped } = await finetuneItems({ trainDir: trainDir!, valDir, added: addedDirs, valSplit: split, addedValSplit: valSplit, seed }).catch((err) => {
      if (o.resume && err instanceof EdgetuneError) throw new EdgetuneError(err.code, `${err.message} (${o.resume} has no ${path.basename(resumePath(o.resume))} beside it, so --resume reads the original training folders again)`, { subject: err.subject });
      throw err;
    }));
  }
  // more images of the model's classes: training images only (the validation images stay the model's)
  let moreItems = exampleDirs.length ? await exampleItems(labels, exampleDirs, skipped) : [];
  if (prior && moreItems.length) {
    // an image the resume data holds (same bytes) is in the model's data already: added again it would count twice
    const { items, known } = await withoutPriorImages(moreItems, prior);
    moreItems = items;
    if (known.length) warn(`--add-examples: skipped ${known.length} image${known.length > 1 ? 's' : ''} already in ${o.resume}'s data (the same bytes as an image its resume data holds): ${known.slice(0, 3).map((i) => itemName(i.file)).join(', ')}${known.length > 3 ? ', …' : ''}`);
    // every example skipped and no class added: said as such (it went on to "no image could be embedded")
    if (known.length && !moreItems.length && !trainItems.length && !valItems.length) throw new EdgetuneError('EINPUT', `nothing new to train: every example is already in ${o.resume}'s data (${known.length} image${known.length > 1 ? 's' : ''} with the same bytes as images its resume data holds)`);
  }
  trainItems.push(...moreItems);
  for (const s of skipped) warn(`skipped ${s.file}: ${s.reason}`);

  // ---- embeddings (runtime/train/finetune.ts collects them; embed.ts reads the files and caches)
  const transfer = createTransfer({ labels });
  // the open-set taps' features come from the same backbone pass as the embedding (runtime/train/node/openset-taps.ts);
  // a resume takes its earlier images' tap rows from the resume data, and keeps the single-embedding score when it has none
  const priorTaps = prior ? priorTapRows(prior) : undefined;
  const taps = openSetTaps(backbone).filter(() => !prior || priorTaps);
  const embedder = await Embedder.open(backbone, session, { taps });
  const hashes = new Map<string, string>();
  const runs: Partial<Record<'train' | 'val', EmbedResult>> = {};
  const files: ViewEmbedder<DatasetItem> = {
    embed: async (items, e) => {
      const r = await embedder.embed(items.map((i) => i.file), { ...e, cache });
      items.forEach((it, i) => r.hashes[i] && hashes.set(it.file, r.hashes[i]!));
      if (e.split) runs[e.split] = r;
      return r;
    },
  };
  // the resumed model's images first, from its resume data (rows in its order)
  const priorItems = prior ? feedPrior(transfer, prior, hashes) : undefined;
  let collected;
  try {
    collected = await collectEmbeddings(transfer, files, {
      train: trainItems, val: valItems, augment, views, seed, signal: o.signal,
      onProgress: (s, done, total) => progress({ stage: 'embed', split: s, done, total }),
    });
  } finally {
    await embedder.dispose();
  }
  for (const s of collected.skipped) {
    skipped.push(s);
    warn(`skipped ${s.file}: ${s.reason}`);
  }
  const newVal = collected.val; // image files (the resumed model's are embeddings only), for the int8 scores
  if (priorItems) {
    collected.train = [...priorItems.train, ...collected.train];
    collected.val = [...priorItems.val, ...collected.val];
  }
  // leakage: validation images byte-identical to training images (the embeddings are keyed by content already)
  const leakage = sharedByHash(collected.train, collected.val, hashes);
  const leakWarning = sharedFilesWarning(leakage, 'validation', 'training', collected.val.length);
  if (leakWarning) warn(leakWarning);
  checkNoEmptyClass(collected.train, labels, trainDir ?? '');
  const trainCounts = classCounts(collected.train, labels.length);
  const imb = imbalanceWarning(trainCounts, labels);
  if (imb) warn(imb);

  // ---- phase 1: the head
  const tt = performance.now();
  let trained;
  try {
    trained = await transfer.train({ head: headKind, config: cfg }, { signal: o.signal, onEpoch: (stats) => progress({ stage: 'epoch', phase: 1, epochs: cfg.epochs ?? D.epochs, stats }) });
  } catch (err) {
    throw err instanceof Error && !(err instanceof EdgetuneError) && err !== o.signal?.reason ? new EdgetuneError('EARG', messageOf(err)) : err;
  }
  const { validated, prototypeAccuracy: protoAcc } = trained;
  let { head, metrics } = trained;
  const tTrain = (performance.now() - tt) / 1000;

  // ---- phase 2 (unfreeze): runtime/train/phase2.ts, which asks for the frozen part's activations a mini-batch
  // at a time (viewStream), from the disk cache where it holds them
  let phase2: Phase2Summary | undefined;
  let p2Result: { metrics: Metrics; summary: Phase2Summary } | undefined;
  let tunedBackbone;
  // after phase 2 the model embeds with the tuned backbone: its cache key and every image's rows under it
  let tunedKey: string | undefined;
  let tunedRows: { train: Float32Array; val?: Float32Array } | undefined;
  if (plan) {
    const cutDims = (plan.cut.cutShape.slice(1) as number[]).reduce((a, b) => a * b, 1);
    const atInput = plan.cut.frozen.graph.node.length === 0;
    const frozen = await Embedder.open({ ...backbone, model: plan.cut.frozen, cut: { tensor: plan.cut.cut, pool: false, dims: cutDims }, key: sha256(`${backbone.sha256}|unfreeze|${plan.cut.cut}`) }, session);
    // training sessions do not spin: the optimizer runs in JS between steps (2 threads on 2 busy cores: a
    // phase-2 epoch 5.0 s spinning vs 2.9 s not, bench:finetune); and plan no memory pattern: a step through the
    // whole backbone (the default biases) held 1.62 GB with one, 0.93 GB without (SessionOptions.memoryPattern)
    const createSessionFor: SessionFactory = (bytes) => createSession(bytes, { ...session, spinning: false, memoryPattern: false, onWarning: () => undefined });
    let p2;
    try {
      p2 = await runPhase2({
        plan, head, classes: labels.length, train: collected.train, val: collected.val, views, augment, seed,
        // phase 2's fresh views of each epoch are used once: read from the disk cache (view 0), never written to it;
        // a cut at the input (the frozen part is the preprocessing alone: --unfreeze-biases all) is not cached at
        // all: its activations are the preprocessed image (0.6 MB a view at 224×224), cheaper to decode again than to store
        embedder: { embed: (items, e) => frozen.embed(items.map((i) => i.file), { ...e, cache: atInput ? null : cache, readOnlyCache: e.transient }) },
        createSession: createSessionFor,
        config: cfg,
        settings: {
          lrBackbone: o.backboneLr, epochs: o.unfreezeEpochs, ...(o.patience !== undefined ? { patience: o.patience } : {}),
          freshViews: o.unfreezeViews === undefined ? undefined : o.unfreezeViews === 'fresh', schedule: o.unfreezeSchedule, layerLrDecay: o.layerLrDecay, average: o.unfreezeAverage, mixup: o.unfreezeMixup, refit: o.refit, alwaysKeep: o.keepUnfrozen,
        },
        blocks: plan.blocks,
        signal: o.signal,
        onActivations: (done, total) => progress({ stage: 'activations', cut: plan.cut.cut, done, total }),
        onEpoch: (stats, epochs) => progress({ stage: 'epoch', phase: 2, epochs, stats }),
      });
    } finally {
      await frozen.dispose();
    }
    phase2 = p2.summary;
    if (p2.tuned) {
      head = p2.head;
      metrics = p2.metrics;
      p2Result = p2;
      tunedBackbone = p2.tuned.backbone;
      tunedRows = p2.tuned.embeddings;
      tunedKey = sha256(tunedKeyText(backbone.key, plan.cut.cut, sha256(tailWeightsBytes(p2.tuned.tailWeights))));
    } else {
      // the never-worse rule (runtime/train/phase2.ts keepPhase2): the head-only model is exported
      p2Result = { metrics, summary: p2.summary };
      warn(`phase 2 not kept: ${p2.summary.keepReason}; the head-only model is written`);
    }
  }

  // ---- export
  const provenance: FinetuneProvenance = {
    tool: 'edgetune finetune',
    base: { id: backbone.id, sha256: backbone.sha256, key: tunedKey ?? backbone.key, cut: backbone.cut.tensor },
    dataset: {
      train: provTrain ?? (trainDir ? shownDir(trainDir) : LIST),
      val: valDir ? shownDir(path.resolve(valDir)) : valList ? LIST : undefined,
      valSplit: split,
      added: [...provAdded, ...addedDirs.map((a) => ({ name: a.name, dir: shownDir(a.dir) }))],
      ...(provExamples.length || exampleDirs.length ? { examples: [...provExamples, ...exampleDirs.map((a) => ({ name: a.name, dir: shownDir(a.dir) }))] } : {}),
      images: collected.train.length + collected.val.length,
      sha256: sha256([...collected.train, ...collected.val].map((i) => hashes.get(i.file) ?? '').sort().join('\n')),
      resume: path.basename(resumeFile),
    },
    augment: formatAugmentation(augment),
    views,
    head: headKind,
    seed,
    created: new Date().toISOString(),
    ...(phase2?.kept ? { unfreeze: { cut: phase2.cut, blocks: phase2.blocks, lrBackbone: phase2.lrBackbone } } : {}),
  };
  // a backbone with open-set taps (every row's taps: a resume's from its resume data; a validation set; after phase 2
  // only when the tuned part starts after every tap, which it then leaves unchanged): the multi-layer score
  // (runtime/train/node/openset-taps.ts)
  const tOpenSet = performance.now();
  const valSet = transfer.valSet();
  const tapsKept = !tunedBackbone || (plan !== undefined && !!tunedRows?.val && taps.every((t) => frozenUnder(plan, t)));
  const tapRows = tapsKept && taps.length
    ? tapSets(taps, {
        train: [...(priorTaps ? [priorTaps.train] : []), ...(runs.train ? [tapRowsOf(runs.train)] : [])],
        val: [...(priorTaps ? [priorTaps.val] : []), ...(runs.val ? [tapRowsOf(runs.val)] : [])],
      }, { train: transfer.trainSet().labels.length, val: valSet?.labels.length ?? 0 })
    : undefined;
  const enoughVal = (valSet?.labels.length ?? 0) >= MIN_LAYERED_VAL_ROWS;
  if (tapRows && !enoughVal) warn(`open-set score: ${valSet?.labels.length ?? 0} validation image${valSet?.labels.length === 1 ? '' : 's'} cannot standardise the multi-layer score (it needs ${MIN_LAYERED_VAL_ROWS}); the embedding's score is used`);
  const layers = tapRows && valSet && enoughVal ? openSetLayers(tapRows, transfer.trainSet(), valSet) : undefined;
  // the embedding graph the embedder ran, reused (not rebuilt) for the export
  const bytes = tunedBackbone
    ? exportClassifierModel(tunedBackbone, backbone.cut, head, labels, backbone.spec, provenance as unknown as Record<string, unknown>,
        // the open-set calibration (runtime/train/openset.ts) on the tuned backbone's embeddings, with the frozen taps' layers when kept
        layers
          ? layeredOpenSetForHead(head, { ...valSet!, features: tunedRows!.val! }, layers)
          : openSetForHead(head, { ...transfer.trainSet(), features: tunedRows!.train }, tunedRows!.val && transfer.valSet() ? { ...transfer.valSet()!, features: tunedRows!.val } : undefined))
    : layers
      ? exportClassifierModel(embedder.graph, backbone.cut, head, labels, backbone.spec, provenance as unknown as Record<string, unknown>, layeredOpenSetForHead(head, valSet!, layers))
      : transfer.export(embedder.graph, backbone.spec, provenance as unknown as Record<string, unknown>);
  const openSetS = round((performance.now() - tOpenSet) / 1000);
  const report: FinetuneReport = {
    model: out,
    base: backbone.id,
    ...finetuneSummary(transfer, trained, p2Result),
    skipped,
    augment: formatAugmentation(augment),
    views,
    timing: { embeddingS: round(collected.seconds), trainingS: round(tTrain), openSetS, totalS: 0, embedded: collected.computed, cacheHits: collected.hits },
    warnings,
    report: paths,
    leakage,
    ...(moreItems.length ? { examples: Object.fromEntries(exampleDirs.map((d) => [d.name, moreItems.filter((i) => labels[i.label] === d.name && !collected.skipped.some((s) => s.file === i.file)).length])) } : {}),
  };
  if (o.signal?.aborted) throw o.signal.reason;
  await mkdir(path.dirname(out), { recursive: true });
  // what resume needs: every image's rows (the transfer's order: train rows, then validation rows)
  const resumeData = resumeDataOf({
    labels, dims: transfer.dims, train: collected.train, val: collected.val, prior: priorItems, views: collected.views, hashes,
    trainRows: tunedRows?.train ?? transfer.trainSet().features, valRows: tunedRows ? tunedRows.val : transfer.valSet()?.features,
    // the taps' rows when the model carries the multi-layer score, so that a resume keeps it
    taps: layers && tapRows,
  });
  // The outputs are one set (runtime/io/atomic.ts writeAtomicSet): the model, its resume data and
  // report JSON (and with int8 the float model and the calibration table) are all written to temp
  // files first and only then renamed, so an interrupted run leaves the old set, never a mix.
  const set: AtomicEntry[] = [];
  const alreadyInt8 = isQuantizedGraph(backbone.model.graph);
  if (o.int8 && alreadyInt8) warn(`--int8: the backbone ${backbone.id} is already int8 (only the small head is float); the model is written as it is`);
  let modelBytes = bytes;
  if (o.int8 && !alreadyInt8) {
    // the training folder may be gone when resuming from resume data: calibrate on the added classes then
    const calib = prior && !(await stat(trainDir!).then((st) => st.isDirectory(), () => false)) ? addedDirs[0]!.dir : trainDir!;
    if (calib !== trainDir) warn(`--int8: ${trainDir} is gone; calibrating on ${calib}`);
    // an abort here stops calibration between images: nothing is written, the old set stays
    progress({ stage: 'int8', done: 0, total: 1 });
    const q = await quantizeFinetuned({ floatBytes: bytes, out, calib, seed, spec: backbone.spec, labels, val: newVal, session, onWarning: warn, signal: o.signal });
    progress({ stage: 'int8', done: 1, total: 1 });
    modelBytes = q.bytes;
    report.int8 = q.report;
    if (!valDir && collected.val.length) warn(`--int8: calibration images are drawn from ${trainDir}, which also holds the ${collected.val.length} validation images; pass --val to keep them apart`);
    set.push(...q.entries);
  } else {
    // no float twin or table of an older int8 run is left beside this model
    set.push({ file: out, data: bytes }, { file: fp32PathOf(out), remove: true }, { file: calibrationTablePathOf(out), remove: true });
  }
  report.modelSha256 = sha256(modelBytes);
  report.timing.totalS = round((performance.now() - t0) / 1000);
  set.push({ file: resumeFile, data: encodeResume({ ...resumeData, model: resumeKey(modelBytes) }) }, { file: paths.json, data: JSON.stringify(report, null, 2) + '\n' });
  // the picture is drawn after the model and its JSON are written: the old one goes with the set,
  // so that no picture of an older model stays beside this one
  set.push({ file: paths.png, remove: true });
  o.signal?.throwIfAborted();
  await writeAtomicSet(set);
  // ---- the picture: drawn last; a failure is a warning (the model and JSON are written)
  try {
    const png = await reportPng({
      title: `${path.basename(out)}: ${labels.length} classes on ${backbone.id}`,
      // both phases' curves: phase 2's epochs follow phase 1's (lr = the backbone's)
      history: [...report.history, ...(phase2?.history ?? []).map((e) => ({ epoch: report.history.length + e.epoch, lr: phase2!.lrBackbone, trainLoss: e.trainLoss, trainAccuracy: e.trainAccuracy, valLoss: e.valLoss, valAccuracy: e.valAccuracy, ms: e.ms }))],
      bestEpoch: phase2 ? report.history.length + phase2.bestEpoch : report.bestEpoch,
      // each phase in its own epoch numbers, as the summary prints them
      phases: phase2 ? [{ name: 'phase 1', epochs: report.history.length, best: report.bestEpoch }, { name: 'phase 2', epochs: phase2.history.length, best: phase2.bestEpoch }] : undefined,
      labels,
      confusion: metrics.confusion,
      notes: [
        `${validated ? 'validation' : 'training'} accuracy ${metrics.accuracy.toFixed(3)}${protoAcc !== null ? ` (prototype baseline ${protoAcc.toFixed(3)})` : ''}; head ${head.kind}; best epoch ${report.bestEpoch}/${report.epochs}`,
        `augment ${report.augment}, ${views} view(s); embedding ${report.timing.embeddingS}s, training ${report.timing.trainingS}s`,
        ...(phase2 ? [`phase 2: ${phase2.blocks ?? 'from ' + phase2.cut} block(s) unfrozen at lr ${phase2.lrBackbone}, accuracy ${phase2.accuracyBefore.toFixed(3)} → ${phase2.accuracy.toFixed(3)}, best epoch ${phase2.bestEpoch}/${phase2.epochs}${phase2.kept ? (phase2.refit ? ', refit on train + validation' : '') : ' (not kept: head-only model written)'}`] : []),
      ],
    });
    await writeAtomicSet([{ file: paths.png, data: png }]);
  } catch (err) {
    warn(`the report picture ${paths.png} could not be drawn or written (${messageOf(err).split('\n')[0]}); the model and ${path.basename(paths.json)} are written`);
    await rm(paths.png, { force: true }).catch(() => undefined);
    await writeAtomicSet([{ file: paths.json, data: JSON.stringify(report, null, 2) + '\n' }]).catch(() => undefined);
  }
  return report;
}

/** `dataset.train` / `dataset.val` of a model trained from a `{file, label}` list (no folder to read again: resume it from its resume data). */
const LIST = '(file list)';

/** The split of a list without validation data: FINETUNE's stratifiedSplit (0 = none). */
function createSplit(items: DatasetItem[], classes: number, fraction: number, seed: number): { train: DatasetItem[]; val: DatasetItem[] } {
  return fraction > 0 ? stratifiedSplit(items, classes, fraction, seed) : { train: items, val: [] };
}



/** task multilabel | regression: runtime/train/node/finetune-targets.ts does the work; this writes the model and its report as one set. */
async function finetuneTargetsRun(
  task: 'multilabel' | 'regression',
  a: {
    csv: string; valCsv?: string; valSplit: number; backbone: Backbone; augment: AugmentSpec; views: number; head: HeadKind; config: Partial<TrainConfig>;
    out: string; paths: { json: string; png: string }; cache: EmbeddingCache | null; session: SessionOptions; o: FinetuneOptions; warn: (m: string) => void; warnings: string[]; t0: number;
  },
): Promise<TargetsReport> {
  const r = await finetuneTargets({
    task, csv: a.csv, valCsv: a.valCsv, valSplit: a.valSplit, backbone: a.backbone, augment: a.augment, views: a.views, head: a.head, config: a.config,
    cache: a.cache, session: a.session, signal: a.o.signal,
    hooks: { onEpoch: (stats) => a.o.onProgress?.({ stage: 'epoch', phase: 1, epochs: a.config.epochs ?? D.epochs, stats }) },
    onProgress: (split, done, total) => a.o.onProgress?.({ stage: 'embed', split, done, total }),
  });
  for (const s of r.skipped) a.warn(`skipped ${s.where}: ${s.reason}`);
  const leak = sharedFilesWarning(r.leakage, 'validation', 'training', r.val.length);
  if (leak) a.warn(leak);
  if (r.noPositives.length) {
    const n = r.noPositives.length;
    a.warn(`validation (${a.valCsv ?? 'the held-out split'}) has no positives for ${n > 1 ? 'labels' : 'label'} ${r.noPositives.join(', ')}: ${n > 1 ? 'their' : 'its'} recall and F1 are not measured there (support 0; the macro F1 leaves out a label no validation row has unless the model predicts it)`);
  }
  const report: TargetsReport = {
    model: a.out, task, base: a.backbone.id, names: r.names, train: r.train.length, val: r.val.length, views: a.views, augment: formatAugmentation(a.augment),
    head: r.training.head.kind, config: r.training.config, bestEpoch: r.training.bestEpoch, epochs: r.training.history.length, validated: r.validated,
    metrics: r.metrics, history: r.training.history, skipped: r.skipped, leakage: r.leakage, warnings: a.warnings, totalS: round((performance.now() - a.t0) / 1000),
  };
  if (a.o.signal?.aborted) throw a.o.signal.reason;
  // the model and its report are one set (replaced together)
  await writeAtomicSet([{ file: a.out, data: r.bytes }, { file: a.paths.json, data: JSON.stringify(report, null, 2) + '\n' }]);
  return report;
}
