// The page's side of inference: the same session API as engine-core.ts (openSession with provider
// fallback → WebSession.run / dispose), served by the inference worker (ort-worker.ts, reached
// through comlink) so model runs never block touch input or rendering. Input tensors are
// transferred to the worker, outputs back (asGraphSession: a session whose callers keep their feeds).

import * as Comlink from 'comlink';
import type { TensorData } from '../../core/tensor.js';
import type { GraphSession } from '../../train/graph/session.js';
import type { InferenceWorker, OpenReply } from './ort-worker.js';
import { DEFAULT_ORDER, parseOrder, PROVIDER_TITLES, ProviderError, WEB_PROVIDERS, type WebProvider, type WebSession } from './providers.js';

export { DEFAULT_ORDER, parseOrder, PROVIDER_TITLES, ProviderError, WEB_PROVIDERS, type WebProvider, type WebSession };

let worker: Comlink.Remote<InferenceWorker> | undefined;
/** Rejects once the worker fails (it could not load, or died): every call in flight then fails with it. */
let failed: Promise<never> | undefined;
let ready: Promise<void> | undefined;

function call<T>(reply: Promise<T>): Promise<T> {
  return Promise.race([reply, failed!]);
}

function remote(): Comlink.Remote<InferenceWorker> {
  if (!worker) throw new Error('inference worker not started (configureRuntime first)');
  return worker;
}

/** Start the inference worker and point onnxruntime-web at the locally served runtime (no CDN). */
export function configureRuntime(opts: { threads?: number } = {}): Promise<void> {
  if (ready) return ready;
  const w = new Worker(new URL('ort-worker.js', document.baseURI), { type: 'module', name: 'edgetune-inference' });
  failed = new Promise<never>((_, reject) => {
    w.addEventListener('error', (e) => reject(new Error(`inference worker failed: ${e.message || 'could not load ort-worker.js'}`)));
  });
  failed.catch(() => undefined); // observed through call()
  worker = Comlink.wrap<InferenceWorker>(w);
  ready = call(worker.init(new URL('ort/', document.baseURI).href, opts.threads));
  return ready;
}

/** Open a session on the first provider of `order` that works (in the worker). Errors: ProviderError listing each provider's cause. */
export async function openSession(model: Uint8Array, order: readonly WebProvider[]): Promise<WebSession> {
  await configureRuntime();
  const r = await call<OpenReply>(remote().open(model, [...order]));
  if ('causes' in r) throw new ProviderError(r.causes);
  const { sid } = r;
  let disposed = false;
  return {
    provider: r.provider,
    providers: [r.provider],
    skipped: r.skipped,
    inputNames: r.inputNames,
    outputNames: r.outputNames,
    async run(feeds: Record<string, TensorData>, fetches?: readonly string[]) {
      if (disposed) throw new Error('session was disposed');
      const buffers = [...new Set(Object.values(feeds).map((t) => (t.data as { buffer: ArrayBuffer }).buffer))];
      return call(remote().run(sid, Comlink.transfer(feeds, buffers), fetches ? [...fetches] : undefined));
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await call(remote().dispose(sid));
    },
  };
}

/**
 * A page session as the training-graph code's GraphSession (runtime/train/graph/session.ts), whose
 * callers keep their feeds: WebSession.run transfers its inputs' buffers to the worker (they are
 * detached afterwards), and a trainer feeds the same weight arrays every step, so each run sends copies.
 */
export function asGraphSession(s: WebSession): GraphSession {
  const copies = (feeds: Record<string, TensorData>) => Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { ...t, data: t.data.slice() as TensorData['data'] }]));
  return { run: (feeds, fetches) => s.run(copies(feeds), fetches), dispose: () => s.dispose() };
}
