// The rows a multi-layer open-set score (runtime/train/openset.ts LayeredDetector) is fitted on, for
// `finetune` (Node): the taps of the backbone (runtime/train/graph/taps.ts openSetTapsOf), whose features
// the embedding session computes in the same backbone pass as the embedding (runtime/train/node/embed.ts
// Embedder opened with `taps`; runtime/train/export.ts embeddingGraphWithTaps cuts them: dequantized,
// spatially averaged), over the same training images and views, and the same validation images, as the
// head's embedding, and cached like it.

import type { Backbone, EmbedResult } from './embed.js';
import type { LayerFeatures } from '../openset.js';
import { openSetTapsOf } from '../graph/taps.js';
import type { FeatureSet } from '../types.js';

/**
 * The taps a backbone's multi-layer open-set score reads, found in its graph (runtime/train/graph/taps.ts
 * openSetTapsOf: the depthwise outputs of its last two residual blocks before the embedding); empty: the
 * embedding alone.
 */
export function openSetTaps(backbone: Backbone): readonly string[] {
  return openSetTapsOf(backbone.model, backbone.cut.tensor).tensors;
}

/**
 * The layers of a multi-layer open-set fit from the embedder's results (`train`: the training images in
 * their views, `val`: the validation images, one view; each an EmbedResult of an Embedder opened with the
 * taps): per tap the rows of the images that embedded (ok), in order, labelled as the embedding's rows in
 * `trainSet` / `valSet` (the transfer's, collected from the same results). Undefined when the results
 * carry no taps or a tap's rows do not line up with the embedding's: the caller falls back to the single
 * detector rather than fit on mismatched rows.
 */
export function openSetLayers(
  results: { train: EmbedResult; val: EmbedResult }, trainSet: FeatureSet, valSet: FeatureSet,
): LayerFeatures[] | undefined {
  const { train, val } = results;
  if (!train.taps.length || train.taps.length !== val.taps.length) return undefined;
  const layers: LayerFeatures[] = [];
  for (let k = 0; k < train.taps.length; k++) {
    const tr = keptRows(train, k);
    const va = keptRows(val, k);
    if (val.taps[k]!.tensor !== train.taps[k]!.tensor || tr.dims !== va.dims) return undefined;
    if (tr.features.length / tr.dims !== trainSet.labels.length || va.features.length / va.dims !== valSet.labels.length) return undefined;
    layers.push({ tensor: train.taps[k]!.tensor, train: { ...trainSet, features: tr.features, dims: tr.dims }, val: { ...valSet, features: va.features, dims: va.dims } });
  }
  return layers;
}

/** Tap k's rows of the items that embedded (r.ok), all their views, in order. */
function keptRows(r: EmbedResult, k: number): { features: Float32Array; dims: number } {
  const { dims, features } = r.taps[k]!;
  const per = r.views * dims;
  const kept = r.ok.filter(Boolean).length;
  const out = new Float32Array(kept * per);
  let j = 0;
  r.ok.forEach((ok, i) => {
    if (ok) out.set(features.subarray(i * per, (i + 1) * per), j++ * per);
  });
  return { features: out, dims };
}
