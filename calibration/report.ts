// The accuracy/speed report (Node): float and int8 models run side by side on the --eval images
// with the same provider: top-1 agreement, top-5 overlap, mean KL(p_float ‖ p_int8), labelled
// accuracy of both when every class folder maps to a model label (hymenoptera: ants → "ant" 310,
// bees → "bee" 309), file sizes and median single-image latency measured interleaved in one run.
// A regression model's outputs are values, not class scores: its report gives instead the mean and
// largest |int8 − float| of each output (in the output's units) and, where the eval folder has targets,
// MAE / RMSE / R² of both models against them (runtime/train/tasks.ts regressionMetrics).
// A multilabel model's outputs are one sigmoid per label, not a distribution over classes: its report
// gives instead the share of label decisions (on above classify's MULTILABEL_THRESHOLD) on which int8
// and float agree, the mean and largest |p_int8 − p_float| per label and, where the eval folder has a
// multilabel labels.csv, micro / macro F1 of both models (runtime/train/tasks.ts multilabelMetrics).
// evalTargets reads those targets from the eval folder's labels.csv.

import { stat } from 'node:fs/promises';
import path from 'node:path';
import { table } from '../runtime/core/format.js';
import { median } from '../runtime/core/stats.js';
import { EdgetuneError, messageOf } from '../runtime/core/errors.js';
import { decodeImage } from '../runtime/image/decode.js';
import { matchClassFolders } from '../runtime/core/labels.js';
import { klDivergence, MULTILABEL_THRESHOLD, toProbabilities, topK, type PostprocessSpec } from '../runtime/classify/postprocess.js';
import { toTensor, type PreprocessSpec } from '../runtime/image/preprocess.js';
import { createSession, type ModelSession, type SessionOptions } from '../runtime/session/session.js';
import { asFloat32 } from '../runtime/core/tensor.js';
import type { ModelTask } from '../runtime/core/model-card.js';
import { multilabelMetrics, regressionMetrics, type RegressionMetrics } from '../runtime/train/tasks.js';
import { inTrainingOrder, readMultilabelCsv, readRegressionCsv, type TargetDataset } from '../runtime/train/node/targets.js';
import type { SkippedFile } from './reader.js';
import type { SensitivityReport } from './sensitivity.js';
import type { PrecisionChoice } from './mixed.js';

/** A regression model's float-vs-int8 report (its outputs are values in the targets' units). */
export interface RegressionQuantReport {
  /** The outputs' names (the card's labels), in output order. */
  outputs: string[];
  /** Per output: mean over the images of |int8 − float|, in the output's units. */
  meanAbsDiff: number[];
  /** Per output: largest |int8 − float| over the images, in the output's units. */
  maxAbsDiff: number[];
  /**
   * Both models against the eval folder's targets (its labels.csv, `file,value` rows read as finetune
   * --val reads a regression CSV), on the images that have a row; null when the folder has none.
   */
  targets: { csv: string; images: number; float: RegressionMetrics; int8: RegressionMetrics } | null;
}

/** One model's F1 against a multilabel eval folder's targets (runtime/train/tasks.ts multilabelMetrics, at the report's threshold). */
export interface MultilabelF1 {
  microF1: number;
  macroF1: number;
}

/** A multilabel model's float-vs-int8 report (its outputs are one sigmoid probability per label). */
export interface MultilabelQuantReport {
  /** The labels (the card's), in output order. */
  labels: string[];
  /** A label is on when its probability is above this (classify's MULTILABEL_THRESHOLD, 0.5). */
  threshold: number;
  /** Share of label decisions (images × labels, on or off at `threshold`) on which int8 and float agree. */
  decisionAgreement: number;
  /** Per label: mean over the images of |p_int8 − p_float| (probabilities, 0..1). */
  meanAbsDiff: number[];
  /** Per label: largest |p_int8 − p_float| over the images. */
  maxAbsDiff: number[];
  /**
   * Both models against the eval folder's labels.csv (`file,label1;label2` rows, as finetune --task
   * multilabel --val reads them; its labels a subset of the model's), on the images that have a row;
   * null when the folder has none.
   */
  targets: { csv: string; images: number; float: MultilabelF1; int8: MultilabelF1 } | null;
}

