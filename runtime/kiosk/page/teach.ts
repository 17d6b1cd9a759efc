// Teach mode's training, in the page: a thin driver of runtime/train/finetune.ts, the fine-tune module
// `edgetune finetune` drives too (one stratified split, one meaning of views, one set of defaults, the
// same trainer and the same ONNX export with `edgetune.model` metadata, so the live view and the CLI
// both serve what it makes). This file brings the page's I/O: the backbone cut into its embedding graph
// (built once per backbone and reused by the export), the samples decoded from their Blobs, augmented
// views rendered with typed arrays (runtime/train/augment/ops.ts, the CLI's spec language and view
// parameters), and embeddings computed with onnxruntime-web.
// Phase 2 (`unfreeze`, the CLI's --unfreeze): the one phase-2 module the CLI runs too
// (runtime/train/phase2.ts) cuts the float backbone before its last blocks; this page's embedder gives the
// frozen part's activations per view (the same views as phase 1, rendered again from the same seed and
// content keys), and the tail + head train through ONNX training graphs on onnxruntime-web sessions (wasm
// or WebGPU, the order the page uses for inference). The model carries the one provenance
// (FinetuneProvenance) the CLI writes, tool 'edgetune kiosk'.

import type { KioskConfig } from '../config.js';
import { formatAugmentation, parseAugmentation, renderView, type AugmentSpec } from '../../train/augment/ops.js';
import { EMBEDDING_OUTPUT, embeddingGraph, findCut, headFromModel, type EmbeddingGraph } from '../../train/export.js';
import { decodeModel, encodeModel } from '../../onnx/model.js';
import { planUnfreeze } from '../../train/finetune-tail.js';
import { runPhase2, tailWeightsBytes, tunedKeyText, type Phase2Settings } from '../../train/phase2.js';
import { exportClassifierModel } from '../../train/export.js';
import { openSetForHead } from '../../train/openset.js';
import { toTensor, type HwcImage } from '../../image/preprocess.js';
import { invalidParameter } from '../../core/errors.js';
import { asFloat32, concatFloat32 } from '../../core/tensor.js';
import { METADATA_KEY, readMetadataProps } from '../../core/metadata.js';
import { resumeLayout } from '../../train/resume-format.js';
import { finetuneSummary, type FinetuneSummary } from '../../train/summary.js';
import type { TrainConfig } from '../../train/index.js';
import { collectEmbeddings, createTransfer, FINETUNE_DEFAULTS, stratifiedSplit, viewCount, viewParams, FROM_PAGE, type FinetuneProvenance, type HeadKind, type ViewEmbedder } from '../../train/finetune.js';
import { asGraphSession, openSession, type WebProvider, type WebSession } from './engine.js';
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
  /** Augmentation spec in the CLI's `--augment` language: `default`, `none`, `flip,rotate:15,…`. Default FINETUNE_DEFAULTS.augment. */
  augment?: string;
  /** Fraction of each class held out for validation (0 = none). Default FINETUNE_DEFAULTS.valSplit. */
  valSplit?: number;
  order: readonly WebProvider[];
  /**
   * The head: `linear` softmax, `mlp`, `prototype` (nearest class mean, no training: for a handful of
   * samples), or `auto` (prototype below AUTO_PROTOTYPE_BELOW training samples per class; the default).
   */
  head?: 'auto' | HeadKind;
  /** Embedded views per training sample, view 0 un-augmented (runtime/train/finetune.ts). Default FINETUNE_DEFAULTS.views. */
  views?: number;
  seed?: number;
  /** Trainer overrides on FINETUNE_DEFAULTS. */
  config?: Partial<TrainConfig>;
  /**
   * Phase 2 (the course's step 5, the CLI's --unfreeze): after the head, train the last `unfreeze` blocks
   * of the backbone with it at a low learning rate. 0 (default): the head alone. Needs a float backbone
   * (an int8 one is refused with its fp32 twin named) and a trained head: `auto` picks linear here.
   */
  unfreeze?: number;
  /** Phase-2 settings: backbone learning rate (default UNFREEZE_DEFAULTS.backboneLrRatio × the head's), epochs and patience (UNFREEZE_DEFAULTS). */
  phase2?: Phase2Settings;
  onProgress?(p: TrainProgress): void;
  signal?: AbortSignal;
}

export interface TrainOutcome {
  onnx: Uint8Array;
  /** The resume data (`<name>.resume.bin` beside the exported `<name>.onnx`): `edgetune finetune --resume` adds classes from it. */
  resume: Uint8Array;
  labels: string[];
  /** The one report of a fine-tune (the CLI's report.json holds the same fields). */
  report: FinetuneSummary;
  metrics: ModelMetrics;
  provider: WebProvider;
}

