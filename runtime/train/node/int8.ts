// `finetune --int8` (Node): the fine-tuned float model is quantized by calibration/ (INT8_CALIBRATION_IMAGES
// training images; the first layer float, calibration/mixed.ts inputLayerUnit) and both models are scored
// on the validation images (never on calibration images). With every layer int8, tf_flowers-dev lost one
// of its 100 val photos (0.880 → 0.870: a rose whose fp32 margin over dandelion was 0.054 flipped). Not the
// logits: left unrounded, it still flipped; with the first layer float (the image unquantized) it scores
// 0.900 (beans-dev 0.917 → 0.917, cats_dogs-dev 0.950 → 0.950), and the model runs faster (beans, 1 thread:
// 2.34 ms vs 2.63 all int8). keepFloat 'auto' on top made the step 1.5× slower and flipped that rose back.
// On flowers5-small (400 photos nobody tuned on) int8 still loses 0.75 point (all int8 1.25).
// Nothing is written here: the float model, the int8 model and the calibration table are returned as
// entries (bytes) of the caller's output set (runtime/io/atomic.ts writeAtomicSet), so the pair is
// replaced together or not at all.

import { quantizeModel, quantizeOutputsOf } from '../../../calibration/index.js';
import type { PreprocessSpec } from '../../core/preprocess-spec.js';
import type { AtomicEntry } from '../../io/atomic.js';
import type { SessionOptions } from '../../session/session.js';
import { INT8_CALIBRATION_IMAGES } from '../finetune.js';
import { evaluateOnImages } from './evaluate.js';

/** What `finetune --int8` reports (the FinetuneReport's `int8`). */
export interface Int8Report {
  /** Where the float model goes (`<name>.fp32.onnx`). */
  float: string;
  /** Nodes quantized, by operator type (the quantizer's report). */
  quantized: Record<string, number>;
  /** Nodes kept in float: the first layer's unit and the mixed-precision choice (calibration/mixed.ts). */
  keptFloat: string[];
  calibrationImages: number;
  /** Validation images both were scored on (0: none, and the accuracies are null). */
  images: number;
  accuracyFloat: number | null;
  accuracyInt8: number | null;
  /** accuracyFloat − accuracyInt8 (null without validation images). */
  accuracyDrop: number | null;
  /**
   * Whether the int8 model is within the 0.5-point budget of its float export (drop ≤ 0.005) on these
   * images; null without validation images. One image is 1/images: on 100 images one flip is 1 point.
   */
  withinHalfPoint: boolean | null;
}

export interface Int8Step {
  /** The int8 model's bytes (what `out` will hold). */
  bytes: Uint8Array;
  report: Int8Report;
  /** `out` ← int8, `<name>.fp32.onnx` ← float, and the calibration table: bytes for the caller's set. */
  entries: AtomicEntry[];
}

/**
 * Quantize the float model `floatBytes` that will be written as `out` (see the module header): the
 * quantizer takes the bytes and writes nothing (calibration/index.ts quantizeModel with write: false),
 * so no temp file is involved. `calib`: the folder of calibration images; `val`: the validation images
 * (file, class index). Errors: the quantizer's (EARG, EMODEL, EINPUT), `signal`'s reason.
 */
/** Where an int8 model's float twin goes: `<name>.fp32.onnx` beside `<name>.onnx`. */
export function fp32PathOf(out: string): string {
  return out.replace(/\.onnx$/i, '.fp32.onnx');
}

/** The quantizer's calibration table beside `<name>.onnx` (named by calibration/index.ts). */
export function calibrationTablePathOf(out: string): string {
  return quantizeOutputsOf(out).table;
}

export async function quantizeFinetuned(o: {
  floatBytes: Uint8Array;
  out: string;
  calib: string;
  seed: number;
  spec: PreprocessSpec;
  labels: readonly string[];
  val: readonly { file: string; label: number }[];
  session: SessionOptions;
  onWarning(message: string): void;
  /** Stops calibration and scoring between images (the reason is thrown; temps are removed). */
  signal?: AbortSignal;
}): Promise<Int8Step> {
  const floatFile = fp32PathOf(o.out);
  const q = await quantizeModel({
    model: `${o.out} (the fine-tuned float model)`,
    modelBytes: o.floatBytes,
    out: o.out,
    write: false,
    calib: o.calib,
    calibCount: INT8_CALIBRATION_IMAGES,
    seed: o.seed,
    // what the float model's metadata says, given as is: the quantizer need not rely on reading it back
    preprocess: o.spec,
    labels: [...o.labels],
    outputKind: 'probabilities',
    // the first layer stays float, so the photo is not re-quantized (calibration/mixed.ts
    // inputLayerUnit: tf_flowers-dev 0.870 → 0.900 against fp32 0.880), found on the model the
    // quantizer decodes (not decoded a second time here). keepFloat 'auto' is not used here: with it
    // that rose flipped back (0.870) and the step took 1.5× as long (see the header)
    excludeInputLayer: true,
    writeReport: false,
    providers: o.session.providers,
    threads: o.session.threads,
    onWarning: o.onWarning,
    signal: o.signal,
  });
  const model = q.files.find((f) => f.file === q.out)!;
  const bytes = model.data as Uint8Array;
  const table = q.files.find((f) => f.file === q.tableFile)!;
  const ev = o.val.length ? await evaluateOnImages([o.floatBytes, bytes], o.val, o.labels.length, o.spec, { ...o.session, onWarning: () => undefined, signal: o.signal }) : undefined;
  return {
    bytes,
    entries: [{ file: o.out, data: bytes }, { file: floatFile, data: o.floatBytes }, { file: table.file, data: table.data }],
    report: {
      float: floatFile,
      quantized: q.quantized,
      keptFloat: [...new Set([...(q.inputLayer ?? []), ...(q.precision?.exclude ?? [])])],
      calibrationImages: q.calibrationImages,
      images: ev?.images ?? 0,
      accuracyFloat: ev ? ev.metrics[0]!.accuracy : null,
      accuracyInt8: ev ? ev.metrics[1]!.accuracy : null,
      accuracyDrop: ev ? ev.metrics[0]!.accuracy - ev.metrics[1]!.accuracy : null,
      withinHalfPoint: ev ? ev.metrics[0]!.accuracy - ev.metrics[1]!.accuracy <= 0.005 + 1e-12 : null,
    },
  };
}
