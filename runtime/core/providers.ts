// The one table of execution providers: every name edgetune accepts (Node and browser), its aliases,
// where it runs, the order fallback prefers, which providers register together in one session, and the
// per-process memory of providers that failed to load. Browser-safe (no onnxruntime import): the Node
// sessions (runtime/session/session.ts), the Node backends (runtime/session/ort.ts), the kiosk command
// and the kiosk page (runtime/kiosk/page/providers.ts) all read it.

import { EdgetuneError } from './errors.js';

/** Where a provider runs: onnxruntime-node (`node`), onnxruntime-web's wasm build in Node (`node-wasm`), a browser (`browser`). */
export type ProviderRuntime = 'node' | 'node-wasm' | 'browser';

export interface ProviderInfo {
  /** edgetune's name (what --ep and ?ep= take). */
  readonly name: string;
  /** Shown to users. */
  readonly title: string;
  /** Other spellings accepted (case-insensitive), e.g. onnxruntime's `CUDAExecutionProvider`. */
  readonly aliases: readonly string[];
  readonly runtimes: readonly ProviderRuntime[];
  /**
   * Providers of one family are registered together in ONE session, in the order asked for, so that
   * nodes the first cannot run fall to the next one on the same device instead of to the CPU (TensorRT
   * then CUDA). `cpu` joins any native group as its last member (onnxruntime's own fallback).
   */
  readonly family: string;
  /** In the browser's default order (`?ep=` absent). */
  readonly browserDefault?: boolean;
}

/** Every provider, in the order fallback prefers (fastest first). */
export const PROVIDER_TABLE = [
  { name: 'tensorrt', title: 'TensorRT (NVIDIA GPU)', aliases: ['trt', 'TensorrtExecutionProvider'], runtimes: ['node'], family: 'nvidia' },
  { name: 'cuda', title: 'CUDA (NVIDIA GPU)', aliases: ['CUDAExecutionProvider'], runtimes: ['node'], family: 'nvidia' },
  { name: 'webnn', title: 'WebNN (NPU)', aliases: ['webnn-npu'], runtimes: ['browser'], family: 'webnn', browserDefault: true },
  { name: 'webnn-gpu', title: 'WebNN (GPU)', aliases: [], runtimes: ['browser'], family: 'webnn' },
  { name: 'webnn-cpu', title: 'WebNN (CPU)', aliases: [], runtimes: ['browser'], family: 'webnn' },
  { name: 'webgpu', title: 'WebGPU', aliases: ['WebGpuExecutionProvider', 'JsExecutionProvider'], runtimes: ['node', 'browser'], family: 'webgpu', browserDefault: true },
  { name: 'coreml', title: 'Core ML (Apple)', aliases: ['CoreMLExecutionProvider'], runtimes: ['node'], family: 'coreml' },
  { name: 'dml', title: 'DirectML (Windows GPU)', aliases: ['directml', 'DmlExecutionProvider'], runtimes: ['node'], family: 'dml' },
  { name: 'cpu', title: 'CPU', aliases: ['CPUExecutionProvider'], runtimes: ['node'], family: 'cpu' },
  { name: 'wasm', title: 'WebAssembly (CPU)', aliases: ['webassembly'], runtimes: ['node-wasm', 'browser'], family: 'wasm', browserDefault: true },
] as const satisfies readonly ProviderInfo[];

export type AnyProviderName = (typeof PROVIDER_TABLE)[number]['name'];

type ServedIn<Row, R extends ProviderRuntime> = Row extends { name: infer N; runtimes: readonly (infer X)[] } ? ([Extract<X, R>] extends [never] ? never : N) : never;
/** The names one runtime serves, as a type: `ProviderNameIn<'browser'>` is webnn | webnn-gpu | webnn-cpu | webgpu | wasm. */
export type ProviderNameIn<R extends ProviderRuntime> = ServedIn<(typeof PROVIDER_TABLE)[number], R>;

/** The names the given runtimes serve, in preference order. */
export function providerNamesIn<R extends ProviderRuntime>(...runtimes: R[]): ProviderNameIn<R>[] {
  return providersFor(...runtimes).map((p) => p.name as ProviderNameIn<R>);
}

/** The table's rows for one runtime, in preference order. */
export function providersFor(...runtimes: ProviderRuntime[]): ProviderInfo[] {
  return PROVIDER_TABLE.filter((p) => p.runtimes.some((r) => runtimes.includes(r)));
}

/** The table row of a name or alias (case-insensitive), undefined when unknown. */
export function providerInfo(name: string): ProviderInfo | undefined {
  const n = name.trim().toLowerCase();
  return PROVIDER_TABLE.find((p) => p.name === n || p.aliases.some((a) => a.toLowerCase() === n));
}

