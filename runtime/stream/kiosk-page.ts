// The kiosk page (runtime/kiosk/page/, the bundle `edgetune kiosk` serves) under /kiosk/ of the watch
// server (runtime/stream/serve.ts) when it teaches (`watch --teach`): the page finds the teach API there
// (GET /teach) and teaches through it (runtime/kiosk/page/teach-server.ts). Routes:
//   GET /kiosk             → 308 /kiosk/
//   GET /kiosk/api/config  the serving model's description (runtime/kiosk/server.ts kioskConfig), its url `model.onnx`
//   GET /kiosk/model.onnx  the serving model's file (read afresh each time: after a swap, the new one)
//   GET /kiosk/…           the bundle's files (dist/web; built when missing or older than its sources)
// Cross-origin isolated like the kiosk (onnxruntime-web threads). The server's Host/token rules apply first.

import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { messageOf } from '../core/errors.js';
import { checkDirPath } from '../io/paths.js';
import { defaultWebOutDir } from '../kiosk/build.js';
import { crossOriginIsolate, ensureBundle, kioskConfig, pageStatics, serveModel } from '../kiosk/server.js';
import type { StreamPipeline } from './pipeline.js';
import type { AssertNever } from '../core/options.js';

export interface KioskPageOptions {
  /** Bundle folder. Default dist/web. */
  webDir?: string;
  /** Predictions the page shows. Default 5. */
  topK?: number;
  log?: (line: string) => void;
}

/** Every key of KioskPageOptions (startServer's `kioskPage`), for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const KIOSK_PAGE_OPTION_KEYS = ['webDir', 'topK', 'log'] as const satisfies readonly (keyof KioskPageOptions)[];
/** `never` while KIOSK_PAGE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedKioskPageOption = AssertNever<Exclude<keyof KioskPageOptions, (typeof KIOSK_PAGE_OPTION_KEYS)[number]>>;

/** The /kiosk/ routes of `pipeline`'s server; `handle` is false for any other path. The bundle is built (when needed) in the background: 503 until then. */
export function kioskPageRoutes(pipeline: StreamPipeline, o: KioskPageOptions = {}): { handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> } {
  const webDir = path.resolve(o.webDir === undefined ? defaultWebOutDir() : checkDirPath(o.webDir, 'webDir'));
  const log = o.log ?? (() => undefined);
  let statics: ReturnType<typeof pageStatics> | undefined;
  let failed: string | undefined;
  // ensureBundle speaks as `edgetune kiosk`; here it is watch's kiosk page
  const ready = ensureBundle(webDir, false, (l) => log(l.replace(/^edgetune kiosk: /, 'kiosk page: '))).then(
    () => void (statics = pageStatics(webDir)),
    (err) => {
      failed = messageOf(err);
      log(`the kiosk page (/kiosk/) is not served: ${failed}`);
    },
  );
  const text = (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
  };
  return {
    async handle(req, res, url) {
      const p = url.pathname;
      if (p === '/kiosk') {
        res.writeHead(308, { Location: '/kiosk/' + url.search, 'Content-Length': 0 });
        res.end();
        return true;
      }
      if (!p.startsWith('/kiosk/')) return false;
      crossOriginIsolate(res);
      const sub = p.slice('/kiosk'.length);
      if (sub === '/api/config') {
        try {
          const { config } = await kioskConfig(pipeline.model.modelPath, o.topK ?? 5);
          text(res, 200, JSON.stringify({ ...config, model: { ...config.model, url: 'model.onnx' } }), 'application/json; charset=utf-8');
        } catch (err) {
          text(res, 422, JSON.stringify({ error: messageOf(err) }), 'application/json; charset=utf-8');
        }
        return true;
      }
      if (sub === '/model.onnx') {
        await serveModel(req, res, pipeline.model.modelPath);
        return true;
      }
      if (!statics && !failed) await Promise.race([ready, new Promise((r) => setTimeout(r, 100))]);
      if (!statics) {
        text(res, 503, failed ? `the kiosk page is not available: ${failed}\n` : 'the page bundle is being built\n');
        return true;
      }
      // sirv serves the bundle's own paths: the prefix off (the query kept)
      req.url = sub + url.search;
      statics(req, res);
      return true;
    },
  };
}
