// The Open Inference Protocol routes (KServe v2 / Triton HTTP) over edgetune classifiers, mounted by
// `edgetune serve` (runtime/serve/server.ts), `watch --serve` (runtime/stream/serve.ts) and `kiosk`
// (runtime/kiosk/server.ts) after their own request guard (Host check, token rules):
//   GET  /v2                                  server metadata (name, version, extensions)
//   GET  /v2/health/live                      200 while the process answers
//   GET  /v2/health/ready                     200 when every served model is loaded, else 503
//   GET  /v2/models/<name>[/versions/<v>]     model metadata (inputs, outputs, platform, versions)
//   GET  …/ready                              200 {"name","ready":true} when the model is loaded
//   GET  …/config                             Triton's model configuration as JSON, with the model
//                                             card as parameters["edgetune.model"] (to preprocess), as
//                                             `edgetune export --format triton` writes it
//   POST …/infer                              inference: JSON tensors, Triton's binary tensor data
//                                             extension, the classification extension; a body
//                                             compressed with gzip / deflate (Content-Encoding), as
//                                             Triton's clients send on request
// Errors are the protocol's `{"error": "…"}`: 400 bad request, 404 unknown model/version/route,
// 405 wrong method, 413 body over the limit (inflated too), 415 another Content-Encoding, 503 model not ready, 500 inference failure. Each model
// serves one version: "1", a repository entry's highest (serveAsEntry), or under `watch --serve` the
// version of the model swapped in last (serveAsVersion); another answers 404 naming it. Inference changes nothing, so it follows the read rules of the server that
// mounts it (on a non-loopback bind with EDGETUNE_TOKEN, every request needs the token).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync, inflateSync } from 'node:zlib';
import type { Classifier } from '../classify/classifier.js';
import { invalidParameter, messageOf } from '../core/errors.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';
import type { ModelCard } from '../core/model-card.js';
import type { TensorData, TensorType } from '../core/tensor.js';
import { discardRest, readBody, TooLarge } from '../io/http-body.js';
import type { TensorInfo } from '../session/ort.js';
import { modelInfoOfCard } from '../core/metadata.js';
import { checkMaxBatchSize, DEFAULT_MAX_BATCH_SIZE, fixedBatchEntry, TRITON_CARD_PARAMETER, TRITON_SHA256_PARAMETER, tritonModelConfig, type TritonTensor } from '../fleet/triton.js';
import { modelFileSha256 } from '../stream/metrics.js';
import {
  HEADER_LENGTH,
  OipError,
  bytesElements,
  checkBody,
  classify,
  countParameter,
  DATATYPE_BYTES,
  datatypeOf,
  InferRequestSchema,
  isTrue,
  joinBody,
  jsonData,
  metadataShape,
  modelName,
  splitBody,
  statusOf,
  tensorBytes,
  tensorFromBytes,
  tensorFromJson,
  tensorTypeOf,
  type InferRequest,
} from './oip.js';

/** The server's name and version in `GET /v2`. */
export const SERVER_NAME = 'edgetune';
export const SERVER_VERSION = '0.1.0';
/** The version every served model answers to. */
export const MODEL_VERSION = '1';
/** The status a request is counted under when its client closed the connection before the answer (nginx's 499). */
export const CLIENT_CLOSED = 499;
/** Default largest inference body, bytes (a batch of 64 fp32 224×224 images as JSON fits). */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024;

/** One finished inference request, for metrics. Times in seconds. */
export interface InferEvent {
  model: string;
  status: number;
  /** Body read + parse + tensor decode. */
  decodeSeconds: number;
  /** session.run. */
  runSeconds: number;
  /** Response encode + write. */
  encodeSeconds: number;
}

export interface OipRoutesOptions {
  /** The classifiers served now (called per request: `watch` swaps its model). */
  models: () => readonly Classifier[];
  /** Largest inference body, bytes. Default DEFAULT_MAX_BODY_BYTES; 413 above it. */
  maxBodyBytes?: number;
  /**
   * Triton's max_batch_size for models that batch (every input and output with a dynamic first
   * dimension): said in /config and enforced on /infer (400 above it). Default 8, as the export's; 0
   * serves them without batching (/config gives full dims, as `export --max-batch-size 0` writes).
   * Errors: EARG when not an integer >= 0.
   */
  maxBatchSize?: number;
  /** Refused and failed requests. */
  log?: (line: string) => void;
  /** Called after every inference request (metrics). */
  onInfer?: (e: InferEvent) => void;
}

