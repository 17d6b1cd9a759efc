// Sessions with execution-provider fallback. The providers asked for are tried in order, in groups:
// consecutive providers of one family (TensorRT then CUDA, then the CPU) are registered together in ONE
// session, so nodes TensorRT cannot run fall to CUDA, not to the CPU (runtime/core/providers.ts's
// providerGroups). A group that fails drops the provider the error names and tries again; each provider
// that cannot serve is skipped with one warning saying why, and if none can, one error lists every
// provider and its cause (the onnxruntime-js resolution pattern). A provider that cannot LOAD on this
// machine (missing library, no device) is remembered for the rest of the process and not tried again by
// later sessions (as onnxruntime-common's resolveBackend remembers a failed backend). The session
// reports which provider serves it. A live-session counter lets leak tests prove that dispose() frees
// native memory.

import { stat } from 'node:fs/promises';
import { looksLikeModelPath } from '../io/paths.js';
import { backendFor, listNativeProviders, nodeBackend, type NativeSessionOptions, type SessionHandler, type TensorInfo } from './ort.js';
import { EdgetuneError, invalidParameter, messageOf, checkPositiveInteger } from '../core/errors.js';
import { culpritOf, ProviderError, ProviderMemory, providerGroups, providerNamesIn, resolveProviderName, type ProviderNameIn } from '../core/providers.js';
import type { Session } from '../core/session.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';

/** The providers a Node session can use (native onnxruntime-node ones, then wasm), from the provider table. */
export type ProviderName = ProviderNameIn<'node' | 'node-wasm'>;
export const KNOWN_PROVIDERS: readonly ProviderName[] = providerNamesIn('node', 'node-wasm');

/**
 * The provider options onnxruntime-node 1.30 reads (js/node/src/session_options_helper.cc): cuda and
 * tensorrt read `deviceId` only (TensorRT's trt_fp16_enable / trt_engine_cache_enable cannot be set
 * from Node, and its ORT_TENSORRT_* environment variables are ignored because the binding registers
 * TensorRT with a V2 options struct), coreml `coreMlFlags`, dml `deviceId`, webgpu its own keys.
 */
const READABLE_OPTIONS: Partial<Record<ProviderName, readonly string[]>> = {
  tensorrt: ['deviceId'],
  cuda: ['deviceId'],
  dml: ['deviceId'],
  coreml: ['coreMlFlags'],
  cpu: [],
  wasm: [],
};

export interface ProviderRequest {
  name: ProviderName;
  /**
   * Passed to onnxruntime as provider options, e.g. `{ deviceId: 0 }`. Keys onnxruntime-node would
   * ignore silently are refused (EARG): see README "GPU providers" for what TensorRT reads.
   */
  options?: Record<string, unknown>;
}

const PROVIDER_REQUEST_KEYS = ['name', 'options'] as const satisfies readonly (keyof ProviderRequest)[];
/** `never` while PROVIDER_REQUEST_KEYS lists every key (a compile error names a missing one). */
export type UnlistedProviderRequestKey = AssertNever<Exclude<keyof ProviderRequest, (typeof PROVIDER_REQUEST_KEYS)[number]>>;

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
  /**
   * false: onnxruntime's intra-op threads sleep between operators instead of spinning. For sessions
   * whose runs alternate with JS work (phase-2 training: the optimizer runs between steps) or that share
   * few cores: spinning threads take the cores the JS thread and other processes need. Default: spin.
   */
  spinning?: boolean;
  /**
   * false: onnxruntime plans no memory pattern (`enableMemPattern` off: one block for every intermediate
   * tensor of a run, laid out from the first runs); each tensor is allocated as it is needed, so tensors
   * that are never alive together share memory. For training graphs, whose backward pass keeps many
   * tensors: a phase-2 step through the whole of MobileNetV2 (batch 16, 3×224×224 input) held 1.62 GB
   * resident with the pattern and 0.93 GB without, no slower (measured on this 2-core machine). Default: on.
   */
  memoryPattern?: boolean;
  /** Called once per provider that was skipped. Default: `console.warn` with an `edgetune:` prefix. */
  onWarning?: (message: string) => void;
}

