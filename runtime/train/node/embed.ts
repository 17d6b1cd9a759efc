// Embeddings for head training (Node): a backbone cut into an embedding session (runtime/train/export.ts
// builds the graph), images decoded once each, K augmented views per image rendered from that one
// decode, session.run batched when the model has a dynamic batch dimension, and an on-disk cache of
// every embedding keyed by (model + cut, file content hash, view parameters), so repeated runs, added
// images and added classes only embed what is new. Undecodable images are reported and skipped. Opened
// with `taps` (the open-set taps), the same session.run also gives each tap's pooled features, cached
// per output (runtime/train/export.ts embeddingGraphWithTaps): one backbone pass for both.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeBase, renderViewSharp } from './augment-sharp.js';
import { isIdentityView, viewKey, type AugmentSpec, type ViewParams } from '../augment/ops.js';
import { viewParams } from '../finetune.js';
import { EdgetuneError, invalidParameter, messageOf } from '../../core/errors.js';
import { EMBEDDING_OUTPUT, embeddingGraph, embeddingGraphWithTaps, findCut, type CutSpec, type EmbeddingGraph } from '../export.js';
import { decodeImage, readErrorReason } from '../../image/decode.js';
import type { OnnxModel } from '../../onnx/model.js';
import { assumedFields, checkCardLayerKeys, type CardLayer } from '../../core/model-card.js';
import { isStaleTemp, tempPathFor } from '../../io/atomic.js';
import { loadModelFile } from '../../io/model-file.js';
import { toTensor, type HwcImage, type PreprocessSpec } from '../../image/preprocess.js';
import { createSession, type ModelSession, type SessionOptions } from '../../session/session.js';
import { asFloat32, concatFloat32 } from '../../core/tensor.js';
import { cacheDir } from '../../io/paths.js';
import { describeBytes } from '../../../models/describe.js';
import { resolveModel } from '../../../models/loader.js';
import type { ModelEntry } from '../../../models/registry.js';
import type { ResumeTap } from '../resume-format.js';
import { checkOptionKeys, type AssertNever } from '../../core/options.js';

