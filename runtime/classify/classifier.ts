// The classifier: a model reference → session + preprocessing + labels → predictions.
// `loadClassifier()` returns an interface (tfjs-models style); `classify()` takes a file or bytes,
// `classifyImages()` already-decoded pixels (camera frames), `probabilities()` the raw distribution.

import { checkPositiveInteger, EdgetuneError } from '../core/errors.js';
import { checkOptionKeys, pickOptions, type AssertNever } from '../core/options.js';
import { cardFilePath, type ModelCard } from '../core/model-card.js';
import { asFloat32 } from '../core/tensor.js';
import { DECODE_OPTION_KEYS, decodeImage, type DecodeOptions } from '../image/decode.js';
import { toTensor, type HwcImage, type PreprocessSpec } from '../image/preprocess.js';
import { createSession, SESSION_OPTION_KEYS, type ModelSession, type SessionOptions } from '../session/session.js';
import { checkDescribeOptionKeys, DESCRIBE_OPTION_KEYS, describeModel, type DescribeOptions } from '../../models/describe.js';
import { connectRemoteModel, isModelUrl, REMOTE_OPTION_KEYS, type RemoteOptions } from '../serve/client.js';
import type { ModelEntry } from '../../models/registry.js';
import { readOutput, toProbabilities, topK, type OutputReading, type Prediction, type PostprocessSpec } from './postprocess.js';

export interface ClassifierOptions extends SessionOptions, DescribeOptions, DecodeOptions {
  /** Predictions returned per image. Default 5. */
  topK?: number;
  /**
   * Describe the model from its ONNX graph and open the session on first use instead of at load.
   * A stream that runs the model on a worker thread then never opens a second session on the main
   * thread (on a Jetson: one TensorRT engine build, not two). Default false.
   */
  lazy?: boolean;
  /**
   * Open-set threshold on the model's unknown score (card `openSet`, graph output `unknown_score`):
   * above it a result says `unknown`. Default the model's own (`openSet.threshold`); ignored by a model
   * without an open-set calibration (it never says unknown by itself).
   */
  unknownThreshold?: number;
  /** For a model URL (`http://host:port/v2/models/<name>`): timeout, retries, binary or JSON tensors, token. */
  remote?: RemoteOptions;
}

/**
 * Every key of ClassifierOptions (its own, SessionOptions', DescribeOptions' and DecodeOptions'), for
 * refusing a misspelt option from JavaScript (`{ topk: 3 }` would otherwise return the default 5
 * predictions without a word). The type below fails to compile when a key is missing.
 */
export const CLASSIFIER_OPTION_KEYS = [
  'topK', 'lazy', 'unknownThreshold', 'remote',
  ...SESSION_OPTION_KEYS,
  ...DESCRIBE_OPTION_KEYS,
  ...DECODE_OPTION_KEYS,
] as const satisfies readonly (keyof ClassifierOptions)[];
/** `never` while CLASSIFIER_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedClassifierOption = AssertNever<Exclude<keyof ClassifierOptions, (typeof CLASSIFIER_OPTION_KEYS)[number]>>;

/**
 * Refuse the keys of `o` that function `fn` does not take (`keys`: CLASSIFIER_OPTION_KEYS, or those of
 * a function whose options extend ClassifierOptions), and those of its nested `remote` and `overrides`.
 * Errors: EARG as checkOptionKeys (`<fn>: unknown option "remote.tokn" (remote options: …)`).
 */
export function checkClassifierOptionKeys(fn: string, o: ClassifierOptions, keys: readonly string[]): void {
  checkDescribeOptionKeys(fn, o, keys);
  checkOptionKeys(fn, o.remote, REMOTE_OPTION_KEYS, 'remote');
}

