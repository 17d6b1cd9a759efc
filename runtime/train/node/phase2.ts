// Phase 2 of `edgetune finetune --unfreeze` (Node): the frozen part of the backbone runs once per view
// of every image (an Embedder over it, cached on disk like the pooled embeddings) to give the cut
// activations, then runtime/train/finetune-tail.ts trains the tail and the phase-1 head through ONNX
// training graphs on onnxruntime-node sessions. Returns the tuned backbone, the head, the metrics, a
// summary for the report, every image's embedding under the tuned backbone (the tuned tail run on the
// cached cut activations: what the resume data must hold, since the exported model embeds with the
// tuned backbone) and the tuned backbone's cache key (never the base's: the embedding cache would mix
// both).

import { createHash } from 'node:crypto';
import type { AugmentSpec } from '../augment/ops.js';
import { trainUnfrozen, unfrozenBackbone, UNFREEZE_DEFAULTS, type UnfreezePlan } from '../finetune-tail.js';
import { exportTail } from '../graph/tail-trainer.js';
import { encodeModel } from '../../onnx/model.js';
import { asFloat32, concatFloat32 } from '../../core/tensor.js';
import type { TailData, TailEpochStats, TailTrainConfig } from '../graph/tail-trainer.js';
import type { SessionFactory } from '../graph/session.js';
import type { Metrics } from '../metrics.js';
import type { HeadWeights } from '../types.js';
import type { OnnxModel } from '../../onnx/model.js';
import { createSession, type SessionOptions } from '../../session/session.js';
import { Embedder, sha256, type Backbone, type EmbeddingCache } from './embed.js';

export interface Phase2Options {
  plan: UnfreezePlan;
  backbone: Backbone;
  /** The phase-1 head (linear or MLP on the raw embedding). */
  head: HeadWeights;
  labels: readonly string[];
  train: readonly { file: string; label: number }[];
  val: readonly { file: string; label: number }[];
  /** Views per training image (view 0 clean), as phase 1. */
  views: number;
  augment: AugmentSpec;
  seed: number;
  cache: EmbeddingCache | null;
  session: SessionOptions;
  /** Phase-2 training config; lrBackbone defaults to UNFREEZE_DEFAULTS.backboneLrRatio × lrHead, patience and batch size to UNFREEZE_DEFAULTS. */
  config: Partial<TailTrainConfig> & { lrHead: number };
  signal?: AbortSignal;
  onActivations?(done: number, total: number): void;
  onEpoch?(e: TailEpochStats): void;
}

export interface Phase2Summary {
  cut: string;
  parameters: number;
  lrHead: number;
  lrBackbone: number;
  epochs: number;
  bestEpoch: number;
  stoppedEarly: boolean;
  accuracyBefore: number;
  accuracy: number;
  gain: number;
  activationS: number;
  trainingS: number;
  history: TailEpochStats[];
}

const round = (s: number) => Math.round(s * 100) / 100;

/**
 * The embedding rows of `x` (cut activations, `n` rows) through the tuned tail: [n, D] row-major, a
 * spatial map averaged when the tail ends unpooled (as phase 1's pooled cut).
 */
async function tunedEmbeddings(tail: OnnxModel, shape: number[], x: Float32Array, n: number, session: Phase2Options['session'], batch = 32): Promise<Float32Array> {
  const s = await createSession(encodeModel(tail), { ...session, onWarning: () => undefined });
  try {
    const per = shape.reduce((a, c) => a * c, 1);
    const rowsOut: Float32Array[] = [];
    for (let i = 0; i < n; i += batch) {
      const b = Math.min(batch, n - i);
      // one input shape for every run (TensorRT builds an engine per shape): a short last batch is zero-padded, its extra rows dropped
      const full = Math.min(batch, n);
      const feed = new Float32Array(full * per);
      feed.set(x.subarray(i * per, (i + b) * per));
      const out = await s.run({ [s.inputs[0]!.name]: { type: 'float32', data: feed, dims: [full, ...shape] } });
      const y = asFloat32(Object.values(out)[0]!);
      const d = Object.values(out)[0]!.dims as number[];
      const channels = d[1] ?? y.length / full;
      const spatial = y.length / (full * channels);
      const pooled = new Float32Array(b * channels);
      for (let r = 0; r < b; r++) for (let c = 0; c < channels; c++) {
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

/** Run phase 2 (see the module header). Errors: as trainUnfrozen / the embedder (EARG, EMODEL, EINPUT). */
export async function runPhase2(
  o: Phase2Options,
): Promise<{ head: HeadWeights; metrics: Metrics; backbone: OnnxModel; summary: Phase2Summary; embeddings: { train: Float32Array; val?: Float32Array }; key: string }> {
  const t0 = performance.now();
  const { plan } = o;
  const cutDims = (plan.cut.cutShape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const frozen: Backbone = { ...o.backbone, model: plan.cut.frozen, cut: { tensor: plan.cut.cut, pool: false, dims: cutDims }, key: sha256(`${o.backbone.sha256}|unfreeze|${plan.cut.cut}`) };
  const embedder = await Embedder.open(frozen, o.session);
  let train: TailData;
  let val: TailData | undefined;
  try {
    const tr = await embedder.embed(o.train.map((i) => i.file), { views: o.views, augment: o.augment, seed: o.seed, cache: o.cache, signal: o.signal, onProgress: o.onActivations });
    train = { x: tr.features, labels: Int32Array.from(o.train.flatMap((i) => Array<number>(o.views).fill(i.label))) };
    if (o.val.length) {
      const va = await embedder.embed(o.val.map((i) => i.file), { views: 1, cache: o.cache, signal: o.signal });
      val = { x: va.features, labels: Int32Array.from(o.val.map((i) => i.label)) };
    }
  } finally {
    await embedder.dispose();
  }
  const tAct = (performance.now() - t0) / 1000;
  const lrBackbone = o.config.lrBackbone ?? o.config.lrHead * UNFREEZE_DEFAULTS.backboneLrRatio;
  const createSessionFor: SessionFactory = (bytes) => createSession(bytes, { ...o.session, onWarning: () => undefined });
  const r = await trainUnfrozen(
    plan,
    { head: o.head, classes: o.labels.length, train, val, createSession: createSessionFor },
    { batchSize: UNFREEZE_DEFAULTS.batchSize, patience: UNFREEZE_DEFAULTS.patience, ...o.config, lrBackbone, seed: o.seed },
    { signal: o.signal, onEpoch: o.onEpoch },
  );
  // every view's embedding under the tuned backbone (the resume data's rows), and its cache key
  const tunedTail = exportTail(plan.cut.tail, r.tailWeights);
  const embeddings = {
    train: await tunedEmbeddings(tunedTail, plan.cut.cutShape.slice(1) as number[], train.x, train.labels.length, o.session),
    val: val ? await tunedEmbeddings(tunedTail, plan.cut.cutShape.slice(1) as number[], val.x, val.labels.length, o.session) : undefined,
  };
  const weightsHash = createHash('sha256');
  for (const name of Object.keys(r.tailWeights).sort()) weightsHash.update(name).update(new Uint8Array(r.tailWeights[name]!.buffer, r.tailWeights[name]!.byteOffset, r.tailWeights[name]!.byteLength));
  return {
    head: r.head,
    metrics: r.metrics,
    embeddings,
    key: sha256(`${o.backbone.key}|tuned|${plan.cut.cut}|${weightsHash.digest('hex')}`),
    backbone: unfrozenBackbone(plan, r),
    summary: {
      cut: plan.cut.cut,
      parameters: plan.parameters,
      lrHead: o.config.lrHead,
      lrBackbone,
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
