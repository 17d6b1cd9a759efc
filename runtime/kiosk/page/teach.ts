// Teach mode's training, in the page: the backbone is cut where the head goes (runtime/export-head.ts
// findCut / embeddingModel, on the ONNX toolkit runtime/onnx), samples are split per class into
// training and validation sets with a seeded shuffle, every training sample adds augmented views
// (runtime/augment.ts, the CLI's `--augment` spec language and renderer), the
// embeddings are computed with onnxruntime-web, the head is trained by runtime/train (the trainer the
// CLI uses, with early stopping on the validation loss), scored on the validation set (accuracy +
// confusion matrix) and exported with exportClassifierModel — the same ONNX format as
// `edgetune finetune`, with `edgetune.model` metadata, so the live view and the CLI both serve it.

import type { KioskConfig } from '../config.js';
import { DEFAULT_AUGMENT, formatAugmentation, parseAugmentation, renderView, sampleView, viewRng, type AugmentSpec } from '../../train/augment/ops.js';
import { EMBEDDING_OUTPUT, embeddingModel, exportClassifierModel, findCut, headFromModel, type CutSpec } from '../../train/export.js';
import { decodeModel, type OnnxModel } from '../../onnx/model.js';
import { toTensor, type HwcImage } from '../../image/preprocess.js';
import { asFloat32, concatFloat32 } from '../../core/tensor.js';
import { computeMetrics, createRng, DEFAULT_CONFIG, predictHead, predictions, prototypeHead, trainHead, type FeatureSet, type HeadWeights, type Rng, type TrainConfig } from '../../train/index.js';
import { openSession, type WebProvider, type WebSession } from './engine.js';
import { decodeBlob, toGrayInPlace, toModelImage, toSourceImage } from './pixels.js';
import type { ModelMetrics } from './store.js';

export interface TrainProgress {
  done: number;
  total: number;
  message: string;
}

export interface TrainRequest {
  /** Bytes of the served model (the backbone). */
  backbone: Uint8Array;
  model: KioskConfig['model'];
  classes: { name: string; samples: Blob[] }[];
  /** Augmentation spec in the CLI's `--augment` language (runtime/augment.ts): `default`, `none`, `flip,rotate:15,…`. */
  augment: string;
  /** Fraction of each class held out for validation (0 = none). */
  valSplit: number;
  order: readonly WebProvider[];
  /**
   * The head: `linear` softmax, `mlp` (128 hidden units), `prototype` (nearest class mean,
   * no training: for a handful of samples), or `auto` (prototype below 5 training samples per class).
   */
  head?: 'auto' | 'linear' | 'mlp' | 'prototype';
  /** Embedded views per training sample, the first un-augmented (the CLI's --views). Default 4. */
  views?: number;
  seed?: number;
  config?: Partial<TrainConfig>;
  onProgress?(p: TrainProgress): void;
  signal?: AbortSignal;
}

export interface TrainOutcome {
  onnx: Uint8Array;
  labels: string[];
  metrics: ModelMetrics;
  provider: WebProvider;
}

interface Item {
  label: number;
  blob: Blob;
  name: string;
  split: 'train' | 'val';
}

/** Stratified split: per class a seeded shuffle, `round(n·fraction)` (at least one) held out, at least one kept. */
export function splitItems(classes: TrainRequest['classes'], fraction: number, rng: Rng): Item[] {
  const items: Item[] = [];
  classes.forEach((c, label) => {
    const idx = c.samples.map((_, i) => i);
    rng.shuffle(idx);
    const n = idx.length;
    const nVal = fraction > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(n * fraction))) : 0;
    idx.forEach((i, k) => items.push({ label, blob: c.samples[i]!, name: `${c.name}#${i + 1}`, split: k < nVal ? 'val' : 'train' }));
  });
  return items;
}

class Embedder {
  private batch = 8;
  constructor(
    private readonly session: WebSession,
    private readonly model: KioskConfig['model'],
  ) {}

  private get input() {
    return this.model.inputName && this.session.inputNames.includes(this.model.inputName) ? this.model.inputName : this.session.inputNames[0]!;
  }

