// `finetune --int8` (Node): the fine-tuned float model is quantized by calibration/ (INT8_CALIBRATION_IMAGES
// training images) and both models are scored on the validation images (never on calibration images).
// Nothing is written in place: the float model, the int8 model and the calibration table are written to
// temp files and returned as entries of the caller's output set (runtime/io/atomic.ts writeAtomicSet),
// so the pair is replaced together or not at all.

import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { quantizeModel } from '../../../calibration/index.js';
import type { PreprocessSpec } from '../../core/preprocess-spec.js';
import { tempPathFor, type AtomicEntry } from '../../io/atomic.js';
import type { SessionOptions } from '../../session/session.js';
import { INT8_CALIBRATION_IMAGES } from '../finetune.js';
import { evaluateOnImages } from './evaluate.js';

/** What `finetune --int8` reports (the FinetuneReport's `int8`). */
export interface Int8Report {
  /** Where the float model goes (`<name>.fp32.onnx`). */
  float: string;
  /** Nodes quantized, by operator type (the quantizer's report). */
  quantized: Record<string, number>;
  calibrationImages: number;
  /** Validation images both were scored on (0: none, and the accuracies are null). */
  images: number;
  accuracyFloat: number | null;
  accuracyInt8: number | null;
}

export interface Int8Step {
  /** The int8 model's bytes (what `out` will hold). */
  bytes: Uint8Array;
  report: Int8Report;
  /** `out` ← int8, `<name>.fp32.onnx` ← float, and the calibration table when one was written. */
  entries: AtomicEntry[];
  /** Temp files to remove when the set is not written after all. */
  temps: string[];
}

/**
 * Quantize the float model `floatBytes` that will be written as `out` (see the module header).
 * `calib`: the folder of calibration images; `val`: the validation images (file, class index).
 * Errors: the quantizer's (EARG, EMODEL, EINPUT), `signal`'s reason; temp files are removed on error.
 */
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
  const floatFile = o.out.replace(/\.onnx$/i, '.fp32.onnx');
  const floatTmp = tempPathFor(floatFile, '.onnx');
  const int8Tmp = tempPathFor(o.out, '.onnx');
  const tableTmp = int8Tmp.replace(/\.onnx$/i, '') + '.calibration.cache';
  const temps = [floatTmp, int8Tmp, tableTmp];
  try {
    await writeFile(floatTmp, o.floatBytes);
    const q = await quantizeModel({
      model: floatTmp,
      out: int8Tmp,
      calib: o.calib,
      calibCount: INT8_CALIBRATION_IMAGES,
      seed: o.seed,
      // what the float model's metadata says, given as is: the quantizer need not rely on reading it back
      preprocess: o.spec,
      labels: [...o.labels],
      outputKind: 'probabilities',
      writeReport: false,
      providers: o.session.providers,
      threads: o.session.threads,
      onWarning: o.onWarning,
      signal: o.signal,
    });
    const bytes = new Uint8Array(await readFile(int8Tmp));
    const ev = o.val.length ? await evaluateOnImages([o.floatBytes, bytes], o.val, o.labels.length, o.spec, { ...o.session, onWarning: () => undefined, signal: o.signal }) : undefined;
    const entries: AtomicEntry[] = [{ file: o.out, from: int8Tmp }, { file: floatFile, from: floatTmp }];
    if (await stat(tableTmp).then(() => true, () => false)) entries.push({ file: o.out.replace(/\.onnx$/i, '') + '.calibration.cache', from: tableTmp });
    return {
      bytes,
      entries,
      temps,
      report: {
        float: floatFile,
        quantized: q.quantized,
        calibrationImages: q.calibrationImages,
        images: ev?.images ?? 0,
        accuracyFloat: ev ? ev.metrics[0]!.accuracy : null,
        accuracyInt8: ev ? ev.metrics[1]!.accuracy : null,
      },
    };
  } catch (err) {
    for (const t of temps) await rm(t, { force: true });
    throw err;
  }
}
