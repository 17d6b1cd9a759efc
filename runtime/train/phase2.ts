// Phase 2 of a fine-tune, orchestrated once for every driver (`edgetune finetune --unfreeze` through
// runtime/train/node/finetune.ts, and the kiosk page's teach mode through runtime/kiosk/page/teach.ts).
// BROWSER-SAFE: the two driver-specific pieces are injected, as for phase 1 (runtime/train/finetune.ts):
//   - a ViewEmbedder over the frozen part of the backbone (plan.cut.frozen), which gives every view's
//     activations at the cut (Node: runtime/train/node/embed.ts with its disk cache; the page: its
//     onnxruntime-web session over decoded samples), the same views as phase 1 (same seed, same content keys);
//   - a SessionFactory for the training graphs (onnxruntime-node, or onnxruntime-web's wasm / WebGPU).
// It then trains the tail and the phase-1 head together (runtime/train/finetune-tail.ts trainUnfrozen),
// and returns the tuned backbone, the head, the metrics, one summary for the report (Phase2Summary, the
// CLI's report and the page's stored metrics both hold it) and every image's embedding under the tuned
// backbone (the tuned tail run on the cut activations: the rows resume data must hold, since the model
// then embeds with the tuned backbone).
//
// The phase-2 settings rule, stated once (phase2Config): epochs UNFREEZE_DEFAULTS.epochs, patience
// UNFREEZE_DEFAULTS.patience, batch UNFREEZE_DEFAULTS.batchSize; optimizer, head learning rate, weight
// decay, dropout and label smoothing as phase 1's (FINETUNE_DEFAULTS under the given trainer config);
// backbone learning rate UNFREEZE_DEFAULTS.backboneLrRatio × the head's unless given.

import type { AugmentSpec } from './augment/ops.js';
import { trainUnfrozen, unfrozenBackbone, UNFREEZE_DEFAULTS, type UnfreezePlan } from './finetune-tail.js';
import { exportTail, type TailData, type TailEpochStats, type TailTrainConfig } from './graph/tail-trainer.js';
import type { SessionFactory } from './graph/session.js';
import { FINETUNE_DEFAULTS, type ViewEmbedder } from './finetune.js';
import { DEFAULT_LR } from './optim.js';
import type { Metrics } from './metrics.js';
import type { HeadWeights, TrainConfig } from './types.js';
import type { OnnxModel } from '../onnx/model.js';
import { encodeModel } from '../onnx/model.js';
import { asFloat32, concatFloat32 } from '../core/tensor.js';

/** Phase-2 settings beside the head's trainer config (each default: UNFREEZE_DEFAULTS, see the module header). */
export interface Phase2Settings {
  /** Backbone (tail) learning rate; default UNFREEZE_DEFAULTS.backboneLrRatio × the head's. */
  lrBackbone?: number;
  /** Maximum epochs (default UNFREEZE_DEFAULTS.epochs). */
  epochs?: number;
  /** Early-stopping patience on validation loss (default UNFREEZE_DEFAULTS.patience; 0 = off). */
  patience?: number;
}

/** What phase 2 did, as the CLI's report (`unfreeze`) and the page's stored metrics (`phase2`) hold it. */
export interface Phase2Summary {
  /** Blocks unfrozen (null when the cut was named by a tensor). */
  blocks: number | null;
  /** The tensor the backbone was cut at. */
  cut: string;
  /** Trainable parameters of the tail. */
  parameters: number;
  lrHead: number;
  lrBackbone: number;
  epochs: number;
  bestEpoch: number;
  stoppedEarly: boolean;
  /** Accuracy of the phase-1 head through the same graph on the same images (validation, else training). */
  accuracyBefore: number;
  accuracy: number;
  gain: number;
  /** Seconds spent computing the cut activations / training the tail. */
  activationS: number;
  trainingS: number;
  history: TailEpochStats[];
}