  /** Embeddings of images, one row each, concatenated. */
  async embed(images: HwcImage[]): Promise<{ rows: Float32Array; dims: number }> {
    const parts: Float32Array[] = [];
    for (let i = 0; i < images.length; ) {
      const chunk = images.slice(i, i + this.batch);
      let out;
      try {
        out = await this.session.run({ [this.input]: toTensor(chunk, this.model.preprocess) });
      } catch (err) {
        // fixed-batch models take one image per run
        if (this.batch > 1 && chunk.length > 1) {
          this.batch = 1;
          continue;
        }
        throw err;
      }
      parts.push(asFloat32(Object.values(out)[0]!).slice());
      i += chunk.length;
    }
    const rows = concatFloat32(parts);
    return { rows, dims: images.length ? rows.length / images.length : 0 };
  }
}

function featureSet(rows: Float32Array[], labels: number[], dims: number, classes: number): FeatureSet {
  const features = new Float32Array(rows.length * dims);
  rows.forEach((r, i) => features.set(r, i * dims));
  return { features, labels: Int32Array.from(labels), dims, classes };
}

let cache: { bytes: Uint8Array; hint: string | null; backbone: OnnxModel; cut: CutSpec; embedding: Uint8Array } | undefined;
/** The decoded backbone, its cut and embedding model, kept for the next training run (decoding takes a while). */
function prepared(bytes: Uint8Array, hint: string | null) {
  if (cache?.bytes !== bytes || cache.hint !== hint) {
    const backbone = decodeModel(bytes);
    // a model edgetune exported (served with --model finetuned.onnx) is cut where its head starts
    const exported = backbone.graph.node.some((n) => n.output.includes(EMBEDDING_OUTPUT));
    const cut = exported ? headFromModel(backbone).cut : findCut(backbone, hint);
    cache = { bytes, hint, backbone, cut, embedding: embeddingModel(backbone, cut) };
  }
  return cache;
}

