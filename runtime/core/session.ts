// The one session interface: what every session edgetune opens gives its callers, whichever runtime
// serves it: the Node sessions (runtime/session/session.ts's ModelSession), the kiosk page's sessions
// (runtime/kiosk/page/engine.ts, in its inference worker) and the sessions training graphs run through
// (runtime/train/graph/). Browser-safe.

import type { TensorData } from './tensor.js';

/** One ONNX model, opened on an execution provider. */
export interface Session {
  /** The provider that serves it (the first of `providers`). */
  readonly provider: string;
  /** Every provider registered in this session, in order (e.g. tensorrt, cuda, cpu). */
  readonly providers: readonly string[];
  /** One line per provider that was tried and skipped: `cuda: Failed to load shared library …`. */
  readonly skipped: readonly string[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model. `fetches` limits the outputs (all when absent). Rejects after dispose(). */
  run(feeds: Record<string, TensorData>, fetches?: readonly string[]): Promise<Record<string, TensorData>>;
  /** Frees the session (native memory, worker state); a second call does nothing. */
  dispose(): Promise<void>;
}

/** The part of a Session that training-graph code needs: run, and dispose when done. */
export type RunnableSession = Pick<Session, 'run' | 'dispose'>;

/** Opens a session on encoded model bytes. */
export type SessionFactory = (model: Uint8Array) => Promise<RunnableSession>;
