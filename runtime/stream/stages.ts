// Inference stages of a stream: a classifier split into preprocess (sync, main thread) and inference
// (async), on a worker thread with its own session (the default: onnxruntime-node blocks the thread it
// runs on) or on the main thread. Used by the pipeline and by the hot-swap check (check.ts).
// The worker protocol is written here rather than with comlink (which the kiosk page uses, and which has
// a worker_threads adapter): when the worker dies (a native abort, out of memory) every pending request
// must be rejected at once, and comlink leaves in-flight calls pending for ever when its endpoint goes
// away (GoogleChromeLabs/comlink#601, open). The stream's restart logic depends on that rejection.

import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import type { Frame } from '../../devices/sources/types.js';
import type { Classifier } from '../classify/classifier.js';
import { toProbabilities } from '../classify/postprocess.js';
import { EdgetuneError } from '../core/errors.js';
import { asFloat32, type TensorData } from '../core/tensor.js';
import { toTensor } from '../image/preprocess.js';
import { compiledSibling } from '../io/paths.js';
import type { SessionOptions } from '../session/session.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker.js';

/** Where and how the model runs (StreamOptions' fields of the same names). */
export interface StageOptions {
  /** 'worker' (default): a worker thread with its own session; 'main': the classifier's own session. */
  inference?: 'worker' | 'main';
  /** Session options for the worker's session. Default: the classifier's provider, onnxruntime's threads. */
  sessionOptions?: Pick<SessionOptions, 'providers' | 'threads' | 'graphOptimizationLevel'>;
  /** Warnings from the worker's session (providers skipped). */
  onWarning?: (message: string) => void;
}

/** One frame's inference: probabilities, run time in ms, and for a model with an open-set calibration its unknown score. */
export type InferResult = { probs: Float32Array; ms: number; unknown?: number };

/** A classifier split into preprocess (sync, main thread) and inference (async). */
export interface InferenceStages {
  classifier: Classifier;
  /** Where inference runs. */
  mode: 'worker' | 'main';
  /** The provider serving inference (the worker's own session in worker mode). */
  provider: string;
  prepare(frame: Frame): TensorData;
  /** Probabilities, the model's own run time in ms (without queueing or messaging), and the unknown score of a calibrated model (card `openSet`). */
  infer(tensor: TensorData): Promise<InferResult>;
  dispose(): Promise<void>;
  /**
   * Diagnostics of a worker's isolate (undefined in main mode, where process.memoryUsage() covers it):
   * its V8 heap in bytes, and a heap snapshot written to `file` (Chrome DevTools' .heapsnapshot format).
   */
  worker?: {
    memory(): Promise<WorkerMemory>;
    writeHeapSnapshot(file: string): Promise<string>;
  };
}

/** A worker isolate's V8 memory in bytes (process.memoryUsage() read inside it). */
export type WorkerMemory = { heapUsed: number; external: number; arrayBuffers: number };

/** The compiled worker script (tests run the TypeScript sources; the worker needs the build). */
const workerScript = () => compiledSibling(import.meta.url, 'worker.js', 'the inference worker');