export interface Backbone {
  /** Registry id or file name. */
  id: string;
  /** The model the cut applies to. */
  model: OnnxModel;
  spec: PreprocessSpec;
  cut: CutSpec;
  /** Identifies backbone + cut in cache keys (sha256 of the original model file and the cut tensor); the preprocessing is added per embed. */
  key: string;
  /** sha256 of the base model file. */
  sha256: string;
  entry?: ModelEntry;
  /** What had to be assumed about the model (no registry entry, card or flags said it). */
  assumed?: string[];
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A model as a backbone, described by its model card (models/describe.ts: registry entry, embedded
 * metadata — imported `.tflite` / tfjs models carry theirs —, a card file beside it, `overrides`):
 * its preprocessing, and the cut at the card's embedding tensor or found from the graph. External
 * data is inlined, so an export is one self-contained file. `assumed` lists the card fields nothing
 * described (the caller says so). Errors: EMODEL when the model cannot be read or cut; EARG for an
 * `overrides` key a card layer lacks (`loadBackbone: unknown option "overrides.preprocess.maen" …`).
 */
export async function loadBackbone(ref: string, overrides?: CardLayer): Promise<Backbone> {
  checkCardLayerKeys('loadBackbone', overrides, 'overrides');
  // read once and decoded once (external data inlined), then described from those bytes and that model
  const resolved = await resolveModel(ref);
  const { bytes: own, model } = await loadModelFile(resolved.path);
  const d = await describeBytes(own, resolved, { overrides, allowNonClassifier: true }, model);
  const cut = findCut(model, d.card.embedding?.tensor ?? null);
  if (!cut.dims && d.card.embedding?.dims) cut.dims = d.card.embedding.dims;
  const hash = sha256(own);
  const assumed = assumedFields(d.card).filter((f) => f.startsWith('preprocess.'));
  return {
    id: d.card.id,
    model,
    spec: d.card.preprocess,
    cut,
    key: sha256(`${hash}|${cut.tensor}`),
    sha256: hash,
    ...(d.entry ? { entry: d.entry } : {}),
    ...(assumed.length ? { assumed: d.card.assumptions } : {}),
  };
}

/** Size cap of the embedding cache by default: 512 MB (about 100 000 MobileNetV2 embeddings; about 47 000 image views with its two open-set taps beside each, 960 floats each). */
export const DEFAULT_EMBEDDING_CACHE_MB = 512;

export interface EmbeddingCacheOptions {
  /** Size cap in bytes: after a run that wrote, the least recently used files go until the cache is under 90% of it. Default EDGETUNE_EMBED_CACHE_MB (512) MB. */
  maxBytes?: number;
}

/** Every key of EmbeddingCacheOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const EMBEDDING_CACHE_OPTION_KEYS = ['maxBytes'] as const satisfies readonly (keyof EmbeddingCacheOptions)[];
/** `never` while EMBEDDING_CACHE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedEmbeddingCacheOption = AssertNever<Exclude<keyof EmbeddingCacheOptions, (typeof EMBEDDING_CACHE_OPTION_KEYS)[number]>>;

export interface PruneResult {
  files: number;
  bytes: number;
  removed: number;
}

/**
 * On-disk embedding cache: one little-endian float32 file per (backbone, image content, view),
 * bounded: a hit refreshes the file's time, and prune() removes the least recently used files once
 * the cache is over its size cap.
 */
export class EmbeddingCache {
  readonly dir: string;
  readonly maxBytes: number;
  hits = 0;
  misses = 0;
  /** Entries found damaged (non-finite values) when read; they are removed and recomputed. */
  corrupt = 0;
  /** Files written since the last prune. */
  written = 0;
  /** Cache size as of the last walk plus what was written since (an overestimate when files are rewritten). */
  private knownBytes?: number;
  private knownFiles = 0;
  /** Errors: EARG for a bad maxBytes or EDGETUNE_EMBED_CACHE_MB, or an option it does not take (`EmbeddingCache: unknown option "maxbytes" (options: maxBytes)`). */
  constructor(dir = path.join(cacheDir(), 'embeddings'), opts: EmbeddingCacheOptions = {}) {
    checkOptionKeys('EmbeddingCache', opts, EMBEDDING_CACHE_OPTION_KEYS);
    this.dir = dir;
    const envMb = process.env.EDGETUNE_EMBED_CACHE_MB;
    const mb = envMb === undefined || envMb === '' ? DEFAULT_EMBEDDING_CACHE_MB : Number(envMb);
    if (opts.maxBytes === undefined && !(Number.isFinite(mb) && mb > 0)) throw invalidParameter('EDGETUNE_EMBED_CACHE_MB', 'positive number of megabytes', envMb);
    if (opts.maxBytes !== undefined && !(opts.maxBytes > 0)) throw invalidParameter('maxBytes', 'positive number', opts.maxBytes);
    this.maxBytes = opts.maxBytes ?? Math.round(mb * 1024 * 1024);
  }
  private file(key: string): string {
    return path.join(this.dir, key.slice(0, 2), `${key}.f32`);
  }
  /** The cached embedding of `key` (`dims` floats), or undefined when absent, of another size, or damaged (non-finite values: the file is removed). */
  async get(key: string, dims: number): Promise<Float32Array | undefined> {
    const f = this.file(key);
    try {
      const b = await readFile(f);
      if (dims && b.byteLength !== dims * 4) return undefined;
      const v = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      // a damaged entry of the right size (NaN / Infinity inside) would poison training: drop it, recompute
      if (!v.every(Number.isFinite)) {
        this.corrupt++;
        await rm(f, { force: true }).catch(() => undefined);
        return undefined;
      }
      this.hits++;
      const now = new Date();
      await utimes(f, now, now).catch(() => undefined);
      return v;
    } catch {
      return undefined;
    }
  }
  async put(key: string, v: Float32Array): Promise<void> {
    const f = this.file(key);
    try {
      await mkdir(path.dirname(f), { recursive: true });
      const tmp = tempPathFor(f); // removed by prune() when a killed run left it
      await writeFile(tmp, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      await rename(tmp, f);
      this.written++;
      if (this.knownBytes !== undefined) {
        this.knownBytes += v.byteLength;
        this.knownFiles++;
      }
    } catch {
      // a read-only or full cache only costs speed
    }
  }
  /**
   * Remove least recently used files until the cache is under 90% of maxBytes (nothing when it is
   * under maxBytes). The folder is walked once per cache object; later calls walk again only when
   * what was written since could have crossed the cap.
   */
  async prune(): Promise<PruneResult> {
    this.written = 0;
    if (this.knownBytes !== undefined && this.knownBytes <= this.maxBytes) return { files: this.knownFiles, bytes: this.knownBytes, removed: 0 };
    const entries: { file: string; size: number; time: number }[] = [];
    let shards: string[];
    try {
      shards = await readdir(this.dir);
    } catch {
      return { files: 0, bytes: 0, removed: 0 };
    }
    for (const shard of shards) {
      const sub = path.join(this.dir, shard);
      let names: string[];
      try {
        names = await readdir(sub);
      } catch {
        continue;
      }
      for (const n of names) {
        if (isStaleTemp(n)) await rm(path.join(sub, n), { force: true }).catch(() => undefined);
        if (!n.endsWith('.f32')) continue;
        const file = path.join(sub, n);
        const st = await stat(file).catch(() => undefined);
        if (st?.isFile()) entries.push({ file, size: st.size, time: st.mtimeMs });
      }
    }
    let bytes = entries.reduce((a, e) => a + e.size, 0);
    let removed = 0;
    if (bytes > this.maxBytes) {
      const target = 0.9 * this.maxBytes;
      entries.sort((a, b) => a.time - b.time);
      for (const e of entries) {
        if (bytes <= target) break;
        if (await rm(e.file, { force: true }).then(() => true, () => false)) {
          bytes -= e.size;
          removed++;
        }
      }
    }
    this.knownBytes = bytes;
    this.knownFiles = entries.length - removed;
    return { files: this.knownFiles, bytes, removed };
  }
}

export interface EmbedOptions {
  /** Augmentation for views 1..views-1 (view 0 is always the evaluation preprocessing). */
  augment?: AugmentSpec;
  views?: number;
  seed?: number;
  cache?: EmbeddingCache | null;
  /** Read `cache` without writing to it: views used once (phase 2's fresh views, whose view 0 is cached). Default false. */
  readOnlyCache?: boolean;
  /**
   * Only these rows (i·views + v: view v of files[i]), ascending, no repeats: the other views are neither
   * looked up, rendered nor run, a file none of them needs is not read, and `features` (and each tap's)
   * holds just these rows in this order (phase 2's mini-batches: runtime/train/phase2.ts viewStream).
   * Default every row.
   */
  rows?: readonly number[];
  /** Images per session.run (models with a fixed batch of 1 use 1). Default 16. */
  batch?: number;
  session?: SessionOptions;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

export interface EmbedResult {
  dims: number;
  views: number;
  /** For item i, view v: row i·views + v of `features` (rows of skipped items are zeros); with EmbedOptions.rows, those rows in their order. */
  features: Float32Array;
  /** With an Embedder opened with taps: per tap (in its order) the tap's features, rows as `features`' ([items·views, dims]); else empty. */
  taps: TapFeatures[];
  ok: boolean[];
  skipped: { file: string; reason: string }[];
  /** sha256 of each file's bytes (undefined for a file that could not be read). */
  hashes: (string | undefined)[];
  /** Rows (image views) whose every output (the embedding and each tap) came from the cache. */
  hits: number;
  /** Rows the backbone ran for (one pass gives every output; only the outputs the cache lacked are stored). */
  computed: number;
  ms: number;
}

/** One tap's features (EmbedResult.taps): the backbone tensor, its width, rows as the embedding's (the shape resume data keeps them in). */
export type TapFeatures = ResumeTap;

/** What Embedder.open may add to the embedding session. */
export interface EmbedderOptions {
  /**
   * Backbone tensors whose features the session computes beside the embedding, from the same backbone
   * pass (runtime/train/export.ts embeddingGraphWithTaps: dequantized, spatially averaged): the open-set
   * taps (runtime/train/node/openset-taps.ts openSetTaps). Default none.
   */
  taps?: readonly string[];
}

/** Every key of EmbedderOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const EMBEDDER_OPTION_KEYS = ['taps'] as const satisfies readonly (keyof EmbedderOptions)[];
/** `never` while EMBEDDER_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedEmbedderOption = AssertNever<Exclude<keyof EmbedderOptions, (typeof EMBEDDER_OPTION_KEYS)[number]>>;

/** The cache key of a tap's features (backbone + tap tensor; the preprocessing is added per embed as for the embedding). */
export function tapKey(backbone: Backbone, tap: string): string {
  return sha256(`${backbone.key}|open-set tap|${tap}`);
}

/**
 * An embedding session for a backbone; reuse it across several embed() calls. `graph` is the embedding
 * graph (built once in open()): pass it to the export so it is not built again. Opened with `taps`, the
 * session runs that graph with the taps as more outputs, and embed() returns their features too, each
 * cached under its own key (tapKey).
 */
export class Embedder {
  private constructor(
    readonly backbone: Backbone,
    readonly graph: EmbeddingGraph,
    readonly session: ModelSession,
    readonly maxBatch: number,
    /** The taps the session computes: tensor, graph output, width (learnt on the first run when the graph does not say), cache key. */
    readonly taps: { tensor: string; output: string; dims: number; key: string }[],
  ) {}

