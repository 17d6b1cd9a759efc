// `edgetune serve`'s library side: one or more models behind the Open Inference Protocol
// (runtime/serve/routes.ts), no camera, plus `/metrics`. node:http, no framework; binds 127.0.0.1
// unless told otherwise; every request passes runtime/io/http-guard.ts first (Host check against DNS
// rebinding; on a non-loopback bind with EDGETUNE_TOKEN, the token for every request).
//   GET /v2…      the protocol (see routes.ts)
//   GET /metrics  Prometheus text (stream/metrics.ts): requests per model and status, latency histograms
//   GET /healthz  200 {"status":"ok","models":[…]} (the process answers; readiness is /v2/health/ready)

import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkClassifierOptionKeys, CLASSIFIER_OPTION_KEYS, loadClassifier, type Classifier, type ClassifierOptions } from '../classify/classifier.js';
import { pickOptions, type AssertNever } from '../core/options.js';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { bindWarnings, createHttpGuard } from '../io/http-guard.js';
import { discardRest } from '../io/http-body.js';
import { buildInfoFamily, exposition, EXPOSITION_CONTENT_TYPE, Histogram } from '../stream/metrics.js';
import { createOipRoutes, serveAsEntry, servedName, servedSha256, servedVersion, type InferEvent } from './routes.js';
import { tritonRepositoryModels, type TritonRepositoryModel } from '../fleet/triton.js';
import { loadRegistry } from '../../models/loader.js';

export interface ServeModelsOptions extends ClassifierOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8000 (Triton's HTTP port); 0 picks a free port. */
  port?: number;
  /** Host names (or addresses) served besides loopback and the bound address (--allow-host). */
  allowHosts?: readonly string[];
  /** Token every request needs on a non-loopback bind. Default process.env.EDGETUNE_TOKEN. */
  token?: string;
  /** Largest inference body in bytes (413 above). Default routes.ts DEFAULT_MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /** Triton's max_batch_size for models that batch (said in /config, enforced on /infer). Default 8; 0: no batching (full dims). Integer >= 0. */
  maxBatchSize?: number;
  log?: (line: string) => void;
}

/** Every key of ServeModelsOptions (its own and ClassifierOptions'), for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const SERVE_MODELS_OPTION_KEYS = ['host', 'port', 'allowHosts', 'token', 'maxBodyBytes', 'maxBatchSize', 'log', ...CLASSIFIER_OPTION_KEYS] as const satisfies readonly (keyof ServeModelsOptions)[];
/** `never` while SERVE_MODELS_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedServeModelsOption = AssertNever<Exclude<keyof ServeModelsOptions, (typeof SERVE_MODELS_OPTION_KEYS)[number]>>;

/** Inference requests seen so far, per model: counts per HTTP status and per-stage latency histograms. */
export interface InferStats {
  /** Served names, in order, each one's model file and its sha256 as it was loaded (what /metrics says, not the file's now). */
  models: { name: string; file: string; sha256: string; version: string }[];
  requests: Map<string, Map<number, number>>;
  /** Seconds of successful requests per model and stage (`decode`, `run`, `encode`, `total`). */
  latency: Map<string, Record<'decode' | 'run' | 'encode' | 'total', Histogram>>;
}

export interface ModelServer {
  url: string;
  host: string;
  port: number;
  server: Server;
  /** The classifiers served, in the order given; `names[i]` is `classifiers[i]`'s name in URLs. */
  classifiers: readonly Classifier[];
  names: readonly string[];
  stats: InferStats;
  /**
   * Stop: no new connections, requests in progress answered (up to `graceMs`, default
   * DEFAULT_CLOSE_GRACE_MS; then their connections are cut), then the sessions disposed.
   */
  close(graceMs?: number): Promise<void>;
}

/** How long close() waits for requests in progress, ms (a Kubernetes pod gets 30 s between SIGTERM and SIGKILL). */
export const DEFAULT_CLOSE_GRACE_MS = 5000;

/**
 * `/metrics` of `edgetune serve` in the Prometheus text format (stream/metrics.ts): edgetune_build_info,
 * edgetune_model_info{model,version,sha256} per served model, edgetune_infer_requests_total{model,status} and
 * edgetune_infer_latency_seconds{model,stage} histograms (decode = body read and tensor decode, run =
 * session.run, encode = response, total).
 */