/** Every key of OipRoutesOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const OIP_ROUTES_OPTION_KEYS = ['models', 'maxBodyBytes', 'maxBatchSize', 'log', 'onInfer'] as const satisfies readonly (keyof OipRoutesOptions)[];
/** `never` while OIP_ROUTES_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedOipRoutesOption = AssertNever<Exclude<keyof OipRoutesOptions, (typeof OIP_ROUTES_OPTION_KEYS)[number]>>;

export interface OipRoutes {
  /** Answers `req` when its path is under /v2 (true), else leaves it to the caller (false). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

/** A served classifier's name: the one serveAsVersion gave it, else `modelName` of its registry id, or of its file. */
export function servedName(clf: Classifier): string {
  const as = servedEntries.get(clf)?.name;
  if (as !== undefined) return as;
  // a plain ONNX file's card id is its base name: its path says more (a Triton entry's <name>/<version>/model.onnx)
  const file = clf.provider !== 'remote' && clf.card.id === clf.modelPath.split(/[\\/]/).pop() ? clf.modelPath : clf.card.id;
  return modelName(file, clf.entry?.id);
}

const loadedSha = new WeakMap<Classifier, Promise<string>>();
/**
 * The sha256 (hex) of a served classifier's model file, hashed once per classifier (the first call;
 * `serveModels` and `watch --serve` call it when the model is loaded): /config's `edgetune.sha256` and
 * `edgetune_model_info{sha256}` then name the model being served even after its file is replaced on
 * disk (they hashed the file as it was at each request, so a re-exported file showed its new hash
 * while the old model kept answering). '' for a remote model or a file that cannot be read.
 */
export function servedSha256(clf: Classifier): Promise<string> {
  let sha = loadedSha.get(clf);
  if (!sha) loadedSha.set(clf, (sha = clf.provider === 'remote' ? Promise.resolve('') : modelFileSha256(clf.modelPath)));
  return sha;
}

const servedEntries = new WeakMap<Classifier, { name?: string; version: string; maxBatchSize?: number }>();
/**
 * Serve `clf` as the Triton repository entry it was loaded from (`serve REPO`: fleet/triton.ts
 * tritonRepositoryModels): its metadata, `/versions/<v>` routes and infer responses name the entry's
 * version (the highest, the one Triton serves), and its `/config` and batch limit take the entry's
 * config.pbtxt `max_batch_size` (not the server's --max-batch-size). Without it a model answers as
 * version MODEL_VERSION with the server's max_batch_size.
 */
export function serveAsEntry(clf: Classifier, entry: { version: number | string; maxBatchSize: number }): void {
  servedEntries.set(clf, { version: String(entry.version), maxBatchSize: entry.maxBatchSize });
}

/**
 * Serve `clf` under the model name `name` as version `version` (`watch --serve`: one stable name, a new
 * version for each model swapped in, as a Triton repository entry gains a version directory), instead
 * of the name of its file (servedName) and MODEL_VERSION. Its /config keeps the server's max_batch_size.
 * `name` is used as given: check it with checkModelName first.
 */
export function serveAsVersion(clf: Classifier, name: string, version: number | string): void {
  servedEntries.set(clf, { name, version: String(version) });
}

/**
 * `name` when it can be a served model's name (`/v2/models/<name>`, a Triton repository entry): letters,
 * digits, `_`, `.` and `-`, not starting with `.` or `-` (the names modelName makes). Errors: EARG naming
 * `option` and the name otherwise.
 */
export function checkModelName(name: string, option = '--model-name'): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) throw invalidParameter(option, 'model name of letters, digits, "_", "." and "-" (not starting with "." or "-")', name);
  return name;
}

/** The version a served classifier answers to: its repository entry's (serveAsEntry) or serveAsVersion's, else MODEL_VERSION. */
export function servedVersion(clf: Classifier): string {
  return servedEntries.get(clf)?.version ?? MODEL_VERSION;
}

