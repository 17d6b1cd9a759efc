// The kiosk's HTTP server: serves the browser kiosk (runtime/kiosk/page/, bundled into dist/web by build.ts)
// over node:http, together with the model file and its description (labels + preprocessing spec from
// the registry, or from the `edgetune.model` metadata a fine-tuned export embeds), so one command on
// a small board gives a page that classifies the camera live and can be taught new classes. Binds to
// 127.0.0.1 unless --host says otherwise; every request passes runtime/io/http-guard.ts first (Host
// check against DNS rebinding; the token for every request on a non-loopback bind when one is set).
// The bundle is built on demand when missing or older than its sources (an installed package serves
// the bundle built at pack time) and served by `sirv` (content
// types, ETags, only files inside the bundle). Pages are served cross-origin isolated (COOP/COEP) so
// onnxruntime-web may use threads. The Open Inference Protocol routes (/v2/…, runtime/serve/routes.ts)
// serve the same model from Node (its session opens on the first inference request).

import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import sirv from 'sirv';
import { EdgetuneError } from '../core/errors.js';
import { bindWarnings, createHttpGuard } from '../io/http-guard.js';
import { checkDirPath } from '../io/paths.js';
import { MAX_MODEL_FILE_BYTES, openRegularFile } from '../io/read-file.js';
import { describeModel } from '../../models/describe.js';
import { loadClassifier } from '../classify/classifier.js';
import { createOipRoutes } from '../serve/routes.js';
import { cardFilePath, classScoresProblem, undescribedFields } from '../core/model-card.js';
import type { KioskConfig } from './config.js';
import { buildWeb, bundleEntry, defaultWebOutDir, hasPageSources, newestSourceTime } from './build.js';

export type { KioskConfig } from './config.js';

export interface KioskOptions {
  model: string;
  port?: number;
  host?: string;
  topK?: number;
  providers?: string;
  rebuild?: boolean;
  /** Bundle folder. Default dist/web. */
  webDir?: string;
  /** Host names (or addresses) served besides loopback and the bound address (--allow-host). */
  allowHosts?: readonly string[];
  /** Token every request needs on a non-loopback bind. Default process.env.EDGETUNE_TOKEN. */
  token?: string;
  /** Largest Open Inference Protocol request body, bytes. Default routes.ts DEFAULT_MAX_BODY_BYTES. */
  maxInferBytes?: number;
  log?: (line: string) => void;
}

export interface KioskServer {
  url: string;
  config: KioskConfig;
  server: Server;
  close(): Promise<void>;
}

/** The model's card for the page; a model whose preprocessing or labels are assumed is refused (DESCRIPTION_NEEDS.kiosk). */
export async function kioskConfig(model: string, topK = 5, providers?: string): Promise<{ config: KioskConfig; file: string }> {
  const d = await describeModel(model);
  const missing = undescribedFields(d.card, 'kiosk');
  if (missing.length) {
    throw new EdgetuneError(
      'EMODEL',
      `${d.path}: nothing describes its ${missing.join(', ')} (no registry entry, card file or embedded "edgetune.model" metadata), so the kiosk would show guessed labels on guessed pixels; describe it (${cardFilePath(d.importedFrom ?? d.path)}, or edgetune card), or use a registry id or a model exported by edgetune`,
      { subject: d.path },
    );
  }
  // the page shows class scores: a regression model's values read as "petals 8391%"
  const problem = classScoresProblem(d.card.task, d.path, 'the kiosk page shows');
  if (problem) throw new EdgetuneError('EARG', problem, { subject: d.path });
  return { config: { version: 1, model: { ...d.card, url: '/model.onnx', bytes: d.bytes.byteLength }, topK, providers }, file: d.path };
}

/**
 * Build the bundle when it is missing, older than its sources, or a rebuild is asked for. An installed
 * package has no page sources: it serves the bundle built at pack time (prepack → dist/web), and a
 * missing bundle there is an error that says so.
 */
