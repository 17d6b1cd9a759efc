// The classifier: a model reference → session + preprocessing + labels → predictions.
// `loadClassifier()` returns an interface (tfjs-models style); `classify()` takes a file or bytes,
// `classifyImages()` already-decoded pixels (camera frames), `probabilities()` the raw distribution.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from './errors.js';
import { decodeImage, type DecodeOptions } from './image.js';
import { labelsOf, loadLabelSet, loadRegistry, resolveModel, type ResolveOptions } from '../models/loader.js';
import { specOf, type ModelEntry } from '../models/registry.js';
import { probabilities, sniffedProbabilities, topK, type Prediction, type PostprocessSpec } from './postprocess.js';
import { DEFAULT_SPEC, checkSpec, toTensor, type HwcImage, type PreprocessSpec } from './preprocess.js';
import { createSession, type ModelSession, type SessionOptions } from './session.js';
import { asFloat32, sizeOf } from './tensor.js';
import { readModelInfo, type EmbeddedModelInfo } from './model-info.js';
import { graphSignature } from './onnx/graph.js';
import { decodeModel } from './onnx/model.js';

export interface ClassifierOptions extends SessionOptions, ResolveOptions, DecodeOptions {
  /** Predictions returned per image. Default 5. */
  topK?: number;
  /**
   * Describe the model from its ONNX graph and open the session on first use instead of at load.
   * A stream that runs the model on a worker thread then never opens a second session on the main
   * thread (on a Jetson: one TensorRT engine build, not two). Default false.
   */
  lazy?: boolean;
}

export interface Classification {
  top: Prediction[];
  /** Wall time of decode + preprocess + run + postprocess, in ms. */
  ms: number;
}

export interface Classifier {
  /** Registry id, or the file name for a model given by path. */
  readonly id: string;
  readonly modelPath: string;
  /** The provider serving the session; 'unopened' while a lazy classifier has not run yet. */
  readonly provider: ModelSession['provider'] | 'unopened';
  /** The session; a lazy classifier throws until `open()` (or a first classification) has run. */
  readonly session: ModelSession;
  /** Opens the session if it is not open yet (lazy classifiers) and returns it. */
  open(): Promise<ModelSession>;
  /** The session options the classifier opens its session with (providers, threads, …). */
  readonly sessionOptions: SessionOptions;
  readonly inputName: string;
  readonly outputName: string;
  readonly spec: PreprocessSpec;
  readonly post: PostprocessSpec;
  readonly entry?: ModelEntry;
  /** What was assumed for a model without a registry entry or embedded metadata. */
  readonly assumptions: readonly string[];
  /** Largest batch one `session.run` takes (1 for models with a fixed batch dimension). */
  readonly maxBatch: number;
  decode(input: string | Uint8Array, name?: string): Promise<HwcImage>;
  classify(input: string | Uint8Array, options?: { topK?: number; name?: string }): Promise<Classification>;
  /** Probabilities for already-decoded images of the model's input size, one row per image. */
  probabilities(images: readonly HwcImage[]): Promise<Float32Array[]>;
  classifyImages(images: readonly HwcImage[], k?: number): Promise<Prediction[][]>;
  /**
   * Classify many files in order, decoding ahead (sharp on libuv's pool) while the session runs and
   * batching up to `batch` images per run. A file that fails yields `{file, error}` and the rest go on.
   */
  classifyFiles(files: readonly string[], options?: { topK?: number; batch?: number; ahead?: number }): AsyncGenerator<FileResult>;
  dispose(): Promise<void>;
}

export type FileResult = { file: string; top: Prediction[]; ms: number; error?: undefined } | { file: string; error: Error; top?: undefined };

interface Resolved {
  spec: PreprocessSpec;
  post: Omit<PostprocessSpec, 'labels'> & { labels: string[] };
  outputName: string;
  inputName: string;
  assumptions: string[];
}

/** Inputs and outputs as a session lists them (from the session, or from the file for lazy classifiers). */
type Signature = Pick<ModelSession, 'inputs' | 'outputs'>;

