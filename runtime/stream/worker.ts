// Inference worker for runtime/stream/pipeline.ts. onnxruntime-node runs a session synchronously on the
// thread that calls it, so a pipeline that ran the model on the main thread would stop reading the
// camera while the model runs. This worker owns its own session of the same model: the main thread
// keeps capturing and preprocessing frame n+1 while the worker runs frame n. Tensors arrive and
// probabilities leave as transferred buffers (no copies).

import { parentPort, workerData } from 'node:worker_threads';
import { toProbabilities } from '../classify/postprocess.js';
import type { ModelTask, OutputKind } from '../core/model-card.js';
import { createSession, type SessionOptions } from '../session/session.js';
import { asFloat32, type TensorData } from '../core/tensor.js';
import { messageOf } from '../core/errors.js';

export interface WorkerInit {
  modelPath: string;
  session: Pick<SessionOptions, 'providers' | 'threads' | 'graphOptimizationLevel'>;
  inputName: string;
  outputName: string;
  /** The model card's output kind (`auto`: decided per row). */
  outputKind: OutputKind;
  /** The card's task (multilabel rows get a sigmoid, not a softmax: postprocess.ts toProbabilities). */
  task?: ModelTask;
  /** The open-set output (card `openSet.output`) to fetch too, for a calibrated model. */
  unknownOutput?: string;
}

export type WorkerRequest = { type: 'run'; id: number; tensor: TensorData } | { type: 'memory'; id: number } | { type: 'close' };
export type WorkerReply =
  | { type: 'ready'; provider: string }
  | { type: 'warning'; message: string }
  | { type: 'result'; id: number; probs: Float32Array; ms: number; unknown?: number }
  | { type: 'error'; id: number; message: string }
  /** The worker isolate's own V8 heap (process.memoryUsage() inside a worker reports its isolate's heap). */
  | { type: 'memory'; id: number; heapUsed: number; external: number; arrayBuffers: number }
  | { type: 'failed'; message: string };

if (parentPort && (workerData as { edgetuneStreamWorker?: WorkerInit } | undefined)?.edgetuneStreamWorker) {
  const port = parentPort;
  const init = (workerData as { edgetuneStreamWorker: WorkerInit }).edgetuneStreamWorker;
  const post = (m: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  try {
    const session = await createSession(init.modelPath, { ...init.session, onWarning: (message) => post({ type: 'warning', message }) });
    post({ type: 'ready', provider: session.provider });
    port.on('message', async (m: WorkerRequest) => {
      if (m.type === 'close') {
        await session.dispose();
        port.close();
        return;
      }
      if (m.type === 'memory') {
        // a full collection first where the process was started with --expose-gc (the soak benchmark): live memory, not garbage
        (globalThis as { gc?: () => void }).gc?.();
        const { heapUsed, external, arrayBuffers } = process.memoryUsage();
        post({ type: 'memory', id: m.id, heapUsed, external, arrayBuffers });
        return;
      }
      try {
        const t = performance.now();
        const res = await session.run({ [init.inputName]: m.tensor }, init.unknownOutput ? [init.outputName, init.unknownOutput] : [init.outputName]);
        const ms = performance.now() - t;
        const row = asFloat32(res[init.outputName]!);
        const probs = toProbabilities(row, init.outputKind, init.task).slice();
        const unknown = init.unknownOutput ? asFloat32(res[init.unknownOutput]!)[0] : undefined;
        post({ type: 'result', id: m.id, probs, ms, ...(unknown !== undefined ? { unknown } : {}) }, [probs.buffer as ArrayBuffer]);
      } catch (err) {
        post({ type: 'error', id: m.id, message: messageOf(err) });
      }
    });
  } catch (err) {
    post({ type: 'failed', message: messageOf(err) });
    port.close();
  }
}