export interface QuantReport {
  images: number;
  /**
   * Share of images whose top class agrees; null for a regression model (its outputs are values: see
   * `regression`) and for a multilabel model (its labels are decided one by one: see `multilabel`).
   */
  agreementTop1: number | null;
  /**
   * Mean share of the float model's top 5 classes among the int8 model's top 5; null for a model with
   * 5 classes or fewer (its "top 5" is every class, so the overlap says nothing), and for a regression or multilabel model.
   */
  top5Overlap: number | null;
  /** Mean KL(p_float ‖ p_int8) of softmax distributions; null for a regression or multilabel model. */
  meanKL: number | null;
  /** A regression model's differences and errors (absent otherwise). */
  regression?: RegressionQuantReport;
  /** A multilabel model's decision agreement, probability differences and F1 (absent otherwise). */
  multilabel?: MultilabelQuantReport;
  /**
   * Top-1 accuracy on the images inside class folders; null when the eval folder's classes do not all
   * map to model labels, and for a regression or multilabel model.
   */
  accuracyFloat: number | null;
  accuracyInt8: number | null;
  latencyFloatMs: number;
  latencyInt8Ms: number;
  /** latencyInt8Ms / latencyFloatMs */
  latencyRatio: number;
  sizeFloat: number;
  sizeInt8: number;
  provider: string;
  /** class folder → label index, for the folders that mapped (the folder rule: exact, normalised or singular, core/labels.ts). */
  classMap: Record<string, number>;
  skipped: SkippedFile[];
}

/** A classifier's report: its class-agreement figures are numbers. */
export type ClassQuantReport = QuantReport & { agreementTop1: number; meanKL: number };

/** `r` as a classifier's report. Errors: EARG when it is missing or a regression or multilabel model's (no class agreement to read). */
export function classReport(r: QuantReport | undefined): ClassQuantReport {
  if (!r || r.agreementTop1 === null || r.meanKL === null) {
    throw new EdgetuneError('EARG', `${r ? `a ${r.multilabel ? 'multilabel' : 'regression'} model's` : 'no'} quantization report: no top-1 agreement or KL to read`);
  }
  return r as ClassQuantReport;
}

export interface ModelSide {
  model: string | Uint8Array;
  size: number;
  spec: PreprocessSpec;
  inputName: string;
  outputName: string;
}

export interface EvaluateOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  post: PostprocessSpec;
  /**
   * The card's task; 'regression' reports differences in the outputs' units (and errors against
   * `targets`), 'multilabel' label-decision agreement and probability differences (and F1 against
   * `targets`), instead of class agreement.
   */
  task?: ModelTask;
  /**
   * A regression model's targets (the eval folder's labels.csv, runtime/train/node/targets.ts
   * readRegressionCsv), or a multilabel model's (readMultilabelCsv, 0/1 per model label in output order).
   */
  targets?: TargetDataset;
  /** Root of the eval folder (class = first folder level below it). */
  root: string;
  files: readonly string[];
  latencyRuns?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (s: SkippedFile) => void;
}



async function outputRow(session: ModelSession, side: ModelSide, img: Parameters<typeof toTensor>[0][number]): Promise<Float32Array> {
  const res = await session.run({ [side.inputName]: toTensor([img], side.spec) }, [side.outputName]);
  return asFloat32(res[side.outputName]!).slice();
}

