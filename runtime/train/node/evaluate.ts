// Accuracy of exported classifiers on labelled image files (Node): each file is decoded once and run
// through every model, so models are compared on exactly the same inputs. `finetune --int8` scores the
// float and the int8 model on the held-apart validation images with it.

import { decodeImage } from '../../image/decode.js';
import { toTensor, type PreprocessSpec } from '../../image/preprocess.js';
import { asFloat32 } from '../../core/tensor.js';
import { createSession, SESSION_OPTION_KEYS, type ModelSession, type SessionOptions } from '../../session/session.js';
import { pickOptions } from '../../core/options.js';
import { PROBABILITIES_OUTPUT } from '../export.js';
import { computeMetrics, predictions, type Metrics } from '../index.js';

/**
 * Metrics of each model (an exported classifier: a path or ONNX bytes, output `probabilities` [N,
 * classes]) on `items` (file + class index), decoded with `spec`. Files that cannot be decoded are
 * left out of every model's score and returned in `skipped`.
 */
export async function evaluateOnImages(
  models: readonly (string | Uint8Array)[],
  items: readonly { file: string; label: number }[],
  classes: number,
  spec: PreprocessSpec,
  options: SessionOptions & { signal?: AbortSignal } = {},
): Promise<{ metrics: Metrics[]; images: number; skipped: string[] }> {
  const sessions: ModelSession[] = [];
  try {
    for (const m of models) sessions.push(await createSession(m, pickOptions(options, SESSION_OPTION_KEYS)));
    const preds = sessions.map(() => [] as number[]);
    const truth: number[] = [];
    const skipped: string[] = [];
    for (const it of items) {
      if (options.signal?.aborted) throw options.signal.reason;
      let tensor;
      try {
        tensor = toTensor([await decodeImage(it.file, spec)], spec);
      } catch {
        skipped.push(it.file);
        continue;
      }
      truth.push(it.label);
      for (const [k, s] of sessions.entries()) {
        const out = await s.run({ [s.inputs[0]!.name]: tensor }, [PROBABILITIES_OUTPUT]);
        preds[k]!.push(predictions(asFloat32(out[PROBABILITIES_OUTPUT]!), classes)[0]!);
      }
    }
    return { metrics: preds.map((p) => computeMetrics(p, truth, classes)), images: truth.length, skipped };
  } finally {
    for (const s of sessions) await s.dispose();
  }
}
