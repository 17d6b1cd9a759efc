// The kiosk HTTP service on a live pipeline (ffmpeg's test pattern, real model), on an ephemeral port
// on 127.0.0.1: every endpoint answers with the right content, POST needs the token, and POST /model
// swaps the model that serves the stream.

import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../../../devices/index.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { metricsText, parseListen, startServer, type KioskServer } from '../../../runtime/stream/serve.js';
import { geometryOfClassifier, StreamPipeline } from '../../../runtime/stream/pipeline.js';
import { servedName, servedVersion } from '../../../runtime/serve/routes.js';
import { toTensor } from '../../../runtime/image/preprocess.js';
import { execDir, shared, tempDir } from '../../helpers.js';

process.env.EDGETUNE_MODEL_PATH = shared('models');
const TOKEN = 'test-token-7f3a';

let pipeline: StreamPipeline;
let server: KioskServer;
let running: Promise<unknown>;
let sourcePid: () => number | undefined;
const ac = new AbortController();
/**
 * The stream's ffmpeg, through a wrapper that waits to start while the file `hold` exists beside it: the
 * reconnect test holds the restart until it has seen the service report the dead source (the backoff
 * alone made that a race against the test's own requests on a slow machine).
 */
const ffmpegDir = execDir('edgetune-serve-ffmpeg-'); // not under a noexec /tmp
const hold = path.join(ffmpegDir, 'hold');
const ffmpegPath = path.join(ffmpegDir, 'ffmpeg');
writeFileSync(ffmpegPath, `#!/bin/sh\nwhile [ -e '${hold}' ]; do sleep 0.05; done\nexec ffmpeg "$@"\n`, { mode: 0o755 });

beforeAll(async () => {
  const clf = await loadClassifier('squeezenet1.1', { threads: 1 });
  const uri = 'test:smptebars?rate=15';
  // A slow first reconnect, as the test reports it.
  let source = await createSource(uri, { ...geometryOfClassifier(clf), reconnect: { initialMs: 1500 }, ffmpegPath });
  sourcePid = () => source.pid;
  pipeline = new StreamPipeline(source, clf, {
    signal: ac.signal,
    threshold: 0.3,
    reopen: async (g) => (source = await createSource(uri, { ...g, reconnect: { initialMs: 1500 }, ffmpegPath })),
  });
  running = pipeline.run();
  server = await startServer(pipeline, { port: 0, token: TOKEN, loadModel: (ref) => loadClassifier(ref, { threads: 1 }) });
  // Wait for the first result so every endpoint has data.
  await new Promise((r) => pipeline.once('result', r));
});

afterAll(async () => {
  await server?.close();
  ac.abort();
  await running;
  await pipeline?.model.dispose();
});

/** Read a streaming response until `until` matches the text so far (or `bytes` are in). */
async function readUntil(res: Response, until: (buf: Buffer) => boolean): Promise<Buffer> {
  const reader = res.body!.getReader();
  let buf = Buffer.alloc(0);
  while (!until(buf)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf = Buffer.concat([buf, Buffer.from(value)]);
  }
  await reader.cancel();
  return buf;
}