export async function ensureBundle(webDir: string, rebuild: boolean, log: (l: string) => void): Promise<void> {
  const entry = bundleEntry(webDir);
  if (!hasPageSources()) {
    if (!existsSync(entry)) {
      throw new EdgetuneError(
        'EDEPEND',
        `kiosk page bundle missing (${entry}) and this copy of edgetune has no page sources to build it from: ` +
          `reinstall edgetune (its package ships the bundle in dist/web), or run "npm run build:web" in a source checkout`,
        { subject: entry },
      );
    }
    if (rebuild) log('edgetune kiosk: --rebuild ignored: no page sources in this package; serving the prebuilt bundle');
    return;
  }
  let why: string | undefined;
  if (rebuild) why = 'rebuild asked for';
  else if (!existsSync(entry)) why = 'no bundle yet';
  else {
    const src = await newestSourceTime();
    if (src > (await stat(entry)).mtimeMs) why = 'sources changed';
  }
  if (!why) return;
  log(`edgetune kiosk: building the page bundle (${why})…`);
  const r = await buildWeb({ outDir: webDir, log });
  log(`edgetune kiosk: bundle built in ${(r.ms / 1000).toFixed(1)}s`);
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * The model file (outside the bundle), revalidated on every load: a regular file of at most
 * MAX_MODEL_FILE_BYTES (runtime/io/read-file.ts), streamed from the handle that was checked, so a
 * file replaced by a FIFO or a device is refused (404), never read.
 */
export async function serveModel(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  let opened: Awaited<ReturnType<typeof openRegularFile>>;
  try {
    opened = await openRegularFile(file, { what: 'model file', maxBytes: MAX_MODEL_FILE_BYTES, code: 'EMODEL' });
  } catch {
    send(res, 404, 'not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': opened.size, 'cache-control': 'no-cache' });
  if (req.method === 'HEAD') {
    res.end();
    await opened.handle.close();
    return;
  }
  const stream = opened.handle.createReadStream({ start: 0, end: Math.max(0, opened.size - 1), autoClose: true });
  if (opened.size === 0) {
    res.end();
    stream.destroy();
    return;
  }
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/** The page's headers: cross-origin isolation lets onnxruntime-web use SharedArrayBuffer (wasm threads). */
export function crossOriginIsolate(res: ServerResponse): void {
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-embedder-policy', 'require-corp');
  res.setHeader('x-content-type-options', 'nosniff');
}

/** The bundle's files (sirv: content types, ETags, only files inside `webDir`, no dotfiles); 404 for the rest. Call it once the bundle is there (sirv indexes the folder when made). */
export function pageStatics(webDir: string): ReturnType<typeof sirv> {
  return sirv(webDir, {
    etag: true,
    dotfiles: false,
    // onnxruntime-web's files change only with the package version; the page's own files revalidate.
    setHeaders: (res, pathname) => res.setHeader('cache-control', pathname.startsWith('/ort/') ? 'public, max-age=86400' : 'no-cache'),
    onNoMatch: (_req, res) => send(res, 404, 'not found\n'),
  });
}

export async function startKiosk(o: KioskOptions): Promise<KioskServer> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const webDir = path.resolve(o.webDir === undefined ? defaultWebOutDir() : checkDirPath(o.webDir, 'webDir'));
  const { config, file } = await kioskConfig(o.model, o.topK ?? 5, o.providers);
  const configJson = JSON.stringify(config);
  const host = o.host ?? '127.0.0.1';
  const token = (o.token ?? process.env.EDGETUNE_TOKEN) || undefined;
  const guard = createHttpGuard({ host, allowHosts: o.allowHosts, token });
  // Made once the bundle is there (sirv indexes the folder when created: only its files are served).
  let statics: ReturnType<typeof sirv> | undefined;
  // The same model for Open Inference Protocol clients, described now, its session opened on first use.
  const served = await loadClassifier(o.model, { lazy: true });
  const oip = createOipRoutes({ models: () => [served], maxBodyBytes: o.maxInferBytes, log: (l) => log(`edgetune kiosk: ${l}`) });

  const server = createServer((req, res) => {
    crossOriginIsolate(res);
    const refused = guard.check(req);
    if (refused) {
      if (refused.status !== 303) log(`edgetune kiosk: refused ${req.method} ${req.url} (${refused.status}): ${refused.message}`);
      for (const [k, v] of Object.entries(refused.headers)) res.setHeader(k, v);
      send(res, refused.status, refused.message + '\n');
      return;
    }
    if (req.url === '/v2' || req.url?.startsWith('/v2/')) {
      void oip.handle(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n');
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://kiosk').pathname);
    } catch {
      send(res, 400, 'bad request\n');
      return;
    }
    if (pathname === '/api/config') {
      send(res, 200, configJson, 'application/json');
      return;
    }
    if (pathname === config.model.url) {
      void serveModel(req, res, file);
      return;
    }
    const target = path.resolve(webDir, pathname.slice(1));
    if (target !== webDir && !target.startsWith(webDir + path.sep)) {
      send(res, 403, 'forbidden\n');
      return;
    }
    if (!statics) {
      send(res, 503, 'the page bundle is being built\n');
      return;
    }
    statics(req, res);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new EdgetuneError(
          'EIO',
          err.code === 'EADDRINUSE' ? `port ${o.port ?? 8080} on ${host} is already in use (choose another with --port)` : `cannot listen on ${host}:${o.port ?? 8080}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    server.listen(o.port ?? 8080, host, () => resolve());
  });
  // Built once the port is ours, so a second kiosk that cannot start never touches the bundle.
  try {
    await ensureBundle(webDir, o.rebuild ?? false, log);
  } catch (err) {
    server.close();
    throw err;
  }
  statics = pageStatics(webDir);
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 8080);
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  for (const line of bindWarnings(host, token, `http://${shown}:${port}/`)) log(`edgetune kiosk: ${line}`);
  return {
    url: `http://${shown}:${port}/`,
    config,
    server,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await served.dispose();
    },
  };
}

