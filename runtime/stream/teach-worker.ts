// The training thread of `watch --teach` (runtime/stream/teach.ts): POST /teach/train runs the library's
// finetune() here, on a worker thread, so the stream's thread keeps reading, preprocessing and serving
// frames while the head trains (the trainer's epochs are JavaScript and would hold the thread they run
// on for seconds). The protocol is hand-written like the inference worker's (runtime/stream/stages.ts):
// progress and warnings arrive as messages, the report or the error once at the end; `abort` stops
// finetune() between steps (nothing written), and the parent terminates a thread that does not end.

import { parentPort, Worker, workerData } from 'node:worker_threads';
import { EdgetuneError, messageOf, type ErrorCode } from '../core/errors.js';
import { compiledSibling } from '../io/paths.js';
import { finetune, type FinetuneOptions, type FinetuneProgress, type FinetuneReport } from '../train/node/finetune.js';

/** What the training thread runs: finetune(undefined, options) (a resume, with `out`); functions and the signal are set in the thread. */
export type TrainJob = Omit<FinetuneOptions, 'signal' | 'onProgress' | 'onWarning'> & { resume: string };

type ToWorker = { type: 'abort'; message: string };
type FromWorker =
  | { type: 'progress'; event: FinetuneProgress }
  | { type: 'warning'; message: string }
  | { type: 'done'; report: FinetuneReport }
  | { type: 'error'; code?: ErrorCode; message: string; aborted: boolean };

/** A training running on its thread: its report, and `abort` (resolves once the thread has ended). */
export interface TrainingThread {
  done: Promise<FinetuneReport>;
  /** Stop the training: finetune() is aborted between steps; a thread still running after `graceMs` (default 1000) is terminated. Nothing of the training is written either way. */
  abort(reason: Error, graceMs?: number): Promise<void>;
}

/**
 * Run finetune() for `job` on a worker thread. `onProgress` / `onWarning` receive its events. `done`
 * rejects with an EdgetuneError of finetune()'s code and message, with `abort`'s reason when aborted,
 * and with EIO when the thread dies (`training thread exited (code …)`).
 */
export function trainOnThread(job: TrainJob, hooks: { onProgress?: (e: FinetuneProgress) => void; onWarning?: (m: string) => void } = {}): TrainingThread {
  const worker = new Worker(compiledSibling(import.meta.url, 'teach-worker.js', 'the training thread'), { workerData: { edgetuneTeachJob: job } });
  let abortReason: Error | undefined;
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  const done = new Promise<FinetuneReport>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'progress') hooks.onProgress?.(m.event);
      else if (m.type === 'warning') hooks.onWarning?.(m.message);
      else if (m.type === 'done') resolve(m.report);
      else reject(m.aborted && abortReason ? abortReason : m.code ? new EdgetuneError(m.code, m.message) : new Error(m.message));
    });
    worker.on('error', (err) => reject(abortReason ?? err));
    worker.on('exit', (code) => reject(abortReason ?? new EdgetuneError('EIO', `training thread exited (code ${code})`)));
  });
  done.catch(() => undefined); // the caller handles it; an abort nobody awaits is no unhandled rejection
  return {
    done,
    async abort(reason, graceMs = 1000) {
      abortReason ??= reason;
      worker.postMessage({ type: 'abort', message: reason.message } satisfies ToWorker);
      const t = setTimeout(() => void worker.terminate(), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

// The thread's body is a function, not top-level code: a top-level await here would make the whole
// `edgetune` entry (which imports this file for trainOnThread) an async module graph, and CommonJS
// `require('edgetune')` (Node >= 20.19) refuses those with ERR_REQUIRE_ASYNC_MODULE.
async function runJob(job: TrainJob, port: NonNullable<typeof parentPort>): Promise<void> {
  const post = (m: FromWorker) => port.postMessage(m);
  const stop = new AbortController();
  port.on('message', (m: ToWorker) => {
    if (m.type === 'abort') stop.abort(new EdgetuneError('EIO', m.message));
  });
  try {
    const report = await finetune(undefined, {
      ...job,
      task: 'classification',
      signal: stop.signal,
      onProgress: (event) => post({ type: 'progress', event }),
      onWarning: (message) => post({ type: 'warning', message }),
    });
    post({ type: 'done', report });
  } catch (err) {
    post({ type: 'error', ...(err instanceof EdgetuneError ? { code: err.code } : {}), message: messageOf(err), aborted: stop.signal.aborted });
  }
  port.close();
}

const job = (workerData as { edgetuneTeachJob?: TrainJob } | undefined)?.edgetuneTeachJob;
if (parentPort && job) void runJob(job, parentPort);