describe('kiosk HTTP service', () => {
  it('binds 127.0.0.1 by default', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(parseListen(':8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('0.0.0.0:9000')).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(parseListen('[::1]:81')).toEqual({ host: '::1', port: 81 });
    expect(() => parseListen('host:99999')).toThrow('Expected host:port (e.g. 127.0.0.1:8080) for --serve but received "host:99999"');
  });

  it('serves the live page, health, metrics and a snapshot', async () => {
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect(html).toContain('<img src="/stream.mjpg"');
    expect(html).toContain("new EventSource('/events')");

    const health = await fetch(new URL('/healthz', server.url));
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', state: 'running', model: 'squeezenet1.1', modelName: 'squeezenet1.1', modelVersion: '1', source: 'test:smptebars?rate=15' });

    const metrics = await (await fetch(new URL('/metrics', server.url))).text();
    expect(metrics).toMatch(/^# HELP edgetune_up /m);
    expect(metrics).toMatch(/^edgetune_up 1$/m);
    // the served name and version (as /v2/models says them), then the file's base name
    expect(metrics).toMatch(new RegExp(`^edgetune_model_info\\{model="squeezenet1\\.1",version="1",file="${path.basename(pipeline.model.modelPath).replace(/\./g, '\\.')}",sha256="[0-9a-f]{64}",provider="cpu",source="test:smptebars\\?rate=15"\\} 1$`, 'm'));
    const processed = Number(/^edgetune_frames_processed_total (\d+)$/m.exec(metrics)?.[1]);
    expect(processed).toBeGreaterThanOrEqual(1);
    // frames whose smoothed label was "unknown" (threshold 0.3 on colour bars): counted, never more than processed
    const unknown = Number(/^edgetune_frames_unknown_total (\d+)$/m.exec(metrics)?.[1]);
    expect(unknown).toBeGreaterThanOrEqual(0);
    expect(unknown).toBeLessThanOrEqual(processed);
    expect(metrics).toMatch(/^edgetune_stage_latency_seconds_bucket\{stage="inference",le="\+Inf"\} \d+$/m);
    expect(metrics).toMatch(/^# TYPE edgetune_frames_dropped_total counter$/m);
    expect(await metricsText(pipeline)).toContain('edgetune_source_reconnects_total 0');

    const snap = await fetch(new URL('/snapshot.jpg', server.url));
    expect(snap.status).toBe(200);
    expect(snap.headers.get('content-type')).toBe('image/jpeg');
    const meta = await sharp(Buffer.from(await snap.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 224, 224]);

    expect((await fetch(new URL('/nope', server.url))).status).toBe(404);
  });

  it('streams predictions over SSE and an MJPEG preview', async () => {
    const res = await fetch(new URL('/events', server.url));
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = (await readUntil(res, (b) => /event: prediction\ndata: .*\n\n/.test(b.toString()))).toString();
    const data = JSON.parse(/event: prediction\ndata: (.*)\n/.exec(text)![1]!);
    expect(Object.keys(data)).toEqual(['seq', 'ts', 'pts', 'top', 'smoothed', 'ms', 'model', 'modelName', 'modelVersion']);
    expect(data.top).toHaveLength(5);
    expect([data.model, data.modelName, data.modelVersion]).toEqual(['squeezenet1.1', 'squeezenet1.1', '1']);

    const mj = await fetch(new URL('/stream.mjpg', server.url));
    expect(mj.headers.get('content-type')).toBe('multipart/x-mixed-replace; boundary=frame');
    const buf = await readUntil(mj, (b) => {
      const m = /Content-Length: (\d+)\r\n\r\n/.exec(b.toString('latin1'));
      return !!m && b.length >= b.toString('latin1').indexOf('\r\n\r\n') + 4 + Number(m[1]);
    });
    const head = buf.toString('latin1');
    expect(head.startsWith('--frame\r\nContent-Type: image/jpeg\r\n')).toBe(true);
    const start = head.indexOf('\r\n\r\n') + 4;
    const len = Number(/Content-Length: (\d+)/.exec(head)![1]);
    const meta = await sharp(buf.subarray(start, start + len)).metadata();
    expect([meta.format, meta.width]).toEqual(['jpeg', 224]);
  });

  it('refuses POST without the right token (401) and hot-swaps the model with it', async () => {
    const url = new URL('/model', server.url);
    const body = JSON.stringify({ model: 'mobilenetv1-0.25-128' });
    const none = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await none.json()).error).toMatch(/missing or wrong token/);
    const wrong = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect((await fetch(new URL('/other', server.url), { method: 'POST' })).status).toBe(401);
    expect(pipeline.model.id).toBe('squeezenet1.1');

    const auth = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
    const bad = await fetch(url, { method: 'POST', body: JSON.stringify({ model: 'no-such-model' }), headers: auth });
    expect(bad.status).toBe(422);
    expect((await bad.json()).error).toMatch(/no-such-model/);

    const events = await fetch(new URL('/events', server.url));
    const ok = await fetch(url, { method: 'POST', body, headers: auth });
    expect(ok.status).toBe(200);
    // served under the name the stream started with, as its next version (Triton: a new version per model)
    expect(await ok.json()).toEqual({ model: 'mobilenetv1-0.25-128', name: 'squeezenet1.1', version: '2', provider: 'cpu', input: '128x128' });
    // (the source reopened for 128x128 says so first)
    const isSwap = /event: status\ndata: (\{"type":"swap".*)\n\n/;
    const swapped = JSON.parse(isSwap.exec((await readUntil(events, (b) => isSwap.test(b.toString()))).toString())![1]!);
    expect(swapped).toMatchObject({ type: 'swap', modelName: 'squeezenet1.1', modelVersion: '2' });
    const meta = await (await fetch(new URL('/v2/models/squeezenet1.1', server.url))).json();
    expect([meta.name, meta.versions, meta.inputs[0].shape]).toEqual(['squeezenet1.1', ['2'], [1, 3, 128, 128]]);
    expect((await fetch(new URL('/v2/models/squeezenet1.1/versions/2/ready', server.url))).status).toBe(200);
    const gone = await fetch(new URL('/v2/models/squeezenet1.1/versions/1', server.url));
    expect(gone.status).toBe(404);
    expect(await gone.json()).toEqual({ error: 'model "squeezenet1.1" has no version "1" (versions: "2")' });
    // the swapped-in model's own name is no model of this server
    expect((await fetch(new URL('/v2/models/mobilenetv1-0.25-128', server.url))).status).toBe(404);
    expect(pipeline.model.id).toBe('mobilenetv1-0.25-128');
    const r = await new Promise<{ model: string; frame: { width: number } }>((resolve) => pipeline.once('result', resolve));
    expect([r.model, r.frame.width]).toEqual(['mobilenetv1-0.25-128', 128]);
    const health = await (await fetch(new URL('/healthz', server.url))).json();
    expect([health.model, health.modelName, health.modelVersion]).toEqual(['mobilenetv1-0.25-128', 'squeezenet1.1', '2']);
  });

  it('reports a dead source as unhealthy while it reconnects, then healthy again', async () => {
    const events = await fetch(new URL('/events', server.url));
    const pid = sourcePid();
    expect(pid).toBeGreaterThan(0);
    // the restart waits until the dead source has been seen reported below (released in any case)
    writeFileSync(hold, '');
    try {
      process.kill(pid!, 'SIGKILL');
      const status = JSON.parse(/event: status\ndata: (.*)\n/.exec((await readUntil(events, (b) => /event: status\ndata: .*\n\n/.test(b.toString()))).toString())![1]!);
      expect(status).toEqual({ type: 'reconnect', message: 'test: ffmpeg was killed by SIGKILL; reconnecting in 1500 ms (attempt 1/8)' });
      const down = await fetch(new URL('/healthz', server.url));
      expect(down.status).toBe(503);
      expect((await down.json()).state).toBe('reconnecting');
      expect(await (await fetch(new URL('/metrics', server.url))).text()).toMatch(/^edgetune_up 0$/m);
    } finally {
      rmSync(hold, { force: true });
    }
    // healthy again once the restarted ffmpeg delivers (polled every 100 ms; the bound is only against a hang)
    let up = await fetch(new URL('/healthz', server.url));
    for (const end = Date.now() + 60_000; up.status !== 200 && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 100));
      up = await fetch(new URL('/healthz', server.url));
    }
    expect(up.status).toBe(200);
    expect((await up.json()).reconnects).toBe(1);
    expect(await (await fetch(new URL('/metrics', server.url))).text()).toMatch(/^edgetune_source_reconnects_total 1$/m);
  });

  it('accepts an uploaded ONNX model (application/octet-stream) and stores it in the cache', async () => {
    const cache = tempDir();
    const old = process.env.EDGETUNE_CACHE;
    process.env.EDGETUNE_CACHE = cache;
    try {
      const url = new URL('/model', server.url);
      const headers = { 'content-type': 'application/octet-stream', authorization: `Bearer ${TOKEN}` };
      const empty = await fetch(url, { method: 'POST', body: new Uint8Array(0), headers });
      expect(empty.status).toBe(400);
      const bytes = readFileSync(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'));
      const res = await fetch(url, { method: 'POST', body: bytes, headers });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.model).toMatch(/^[0-9a-f]{16}\.onnx$/);
      expect([body.name, body.version, body.input]).toEqual(['squeezenet1.1', '3', '224x224']);
      expect(readdirSync(path.join(cache, 'uploads'))).toEqual([body.model]);
      expect(pipeline.model.id).toBe(body.model);
    } finally {
      if (old === undefined) delete process.env.EDGETUNE_CACHE;
      else process.env.EDGETUNE_CACHE = old;
    }
  });

  it('serves the stream\'s model over the Open Inference Protocol without the token on loopback; /healthz keeps meaning frames flowing', async () => {
    const clf = pipeline.model;
    const name = servedName(clf);
    // the upload above ("<hash>.onnx") serves under the stream's first name, as its third version
    expect([name, servedVersion(clf)]).toEqual(['squeezenet1.1', '3']);
    expect(await (await fetch(new URL('/v2/health/ready', server.url))).json()).toEqual({ ready: true });
    expect(await (await fetch(new URL(`/v2/models/${name}/ready`, server.url))).json()).toEqual({ name, ready: true });
    const img = await clf.decode(shared('camera', 'winml_dog.jpg'));
    const t = toTensor([img], clf.spec);
    const req = { inputs: [{ name: clf.inputName, shape: [...t.dims], datatype: 'FP32', data: Array.from(t.data as Float32Array) }], outputs: [{ name: clf.outputName, parameters: { classification: 1 } }] };
    const res = await fetch(new URL(`/v2/models/${name}/infer`, server.url), { method: 'POST', body: JSON.stringify(req) });
    expect(res.status).toBe(200);
    const top = (await clf.classifyImages([img], 1))[0]![0]!;
    const answer = await res.json();
    expect([answer.model_name, answer.model_version]).toEqual(['squeezenet1.1', '3']);
    expect(answer.outputs[0].data[0]).toMatch(new RegExp(`:${top.index + clf.card.labelOffset}:${top.label}$`));
    expect((await fetch(new URL('/healthz', server.url))).status).toBe(200);
    // /metrics names the model as /v2/models does (name and version), so a fleet joins them; the file apart
    const metrics = await (await fetch(new URL('/metrics', server.url))).text();
    expect(metrics).toContain(`edgetune_model_info{model="squeezenet1.1",version="3",file="${clf.id}",`);
  });

  it('refuses every POST when no token is configured', async () => {
    const old = process.env.EDGETUNE_TOKEN;
    delete process.env.EDGETUNE_TOKEN;
    const s2 = await startServer(pipeline, { port: 0 });
    try {
      const res = await fetch(new URL('/model', s2.url), { method: 'POST', body: '{"model":"mnist"}', headers: { authorization: 'Bearer anything' } });
      expect(res.status).toBe(401);
      expect((await res.json()).error).toMatch(/start the server with EDGETUNE_TOKEN set/);
    } finally {
      await s2.close();
      if (old !== undefined) process.env.EDGETUNE_TOKEN = old;
    }
  });
});
