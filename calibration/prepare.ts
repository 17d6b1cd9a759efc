// The float model, made ready for calibration and the QDQ rewrite (Node: reads the file): decoding
// with a message naming the file, the model card quantization needs (an assumed preprocessing is
// refused unless allowAssumed: the "is it described?" rule, DESCRIPTION_NEEDS in core/model-card.ts),
// and the graph passes that put the float graph into the form the rewrite expects.

import { describeBytes } from '../models/describe.js';
import type { ResolveOptions, ResolvedModel } from '../models/loader.js';
import { EdgetuneError } from '../runtime/core/errors.js';
import { cardFilePath, undescribedFields, type CardLayer, type ModelCard } from '../runtime/core/model-card.js';
import type { PreprocessSpec } from '../runtime/image/preprocess.js';
import { cloneModel, type OnnxModel } from '../runtime/onnx/model.js';
import { loadModelFile } from '../runtime/io/model-file.js';
import { foldBatchNorm } from '../runtime/onnx/passes/fold-batchnorm.js';
import { foldBiasAdds, foldConstantReshapes } from '../runtime/onnx/passes/fold-constants.js';
import { removeIdentity } from '../runtime/onnx/passes/remove-identity.js';
import { upgradeOpset } from '../runtime/onnx/passes/upgrade-opset.js';
import { widenFloat16 } from '../runtime/onnx/passes/widen-fp16.js';

/** What the caller supplies over the registry and the embedded metadata (QuantizeOptions' fields of the same names). */
export interface CardOverrides {
  resolve?: ResolveOptions;
  preprocess?: PreprocessSpec;
  labels?: string[];
  labelOffset?: number;
  outputKind?: 'logits' | 'probabilities';
  /** A card layer (CLI flags: --mean, --std, --range, --labels, …), below the four options above. */
  card?: CardLayer;
  /** Quantize even when the preprocessing is assumed (said through onWarning instead of refused). Default false. */
  allowAssumed?: boolean;
  /** Told which card fields had to be assumed. */
  onWarning?: (message: string) => void;
}

/**
 * The model card for quantization: describeModel with the options as the highest layer. Quantizing
 * needs the real preprocessing (the calibration images must look like what the model was trained on):
 * an assumed one is refused (EARG naming the fields and how to describe them) unless `allowAssumed`;
 * any other assumption (labels, output kind) is said through onWarning.
 */
export async function quantizationCard(resolved: ResolvedModel, bytes: Uint8Array, o: CardOverrides): Promise<ModelCard> {
  const overrides: CardLayer = {
    ...(o.card ?? {}),
    ...(o.card?.preprocess || o.preprocess ? { preprocess: { ...o.card?.preprocess, ...o.preprocess } } : {}),
    ...(o.preprocess ? { preprocess: o.preprocess } : {}),
    ...(o.labels ? { labels: o.labels } : {}),
    ...(o.labelOffset !== undefined ? { labelOffset: o.labelOffset } : {}),
    ...(o.outputKind ? { outputKind: o.outputKind } : {}),
  };
  const { card } = await describeBytes(bytes, resolved, { ...o.resolve, overrides });
  // Calibration images go through this preprocessing: a guessed one is refused (DESCRIPTION_NEEDS.quantize).
  const missing = undescribedFields(card, 'quantize');
  if (missing.length && !o.allowAssumed) {
    throw new EdgetuneError(
      'EARG',
      `${resolved.importedFrom ?? resolved.path}: nothing describes its ${missing.join(', ')}; quantization calibrates on images preprocessed that way, so give them with flags (--color-order, --range, --mean, --std, --resize, --crop, --size), a card file (${cardFilePath(resolved.importedFrom ?? resolved.path)}) or edgetune card, or pass --allow-assumed to quantize with the assumed values (${card.assumptions.join('; ')})`,
      { subject: resolved.importedFrom ?? resolved.path },
    );
  }
  if (card.assumptions.length) o.onWarning?.(`${resolved.importedFrom ?? resolved.path}: nothing describes some of this model; assumed ${card.assumptions.join('; ')} (edgetune inspect shows each field's source)`);
  return card;
}

/**
 * The file's bytes and decoded model, with external data (`model.onnx.data`, read relative to the
 * model's folder) inlined: every session the quantizer opens is made from bytes, where onnxruntime
 * would resolve external data against the working directory ("escapes working directory").
 * Throws EMODEL naming the file when it cannot be read or decoded, or its external data is missing.
 */
export async function readModelFile(file: string): Promise<{ bytes: Uint8Array; model: OnnxModel }> {
  const { bytes, model } = await loadModelFile(file);
  return { bytes, model };
}

/**
 * Prepare a float model for calibration and QDQ: fp16 widening, identities, BN folding, opset ≥ 13,
 * constant weight reshapes, bias Adds folded into Conv/Gemm. `model` is not changed (a copy is).
 */
export function prepareFloatModel(model: OnnxModel): { model: OnnxModel; opsetFrom: number; rewrites: string[] } {
  const m = cloneModel(model);
  widenFloat16(m);
  removeIdentity(m);
  foldBatchNorm(m);
  const up = upgradeOpset(m, 13);
  removeIdentity(m);
  foldConstantReshapes(m);
  foldBiasAdds(m);
  return { model: m, opsetFrom: up.from, rewrites: up.rewrites };
}