export async function trainInPage(r: TrainRequest): Promise<TrainOutcome> {
  const t0 = performance.now();
  const progress = r.onProgress ?? (() => undefined);
  const labels = r.classes.map((c) => c.name);
  const K = labels.length;
  if (K < 2) throw new Error('training needs at least two classes');
  for (const c of r.classes) if (c.samples.length < 1) throw new Error(`class "${c.name}" has no samples`);
  const seed = r.seed ?? 42;
  const augment: AugmentSpec = parseAugmentation(r.augment === 'default' ? DEFAULT_AUGMENT : r.augment);
  // augmented views per training sample, besides the clean one (the CLI's --views counts both)
  const views = Object.keys(augment).length ? Math.max(1, r.views ?? 4) - 1 : 0;

  progress({ done: 0, total: 1, message: 'cutting the backbone at its embedding…' });
  const { backbone, cut, embedding } = prepared(r.backbone, r.model.embedding?.tensor ?? null);
  const session = await openSession(embedding, r.order);
  const provider = session.provider;
  const embedder = new Embedder(session, r.model);

  const items = splitItems(r.classes, r.valSplit, createRng(seed, 'split'));
  const trainRows: Float32Array[] = [];
  const trainLabels: number[] = [];
  const valRows: Float32Array[] = [];
  const valLabels: number[] = [];
  const total = items.reduce((a, it) => a + 1 + (it.split === 'train' ? views : 0), 0);
  let done = 0;
  let dims = cut.dims;
  const skipped: string[] = [];
  try {
    // a few samples at a time: decode, draw every view, one batched run
    for (let i = 0; i < items.length; i += 2) {
      if (r.signal?.aborted) throw r.signal.reason ?? new Error('training cancelled');
      const group = items.slice(i, i + 2);
      const imgs: HwcImage[] = [];
      const owners: Item[] = [];
      for (const it of group) {
        let bmp: ImageBitmap;
        try {
          bmp = await decodeBlob(it.blob, it.name);
        } catch (err) {
          skipped.push(err instanceof Error ? err.message : String(err));
          continue;
        }
        const spec = r.model.preprocess;
        imgs.push(toModelImage(bmp, spec));
        owners.push(it);
        if (it.split === 'train' && views) {
          // the CLI's augmentation: seeded view parameters, rendered with typed arrays from the stored sample
          const src = toSourceImage(bmp);
          for (let v = 1; v <= views; v++) {
            const view = renderView(src, sampleView(augment, viewRng(seed, it.name, v)), spec.width, spec.height, spec.resize === 'cover' ? spec.crop : 1);
            imgs.push(spec.channels === 1 ? toGrayInPlace(view) : view);
            owners.push(it);
          }
        }
        bmp.close();
      }
      const { rows, dims: d } = await embedder.embed(imgs);
      dims = d;
      owners.forEach((it, k) => {
        const row = rows.slice(k * d, (k + 1) * d);
        if (it.split === 'train') {
          trainRows.push(row);
          trainLabels.push(it.label);
        } else {
          valRows.push(row);
          valLabels.push(it.label);
        }
      });
      done += imgs.length;
      progress({ done, total: total + 1, message: `embedding ${done}/${total} views (${provider})` });
    }
  } finally {
    await session.dispose();
  }
  for (let k = 0; k < K; k++) {
    if (!trainLabels.includes(k)) throw new Error(`class "${labels[k]}" has no usable training samples${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`);
  }

  const train = featureSet(trainRows, trainLabels, dims, K);
  const val = valRows.length ? featureSet(valRows, valLabels, dims, K) : undefined;
  let kind = r.head ?? 'auto';
  if (kind === 'auto') {
    const fewest = Math.min(...labels.map((_, k) => items.filter((it) => it.split === 'train' && it.label === k).length));
    kind = fewest < 5 ? 'prototype' : 'linear';
  }
  let head: HeadWeights;
  let epochs = 0;
  let bestEpoch = 0;
  if (kind === 'prototype') {
    head = prototypeHead(train);
  } else {
    // The trainer's defaults (as `edgetune finetune` uses them) plus L2-normalised embeddings, which
    // suit the kiosk's few samples per class: a head taught from 15 hymenoptera photos per class
    // scored 0.954 on the 153 val photos with normalisation and 0.915 without.
    const config: Partial<TrainConfig> = { seed, normalize: true, ...(kind === 'mlp' ? { hidden: 128 } : {}), ...r.config };
    const result = await trainHead(train, val, config, {
      signal: r.signal,
      onEpoch(s) {
        const acc = s.valAccuracy !== undefined ? ` · validation ${(s.valAccuracy * 100).toFixed(0)}%` : '';
        progress({ done: total + s.epoch / (config.epochs ?? DEFAULT_CONFIG.epochs), total: total + 1, message: `epoch ${s.epoch}: loss ${s.trainLoss.toFixed(3)}${acc}` });
      },
    });
    head = result.head;
    epochs = result.history.length;
    bestEpoch = result.bestEpoch;
  }
  const trainPred = predictions(predictHead(head, train.features), K);
  const trainAcc = computeMetrics(trainPred, train.labels, K).accuracy;
  const scored = val ?? train;
  const m = computeMetrics(predictions(predictHead(head, scored.features), K), scored.labels, K);
  const metrics: ModelMetrics = {
    valAccuracy: val ? m.accuracy : null,
    trainAccuracy: trainAcc,
    confusion: m.confusion,
    valCount: val ? valLabels.length : 0,
    trainCount: items.filter((it) => it.split === 'train').length,
    epochs,
    head: head.kind,
    ms: performance.now() - t0,
  };
  const onnx = exportClassifierModel(backbone, cut, head, labels, r.model.preprocess, {
    base: r.model.id,
    head: head.kind,
    trainedIn: 'edgetune kiosk',
    samples: items.length,
    augment: formatAugmentation(augment),
    views: views + 1,
    valAccuracy: metrics.valAccuracy,
    bestEpoch,
  });
  progress({ done: total + 1, total: total + 1, message: skipped.length ? `done; skipped ${skipped.length}: ${skipped.join('; ')}` : 'done' });
  return { onnx, labels, metrics, provider };
}