/** Whether every input's and output's first dimension is dynamic (then the model batches: Triton max_batch_size > 0). */
export function isBatching(sig: Pick<Classifier['signature'], 'inputs' | 'outputs'>): boolean {
  return fixedBatchEntry(sig.inputs, sig.outputs) === undefined;
}

function metadataTensor(t: TensorInfo) {
  return { name: t.name, datatype: datatypeOf(String(t.type)) ?? String(t.type).toUpperCase(), shape: metadataShape(t.shape) };
}

/** `$metadata_model_response` of a served classifier. */
export function modelMetadata(clf: Classifier) {
  const sig = clf.signature;
  return { name: servedName(clf), versions: [servedVersion(clf)], platform: 'onnxruntime_onnx', inputs: sig.inputs.map(metadataTensor), outputs: sig.outputs.map(metadataTensor) };
}

/**
 * Triton's model configuration (model_config.proto's ModelConfig as JSON, the way Triton answers it:
 * field names as in the .proto, enums by name, int64 dims as JSON numbers — Triton's ModelConfigToJson
 * turns proto3's strings back into numbers, and its clients read them as such) of a served classifier:
 * the configuration `edgetune export --format triton` writes, built by the same function
 * (runtime/fleet/triton.ts tritonModelConfig: batching, dims, data types, format, label_filename) with
 * max_batch_size `maxBatch` for a model that batches (0: served without batching, full dims; a
 * repository entry's own, serveAsEntry), plus
 * Triton's defaults for backend and version policy, and the card (EmbeddedModelInfo JSON) and the
 * model file's sha256 as parameters.
 */
export async function modelConfig(clf: Classifier, maxBatchIn = DEFAULT_MAX_BATCH_SIZE) {
  const sig = clf.signature;
  const maxBatch = servedEntries.get(clf)?.maxBatchSize ?? maxBatchIn;
  const name = servedName(clf);
  const c = tritonModelConfig({ name, inputs: sig.inputs, outputs: sig.outputs, card: clf.card }, maxBatch, clf.modelPath);
  const tensor = (t: TritonTensor) => ({ name: t.name, data_type: t.dataType, ...(t.format ? { format: t.format } : {}), dims: t.dims, ...(t.labelFilename ? { label_filename: t.labelFilename } : {}) });
  const sha256 = await servedSha256(clf);
  return {
    name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: c.maxBatchSize,
    input: c.inputs.map(tensor),
    output: c.outputs.map(tensor),
    parameters: {
      [TRITON_CARD_PARAMETER]: { string_value: JSON.stringify(modelInfoOfCard(clf.card, 'edgetune serve')) },
      ...(sha256 ? { [TRITON_SHA256_PARAMETER]: { string_value: sha256 } } : {}),
    },
  };
}

function sendJson(res: ServerResponse, status: number, obj: unknown, extra: Record<string, string> = {}): void {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...extra });
  res.end(body);
}

/** The label of output index `i` under the card's rule (index < labelOffset: "background"). */
function labelOf(card: ModelCard, i: number): string | undefined {
  if (i < card.labelOffset) return 'background';
  return card.labels[i - card.labelOffset];
}

/**
 * The request a raw binary body stands for (extension_binary_data.md "Raw Binary Request": no JSON
 * header; a model with one input, at most one variable dimension, which the byte count gives; a
 * batching model gets batch 1), with every output returned as binary. Errors: OipError 400 otherwise.
 */
export function rawRequest(inputs: readonly TensorInfo[], bytes: number): InferRequest {
  if (inputs.length !== 1) throw new OipError(400, `a raw binary request (Inference-Header-Content-Length: 0) needs a model with one input; this one has ${inputs.length}`);
  const info = inputs[0]!;
  const datatype = datatypeOf(String(info.type));
  if (!datatype) throw new OipError(400, `input "${info.name}" is ${info.type}: not a type a raw binary request can carry`);
  const size = DATATYPE_BYTES[datatype];
  const shape = info.shape.map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 && info.shape.length > 1 ? 1 : -1));
  const free = shape.filter((d) => d < 0).length;
  const known = shape.reduce((a, d) => (d > 0 ? a * d : a), 1);
  if (free > 1) throw new OipError(400, `a raw binary request needs at most one variable dimension besides the batch; input "${info.name}" is [${metadataShape(info.shape).join(',')}]`);
  const n = bytes / size / known;
  if (!Number.isInteger(n) || (free === 0 && n !== 1)) throw new OipError(400, `input "${info.name}": ${bytes} bytes of raw binary data do not fill [${metadataShape(info.shape).join(',')}] of ${datatype}`);
  return { inputs: [{ name: info.name, datatype, shape: shape.map((d) => (d < 0 ? n : d)), parameters: { binary_data_size: bytes } }], parameters: { binary_data_output: true } };
}