export async function evaluateQuantized(floatSide: ModelSide, int8Side: ModelSide, opts: EvaluateOptions): Promise<QuantReport> {
  const sessionOpts = { providers: opts.providers ?? ['cpu'], threads: opts.threads, onWarning: opts.onWarning };
  const fs = await createSession(floatSide.model, sessionOpts);
  const qs = await createSession(int8Side.model, sessionOpts).catch(async (err) => {
    await fs.dispose();
    throw err;
  });
  const classMap: Record<string, number> = {};
  /** The class folder an image is in (the first level below the root); undefined for an image at the root itself, which has no label. */
  const folderOf = (file: string): string | undefined => {
    const parts = path.relative(opts.root, file).split(path.sep);
    return parts.length > 1 ? parts[0] : undefined;
  };
  const regression = opts.task === 'regression';
  const multilabel = opts.task === 'multilabel';
  // a regression model has no classes for folders to name; a multilabel image has several labels, not one folder's
  const folders = regression || multilabel ? [] : [...new Set(opts.files.map(folderOf).filter((d): d is string => d !== undefined))];
  // the folder rule every command uses (core/labels.ts); accuracy needs every folder matched
  const matching = matchClassFolders(folders, opts.post.labels);
  const allMapped = folders.length > 0 && matching.problems.length === 0;
  for (const m of matching.matched) classMap[m.folder] = m.index;
  if (matching.problems.length && folders.length) opts.onWarning?.(`--eval: no labelled accuracy: ${matching.problems.join('; ')}`);
  /** Images in a class folder: the labelled accuracy's denominator. */
  let labelled = 0;
  /** Decoded images outside every class folder (said after the loop when the folders are labelled). */
  const unlabelled: string[] = [];
  let n = 0;
  let agree = 0;
  let overlap = 0;
  /** Classes the model scores (from the first output seen). */
  let classes = Infinity;
  let kl = 0;
  let correctF = 0;
  let correctQ = 0;
  const skipped: SkippedFile[] = [];
  /**
   * Regression: per output, the sum and largest of |int8 − float|; multilabel: the same of the
   * probabilities, per label. Rows with targets (float, int8, truth).
   */
  const absSum: number[] = [];
  const absMax: number[] = [];
  const targetOf = new Map((opts.targets?.items ?? []).map((it) => [path.resolve(it.file), it.targets]));
  const withTargets = { float: [] as number[], int8: [] as number[], truth: [] as number[] };
  /** Multilabel: label decisions (at MULTILABEL_THRESHOLD) on which int8 and float agree. */
  let sameDecisions = 0;
  let sample: Parameters<typeof toTensor>[0][number] | undefined;
  let sampleQ: typeof sample;
  try {
    let done = 0;
    opts.onProgress?.(0, opts.files.length); // the stage begins
    for (const file of opts.files) {
      opts.signal?.throwIfAborted();
      let imgF;
      let imgQ;
      try {
        imgF = await decodeImage(file, floatSide.spec);
        imgQ = floatSide.spec.width === int8Side.spec.width && floatSide.spec.height === int8Side.spec.height ? imgF : await decodeImage(file, int8Side.spec);
      } catch (err) {
        const s = { file, error: messageOf(err) };
        skipped.push(s);
        opts.onSkip?.(s);
        opts.onProgress?.(++done, opts.files.length);
        continue;
      }
      sample ??= imgF;
      sampleQ ??= imgQ;
      const rf = await outputRow(fs, floatSide, imgF);
      const rq = await outputRow(qs, int8Side, imgQ);
      if (regression || multilabel) {
        // a multilabel model's values are its labels' probabilities (a sigmoid each, as classify reads them)
        const vf = multilabel ? toProbabilities(rf, opts.post.kind, 'multilabel') : rf;
        const vq = multilabel ? toProbabilities(rq, opts.post.kind, 'multilabel') : rq;
        vf.forEach((v, k) => {
          const d = Math.abs(vq[k]! - v);
          absSum[k] = (absSum[k] ?? 0) + d;
          absMax[k] = Math.max(absMax[k] ?? 0, d);
          if ((v > MULTILABEL_THRESHOLD) === (vq[k]! > MULTILABEL_THRESHOLD)) sameDecisions++;
        });
        const t = targetOf.get(path.resolve(file));
        if (t) {
          withTargets.float.push(...vf);
          withTargets.int8.push(...vq);
          withTargets.truth.push(...t);
        }
        n++;
        opts.onProgress?.(++done, opts.files.length);
        continue;
      }
      const pf = toProbabilities(rf, opts.post.kind);
      const pq = toProbabilities(rq, opts.post.kind);
      classes = pf.length;
      const tf = topK(pf, 5, opts.post);
      const tq = topK(pq, 5, opts.post);
      if (tf[0]!.index === tq[0]!.index) agree++;
      const setF = new Set(tf.map((t) => t.index));
      overlap += tq.filter((t) => setF.has(t.index)).length / 5;
      kl += klDivergence(pf, pq);
      const cls = allMapped ? classMap[folderOf(file) ?? ''] : undefined;
      if (allMapped && folderOf(file) === undefined) unlabelled.push(file);
      if (cls !== undefined) {
        labelled++;
        if (tf[0]!.index === cls) correctF++;
        if (tq[0]!.index === cls) correctQ++;
      }
      n++;
      opts.onProgress?.(++done, opts.files.length);
    }
    if (unlabelled.length) {
      opts.onWarning?.(`--eval: ${unlabelled.length} image${unlabelled.length > 1 ? 's are' : ' is'} not inside a class folder (${unlabelled.slice(0, 3).join(', ')}${unlabelled.length > 3 ? ', …' : ''}): counted in the float-vs-int8 agreement, not in the labelled accuracy`);
    }
    // Latency: interleaved single-image runs of the same input, medians.
    const lf: number[] = [];
    const lq: number[] = [];
    const runs = opts.latencyRuns ?? 30;
    if (sample && sampleQ) {
      const tf = toTensor([sample], floatSide.spec);
      const tq = toTensor([sampleQ], int8Side.spec);
      for (let i = 0; i < 3; i++) {
        await fs.run({ [floatSide.inputName]: tf }, [floatSide.outputName]);
        await qs.run({ [int8Side.inputName]: tq }, [int8Side.outputName]);
      }
      for (let i = 0; i < runs; i++) {
        let t0 = performance.now();
        await fs.run({ [floatSide.inputName]: tf }, [floatSide.outputName]);
        lf.push(performance.now() - t0);
        t0 = performance.now();
        await qs.run({ [int8Side.inputName]: tq }, [int8Side.outputName]);
        lq.push(performance.now() - t0);
      }
    }
    const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
    const latencyFloatMs = lf.length ? r4(median(lf)) : NaN;
    const latencyInt8Ms = lq.length ? r4(median(lq)) : NaN;
    const classScores = regression
      ? { agreementTop1: null, top5Overlap: null, meanKL: null, regression: regressionReport(opts, absSum, absMax, n, withTargets) }
      : multilabel
        ? { agreementTop1: null, top5Overlap: null, meanKL: null, multilabel: multilabelReport(opts, absSum, absMax, n, sameDecisions, withTargets) }
        : { agreementTop1: n ? r4(agree / n) : 0, top5Overlap: classes <= 5 ? null : n ? r4(overlap / n) : 0, meanKL: n ? Math.round((kl / n) * 1e6) / 1e6 : 0 };
    return {
      images: n,
      ...classScores,
      accuracyFloat: labelled ? r4(correctF / labelled) : null,
      accuracyInt8: labelled ? r4(correctQ / labelled) : null,
      latencyFloatMs,
      latencyInt8Ms,
      latencyRatio: r4(latencyInt8Ms / latencyFloatMs),
      sizeFloat: floatSide.size,
      sizeInt8: int8Side.size,
      provider: qs.provider,
      classMap,
      skipped,
    };
  } finally {
    await fs.dispose();
    await qs.dispose();
  }
}

