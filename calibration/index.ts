// int8 post-training quantization, as a library. The `edgetune quantize` command and
// `finetune --int8` call this.
//
//   quantizeModel(options: QuantizeOptions): Promise<QuantizeResult>
//
//   options.model        registry id or .onnx path (float32 or float16; refused if already quantized)
//   options.out          output .onnx path, written atomically (temp file + rename)
//   options.calib        calibration image folder (recursive); optional when options.cache holds
//                        histograms for this model
//   options.calibCount   images drawn from it with a seeded sample (default 300, seed options.seed = 1)
//   options.method       'minmax' | 'percentile' | 'entropy' | 'mse' (default 'percentile': the lowest
//                        mean KL to the float model on both shared models);
//                        options.percentile (default 99.999)
//   options.perChannel   per-channel int8 weights (default true); false = per-tensor
//   options.symmetric    int8 activations, zero point 0, dedicated Q/DQ pairs (TensorRT layout);
//                        default uint8 asymmetric activations (fuses into int8 kernels on x86 CPUs)
//   options.exclude      node names, operator types or node output names kept in float
//   options.excludeInputLayer  also the unit of the layer(s) reading the image (mixed.ts inputLayerUnit)
//   options.biasCorrection  correct Conv/Gemm biases for the weight rounding error (default true)
//   options.correctionImages  then re-measure each quantized layer's output mean on this many
//                        calibration images and correct its bias to the float mean, layer by layer
//                        (empirical bias correction, calibration/correct.ts; default 64, 0 = off)
//   options.gptqImages   re-round Conv weights with GPTQ on this many calibration images (default 0)
//   options.sensitivityImages  score each quantized layer's weights and each quantized activation
//                        alone on this many calibration images (calibration/sensitivity.ts; default 0)
//   options.keepFloat    mixed precision: keep the N layers whose int8 weights cost the most (the
//                        sensitivity report's weight entries, highest mean KL first, on
//                        sensitivityImages or DEFAULT_SENSITIVITY_IMAGES images) in float; the model is
//                        quantized twice (once to score, once with those layers excluded). Default 0
//                        'auto': chosen by measured accuracy and measured speed (calibration/mixed.ts): each
//                        layer's output kept float (the layer and the tensor's readers excluded) scored
//                        against the whole int8 model, every kernel of both models timed on this machine;
//                        kept float where int8 is not faster, then by KL gain per ms within latencyBudget
//   options.latencyBudget  for keepFloat 'auto': share of the int8 model's kernel time the float layers may
//                        add (default 0.1)
//   options.cache        calibration cache JSON: reused when it matches the model, else (re)written
//   options.eval         folder of images for the float-vs-int8 report (also written next to the
//                        model as <out>.report.json); options.evalCount limits it. A regression model's
//                        targets: the folder's labels.csv (`file,value` rows, as finetune --val reads them);
//                        a multilabel model's: the same file as `file,label1;label2` rows
//   options.preprocess / options.labels / options.outputKind / options.labelOffset: override or supply
//                        what the registry (or the model's embedded metadata) says
//   options.resolve      how a registry id is found (searchPath, cacheDir, download), as models/loader.ts
//   options.providers / threads / signal / onProgress(stage, done, total) / onSkip / onWarning
//
// Returns QuantizeResult: out, tableFile (TensorRT calibration table), cacheFile, cacheHit, method,
// calibrationImages, skipped files, quantized op counts, foldedActivations, adjustedChannels,
// biasCorrected, layersCorrected, gptqLayers, excluded, opsetFrom, ranges, sensitivity (with
// options.sensitivityImages), and report/reportFile when options.eval was given
// (QuantReport: agreementTop1, top5Overlap, meanKL, accuracyFloat, accuracyInt8, latencyFloatMs,
// latencyInt8Ms, latencyRatio, sizeFloat, sizeInt8, images, provider, classMap, skipped; for a
// regression model the class figures are null and `regression` gives |int8 − float| per output and,
// with targets, MAE / RMSE / R² of both; for a multilabel model `multilabel` gives the share of label
// decisions that agree at 0.5, |p_int8 − p_float| per label and, with targets, micro / macro F1 of both).
//
// Pipeline: decode → widen fp16 → drop Identity/Dropout → fold BatchNormalization → upgrade opset to
// 13 → fold constant weight reshapes and bias Adds (calibration/prepare.ts) → plan once (calibration/plan.ts)
// → stream activation ranges (calibration/collect.ts), keeping the first decoded images for the later
// passes → QDQ rewrite with bias correction (calibration/rewrite.ts) → empirical bias correction
// (calibration/correct.ts) → optional sensitivity analysis (calibration/sensitivity.ts) → embed `edgetune.model`
// metadata → write model, calibration cache and TensorRT table → evaluate (calibration/report.ts).