/** The phase-2 trainer config from the head's trainer config and the phase-2 settings (the rule in the module header). */
export function phase2Config(head: Partial<TrainConfig>, p: Phase2Settings = {}, seed: number = head.seed ?? FINETUNE_DEFAULTS.seed): Partial<TailTrainConfig> & { lrHead: number; lrBackbone: number; epochs: number } {
  const optimizer = head.optimizer ?? FINETUNE_DEFAULTS.optimizer;
  const lrHead = head.lr ?? DEFAULT_LR[optimizer];
  return {
    epochs: p.epochs ?? UNFREEZE_DEFAULTS.epochs,
    patience: p.patience ?? UNFREEZE_DEFAULTS.patience,
    batchSize: UNFREEZE_DEFAULTS.batchSize,
    optimizer,
    lrHead,
    lrBackbone: p.lrBackbone ?? lrHead * UNFREEZE_DEFAULTS.backboneLrRatio,
    weightDecay: head.weightDecay ?? FINETUNE_DEFAULTS.weightDecay,
    dropout: head.dropout ?? FINETUNE_DEFAULTS.dropout,
    labelSmoothing: head.labelSmoothing ?? FINETUNE_DEFAULTS.labelSmoothing,
    seed,
  };
}

export interface Phase2Options<T extends { label: number }> {
  plan: UnfreezePlan;
  /** The phase-1 head (linear or MLP on the raw embedding). */
  head: HeadWeights;
  classes: number;
  /** Phase 1's kept training and validation items (the ones that embedded). */
  train: readonly T[];
  val: readonly T[];
  /** Views per training item (view 0 clean) and their augmentation and seed, as phase 1's. */
  views: number;
  augment: AugmentSpec;
  seed: number;
  /** Activations at plan.cut.cut: an embedder over plan.cut.frozen. */
  embedder: ViewEmbedder<T>;
  /** Sessions for the training and evaluation graphs (and the tuned tail). */
  createSession: SessionFactory;
  /** The head's trainer config (optimizer, lr, weightDecay, dropout, labelSmoothing; FINETUNE_DEFAULTS otherwise). */
  config?: Partial<TrainConfig>;
  settings?: Phase2Settings;
  /** For the summary: the block count asked for (null for a named tensor). */
  blocks: number | null;
  signal?: AbortSignal;
  onActivations?(done: number, total: number): void;
  onEpoch?(e: TailEpochStats, epochs: number): void;
}

export interface Phase2Result {
  head: HeadWeights;
  /** Metrics of the tuned model on the validation activations (the training ones without validation). */
  metrics: Metrics;
  validated: boolean;
  /** The backbone with the tuned tail written back (export it with the head). */
  backbone: OnnxModel;
  tailWeights: Record<string, Float32Array>;
  summary: Phase2Summary;
  /** Every view's embedding under the tuned backbone: train (views rows per item) and val (one row each). */
  embeddings: { train: Float32Array; val?: Float32Array };
}

const round = (s: number) => Math.round(s * 100) / 100;

/**
 * The bytes whose sha256 identifies tuned tail weights: each weight's name (UTF-8) then its float32
 * bytes, sorted by name. After phase 2 a model embeds with the tuned backbone, so its embedding-cache key
 * (provenance `base.key`, both drivers) is sha256(tunedKeyText(base key, cut, sha256 hex of these bytes)),
 * never the base's: the cache would mix both.
 */