export async function inferMetricsText(s: InferStats): Promise<string> {
  const stages = ['decode', 'run', 'encode', 'total'] as const;
  return exposition([
    await buildInfoFamily(),
    {
      name: 'edgetune_model_info',
      help: 'A served model (value 1): its name in /v2/models/<name>, the version it answers as (a Triton repository entry: its highest) and the sha256 of its file as loaded.',
      type: 'gauge',
      samples: s.models.map((m) => ({ labels: { model: m.name, version: m.version, sha256: m.sha256 }, value: 1 })),
    },
    {
      name: 'edgetune_infer_requests_total',
      help: 'Inference requests by model and HTTP status.',
      type: 'counter',
      samples: [...s.requests].flatMap(([model, by]) => [...by].map(([status, n]) => ({ labels: { model, status: String(status) }, value: n }))),
    },
    {
      name: 'edgetune_infer_latency_seconds',
      help: 'Latency of successful inference requests in seconds per stage: decode (body and tensors), run (session.run), encode (response), total.',
      type: 'histogram',
      samples: [...s.latency].flatMap(([model, h]) => stages.map((stage) => ({ labels: { model, stage }, histogram: h[stage].snapshot() }))),
    },
  ]);
}

/**
 * `refs` with each folder replaced by the models of the Triton model repository it is (every entry's
 * highest version), or of the repository entry it is (fleet/triton.ts tritonRepositoryModels). A
 * registry id is kept as it is, even where a folder of that name exists (the loader's rule). Errors:
 * EMODEL for a folder that is neither, or a repository entry without its model.
 */
async function servedRefs(refs: readonly string[]): Promise<{ ref: string; entry?: TritonRepositoryModel }[]> {
  const out: { ref: string; entry?: TritonRepositoryModel }[] = [];
  for (const ref of refs) {
    const isDir = await stat(ref).then((s) => s.isDirectory(), () => false);
    if (!isDir || loadRegistry().get(ref)) {
      out.push({ ref });
      continue;
    }
    const models = await tritonRepositoryModels(ref);
    if (!models) {
      throw new EdgetuneError('EMODEL', `${ref}: a folder, but neither a Triton model repository (no <name>/config.pbtxt in it) nor an entry of one (no config.pbtxt in it); serve takes model files, and the folders "edgetune export --format triton" writes`, { subject: ref });
    }
    out.push(...models.map((m) => ({ ref: m.file, entry: m })));
  }
  return out;
}

/**
 * Load each model (anything `--model` takes, and a Triton model repository folder: every entry, its
 * highest version, under its entry name, as Triton serves it; sessions opened now, so a model that
 * cannot run fails here, naming it) and serve them all. Two references with the same name are an EARG
 * error, and so is an option it does not take (`serveModels: unknown option "prot" (options: …)`); a
 * folder that is no repository is EMODEL (servedRefs).
 */
