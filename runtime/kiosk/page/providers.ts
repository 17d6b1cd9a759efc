// Provider names, their order and the session interface the kiosk shares between the page and the
// inference worker (no onnxruntime import here, so the page bundle stays small).

import type { TensorData } from '../../core/tensor.js';

export const WEB_PROVIDERS = ['webnn', 'webnn-gpu', 'webnn-cpu', 'webgpu', 'wasm'] as const;
export type WebProvider = (typeof WEB_PROVIDERS)[number];
export const DEFAULT_ORDER: readonly WebProvider[] = ['webnn', 'webgpu', 'wasm'];

/** Shown to users: what each provider name means. */
export const PROVIDER_TITLES: Record<WebProvider, string> = {
  webnn: 'WebNN (NPU)',
  'webnn-gpu': 'WebNN (GPU)',
  'webnn-cpu': 'WebNN (CPU)',
  webgpu: 'WebGPU',
  wasm: 'WebAssembly (CPU)',
};

/** Parse `?ep=webgpu,wasm`. Unknown names are an error naming the value and the choices. */
export function parseOrder(spec: string | null | undefined): WebProvider[] {
  if (!spec) return [...DEFAULT_ORDER];
  const list = spec.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (!list.length) return [...DEFAULT_ORDER];
  for (const p of list) {
    if (!(WEB_PROVIDERS as readonly string[]).includes(p)) {
      throw new Error(`Unknown execution provider "${p}": expected one of ${WEB_PROVIDERS.join(', ')}`);
    }
  }
  return list as WebProvider[];
}

export interface WebSession {
  readonly provider: WebProvider;
  /** One line per provider tried and skipped: `webgpu: no WebGPU adapter …`. */
  readonly skipped: readonly string[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, TensorData>, fetches?: readonly string[]): Promise<Record<string, TensorData>>;
  dispose(): Promise<void>;
}

export class ProviderError extends Error {
  constructor(readonly causes: string[]) {
    super(`No execution provider could serve the model:\n${causes.map((c) => `  - ${c}`).join('\n')}`);
  }
}