async function describe(io: Signature, entry: ModelEntry | undefined, meta: EmbeddedModelInfo | undefined, opts: ResolveOptions): Promise<Resolved> {
  const input = io.inputs[0]!;
  const output = io.outputs[0]!;
  if (meta) {
    return {
      spec: checkSpec({ ...meta.preprocess }),
      post: { kind: meta.outputKind, labelOffset: meta.labelOffset ?? 0, labels: meta.labels },
      inputName: input.name,
      outputName: meta.outputName ?? output.name,
      assumptions: [],
    };
  }
  if (entry) {
    return {
      spec: checkSpec(specOf(entry)),
      post: { kind: entry.output.kind, labelOffset: entry.labelOffset, labels: await labelsOf(entry, opts) },
      inputName: entry.input.name,
      outputName: entry.output.name,
      assumptions: [],
    };
  }
  // No registry entry: read what the session says and assume the ImageNet habits for the rest.
  const shape = input.shape;
  const isImage = shape.length === 4 && (shape[1] === 1 || shape[1] === 3 || shape[3] === 1 || shape[3] === 3);
  if (!isImage || !(input.type === 'float32' || input.type === 'float16')) {
    throw new EdgetuneError(
      'EMODEL',
      `input "${input.name}" is ${input.type} [${shape.join(',')}], not an image tensor (expected float [N,3,H,W] or [N,H,W,3]); add a registry entry for this model`,
      { subject: input.name },
    );
  }
  const nchw = shape[1] === 1 || shape[1] === 3;
  const dims = nchw ? [shape[2], shape[3]] : [shape[1], shape[2]];
  const [h, w] = dims.map((d) => (typeof d === 'number' && d > 0 ? d : 224)) as [number, number];
  const channels = (nchw ? shape[1] : shape[3]) as 1 | 3;
  const assumptions = [
    `layout ${nchw ? 'NCHW' : 'NHWC'} ${w}x${h} from the input shape`,
    channels === 3 ? 'RGB, x/255, ImageNet mean/std' : 'grayscale 0..1',
    'shorter side resized and centre-cropped',
  ];
  const outSize = sizeOf(output.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1)));
  let labels: string[];
  let labelOffset = 0;
  const reg = loadRegistry();
  if (outSize === 1000 || outSize === 1001) {
    labels = await loadLabelSet('imagenet', reg.labelSets.imagenet!, opts);
    labelOffset = outSize - 1000;
    assumptions.push(`ImageNet labels${labelOffset ? ' with a background class at index 0' : ''}`);
  } else {
    labels = Array.from({ length: outSize }, (_, i) => String(i));
    assumptions.push(`${outSize} unnamed classes`);
  }
  assumptions.push('softmax applied unless outputs already sum to 1');
  return {
    spec: checkSpec({
      ...DEFAULT_SPEC,
      width: w,
      height: h,
      channels,
      layout: nchw ? 'NCHW' : 'NHWC',
      colorOrder: channels === 1 ? 'GRAY' : 'RGB',
      mean: channels === 1 ? [0] : DEFAULT_SPEC.mean,
      std: channels === 1 ? [1] : DEFAULT_SPEC.std,
      dtype: input.type === 'float16' ? 'float16' : 'float32',
    }),
    post: { kind: 'logits', labelOffset, labels },
    inputName: input.name,
    outputName: output.name,
    assumptions,
  };
}

