// A model served over the Open Inference Protocol (KServe v2 / Triton HTTP) as an edgetune session:
// `--model http://host:port/v2/models/<name>` in classify, eval and watch. The model's metadata and, when
// the server gives it (edgetune, or a Triton repository made by `edgetune export`), its card come from
// the server (GET /v2/models/<name> and …/config); preprocessing stays local and each session.run is one
// POST …/infer with the batch as the classifier made it (binary tensors by default, JSON on request).
// Requests time out (default 30 s) and are retried on connection failures and 502/503/504 (default 2
// more tries, backoff 0.25 s × 2^n); every error names the URL and says what happened. Node-only
// (fetch); the wire format is runtime/serve/oip.ts.
// The token: `Authorization: Bearer <token>` when one is given (default EDGETUNE_TOKEN).

import { EdgetuneError, messageOf } from '../core/errors.js';
import type { CardLayer, CardSource, ModelCard } from '../core/model-card.js';
import type { AssertNever } from '../core/options.js';
import { checkDescribeOptionKeys } from '../../models/describe.js';
import { sizeOf, type TensorData } from '../core/tensor.js';
import { cardFromSignature, type GraphSignature } from '../classify/describe.js';
import type { TensorInfo } from '../session/ort.js';
import type { ModelSession } from '../session/session.js';
import { loadLabelSet, loadRegistry } from '../../models/loader.js';
import { METADATA_KEY, parseModelInfo } from '../core/metadata.js';
import { embeddedLayer } from '../classify/describe.js';
import {
  HEADER_LENGTH,
  InferResponseSchema,
  ModelMetadataSchema,
  checkBody,
  datatypeOf,
  joinBody,
  jsonData,
  shapeFromMetadata,
  splitBody,
  tensorBytes,
  tensorFromBytes,
  tensorFromJson,
  tensorTypeOf,
  type ModelMetadata,
} from './oip.js';

export interface RemoteOptions {
  /** Per-request timeout, ms. Default 30000. */
  timeoutMs?: number;
  /** More tries after a connection failure, a timeout or a 502/503/504 answer. Default 2. */
  retries?: number;
  /** Send and ask for tensors in Triton's binary extension (true, default) or as JSON (false: any OIP server). */
  binary?: boolean;
  /** Bearer token sent with every request. Default process.env.EDGETUNE_TOKEN. */
  token?: string;
}

/** Every key of RemoteOptions, for refusing a misspelt one (`remote: { tokn }` would send no token, without a word). The type below fails to compile when a key is missing. */
export const REMOTE_OPTION_KEYS = ['timeoutMs', 'retries', 'binary', 'token'] as const satisfies readonly (keyof RemoteOptions)[];
/** `never` while REMOTE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedRemoteOption = AssertNever<Exclude<keyof RemoteOptions, (typeof REMOTE_OPTION_KEYS)[number]>>;

/** The options of connectRemoteModel: RemoteOptions, and the card fields the caller says (`overrides`, as describeModel's). */
export interface ConnectRemoteOptions extends RemoteOptions {
  overrides?: CardLayer;
  allowNonClassifier?: boolean;
}
const CONNECT_REMOTE_OPTION_KEYS = [...REMOTE_OPTION_KEYS, 'overrides', 'allowNonClassifier'] as const satisfies readonly (keyof ConnectRemoteOptions)[];
/** `never` while CONNECT_REMOTE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedConnectRemoteOption = AssertNever<Exclude<keyof ConnectRemoteOptions, (typeof CONNECT_REMOTE_OPTION_KEYS)[number]>>;

/** Whether a model reference is a served model's URL (http:// or https://). */
export function isModelUrl(ref: string): boolean {
  return /^https?:\/\//i.test(ref);
}

/**
 * `http://host:port[/prefix]/v2/models/<name>[/versions/<v>]` → the model's base URL (no trailing
 * slash), name and version. Errors: EARG naming the URL when it is not of that form.
 */
