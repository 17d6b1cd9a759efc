// The kiosk's inference core: the one web file that imports onnxruntime-web (runtime/session/ort.ts is the
// Node side and also pulls in onnxruntime-node, so the page cannot use it). It runs inside the
// inference worker (runtime/kiosk/page/ort-worker.ts) so the page stays responsive to touch while models run.
// Sessions are opened with execution-provider fallback in the order asked for — WebNN on the NPU,
// then WebGPU, then wasm by default — and every provider that cannot serve is reported with its
// reason, like runtime/session/session.ts does on Node. Tensors cross this boundary as the runtime's TensorData.

import * as ort from 'onnxruntime-web';
import type { TensorData, TensorType } from '../../core/tensor.js';
import { ProviderError, type WebProvider, type WebSession } from './providers.js';
import { ProviderMemory } from '../../core/providers.js';

/** Providers that failed to load in this worker: not tried again by later sessions (core/providers.ts). */
const memory = new ProviderMemory();

export { ProviderError, type WebProvider, type WebSession };

let configured = false;
/** Point onnxruntime-web at the locally served runtime (dist/web/ort/), never a CDN. */
export function configureRuntime(opts: { wasmPath?: string; threads?: number } = {}): void {
  if (configured) return;
  configured = true;
  ort.env.wasm.wasmPaths = opts.wasmPath ?? new URL('ort/', self.location.href).href;
  if (opts.threads) ort.env.wasm.numThreads = opts.threads;
  ort.env.logLevel = 'error';
}

function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return (m.split('\n').find((l) => l.trim()) ?? m).slice(0, 240);
}

/** A reason this provider cannot work here, found without onnxruntime (undefined: try it). */
async function precheck(p: WebProvider): Promise<string | undefined> {
  const nav = navigator as Navigator & { ml?: unknown; gpu?: { requestAdapter(): Promise<unknown> } };
  if (p.startsWith('webnn')) {
    if (!nav.ml) return 'WebNN is not available in this browser (navigator.ml is missing)';
  } else if (p === 'webgpu') {
    if (!nav.gpu) return 'WebGPU is not available in this browser (navigator.gpu is missing)';
    try {
      if (!(await nav.gpu.requestAdapter())) return 'no WebGPU adapter on this machine (requestAdapter returned null)';
    } catch (err) {
      return `no WebGPU adapter on this machine (${firstLine(err)})`;
    }
  }
  return undefined;
}

function epOption(p: WebProvider): string | { name: string; deviceType: string } {
  if (p === 'webnn') return { name: 'webnn', deviceType: 'npu' };
  if (p === 'webnn-gpu') return { name: 'webnn', deviceType: 'gpu' };
  if (p === 'webnn-cpu') return { name: 'webnn', deviceType: 'cpu' };
  return p;
}

/** Open a session on the first provider of `order` that works. */
export async function openSession(model: Uint8Array, order: readonly WebProvider[]): Promise<WebSession> {
  const causes: string[] = [];
  for (const p of order) {
    const known = memory.reason(p);
    if (known !== undefined) {
      causes.push(`${p}: ${known} (remembered: not tried again)`);
      continue;
    }
    const why = await precheck(p);
    if (why) {
      memory.remember(p, why);
      causes.push(`${p}: ${why}`);
      continue;
    }
    let s: ort.InferenceSession;
    try {
      s = await ort.InferenceSession.create(model, {
        executionProviders: [epOption(p) as ort.InferenceSession.ExecutionProviderConfig],
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      const m = firstLine(err);
      // A file no provider can parse fails the same way everywhere: stop at the first.
      if (/protobuf parsing failed|invalid model|ModelProto|Load model .* failed/i.test(m)) throw new Error(`not a valid ONNX model (${m})`);
      memory.remember(p, m);
      causes.push(`${p}: ${m}`);
      continue;
    }
    return wrap(s, p, causes);
  }
  throw new ProviderError(causes);
}

function wrap(s: ort.InferenceSession, provider: WebProvider, skipped: string[]): WebSession {
  let disposed = false;
  return {
    provider,
    providers: [provider],
    skipped,
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    async run(feeds, fetches) {
      if (disposed) throw new Error('session was disposed');
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(v.type as 'float32', v.data as Float32Array, v.dims as number[]);
      const res = fetches ? await s.run(ortFeeds, fetches as string[]) : await s.run(ortFeeds);
      const out: Record<string, TensorData> = {};
      for (const [k, v] of Object.entries(res)) out[k] = { type: v.type as TensorType, data: v.data as TensorData['data'], dims: [...v.dims] };
      return out;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await s.release();
    },
  };
}
