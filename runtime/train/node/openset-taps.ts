// The rows a multi-layer open-set score (runtime/train/openset.ts LayeredDetector) is fitted on, for
// `finetune` (Node): each tap of the backbone (runtime/train/graph/taps.ts openSetTapsOf) cut as an embedding (runtime/train/export.ts
// findCut: dequantized, spatially averaged) and embedded over the same training images and views, and the
// same validation images, as the head's embedding was (runtime/train/node/embed.ts, cached like it).

import { Embedder, sha256, type Backbone, type EmbeddingCache } from './embed.js';
import { findCut } from '../export.js';
import type { LayerFeatures } from '../openset.js';
import { openSetTapsOf } from '../graph/taps.js';
import type { AugmentSpec } from '../augment/ops.js';
import type { SessionOptions } from '../../session/session.js';
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
 * The layers of a multi-layer open-set fit: per tap the rows of the same files (`train` in `views` views drawn with `augment` and `seed` as the head's,
 * `val` one clean view), labels as the embedding's. Undefined when a tap's rows do not line up with the
 * embedding's (an image that embedded once and failed the second time): the caller falls back to the single
 * detector rather than fit on mismatched rows.
 */
export async function openSetLayers(
  backbone: Backbone, taps: readonly string[], train: FeatureSet, val: FeatureSet,
  files: { train: readonly string[]; val: readonly string[] },
  o: { views: number; augment: AugmentSpec; seed: number; cache?: EmbeddingCache | null; session?: SessionOptions; signal?: AbortSignal },
): Promise<LayerFeatures[] | undefined> {
  const layers: LayerFeatures[] = [];
  for (const tap of taps) {
    const e = await Embedder.open({ ...backbone, cut: findCut(backbone.model, tap), key: sha256(`${backbone.key}|open-set tap|${tap}`) }, o.session);
    try {
      const tr = await e.embed(files.train, { views: o.views, augment: o.augment, seed: o.seed, cache: o.cache, signal: o.signal });
      const va = await e.embed(files.val, { views: 1, seed: o.seed, cache: o.cache, signal: o.signal });
      if (!tr.ok.every(Boolean) || !va.ok.every(Boolean) || tr.features.length / tr.dims !== train.labels.length || va.features.length / va.dims !== val.labels.length) return undefined;
      layers.push({ tensor: tap, train: { ...train, features: tr.features, dims: tr.dims }, val: { ...val, features: va.features, dims: va.dims } });
    } finally {
      await e.dispose();
    }
  }
  return layers;
}
