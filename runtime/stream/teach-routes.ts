// The HTTP surface of a running kiosk's teach mode (the routes listed in teach.ts's header): parses each
// request, calls the teach flow, and answers JSON with the status its errors carry (TeachError's, 400 for
// EARG, 422 for EINPUT, 413 for a body over the limit, 405 naming the methods a route takes).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { EdgetuneError, invalidParameter, messageOf } from '../core/errors.js';
import { discardRest, readBody, TooLarge } from '../io/http-body.js';
import { safeDecode } from '../serve/routes.js';
import type { HardFrame } from './hard-frames.js';
import { json } from './serve.js';
import { isTeachLabel, TEACH_LABEL_RULE } from '../core/labels.js';
import type { TeachTrainResult } from './taught-models.js';

/** A failed training, answered with `status` (409 busy, 422 refused model, 400 nothing to train, 503 stopped by shutdown). */
export class TeachError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Throws EARG unless `label` can be a class folder name (core/labels.ts isTeachLabel: letters, digits, space, `_ . + -`; 1–64 characters; no path parts). */
export function checkLabel(label: string | null | undefined): string {
  if (!isTeachLabel(label)) throw new EdgetuneError('EARG', `Expected a label of ${TEACH_LABEL_RULE} but received ${JSON.stringify(label ?? '')}`);
  return label;
}

/** One label's examples (GET /teach). `new`: not a class of the base model (trained as an added class). */
export interface TeachLabel {
  label: string;
  count: number;
  files: string[];
  new: boolean;
}

/** GET /teach: `labels` the examples per label, `base` the base model's classes, `training` whether one runs, `progress` its latest stage (with `seconds` since it started), `last` the last successful training's result (null before one). */
export interface TeachStatus {
  labels: TeachLabel[];
  base: string[];
  training: boolean;
  progress: Record<string, unknown> | null;
  last: TeachTrainResult | null;
}

/** What the routes call: the teach flow's operations (teach.ts createTeach, where each is documented). */
export interface TeachRouteTarget {
  addExample(label: string, bytes: Uint8Array): Promise<{ label: string; count: number; file: string }>;
  captureFrames(label: string, n: number, signal?: AbortSignal): Promise<{ label: string; count: number; added: number }>;
  removeExample(label: string, file: string): Promise<{ label: string; count: number }>;
  train(opts?: { tolerance?: number }): Promise<TeachTrainResult>;
  status(): Promise<TeachStatus>;
  hard(): Promise<HardFrame[]>;
  /** A hard frame's JPEG bytes; undefined when there is none by that name. */
  hardFrame(file: string): Promise<Uint8Array | undefined>;
  labelHard(label: string, file: string): Promise<{ label: string; count: number; file: string }>;
}

/** Limits the routes apply: `keepHard` (shown by GET /teach/hard), `maxFrames` for `&frames=N`, `maxImageBytes` per upload; `log` for unexpected errors (answered 500). */
export interface TeachRouteOptions {
  keepHard: number;
  maxFrames: number;
  maxImageBytes: number;
  log: (line: string) => void;
}

const send = (res: ServerResponse, status: number, obj: unknown) => json(res, status, obj);

/** The request handler of the teach routes: resolves false when the request is not a teach route. Token and Host checks are the caller's (serve.ts). */
export function teachRoutes(t: TeachRouteTarget, o: TeachRouteOptions): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const answer = async (req: IncomingMessage, res: ServerResponse, status: number, work: () => Promise<unknown>) => {
    try {
      send(res, status, await work());
    } catch (err) {
      if (err instanceof TooLarge) {
        discardRest(req); // the client reads the 413, not a reset
        return send(res, 413, { error: err.message });
      }
      if (err instanceof TeachError) return send(res, err.status, { error: err.message });
      if (err instanceof EdgetuneError && (err.code === 'EARG' || err.code === 'EINPUT')) return send(res, err.code === 'EARG' ? 400 : 422, { error: messageOf(err) });
      o.log(`teach: ${messageOf(err)}`);
      send(res, 500, { error: messageOf(err) });
    }
  };

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const p = url.pathname;
    if (p !== '/teach' && !p.startsWith('/teach/')) return false;
    // HEAD is GET without the body (Node's response sends no body for it): was a 404 where GET answered
    const m = req.method === 'HEAD' ? 'GET' : req.method;
    if (m === 'GET' && p === '/teach') {
      await answer(req, res, 200, () => t.status());
    } else if (m === 'GET' && p === '/teach/hard') {
      await answer(req, res, 200, async () => ({ keep: o.keepHard, frames: await t.hard() }));
    } else if (m === 'GET' && p.startsWith('/teach/hard/')) {
      const f = safeDecode(p.slice('/teach/hard/'.length));
      // read, not checked then read: a newer frame may drop this one in between (404 then, not 500)
      const jpg = await t.hardFrame(f);
      if (!jpg) send(res, 404, { error: `no hard frame ${f}` });
      else {
        res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': jpg.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
        res.end(jpg);
      }
    } else if (m === 'POST' && p === '/teach/examples') {
      const label = url.searchParams.get('label') ?? '';
      const frames = url.searchParams.get('frames');
      const hardFile = url.searchParams.get('hard');
      if (frames !== null) {
        const ac = new AbortController();
        res.on('close', () => ac.abort());
        req.resume();
        // a value that is no integer is named as sent ("1e2"), not as the NaN it parses to
        await answer(req, res, 201, () => (/^\d+$/.test(frames) ? t.captureFrames(label, Number(frames), ac.signal) : Promise.reject(invalidParameter('frames', `integer between 1 and ${o.maxFrames}`, frames))));
      } else if (hardFile !== null) {
        req.resume();
        await answer(req, res, 201, () => t.labelHard(label, hardFile));
      } else {
        await answer(req, res, 201, async () => t.addExample(checkLabel(label), await readBody(req, o.maxImageBytes)));
      }
    } else if (m === 'POST' && p === '/teach/train') {
      req.resume();
      const tol = url.searchParams.get('tolerance');
      const tolerance = tol === null || tol.trim() === '' ? NaN : Number(tol);
      await answer(req, res, 200, () => (tol === null ? t.train() : Number.isFinite(tolerance) ? t.train({ tolerance }) : Promise.reject(invalidParameter('tolerance', 'number between 0 and 1', tol))));
    } else if (m === 'DELETE' && p.startsWith('/teach/examples/')) {
      const parts = p.slice('/teach/examples/'.length).split('/').map(safeDecode);
      await answer(req, res, 200, () => (parts.length === 2 ? t.removeExample(parts[0]!, parts[1]!) : Promise.reject(new TeachError(404, `expected DELETE /teach/examples/<label>/<file>, got ${p}`))));
    } else {
      // a teach route asked with another method: 405 naming the ones it takes (was 404 "no such endpoint")
      const allow = p === '/teach' || p === '/teach/hard' || p.startsWith('/teach/hard/') ? 'GET' : p === '/teach/examples' || p === '/teach/train' ? 'POST' : p.startsWith('/teach/examples/') ? 'DELETE' : undefined;
      if (allow) {
        if (m !== 'GET' && m !== 'HEAD') discardRest(req);
        json(res, 405, { error: `method ${req.method} not allowed on ${p} (${allow})` }, { Allow: allow });
      } else send(res, 404, { error: `no such endpoint: ${req.method} ${p}` });
    }
    return true;
  };
}
