// `edgetune kiosk`: serves the browser kiosk (web/, bundled into dist/web by scripts/build-web.ts)
// over node:http, together with the model file and its description (labels + preprocessing spec from
// the registry, or from the `edgetune.model` metadata a fine-tuned export embeds), so one command on
// a small board gives a page that classifies the camera live and can be taught new classes. Binds to
// 127.0.0.1 unless --host says otherwise. The bundle is built on demand when missing or older than
// its sources. Pages are served cross-origin isolated (COOP/COEP) so onnxruntime-web may use threads.

import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { intOption, interruptSignal, parse, type Command, type CommandIO } from '../cli-util.js';
import { EdgetuneError, messageOf } from '../errors.js';
import { readMetadataProps, parseModelInfo, type EmbeddedModelInfo } from '../model-info.js';
import type { PreprocessSpec } from '../preprocess.js';
import { checkSpec } from '../preprocess.js';
import { labelsOf, resolveModel } from '../../models/loader.js';
import { specOf } from '../../models/registry.js';
import { buildWeb, bundleEntry, defaultWebOutDir, newestSourceTime } from '../../scripts/build-web.js';

/** What the page reads from /api/config. */
export interface KioskConfig {
  version: 1;
  model: {
    /** Registry id, or the file name of a model given by path. */
    id: string;
    /** Where the page fetches the ONNX bytes. */
    url: string;
    bytes: number;
    labels: string[];
    /** Output index of label 0. */
    labelOffset: number;
    outputKind: 'logits' | 'probabilities';
    inputName?: string;
    outputName?: string;
    preprocess: PreprocessSpec;
    /** Where head training cuts the backbone (registry `embedding`); absent: found from the graph. */
    embedding?: { tensor: string | null; dims: number; pool?: 'none' | 'global-average' };
    provenance?: Record<string, unknown>;
  };
  /** Predictions shown live. */
  topK: number;
  /** Default provider order for the page (`?ep=` overrides). */
  providers?: string;
}

const usage = `Usage: edgetune kiosk [options]

Serve the browser kiosk: live camera classification and teach-by-camera (train a new head in the
page), with onnxruntime-web on WebNN (NPU) → WebGPU → wasm. Open the printed address in a browser
(e.g. chromium --kiosk http://127.0.0.1:8080). Page options: ?ep=webgpu,wasm forces a provider order.

Options:
  --model <id|file>   registry id or .onnx path (default mobilenetv2-int8); fine-tuned exports work too
  --port <n>          TCP port (default 8080; 0 picks a free one)
  --host <addr>       address to bind (default 127.0.0.1; 0.0.0.0 to serve the network)
  --top <n>           predictions shown (default 5)
  --ep <list>         default provider order for the page, e.g. webgpu,wasm (default webnn,webgpu,wasm)
  --rebuild           rebuild the page bundle before serving`;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.onnx': 'application/octet-stream',
};

export interface KioskOptions {
  model: string;
  port?: number;
  host?: string;
  topK?: number;
  providers?: string;
  rebuild?: boolean;
  /** Bundle folder. Default dist/web. */
  webDir?: string;
  log?: (line: string) => void;
}

export interface KioskServer {
  url: string;
  config: KioskConfig;
  server: Server;
  close(): Promise<void>;
}

/** The model's description for the page: registry entry, else embedded metadata. */
export async function kioskConfig(model: string, topK = 5, providers?: string): Promise<{ config: KioskConfig; file: string }> {
  const resolved = await resolveModel(model);
  const bytes = (await stat(resolved.path)).size;
  const base = { url: '/model.onnx', bytes };
  let m: KioskConfig['model'];
  if (resolved.entry) {
    const e = resolved.entry;
    m = {
      ...base,
      id: e.id,
      labels: await labelsOf(e),
      labelOffset: e.labelOffset,
      outputKind: e.output.kind,
      inputName: e.input.name,
      outputName: e.output.name,
      preprocess: checkSpec(specOf(e)),
      embedding: e.embedding ? { tensor: e.embedding.tensor, dims: e.embedding.dims, pool: e.embedding.pool } : undefined,
    };
  } else {
    let info: EmbeddedModelInfo | undefined;
    try {
      info = parseModelInfo(readMetadataProps(await readFile(resolved.path)));
    } catch (err) {
      throw new EdgetuneError('EMODEL', `${resolved.path}: cannot read the model's metadata (${messageOf(err)})`, { subject: resolved.path });
    }
    if (!info) {
      throw new EdgetuneError(
        'EMODEL',
        `${resolved.path}: no registry entry and no embedded "edgetune.model" metadata, so the kiosk does not know its labels and preprocessing; use a registry id or a model exported by edgetune`,
        { subject: resolved.path },
      );
    }
    m = {
      ...base,
      id: path.basename(resolved.path),
      labels: info.labels,
      labelOffset: info.labelOffset ?? 0,
      outputKind: info.outputKind,
      outputName: info.outputName,
      preprocess: checkSpec({ ...info.preprocess }),
      provenance: info.provenance,
    };
  }
  return { config: { version: 1, model: m, topK, providers }, file: resolved.path };
}