import { checkWritable, writeAtomicSet, type AtomicEntry } from '../runtime/io/atomic.js';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { RESOLVE_OPTION_KEYS, resolveModel, type ResolveOptions, type ResolvedModel } from '../models/loader.js';
import { EdgetuneError, checkOneOf } from '../runtime/core/errors.js';
import { checkOptionKeys, type AssertNever } from '../runtime/core/options.js';
import { checkDirPath, checkPathGiven } from '../runtime/io/paths.js';
import { METADATA_KEY, type EmbeddedModelInfo } from '../runtime/core/metadata.js';
import type { TensorData } from '../runtime/core/tensor.js';
import { setMetadataValue } from '../runtime/onnx/graph.js';
import { cloneModel, decodeModel, encodeModel } from '../runtime/onnx/model.js';
import type { PostprocessSpec } from '../runtime/classify/postprocess.js';
import type { PreprocessSpec } from '../runtime/image/preprocess.js';
import { checkCardLayerKeys, PREPROCESS_KEYS, type CardLayer } from '../runtime/core/model-card.js';
import type { SessionOptions } from '../runtime/session/session.js';
import { collectRanges, rangesFrom, readCache, sha256, tensorRtTable, writeAtomic, type CalibrationCache } from './collect.js';
import { parameterSource } from './layers.js';
import { planQuantization, refuseQuantized } from './plan.js';
import { prepareFloatModel, quantizationCard, readModelFile } from './prepare.js';
import { activationParamsFor, applyQdq } from './rewrite.js';
import { CALIBRATION_METHODS, DEFAULT_PERCENTILE, type CalibrationMethod, type Range } from './ranges.js';
import { calibrationBatches, keepImages, listCalibrationImages, seededSample, type SkippedFile } from './reader.js';
import { empiricalBiasCorrection } from './correct.js';
import { gptqConvWeights } from './gptq.js';
import { evalTargets, evaluateQuantized, type QuantReport } from './report.js';
import { DEFAULT_SENSITIVITY_IMAGES, quantizationSensitivity, type SensitivityReport } from './sensitivity.js';
import { choosePrecision, DEFAULT_LATENCY_BUDGET, inputLayerUnit, type PrecisionChoice } from './mixed.js';
import type { RangeCollector } from './ranges.js';

export { CALIBRATION_METHODS, type CalibrationMethod } from './ranges.js';
export { DEFAULT_SENSITIVITY_IMAGES, partiallyQuantized, quantizationSensitivity, type SensitivityEntry, type SensitivityReport } from './sensitivity.js';
export type { ClassQuantReport, MultilabelF1, MultilabelQuantReport, QuantReport, RegressionQuantReport } from './report.js';
export { classReport } from './report.js';
export { DEFAULT_LATENCY_BUDGET, inputLayerUnit, type UnitPrecision, type PrecisionChoice } from './mixed.js';
export { prepareFloatModel } from './prepare.js';
export { countOps } from './layers.js';

export type QuantizeStage = 'calibrate' | 'gptq' | 'correct' | 'sensitivity' | 'precision' | 'evaluate';

/** Calibration images the empirical bias correction re-measures layer outputs on by default. */
export const DEFAULT_CORRECTION_IMAGES = 64;
/** Calibration images GPTQ accumulates Conv input statistics on by default (0 = off). */
export const DEFAULT_GPTQ_IMAGES = 0;