/** Six significant digits (values in the outputs' units, whatever their scale). */
const sig6 = (x: number) => Number(x.toPrecision(6));

function roundMetrics(m: RegressionMetrics): RegressionMetrics {
  const r = (o: { mae: number; rmse: number; r2: number }) => ({ mae: sig6(o.mae), rmse: sig6(o.rmse), r2: Number.isNaN(o.r2) ? o.r2 : sig6(o.r2) });
  return { ...r(m), perOutput: m.perOutput.map(r) };
}

function regressionReport(opts: EvaluateOptions, absSum: number[], absMax: number[], n: number, t: { float: number[]; int8: number[]; truth: number[] }): RegressionQuantReport {
  const K = absSum.length;
  const outputs = Array.from({ length: K }, (_, k) => opts.post.labels[k] ?? `output ${k}`);
  const images = t.truth.length / Math.max(1, K);
  return {
    outputs,
    meanAbsDiff: absSum.map((s) => sig6(s / Math.max(1, n))),
    maxAbsDiff: absMax.map(sig6),
    targets: opts.targets && images ? { csv: opts.targets.csv, images, float: roundMetrics(regressionMetrics(t.float, t.truth, K)), int8: roundMetrics(regressionMetrics(t.int8, t.truth, K)) } : null,
  };
}

function multilabelReport(
  opts: EvaluateOptions,
  absSum: number[],
  absMax: number[],
  n: number,
  sameDecisions: number,
  t: { float: number[]; int8: number[]; truth: number[] },
): MultilabelQuantReport {
  const K = absSum.length;
  const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
  const images = t.truth.length / Math.max(1, K);
  const f1 = (probs: number[]): MultilabelF1 => {
    const m = multilabelMetrics(probs, t.truth, K, MULTILABEL_THRESHOLD);
    return { microF1: r4(m.microF1), macroF1: r4(m.macroF1) };
  };
  return {
    labels: Array.from({ length: K }, (_, k) => opts.post.labels[k] ?? `label ${k}`),
    threshold: MULTILABEL_THRESHOLD,
    decisionAgreement: n * K ? r4(sameDecisions / (n * K)) : 0,
    meanAbsDiff: absSum.map((s) => sig6(s / Math.max(1, n))),
    maxAbsDiff: absMax.map(sig6),
    targets: opts.targets && images ? { csv: opts.targets.csv, images, float: f1(t.float), int8: f1(t.int8) } : null,
  };
}

