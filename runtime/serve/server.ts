// `edgetune serve`'s library side: one or more models behind the Open Inference Protocol
// (runtime/serve/routes.ts), no camera, plus `/metrics`. node:http, no framework; binds 127.0.0.1
// unless told otherwise; every request passes runtime/io/http-guard.ts first (Host check against DNS
// rebinding; on a non-loopback bind with EDGETUNE_TOKEN, the token for every request).
//   GET /v2…      the protocol (see routes.ts)
//   GET /metrics  Prometheus text: requests per model and status, time per stage (`metrics` hook)
//   GET /healthz  200 {"status":"ok","models":[…]} (the process answers; readiness is /v2/health/ready)

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadClassifier, type Classifier, type ClassifierOptions } from '../classify/classifier.js';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { bindWarnings, createHttpGuard } from '../io/http-guard.js';
import { discardRest } from '../io/http-body.js';
import { createOipRoutes, servedName, type InferEvent } from './routes.js';

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
  /**
   * The `/metrics` text from the request counters (hook for the Prometheus module: pass its renderer).
   * Default `inferMetricsText`.
   */
  metrics?: (stats: InferStats) => string;
  log?: (line: string) => void;
}

/** Inference requests seen so far, per model: counts per HTTP status and summed stage seconds. */
export interface InferStats {
  models: string[];
  requests: Map<string, Map<number, number>>;
  seconds: Map<string, { decode: number; run: number; encode: number; count: number }>;
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
  close(): Promise<void>;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text exposition of the inference counters (counters and per-stage second sums). */
export function inferMetricsText(s: InferStats): string {
  const out: string[] = [];
  out.push('# HELP edgetune_model_info The models served.', '# TYPE edgetune_model_info gauge');
  for (const m of s.models) out.push(`edgetune_model_info{model="${escapeLabel(m)}"} 1`);
  out.push('# HELP edgetune_infer_requests_total Inference requests by model and HTTP status.', '# TYPE edgetune_infer_requests_total counter');
  for (const [m, by] of s.requests) for (const [status, n] of by) out.push(`edgetune_infer_requests_total{model="${escapeLabel(m)}",status="${status}"} ${n}`);
  out.push('# HELP edgetune_infer_stage_seconds_total Seconds spent per stage of successful inference requests.', '# TYPE edgetune_infer_stage_seconds_total counter');
  for (const [m, t] of s.seconds) {
    for (const stage of ['decode', 'run', 'encode'] as const) out.push(`edgetune_infer_stage_seconds_total{model="${escapeLabel(m)}",stage="${stage}"} ${t[stage]}`);
  }
  return out.join('\n') + '\n';
}

/**
 * Load each model (anything `--model` takes; sessions opened now, so a model that cannot run fails
 * here, naming it) and serve them all. Two references with the same name are an EARG error.
 */
export async function serveModels(refs: readonly string[], o: ServeModelsOptions = {}): Promise<ModelServer> {
  if (!refs.length) throw new EdgetuneError('EARG', 'serve: no model given');
  const log = o.log ?? (() => undefined);
  const classifiers: Classifier[] = [];
  try {
    for (const ref of refs) classifiers.push(await loadClassifier(ref, { ...o, lazy: false }));
  } catch (err) {
    await Promise.all(classifiers.map((c) => c.dispose()));
    throw err;
  }
  const names = classifiers.map(servedName);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) {
    await Promise.all(classifiers.map((c) => c.dispose()));
    throw new EdgetuneError('EARG', `serve: two models are both named "${dup}" (${refs.filter((_, i) => names[i] === dup).join(', ')})`);
  }
  const stats: InferStats = { models: names, requests: new Map(), seconds: new Map() };
  const onInfer = (e: InferEvent) => {
    const by = stats.requests.get(e.model) ?? new Map<number, number>();
    by.set(e.status, (by.get(e.status) ?? 0) + 1);
    stats.requests.set(e.model, by);
    if (e.status === 200) {
      const t = stats.seconds.get(e.model) ?? { decode: 0, run: 0, encode: 0, count: 0 };
      t.decode += e.decodeSeconds;
      t.run += e.runSeconds;
      t.encode += e.encodeSeconds;
      t.count++;
      stats.seconds.set(e.model, t);
    }
  };
  const routes = createOipRoutes({ models: () => classifiers, maxBodyBytes: o.maxBodyBytes, log, onInfer });
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
    if (path === '/metrics') return send(res, 200, (o.metrics ?? inferMetricsText)(stats), 'text/plain; version=0.0.4; charset=utf-8');
    if (path === '/healthz') return send(res, 200, JSON.stringify({ status: 'ok', models: names }));
    return send(res, 404, JSON.stringify({ error: `no such endpoint: ${path}` }));
  };
  const server = createServer((req, res) => {
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
  for (const line of bindWarnings(host, token, url)) log(line);
  return {
    url,
    host: addr.address,
    port: addr.port,
    server,
    classifiers,
    names,
    stats,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all(classifiers.map((c) => c.dispose()));
    },
  };
}