export interface QuantizeOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  /** How the model reference is resolved (search path, cache, downloads). */
  resolve?: ResolveOptions;
  /** Registry id or .onnx path; with `modelBytes`, only the model's name in messages. */
  model: string;
  /** The float model's bytes, when the caller holds them (finetune --int8): no file is read. */
  modelBytes?: Uint8Array;
  out: string;
  /**
   * Write the output set (default true): `out`, `<out>.calibration.cache` and, with `eval`,
   * `<out>.report.json` (an older report is removed otherwise), together (runtime/io/atomic.ts
   * writeAtomicSet). false: nothing is written; the result's `files` hold the bytes for the caller's set.
   */
  write?: boolean;
  calib?: string;
  calibCount?: number;
  seed?: number;
  method?: CalibrationMethod;
  percentile?: number;
  perChannel?: boolean;
  symmetric?: boolean;
  exclude?: string[];
  /**
   * Also keep float the unit of the layer(s) reading the image input (calibration/mixed.ts
   * inputLayerUnit), found on the model this call decodes: put first in `exclude` and listed in the
   * result's `inputLayer`. Default false. (finetune --int8 sets it: the photo is not re-quantized.)
   */
  excludeInputLayer?: boolean;
  /** Correct each Conv/Gemm bias for the weights' rounding error using calibration means. Default true. */
  biasCorrection?: boolean;
  /**
   * Calibration images on which each quantized layer's output mean is re-measured and its bias
   * corrected to the float model's, layer by layer (with biasCorrection). Default 64; 0 turns it off.
   */
  correctionImages?: number;
  /**
   * Re-round Conv weights with GPTQ error feedback (calibration/gptq.ts) on this many calibration
   * images (same per-channel scales, same graph). Default 0 (off).
   */
  gptqImages?: number;
  /**
   * Score each quantized layer's weights and each quantized activation alone on this many
   * calibration images (calibration/sensitivity.ts): which tensors to --exclude. Default 0 (off).
   * Classifiers only (a softmax KL): EARG for a regression or multilabel model, as keepFloat.
   */
  sensitivityImages?: number;
  /**
   * Mixed precision: keep this many layers in float, the ones whose int8 weights alone cost the most
   * (mean KL, sensitivity analysis on `sensitivityImages`, default DEFAULT_SENSITIVITY_IMAGES, images).
   * 'auto': the layers chosen by measured accuracy and speed (calibration/mixed.ts choosePrecision, on
   * the same images; the result's `precision` has every layer's gain and cost). They are added to
   * `exclude`; the result lists them in `keptFloat`. Default 0.
   */
  keepFloat?: number | 'auto';
  /**
   * For keepFloat 'auto': the share of the int8 model's kernel time (this machine, `threads`) the
   * float layers may add, a fraction ≥ 0. Default DEFAULT_LATENCY_BUDGET (0.1).
   */
  latencyBudget?: number;
  cache?: string;
  eval?: string;
  evalCount?: number;
  /** Write <out>.report.json when evaluating. Default true. */
  writeReport?: boolean;
  /** The model card from CLI flags (--mean, --std, --range, --labels, …), below preprocess/labels/labelOffset/outputKind. */
  card?: CardLayer;
  preprocess?: PreprocessSpec;
  labels?: string[];
  labelOffset?: number;
  outputKind?: 'logits' | 'probabilities';
  /**
   * Quantize a model whose preprocessing nothing describes, with the assumed ImageNet habits (said
   * through onWarning). Default false: refused (the "is it described?" rule, core/model-card.ts).
   */
  allowAssumed?: boolean;
  signal?: AbortSignal;
  onProgress?: (stage: QuantizeStage, done: number, total: number) => void;
  onSkip?: (s: SkippedFile) => void;
}

export interface QuantizeResult {
  out: string;
  /** The TensorRT calibration table written next to the model. */
  tableFile: string;
  cacheFile?: string;
  /** True when ranges came from the cache without running calibration. */
  cacheHit: boolean;
  method: CalibrationMethod;
  calibrationImages: number;
  /** Files of the calibration sample that could not be decoded. */
  skipped: SkippedFile[];
  /** Quantized nodes by operator type. */
  quantized: Record<string, number>;
  foldedActivations: number;
  adjustedChannels: number;
  /** Conv/Gemm layers whose bias was corrected for the weight rounding error. */
  biasCorrected: number;
  /** Layers whose bias the empirical correction re-measured and adjusted. */
  layersCorrected: number;
  /** Conv layers whose int8 weights GPTQ re-rounded. */
  gptqLayers: number;
  excluded: string[];
  /** With excludeInputLayer: the input layer's unit kept float (node keys, as `exclude` takes them). */
  inputLayer?: string[];
  opsetFrom: number;
  ranges: Record<string, Range>;
  /** With sensitivityImages: each quantized tensor's cost alone, the costliest first. */
  sensitivity?: SensitivityReport;
  /**
   * With keepFloat: the layers kept in float and the mean KL their int8 weights alone cost (N), or
   * (auto) the layers whose output tensor stays float, with the nodes excluded for it (the layer and
   * the tensor's readers), the model's mean KL with that unit alone float, its KL gain, its estimated
   * latency cost in ms and why it was kept.
   */
  keptFloat?: { name: string; op: string; meanKL: number; tensor?: string; exclude?: string[]; klGain?: number; costMs?: number; reason?: 'free' | 'ratio' }[];
  /** With keepFloat 'auto': every layer's measured gain and cost, and the budget (calibration/mixed.ts). */
  precision?: PrecisionChoice;
  report?: QuantReport;
  reportFile?: string;
  /** The output set (`out`, the table, the report or its removal), as written (or, with write: false, to write). */
  files: AtomicEntry[];
}