/** The human-readable table of a report. */
export function reportTable(r: QuantReport): string {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
  const mb = (b: number) => `${(b / 1048576).toFixed(2)} MB`;
  return table([
    ['metric', 'float', 'int8'],
    ...(r.regression || r.multilabel ? [] : [['accuracy (labelled)', pct(r.accuracyFloat), pct(r.accuracyInt8)]]),
    ['median latency', `${r.latencyFloatMs.toFixed(2)} ms`, `${r.latencyInt8Ms.toFixed(2)} ms`],
    ['file size', mb(r.sizeFloat), mb(r.sizeInt8)],
    ...(r.agreementTop1 === null ? [] : [['top-1 agreement', '', pct(r.agreementTop1)]]),
    ...(r.top5Overlap === null ? [] : [['top-5 overlap', '', pct(r.top5Overlap)]]),
    ...(r.meanKL === null ? [] : [['mean KL(float‖int8)', '', r.meanKL.toFixed(5)]]),
    ...(r.regression ? regressionRows(r.regression) : []),
    ...(r.multilabel ? multilabelRows(r.multilabel) : []),
    ['latency int8/float', '', r.latencyRatio.toFixed(3)],
    ['images', r.images, `${r.skipped.length} skipped`],
    // how the eval folders mapped to labels (the folder rule, core/labels.ts), when they did
    ...(Object.keys(r.classMap).length ? [['class folder → label', '', Object.entries(r.classMap).map(([f, i]) => `${f} → ${i}`).join(', ')]] : []),
  ]);
}

/** A regression report's rows: per output, |int8 − float| (mean, max) and, with targets, MAE / RMSE / R² of both. */
function regressionRows(g: RegressionQuantReport): (string | number)[][] {
  const rows: (string | number)[][] = [];
  g.outputs.forEach((name, k) => {
    rows.push([`mean |int8 − float| ${name}`, '', g.meanAbsDiff[k]!], [`max |int8 − float| ${name}`, '', g.maxAbsDiff[k]!]);
    const t = g.targets;
    if (t) {
      const f = t.float.perOutput[k]!;
      const q = t.int8.perOutput[k]!;
      rows.push([`MAE vs targets ${name}`, f.mae, q.mae], [`RMSE vs targets ${name}`, f.rmse, q.rmse], [`R² vs targets ${name}`, f.r2.toFixed(4), q.r2.toFixed(4)]);
    }
  });
  rows.push(['targets', '', g.targets ? `${g.targets.images} images with a row in ${g.targets.csv}` : 'none (no labels.csv in the eval folder)']);
  return rows;
}

/**
 * A multilabel report's rows: label decisions that agree, per label |p_int8 − p_float| (mean, max) and,
 * with targets, micro / macro F1 of both.
 */
function multilabelRows(g: MultilabelQuantReport): (string | number)[][] {
  const rows: (string | number)[][] = [[`label decisions agree (p > ${g.threshold})`, '', `${(g.decisionAgreement * 100).toFixed(1)}%`]];
  g.labels.forEach((name, k) => rows.push([`mean |p int8 − p float| ${name}`, '', g.meanAbsDiff[k]!.toFixed(4)], [`max |p int8 − p float| ${name}`, '', g.maxAbsDiff[k]!.toFixed(4)]));
  const t = g.targets;
  if (t) rows.push(['micro F1 vs targets', t.float.microF1.toFixed(4), t.int8.microF1.toFixed(4)], ['macro F1 vs targets', t.float.macroF1.toFixed(4), t.int8.macroF1.toFixed(4)]);
  rows.push(['targets', '', t ? `${t.images} images with a row in ${t.csv}` : 'none (no labels.csv in the eval folder)']);
  return rows;
}

/**
 * The sensitivity analysis as a table: the whole model, weights only, activations only, then the `top`
 * costliest tensors. `reportFile`: the report that holds every row besides --json (none without --eval,
 * nor for --keep-float, whose report describes the mixed model).
 */