export async function loadClassifier(model: string, options: ClassifierOptions = {}): Promise<Classifier> {
  const resolved = await resolveModel(model, options);
  const meta = resolved.entry ? undefined : await readModelInfo(resolved.path);
  const id = resolved.entry?.id ?? path.basename(resolved.path);
  // createSession reads only the session fields of the options.
  const sessionOptions: SessionOptions = options;
  let session: ModelSession | undefined;
  let signature: Signature;
  if (options.lazy) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(resolved.path);
    } catch (err) {
      throw new EdgetuneError('EMODEL', `${resolved.path}: cannot read model file (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`, { subject: resolved.path });
    }
    try {
      signature = graphSignature(decodeModel(bytes).graph);
    } catch (err) {
      throw new EdgetuneError('EMODEL', `${resolved.path}: not a readable ONNX model (${messageOf(err)})`, { subject: resolved.path });
    }
    if (!signature.inputs.length || !signature.outputs.length) throw new EdgetuneError('EMODEL', `${resolved.path}: the graph declares no ${signature.inputs.length ? 'outputs' : 'inputs'}`, { subject: resolved.path });
  } else {
    session = await createSession(resolved.path, sessionOptions);
    signature = session;
  }
  let d: Resolved;
  try {
    d = await describe(signature, resolved.entry, meta, options);
  } catch (err) {
    await session?.dispose();
    throw err;
  }
  let opening: Promise<ModelSession> | undefined;
  let disposed = false;
  const open = (): Promise<ModelSession> => {
    if (session) return Promise.resolve(session);
    if (disposed) return Promise.reject(new EdgetuneError('EMODEL', `${id}: classifier was disposed`));
    opening ??= createSession(resolved.path, sessionOptions).then(
      (s) => (session = s),
      (err) => {
        opening = undefined;
        throw err;
      },
    );
    return opening;
  };
  const k0 = options.topK ?? 5;
  const batchDim = signature.inputs.find((i) => i.name === d.inputName)?.shape[0];
  const maxBatch = typeof batchDim === 'number' && batchDim > 0 ? batchDim : 64;
  const sniffProbabilities = !resolved.entry && !meta;
  const rows = async (images: readonly HwcImage[]): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (let i = 0; i < images.length; i += maxBatch) {
      const chunk = images.slice(i, i + maxBatch);
      const res = await (session ?? (await open())).run({ [d.inputName]: toTensor(chunk, d.spec) }, [d.outputName]);
      const flat = asFloat32(res[d.outputName]!);
      const per = flat.length / chunk.length;
      for (let j = 0; j < chunk.length; j++) {
        const row = flat.subarray(j * per, (j + 1) * per);
        out.push((sniffProbabilities ? sniffedProbabilities(row) : probabilities(row, { kind: d.post.kind })).slice());
      }
    }
    return out;
  };
  const decodeOpts: DecodeOptions = { maxPixels: options.maxPixels, background: options.background };
  const c: Classifier = {
    id,
    modelPath: resolved.path,
    get provider() {
      return session ? session.provider : 'unopened';
    },
    get session() {
      if (!session) throw new EdgetuneError('EMODEL', `${id}: the session of a lazy classifier is not open yet (await open() first)`);
      return session;
    },
    open,
    sessionOptions,
    inputName: d.inputName,
    outputName: d.outputName,
    spec: d.spec,
    post: d.post,
    entry: resolved.entry,
    assumptions: d.assumptions,
    maxBatch,
    decode: (input, name) => decodeImage(input, d.spec, decodeOpts, name),
    async classify(input, o = {}) {
      const t0 = performance.now();
      const img = await decodeImage(input, d.spec, decodeOpts, o.name);
      const [p] = await rows([img]);
      const top = topK(p!, o.topK ?? k0, d.post);
      return { top, ms: performance.now() - t0 };
    },
    probabilities: rows,
    async classifyImages(images, k = k0) {
      return (await rows(images)).map((p) => topK(p, k, d.post));
    },
    async *classifyFiles(files, o = {}) {
      const k = o.topK ?? k0;
      const batch = Math.max(1, Math.min(o.batch ?? 1, maxBatch));
      const ahead = o.ahead ?? Math.max(4, 2 * batch);
      const pending: { file: string; t0: number; img: Promise<HwcImage> }[] = [];
      let next = 0;
      const fill = () => {
        while (pending.length < ahead && next < files.length) {
          const file = files[next++]!;
          const img = decodeImage(file, d.spec, decodeOpts);
          img.catch(() => undefined); // observed when its turn comes
          pending.push({ file, t0: performance.now(), img });
        }
      };
      fill();
      while (pending.length) {
        const group: { file: string; t0: number; img: HwcImage }[] = [];
        const failed: FileResult[] = [];
        while (group.length < batch && pending.length) {
          const p = pending.shift()!;
          try {
            group.push({ file: p.file, t0: p.t0, img: await p.img });
          } catch (err) {
            failed.push({ file: p.file, error: err as Error });
          }
          fill();
        }
        yield* failed;
        if (!group.length) continue;
        const probs = await rows(group.map((g) => g.img));
        const t1 = performance.now();
        for (let i = 0; i < group.length; i++) {
          yield { file: group[i]!.file, top: topK(probs[i]!, k, d.post), ms: Math.round((t1 - group[i]!.t0) * 10) / 10 };
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