export async function serveModels(given: readonly string[], o: ServeModelsOptions = {}): Promise<ModelServer> {
  if (!given.length) throw new EdgetuneError('EARG', 'serve: no model given');
  checkClassifierOptionKeys('serveModels', o, SERVE_MODELS_OPTION_KEYS);
  const served = await servedRefs(given);
  const refs = served.map((s) => s.ref);
  const log = o.log ?? (() => undefined);
  const classifiers: Classifier[] = [];
  try {
    for (const { ref, entry } of served) {
      const clf = await loadClassifier(ref, { ...pickOptions(o, CLASSIFIER_OPTION_KEYS), lazy: false });
      classifiers.push(clf);
      // a repository entry answers as Triton serves it: its version, its config's max_batch_size
      if (entry) serveAsEntry(clf, entry);
    }
  } catch (err) {
    await Promise.all(classifiers.map((c) => c.dispose()));
    throw err;
  }
  const names = classifiers.map(servedName);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) {
    await Promise.all(classifiers.map((c) => c.dispose()));
    const same = refs.filter((_, i) => names[i] === dup);
    // the same reference twice, or two files whose base names agree (Teachable Machine's model_unquant.tflite in two folders)
    const how = new Set(same).size === 1 ? 'give it once' : 'a model is named after its registry id or file base name: copy one to a file of another name';
    throw new EdgetuneError('EARG', `serve: two models are both named "${dup}" (${same.join(', ')}); ${how}`);
  }
  // hashed now, as loaded: a file replaced on disk later is not what this process serves
  const shas = await Promise.all(classifiers.map(servedSha256));
  const stats: InferStats = { models: names.map((name, i) => ({ name, file: classifiers[i]!.modelPath, sha256: shas[i]!, version: servedVersion(classifiers[i]!) })), requests: new Map(), latency: new Map() };
  // Every served model's successful-request series exist from the start, at 0: Prometheus' rate() and
  // increase() count nothing for a series' first sample, so a series born at 1 lost the first requests.
  for (const name of names) {
    stats.requests.set(name, new Map([[200, 0]]));
    stats.latency.set(name, { decode: new Histogram(), run: new Histogram(), encode: new Histogram(), total: new Histogram() });
  }
  const onInfer = (e: InferEvent) => {
    const by = stats.requests.get(e.model) ?? new Map<number, number>();
    by.set(e.status, (by.get(e.status) ?? 0) + 1);
    stats.requests.set(e.model, by);
    if (e.status === 200) {
      let h = stats.latency.get(e.model);
      if (!h) stats.latency.set(e.model, (h = { decode: new Histogram(), run: new Histogram(), encode: new Histogram(), total: new Histogram() }));
      h.decode.observe(e.decodeSeconds);
      h.run.observe(e.runSeconds);
      h.encode.observe(e.encodeSeconds);
      h.total.observe(e.decodeSeconds + e.runSeconds + e.encodeSeconds);
    }
  };
  const routes = createOipRoutes({ models: () => classifiers, maxBodyBytes: o.maxBodyBytes, maxBatchSize: o.maxBatchSize, log, onInfer });
  const host = o.host ?? '127.0.0.1';
  const token = (o.token ?? process.env.EDGETUNE_TOKEN) || undefined;
  const guard = createHttpGuard({ host, allowHosts: o.allowHosts, token });
  const send = (res: ServerResponse, status: number, body: string, type = 'application/json', extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...extra });
    res.end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const refused = guard.check(req);
    if (refused) {
      if (refused.status !== 303) log(`refused ${req.method} ${req.url} (${refused.status}): ${refused.message}`);
      send(res, refused.status, JSON.stringify({ error: refused.message }), undefined, refused.headers);
      if (req.method !== 'GET' && req.method !== 'HEAD') discardRest(req);
      return;
    }
    if (await routes.handle(req, res)) return;
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      discardRest(req);
      return send(res, 405, JSON.stringify({ error: `method ${req.method} not allowed on ${path}` }), undefined, { Allow: 'GET, HEAD' });
    }
    if (path === '/metrics') return send(res, 200, await inferMetricsText(stats), EXPOSITION_CONTENT_TYPE);
    if (path === '/healthz') return send(res, 200, JSON.stringify({ status: 'ok', models: names }));
    return send(res, 404, JSON.stringify({ error: `no such endpoint: ${path}` }));
  };
  // Requests being answered: close() lets them finish (a rolling restart drains them instead of
  // resetting them, and no session is disposed under a running inference).
  let active = 0;
  let closing = false;
  let drained: (() => void) | undefined;
  const server = createServer((req, res) => {
    active++;
    res.once('close', () => {
      active--;
      if (closing) server.closeIdleConnections();
      if (active === 0) drained?.();
    });
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, JSON.stringify({ error: messageOf(err) }));
      else res.end();
    });
  });
  const port = o.port ?? 8000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new EdgetuneError('EIO', err.code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use (choose another with --port)` : `cannot listen on ${host}:${port}: ${err.message}`, { cause: err })),
      );
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    await Promise.all(classifiers.map((c) => c.dispose()));
    throw err;
  }
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}/`;
  for (const line of bindWarnings(host, token, url, { page: false })) log(line);
  return {
    url,
    host: addr.address,
    port: addr.port,
    server,
    classifiers,
    names,
    stats,
    async close(graceMs = DEFAULT_CLOSE_GRACE_MS) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (active > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      server.closeAllConnections();
      await closed;
      await Promise.all(classifiers.map((c) => c.dispose()));
    },
  };
}