/** Build the bundle when it is missing, older than its sources, or a rebuild is asked for. */
export async function ensureBundle(webDir: string, rebuild: boolean, log: (l: string) => void): Promise<void> {
  const entry = bundleEntry(webDir);
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

async function serveFile(req: IncomingMessage, res: ServerResponse, file: string, cache: string): Promise<void> {
  let st;
  try {
    st = await stat(file);
  } catch {
    send(res, 404, 'not found\n');
    return;
  }
  if (!st.isFile()) {
    send(res, 404, 'not found\n');
    return;
  }
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': st.size,
    'cache-control': cache,
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

export async function startKiosk(o: KioskOptions): Promise<KioskServer> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const webDir = path.resolve(o.webDir ?? defaultWebOutDir());
  const { config, file } = await kioskConfig(o.model, o.topK ?? 5, o.providers);
  const configJson = JSON.stringify(config);

  const server = createServer((req, res) => {
    // Cross-origin isolation lets onnxruntime-web use SharedArrayBuffer (wasm threads).
    res.setHeader('cross-origin-opener-policy', 'same-origin');
    res.setHeader('cross-origin-embedder-policy', 'require-corp');
    res.setHeader('x-content-type-options', 'nosniff');
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
      void serveFile(req, res, file, 'no-cache');
      return;
    }
    const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
    const target = path.resolve(webDir, rel);
    if (target !== webDir && !target.startsWith(webDir + path.sep)) {
      send(res, 403, 'forbidden\n');
      return;
    }
    void serveFile(req, res, target, rel.startsWith('ort/') ? 'public, max-age=86400' : 'no-cache');
  });

  const host = o.host ?? '127.0.0.1';
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
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 8080);
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${port}/`,
    config,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const kiosk: Command = {
  summary: 'serve the browser kiosk (live camera classification, teach new classes in the page)',
  usage,
  async run(argv: string[], io: CommandIO) {
    const { values: v, positionals } = parse(
      argv,
      {
        model: { type: 'string', default: 'mobilenetv2-int8' },
        port: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        top: { type: 'string' },
        ep: { type: 'string' },
        rebuild: { type: 'boolean', default: false },
      },
      false,
    );
    void positionals;
    const port = intOption('port', v.port as string | undefined, 8080, 0);
    if (port > 65535) throw new EdgetuneError('EARG', `Expected integer between 0 and 65535 for --port but received "${v.port as string}"`);
    const topK = intOption('top', v.top as string | undefined, 5);
    const ep = v.ep as string | undefined;
    if (ep !== undefined) {
      const known = ['webnn', 'webnn-gpu', 'webnn-cpu', 'webgpu', 'wasm'];
      for (const p of ep.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!known.includes(p)) throw new EdgetuneError('EARG', `Unknown execution provider "${p}" for the kiosk: expected one of ${known.join(', ')}`);
      }
    }
    const k = await startKiosk({
      model: v.model as string,
      port,
      host: v.host as string,
      topK,
      providers: ep,
      rebuild: Boolean(v.rebuild),
      log: (l) => io.stderr.write(l + '\n'),
    });
    io.stdout.write(`edgetune kiosk: serving ${k.config.model.id} at ${k.url} (Ctrl-C to stop)\n`);
    const stop = interruptSignal();
    await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    stop.dispose();
    await k.close();
    io.stderr.write('edgetune kiosk: stopped\n');
    return 0;
  },
};