export function parseModelUrl(url: string): { base: string; name: string; version?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EdgetuneError('EARG', `${url}: not a URL`, { subject: url });
  }
  // fetch() refuses a URL with credentials, so they were dropped without a word; the URL is named without them
  if (u.username || u.password || u.searchParams.has('token')) {
    throw new EdgetuneError('EARG', `${u.protocol}//${u.host}${u.pathname}: a model URL carries no ${u.searchParams.has('token') ? 'token' : 'user or password'}; set EDGETUNE_TOKEN (sent as "Authorization: Bearer <token>")`, { subject: url });
  }
  const m = /^(.*)\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/?$/.exec(u.pathname);
  if (!m || u.search || u.hash) {
    throw new EdgetuneError('EARG', `${url}: expected a model URL like http://host:8000/v2/models/<name>[/versions/<v>]`, { subject: url });
  }
  const base = `${u.origin}${m[1]}/v2/models/${m[2]}${m[3] !== undefined ? `/versions/${m[3]}` : ''}`;
  return { base, name: decodeURIComponent(m[2]!), ...(m[3] !== undefined ? { version: decodeURIComponent(m[3]) } : {}) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A response's body with its headers. */
interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

function errorText(body: Uint8Array): string {
  const text = new TextDecoder().decode(body).trim();
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof e === 'string') return e;
  } catch {
    // not JSON: show the text
  }
  return text.length > 300 ? `${text.slice(0, 300)}…` : text || '(empty body)';
}

/** The cause of a failed fetch in words (undici hides it in `cause`). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  return messageOf(cause ?? err);
}

/**
 * One request with timeout and retries. Errors (EMODEL, naming the URL): the server's `{"error"}`
 * with its status; no answer within the timeout; a connection failure, each after the last try.
 */
