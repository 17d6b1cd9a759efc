// The one module that imports onnxruntime. Two backends sit behind one small interface:
// onnxruntime-node (native: cpu, cuda, tensorrt, webgpu, …) and onnxruntime-web's WebAssembly build
// running in Node (the `wasm` provider), for platforms where the native binary is missing.
// Everything else in edgetune sees only TensorData and SessionHandler.

import type { TensorData, TensorType } from '../core/tensor.js';
import { providersFor } from '../core/providers.js';

export interface TensorInfo {
  name: string;
  type: TensorType | string;
  /** Symbolic dimensions stay strings (e.g. "batch_size"). */
  shape: (number | string)[];
}

export interface NativeSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the optimised graph here (used by tests that check int8 kernel fusion). */
  optimizedModelFilePath?: string;
  enableProfiling?: boolean;
  profileFilePrefix?: string;
  /** 0 verbose … 4 fatal. Provider probing uses 4 so failed providers do not spam stderr. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * false: the intra-op pool's threads sleep between parallel sections instead of spinning
   * (`session.intra_op.allow_spinning = 0`). Default onnxruntime's (spin).
   */
  allowSpinning?: boolean;
  /** false: no memory pattern (`enableMemPattern`): intermediate tensors are allocated as each is needed. Default onnxruntime's (on). */
  enableMemPattern?: boolean;
}

export interface SessionHandler {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  run(feeds: Record<string, TensorData>, fetches?: readonly string[]): Promise<Record<string, TensorData>>;
  /** Path of the profile written, when profiling was enabled. */
  endProfiling(): string | undefined;
  dispose(): Promise<void>;
}

/** One execution provider to register, with its onnxruntime provider options (e.g. `{ deviceId: 0 }`). */
export interface ProviderEntry {
  name: string;
  options?: Record<string, unknown>;
}

export interface Backend {
  readonly name: 'onnxruntime-node' | 'onnxruntime-web';
  /** Providers this backend may serve (from the provider table); availability is only known by creating a session. */
  readonly providers: readonly string[];
  /** One session with every provider of `providers` registered, in order (onnxruntime assigns each node to the first that supports it). */
  create(model: string | Uint8Array, providers: readonly ProviderEntry[], options: NativeSessionOptions): Promise<SessionHandler>;
}

type OrtModule = typeof import('onnxruntime-node');
type OrtTensor = import('onnxruntime-node').Tensor;
type OrtSession = import('onnxruntime-node').InferenceSession;

function toOrt(ort: Pick<OrtModule, 'Tensor'>, t: TensorData): OrtTensor {
  return new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims as number[]);
}

function fromOrt(t: OrtTensor): TensorData {
  return { type: t.type as TensorType, data: t.data as TensorData['data'], dims: [...t.dims] };
}

function infos(meta: readonly unknown[] | undefined, names: readonly string[]): TensorInfo[] {
  return names.map((name, i) => {
    const m = meta?.[i] as { name?: string; isTensor?: boolean; type?: string; shape?: (number | string)[] } | undefined;
    return { name, type: m?.isTensor ? (m.type ?? 'unknown') : 'unknown', shape: m?.isTensor ? [...(m.shape ?? [])] : [] };
  });
}

function wrap(session: OrtSession, ort: Pick<OrtModule, 'Tensor'>): SessionHandler {
  const s = session as unknown as {
    inputMetadata?: readonly unknown[];
    outputMetadata?: readonly unknown[];
    inputNames: readonly string[];
    outputNames: readonly string[];
    endProfiling(): void;
  };
  const inputs = infos(s.inputMetadata, s.inputNames);
  const outputs = infos(s.outputMetadata, s.outputNames);
  let profile: string | undefined;
  return {
    inputs,
    outputs,
    async run(feeds, fetches) {
      const ortFeeds: Record<string, OrtTensor> = {};
      for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(ort, v);
      const result = fetches ? await session.run(ortFeeds, fetches as string[]) : await session.run(ortFeeds);
      const out: Record<string, TensorData> = {};
      for (const [k, v] of Object.entries(result)) {
        out[k] = fromOrt(v as OrtTensor);
        (v as OrtTensor).dispose?.();
      }
      for (const t of Object.values(ortFeeds)) t.dispose?.();
      return out;
    },
    endProfiling() {
      const r = (s.endProfiling as () => unknown)();
      profile = typeof r === 'string' ? r : profile;
      return profile;
    },
    dispose: () => session.release(),
  };
}

/**
 * onnxruntime's session options for one session: `executionProviders` lists every provider in order
 * (a name, or `{ name, ...options }` when it has options), so TensorRT, CUDA and the CPU serve one
 * session together.
 */
