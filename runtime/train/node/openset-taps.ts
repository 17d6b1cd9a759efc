// The rows a multi-layer open-set score (runtime/train/openset.ts LayeredDetector) is fitted on, for
// `finetune` (Node): the taps of the backbone (runtime/train/graph/taps.ts openSetTapsOf), whose features
// the embedding session computes in the same backbone pass as the embedding (runtime/train/node/embed.ts
// Embedder opened with `taps`; runtime/train/export.ts embeddingGraphWithTaps cuts them: dequantized,
// spatially averaged), over the same training images and views, and the same validation images, as the
// head's embedding, and cached like it. A resume takes the resumed model's images' tap rows from its
// resume data (version 3, runtime/train/resume-format.ts), as it takes their embeddings.

import type { Backbone, EmbedResult, TapFeatures } from './embed.js';
import type { ResumeData } from './resume.js';
import type { LayerFeatures } from '../openset.js';
import { openSetTapsOf } from '../graph/taps.js';
import type { FeatureSet } from '../types.js';
import { concatFloat32 } from '../../core/tensor.js';

/**
 * The taps a backbone's multi-layer open-set score reads, found in its graph (runtime/train/graph/taps.ts
 * openSetTapsOf: the depthwise outputs of its last two residual blocks before the embedding); empty: the
 * embedding alone.
 */
export function openSetTaps(backbone: Backbone): readonly string[] {
  return openSetTapsOf(backbone.model, backbone.cut.tensor).tensors;
}

/** One tap's rows over the transfer's training rows (`train`) and validation rows (`val`), in their order. */
export interface TapSet {
  tensor: string;
  dims: number;
  train: Float32Array;
  val: Float32Array;
}

/** The tap rows of one embed call's images that embedded (r.ok), all their views, in order: what the transfer collected from it. */
export function tapRowsOf(r: EmbedResult): TapFeatures[] {
  const kept = r.ok.filter(Boolean).length;
  return r.taps.map(({ tensor, dims, features }) => {
    const per = r.views * dims;
    const out = new Float32Array(kept * per);
    let j = 0;
    r.ok.forEach((ok, i) => {
      if (ok) out.set(features.subarray(i * per, (i + 1) * per), j++ * per);
    });
    return { tensor, dims, features: out };
  });
}

/**
 * The resumed model's tap rows (resume data version 3), split as feedPrior (runtime/train/node/resume.ts)
 * splits its embedding rows: training images' rows, then validation images', each in file order.
 * Undefined when the resume data has none (version 1 / 2, or a model without the multi-layer score).
 */
export function priorTapRows(prior: ResumeData): { train: TapFeatures[]; val: TapFeatures[] } | undefined {
  if (!prior.taps?.length) return undefined;
  const split = (s: 'train' | 'val') => prior.taps!.map(({ tensor, dims, features }) => {
    const parts: Float32Array[] = [];
    let o = 0;
    for (const im of prior.images) {
      if (im.split === s) parts.push(features.subarray(o * dims, (o + im.views) * dims));
      o += im.views;
    }
    return { tensor, dims, features: concatFloat32(parts) };
  });
  return { train: split('train'), val: split('val') };
}

/**
 * Each tap's rows lined up with the transfer's: the `train` parts concatenated in order (a resume's prior
 * rows, then the new images'), likewise `val`. Undefined when a part lacks a tap, widths differ, or the row
 * counts are not `rows.train` / `rows.val` (an image that embedded once and failed the second time): the
 * caller then keeps the single-embedding score rather than fit on mismatched rows.
 */
export function tapSets(taps: readonly string[], parts: { train: TapFeatures[][]; val: TapFeatures[][] }, rows: { train: number; val: number }): TapSet[] | undefined {
  const out: TapSet[] = [];
  for (const tensor of taps) {
    const pick = (ps: TapFeatures[][]) => ps.map((p) => p.find((t) => t.tensor === tensor));
    const tr = pick(parts.train);
    const va = pick(parts.val);
    const all = [...tr, ...va];
    if (!all.length || all.some((t) => !t) || all.some((t) => t!.dims !== all[0]!.dims)) return undefined;
    const dims = all[0]!.dims;
    const train = concatFloat32(tr.map((t) => t!.features));
    const val = concatFloat32(va.map((t) => t!.features));
    if (train.length !== rows.train * dims || val.length !== rows.val * dims) return undefined;
    out.push({ tensor, dims, train, val });
  }
  return out;
}

/** The layers of a multi-layer open-set fit: each tap's rows labelled as the embedding's rows in `trainSet` / `valSet`. */
export function openSetLayers(sets: readonly TapSet[], trainSet: FeatureSet, valSet: FeatureSet): LayerFeatures[] {
  return sets.map((s) => ({ tensor: s.tensor, train: { ...trainSet, features: s.train, dims: s.dims }, val: { ...valSet, features: s.val, dims: s.dims } }));
}