async function startWorker(
  init: WorkerInit,
  onWarning?: (m: string) => void,
): Promise<{ provider: string; infer(t: TensorData): Promise<InferResult>; dispose(): Promise<void>; diagnostics: NonNullable<InferenceStages['worker']> }> {
  const worker = new Worker(workerScript(), { workerData: { edgetuneStreamWorker: init } });
  const pending = new Map<number, { resolve: (r: InferResult) => void; reject: (e: Error) => void }>();
  const memoryAsked = new Map<number, { resolve: (m: WorkerMemory) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let dead: Error | undefined;
  const fail = (err: Error) => {
    dead ??= err;
    for (const p of [...pending.values(), ...memoryAsked.values()]) p.reject(err);
    pending.clear();
    memoryAsked.clear();
  };
  const ready = new Promise<string>((resolve, reject) => {
    worker.on('message', (m: WorkerReply) => {
      if (m.type === 'ready') resolve(m.provider);
      else if (m.type === 'warning') onWarning?.(m.message);
      else if (m.type === 'failed') reject(new EdgetuneError('EMODEL', m.message));
      else if (m.type === 'result') {
        pending.get(m.id)?.resolve({ probs: m.probs, ms: m.ms, ...(m.unknown !== undefined ? { unknown: m.unknown } : {}) });
        pending.delete(m.id);
      } else if (m.type === 'memory') {
        memoryAsked.get(m.id)?.resolve({ heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
        memoryAsked.delete(m.id);
      } else if (m.type === 'error') {
        pending.get(m.id)?.reject(new EdgetuneError('EMODEL', m.message));
        pending.delete(m.id);
      }
    });
    worker.on('error', (err) => {
      reject(err);
      fail(err);
    });
    worker.on('exit', (code) => {
      const err = new EdgetuneError('EMODEL', `inference worker exited (code ${code})`);
      reject(err);
      fail(err);
    });
  });
  let provider: string;
  try {
    provider = await ready;
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  return {
    provider,
    infer(tensor) {
      if (dead) return Promise.reject(dead);
      const id = nextId++;
      return new Promise<InferResult>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        const msg: WorkerRequest = { type: 'run', id, tensor };
        worker.postMessage(msg, [tensor.data.buffer as ArrayBuffer]);
      });
    },
    diagnostics: {
      memory() {
        if (dead) return Promise.reject(dead);
        const id = nextId++;
        return new Promise<WorkerMemory>((resolve, reject) => {
          memoryAsked.set(id, { resolve, reject });
          worker.postMessage({ type: 'memory', id } satisfies WorkerRequest);
        });
      },
      async writeHeapSnapshot(file) {
        if (dead) throw dead;
        await pipeline(await worker.getHeapSnapshot(), createWriteStream(file));
        return file;
      },
    },
    async dispose() {
      if (dead) return;
      dead = new EdgetuneError('EMODEL', 'inference worker closed');
      const exited = new Promise<void>((r) => worker.once('exit', () => r()));
      worker.postMessage({ type: 'close' } satisfies WorkerRequest);
      const t = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function inferenceStages(
  clf: Classifier,
  opts: StageOptions = {},
): Promise<InferenceStages> {
  const { inputName, outputName } = clf;
  const outputKind = clf.card.outputKind;
  const task = clf.card.task;
  const prepare = (frame: Frame) => toTensor([frame], clf.spec);
  // a calibrated model's unknown score (the classifier found its output in the graph: unknownThreshold is set)
  const unknownOutput = clf.unknownThreshold !== undefined ? clf.card.openSet?.output : undefined;
  // A remote model (runtime/serve/client.ts) runs in its server: its session only waits on HTTP, so
  // it runs from the main thread.
  if ((opts.inference ?? 'worker') === 'worker' && clf.provider !== 'remote') {
    // The worker opens its own session: with the classifier's provider when it has one open, else
    // with the options the classifier was loaded with (a lazy classifier opens none here).
    const { providers, threads, graphOptimizationLevel } = clf.sessionOptions;
    const provider = clf.provider;
    const session = opts.sessionOptions ?? { providers: provider === 'unopened' ? providers : [provider], threads, graphOptimizationLevel };
    const w = await startWorker({ modelPath: clf.modelPath, session, inputName, outputName, outputKind, ...(task ? { task } : {}), ...(unknownOutput ? { unknownOutput } : {}) }, opts.onWarning);
    return { classifier: clf, mode: 'worker', provider: w.provider, prepare, infer: (t) => w.infer(t), dispose: () => w.dispose(), worker: w.diagnostics };
  }
  const session = await clf.open();
  return {
    classifier: clf,
    mode: 'main',
    provider: session.provider,
    prepare,
    dispose: async () => undefined,
    async infer(tensor) {
      const t = performance.now();
      const res = await session.run({ [inputName]: tensor }, unknownOutput ? [outputName, unknownOutput] : [outputName]);
      const ms = performance.now() - t;
      const row = asFloat32(res[outputName]!);
      const unknown = unknownOutput ? asFloat32(res[unknownOutput]!)[0] : undefined;
      return { probs: toProbabilities(row, outputKind, task).slice(), ms, ...(unknown !== undefined ? { unknown } : {}) };
    },
  };
}