export function tailWeightsBytes(w: Record<string, Float32Array>): Uint8Array {
  const enc = new TextEncoder();
  const parts = Object.keys(w)
    .sort()
    .flatMap((name) => [enc.encode(name), new Uint8Array(w[name]!.buffer, w[name]!.byteOffset, w[name]!.byteLength)]);
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The text whose sha256 is a tuned backbone's cache key (see tailWeightsBytes). */
export function tunedKeyText(baseKey: string, cut: string, weightsSha256: string): string {
  return `${baseKey}|tuned|${cut}|${weightsSha256}`;
}

/**
 * The embedding rows of `x` (cut activations, `n` rows) through the tuned tail: [n, D] row-major, a
 * spatial map averaged when the tail ends unpooled (as phase 1's pooled cut).
 */
async function tunedEmbeddings(tail: OnnxModel, shape: number[], x: Float32Array, n: number, createSession: SessionFactory, batch = 32): Promise<Float32Array> {
  const s = await createSession(encodeModel(tail));
  try {
    const input = tail.graph.input[0]!.name ?? '';
    const per = shape.reduce((a, c) => a * c, 1);
    const rowsOut: Float32Array[] = [];
    for (let i = 0; i < n; i += batch) {
      const b = Math.min(batch, n - i);
      // one input shape for every run (TensorRT builds an engine per shape): a short last batch is zero-padded, its extra rows dropped
      const full = Math.min(batch, n);
      const feed = new Float32Array(full * per);
      feed.set(x.subarray(i * per, (i + b) * per));
      const out = Object.values(await s.run({ [input]: { type: 'float32', data: feed, dims: [full, ...shape] } }))[0]!;
      const y = asFloat32(out);
      const channels = (out.dims as number[])[1] ?? y.length / full;
      const spatial = y.length / (full * channels);
      const pooled = new Float32Array(b * channels);
      for (let r = 0; r < b; r++)
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let k = 0; k < spatial; k++) sum += y[(r * channels + c) * spatial + k]!;
          pooled[r * channels + c] = sum / spatial;
        }
      rowsOut.push(pooled);
    }
    return concatFloat32(rowsOut);
  } finally {
    await s.dispose();
  }
}

/** Run phase 2 (see the module header). Errors: as trainUnfrozen and the embedder (EARG for a prototype head or divergence). */
export async function runPhase2<T extends { label: number }>(o: Phase2Options<T>): Promise<Phase2Result> {
  const t0 = performance.now();
  const { plan } = o;
  const tr = await o.embedder.embed(o.train, { views: o.views, augment: o.augment, seed: o.seed, signal: o.signal, onProgress: o.onActivations });
  const train: TailData = { x: tr.features, labels: Int32Array.from(o.train.flatMap((i) => Array<number>(o.views).fill(i.label))) };
  let val: TailData | undefined;
  if (o.val.length) {
    const va = await o.embedder.embed(o.val, { views: 1, augment: {}, seed: o.seed, signal: o.signal });
    val = { x: va.features, labels: Int32Array.from(o.val.map((i) => i.label)) };
  }
  const tAct = (performance.now() - t0) / 1000;
  const config = phase2Config(o.config ?? {}, o.settings, o.seed);
  const r = await trainUnfrozen(plan, { head: o.head, classes: o.classes, train, val, createSession: o.createSession }, config, {
    signal: o.signal,
    onEpoch: (e) => o.onEpoch?.(e, config.epochs),
  });
  const tunedTail = exportTail(plan.cut.tail, r.tailWeights);
  const shape = plan.cut.cutShape.slice(1) as number[];
  const embeddings = {
    train: await tunedEmbeddings(tunedTail, shape, train.x, train.labels.length, o.createSession),
    val: val ? await tunedEmbeddings(tunedTail, shape, val.x, val.labels.length, o.createSession) : undefined,
  };
  return {
    head: r.head,
    metrics: r.metrics,
    validated: r.validated,
    backbone: unfrozenBackbone(plan, r),
    tailWeights: r.tailWeights,
    embeddings,
    summary: {
      blocks: o.blocks,
      cut: plan.cut.cut,
      parameters: plan.parameters,
      lrHead: config.lrHead,
      lrBackbone: config.lrBackbone,
      epochs: r.history.length,
      bestEpoch: r.bestEpoch,
      stoppedEarly: r.stoppedEarly,
      accuracyBefore: r.before.accuracy,
      accuracy: r.metrics.accuracy,
      gain: r.metrics.accuracy - r.before.accuracy,
      activationS: round(tAct),
      trainingS: round(r.ms / 1000),
      history: r.history,
    },
  };
}
