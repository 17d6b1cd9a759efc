// The inference worker: holds the onnxruntime-web sessions (engine-core.ts) off the page's main
// thread and exposes them to engine.ts with comlink: init(wasmPath, threads), open(model, order) →
// session id + provider + skipped providers (or the causes when no provider can serve), run(sid,
// feeds, fetches) → outputs (buffers transferred both ways), dispose(sid). A thrown error reaches the
// page as a rejected call with the same message.

import * as Comlink from 'comlink';
import type { TensorData } from '../../core/tensor.js';
import { configureRuntime, openSession, ProviderError, type WebProvider, type WebSession } from './engine-core.js';

/** What `open` answers: a session, or why no provider could serve (the page rebuilds the ProviderError). */
export type OpenReply =
  | { sid: number; provider: WebProvider; skipped: string[]; inputNames: string[]; outputNames: string[] }
  | { causes: string[] };

const sessions = new Map<number, WebSession>();
let next = 1;

function session(sid: number): WebSession {
  const s = sessions.get(sid);
  if (!s) throw new Error('session was disposed');
  return s;
}

const api = {
  init(wasmPath: string, threads?: number): void {
    configureRuntime({ wasmPath, threads });
  },

  async open(model: Uint8Array, order: WebProvider[]): Promise<OpenReply> {
    let s: WebSession;
    try {
      s = await openSession(model, order);
    } catch (err) {
      if (err instanceof ProviderError) return { causes: [...err.causes] };
      throw err;
    }
    const sid = next++;
    sessions.set(sid, s);
    return { sid, provider: s.provider, skipped: [...s.skipped], inputNames: [...s.inputNames], outputNames: [...s.outputNames] };
  },

  async run(sid: number, feeds: Record<string, TensorData>, fetches?: string[]): Promise<Record<string, TensorData>> {
    const res = await session(sid).run(feeds, fetches);
    // own copies (an output may view wasm memory, which cannot be transferred), then transferred
    const out: Record<string, TensorData> = {};
    for (const [k, t] of Object.entries(res)) out[k] = { ...t, data: t.data.slice() as TensorData['data'] };
    return Comlink.transfer(out, Object.values(out).map((t) => t.data.buffer as ArrayBuffer));
  },

  async dispose(sid: number): Promise<void> {
    const s = sessions.get(sid);
    sessions.delete(sid);
    await s?.dispose();
  },
};

/** The worker's interface as engine.ts sees it (through Comlink.wrap). */
export type InferenceWorker = typeof api;

Comlink.expose(api);