/** Request inputs → feeds, checked against the model's inputs (names, datatypes, shapes, sizes). */
export function decodeInputs(request: InferRequest, binary: Uint8Array, inputs: readonly TensorInfo[]): Record<string, TensorData> {
  const feeds: Record<string, TensorData> = {};
  const names = inputs.map((i) => `"${i.name}"`).join(', ');
  let offset = 0;
  const seen = new Set<string>();
  for (const inp of request.inputs) {
    const info = inputs.find((i) => i.name === inp.name);
    if (!info) throw new OipError(400, `unknown input "${inp.name}": the model's inputs are ${names}`);
    if (seen.has(inp.name)) throw new OipError(400, `input "${inp.name}" given twice`);
    seen.add(inp.name);
    const want = datatypeOf(String(info.type));
    const type = tensorTypeOf(inp.datatype);
    if (!want || inp.datatype !== want || !type) throw new OipError(400, `input "${inp.name}": datatype ${inp.datatype} does not match the model's ${want ?? info.type}`);
    const shape = info.shape;
    const ok = inp.shape.length === shape.length && inp.shape.every((d, k) => !(typeof shape[k] === 'number' && shape[k]! > 0) || d === shape[k]);
    if (!ok) throw new OipError(400, `input "${inp.name}": shape [${inp.shape.join(',')}] does not match the model's [${metadataShape(shape).join(',')}] (-1: any size)`);
    const size = inp.parameters?.binary_data_size;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw new OipError(400, `input "${inp.name}": binary_data_size must be a byte count but is ${JSON.stringify(size)}`);
      if (inp.data !== undefined) throw new OipError(400, `input "${inp.name}": both "data" and binary_data_size given`);
      if (offset + size > binary.byteLength) throw new OipError(400, `input "${inp.name}": binary_data_size ${size} runs past the ${binary.byteLength} bytes after the JSON header`);
      feeds[inp.name] = tensorFromBytes(inp.name, type, inp.shape, binary.subarray(offset, offset + size));
      offset += size;
    } else {
      if (inp.data === undefined) throw new OipError(400, `input "${inp.name}": no "data" and no binary_data_size parameter`);
      feeds[inp.name] = tensorFromJson(inp.name, type as TensorType, inp.shape, inp.data);
    }
  }
  if (offset !== binary.byteLength) throw new OipError(400, `${binary.byteLength - offset} bytes after the JSON header and the inputs' binary data`);
  const missing = inputs.filter((i) => !seen.has(i.name));
  if (missing.length) throw new OipError(400, `missing input ${missing.map((m) => `"${m.name}"`).join(', ')}`);
  return feeds;
}

/**
 * A request body sent with `Content-Encoding: gzip` or `deflate` (Triton's HTTP clients compress
 * requests when asked: `request_compression_algorithm`), inflated under the body limit; `identity` or
 * none as it is. The Inference-Header-Content-Length of such a body counts the inflated JSON, as in
 * Triton. Errors: OipError 415 for another encoding, 400 for data that does not inflate, 413 when the
 * inflated body passes the limit.
 */