export function sensitivityTable(s: SensitivityReport, top = 10, reportFile?: string): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const rows: (string | number)[][] = [
    ['quantized alone', 'op', 'mean KL', 'top-1 agreement'],
    ['whole model', '', s.full.meanKL.toFixed(5), pct(s.full.agreementTop1)],
    ['all weights', '', s.weightsOnly.meanKL.toFixed(5), pct(s.weightsOnly.agreementTop1)],
    ['all activations', '', s.activationsOnly.meanKL.toFixed(5), pct(s.activationsOnly.agreementTop1)],
  ];
  for (const e of s.entries.slice(0, top)) rows.push([`${e.kind === 'weights' ? 'weights of' : 'activation'} ${e.name}`, e.op, e.meanKL.toFixed(5), pct(e.agreementTop1)]);
  const more = s.entries.length > top ? `(${s.entries.length - top} more in --json${reportFile ? ` and ${reportFile}` : ''})\n` : '';
  return `sensitivity on ${s.images} calibration images (float model as reference; each row alone quantized, unfused):\n` + table(rows) + more;
}

/** Mixed precision (keepFloat 'auto') as a table: the kept units, then the `top` next by gain. */
export function precisionTable(c: PrecisionChoice, top = 5): string {
  const rows: (string | number)[][] = [['output kept float', 'op', 'excluded', 'KL gain', 'fp32 ms', 'int8 ms', 'cost ms', 'kept']];
  const kept = c.units.filter((u) => u.kept);
  for (const u of [...kept, ...c.units.filter((u) => !u.kept).slice(0, top)]) {
    rows.push([u.name, u.op, u.exclude.join(' '), u.klGain.toFixed(5), u.floatMs.toFixed(3), u.int8Ms.toFixed(3), u.costMs.toFixed(3), u.kept || '']);
  }
  return (
    `mixed precision on ${c.images} calibration images: whole int8 model KL ${c.full.meanKL.toFixed(5)}, top-1 agreement ${(c.full.agreementTop1 * 100).toFixed(1)}%; ` +
    `kernel time fp32 ${c.floatKernelMs.toFixed(2)} ms, int8 ${c.int8KernelMs.toFixed(2)} ms; the float units add ${c.addedMs.toFixed(3)} ms of a ${c.budgetMs.toFixed(3)} ms budget (estimated)\n` +
    table(rows) +
    `kept in float: ${c.exclude.length ? c.exclude.join(', ') : 'none'}\n`
  );
}

/**
 * A regression or multilabel model's targets for the --eval report: `<dir>/labels.csv` read as
 * finetune --val reads one (runtime/train/node/targets.ts). Regression (`labels`: the model's outputs):
 * readRegressionCsv's `file,value` or `file,v1;v2` rows, optional `file,<names>` header. Multilabel
 * (`labels`: the model's labels): readMultilabelCsv's `file,label1;label2` rows, 0/1 per model label
 * in output order (its labels a subset of the model's: inTrainingOrder). Bad rows are warned and left
 * out. Undefined for other tasks or when the folder has no labels.csv. Errors: EINPUT when a regression
 * CSV's values per row are not the model's outputs (or its header names others), or a multilabel CSV
 * names a label the model lacks.
 */
export async function evalTargets(dir: string, task: ModelTask | undefined, labels: readonly string[], model: string, onWarning?: (m: string) => void): Promise<TargetDataset | undefined> {
  if (task !== 'regression' && task !== 'multilabel') return undefined;
  const csv = path.join(dir, 'labels.csv');
  if (!(await stat(csv).then((s) => s.isFile(), () => false))) return undefined;
  const t = task === 'regression' ? await readRegressionCsv(csv) : await readMultilabelCsv(csv);
  for (const r of t.skipped) onWarning?.(`--eval: skipped ${r.where}: ${r.reason}`);
  if (task === 'multilabel') return { ...t, names: [...labels], items: inTrainingOrder(t, { names: [...labels] }, model) };
  const defaults = t.names.length === 1 ? ['value'] : t.names.map((_, i) => `value${i + 1}`);
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (t.names.length !== labels.length || (!same(t.names, defaults) && !same(t.names, labels))) {
    throw new EdgetuneError('EINPUT', `${csv}: its targets are ${t.names.join(';')} but ${model} outputs ${labels.join(';')}: the rows need one value per output, in that order`, { subject: csv });
  }
  return t;
}