/** Every key of SessionOptions, for refusing a misspelt one (`{ thread: 1 }` would use every core, without a word). The type below fails to compile when a key is missing. */
export const SESSION_OPTION_KEYS = ['providers', 'threads', 'graphOptimizationLevel', 'optimizedModelFilePath', 'enableProfiling', 'profileFilePrefix', 'spinning', 'memoryPattern', 'onWarning'] as const satisfies readonly (keyof SessionOptions)[];
/** `never` while SESSION_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedSessionOption = AssertNever<Exclude<keyof SessionOptions, (typeof SESSION_OPTION_KEYS)[number]>>;

/** A Node session: the one session interface (runtime/core/session.ts) plus tensor metadata and profiling. */
export interface ModelSession extends Session {
  /**
   * The provider that serves this session (the first of `providers`); `remote` for a model served by
   * another process over the Open Inference Protocol (runtime/serve/client.ts).
   */
  readonly provider: ProviderName | 'remote';
  /** Every provider registered in this session, e.g. tensorrt, cuda, cpu (`remote` for a served model). */
  readonly providers: readonly (ProviderName | 'remote')[];
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  endProfiling(): string | undefined;
}

/** Providers that failed to load in this process (not tried again). */
export const providerMemory = new ProviderMemory();

let live = 0;
/** Sessions created and not yet disposed, across the process. */
export function liveSessionCount(): number {
  return live;
}

/**
 * `tensorrt,cuda,cpu` (names or aliases such as `trt`, `CUDAExecutionProvider`) or a list → checked
 * requests. Errors: EARG for an empty list, an unknown name, a provider option onnxruntime-node
 * would ignore, or a request key it does not take (`parseProviders: unknown option "providers[0].option"
 * (providers[0] options: …)`).
 */