/** Options of `classify()`: predictions kept (default the classifier's topK), the input's name in errors. */
export interface ClassifyOptions {
  topK?: number;
  name?: string;
}
const CLASSIFY_OPTION_KEYS = ['topK', 'name'] as const satisfies readonly (keyof ClassifyOptions)[];
/** `never` while CLASSIFY_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedClassifyOption = AssertNever<Exclude<keyof ClassifyOptions, (typeof CLASSIFY_OPTION_KEYS)[number]>>;

/** Options of `classifyFiles()`: predictions kept, images per run (default 1), files decoded ahead (default max(4, 2 × batch)). */
export interface ClassifyFilesOptions {
  topK?: number;
  batch?: number;
  ahead?: number;
}
const CLASSIFY_FILES_OPTION_KEYS = ['topK', 'batch', 'ahead'] as const satisfies readonly (keyof ClassifyFilesOptions)[];
/** `never` while CLASSIFY_FILES_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedClassifyFilesOption = AssertNever<Exclude<keyof ClassifyFilesOptions, (typeof CLASSIFY_FILES_OPTION_KEYS)[number]>>;

/** The open-set part of a result, for models with an open-set calibration (card `openSet`). */
export interface OpenSetResult {
  /** Higher = less like anything the model was taught (1 = the model's own threshold for Mahalanobis calibrations). */
  unknownScore?: number;
  /** unknownScore above the threshold in use. */
  unknown?: boolean;
}

export interface Classification extends OpenSetResult {
  top: Prediction[];
  /** What the row says by the card's task (postprocess.ts readOutput): a regression model's values, a multilabel model's labels above 0.5; `top` alone ranks raw outputs. */
  reading: OutputReading;
  /** Wall time of decode + preprocess + run + postprocess, in ms. */
  ms: number;
}

export interface Classifier {
  /** Registry id, the file name for a model given by path, or the model name of a URL. */
  readonly id: string;
  /** The model file; for a served model (a URL), its URL. */
  readonly modelPath: string;
  /** The provider serving the session; 'unopened' while a lazy classifier has not run yet. */
  readonly provider: ModelSession['provider'] | 'unopened';
  /** The session; a lazy classifier throws until `open()` (or a first classification) has run. */
  readonly session: ModelSession;
  /** Opens the session if it is not open yet (lazy classifiers) and returns it. */
  open(): Promise<ModelSession>;
  /** The model's inputs and outputs (names, types, shapes), known without opening the session. */
  readonly signature: Pick<ModelSession, 'inputs' | 'outputs'>;
  /** The session options the classifier opens its session with (providers, threads, …). */
  readonly sessionOptions: SessionOptions;
  readonly inputName: string;
  readonly outputName: string;
  readonly spec: PreprocessSpec;
  readonly post: PostprocessSpec;
  readonly entry?: ModelEntry;
  /** The model card: what the registry, embedded metadata, graph and options say about the model. */
  readonly card: ModelCard;
  /** What was assumed for a model without a registry entry or embedded metadata. */
  readonly assumptions: readonly string[];
  /** Largest batch one `session.run` takes (1 for models with a fixed batch dimension). */
  readonly maxBatch: number;
  decode(input: string | Uint8Array, name?: string): Promise<HwcImage>;
  classify(input: string | Uint8Array, options?: ClassifyOptions): Promise<Classification>;
  /** Probabilities for already-decoded images of the model's input size, one row per image. */
  probabilities(images: readonly HwcImage[]): Promise<Float32Array[]>;
  /** Probabilities and, for a model with an open-set calibration, the unknown score of each image (`unknown` undefined otherwise). */
  predict(images: readonly HwcImage[]): Promise<{ probs: Float32Array[]; unknown?: Float32Array }>;
  /** The threshold on the unknown score in use (options.unknownThreshold, else the card's); undefined for a model without an open-set calibration. */
  readonly unknownThreshold?: number;
  classifyImages(images: readonly HwcImage[], k?: number): Promise<Prediction[][]>;
  /**
   * Classify many files, decoding ahead (sharp on libuv's pool) while the session runs and batching
   * up to `batch` images per run. Results, errors included, come out in input order. A file that
   * fails yields `{file, error}` and the rest go on.
   */
  classifyFiles(files: readonly string[], options?: ClassifyFilesOptions): AsyncGenerator<FileResult>;
  dispose(): Promise<void>;
}