/** One uploaded or recorded sample. */
interface Sample {
  label: number;
  blob: Blob;
  name: string;
}

/** The samples of every class, in class order, then sample order: the item order the split sees (as the CLI's sorted folders). */
function samplesOf(classes: TrainRequest['classes']): Sample[] {
  return classes.flatMap((c, label) => c.samples.map((blob, i) => ({ label, blob, name: `${c.name}#${i + 1}` })));
}

/** The sha256 of bytes by WebCrypto; empty where it is unavailable (outside a secure context). */
async function sha256Bytes(bytes: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  return subtle ? new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)) : new Uint8Array(0);
}

/** The sha256 (hex) of bytes by WebCrypto; '' where it is unavailable (outside a secure context). */
async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return Array.from(await sha256Bytes(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The content key of a sample for its view parameters: the sha256 (hex) of its bytes, as the CLI keys files (the name where WebCrypto is unavailable, outside a secure context). */
async function contentKey(s: Sample): Promise<string> {
  return (await sha256Hex(new Uint8Array(await s.blob.arrayBuffer()))) || s.name;
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

  /** Rows of the session's first output for images (embeddings, or cut activations for phase 2), one row each, concatenated. */
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

let cache: { bytes: Uint8Array; hint: string | null; graph: EmbeddingGraph } | undefined;
/** The backbone cut into its embedding graph, kept for the next training run (building it takes a while) and reused by the export. */
function prepared(bytes: Uint8Array, hint: string | null): EmbeddingGraph {
  if (cache?.bytes !== bytes || cache.hint !== hint) {
    const backbone = decodeModel(bytes);
    // a model edgetune exported (served with --model finetuned.onnx) is cut where its head starts
    const exported = backbone.graph.node.some((n) => n.output.includes(EMBEDDING_OUTPUT));
    const cut = exported ? headFromModel(backbone).cut : findCut(backbone, hint);
    cache = { bytes, hint, graph: embeddingGraph(backbone, cut) };
  }
  return cache.graph;
}

/**
 * The page's ViewEmbedder: samples are decoded a few at a time, their views drawn (view 0 the model
 * image, views 1.. rendered from the decoded sample with runtime/train/finetune.ts viewParams) and
 * embedded in one batched run; with `rows` (phase 2's mini-batches), only those views. `onViews` counts
 * embedded views for the progress bar.
 */
function pageEmbedder(embedder: Embedder, model: KioskConfig['model'], onViews: (n: number) => void): ViewEmbedder<Sample> {
  const spec = model.preprocess;
  return {
    async embed(items, o) {
      const skipped: { file: string; reason: string }[] = [];
      const ok = items.map(() => true);
      // the rows asked for (every view of every item by default), and each item's views among them
      const order = o.rows ?? Array.from({ length: items.length * o.views }, (_, r) => r);
      const viewsOf = items.map((): number[] => []);
      for (const r of order) viewsOf[Math.floor(r / o.views)]?.push(r % o.views);
      const got = new Map<number, Float32Array>();
      let dims = 0;
      const pending = items.map((_, k) => k).filter((k) => viewsOf[k]!.length);
      // samples are decoded until 8 views are drawn (2 samples at 4 views), then embedded in one run
      for (let p = 0; p < pending.length; ) {
        if (o.signal?.aborted) throw o.signal.reason ?? new Error('training cancelled');
        const imgs: HwcImage[] = [];
        const owners: number[] = [];
        for (; p < pending.length && imgs.length < 8; p++) {
          const k = pending[p]!;
          const it = items[k]!;
          let bmp: ImageBitmap;
          try {
            bmp = await decodeBlob(it.blob, it.name);
          } catch (err) {
            ok[k] = false;
            skipped.push({ file: it.name, reason: err instanceof Error ? err.message : String(err) });
            continue;
          }
          const key = viewsOf[k]!.some((v) => v > 0) ? await contentKey(it) : '';
          const src = key ? toSourceImage(bmp) : undefined;
          for (const v of viewsOf[k]!) {
            if (v === 0) imgs.push(toModelImage(bmp, spec));
            else {
              const view = renderView(src!, viewParams(o.augment, o.seed, key, v), spec.width, spec.height, spec.resize === 'cover' ? spec.crop : 1);
              imgs.push(spec.channels === 1 ? toGrayInPlace(view) : view);
            }
            owners.push(k * o.views + v);
          }
          bmp.close();
        }
        const out = await embedder.embed(imgs);
        if (out.dims) dims = out.dims;
        owners.forEach((row, r) => got.set(row, out.rows.slice(r * dims, (r + 1) * dims)));
        onViews(imgs.length);
      }
      const features = new Float32Array(order.length * dims);
      order.forEach((row, j) => {
        const x = got.get(row);
        if (x && ok[Math.floor(row / o.views)]) features.set(x, j * dims);
      });
      return { features, dims, ok, skipped };
    },
  };
}

export async function trainInPage(r: TrainRequest): Promise<TrainOutcome> {
  const t0 = performance.now();
  const progress = r.onProgress ?? (() => undefined);
  const labels = r.classes.map((c) => c.name);
  const K = labels.length;
  if (K < 2) throw new Error('training needs at least two classes');
  for (const c of r.classes) if (c.samples.length < 1) throw new Error(`class "${c.name}" has no samples`);
  const seed = r.seed ?? FINETUNE_DEFAULTS.seed;
  const augment: AugmentSpec = parseAugmentation(r.augment ?? FINETUNE_DEFAULTS.augment);
  const views = viewCount(augment, r.views ?? FINETUNE_DEFAULTS.views);

  const unfreeze = r.unfreeze ?? 0;
  if (!(Number.isInteger(unfreeze) && unfreeze >= 0)) throw invalidParameter('unfreeze', 'a whole number of blocks (0 or more)', r.unfreeze);
  if (unfreeze && r.head === 'prototype') throw new Error('unfreezing needs a trained head: choose linear or MLP (a prototype head normalises its input and cannot be trained through)');

  progress({ done: 0, total: 1, message: 'cutting the backbone at its embedding…' });
  const graph = prepared(r.backbone, r.model.embedding?.tensor ?? null);
  // phase 2's cut, planned before any embedding work (an int8 backbone is refused here)
  const plan = unfreeze ? planUnfreeze(decodeModel(r.backbone), graph.cut.tensor, unfreeze, r.model.id, r.model.preprocess) : undefined;
  const session = await openSession(graph.bytes, r.order);
  const provider = session.provider;

  const valSplit = r.valSplit ?? FINETUNE_DEFAULTS.valSplit;
  const { train, val } = stratifiedSplit(samplesOf(r.classes), K, valSplit, seed);
  const total = train.length * views + val.length;
  let done = 0;
  const embedder = pageEmbedder(new Embedder(session, r.model), r.model, (n) => {
    done += n;
    progress({ done, total: total + 1, message: `embedding ${done}/${total} views (${provider})` });
  });
  const transfer = createTransfer({ labels });
  let collected;
  try {
    collected = await collectEmbeddings(transfer, embedder, { train, val, augment, views, seed, signal: r.signal });
  } finally {
    await session.dispose();
  }
  const skipped = collected.skipped.map((s) => s.reason);
  const counts = transfer.counts();
  for (let k = 0; k < K; k++) {
    if (!counts.train[k]) throw new Error(`class "${labels[k]}" has no usable training samples${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`);
  }
  const epochs = r.config?.epochs ?? FINETUNE_DEFAULTS.epochs;
  const result = await transfer.train(
    { head: plan && (r.head ?? 'auto') === 'auto' ? 'linear' : (r.head ?? 'auto'), config: { seed, ...r.config } },
    {
      signal: r.signal,
      onEpoch(s) {
        const acc = s.valAccuracy !== undefined ? ` · validation ${(s.valAccuracy * 100).toFixed(0)}%` : '';
        progress({ done: total + s.epoch / epochs, total: total + 1, message: `epoch ${s.epoch}: loss ${s.trainLoss.toFixed(3)}${acc}` });
      },
    },
  );
  // the one provenance of a fine-tuned model (runtime/train/finetune.ts FinetuneProvenance): what
  // `finetune --resume` reads (the backbone's identity and cut; the samples have no folder: FROM_PAGE)
  const baseSha = await sha256Hex(r.backbone);
  const provenance: FinetuneProvenance = {
    tool: 'edgetune kiosk',
    base: { id: r.model.id, sha256: baseSha, key: await sha256Hex(new TextEncoder().encode(`${baseSha}|${graph.cut.tensor}`)), cut: graph.cut.tensor },
    dataset: { train: FROM_PAGE, valSplit, added: [], images: collected.train.length + collected.val.length },
    augment: formatAugmentation(augment),
    views,
    head: result.head.kind,
    seed,
    created: new Date().toISOString(),
  };
  let onnx: Uint8Array;
  // every image's rows under the backbone the model embeds with (phase 2's tuned one when it ran): the resume data's
  let tuned: { train: Float32Array; val?: Float32Array } | undefined;
  let p2Result: Parameters<typeof finetuneSummary>[2];
  if (plan) {
    // phase 2 through the one module the CLI runs too (runtime/train/phase2.ts): the frozen part's
    // activations from this page's embedder, the training graphs on onnxruntime-web sessions
    const frozen = await openSession(encodeModel(plan.cut.frozen), r.order);
    const totalP2 = collected.train.length * views + collected.val.length;
    let doneP2 = 0;
    let p2;
    try {
      p2 = await runPhase2({
        plan, head: result.head, classes: K, train: collected.train, val: collected.val, views, augment, seed,
        embedder: pageEmbedder(new Embedder(frozen, r.model), r.model, (n) => {
          // the fresh views of later epochs (runtime/train/phase2.ts) are counted by the epoch lines
          if (doneP2 >= totalP2) return;
          doneP2 += n;
          progress({ done: doneP2, total: totalP2 + 1, message: `phase 2: activations at ${plan.cut.cut}, ${doneP2}/${totalP2} views (${frozen.provider})` });
        }),
        createSession: async (bytes) => asGraphSession(await openSession(bytes, r.order)),
        config: { seed, ...r.config },
        settings: r.phase2,
        blocks: unfreeze,
        signal: r.signal,
        onEpoch(e, epochsP2) {
          const acc = e.valAccuracy !== undefined ? ` · validation ${(e.valAccuracy * 100).toFixed(0)}%` : '';
          progress({ done: totalP2 + e.epoch / epochsP2, total: totalP2 + 1, message: `phase 2 epoch ${e.epoch}: loss ${e.trainLoss.toFixed(3)}${acc}` });
        },
      });
    } finally {
      await frozen.dispose();
    }
    if (!p2.tuned) {
      // the never-worse rule (runtime/train/phase2.ts keepPhase2): the head-only model, the summary says why
      p2Result = { metrics: result.metrics, summary: p2.summary };
      onnx = transfer.export(graph, r.model.preprocess, provenance as unknown as Record<string, unknown>);
    } else {
      p2Result = p2;
      provenance.unfreeze = { cut: p2.summary.cut, blocks: unfreeze, lrBackbone: p2.summary.lrBackbone };
      tuned = p2.tuned.embeddings;
      provenance.base.key = await sha256Hex(new TextEncoder().encode(tunedKeyText(provenance.base.key, p2.summary.cut, await sha256Hex(tailWeightsBytes(p2.tuned.tailWeights)))));
      // the open-set calibration on the tuned backbone's embeddings (as the library's phase-2 export)
      const valSet = transfer.valSet();
      const openSet = openSetForHead(p2.head, { ...transfer.trainSet(), features: tuned.train }, tuned.val && valSet ? { ...valSet, features: tuned.val } : undefined);
      onnx = exportClassifierModel(p2.tuned.backbone, graph.cut, p2.head, labels, r.model.preprocess, provenance as unknown as Record<string, unknown>, openSet);
    }
  } else {
    onnx = transfer.export(graph, r.model.preprocess, provenance as unknown as Record<string, unknown>);
  }
  // the one report of a fine-tune (runtime/train/summary.ts, as the CLI's), and the page's stored view of it
  const report = finetuneSummary(transfer, result, p2Result);
  const metrics: ModelMetrics = {
    valAccuracy: report.accuracy,
    trainAccuracy: report.trainAccuracy,
    confusion: report.confusion,
    valCount: collected.val.length,
    trainCount: collected.train.length,
    epochs: report.epochs,
    head: report.head,
    ms: performance.now() - t0,
    ...(report.unfreeze ? { phase2: report.unfreeze } : {}),
  };
  // the resume data (runtime/train/resume-format.ts), what `edgetune finetune --resume <model> --add-class`
  // reads beside the model: each kept sample's class, split, views, name and content hash, and its rows
  const keys = await Promise.all([...collected.train, ...collected.val].map(contentKey));
  const trainRows = tuned?.train ?? transfer.trainSet().features;
  const valRows = tuned ? tuned.val : transfer.valSet()?.features;
  const features = new Float32Array(trainRows.length + (valRows?.length ?? 0));
  features.set(trainRows);
  if (valRows) features.set(valRows, trainRows.length);
  const { out: resume, body } = resumeLayout({
    model: await sha256Hex(new TextEncoder().encode(readMetadataProps(onnx)[METADATA_KEY] ?? '')),
    labels,
    dims: transfer.dims,
    images: [
      ...collected.train.map((s, i) => ({ label: s.label, split: 'train' as const, views, name: s.name, sha256: keys[i]! })),
      ...collected.val.map((s, i) => ({ label: s.label, split: 'val' as const, views: 1, name: s.name, sha256: keys[collected.train.length + i]! })),
    ],
    features,
  });
  // version 2's checksum: the sha256 of everything before it (WebCrypto here, node:crypto in the library)
  resume.set(await sha256Bytes(resume.subarray(0, body)), body);
  progress({ done: total + 1, total: total + 1, message: skipped.length ? `done; skipped ${skipped.length}: ${skipped.join('; ')}` : 'done' });
  return { onnx, resume, labels, report, metrics, provider };
}