/**
 * Every key of QuantizeOptions, for refusing a misspelt option from JavaScript (`{ calibcount: 40 }`
 * would otherwise calibrate on the default 300 images without a word). The type below fails to compile
 * when a key is missing.
 */
export const QUANTIZE_OPTION_KEYS = [
  'resolve', 'model', 'modelBytes', 'out', 'write', 'calib', 'calibCount', 'seed', 'method', 'percentile', 'perChannel', 'symmetric',
  'exclude', 'excludeInputLayer', 'biasCorrection', 'correctionImages', 'gptqImages', 'sensitivityImages', 'keepFloat', 'latencyBudget', 'cache', 'eval',
  'evalCount', 'writeReport', 'card', 'preprocess', 'labels', 'labelOffset', 'outputKind', 'allowAssumed', 'signal', 'onProgress',
  'onSkip', 'providers', 'threads', 'onWarning',
] as const satisfies readonly (keyof QuantizeOptions)[];
/** `never` while QUANTIZE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedQuantizeOption = AssertNever<Exclude<keyof QuantizeOptions, (typeof QUANTIZE_OPTION_KEYS)[number]>>;

/** The files beside an int8 model `<name>.onnx` that quantizeModel writes with it: `<name>.calibration.cache` and `<name>.report.json`. */
export function quantizeOutputsOf(out: string): { table: string; report: string } {
  const stem = out.replace(/\.onnx$/i, '');
  return { table: `${stem}.calibration.cache`, report: `${stem}.report.json` };
}

/** What a first pass hands the second one (mixed precision): calibration done once. */
interface Carried {
  collectors: Map<string, RangeCollector>;
  means?: Map<string, Float64Array>;
  inputs?: TensorData[];
  calibrationImages: number;
  cacheInfo?: CalibrationCache['calibration'];
  calibrationFiles: string[];
  skipped: SkippedFile[];
}

interface Internal {
  /** Run choosePrecision after the passes (mixed precision's scoring pass). */
  choose?: { latencyBudget: number };
  /** Calibration of an earlier pass on the same model, reused when it covers this plan. */
  carried?: Carried;
  /** Filled with this pass's calibration, for a later pass. */
  carry?: (c: Carried) => void;
  /** The option whose sensitivity scoring this pass runs (mixed precision's scoring pass: '--keep-float'). */
  scoredFor?: string;
}

export async function quantizeModel(o: QuantizeOptions): Promise<QuantizeResult> {
  checkOptionKeys('quantize', o, QUANTIZE_OPTION_KEYS);
  checkOptionKeys('quantize', o.resolve, RESOLVE_OPTION_KEYS, 'resolve');
  checkCardLayerKeys('quantize', o.card, 'card');
  checkOptionKeys('quantize', o.preprocess, PREPROCESS_KEYS, 'preprocess');
  // an empty path ("$DIR" unset) is refused naming its option: '' was taken as no folder (calib, eval) or the current directory
  if (o.calib !== undefined) checkDirPath(o.calib, 'calib');
  if (o.eval !== undefined) checkDirPath(o.eval, 'eval');
  if (o.cache !== undefined) checkPathGiven(o.cache, 'cache');
  // the evaluation folder is read last, after minutes of calibration: a wrong one is said before them
  if (o.eval !== undefined) await listCalibrationImages(o.eval, 'evaluation');
  if (o.keepFloat === 'auto') return quantizeAutoPrecision(o);
  if (o.keepFloat !== undefined && (typeof o.keepFloat !== 'number' || !Number.isInteger(o.keepFloat) || o.keepFloat < 0)) throw new EdgetuneError('EARG', `keepFloat must be a whole number ≥ 0 or 'auto' but received ${JSON.stringify(o.keepFloat)}`);
  if (o.keepFloat && o.keepFloat > 0) return quantizeKeepingFloat(o, o.keepFloat);
  return quantizeOnce(o);
}

