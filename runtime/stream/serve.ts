// The kiosk HTTP service for a running StreamPipeline, on node:http with no framework:
//   GET  /             minimal live page: MJPEG preview + the smoothed label (from /events; a multilabel
//                      model's labels as the prediction's `smoothed.text`, made on the server)
//   GET  /stream.mjpg  MJPEG preview (multipart/x-mixed-replace) of the frames the model sees
//   GET  /events       Server-Sent Events: `prediction` per result (at most ~10/s), `status` on
//                      reconnects/swaps
//   GET  /snapshot.jpg the latest frame as JPEG
//   GET  /healthz      200 {"status":"ok"} while frames flow, 503 while reconnecting or after failure
//   GET  /metrics      Prometheus text exposition (counters, fps, per-stage latency histograms in seconds)
//   GET  /kiosk/…      with `kioskPage` (watch --teach): the kiosk page, teaching through /teach (kiosk-page.ts)
//   /v2/…              the Open Inference Protocol over the serving model (runtime/serve/routes.ts):
//                      metadata, config, readiness, POST …/infer (reads nothing else, so no token
//                      on loopback); its first inference opens a session on this thread. The model
//                      keeps one name (`modelName`, default the first model's) across swaps; each
//                      model swapped in is a new version (1, 2, …), see startServer
//   POST /model        hot-swap the model: JSON {"model":"<id|path>"} or ONNX bytes
//                      (application/octet-stream); every POST needs the token from EDGETUNE_TOKEN
//                      (Authorization: Bearer <token>), 401 without it. The new model classifies a
//                      real frame before it serves: 422 with the reason when it cannot (the old model
//                      keeps serving). Uploads stream to a file in the cache with the size limit
//                      enforced while reading: 413 over it; a rejected upload leaves nothing behind,
//                      and an upload no longer served (nor kept for a rollback) is removed. Any other
//                      body (a multipart form: 415) is refused without being echoed; names and
//                      reasons are logged quoted (JSON) so that they cannot forge a log line.
// Binds 127.0.0.1 unless told otherwise. Every request passes runtime/io/http-guard.ts first (Host
// check against DNS rebinding; on a non-loopback bind with a token, the token for reads too).

import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Classifier } from '../classify/classifier.js';
import { EdgetuneError, invalidParameter, messageOf } from '../core/errors.js';
import { encodeJpeg } from '../image/decode.js';
import { bindWarnings, createHttpGuard, tokenFrom, tokenMatches } from '../io/http-guard.js';
import { cacheDir, checkDirPath } from '../io/paths.js';
import { declaredOver, discardRest, readBody, TooLarge } from '../io/http-body.js';
import { checkModelName, createOipRoutes, serveAsVersion, servedName, servedSha256, servedVersion } from '../serve/routes.js';
import { STAGES, resultJson, type StreamPipeline, type StreamResult } from './pipeline.js';
import type { Frame } from '../../devices/sources/types.js';
import { KIOSK_PAGE_OPTION_KEYS, kioskPageRoutes, type KioskPageOptions } from './kiosk-page.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';
import { buildInfoFamily, exposition, EXPOSITION_CONTENT_TYPE, type MetricFamily } from './metrics.js';

export interface ServeOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Token required for POST requests. Default process.env.EDGETUNE_TOKEN; without one every POST is refused. */
  token?: string;
  /** Loads a model for POST /model (a registry id or path on this machine). */
  loadModel?: (ref: string) => Promise<Classifier>;
  /** Preview frames per second for MJPEG clients. Default 10. */
  previewFps?: number;
  /** Largest ONNX upload, bytes. Default 256 MiB. */
  maxUploadBytes?: number;
  /** Largest Open Inference Protocol request body, bytes. Default routes.ts DEFAULT_MAX_BODY_BYTES. */
  maxInferBytes?: number;
  /** Host names (or addresses) served besides loopback and the bound address (--allow-host). */
  allowHosts?: readonly string[];
  /** Log lines (model swaps, refused requests). */
  log?: (line: string) => void;
  /** The teach routes (runtime/stream/teach.ts, `watch --teach`): /teach/… and extra /metrics families. */
  teach?: { handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>; metrics(): MetricFamily[]; page?: string };
  /** Serve the kiosk page under /kiosk/ (runtime/stream/kiosk-page.ts; `watch --teach` does). */
  kioskPage?: KioskPageOptions;
  /**
   * The name the stream's model is served under (`/v2/models/<name>`, `edgetune_model_info{model}`),
   * kept across swaps (`watch --model-name`). Default the serving model's name when the server starts
   * (routes.ts servedName: its registry id, or its file's base name). Errors: EARG unless letters,
   * digits, `_`, `.`, `-` (checkModelName).
   */
  modelName?: string;
}