  /**
   * Open the session (`options`: createSession's; `o`: see EmbedderOptions). Errors: EMODEL when the
   * backbone cannot be cut there or a tap is not upstream of the embedding; EARG for an option either
   * object does not take (`Embedder.open: unknown option "tap" (options: taps)`, createSession's for `options`).
   */
  static async open(backbone: Backbone, options: SessionOptions = {}, o: EmbedderOptions = {}): Promise<Embedder> {
    checkOptionKeys('Embedder.open', o, EMBEDDER_OPTION_KEYS);
    const graph = embeddingGraph(backbone.model, backbone.cut);
    const tg = o.taps?.length ? embeddingGraphWithTaps(graph, o.taps) : undefined;
    const session = await createSession(tg?.bytes ?? graph.bytes, options);
    const inputInfo = session.inputs[0]!;
    const b = inputInfo.shape[0];
    const taps = (tg?.taps ?? []).map((t) => ({ ...t, key: tapKey(backbone, t.tensor) }));
    return new Embedder(backbone, graph, session, typeof b === 'number' && b > 0 ? b : 64, taps);
  }

  /** Embeddings of decoded model-size images. */
  async run(images: readonly HwcImage[]): Promise<Float32Array> {
    return (await this.runAll(images))[0]!;
  }

  /** The embedding, then each tap's features, of decoded model-size images (one backbone pass per batch). */
  async runAll(images: readonly HwcImage[]): Promise<Float32Array[]> {
    const input = this.session.inputs[0]!.name;
    const names = [EMBEDDING_OUTPUT, ...this.taps.map((t) => t.output)];
    const parts: Float32Array[][] = names.map(() => []);
    for (let i = 0; i < images.length; i += this.maxBatch) {
      const chunk = images.slice(i, i + this.maxBatch);
      const r = await this.session.run({ [input]: toTensor(chunk, this.backbone.spec) }, names);
      names.forEach((n, k) => parts[k]!.push(asFloat32(r[n]!).slice()));
    }
    const out = parts.map((p) => concatFloat32(p));
    if (images.length) {
      if (!this.backbone.cut.dims) this.backbone.cut.dims = out[0]!.length / images.length;
      this.taps.forEach((t, k) => (t.dims ||= out[k + 1]!.length / images.length));
    }
    return out;
  }