async function quantizeOnce(o: QuantizeOptions, x: Internal = {}): Promise<QuantizeResult> {
  const method = checkOneOf('method', o.method ?? 'percentile', CALIBRATION_METHODS);
  const symmetric = Boolean(o.symmetric);
  const perChannel = o.perChannel ?? true;
  const seed = o.seed ?? 1;
  const calibCount = o.calibCount ?? 300;
  if (!o.out) throw new EdgetuneError('EARG', 'quantize: an output path (out) is required');
  // The table and report are named after it (<out>.calibration.cache, <out>.report.json), and a model
  // file without .onnx is taken for something else by every tool that opens it.
  if (!/\.onnx$/i.test(o.out)) throw new EdgetuneError('EARG', `Expected a file name ending in .onnx for --out but received ${JSON.stringify(o.out)}`);
  const out = path.resolve(o.out);
  const { table: tableFile, report: reportFile } = quantizeOutputsOf(out);
  const write = o.write ?? true;
  // the cache is written after calibrating, the set after quantizing: a cache named like one of the set
  // was replaced by it without a word (the histograms lost, a report left where the cache was expected)
  if (o.cache) {
    const clash = ([[out, 'the model'], [tableFile, 'the TensorRT calibration table'], [reportFile, 'the report']] as const).find(([f]) => f === path.resolve(o.cache!));
    if (clash) throw new EdgetuneError('EARG', `--cache ${o.cache} is ${clash[1]} quantize writes for --out ${o.out}: give the cache its own name (e.g. ${path.basename(out).replace(/\.onnx$/i, '')}.calib.json)`, { subject: o.cache });
  }
  // Checked before any work (calibration takes minutes): the set's folder is writable, no target is a
  // FIFO, device, folder or link, and none is the model or the cache read.
  if (write) await checkWritable(out, 'out', { also: [tableFile, reportFile], inputs: [o.model, o.cache] });
  const resolved: ResolvedModel = o.modelBytes ? { path: path.resolve(o.model), source: 'path' } : await resolveModel(o.model, o.resolve);
  if (write && !o.modelBytes) await checkWritable(out, 'out', { also: [tableFile, reportFile], inputs: [resolved.path, resolved.importedFrom] });
  const { bytes, model: original } = o.modelBytes ? { bytes: o.modelBytes, model: decodeModel(o.modelBytes) } : await readModelFile(resolved.path);
  // messages name the file the user gave (a .tflite / model.json), not its converted copy in the import cache
  const named = resolved.importedFrom ?? resolved.path;
  refuseQuantized(original.graph, named);
  const inputLayer = o.excludeInputLayer ? inputLayerUnit(original) : undefined;
  const exclude = inputLayer ? [...new Set([...inputLayer, ...(o.exclude ?? [])])] : o.exclude;
  const card = await quantizationCard(resolved, bytes, o);
  // the sensitivity scores are a softmax KL over class scores: nothing for a regression or multilabel model's outputs
  const scoredFor = x.scoredFor ?? (x.choose ? '--keep-float' : o.sensitivityImages ? '--sensitivity' : undefined);
  if (scoredFor && card.task && card.task !== 'classification') {
    throw new EdgetuneError(
      'EARG',
      `${scoredFor} is for classifiers: it scores layers by the KL of their softmax class scores, which means nothing for ${named}, a ${card.task} model; quantize it without ${scoredFor}`,
      { subject: scoredFor },
    );
  }
  // read before calibrating (minutes): a bad CSV is said at once
  const targets = o.eval ? await evalTargets(o.eval, card.task, card.labels, named, o.onWarning) : undefined;
  const d = { spec: card.preprocess, post: { kind: card.outputKind, labelOffset: card.labelOffset, labels: card.labels }, inputName: card.inputName, outputName: card.outputName, id: card.id, provenance: card.provenance };
  const { model: prepared, opsetFrom } = prepareFloatModel(original);
  const floatSpec: PreprocessSpec = { ...d.spec, dtype: 'float32' };
  // Planned once, on the copy the rewrite edits (the plan names nodes by identity; calibration reads
  // only tensor names, the same in `prepared`).
  const qmodel = cloneModel(prepared);
  const plan = planQuantization(qmodel.graph, named, { exclude, symmetric });
  const modelSha = sha256(bytes);
  const biasCorrection = o.biasCorrection ?? true;
  const meanTensors = biasCorrection ? plan.meanTensors : [];
  const correctionImages = biasCorrection ? (o.correctionImages ?? DEFAULT_CORRECTION_IMAGES) : 0;
  const gptqImages = o.gptqImages ?? DEFAULT_GPTQ_IMAGES;
  const sensitivityImages = o.sensitivityImages ?? 0;
  const precisionImages = x.choose ? o.sensitivityImages || DEFAULT_SENSITIVITY_IMAGES : 0;
  /** Calibration images the passes after the rewrite run on (the first ones, decoded once). */
  const passImages = Math.max(correctionImages, gptqImages, sensitivityImages, precisionImages);
  let inputs: TensorData[] | undefined;
  let means: Map<string, Float64Array> | undefined;

  // Ranges: from the cache when it covers this model, else stream the calibration set.
  let collectors;
  let cacheHit = false;
  let calibrationImages = 0;
  const skipped: SkippedFile[] = [];
  let cacheInfo: CalibrationCache['calibration'] | undefined;
  let calibrationFiles: string[] = [];
  if (o.cache) {
    const exists = await stat(o.cache).then(() => true, () => false);
    if (exists) {
      const hit = await readCache(o.cache, modelSha, plan.calibrate, meanTensors);
      if (hit) {
        collectors = hit.collectors;
        means = hit.means;
        cacheHit = true;
        calibrationImages = hit.cache.calibration.images;
        cacheInfo = hit.cache.calibration;
      }
    }
  }
  if (!collectors && x.carried && plan.calibrate.every((t) => x.carried!.collectors.has(t)) && (!biasCorrection || plan.meanTensors.every((t) => x.carried!.means?.has(t)))) {
    ({ collectors, means, inputs, calibrationImages, cacheInfo, calibrationFiles } = x.carried);
    skipped.push(...x.carried.skipped);
  }
  if (!collectors) {
    if (!o.calib) throw new EdgetuneError('EARG', `quantize: a calibration folder (calib) is required${o.cache ? ` (the cache ${o.cache} does not cover this model)` : ''}`);
    const files = seededSample(await listCalibrationImages(o.calib, 'calibration', o.onSkip), calibCount, seed);
    calibrationFiles = files;
    // Models with a dynamic batch dimension calibrate 8 images per run; fixed-batch ones one.
    const batchDim = prepared.graph.input.find((v) => v.name === d.inputName)?.type?.tensorType?.shape?.dim[0];
    const dynamicBatch = batchDim !== undefined && !(typeof batchDim.dimValue === 'number' && batchDim.dimValue > 0);
    const batches = calibrationBatches(files, floatSpec, o.calib, {
      batch: dynamicBatch ? 8 : 1,
      signal: o.signal,
      onSkip: (s) => {
        skipped.push(s);
        o.onSkip?.(s);
      },
      onProgress: (done, total) => o.onProgress?.('calibrate', done, total),
    });
    inputs = [];
    const r = await collectRanges(prepared, d.inputName, plan.calibrate, keepImages(batches, passImages, inputs), {
      providers: o.providers,
      threads: o.threads,
      onWarning: o.onWarning,
      signal: o.signal,
      meanTensors: plan.meanTensors,
    });
    collectors = r.collectors;
    means = new Map([...r.means].map(([t, m]) => [t, m.means()]));
    calibrationImages = r.images;
    cacheInfo = { folder: o.calib, count: calibCount, seed, images: r.images, skipped };
  }
  x.carry?.({ collectors, ...(means ? { means } : {}), ...(inputs ? { inputs } : {}), calibrationImages, ...(cacheInfo ? { cacheInfo } : {}), calibrationFiles, skipped });
  const rangeOpts = { symmetric, percentile: o.percentile ?? DEFAULT_PERCENTILE };
  const ranges = rangesFrom(collectors, method, rangeOpts, plan.minmaxOnly);
  if (o.cache && !cacheHit && !x.carried) {
    const cache: CalibrationCache = {
      version: 1,
      modelSha256: modelSha,
      model: d.id,
      calibration: cacheInfo!,
      method,
      ranges: Object.fromEntries(ranges),
      histograms: Object.fromEntries([...collectors].map(([t, c]) => [t, c.state()])),
      means: Object.fromEntries([...(means ?? [])].map(([t, m]) => [t, Array.from(m)])),
    };
    await writeAtomic(o.cache, JSON.stringify(cache));
  }

  // Rewrite.
  const params = activationParamsFor(plan, ranges, symmetric);
  const summary = applyQdq(qmodel, plan, params, { perChannel, symmetric, channelMeans: biasCorrection ? means : undefined });
  let layersCorrected = 0;
  let gptqLayers = 0;
  let sensitivity: SensitivityReport | undefined;
  let precision: PrecisionChoice | undefined;
  if (passImages > 0) {
    const folder = o.calib ?? cacheInfo?.folder;
    if (!inputs) {
      // Ranges came from the cache: decode the same sample (without the files calibration could not decode).
      let files: string[] = [];
      if (folder && cacheInfo) {
        files = await listCalibrationImages(folder).then(
          (all) => seededSample(all, cacheInfo!.count, cacheInfo!.seed),
          () => [],
        );
      }
      if (files.length) {
        const bad = new Set((cacheInfo?.skipped ?? []).map((s) => s.file));
        inputs = [];
        for await (const b of calibrationBatches(files.filter((f) => !bad.has(f)).slice(0, passImages), floatSpec, folder ?? 'calibration images', { batch: 1, signal: o.signal })) inputs.push(b.tensor);
      }
    }
    if (!inputs?.length) {
      const what = [gptqImages > 0 && 'GPTQ weight rounding', correctionImages > 0 && 'empirical bias correction', sensitivityImages > 0 && 'sensitivity analysis'].filter(Boolean).join(', ');
      o.onWarning?.(`${what} skipped: the calibration images${folder ? ` in ${folder}` : ''} are not available (pass the calibration folder with the cache)`);
    } else {
      // Both passes run the float and int8 models layer by layer with the same session settings.
      const passOptions = { providers: o.providers, threads: o.threads, onWarning: o.onWarning, signal: o.signal };
      if (gptqImages > 0) {
        gptqLayers = await gptqConvWeights(prepared, qmodel, d.inputName, inputs.slice(0, gptqImages), {
          ...passOptions,
          channelMeans: biasCorrection ? means : undefined,
          onProgress: (done, total) => o.onProgress?.('gptq', done, total),
        });
      }
      if (correctionImages > 0) {
        layersCorrected = await empiricalBiasCorrection(prepared, qmodel, d.inputName, inputs.slice(0, correctionImages), {
          ...passOptions,
          onProgress: (done, total) => o.onProgress?.('correct', done, total),
        });
      }
      if (x.choose) {
        precision = await choosePrecision(prepared, qmodel, d.inputName, d.outputName, inputs.slice(0, precisionImages), {
          ...passOptions,
          post: d.post,
          latencyBudget: x.choose.latencyBudget,
          onProgress: (done, total) => o.onProgress?.('precision', done, total),
        });
      }
      if (sensitivityImages > 0) {
        sensitivity = await quantizationSensitivity(prepared, qmodel, d.inputName, d.outputName, inputs.slice(0, sensitivityImages), {
          ...passOptions,
          post: d.post,
          onProgress: (done, total) => o.onProgress?.('sensitivity', done, total),
        });
      }
    }
  }
  const info: EmbeddedModelInfo = {
    version: 1,
    labels: [...d.post.labels],
    ...(d.post.labelOffset ? { labelOffset: d.post.labelOffset } : {}),
    preprocess: floatSpec,
    outputKind: d.post.kind === 'auto' ? 'logits' : d.post.kind,
    outputName: d.outputName,
    // what the outputs mean (a regression model's values, a multilabel model's sigmoids): without it the
    // quantized regression model was read as a classifier ("petals 35.33" as a class score)
    ...(card.task ? { task: card.task } : {}),
    // the open-set calibration's unknown_score output survives the QDQ rewrite: keep saying so
    ...(card.openSet ? { openSet: card.openSet } : {}),
    provenance: {
      ...(d.provenance ?? {}),
      base: d.provenance?.base ?? d.id,
      baseSha256: modelSha,
      quantization: { format: 'QDQ', method, ...(method === 'percentile' ? { percentile: rangeOpts.percentile } : {}), perChannel, symmetric, biasCorrection, correctionImages, ...(gptqLayers ? { gptq: { images: gptqImages, layers: gptqLayers } } : {}), activations: symmetric ? 'int8' : 'uint8', weights: 'int8', calibrationImages, seed, exclude: exclude ?? [] },
      tool: 'edgetune quantize',
    },
  };
  setMetadataValue(qmodel, METADATA_KEY, JSON.stringify(info));
  qmodel.producerName = 'edgetune';
  const outBytes = encodeModel(qmodel);
  o.signal?.throwIfAborted();
  // TensorRT wants every quantized tensor, shared ones (MaxPool outputs, Concat inputs) included.
  const symCalibrated = rangesFrom(collectors, method, { ...rangeOpts, symmetric: true }, plan.minmaxOnly);
  const symRanges = new Map(plan.activations.map((t) => [t, symCalibrated.get(parameterSource(plan, t))!]));
  const outputs: AtomicEntry[] = [
    { file: out, data: outBytes },
    { file: tableFile, data: tensorRtTable(symRanges, method) },
  ];

  const result: QuantizeResult = {
    out,
    tableFile,
    cacheFile: o.cache,
    cacheHit,
    method,
    calibrationImages,
    skipped: cacheHit ? (cacheInfo?.skipped ?? []) : skipped,
    quantized: summary.quantized,
    foldedActivations: summary.foldedActivations,
    adjustedChannels: summary.adjustedChannels,
    biasCorrected: summary.biasCorrected,
    layersCorrected,
    gptqLayers,
    excluded: plan.excluded,
    ...(inputLayer ? { inputLayer } : {}),
    opsetFrom,
    ranges: Object.fromEntries(ranges),
    ...(sensitivity ? { sensitivity } : {}),
    ...(precision ? { precision } : {}),
    files: outputs,
  };

  if (o.eval) {
    // the folder's own labels.csv (the targets, read above) is not a skipped image
    const targetsCsv = targets ? path.resolve(o.eval, 'labels.csv') : undefined;
    let files = await listCalibrationImages(o.eval, 'evaluation', (s) => {
      if (path.resolve(s.file) !== targetsCsv) o.onSkip?.(s);
    });
    if (o.evalCount) files = seededSample(files, o.evalCount, seed).sort();
    const calibrated = new Set(calibrationFiles.map((f) => path.resolve(f)));
    const overlap = files.filter((f) => calibrated.has(path.resolve(f))).length;
    if (overlap) o.onWarning?.(`${overlap} of the ${files.length} evaluation images were also calibration images: the report will look better than it should`);
    const evalPost: PostprocessSpec = { ...d.post };
    result.report = await evaluateQuantized(
      { model: o.modelBytes ?? resolved.path, size: bytes.length, spec: d.spec, inputName: d.inputName, outputName: d.outputName },
      { model: outBytes, size: outBytes.length, spec: floatSpec, inputName: d.inputName, outputName: d.outputName },
      {
        post: evalPost,
        task: card.task,
        targets,
        root: o.eval,
        files,
        providers: o.providers,
        threads: o.threads,
        onWarning: o.onWarning,
        signal: o.signal,
        onProgress: (done, total) => o.onProgress?.('evaluate', done, total),
        onSkip: o.onSkip,
      },
    );
    if (o.writeReport ?? true) {
      result.reportFile = reportFile;
      outputs.push({ file: reportFile, data: JSON.stringify({ model: d.id, out, method, perChannel, symmetric, quantized: summary.quantized, ...result.report, ...(sensitivity ? { sensitivity } : {}) }, null, 2) + '\n' });
    }
  }
  // A report of an earlier run is not left beside this model.
  if (!result.reportFile) outputs.push({ file: reportFile, remove: true });
  o.signal?.throwIfAborted();
  if (write) await writeAtomicSet(outputs);
  return result;
}