export function inflateBody(body: Buffer, encoding: string | undefined, limit: number): Buffer {
  const e = (encoding ?? 'identity').trim().toLowerCase();
  if (e === 'identity' || e === '') return body;
  if (e !== 'gzip' && e !== 'deflate') throw new OipError(415, `Content-Encoding "${encoding}" is not supported (gzip, deflate or none)`);
  try {
    return e === 'gzip' ? gunzipSync(body, { maxOutputLength: limit }) : inflateSync(body, { maxOutputLength: limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new OipError(413, `request body over the limit of ${limit} bytes once inflated (Content-Encoding ${e})`);
    throw new OipError(400, `request body is not ${e} data (${messageOf(err)})`);
  }
}

/** A path segment percent-decoded; a malformed escape ("%ZZ") is kept as sent (it then names nothing: a 400/404, not a 500 "URI malformed"). */
export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The OIP routes over `o.models()`. Mount with `if (await routes.handle(req, res)) return;` after the
 * server's guard. Errors: EARG for an option it does not take (`createOipRoutes: unknown option "…"
 * (options: …)`).
 */
export function createOipRoutes(o: OipRoutesOptions): OipRoutes {
  checkOptionKeys('createOipRoutes', o, OIP_ROUTES_OPTION_KEYS);
  const limit = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  checkMaxBatchSize(o.maxBatchSize);
  const serverMaxBatch = o.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  const log = o.log ?? (() => undefined);
  const find = (name: string) => o.models().find((m) => servedName(m) === name);

  const infer = async (clf: Classifier, req: IncomingMessage, res: ServerResponse) => {
    const name = servedName(clf);
    const t0 = performance.now();
    let t1 = t0;
    let t2 = t0;
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (err) {
      if (err instanceof TooLarge) {
        discardRest(req);
        throw new OipError(413, `request body over the limit of ${limit} bytes`);
      }
      throw err;
    }
    body = inflateBody(body, req.headers['content-encoding'], limit);
    const header = req.headers[HEADER_LENGTH];
    const { json, binary } = splitBody(body, Array.isArray(header) ? header[0] : header);
    const session = await clf.open();
    const request = json === undefined ? rawRequest(session.inputs, binary.byteLength) : checkBody(InferRequestSchema, json, 'inference request');
    const feeds = decodeInputs(request, binary, session.inputs);
    if (isBatching(clf.signature)) {
      const maxBatch = servedEntries.get(clf)?.maxBatchSize ?? serverMaxBatch;
      for (const [k, t] of Object.entries(feeds)) {
        // max_batch_size 0: served without batching (full dims in /config), no batch limit
        if (maxBatch > 0 && t.dims[0]! > maxBatch) throw new OipError(400, `input "${k}": batch of ${t.dims[0]} is over the model's max_batch_size ${maxBatch}`);
        // onnxruntime fails on an empty batch deep in the graph (a 500 naming a Reshape node)
        if (t.dims[0]! < 1) throw new OipError(400, `input "${k}": batch of 0; a request holds at least one item (shape [${t.dims.join(',')}])`);
      }
    }
    // no outputs named (absent or []): every output, as the protocol says ("If not specified all outputs…")
    const wanted = request.outputs?.length ? request.outputs : session.outputs.map((t) => ({ name: t.name, parameters: undefined }));
    for (const w of wanted) {
      if (!session.outputs.some((t) => t.name === w.name)) throw new OipError(400, `unknown output "${w.name}": the model's outputs are ${session.outputs.map((t) => `"${t.name}"`).join(', ')}`);
    }
    t1 = performance.now();
    const result = await session.run(feeds, [...new Set(wanted.map((w) => w.name))]);
    t2 = performance.now();
    const allBinary = isTrue(request.parameters?.binary_data_output);
    const batching = isBatching(clf.signature);
    const parts: Uint8Array[] = [];
    const outputs = wanted.map((w) => {
      const t = result[w.name]!;
      const k = w.parameters?.classification;
      const binaryOut = w.parameters?.binary_data !== undefined ? isTrue(w.parameters.binary_data) : allBinary;
      if (k !== undefined) {
        const c = classify(t, countParameter('classification', w.name, k), batching, (i) => (w.name === clf.outputName ? labelOf(clf.card, i) : undefined));
        if (!binaryOut) return { name: w.name, shape: c.shape, datatype: 'BYTES', data: c.items };
        const bytes = bytesElements(c.items);
        parts.push(bytes);
        return { name: w.name, shape: c.shape, datatype: 'BYTES', parameters: { binary_data_size: bytes.byteLength } };
      }
      const datatype = datatypeOf(t.type)!;
      if (!binaryOut) return { name: w.name, shape: [...t.dims], datatype, data: jsonData(t) };
      const bytes = tensorBytes(t);
      parts.push(bytes);
      return { name: w.name, shape: [...t.dims], datatype, parameters: { binary_data_size: bytes.byteLength } };
    });
    const response = { model_name: name, model_version: servedVersion(clf), ...(request.id !== undefined ? { id: request.id } : {}), outputs };
    if (parts.length) {
      const { body: out, headerLength } = joinBody(response, parts);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': out.byteLength, [HEADER_LENGTH]: String(headerLength), 'Cache-Control': 'no-store' });
      res.end(out);
    } else sendJson(res, 200, response);
    o.onInfer?.({ model: name, status: 200, decodeSeconds: (t1 - t0) / 1000, runSeconds: (t2 - t1) / 1000, encodeSeconds: (performance.now() - t2) / 1000 });
  };

  const route = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    const onlyGet = () => {
      if (!get) throw new OipError(405, `method ${method} not allowed on ${path} (GET, HEAD)`);
    };
    if (path === '/v2' || path === '/v2/') {
      onlyGet();
      return sendJson(res, 200, { name: SERVER_NAME, version: SERVER_VERSION, extensions: ['binary_tensor_data', 'classification', 'model_configuration'] });
    }
    if (path === '/v2/health/live') {
      onlyGet();
      return sendJson(res, 200, { live: true });
    }
    if (path === '/v2/health/ready') {
      onlyGet();
      const ready = o.models().length > 0;
      return sendJson(res, ready ? 200 : 503, { ready });
    }
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/config|\/infer)?\/?$/.exec(path);
    if (!m) throw new OipError(404, `no such endpoint: ${path}`);
    let name: string;
    try {
      name = decodeURIComponent(m[1]!);
    } catch {
      throw new OipError(400, `model name in ${path} is not valid percent-encoding`);
    }
    const clf = find(name);
    if (!clf) {
      const served = o.models().map(servedName);
      throw new OipError(404, `unknown model "${name}": this server serves ${served.length ? served.map((s) => `"${s}"`).join(', ') : 'no model'}`);
    }
    const version = servedVersion(clf);
    if (m[2] !== undefined && m[2] !== version) throw new OipError(404, `model "${name}" has no version "${m[2]}" (versions: "${version}")`);
    const what = m[3];
    if (what === '/infer') {
      if (method !== 'POST') throw new OipError(405, `method ${method} not allowed on ${path} (POST)`);
      return infer(clf, req, res);
    }
    onlyGet();
    if (what === '/ready') return sendJson(res, 200, { name, ready: true });
    if (what === '/config') return sendJson(res, 200, await modelConfig(clf, serverMaxBatch));
    return sendJson(res, 200, modelMetadata(clf));
  };

  return {
    async handle(req, res) {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path !== '/v2' && !path.startsWith('/v2/')) return false;
      try {
        await route(req, res, path);
      } catch (err) {
        // A client that went away mid-request is not a server error: 499 (nginx's "client closed request"),
        // so a fleet's 5xx alert does not fire on it (it was counted as a 500 "aborted").
        const status = req.destroyed && (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? CLIENT_CLOSED : statusOf(err);
        const message = status === CLIENT_CLOSED ? `the client closed the connection (${messageOf(err)})` : messageOf(err);
        log(`${req.method} ${path}: ${status} ${message}`);
        if (/\/infer\/?$/.test(path)) {
          // Counted for served models only (an unknown name would add a metrics series per typo).
          const name = /^\/v2\/models\/([^/]+)/.exec(path)?.[1];
          if (name !== undefined && find(safeDecode(name))) o.onInfer?.({ model: safeDecode(name), status, decodeSeconds: 0, runSeconds: 0, encodeSeconds: 0 });
          // A refused body (not yet read) is drained so the client reads this answer, not a reset.
          if (!req.readableEnded && status !== 413) discardRest(req);
        }
        if (res.headersSent) res.end();
        else sendJson(res, status, { error: message }, status === 405 ? { Allow: /\/infer\/?$/.test(path) ? 'POST' : 'GET, HEAD' } : {});
      }
      return true;
    },
  };
}