  /** The widths of every output (embedding, then taps), learnt from one blank image when the graph does not say them (a cache lookup needs them). */
  private async widths(): Promise<number[]> {
    if (!this.backbone.cut.dims || this.taps.some((t) => !t.dims)) {
      const { width, height, channels } = this.backbone.spec;
      await this.runAll([{ data: new Uint8Array(width * height * channels), width, height, channels }]);
    }
    return [this.backbone.cut.dims, ...this.taps.map((t) => t.dims)];
  }

  /** Embed files: `views` per file (view 0 clean, view v drawn by runtime/train/finetune.ts viewParams with the file's sha256), from the cache where possible. */
  async embed(files: readonly string[], opts: EmbedOptions = {}): Promise<EmbedResult> {
    const t0 = performance.now();
    const views = opts.views ?? 1;
    const seed = opts.seed ?? 42;
    const cache = opts.cache === undefined ? new EmbeddingCache() : opts.cache;
    const batch = Math.max(1, Math.min(opts.batch ?? 16, this.maxBatch));
    const spec = this.backbone.spec;
    const ok = files.map(() => true);
    const hashes: (string | undefined)[] = files.map(() => undefined);
    const skipped: EmbedResult['skipped'] = [];
    // outputs: the embedding, then each tap; rows[o][i·views + v]
    const outputs = 1 + this.taps.length;
    const rows: (Float32Array | undefined)[][] = Array.from({ length: outputs }, () => new Array(files.length * views));
    let hits = 0;
    let computed = 0;
    // Work list: per file, the views with some output not cached (keys: one per output).
    interface Job { row: number; keys: string[]; params: ViewParams }
    interface Prepared { jobs: Job[]; images: HwcImage[] }
    // a cache lookup needs every output's width (learnt from one blank image when the graph does not say)
    const dims = cache && files.length ? await this.widths() : [this.backbone.cut.dims, ...this.taps.map((t) => t.dims)];
    // the preprocessing is part of the key: the same file under another crop is another embedding
    const keyBases = [this.backbone.key, ...this.taps.map((t) => t.key)].map((k) => sha256(`${k}|${JSON.stringify(spec)}`));
    const todo: { file: number; bytes: Uint8Array; jobs: Job[] }[] = [];
    let done = 0;
    const total = files.length;
    // with `rows`: the views wanted of each file (a file with none is not read)
    const wanted = opts.rows ? new Set(opts.rows) : undefined;
    if (opts.rows?.some((r, k) => !(Number.isInteger(r) && r >= 0 && r < files.length * views) || (k > 0 && r <= opts.rows![k - 1]!))) {
      throw invalidParameter('rows', `ascending row indices below ${files.length * views} (files × views), no repeats`, opts.rows);
    }
    for (let i = 0; i < files.length; i++) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (wanted && !Array.from({ length: views }, (_, v) => i * views + v).some((r) => wanted.has(r))) {
        opts.onProgress?.(++done, total);
        continue;
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(files[i]!));
        if (bytes.byteLength === 0) throw new Error('empty file (0 bytes)');
      } catch (err) {
        ok[i] = false;
        skipped.push({ file: files[i]!, reason: readErrorReason(err) });
        continue;
      }
      const fileHash = sha256(bytes);
      hashes[i] = fileHash;
      const jobs: Job[] = [];
      for (let v = 0; v < views; v++) {
        if (opts.signal?.aborted) throw opts.signal.reason; // many views of one file: still stoppable
        if (wanted && !wanted.has(i * views + v)) continue;
        const params = viewParams(opts.augment ?? {}, seed, fileHash, v);
        const view = isIdentityView(params) ? 'clean' : viewKey(params);
        const keys = keyBases.map((b) => sha256(`${b}|${fileHash}|${view}`));
        const row = i * views + v;
        let all = true;
        for (let o = 0; o < outputs; o++) {
          const hit = cache && dims[o] ? await cache.get(keys[o]!, dims[o]!) : undefined;
          if (hit) rows[o]![row] = hit;
          else all = false;
        }
        if (all) hits++;
        else jobs.push({ row, keys, params });
      }
      if (jobs.length) todo.push({ file: i, bytes, jobs });
      else opts.onProgress?.(++done, total);
    }
    // Decode (sharp, on libuv threads) one group ahead of the session.
    const prepare = async (group: typeof todo): Promise<Prepared & { files: number[] }> => {
      const jobs: Job[] = [];
      const images: HwcImage[] = [];
      const results = await Promise.all(
        group.map(async (g) => {
          const name = files[g.file]!;
          try {
            const imgs: HwcImage[] = [];
            let base: HwcImage | undefined;
            for (const j of g.jobs) {
              if (opts.signal?.aborted) return undefined;
              if (isIdentityView(j.params)) imgs.push(await decodeImage(g.bytes, spec, {}, name));
              else {
                base ??= await decodeBase(g.bytes, spec, name);
                imgs.push(await renderViewSharp(base, j.params, spec));
              }
            }
            return imgs;
          } catch (err) {
            ok[g.file] = false;
            const m = messageOf(err);
            skipped.push({ file: name, reason: m.startsWith(name + ': ') ? m.slice(name.length + 2) : m });
            return undefined;
          }
        }),
      );
      group.forEach((g, k) => {
        const imgs = results[k];
        if (!imgs) return;
        jobs.push(...g.jobs);
        images.push(...imgs);
      });
      return { jobs, images, files: group.map((g) => g.file) };
    };
    const groups: (typeof todo)[] = [];
    {
      let cur: typeof todo = [];
      let n = 0;
      for (const t of todo) {
        cur.push(t);
        n += t.jobs.length;
        if (n >= batch) {
          groups.push(cur);
          cur = [];
          n = 0;
        }
      }
      if (cur.length) groups.push(cur);
    }
    let next = groups.length ? prepare(groups[0]!) : undefined;
    let writing: Promise<unknown> = Promise.resolve();
    for (let gi = 0; gi < groups.length; gi++) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const p = await next!;
      next = gi + 1 < groups.length ? prepare(groups[gi + 1]!) : undefined;
      if (p.images.length) {
        // one backbone pass: the embedding and every tap; only what the cache lacked is stored, the
        // previous batch's files written while this one runs
        const out = await this.runAll(p.images);
        await writing;
        const puts: Promise<void>[] = [];
        for (let o = 0; o < outputs; o++) {
          const d = (dims[o] = out[o]!.length / p.images.length);
          for (let k = 0; k < p.jobs.length; k++) {
            const j = p.jobs[k]!;
            if (rows[o]![j.row]) continue;
            const v = out[o]!.slice(k * d, (k + 1) * d);
            rows[o]![j.row] = v;
            if (cache && !opts.readOnlyCache) puts.push(cache.put(j.keys[o]!, v));
          }
        }
        writing = Promise.all(puts);
        computed += p.jobs.length;
      }
      done += p.files.length;
      opts.onProgress?.(done, total);
    }
    await writing;
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (cache?.written) await cache.prune();
    const widths = [this.backbone.cut.dims, ...this.taps.map((t) => t.dims)].map((w, o) => dims[o] || w);
    if (!widths.every(Boolean)) throw new EdgetuneError('EINPUT', 'no image could be embedded');
    // every row, or just the ones asked for, in their order
    const order = opts.rows ?? Array.from({ length: files.length * views }, (_, i) => i);
    const [features, ...taps] = rows.map((r, o) => {
      const d = widths[o]!;
      const f = new Float32Array(order.length * d);
      order.forEach((i, k) => {
        const x = r[i];
        if (x && ok[Math.floor(i / views)]) f.set(x, k * d);
      });
      return f;
    });
    return {
      dims: widths[0]!, views, features: features!, ok, skipped, hashes, hits, computed, ms: performance.now() - t0,
      taps: taps.map((f, k) => ({ tensor: this.taps[k]!.tensor, dims: widths[k + 1]!, features: f })),
    };
  }

  dispose(): Promise<void> {
    return this.session.dispose();
  }
}