/**
 * Mixed precision (options.keepFloat): quantize once (nothing written) with the sensitivity analysis,
 * keep the `n` layers whose int8 weights alone cost the most mean KL in float, and quantize again with them excluded (the caller's `out`, cache, eval and report).
 */
async function quantizeKeepingFloat(o: QuantizeOptions, n: number): Promise<QuantizeResult> {
  const images = o.sensitivityImages || DEFAULT_SENSITIVITY_IMAGES;
  // The scoring pass writes nothing (write: false); only the second pass writes the caller's set.
  let carried: Carried | undefined;
  const scored = await quantizeOnce({ ...o, keepFloat: 0, sensitivityImages: images, eval: undefined, writeReport: false, write: false }, { carry: (c) => (carried = c), scoredFor: '--keep-float' });
  const kept = scored.sensitivity!.entries.filter((e) => e.kind === 'weights').slice(0, n);
  // The result's sensitivity is the report that chose the layers (the mixed model is not re-scored).
  const result = await quantizeOnce({ ...o, keepFloat: 0, sensitivityImages: 0, exclude: [...(o.exclude ?? []), ...kept.map((e) => e.name)] }, { ...(carried ? { carried } : {}) });
  return { ...result, sensitivity: scored.sensitivity, keptFloat: kept.map((e) => ({ name: e.name, op: e.op, meanKL: e.meanKL })) };
}

