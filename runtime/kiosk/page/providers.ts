// The kiosk page's view of the provider table (runtime/core/providers.ts): the browser's names, their
// default order and titles, and the session interface the page shares with its inference worker (no
// onnxruntime import here, so the page bundle stays small).

import { PROVIDER_TABLE, ProviderError, providerNamesIn, resolveProviderName, type ProviderNameIn } from '../../core/providers.js';
import type { Session } from '../../core/session.js';

export const WEB_PROVIDERS: readonly WebProvider[] = providerNamesIn('browser');
export type WebProvider = ProviderNameIn<'browser'>;
export const DEFAULT_ORDER: readonly WebProvider[] = PROVIDER_TABLE.filter((p) => 'browserDefault' in p && p.browserDefault).map((p) => p.name as WebProvider);

/** Shown to users: what each provider name means. */
export const PROVIDER_TITLES = Object.fromEntries(PROVIDER_TABLE.map((p) => [p.name, p.title])) as Record<WebProvider, string>;

/** Parse `?ep=webgpu,wasm` (names or aliases). Unknown names are an error naming the value and the choices. */
export function parseOrder(spec: string | null | undefined): WebProvider[] {
  if (!spec) return [...DEFAULT_ORDER];
  const list = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) return [...DEFAULT_ORDER];
  return list.map((p) => resolveProviderName(p, WEB_PROVIDERS));
}

/** A page session: the one session interface, served by one browser provider. */
export interface WebSession extends Session {
  readonly provider: WebProvider;
  readonly providers: readonly WebProvider[];
}

export { ProviderError };