async function request(url: string, init: { method: 'GET' | 'POST'; body?: Uint8Array; headers?: Record<string, string>; accept?: readonly number[] }, o: RemoteOptions): Promise<Answer> {
  const timeout = o.timeoutMs ?? 30000;
  const tries = 1 + (o.retries ?? 2);
  const token = (o.token ?? process.env.EDGETUNE_TOKEN) || undefined;
  const headers: Record<string, string> = { ...init.headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  let last = '';
  for (let i = 0; i < tries; i++) {
    if (i > 0) await sleep(250 * 2 ** (i - 1));
    let res: Response;
    try {
      res = await fetch(url, { method: init.method, headers, body: init.body as Uint8Array<ArrayBuffer> | undefined, signal: AbortSignal.timeout(timeout) });
    } catch (err) {
      const name = (err as Error).name;
      last = name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${timeout / 1000} s` : `cannot connect: ${networkReason(err)}`;
      continue;
    }
    let body: Uint8Array;
    try {
      body = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      last = `answer cut off: ${networkReason(err)}`;
      continue;
    }
    if (res.status === 502 || res.status === 503 || res.status === 504) {
      last = `server answered ${res.status}: ${errorText(body)}`;
      continue;
    }
    if (res.status !== 200 && !init.accept?.includes(res.status)) throw new EdgetuneError('EMODEL', `${init.method} ${url}: server answered ${res.status}: ${errorText(body)}`, { subject: url });
    return { status: res.status, headers: res.headers, body };
  }
  throw new EdgetuneError('EMODEL', `${init.method} ${url}: ${last}${tries > 1 ? ` (${tries} tries)` : ''}`, { subject: url });
}

function json(a: Answer, url: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(a.body));
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${url}: the answer is not JSON (${messageOf(err)})`, { subject: url });
  }
}

/**
 * The model card layer a server's model configuration carries: `parameters["edgetune.model"]`, the
 * embedded description (EmbeddedModelInfo JSON) that `edgetune serve` and `edgetune export --format
 * triton` write; undefined when it has none (a model put in Triton by other means). Errors: EMODEL
 * naming the URL and the field when the parameter is there but breaks the contract.
 */
export function cardLayerFromConfig(config: unknown, url: string): CardLayer | undefined {
  const params = (config as { parameters?: Record<string, { string_value?: unknown }> } | undefined)?.parameters;
  const raw = params?.[METADATA_KEY]?.string_value;
  if (raw === undefined) return undefined;
  const info = parseModelInfo({ [METADATA_KEY]: String(raw) }, `${url}/config parameters`);
  return info ? embeddedLayer(info) : undefined;
}

/** Triton's max_batch_size from a model configuration (undefined when absent or not a number). */
function maxBatchOf(config: unknown): number | undefined {
  const n = Number((config as { max_batch_size?: unknown } | undefined)?.max_batch_size);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/**
 * The signature edgetune sees: the server's tensors, an unbatched image input ([3,224,224], Triton
 * max_batch_size 0) given a batch axis of 1 so the card reads it as [1,3,224,224].
 */
export function signatureOf(meta: ModelMetadata): GraphSignature {
  const entry = (t: { name: string; datatype: string; shape: number[] }, image: boolean): TensorInfo => {
    const shape = shapeFromMetadata(t.shape);
    return { name: t.name, type: tensorTypeOf(t.datatype) ?? t.datatype.toLowerCase(), shape: image && shape.length === 3 ? [1, ...shape] : shape };
  };
  return { inputs: meta.inputs.map((t) => entry(t, true)), outputs: meta.outputs.map((t) => entry(t, false)) };
}

export interface RemoteModel {
  url: string;
  metadata: ModelMetadata;
  /** The server's model configuration (Triton's extension), when it answers one. */
  config?: unknown;
  card: ModelCard;
  session: ModelSession;
  /**
   * Images per request: the config's max_batch_size when it is > 0; else 64 when the metadata's first
   * input dimension is dynamic (no config: a KServe server), else 1.
   */
  maxBatch: number;
}

/**
 * Connect to a served model: read its metadata and configuration, describe it (the served card,
 * else the assumed ImageNet habits, under `overrides`), and return a session whose run() is one
 * inference request per call. Errors: EARG for a URL of the wrong form or an option it does not take
 * (`connectRemoteModel: unknown option "tokn" (options: timeoutMs, …)`); EMODEL naming the URL when the
 * server cannot be reached, answers an error, or the model is not an image classifier.
 */
export async function connectRemoteModel(url: string, o: ConnectRemoteOptions = {}): Promise<RemoteModel> {
  checkDescribeOptionKeys('connectRemoteModel', o, CONNECT_REMOTE_OPTION_KEYS);
  const { base, name } = parseModelUrl(url);
  const metadata = checkOrThrow(json(await request(base, { method: 'GET' }, o), base), base);
  // Servers without Triton's model configuration extension (KServe's others) answer 404 / 400 / 501:
  // then the card is assumed. Any other failure is an error (never a silently assumed card).
  const answer = await request(`${base}/config`, { method: 'GET', accept: [400, 404, 405, 501] }, o);
  const config: unknown = answer.status === 200 ? json(answer, `${base}/config`) : undefined;
  const served = cardLayerFromConfig(config, base);
  const signature = signatureOf(metadata);
  const layers: Partial<Record<CardSource, CardLayer>> = {};
  if (o.overrides) layers.flags = o.overrides;
  if (served) layers.embedded = served;
  const imagenet = loadRegistry().labelSets.imagenet!;
  const labels = served ? undefined : await loadLabelSet('imagenet', imagenet);
  const card = cardFromSignature(signature, {
    id: name,
    name: base,
    layers,
    allowNonClassifier: o.allowNonClassifier,
    assumedLabels: (n) => (labels && (n === 1000 || n === 1001) ? { labels, labelOffset: n - 1000, note: `ImageNet labels${n === 1001 ? ' with a background class at index 0' : ''}` } : undefined),
  });
  const first = signature.inputs.find((i) => i.name === card.inputName)?.shape[0];
  const declared = maxBatchOf(config);
  const maxBatch = declared !== undefined ? (declared > 0 ? declared : 1) : typeof first === 'number' && first > 0 ? first : 64;
  return { url: base, metadata, ...(config !== undefined ? { config } : {}), card, session: remoteSession(base, metadata, signature, o), maxBatch };
}

function checkOrThrow(json: unknown, url: string): ModelMetadata {
  try {
    return checkBody(ModelMetadataSchema, json, 'model metadata');
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${url}: ${messageOf(err)}`, { subject: url });
  }
}

/** The dims to send a tensor with: its own, or the server's when the server's input has no batch axis. */
function wireDims(t: TensorData, server: readonly number[], name: string, url: string): number[] {
  if (server.length === t.dims.length) return [...t.dims];
  if (server.every((d) => d >= 0) && sizeOf(server) === sizeOf(t.dims)) return [...server];
  throw new EdgetuneError('EMODEL', `${url}: input "${name}" is [${t.dims.join(',')}] here but [${server.join(',')}] on the server`, { subject: url });
}

/** A ModelSession over POST <base>/infer. */
export function remoteSession(base: string, metadata: ModelMetadata, signature: GraphSignature, o: RemoteOptions = {}): ModelSession {
  const binary = o.binary ?? true;
  let disposed = false;
  return {
    provider: 'remote',
    providers: ['remote'],
    inputs: signature.inputs,
    outputs: signature.outputs,
    inputNames: signature.inputs.map((t) => t.name),
    outputNames: signature.outputs.map((t) => t.name),
    skipped: [],
    endProfiling: () => undefined,
    async dispose() {
      disposed = true;
    },
    async run(feeds, fetches) {
      if (disposed) throw new EdgetuneError('EARG', 'session was disposed');
      const parts: Uint8Array[] = [];
      const inputs = Object.entries(feeds).map(([name, t]) => {
        const server = metadata.inputs.find((i) => i.name === name)?.shape ?? [...t.dims];
        const shape = wireDims(t, server, name, base);
        const datatype = datatypeOf(t.type)!;
        if (!binary) return { name, shape, datatype, data: jsonData(t) };
        const bytes = tensorBytes(t);
        parts.push(bytes);
        return { name, shape, datatype, parameters: { binary_data_size: bytes.byteLength } };
      });
      const names = fetches ?? metadata.outputs.map((x) => x.name);
      const outputs = names.map((name) => ({ name, ...(binary ? { parameters: { binary_data: true } } : {}) }));
      const header = { inputs, outputs };
      let answer: Answer;
      if (binary) {
        const { body, headerLength } = joinBody(header, parts);
        answer = await request(`${base}/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) } }, o);
      } else {
        answer = await request(`${base}/infer`, { method: 'POST', body: new TextEncoder().encode(JSON.stringify(header)), headers: { 'Content-Type': 'application/json' } }, o);
      }
      return decodeResponse(answer.body, answer.headers.get(HEADER_LENGTH) ?? undefined, `${base}/infer`);
    },
  };
}