/**
 * One file's result. `ms`: the file's own decode time (from when its decode started, not from when
 * it was queued) plus its share of its batch's preprocess + session.run (the batch's time ÷ its
 * images); time spent waiting for the consumer or for other files is not in it. `reading`: what the
 * row says by the card's task (postprocess.ts readOutput: top-k, multilabel labels, regression values).
 */
export type FileResult = ({ file: string; top: Prediction[]; reading: OutputReading; ms: number; error?: undefined } & OpenSetResult) | { file: string; error: Error; top?: undefined; reading?: undefined };

export async function loadClassifier(model: string, options: ClassifierOptions = {}): Promise<Classifier> {
  checkClassifierOptionKeys('loadClassifier', options, CLASSIFIER_OPTION_KEYS);
  // topK 0 gave `top: []` (and top[0] undefined in the caller's hands), 2.5 three predictions: refused, as
  // `--top 0` is, before a session is opened (none left behind)
  const k0 = options.topK === undefined ? 5 : checkPositiveInteger('topK', options.topK);
  // A URL is a model served over the Open Inference Protocol: card from the server, inference remote.
  const remote = isModelUrl(model) ? await connectRemoteModel(model, { ...options.remote, overrides: options.overrides, allowNonClassifier: options.allowNonClassifier }) : undefined;
  const described = remote ? { card: remote.card, entry: undefined, path: remote.url, signature: remote.session } : await describeModel(model, pickOptions(options, DESCRIBE_OPTION_KEYS));
  const { card, entry } = described;
  const modelPath = described.path;
  const id = card.id;
  // a feature extractor (the Coral embedding extractor) has an [N, C, 1, 1] output as classifiers may, but
  // its card names that output as the embedding: classifying printed a softmax of its features as classes
  if (!options.allowNonClassifier && card.embedding?.tensor === card.outputName) {
    throw new EdgetuneError(
      'EMODEL',
      `${model}: output "${card.outputName}" is the model's embedding (${card.embedding.dims ? `${card.embedding.dims}-d ` : ''}features, its card says), not class scores: a backbone to train a classifier on (edgetune finetune --model)`,
      { subject: model },
    );
  }
  // one value per image is one score (a binary classifier's logit or sigmoid, or a value), not one
  // score per class: read as classes, its softmax was "0 (100.0%)" for every image
  const scores = described.signature.outputs.find((o) => o.name === card.outputName)?.shape.slice(1);
  if (!options.allowNonClassifier && card.task === undefined && scores && scores.length > 0 && scores.every((d) => d === 1)) {
    throw new EdgetuneError(
      'EMODEL',
      `${model}: output "${card.outputName}" holds one value per image, not one score per class (as classes, its softmax is 100% for every image): for a binary classifier with one sigmoid or logit output, describe it as a one-label multilabel model in a card file beside it (${cardFilePath(modelPath)}: {"task": "multilabel", "labels": ["<the positive class>"], "outputKind": "logits"}, or "probabilities" when the graph ends in a sigmoid); the value is then that class's probability`,
      { subject: model },
    );
  }
  // createSession takes only the session fields of the options.
  const sessionOptions: SessionOptions = pickOptions(options, SESSION_OPTION_KEYS);
  let session: ModelSession | undefined = remote ? remote.session : options.lazy ? undefined : await createSession(modelPath, sessionOptions);
  const signature: Pick<ModelSession, 'inputs' | 'outputs'> = session ?? described.signature;
  const d = { spec: card.preprocess, post: { kind: card.outputKind, labelOffset: card.labelOffset, labels: card.labels }, inputName: card.inputName, outputName: card.outputName };
  let opening: Promise<ModelSession> | undefined;
  let disposed = false;
  const open = (): Promise<ModelSession> => {
    if (session) return Promise.resolve(session);
    if (disposed) return Promise.reject(new EdgetuneError('EMODEL', `${id}: classifier was disposed`));
    opening ??= createSession(modelPath, sessionOptions).then(
      (s) => (session = s),
      (err) => {
        opening = undefined;
        throw err;
      },
    );
    return opening;
  };
  const batchDim = signature.inputs.find((i) => i.name === d.inputName)?.shape[0];
  const maxBatch = remote ? remote.maxBatch : typeof batchDim === 'number' && batchDim > 0 ? batchDim : 64;
  const openSet = card.openSet && signature.outputs.some((o) => o.name === card.openSet!.output) ? card.openSet : undefined;
  const unknownThreshold = openSet ? (options.unknownThreshold ?? openSet.threshold) : undefined;
  /** A row's top-k and its reading by the card's task; the top-k is ranked once (readOutput's, but for regression). */
  const readRow = (row: Float32Array, k: number): { top: Prediction[]; reading: OutputReading } => {
    const reading = readOutput(row, card.task, k, d.post);
    return { top: reading.task === 'regression' ? topK(row, k, d.post) : reading.top, reading };
  };
  const open_ = (score: number | undefined): OpenSetResult =>
    score === undefined || unknownThreshold === undefined ? {} : { unknownScore: Math.round(score * 1e4) / 1e4, unknown: score > unknownThreshold };
  const predict = async (images: readonly HwcImage[]): Promise<{ probs: Float32Array[]; unknown?: Float32Array }> => {
    const out: Float32Array[] = [];
    const unknown = openSet ? new Float32Array(images.length) : undefined;
    for (let i = 0; i < images.length; i += maxBatch) {
      const chunk = images.slice(i, i + maxBatch);
      const res = await (session ?? (await open())).run({ [d.inputName]: toTensor(chunk, d.spec) }, openSet ? [d.outputName, openSet.output] : [d.outputName]);
      if (unknown) unknown.set(asFloat32(res[openSet!.output]!).subarray(0, chunk.length), i);
      const flat = asFloat32(res[d.outputName]!);
      const per = flat.length / chunk.length;
      for (let j = 0; j < chunk.length; j++) {
        const row = flat.subarray(j * per, (j + 1) * per);
        const p = toProbabilities(row, card.outputKind, card.task).slice();
        if (p.some(Number.isNaN)) throw new EdgetuneError('EMODEL', `${id}: the model's output has NaN scores for this image (a broken model, or input it cannot handle)`);
        out.push(p);
      }
    }
    return { probs: out, ...(unknown ? { unknown } : {}) };
  };
  const rows = async (images: readonly HwcImage[]): Promise<Float32Array[]> => (await predict(images)).probs;
  const decodeOpts: DecodeOptions = { maxPixels: options.maxPixels, background: options.background };
  const c: Classifier = {
    id,
    modelPath,
    card,
    get provider() {
      return session ? session.provider : 'unopened';
    },
    get session() {
      if (!session) throw new EdgetuneError('EMODEL', `${id}: the session of a lazy classifier is not open yet (await open() first)`);
      return session;
    },
    open,
    get signature() {
      return session ?? signature;
    },
    sessionOptions,
    inputName: d.inputName,
    outputName: d.outputName,
    spec: d.spec,
    post: d.post,
    entry,
    assumptions: card.assumptions,
    maxBatch,
    decode: (input, name) => decodeImage(input, d.spec, decodeOpts, name),
    async classify(input, o = {}) {
      checkOptionKeys('classify', o, CLASSIFY_OPTION_KEYS);
      const t0 = performance.now();
      const img = await decodeImage(input, d.spec, decodeOpts, o.name);
      const r = await predict([img]);
      const k = o.topK === undefined ? k0 : checkPositiveInteger('topK', o.topK);
      return { ...readRow(r.probs[0]!, k), ...open_(r.unknown?.[0]), ms: performance.now() - t0 };
    },
    probabilities: rows,
    predict,
    ...(unknownThreshold !== undefined ? { unknownThreshold } : {}),
    async classifyImages(images, k = k0) {
      checkPositiveInteger('topK', k);
      return (await rows(images)).map((p) => topK(p, k, d.post));
    },
    async *classifyFiles(files, o = {}) {
      checkOptionKeys('classifyFiles', o, CLASSIFY_FILES_OPTION_KEYS);
      const k = o.topK === undefined ? k0 : checkPositiveInteger('topK', o.topK);
      const batch = Math.min(o.batch === undefined ? 1 : checkPositiveInteger('batch', o.batch), maxBatch);
      const ahead = o.ahead ?? Math.max(4, 2 * batch);
      // At most as many decodes run as libuv has threads, so a decode's own clock starts when it
      // really starts (a queued decode would count its wait in the pool as its own time).
      const running = Math.max(1, Math.min(ahead, Number(process.env.UV_THREADPOOL_SIZE) || 4));
      type Slot = { file: string; started?: number; decodeMs?: number; img?: HwcImage; error?: Error; done: Promise<void>; settle: () => void };
      const queue: Slot[] = [];
      let next = 0;
      let inFlight = 0;
      const start = (slot: Slot) => {
        inFlight++;
        const t = (slot.started = performance.now());
        decodeImage(slot.file, d.spec, decodeOpts)
          .then(
            (img) => {
              slot.decodeMs = performance.now() - t;
              slot.img = img;
            },
            (err: unknown) => {
              slot.error = err instanceof Error ? err : new Error(String(err));
            },
          )
          .finally(() => {
            inFlight--;
            slot.settle();
            pump();
          });
      };
      const pump = () => {
        while (queue.length < ahead && next < files.length) {
          let settle!: () => void;
          const done = new Promise<void>((r) => (settle = r));
          queue.push({ file: files[next++]!, done, settle });
        }
        for (const slot of queue) {
          if (inFlight >= running) break;
          if (slot.started === undefined) start(slot);
        }
      };
      pump();
      while (queue.length) {
        // A batch of the next files in input order; a file that failed to decode keeps its place.
        const group: Slot[] = [];
        while (group.length < batch && queue.length) {
          const slot = queue.shift()!;
          if (slot.started === undefined) start(slot);
          await slot.done;
          group.push(slot);
          pump();
        }
        const ok = group.filter((g) => g.img);
        let shareMs = 0;
        let probs: (Float32Array | Error)[] = [];
        let scores: (number | undefined)[] = [];
        if (ok.length) {
          const t = performance.now();
          try {
            const r = await predict(ok.map((g) => g.img!));
            probs = r.probs;
            scores = r.unknown ? Array.from(r.unknown) : [];
          } catch (err) {
            // One bad image (NaN scores) fails its batch: run the batch's images one by one to say which.
            const one = ok.length === 1 ? [err as Error] : await Promise.all(ok.map((g) => predict([g.img!]).then((r) => r, (e: Error) => e)));
            probs = one.map((r) => (r instanceof Error ? r : r.probs[0]!));
            scores = one.map((r) => (r instanceof Error ? undefined : r.unknown?.[0]));
          }
          // Preprocess + run of the batch, shared by its images.
          shareMs = (performance.now() - t) / ok.length;
        }
        let j = 0;
        for (const g of group) {
          if (g.error || !g.img) {
            yield { file: g.file, error: g.error ?? new Error(`${g.file}: not decoded`) };
            continue;
          }
          const score = scores[j];
          const p = probs[j++]!;
          if (p instanceof Error) yield { file: g.file, error: p };
          else yield { file: g.file, ...readRow(p, k), ...open_(score), ms: Math.round((g.decodeMs! + shareMs) * 10) / 10 };
        }
      }
    },
    async dispose() {
      disposed = true;
      const s = session ?? (await opening?.catch(() => undefined));
      session = undefined;
      await s?.dispose();
    },
  };
  return c;
}