/**
 * A provider name or alias → its edgetune name, checked against `allowed` (the names one runtime
 * serves). Errors: EARG `Unknown execution provider "npu": expected one of …` (`where` adds e.g.
 * " for the kiosk").
 */
export function resolveProviderName<T extends string>(name: string, allowed: readonly T[], where = ''): T {
  const hit = providerInfo(name)?.name;
  if (hit === undefined || !(allowed as readonly string[]).includes(hit)) {
    throw new EdgetuneError('EARG', `Unknown execution provider "${name}"${where}: expected one of ${allowed.join(', ')}`, { subject: name });
  }
  return hit as T;
}

/**
 * Split an ordered provider list into the sessions to try, in order: consecutive providers of one
 * family form one group (one session with all of them registered), and `cpu` right after a native
 * group joins it. `['tensorrt', 'cuda', 'cpu', 'wasm']` → `[['tensorrt', 'cuda', 'cpu'], ['wasm']]`;
 * `['tensorrt', 'cuda', 'webgpu', 'cpu']` → `[['tensorrt', 'cuda'], ['webgpu', 'cpu']]`.
 */
export function providerGroups<T extends { name: string }>(list: readonly T[]): T[][] {
  const groups: T[][] = [];
  for (const p of list) {
    const last = groups[groups.length - 1];
    const head = last?.[0];
    const fam = providerInfo(p.name)?.family;
    const lastFam = head ? providerInfo(head.name)?.family : undefined;
    const tail = last?.[last.length - 1];
    const joins =
      last !== undefined &&
      tail?.name !== 'cpu' &&
      ((fam !== undefined && fam === lastFam && fam !== 'cpu' && fam !== 'wasm') || (p.name === 'cpu' && lastFam !== 'wasm' && lastFam !== 'cpu'));
    if (joins) last.push(p);
    else groups.push([p]);
  }
  return groups;
}

/** How onnxruntime names a provider in its messages (to tell which member of a group failed). */
const MESSAGE_PATTERNS: Record<string, RegExp> = {
  tensorrt: /tensorrt/i,
  cuda: /\bcuda\b|_cuda\b|cuda_|cudnn|cublas/i,
  webgpu: /webgpu|dawn/i,
  coreml: /coreml/i,
  dml: /\bdml\b|directml/i,
  webnn: /webnn/i,
  cpu: /\bcpu\b/i,
  wasm: /wasm/i,
};

/** The member of a group a session error is about: the first one the message names, else the first. */
export function culpritOf<T extends { name: string }>(group: readonly T[], message: string): T {
  return group.find((p) => MESSAGE_PATTERNS[p.name.replace(/-.*$/, '')]?.test(message)) ?? group[0]!;
}

/**
 * Whether a provider's failure says it cannot load at all on this machine (missing library, not in this
 * build, no device or adapter), as opposed to failing on one model. Those are remembered per process.
 */
export function isLoadFailure(message: string): boolean {
  return /Failed to load shared library|cannot open shared object|backend not found|is unsupported|not (available|supported) in this (build|browser)|no available backend|no WebGPU adapter|navigator\.\w+ is missing|no CUDA-capable device|CUDA driver version is insufficient|not available in Node|no loadable native binary/i.test(
    message,
  );
}

/**
 * Providers that failed to load in this process, with their reason: a session does not try them again
 * (as onnxruntime-common's resolveBackend remembers a backend whose init failed). One memory per process
 * (per worker in the browser).
 */
export class ProviderMemory {
  private readonly failed = new Map<string, string>();
  /** The remembered reason `name` cannot load, or undefined. */
  reason(name: string): string | undefined {
    return this.failed.get(name);
  }
  /** Remember `why` for `name` when it is a load failure (isLoadFailure); returns whether it was remembered. */
  remember(name: string, why: string): boolean {
    if (!isLoadFailure(why)) return false;
    if (!this.failed.has(name)) this.failed.set(name, why);
    return true;
  }
  /** Every remembered failure, `name: reason`. */
  entries(): [string, string][] {
    return [...this.failed];
  }
  /** Forget everything (after installing a provider's libraries, and in tests). */
  clear(): void {
    this.failed.clear();
  }
}

/** The one error when no provider could serve: every provider tried and its cause, one a line. */
export class ProviderError extends EdgetuneError {
  constructor(
    readonly causes: readonly string[],
    subject = 'the model',
  ) {
    super('EPROVIDER', `No execution provider could serve ${subject}:\n${causes.map((c) => `  - ${c}`).join('\n')}`);
    this.name = 'ProviderError';
  }
}