/** Every key of ServeOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const STREAM_SERVE_OPTION_KEYS = ['host', 'port', 'token', 'loadModel', 'previewFps', 'maxUploadBytes', 'maxInferBytes', 'allowHosts', 'log', 'teach', 'kioskPage', 'modelName'] as const satisfies readonly (keyof ServeOptions)[];
/** `never` while STREAM_SERVE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedStreamServeOption = AssertNever<Exclude<keyof ServeOptions, (typeof STREAM_SERVE_OPTION_KEYS)[number]>>;

export interface KioskServer {
  url: string;
  host: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** `host:port`, `:port`, `port` or `[v6]:port` → host and port (host defaults to 127.0.0.1). */
export function parseListen(s: string): { host: string; port: number } {
  const t = s.trim();
  let host = '127.0.0.1';
  let portText = t;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(t);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (t.includes(':')) {
    const i = t.lastIndexOf(':');
    host = t.slice(0, i) || host;
    portText = t.slice(i + 1);
  }
  const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535) || host.includes(':') && !v6) {
    throw invalidParameter('--serve', 'host:port (e.g. 127.0.0.1:8080)', s);
  }
  return { host, port };
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>edgetune</title>
<style>
body{margin:0;background:#111;color:#eee;font-family:system-ui,sans-serif;text-align:center}
img{width:min(92vw,62vh);margin-top:3vh;border-radius:8px;background:#222}
#label{font-size:9vh;font-weight:600;margin:2vh 0 0}#label.unknown{color:#888}
#score,#stats{color:#aaa;font-size:2.4vh}#status{color:#e96;font-size:2.4vh;min-height:3vh}
</style></head><body>
<img src="/stream.mjpg" alt="camera preview">
<div id="label" class="unknown">…</div><div id="score"></div><div id="status"></div><div id="stats"></div>
<script>
const $=(id)=>document.getElementById(id);
const es=new EventSource('/events');
es.addEventListener('prediction',(e)=>{const r=JSON.parse(e.data);const s=r.smoothed;
$('label').textContent=s.text??s.label;$('label').className=s.index<0?'unknown':'';
$('score').textContent=(s.score*100).toFixed(0)+'% · '+r.top.slice(0,3).map((t)=>t.label+' '+(t.score*100).toFixed(0)+'%').join(', ');
$('stats').textContent=r.modelName+' v'+r.modelVersion+' ('+r.model+') · frame '+r.seq+' · '+r.ms+' ms';$('status').textContent='';});
es.addEventListener('status',(e)=>{$('status').textContent=JSON.parse(e.data).message;});
es.onerror=()=>{$('status').textContent='connection lost, retrying…';};
</script></body></html>
`;

/**
 * Prometheus text exposition of the pipeline (stream/metrics.ts): per-stage latency histograms in
 * seconds, counters for frames, errors, reconnects, stalls, swaps and rollbacks, gauges for state and
 * rates, `edgetune_build_info`, and `edgetune_model_info` whose labels name the serving model (its
 * served name and version, as /v2/models says them), its file's base name and the sha256 of the file.
 */
export async function metricsText(p: StreamPipeline, extra: readonly MetricFamily[] = []): Promise<string> {
  // one model for every label, taken before any await (a swap may land meanwhile)
  const clf = p.model;
  const s = p.stats();
  const counter = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'counter', samples: [{ value }] });
  const hist = p.latencyHistograms();
  return exposition([
    await buildInfoFamily(),
    { name: 'edgetune_up', help: 'Whether frames are flowing (1) or the source is reconnecting/failed (0).', type: 'gauge', samples: [{ value: s.state === 'running' || s.state === 'starting' ? 1 : 0 }] },
    {
      name: 'edgetune_model_info',
      help: 'The model serving the stream (value 1): its name and version (as /v2/models/<name>/versions/<version> serves it; a new version per model swapped in), its file\'s base name, the sha256 of the file as loaded, the provider running it and the source.',
      type: 'gauge',
      // the model's name and version as /v2/models/<name> and `edgetune serve`'s metrics say them (a fleet joins on them)
      samples: [{ labels: { model: servedName(clf), version: servedVersion(clf), file: path.basename(clf.modelPath), sha256: await servedSha256(clf), provider: p.provider, source: s.source }, value: 1 }],
    },
    counter('edgetune_frames_in_total', 'Frames received from the source.', s.framesIn),
    counter('edgetune_frames_processed_total', 'Frames classified.', s.processed),
    counter('edgetune_frames_unknown_total', 'Frames classified whose smoothed label was "unknown" (a drift signal when it climbs).', s.unknown),
    counter('edgetune_frames_dropped_total', 'Stale frames dropped because inference was busy (latest frame wins).', s.dropped),
    counter('edgetune_frames_skipped_total', 'Corrupt or unusable frames skipped.', s.skipped),
    counter('edgetune_inference_errors_total', 'Frames whose inference failed.', s.errors),
    counter('edgetune_source_reconnects_total', 'Times the source process was restarted.', s.reconnects),
    counter('edgetune_source_stalls_total', 'Times the source delivered no frame for the stall timeout and was restarted.', s.stalls),
    counter('edgetune_model_swaps_total', 'Models swapped in (POST /model).', s.swaps),
    counter('edgetune_model_rollbacks_total', 'Times a swapped-in model failed and the previous model was put back.', s.rollbacks),
    { name: 'edgetune_fps', help: 'Frames per second over the last seconds.', type: 'gauge', samples: [{ labels: { direction: 'in' }, value: s.fpsIn }, { labels: { direction: 'out' }, value: s.fpsOut }] },
    { name: 'edgetune_uptime_seconds', help: 'Seconds since the stream started.', type: 'gauge', samples: [{ value: s.uptimeSeconds }] },
    {
      name: 'edgetune_stage_latency_seconds',
      help: 'Per-frame latency of each stage in seconds (queue, preprocess, inference, postprocess; total = frame arrival to result), every frame since the start.',
      type: 'histogram',
      samples: STAGES.map((st) => ({ labels: { stage: st }, histogram: hist[st] })),
    },
    ...extra,
  ]);
}

/**
 * Stream a body to `file` (created, never overwritten) with backpressure, hashing it, refusing it
 * (TooLarge) as soon as it passes `limit`. On any failure the partial file is removed.
 */
function receiveToFile(req: IncomingMessage, file: string, limit: number): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    if (declaredOver(req, limit)) return reject(new TooLarge(limit));
    const out = createWriteStream(file, { flags: 'wx' });
    const hash = createHash('sha256');
    let n = 0;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      out.destroy();
      out.once('close', () => {
        rmSync(file, { force: true });
        reject(err);
      });
    };
    const onData = (c: Buffer) => {
      n += c.length;
      if (n > limit) return fail(new TooLarge(limit));
      hash.update(c);
      if (!out.write(c)) {
        req.pause();
        out.once('drain', () => req.resume());
      }
    };
    req.on('data', onData);
    req.on('end', () => {
      if (settled) return;
      out.end(() => {
        if (settled) return;
        settled = true;
        resolve({ bytes: n, sha256: hash.digest('hex') });
      });
    });
    req.on('error', fail);
    req.on('aborted', () => fail(new Error('upload aborted by the client')));
    out.on('error', fail);
  });
}

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json; charset=utf-8', extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...extra });
  res.end(body);
}

/** A JSON answer (no-store, nosniff), shared with the teach routes. */
export const json = (res: ServerResponse, status: number, obj: unknown, extra?: Record<string, string>) => send(res, status, JSON.stringify(obj) + '\n', undefined, extra);

/**
 * Serve `pipeline` over HTTP (the watch page, its live results, previews, metrics, the Open Inference
 * Protocol routes, and with `kioskPage` the browser kiosk at /kiosk/), bound to loopback by default.
 * The model is served under one name (`opts.modelName`, default the serving model's) for the server's
 * life, as Triton serves a repository entry: the model serving at the start is version 1, and every
 * model swapped in after it (POST /model, a teach training) is the next version (2, 3, …); a rollback
 * serves the previous model again under its own version, and numbers are never reused. Only the
 * serving version is loaded: `/v2/models/<name>/versions/<older>` answers 404 naming the one served.
 * Errors: EARG for an option it does not take, nested `kioskPage` included (`startServer: unknown option
 * "kioskPage.webdir" (kioskPage options: webDir, topK, log)`), or an empty `kioskPage.webDir` (`Expected a
 * folder for kioskPage.webDir but received ""`: never the current directory); the listen error (a port
 * in use) as is.
 */
export async function startServer(pipeline: StreamPipeline, opts: ServeOptions = {}): Promise<KioskServer> {
  checkOptionKeys('startServer', opts, STREAM_SERVE_OPTION_KEYS);
  checkOptionKeys('startServer', opts.kioskPage, KIOSK_PAGE_OPTION_KEYS, 'kioskPage');
  // an empty webDir would be the current directory, which building the bundle there replaces
  if (opts.kioskPage?.webDir !== undefined) checkDirPath(opts.kioskPage.webDir, 'kioskPage.webDir');
  const host = opts.host ?? '127.0.0.1';
  const token = (opts.token ?? process.env.EDGETUNE_TOKEN) || undefined;
  const guard = createHttpGuard({ host, allowHosts: opts.allowHosts, token });
  const maxUpload = opts.maxUploadBytes ?? 256 * 1024 * 1024;
  const previewMs = 1000 / (opts.previewFps ?? 10);
  const log = opts.log ?? (() => undefined);
  const sse = new Set<ServerResponse>();
  const mjpeg = new Set<ServerResponse>();
  const name = checkModelName(opts.modelName ?? servedName(pipeline.model), 'modelName');
  // each model the pipeline serves gets the next version the first time it is seen serving (on its swap
  // event, or a request answered before that event); a rolled-back-to model keeps its own
  const versions = new WeakMap<Classifier, number>();
  let latest = 0;
  const serving = (): Classifier => {
    const clf = pipeline.model;
    if (!versions.has(clf)) {
      versions.set(clf, ++latest);
      serveAsVersion(clf, name, latest);
    }
    return clf;
  };
  serving();
  const oip = createOipRoutes({ models: () => [serving()], maxBodyBytes: opts.maxInferBytes, log });
  void servedSha256(pipeline.model); // hashed as loaded (a swap's file is named by its own hash)
  const kiosk = opts.kioskPage ? kioskPageRoutes(pipeline, { log, ...opts.kioskPage }) : undefined;

  // One shared JPEG encoder for all preview clients, at most previewFps, newest frame first.
  let encoding = false;
  let lastPreview = 0;
  const onFrame = (frame: Frame) => {
    if (!mjpeg.size || encoding || performance.now() - lastPreview < previewMs) return;
    encoding = true;
    lastPreview = performance.now();
    encodeJpeg(frame, 80).then(
      (jpg) => {
        encoding = false;
        const head = `--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpg.length}\r\n\r\n`;
        for (const res of mjpeg) {
          if (res.writableNeedDrain) continue; // a slow client skips frames instead of buffering them
          res.write(head);
          res.write(jpg);
          res.write('\r\n');
        }
      },
      () => (encoding = false),
    );
  };
  let lastEvent = 0;
  let pendingEvent: NodeJS.Timeout | undefined;
  const broadcast = (event: string, data: unknown) => {
    const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of sse) res.write(msg);
  };
  // `model` the file's id (as before); `modelName`/`modelVersion` as /v2/models serves the model
  const predictionOf = (r: StreamResult) => ({ ...resultJson(r), model: r.model, modelName: name, modelVersion: servedVersion(serving()) });
  const onResult = () => {
    // At most ~10 predictions a second to the page; always the newest.
    if (pendingEvent || !sse.size) return;
    const due = Math.max(0, lastEvent + 100 - performance.now());
    pendingEvent = setTimeout(() => {
      pendingEvent = undefined;
      lastEvent = performance.now();
      if (pipeline.latestResult) broadcast('prediction', predictionOf(pipeline.latestResult));
    }, due);
  };
  const onEvent = (e: { type: string; message: string }) => {
    if (e.type === 'swap' || e.type === 'rollback') {
      const v = servedVersion(serving());
      log(`serving ${JSON.stringify(name)} version ${v} (${path.basename(pipeline.model.modelPath)})`);
      broadcast('status', { ...e, modelName: name, modelVersion: v });
    } else if (e.type !== 'end') broadcast('status', e);
  };
  pipeline.on('frame', onFrame);
  pipeline.on('result', onResult);
  pipeline.on('event', onEvent);

  // Uploaded models this server stored: each is removed once neither the serving model nor the one
  // kept for a rollback is it (after every swap and every rollback), so the disk does not grow per swap.
  const uploads = new Set<string>();
  const pruneUploads = () => {
    const held = new Set(pipeline.heldModels.map((c) => path.resolve(c.modelPath)));
    for (const u of uploads) {
      if (held.has(u)) continue;
      rmSync(u, { force: true });
      uploads.delete(u);
      log(`removed the upload ${JSON.stringify(path.basename(u))}: no longer served`);
    }
  };
  const onRollback = (e: { type: string }) => {
    if (e.type === 'rollback') pruneUploads();
  };
  pipeline.on('event', onRollback);

  const refuseTooLarge = (req: IncomingMessage, res: ServerResponse, limit: number) => {
    log(`refused ${req.method} ${req.url}: body over ${limit} bytes`);
    // The rest of the body is read and dropped (bounded), so the client reads this answer rather than
    // a reset from a connection closed under its upload.
    discardRest(req);
    json(res, 413, { error: `request body over the limit of ${limit} bytes` });
  };

  const swapModel = async (req: IncomingMessage, res: ServerResponse) => {
    if (!opts.loadModel) return json(res, 501, { error: 'this server cannot load models' });
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    let ref: string;
    /** The uploaded file, removed again unless the model it holds ends up serving. */
    let upload: string | undefined;
    /** How an uploaded model is named to the client: the cache path is the server's business. */
    let uploaded: { path: string; name: string } | undefined;
    if (type === 'application/octet-stream') {
      const dir = path.join(cacheDir(), 'uploads');
      mkdirSync(dir, { recursive: true });
      const part = path.join(dir, `.upload-${process.pid}-${randomUUID()}.part`);
      let got: { bytes: number; sha256: string };
      try {
        got = await receiveToFile(req, part, maxUpload);
      } catch (err) {
        if (err instanceof TooLarge) return refuseTooLarge(req, res, err.limit);
        throw err;
      }
      if (got.bytes === 0) {
        rmSync(part, { force: true });
        return json(res, 400, { error: 'empty model upload' });
      }
      ref = path.join(dir, `${got.sha256.slice(0, 16)}.onnx`);
      uploaded = { path: ref, name: `the uploaded model (${got.bytes} bytes)` };
      // The same bytes uploaded before may be serving (or kept for a rollback): not ours to remove.
      if (existsSync(ref)) rmSync(part, { force: true });
      else {
        renameSync(part, ref);
        upload = ref;
      }
      uploads.add(path.resolve(ref));
    } else {
      // Only JSON names a model: a multipart form, or any other body, is refused without being
      // echoed (in the answer or the log).
      // (curl -d sends JSON as x-www-form-urlencoded: the body must still parse as JSON)
      if (type !== 'application/json' && type !== 'text/plain' && type !== 'application/x-www-form-urlencoded' && type !== '') {
        discardRest(req);
        log(`model swap refused (415): content type ${JSON.stringify(type)}`);
        return json(res, 415, { error: `unsupported content type ${JSON.stringify(type)}: send {"model":"<registry id or path>"} as application/json, or the ONNX file as application/octet-stream` });
      }
      let body: string;
      try {
        body = (await readBody(req, 64 * 1024)).toString('utf8');
      } catch (err) {
        if (err instanceof TooLarge) return refuseTooLarge(req, res, err.limit);
        throw err;
      }
      let model: unknown;
      try {
        model = (JSON.parse(body) as { model?: unknown } | null)?.model;
      } catch {
        return json(res, 400, { error: 'body is not JSON: expected {"model":"<registry id or path>"}' });
      }
      if (typeof model !== 'string' || !model) return json(res, 400, { error: 'expected {"model":"<registry id or path>"}' });
      ref = model;
    }
    const refuse = (status: number, err: unknown) => {
      if (upload) {
        rmSync(upload, { force: true });
        uploads.delete(path.resolve(upload));
      }
      const message = uploaded ? messageOf(err).split(uploaded.path).join(uploaded.name) : messageOf(err);
      // quoted: a model name or path cannot start a log line of its own
      log(`model swap refused (${status}): ${JSON.stringify(message)}`);
      json(res, status, { error: message });
    };
    let clf: Classifier;
    try {
      clf = await opts.loadModel(ref);
    } catch (err) {
      return refuse(422, err);
    }
    try {
      // Classifies a real frame with the new model first; the old model serves until that passed.
      await pipeline.swapModel(clf);
    } catch (err) {
      await clf.dispose();
      return refuse(err instanceof EdgetuneError && err.code === 'EMODEL' ? 422 : 409, err);
    }
    log(`model swapped to ${JSON.stringify(clf.id)} (${pipeline.provider})`);
    pruneUploads();
    serving();
    json(res, 200, { model: clf.id, name, version: servedVersion(clf), provider: pipeline.provider, input: `${clf.spec.width}x${clf.spec.height}` });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const refused = guard.check(req);
    if (refused) {
      if (refused.status !== 303) log(`refused ${req.method} ${req.url} (${refused.status}): ${refused.message}`);
      json(res, refused.status, { error: refused.message }, refused.headers);
      if (req.method !== 'GET' && req.method !== 'HEAD') discardRest(req);
      return;
    }
    // The Open Inference Protocol: inference changes nothing, so it follows the read rules.
    if (await oip.handle(req, res)) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'POST' || req.method === 'PUT' || req.method === 'DELETE' || req.method === 'PATCH') {
      if (!token) {
        log(`refused ${req.method} ${url.pathname}: no EDGETUNE_TOKEN configured`);
        return json(res, 401, { error: 'POST requests are disabled: start the server with EDGETUNE_TOKEN set and send it as "Authorization: Bearer <token>"' }, { 'WWW-Authenticate': 'Bearer' });
      }
      if (!tokenMatches(tokenFrom(req), token)) {
        log(`refused ${req.method} ${url.pathname}: missing or wrong token`);
        return json(res, 401, { error: 'missing or wrong token: send "Authorization: Bearer <EDGETUNE_TOKEN>"' }, { 'WWW-Authenticate': 'Bearer' });
      }
      if (req.method === 'POST' && url.pathname === '/model') return swapModel(req, res);
      if (opts.teach && (await opts.teach.handle(req, res, url))) return;
      return json(res, 404, { error: `no such endpoint: ${req.method} ${url.pathname}` });
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && opts.teach && (await opts.teach.handle(req, res, url))) return;
    if ((req.method === 'GET' || req.method === 'HEAD') && kiosk && (await kiosk.handle(req, res, url))) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: `method ${req.method} not allowed` }, { Allow: 'GET, HEAD, POST' });
    switch (url.pathname) {
      case '/':
        return send(res, 200, opts.teach?.page ? PAGE.replace('</body></html>', `${opts.teach.page}</body></html>`) : PAGE, 'text/html; charset=utf-8');
      case '/healthz': {
        const s = pipeline.stats();
        const ok = s.state === 'running' || s.state === 'starting';
        const lastAge = pipeline.latestResult ? Date.now() - pipeline.latestResult.ts : null;
        return json(res, ok ? 200 : 503, { status: ok ? 'ok' : s.state, state: s.state, model: s.model, modelName: name, modelVersion: servedVersion(serving()), provider: pipeline.provider, source: s.source, processed: s.processed, reconnects: s.reconnects, stalls: s.stalls, lastResultAgeMs: lastAge, uptimeSeconds: s.uptimeSeconds });
      }
      case '/metrics':
        // numbered first: a model swapped in whose swap event has not come yet (the one it replaced still
        // being disposed) was labelled by its file's name and version "1"
        serving();
        return send(res, 200, await metricsText(pipeline, opts.teach?.metrics()), EXPOSITION_CONTENT_TYPE);
      case '/snapshot.jpg': {
        const f = pipeline.latestFrame;
        if (!f) return json(res, 503, { error: 'no frame yet' }, { 'Retry-After': '1' });
        return send(res, 200, await encodeJpeg(f, 90), 'image/jpeg');
      }
      case '/events': {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
        res.write(`retry: 2000\n\n`);
        if (pipeline.latestResult) res.write(`event: prediction\ndata: ${JSON.stringify(predictionOf(pipeline.latestResult))}\n\n`);
        sse.add(res);
        req.on('close', () => sse.delete(res));
        return;
      }
      case '/stream.mjpg': {
        res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=frame', 'Cache-Control': 'no-store', Connection: 'close' });
        mjpeg.add(res);
        req.on('close', () => mjpeg.delete(res));
        return;
      }
      default:
        return json(res, 404, { error: `no such endpoint: ${url.pathname}` });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) json(res, err instanceof EdgetuneError && err.code === 'EARG' ? 400 : 500, { error: messageOf(err) });
      else res.end();
    });
  });
  // `Expect: 100-continue` (curl, for big bodies): refuse a declared over-limit upload, or a request
  // without Host or token, before its body is sent.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const refused = guard.check(req);
    const authorized = token !== undefined && tokenMatches(tokenFrom(req), token);
    if (!refused && authorized && req.url?.split('?')[0] === '/model' && declaredOver(req, maxUpload)) {
      log(`refused ${req.method} ${req.url}: declared body over ${maxUpload} bytes`);
      json(res, 413, { error: `request body over the limit of ${maxUpload} bytes` }, { Connection: 'close' });
      return;
    }
    // Refused requests get their answer (421, 401, …) from the handler without the body being sent.
    if (!refused && (authorized || req.method === 'GET' || req.method === 'HEAD' || req.url?.startsWith('/v2/'))) res.writeContinue();
    server.emit('request', req, res);
  });
  // Periodic comments keep SSE connections open through proxies.
  const keepAlive = setInterval(() => {
    for (const res of sse) res.write(': keep-alive\n\n');
  }, 15000);
  keepAlive.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new EdgetuneError('EIO', `cannot listen on ${host}:${opts.port ?? 8080}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`)),
    );
    server.listen(opts.port ?? 8080, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  for (const line of bindWarnings(host, token, `http://${urlHost}:${addr.port}/`)) log(line);
  return {
    url: `http://${urlHost}:${addr.port}/`,
    host: addr.address,
    port: addr.port,
    server,
    async close() {
      clearInterval(keepAlive);
      if (pendingEvent) clearTimeout(pendingEvent);
      pipeline.off('frame', onFrame);
      pipeline.off('event', onRollback);
      pipeline.off('result', onResult);
      pipeline.off('event', onEvent);
      for (const res of [...sse, ...mjpeg]) res.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
