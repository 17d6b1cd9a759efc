// The inference worker: holds the onnxruntime-web sessions (web/engine-core.ts) off the page's main
// thread. Messages from web/engine.ts: init {wasmPath, threads}, open {model, order} → session id +
// provider + skipped providers, run {sid, feeds, fetches} → outputs (buffers transferred both ways),
// dispose {sid}. Every reply carries the request id; failures reply {error, causes?}.

import type { TensorData } from '../../core/tensor.js';
import { configureRuntime, openSession, ProviderError, type WebProvider, type WebSession } from './engine-core.js';

interface Request {
  id: number;
  op: 'init' | 'open' | 'run' | 'dispose';
  wasmPath?: string;
  threads?: number;
  model?: Uint8Array;
  order?: WebProvider[];
  sid?: number;
  feeds?: Record<string, TensorData>;
  fetches?: string[];
}

const sessions = new Map<number, WebSession>();
let next = 1;

function session(sid: number | undefined): WebSession {
  const s = sid === undefined ? undefined : sessions.get(sid);
  if (!s) throw new Error('session was disposed');
  return s;
}

self.onmessage = async (e: MessageEvent<Request>) => {
  const r = e.data;
  const reply = (body: Record<string, unknown>, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage({ id: r.id, ...body }, transfer);
  try {
    switch (r.op) {
      case 'init':
        configureRuntime({ wasmPath: r.wasmPath, threads: r.threads });
        reply({});
        break;
      case 'open': {
        const s = await openSession(r.model!, r.order!);
        const sid = next++;
        sessions.set(sid, s);
        reply({ sid, provider: s.provider, skipped: s.skipped, inputNames: s.inputNames, outputNames: s.outputNames });
        break;
      }
      case 'run': {
        const res = await session(r.sid).run(r.feeds!, r.fetches);
        // own copies (an output may view wasm memory, which cannot be transferred), then transferred
        const out: Record<string, TensorData> = {};
        for (const [k, t] of Object.entries(res)) out[k] = { ...t, data: t.data.slice() as TensorData['data'] };
        reply({ out }, Object.values(out).map((t) => t.data.buffer as ArrayBuffer));
        break;
      }
      case 'dispose': {
        const s = sessions.get(r.sid!);
        sessions.delete(r.sid!);
        await s?.dispose();
        reply({});
        break;
      }
    }
  } catch (err) {
    reply({ error: err instanceof Error ? err.message : String(err), causes: err instanceof ProviderError ? err.causes : undefined });
  }
};
