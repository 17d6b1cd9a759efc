// Sessions with execution-provider fallback. Providers are tried in the order asked for; each one
// that cannot serve is skipped with one warning saying why, and if none can, one error lists every
// provider and its cause (the onnxruntime-js resolution pattern). The session reports which provider
// actually serves it. A live-session counter lets leak tests prove that dispose() frees native memory.

import { backendFor, type NativeSessionOptions, type SessionHandler, type TensorInfo } from './ort.js';
import { EdgetuneError, invalidParameter, messageOf, checkPositiveInteger } from '../core/errors.js';
import type { TensorData } from '../core/tensor.js';

export const KNOWN_PROVIDERS = ['tensorrt', 'cuda', 'webgpu', 'coreml', 'dml', 'cpu', 'wasm'] as const;
export type ProviderName = (typeof KNOWN_PROVIDERS)[number];

export interface ProviderRequest {
  name: ProviderName;
  /** Passed to onnxruntime as provider options, e.g. `{ deviceId: 0 }`. */
  options?: Record<string, unknown>;
}

export interface SessionOptions {
  /** Ordered providers to try. Default `['cpu', 'wasm']`. */
  providers?: readonly (ProviderName | ProviderRequest)[];
  /** Intra-op threads. Default: onnxruntime's choice (one per physical core). */
  threads?: number;
  /** Graph optimisation level. Default `'all'`. */
  graphOptimizationLevel?: NativeSessionOptions['graphOptimizationLevel'];
  optimizedModelFilePath?: string;
  enableProfiling?: boolean;
  profileFilePrefix?: string;
  /** Called once per provider that was skipped. Default: `console.warn` with an `edgetune:` prefix. */
  onWarning?: (message: string) => void;
}

export interface ModelSession {
  /**
   * The provider that serves this session (the first in the list that worked); `remote` for a model
   * served by another process over the Open Inference Protocol (runtime/serve/client.ts).
   */
  readonly provider: ProviderName | 'remote';
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** One line per provider that was tried and skipped. */
  readonly skipped: readonly string[];
  run(feeds: Record<string, TensorData>, fetches?: readonly string[]): Promise<Record<string, TensorData>>;
  endProfiling(): string | undefined;
  dispose(): Promise<void>;
}

let live = 0;
/** Sessions created and not yet disposed, across the process. */
export function liveSessionCount(): number {
  return live;
}

export function parseProviders(spec: string | readonly (ProviderName | ProviderRequest)[]): ProviderRequest[] {
  const list = typeof spec === 'string' ? spec.split(',').map((s) => s.trim()).filter(Boolean) : [...spec];
  if (list.length === 0) throw invalidParameter('providers', `a list of ${KNOWN_PROVIDERS.join(', ')}`, spec);
  return list.map((p) => {
    const req: ProviderRequest = typeof p === 'string' ? { name: p as ProviderName } : p;
    if (!(KNOWN_PROVIDERS as readonly string[]).includes(req.name)) {
      throw new EdgetuneError(
        'EARG',
        `Unknown execution provider "${req.name}": expected one of ${KNOWN_PROVIDERS.join(', ')}`,
        { subject: req.name },
      );
    }
    return req;
  });
}

function firstLine(s: string): string {
  // onnxruntime messages carry source paths and multi-line dumps; keep the useful head.
  const line = s.split('\n').find((l) => l.trim()) ?? s;
  return clip(line.replace(/^.*?\[ONNXRuntimeError\] : \d+ : \w+ : /, ''), 300);
}

/** At most `n` characters, cut at a word boundary (with an ellipsis), never mid-word. */
function clip(s: string, n: number): string {
  if (s.length <= n) return s;
  const cut = s.slice(0, n + 1).replace(/\s+\S*$/, '');
  return `${cut.length ? cut : s.slice(0, n)}…`;
}