export function buildSessionOptions(providers: readonly ProviderEntry[], o: NativeSessionOptions): Record<string, unknown> {
  const eps = providers.map((p) => (p.options && Object.keys(p.options).length ? { ...p.options, name: p.name } : p.name));
  const opts: Record<string, unknown> = { executionProviders: eps, logSeverityLevel: o.logSeverityLevel ?? 3 };
  if (o.intraOpNumThreads !== undefined) opts.intraOpNumThreads = o.intraOpNumThreads;
  if (o.interOpNumThreads !== undefined) opts.interOpNumThreads = o.interOpNumThreads;
  if (o.graphOptimizationLevel) opts.graphOptimizationLevel = o.graphOptimizationLevel;
  if (o.optimizedModelFilePath) opts.optimizedModelFilePath = o.optimizedModelFilePath;
  if (o.enableProfiling) {
    opts.enableProfiling = true;
    if (o.profileFilePrefix) opts.profileFilePrefix = o.profileFilePrefix;
  }
  if (o.enableMemPattern === false) opts.enableMemPattern = false;
  if (o.allowSpinning === false) opts.extra = { session: { intra_op: { allow_spinning: '0' } } };
  return opts;
}

/**
 * A readable reason when onnxruntime-node cannot load: its native binding (`onnxruntime_binding.node`)
 * or `libonnxruntime.so.1` is missing for this platform (a partial install, an unsupported platform, a
 * package copied without its bin/ folder). Other errors pass through unchanged.
 */
export function explainNativeLoadError(err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  if (!/onnxruntime_binding\.node|libonnxruntime|onnxruntime\.dll|\.dylib/i.test(msg)) return err instanceof Error ? err : new Error(msg);
  // Kept under session.ts's 300-character reason limit: it is shown once per skipped provider.
  return new Error(
    `onnxruntime-node has no loadable native binary for ${process.platform}/${process.arch} (${msg.split('\n')[0]!.slice(0, 120)}); ` +
      `reinstall with ONNXRUNTIME_NODE_INSTALL=skip npm install (README "Install"), or use --ep wasm`,
    { cause: err },
  );
}

let nodeModule: Promise<OrtModule> | undefined;
/** onnxruntime-node, loaded lazily so a missing native binary only disables the native providers. */
export function loadNodeRuntime(): Promise<OrtModule> {
  nodeModule ??= import('onnxruntime-node').then(
    (m) => {
      const ort = ((m as { default?: OrtModule }).default ?? m) as OrtModule;
      // The global log level is fixed when the first session creates onnxruntime's environment.
      // Provider fallbacks are reported by edgetune itself, so native logs stay quiet unless debugging.
      ort.env.logLevel = process.env.EDGETUNE_DEBUG ? 'warning' : 'fatal';
      return ort;
    },
    (err: unknown) => {
      throw explainNativeLoadError(err);
    },
  );
  return nodeModule;
}

type WebModule = typeof import('onnxruntime-web');
let webModule: Promise<WebModule> | undefined;
export function loadWebRuntime(): Promise<WebModule> {
  webModule ??= import('onnxruntime-web').then((m) => ((m as { default?: WebModule }).default ?? m) as WebModule);
  return webModule;
}

export const nodeBackend: Backend = {
  name: 'onnxruntime-node',
  providers: providersFor('node').map((p) => p.name),
  async create(model, providers, options) {
    const ort = await loadNodeRuntime();
    const session = await ort.InferenceSession.create(model as string, buildSessionOptions(providers, options) as object);
    return wrap(session, ort);
  },
};

export const webBackend: Backend = {
  name: 'onnxruntime-web',
  providers: providersFor('node-wasm').map((p) => p.name),
  async create(model, providers, options) {
    const ort = await loadWebRuntime();
    if (options.intraOpNumThreads) ort.env.wasm.numThreads = options.intraOpNumThreads;
    ort.env.logLevel = 'error';
    const opts = buildSessionOptions(providers, options);
    delete opts.optimizedModelFilePath;
    delete opts.extra;
    const session = await ort.InferenceSession.create(model as string, opts as object);
    return wrap(session as unknown as OrtSession, ort as unknown as Pick<OrtModule, 'Tensor'>);
  },
};

/** The backend that serves a provider name. */
export function backendFor(provider: string): Backend | undefined {
  if (webBackend.providers.includes(provider)) return webBackend;
  if (nodeBackend.providers.includes(provider)) return nodeBackend;
  return undefined;
}

/** Providers compiled into the installed onnxruntime-node ("bundled: false" ones need extra libraries). */
export async function listNativeProviders(): Promise<{ name: string; bundled: boolean }[]> {
  try {
    const ort = await loadNodeRuntime();
    const list = (ort as unknown as { listSupportedBackends?: () => { name: string; bundled: boolean }[] }).listSupportedBackends?.();
    return list ?? [{ name: 'cpu', bundled: true }];
  } catch {
    return [];
  }
}
