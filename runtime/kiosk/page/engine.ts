// The page's side of inference: the same session API as web/engine-core.ts (openSession with provider
// fallback → WebSession.run / dispose), served by the inference worker (web/ort-worker.ts) so model
// runs never block touch input or rendering. Input tensors are transferred to the worker, outputs back.

import type { TensorData } from '../../core/tensor.js';
import { DEFAULT_ORDER, parseOrder, PROVIDER_TITLES, ProviderError, WEB_PROVIDERS, type WebProvider, type WebSession } from './providers.js';

export { DEFAULT_ORDER, parseOrder, PROVIDER_TITLES, ProviderError, WEB_PROVIDERS, type WebProvider, type WebSession };

interface Reply {
  id: number;
  error?: string;
  causes?: string[];
  [k: string]: unknown;
}

let worker: Worker | undefined;
let ready: Promise<unknown> | undefined;
let nextId = 1;
const pending = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();

function call(msg: Record<string, unknown>, transfer: Transferable[] = []): Promise<Reply> {
  if (!worker) throw new Error('inference worker not started (configureRuntime first)');
  const id = nextId++;
  return new Promise<Reply>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker!.postMessage({ id, ...msg }, transfer);
  });
}

/** Start the inference worker and point onnxruntime-web at the locally served runtime (no CDN). */
export function configureRuntime(opts: { threads?: number } = {}): Promise<unknown> {
  if (ready) return ready;
  worker = new Worker(new URL('ort-worker.js', document.baseURI), { type: 'module', name: 'edgetune-inference' });
  worker.onmessage = (e: MessageEvent<Reply>) => {
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.error !== undefined) p.reject(e.data.causes ? new ProviderError(e.data.causes) : new Error(e.data.error));
    else p.resolve(e.data);
  };
  worker.onerror = (e) => {
    const err = new Error(`inference worker failed: ${e.message || 'could not load ort-worker.js'}`);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  ready = call({ op: 'init', wasmPath: new URL('ort/', document.baseURI).href, threads: opts.threads });
  return ready;
}

/** Open a session on the first provider of `order` that works (in the worker). */
export async function openSession(model: Uint8Array, order: readonly WebProvider[]): Promise<WebSession> {
  await configureRuntime();
  const r = await call({ op: 'open', model, order: [...order] });
  const sid = r.sid as number;
  let disposed = false;
  return {
    provider: r.provider as WebProvider,
    skipped: r.skipped as string[],
    inputNames: r.inputNames as string[],
    outputNames: r.outputNames as string[],
    async run(feeds: Record<string, TensorData>, fetches?: readonly string[]) {
      if (disposed) throw new Error('session was disposed');
      const transfer = [...new Set(Object.values(feeds).map((t) => (t.data as { buffer: ArrayBuffer }).buffer))];
      const res = await call({ op: 'run', sid, feeds, fetches: fetches ? [...fetches] : undefined }, transfer);
      return res.out as Record<string, TensorData>;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await call({ op: 'dispose', sid });
    },
  };
}