/** Readable reason for the usual provider failures. */
function explain(provider: string, err: unknown): string {
  const full = messageOf(err);
  // Dawn's reason comes last, after a source location and a lambda signature: keep only the reason.
  const adapter = /Failed to get a WebGPU adapter:?\s*([^\n]*)/.exec(full);
  if (adapter && provider === 'webgpu') return `no WebGPU adapter on this machine (${adapter[1]!.trim().replace(/\.$/, '') || 'no reason given'})`;
  const msg = firstLine(full);
  if (/Failed to load shared library|cannot open shared object/i.test(msg) && (provider === 'cuda' || provider === 'tensorrt')) {
    return `${msg} (onnxruntime-node was installed without its CUDA/TensorRT libraries; see README "GPU providers")`;
  }
  if (/adapter/i.test(msg) && provider === 'webgpu') return `no WebGPU adapter on this machine (${clip(msg, 160)})`;
  return msg;
}

/**
 * onnxruntime's reason for refusing a model, in words: the "Load model from … failed:" prefix and the
 * C++ source location and signature are dropped, and the common cases are said plainly (IR version or
 * opset newer than this onnxruntime supports, not a protobuf file).
 */
export function modelLoadReason(message: string): string {
  const m = messageOf(message).replace(/^Load model from .*? failed:/s, '').replace(/^\s*\/?[\w/.-]+\.(h|cc|cpp):\d+ [^\n]*?\)\s(?=[A-Z])/, '').trim();
  const ir = /Unsupported model IR version: (\d+), max supported IR version: (\d+)/.exec(m);
  if (ir) return `IR version ${ir[1]} is newer than this onnxruntime supports (max IR ${ir[2]})`;
  const opset = /Opset (\d+) is under development[\s\S]*?support for domain (\S+) is till opset (\d+)/.exec(m);
  if (opset) return `opset ${opset[1]} is newer than this onnxruntime supports (${opset[2]} up to opset ${opset[3]})`;
  if (/protobuf parsing failed/i.test(m)) return 'not an ONNX file (protobuf parsing failed)';
  return firstLine(m);
}

export async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
  const providers = parseProviders(options.providers ?? ['cpu', 'wasm']);
  if (options.threads !== undefined) checkPositiveInteger('threads', options.threads);
  const warn = options.onWarning ?? ((m: string) => console.warn(`edgetune: ${m}`));
  const causes: string[] = [];
  for (const req of providers) {
    const backend = backendFor(req.name);
    if (!backend) {
      causes.push(`${req.name}: not available in Node`);
      continue;
    }
    let handler: SessionHandler;
    try {
      handler = await backend.create(model, req.name, {
        intraOpNumThreads: options.threads,
        graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
        optimizedModelFilePath: options.optimizedModelFilePath,
        enableProfiling: options.enableProfiling,
        profileFilePrefix: options.profileFilePrefix,
        providerOptions: req.options,
        logSeverityLevel: providers.length > 1 ? 4 : 3,
      });
    } catch (err) {
      const why = explain(req.name, err);
      // A model that no provider can parse fails the same way everywhere: stop at the first.
      if (/protobuf parsing failed|Load model from .* failed|Invalid model|ModelProto/i.test(why)) {
        throw new EdgetuneError('EMODEL', `${typeof model === 'string' ? model : 'model'}: not a valid ONNX model (${modelLoadReason(messageOf(err))})`, {
          subject: typeof model === 'string' ? model : undefined,
          cause: err,
        });
      }
      causes.push(`${req.name}: ${why}`);
      continue;
    }
    for (const c of causes) warn(`execution provider ${c}; falling back to ${req.name}`);
    live++;
    let disposed = false;
    return {
      provider: req.name,
      inputs: handler.inputs,
      outputs: handler.outputs,
      skipped: causes,
      run: (feeds, fetches) => {
        if (disposed) return Promise.reject(new EdgetuneError('EARG', 'session was disposed'));
        return handler.run(feeds, fetches);
      },
      endProfiling: () => handler.endProfiling(),
      async dispose() {
        if (disposed) return;
        disposed = true;
        live--;
        await handler.release();
      },
    };
  }
  throw new EdgetuneError(
    'EPROVIDER',
    `No execution provider could serve ${typeof model === 'string' ? model : 'the model'}:\n${causes.map((c) => `  - ${c}`).join('\n')}`,
  );
}