/**
 * Mixed precision chosen by measured accuracy and speed (options.keepFloat 'auto'): quantize once
 * (nothing written) and choose the layers with calibration/mixed.ts choosePrecision, then quantize
 * again with them excluded, reusing the first pass's calibration (the caller's `out`, eval and report).
 */
async function quantizeAutoPrecision(o: QuantizeOptions): Promise<QuantizeResult> {
  const latencyBudget = o.latencyBudget ?? DEFAULT_LATENCY_BUDGET;
  if (!(Number.isFinite(latencyBudget) && latencyBudget >= 0)) throw new EdgetuneError('EARG', `latencyBudget must be a number ≥ 0 (a share of the int8 model's time) but received ${latencyBudget}`);
  let carried: Carried | undefined;
  const scored = await quantizeOnce({ ...o, keepFloat: 0, sensitivityImages: o.sensitivityImages, eval: undefined, writeReport: false, write: false }, { choose: { latencyBudget }, carry: (c) => (carried = c) });
  const precision = scored.precision!;
  const kept = precision.units.filter((u) => u.kept);
  const result = await quantizeOnce({ ...o, keepFloat: 0, sensitivityImages: 0, exclude: [...new Set([...(o.exclude ?? []), ...precision.exclude])] }, { ...(carried ? { carried } : {}) });
  return { ...result, precision, keptFloat: kept.map((u) => ({ name: u.name, op: u.op, meanKL: u.alone.meanKL, tensor: u.tensor, exclude: u.exclude, klGain: u.klGain, costMs: u.costMs, reason: u.kept as 'free' | 'ratio' })) };
}