export function parseProviders(spec: string | readonly (ProviderName | ProviderRequest)[]): ProviderRequest[] {
  const list = typeof spec === 'string' ? spec.split(',').map((s) => s.trim()).filter(Boolean) : [...spec];
  if (list.length === 0) throw invalidParameter('providers', `a list of ${KNOWN_PROVIDERS.join(', ')}`, spec);
  return list.map((p, i) => {
    if (typeof p === 'object') checkOptionKeys('parseProviders', p, PROVIDER_REQUEST_KEYS, `providers[${i}]`);
    const req: ProviderRequest = typeof p === 'string' ? { name: p as ProviderName } : p;
    const name = resolveProviderName(req.name, KNOWN_PROVIDERS);
    const readable = READABLE_OPTIONS[name];
    for (const key of Object.keys(req.options ?? {})) {
      if (readable && !readable.includes(key)) {
        throw invalidParameter(`${name} provider options`, readable.length ? `only ${readable.join(', ')} (what onnxruntime-node reads)` : 'none (onnxruntime-node reads none)', key);
      }
    }
    return { ...req, name };
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

/**
 * An onnxruntime-node session over `model` (a file path or the model's bytes), on the first of
 * `options.providers` that opens (default `['cpu', 'wasm']`; each one skipped is reported through
 * `onWarning`). It runs plain `{ type, data, dims }` tensors (`run(feeds, outputNames?)`) and names its
 * `provider`, `inputs` and `outputs` (name, element type, shape: a number per static dimension, the
 * symbolic name otherwise); `dispose()` frees it. Defaults: SessionOptions (threads: onnxruntime's
 * choice, graphOptimizationLevel 'all', spinning on). Errors: EARG for an option it does not take
 * (`createSession: unknown option "thread" (options: providers, threads, …)`), a bad `providers` list
 * (parseProviders) or `threads` that is not a positive integer; EMODEL naming the model when the file is
 * missing (with a hint for a registry id: resolveModel(id).path), is not ONNX, or no provider can open
 * it (each provider's reason said).
 */
export async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
  checkOptionKeys('createSession', options, SESSION_OPTION_KEYS);
  const requested = parseProviders(options.providers ?? ['cpu', 'wasm']);
  if (options.threads !== undefined) checkPositiveInteger('threads', options.threads);
  // onnxruntime says "not a valid ONNX model (Load model x failed. File doesn't exist)" for a missing file
  if (typeof model === 'string' && (await stat(model).catch((err: NodeJS.ErrnoException) => err.code)) === 'ENOENT') {
    const id = !looksLikeModelPath(model);
    throw new EdgetuneError('EMODEL', `${model}: model file not found${id ? ' (createSession opens a file path or bytes; for a registry id, resolveModel(id).path is its file)' : ''}`, { subject: model });
  }
  const warn = options.onWarning ?? ((m: string) => console.warn(`edgetune: ${m}`));
  const causes: string[] = [];
  let rest = requested.filter((req) => {
    const why = providerMemory.reason(req.name);
    if (why !== undefined) causes.push(`${req.name}: ${why} (remembered: not tried again in this process)`);
    return why === undefined;
  });
  while (rest.length) {
    const group = providerGroups(rest)[0]!;
    const backend = backendFor(group[0]!.name);
    if (!backend) {
      const why = 'not available in Node';
      providerMemory.remember(group[0]!.name, why);
      causes.push(`${group[0]!.name}: ${why}`);
      rest = rest.filter((r) => r !== group[0]);
      continue;
    }
    // onnxruntime-node drops a provider its build lacks with only a log line and runs the rest, so a
    // group would report a provider that never served: such providers are refused here, and remembered.
    if (backend === nodeBackend) {
      const built = (await listNativeProviders()).map((p) => p.name);
      const missing = built.length ? group.find((g) => !built.includes(g.name)) : undefined;
      if (missing) {
        const why = `not in this onnxruntime-node build (it has ${built.join(', ')})`;
        providerMemory.remember(missing.name, why);
        causes.push(`${missing.name}: ${why}`);
        rest = rest.filter((r) => r !== missing);
        continue;
      }
    }
    let handler: SessionHandler;
    try {
      handler = await backend.create(model, group, {
        intraOpNumThreads: options.threads,
        graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
        optimizedModelFilePath: options.optimizedModelFilePath,
        enableProfiling: options.enableProfiling,
        profileFilePrefix: options.profileFilePrefix,
        allowSpinning: options.spinning,
        enableMemPattern: options.memoryPattern,
        logSeverityLevel: requested.length > 1 ? 4 : 3,
      });
    } catch (err) {
      const culprit = culpritOf(group, messageOf(err));
      const why = explain(culprit.name, err);
      // A model that no provider can parse fails the same way everywhere: stop at the first.
      if (/protobuf parsing failed|Load model from .* failed|Invalid model|ModelProto/i.test(why)) {
        throw new EdgetuneError('EMODEL', `${typeof model === 'string' ? model : 'model'}: not a valid ONNX model (${modelLoadReason(messageOf(err))})`, {
          subject: typeof model === 'string' ? model : undefined,
          cause: err,
        });
      }
      providerMemory.remember(culprit.name, why);
      causes.push(`${culprit.name}: ${why}`);
      rest = rest.filter((r) => r !== culprit);
      continue;
    }
    const provider = group[0]!.name;
    for (const c of causes) warn(`execution provider ${c}; falling back to ${provider}`);
    live++;
    let disposed = false;
    return {
      provider,
      providers: group.map((g) => g.name),
      inputs: handler.inputs,
      outputs: handler.outputs,
      inputNames: handler.inputs.map((t) => t.name),
      outputNames: handler.outputs.map((t) => t.name),
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
        await handler.dispose();
      },
    };
  }
  throw new ProviderError(causes, typeof model === 'string' ? model : 'the model');
}