/** An inference response body → tensors by output name. Errors: EMODEL naming the URL for a malformed answer. */
export function decodeResponse(body: Uint8Array, headerLength: string | undefined, url: string): Record<string, TensorData> {
  try {
    const { json, binary } = splitBody(body, headerLength, 'response');
    const response = checkBody(InferResponseSchema, json, 'inference response');
    const out: Record<string, TensorData> = {};
    let offset = 0;
    for (const r of response.outputs) {
      const type = tensorTypeOf(r.datatype);
      const size = r.parameters?.binary_data_size;
      if (r.datatype === 'BYTES') {
        // Classification strings are not tensors edgetune reads; skip past their bytes.
        if (typeof size === 'number') offset += size;
        continue;
      }
      if (!type) throw new Error(`output "${r.name}": datatype ${r.datatype} is not one edgetune reads`);
      if (typeof size === 'number') {
        out[r.name] = tensorFromBytes(r.name, type, r.shape, binary.subarray(offset, offset + size));
        offset += size;
      } else if (r.data) out[r.name] = tensorFromJson(r.name, type, r.shape, r.data);
      else throw new Error(`output "${r.name}" has neither data nor binary_data_size`);
    }
    return out;
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${url}: malformed inference response: ${messageOf(err)}`, { subject: url });
  }
}
