// The stream service's guards on a live pipeline (ffmpeg's test pattern, real SqueezeNet, 127.0.0.1):
//  - POST /model's hostile cases (issue 22): uploaded models are removed once neither served nor kept
//    for a rollback; a multipart or raw body is refused without being echoed (answer and log); a
//    model name cannot forge a log line (names are logged quoted); `/dev/zero` and a FIFO as the model
//    are refused before a byte is read;
//  - hot swap: a model that loads but cannot run, and one that outputs NaN, are refused with 422 and
//    the reason while the old model keeps serving; a swapped-in model that starts failing is rolled
//    back (the stream goes on);
//  - uploads: concurrent over-limit uploads each get 413, memory stays bounded, nothing stays on disk;
//  - Host check (DNS rebinding): only loopback names/addresses and --allow-host names are served.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../../../devices/index.js';
import { loadClassifier, type Classifier } from '../../../runtime/classify/classifier.js';
import { encodeModel, type AttributeProto, type NodeProto, type OnnxModel, type TensorProto, type ValueInfoProto } from '../../../runtime/onnx/model.js';
import { bindWarnings, createHttpGuard } from '../../../runtime/io/http-guard.js';
import type { ModelSession } from '../../../runtime/session/session.js';
import { startServer, type KioskServer } from '../../../runtime/stream/serve.js';
import { createTeach, lastTaught } from '../../../runtime/stream/teach.js';
import { resumePath } from '../../../runtime/train/node/resume.js';
import { geometryOfClassifier, StreamPipeline, type StreamEvent } from '../../../runtime/stream/pipeline.js';
import { shared, tempDir } from '../../helpers.js';

process.env.EDGETUNE_MODEL_PATH = shared('models');
const TOKEN = 'swap-token-91c2';
const work = tempDir('edgetune-swap-');
const cache = tempDir('edgetune-swap-cache-');
process.env.EDGETUNE_CACHE = cache;

// --- tiny image models built here: input float [1,3,h,w] (symbolic h, w: onnxruntime cannot check
// them when the session opens, only when a frame runs).
const vi = (name: string, dims: (number | string)[]): ValueInfoProto => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  metadataProps: [],
});
const ints = (name: string, v: number[]): AttributeProto => ({ name, type: 7, ints: v.map(BigInt), floats: [], strings: [], tensors: [], graphs: [], typeProtos: [], sparseTensors: [] });
const int = (name: string, v: number): AttributeProto => ({ name, type: 2, i: BigInt(v), ints: [], floats: [], strings: [], tensors: [], graphs: [], typeProtos: [], sparseTensors: [] });
const node = (opType: string, input: string[], output: string[], attribute: AttributeProto[] = []): NodeProto => ({ opType, input, output, attribute, metadataProps: [], deviceConfigurations: [] });
const i64 = (name: string, v: number[]): TensorProto => ({ name, dims: [v.length], dataType: 7, int64Data: v.map(BigInt), floatData: [], int32Data: [], stringData: [], doubleData: [], uint64Data: [], externalData: [], metadataProps: [] });
function model(nodes: NodeProto[], init: TensorProto[], outDims: number[]): Uint8Array {
  const m: OnnxModel = {
    irVersion: 7,
    graph: { node: nodes, name: 'g', initializer: init, input: [vi('data', [1, 3, 'h', 'w'])], output: [vi('out', outDims)], valueInfo: [], quantizationAnnotation: [], sparseInitializer: [], metadataProps: [] },
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: [],
    trainingInfo: [],
    functions: [],
    configuration: [],
  };
  return encodeModel(m);
}
/** Reshapes the image to [1, 1000, -1]: 3·224·224 = 150528 is no multiple of 1000, so every run fails. */
const cannotRun = path.join(work, 'cannot-run.onnx');
writeFileSync(cannotRun, model([node('Reshape', ['data', 'shape'], ['r']), node('ReduceMean', ['r'], ['out'], [ints('axes', [2]), int('keepdims', 0)])], [i64('shape', [1, 1000, -1])], [1, 1000]));
/** (x − x) / (x − x) = NaN for every pixel, averaged into 3 "classes". */
const nanBytes = model([node('Sub', ['data', 'data'], ['z']), node('Div', ['z', 'z'], ['n']), node('ReduceMean', ['n'], ['out'], [ints('axes', [2, 3]), int('keepdims', 0)])], [], [1, 3]);

let pipeline: StreamPipeline;
let server: KioskServer;
let running: Promise<unknown>;
const ac = new AbortController();
const log: string[] = [];

beforeAll(async () => {
  const clf = await loadClassifier('squeezenet1.1', { threads: 1 });
  const source = await createSource('test:smptebars?rate=15', geometryOfClassifier(clf));
  pipeline = new StreamPipeline(source, clf, { signal: ac.signal });
  running = pipeline.run();
  server = await startServer(pipeline, { port: 0, token: TOKEN, loadModel: (ref) => loadClassifier(ref, { threads: 1, lazy: true }), log: (l) => log.push(l) });
  await new Promise((r) => pipeline.once('result', r));
});

afterAll(async () => {
  await server?.close();
  ac.abort();
  await running;
  await pipeline?.model.dispose();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const sha256File = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const nextResult = () => new Promise<{ model: string }>((r) => pipeline.once('result', r));

describe('POST /model validates before it swaps', () => {
  it('refuses a model declaring a 30000x30000 input (422, the limit named) before allocating, and keeps serving', async () => {
    // its own hostile model: a fixed [1,3,30000,30000] image input averaged into 3 scores
    const huge = path.join(work, 'huge-input.onnx');
    const m = model([node('ReduceMean', ['data'], ['out'], [ints('axes', [2, 3]), int('keepdims', 0)])], [], [1, 3]);
    const { decodeModel } = await import('../../../runtime/onnx/model.js');
    const d = decodeModel(m);
    d.graph.input[0]!.type!.tensorType!.shape!.dim = [1, 3, 30000, 30000].map((v) => ({ dimValue: v }));
    writeFileSync(huge, encodeModel(d));
    const rssBefore = process.memoryUsage().rss;
    const res = await fetch(new URL('/model', server.url), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: huge }) });
    expect(res.status).toBe(422);
    expect((await res.json()).error).toBe(`${huge}: declares a 30000x30000 input (from the graph), over the limit of 4096 pixels a side; refused before allocating anything`);
    // one 30000² float frame would be 10.8 GB; the refusal allocates nothing of the kind (RSS grew
    // by 10 MB here, from the stream running meanwhile)
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(1024 * 1024 * 1024);
    expect((await nextResult()).model).toBe('squeezenet1.1');
  });

  it('refuses a model that loads but cannot run (422) and keeps serving the old one', async () => {
    const errorsBefore = pipeline.stats().errors;
    const res = await fetch(new URL('/model', server.url), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: cannotRun }) });
    expect(res.status).toBe(422);
    expect((await res.json()).error).toMatch(/^cannot-run\.onnx loads but cannot classify a frame of this stream: .*reshape/i);
    expect(pipeline.model.id).toBe('squeezenet1.1');
    expect((await nextResult()).model).toBe('squeezenet1.1');
    expect(pipeline.stats().errors).toBe(errorsBefore);
    // The fault examples: a model with NaN outputs and an image-to-image model are refused too.
    for (const f of ['tiny-nan-out.onnx', 'tiny-image-to-image.onnx']) {
      const r = await fetch(new URL('/model', server.url), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model: shared('faults', 'non-classifiers', f) }) });
      expect(r.status, f).toBe(422);
    }
    expect(pipeline.model.id).toBe('squeezenet1.1');
  });

  it('refuses an uploaded model with NaN outputs (422) and removes the upload', async () => {
    const res = await fetch(new URL('/model', server.url), { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: nanBytes });
    expect(res.status).toBe(422);
    expect((await res.json()).error).toMatch(/returned a non-finite score \(NaN at output 0\) for a frame of this stream: not a usable classifier$/);
    expect(readdirSync(path.join(cache, 'uploads'))).toEqual([]);
    expect((await nextResult()).model).toBe('squeezenet1.1');
  });

  it('names a refused upload as "the uploaded model", never by its path in the server\'s cache', async () => {
    const res = await fetch(new URL('/model', server.url), { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: 'hello\n' });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ error: 'the uploaded model (6 bytes): not a readable ONNX model (Not an ONNX model: the data is not a protobuf ModelProto (invalid wire type 4 at byte 2))' });
    expect(readdirSync(path.join(cache, 'uploads'))).toEqual([]);
  });

  it('rolls back a swapped-in model that starts failing, and the stream goes on', async () => {
    // Its own pipeline, inference on the main thread, so the new model's session can be made to fail
    // after its check frame (a device lost mid-stream).
    const base = await loadClassifier('squeezenet1.1', { threads: 1 });
    const src = await createSource('test:smptebars?rate=15', geometryOfClassifier(base));
    const p = new StreamPipeline(src, base, { inference: 'main' });
    const events: StreamEvent[] = [];
    p.on('event', (e: StreamEvent) => events.push(e));
    const run = p.run();
    // served under a name of its own (watch --model-name): versions 1, 2, then 1 again after the rollback
    const srv = await startServer(p, { port: 0, modelName: 'kiosk' });
    const versions = async () => (await (await fetch(new URL('/v2/models/kiosk', srv.url))).json()).versions;
    await new Promise((r) => p.once('result', r));
    expect(await versions()).toEqual(['1']);
    const real = await loadClassifier('squeezenet1.1', { threads: 1 });
    const session = await real.open();
    let calls = 0;
    const failing: ModelSession = Object.create(session);
    failing.run = (...a: Parameters<ModelSession['run']>) => (++calls > 1 ? Promise.reject(new Error('device lost')) : session.run(...a));
    // Taught by watch --teach (its file under DIR/models/, recorded in DIR/serving.json as a training
    // records it): before, the record stayed after the rollback and a restart served the failed model.
    const teachDir = tempDir('edgetune-swap-teach-');
    const teachBase = path.join(teachDir, 'flowers3.onnx');
    copyFileSync(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'), teachBase);
    writeFileSync(resumePath(teachBase), ''); // never read: no training runs here
    const taughtFile = path.join(teachDir, 'models', 'teach-2026-12-07T15-04-13-802Z.onnx');
    const teachLog: string[] = [];
    const teach = await createTeach(p, { dir: teachDir, base: teachBase, loadModel: (f) => loadClassifier(f, { lazy: true }), log: (l) => teachLog.push(l) });
    copyFileSync(shared('models', 'SqueezeNet_fp16.onnx'), taughtFile);
    const result = { path: taughtFile, sha256: sha256File(taughtFile), labels: ['daisy', 'dandelion', 'roses', 'sunflowers'], accuracy: 0.9, seconds: 30 };
    writeFileSync(path.join(teachDir, 'serving.json'), JSON.stringify({ model: path.basename(taughtFile), sha256: result.sha256, base: teachBase, baseSha256: sha256File(teachBase), result }));
    expect(await lastTaught(teachDir, teachBase)).toEqual({ file: taughtFile, result });
    const flaky: Classifier = { ...real, id: 'flaky-squeezenet', modelPath: taughtFile, open: async () => failing, dispose: () => real.dispose() };
    await p.swapModel(flaky);
    expect(p.model.id).toBe('flaky-squeezenet');
    expect(await versions()).toEqual(['2']);
    const rolled = await new Promise<StreamEvent>((resolve) => p.on('event', (e: StreamEvent) => e.type === 'rollback' && resolve(e)));
    expect(rolled.message).toBe('model flaky-squeezenet failed (inference failed on 3 frames in a row: device lost); rolled back to squeezenet1.1');
    const after = await new Promise<{ model: string }>((r) => p.once('result', r));
    expect(after.model).toBe('squeezenet1.1');
    expect(p.stats()).toMatchObject({ rollbacks: 1, errors: 3 });
    // the previous model serves again under its own version; 2 is gone with the failed model
    expect(await versions()).toEqual(['1']);
    expect(await (await fetch(new URL('/metrics', srv.url))).text()).toMatch(/^edgetune_model_info\{model="kiosk",version="1",/m);
    expect(await (await fetch(new URL('/v2/models/kiosk/versions/2', srv.url))).json()).toEqual({ error: 'model "kiosk" has no version "2" (versions: "1")' });
    // the record of the rolled-back model is gone: a restart serves the base
    await expect.poll(() => teachLog.at(-1)).toBe(`teach: after the rollback a restart serves flowers3.onnx (${path.join(teachDir, 'serving.json')} removed)`);
    expect(existsSync(path.join(teachDir, 'serving.json'))).toBe(false);
    expect(await lastTaught(teachDir, teachBase)).toBeUndefined();
    await teach.close();
    await srv.close();
    p.stop();
    expect((await run).state).toBe('ended');
    await p.model.dispose();
  });
});

describe('GET /metrics during a swap', () => {
  it('labels the model swapped in by its served name and version while the one it replaced is still being disposed', async () => {
    // swapModel serves the new model, then disposes the one no longer kept for a rollback, then says
    // "swap": a scrape in between read the new model without a version (its file's name, version "1").
    const first = await loadClassifier('squeezenet1.1', { threads: 1 });
    let release!: () => void;
    const disposed = new Promise<void>((r) => (release = r));
    const slow: Classifier = { ...first, dispose: async () => { await disposed; await first.dispose(); } };
    const src = await createSource(`dir://${path.dirname(shared('camera', 'slow_traffic_frames', 'frame_001.jpg'))}`, geometryOfClassifier(first));
    const p = new StreamPipeline(src, slow);
    const srv = await startServer(p, { port: 0, modelName: 'kiosk' });
    const second = await loadClassifier('squeezenet1.1', { threads: 1 });
    const third = await loadClassifier('squeezenet1.1', { threads: 1 });
    await p.swapModel(second);
    const swapped = p.swapModel(third); // drops `slow` (kept for a rollback until now): waits on its dispose
    await expect.poll(() => p.model).toBe(third);
    expect(await (await fetch(new URL('/metrics', srv.url))).text()).toMatch(/^edgetune_model_info\{model="kiosk",version="3",file="squeezenet1\.1[^"]*\.onnx",/m);
    release();
    await swapped;
    expect(await (await fetch(new URL('/metrics', srv.url))).text()).toMatch(/^edgetune_model_info\{model="kiosk",version="3",/m);
    await srv.close();
    await src.close();
    await second.dispose();
    await third.dispose();
  });
});

describe('a taught model rolled back under watch --teach', () => {
  it('serving.json names the taught model serving again after the rollback, so a restart serves it', async () => {
    // A watch restarted on its teach folder serves T1 (serving.json); a later training swaps T2 in,
    // which then fails on live frames and is rolled back to T1.
    const dir = tempDir('edgetune-swap-teach2-');
    const base = path.join(dir, 'flowers3.onnx');
    copyFileSync(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'), base);
    writeFileSync(resumePath(base), ''); // never read: no training runs here
    mkdirSync(path.join(dir, 'models'));
    const t1 = path.join(dir, 'models', 'teach-2026-12-07T15-04-13-802Z.onnx');
    const t2 = path.join(dir, 'models', 'teach-2026-12-07T16-00-00-000Z.onnx');
    copyFileSync(shared('models', 'SqueezeNet_fp16.onnx'), t1);
    copyFileSync(shared('models', 'mobilenetv2-12-int8.onnx'), t2);
    const recordOf = (f: string) => {
      const result = { path: f, sha256: sha256File(f), labels: ['daisy', 'dandelion', 'roses', 'sunflowers'], accuracy: 0.9, seconds: 30 };
      return { model: path.basename(f), sha256: result.sha256, base, baseSha256: sha256File(base), result };
    };
    const servingFile = path.join(dir, 'serving.json');
    writeFileSync(servingFile, JSON.stringify(recordOf(t1)));
    const first = await loadClassifier(t1, { threads: 1 });
    const src = await createSource('test:smptebars?rate=15', geometryOfClassifier(first));
    const p = new StreamPipeline(src, first, { inference: 'main' });
    const run = p.run();
    const teachLog: string[] = [];
    const teach = await createTeach(p, { dir, base, loadModel: (f) => loadClassifier(f, { lazy: true }), log: (l) => teachLog.push(l) });
    await new Promise((r) => p.once('result', r));
    const real = await loadClassifier('squeezenet1.1', { threads: 1 });
    const session = await real.open();
    let calls = 0;
    const failing: ModelSession = Object.create(session);
    failing.run = (...a: Parameters<ModelSession['run']>) => (++calls > 1 ? Promise.reject(new Error('device lost')) : session.run(...a));
    await p.swapModel({ ...real, id: 'flaky-t2', modelPath: t2, open: async () => failing, dispose: () => real.dispose() });
    writeFileSync(servingFile, JSON.stringify(recordOf(t2))); // as the training records it after its swap
    await new Promise<void>((resolve) => p.on('event', (e: StreamEvent) => e.type === 'rollback' && resolve()));
    await expect.poll(() => teachLog.at(-1)).toBe(`teach: after the rollback a restart serves ${path.basename(t1)} (${servingFile} names it)`);
    expect(JSON.parse(readFileSync(servingFile, 'utf8'))).toEqual(recordOf(t1));
    expect(await lastTaught(dir, base)).toEqual({ file: t1, result: recordOf(t1).result });
    await teach.close();
    p.stop();
    await run;
    await p.model.dispose();
  });
});

/** POST `total` bytes in 1 MiB chunks (chunked, or with a declared length), stopping at the answer. */
function upload(port: number, total: number, declare?: number): Promise<number | string> {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...auth, 'content-type': 'application/octet-stream' };
    if (declare !== undefined) headers['content-length'] = declare;
    const req = request({ host: '127.0.0.1', port, path: '/model', method: 'POST', headers });
    let sent = 0;
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err: NodeJS.ErrnoException) => answered || resolve(err.code ?? err.message));
    const pump = () => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

describe('uploads', () => {
  it('answers 413 to each of several concurrent over-limit uploads, with memory bounded and nothing left on disk', async () => {
    const limit = 32 * 1024 * 1024;
    const s2 = await startServer(pipeline, { port: 0, token: TOKEN, maxUploadBytes: limit, loadModel: (ref) => loadClassifier(ref, { threads: 1, lazy: true }) });
    const base = process.memoryUsage().rss;
    let peak = base;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const statuses = await Promise.all([
        ...Array.from({ length: 4 }, () => upload(s2.port, 48 * 1024 * 1024)),
        upload(s2.port, 4 * 1024 * 1024, 1024 * 1024 * 1024), // declares 1 GiB: refused before reading
      ]);
      expect(statuses).toEqual([413, 413, 413, 413, 413]);
    } finally {
      clearInterval(sample);
      await s2.close();
    }
    // 4 × 48 MiB were sent against a 32 MiB limit. Buffering them (the fault) holds 4 × 32 MiB =
    // 128 MiB before refusing; streamed to disk, the rise measured here was 30–37 MiB (both the
    // clients' and the server's chunks in flight, in this one process).
    expect(peak - base).toBeLessThan(64 * 1024 * 1024);
    expect(readdirSync(path.join(cache, 'uploads'))).toEqual([]);
    expect(pipeline.model.id).toBe('squeezenet1.1');
  });
});

/** GET with a chosen Host header (fetch cannot set one). */
function getWithHost(url: string, host: string, method = 'GET', headers: Record<string, string> = {}): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: '/healthz', method, headers: { ...headers, host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{"model":"mnist"}' : undefined);
  });
}

describe('Host check (DNS rebinding)', () => {
  it('serves loopback names and addresses, refuses other names with 421, also for POST with a token', async () => {
    const port = server.port;
    expect(await getWithHost(server.url, `127.0.0.1:${port}`)).toBe(200);
    expect(await getWithHost(server.url, `localhost:${port}`)).toBe(200);
    expect(await getWithHost(server.url, `127.9.8.7:${port}`)).toBe(200);
    expect(await getWithHost(server.url, `[::1]:${port}`)).toBe(200);
    expect(await getWithHost(server.url, `evil.example:${port}`)).toBe(421);
    expect(await getWithHost(server.url, `camera.lan:${port}`)).toBe(421);
    expect(await getWithHost(server.url, `evil.example:${port}`, 'POST', { ...auth, 'content-type': 'application/json' })).toBe(421);
    expect(pipeline.model.id).toBe('squeezenet1.1');
    expect(log.some((l) => /refused GET \/healthz \(421\): Host "evil\.example" is not served here/.test(l))).toBe(true);
    const s2 = await startServer(pipeline, { port: 0, allowHosts: ['camera.lan'] });
    try {
      expect(await getWithHost(s2.url, `camera.lan:${s2.port}`)).toBe(200);
      expect(await getWithHost(s2.url, `Camera.LAN.:${s2.port}`)).toBe(200);
      expect(await getWithHost(s2.url, `evil.example:${s2.port}`)).toBe(421);
    } finally {
      await s2.close();
    }
  });

  it('on a network bind: serves the machine\'s own addresses, needs the token for reads when one is set, and warns', () => {
    const own = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';
    const req = (host: string, url = '/', headers: Record<string, string> = {}) => ({ headers: { host, ...headers }, url, method: 'GET' }) as never;
    const open = createHttpGuard({ host: '0.0.0.0' });
    expect([open.loopback, open.tokenForReads]).toEqual([false, false]);
    expect(open.check(req(`${own}:8080`))).toBeUndefined();
    expect(open.check(req('rebind.evil.example:8080'))?.status).toBe(421);
    const locked = createHttpGuard({ host: '0.0.0.0', token: 't0k', allowHosts: ['kiosk.lan'] });
    expect(locked.check(req('kiosk.lan'))).toMatchObject({ status: 401, headers: { 'WWW-Authenticate': 'Bearer' } });
    expect(locked.check(req('kiosk.lan', '/', { authorization: 'Bearer t0k' }))).toBeUndefined();
    expect(locked.check(req('kiosk.lan', '/events', { cookie: 'a=b; edgetune_token=t0k' }))).toBeUndefined();
    expect(locked.check(req('kiosk.lan', '/?token=wrong'))?.status).toBe(401);
    expect(locked.check(req('kiosk.lan', '/?x=1&token=t0k'))).toEqual({
      status: 303,
      message: 'token accepted',
      headers: { Location: '/?x=1', 'Set-Cookie': 'edgetune_token=t0k; Path=/; HttpOnly; SameSite=Strict' },
    });
    expect(bindWarnings('127.0.0.1', undefined, 'http://127.0.0.1:8080/')).toEqual([]);
    expect(bindWarnings('0.0.0.0', undefined, 'http://127.0.0.1:8080/')[1]).toMatch(/^warning: EDGETUNE_TOKEN is not set, so anyone who can reach this address/);
    expect(bindWarnings('0.0.0.0', 't0k', 'http://127.0.0.1:8080/')[1]).toBe('every request needs EDGETUNE_TOKEN (open http://127.0.0.1:8080/?token=<token> once in a browser; or send "Authorization: Bearer <token>")');
    // `edgetune serve` has no page (its "/" is a 404): it told its user to open one in a browser
    expect(bindWarnings('0.0.0.0', 't0k', 'http://127.0.0.1:8000/', { page: false })[1]).toBe(
      'every request needs EDGETUNE_TOKEN: send "Authorization: Bearer <token>" (a client given --model URL sends it when EDGETUNE_TOKEN is set)',
    );
    expect(bindWarnings('0.0.0.0', undefined, 'http://127.0.0.1:8000/', { page: false })[1]).toBe(
      'warning: EDGETUNE_TOKEN is not set, so anyone who can reach this address can use every model and read /metrics; set it to require a token',
    );
  });
});

const post = (body: BodyInit, headers: Record<string, string>) => fetch(new URL('/model', server.url), { method: 'POST', body, headers: { ...auth, ...headers } });
const uploadsDir = path.join(cache, 'uploads');
const uploadFile = async (file: string) => {
  const res = await post(readFileSync(file), { 'content-type': 'application/octet-stream' });
  expect(res.status).toBe(200);
  return ((await res.json()) as { model: string }).model;
};
const swapTo = async (id: string) => {
  const res = await post(JSON.stringify({ model: id }), { 'content-type': 'application/json' });
  expect(res.status).toBe(200);
};
const uploads = () => readdirSync(uploadsDir).sort();

describe('POST /model: uploads, bodies and names', () => {
  it('removes an uploaded model once it is neither served nor kept for a rollback', async () => {
    await swapTo('squeezenet1.1'); // a known start, whatever the tests above left
    await swapTo('squeezenet1.1-fp16');
    await swapTo('squeezenet1.1'); // nothing uploaded is served or kept now
    expect(uploads()).toEqual([]);
    const u1 = await uploadFile(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'));
    expect(uploads()).toEqual([u1]);
    const u2 = await uploadFile(shared('models', 'SqueezeNet_fp16.onnx'));
    // u2 serves, u1 is the rollback model: both stay
    expect(uploads()).toEqual([u1, u2].sort());
    await swapTo('squeezenet1.1-fp16');
    // squeezenet1.1-fp16 serves, u2 is kept for a rollback: u1 goes
    expect(uploads()).toEqual([u2]);
    expect(log).toContain(`removed the upload ${JSON.stringify(u1)}: no longer served`);
    await swapTo('squeezenet1.1');
    expect(uploads()).toEqual([]);
    expect(log).toContain(`removed the upload ${JSON.stringify(u2)}: no longer served`);
  });

  it('refuses a multipart body (415) and a body that is not JSON (400) without echoing them', async () => {
    const secret = 'SECRET-BODY-4242';
    const form = new FormData();
    form.append('model', new Blob([`${secret} not a model`]), 'm.onnx');
    const mp = await post(form, {});
    expect(mp.status).toBe(415);
    const mpText = await mp.text();
    expect(JSON.parse(mpText)).toEqual({ error: 'unsupported content type "multipart/form-data": send {"model":"<registry id or path>"} as application/json, or the ONNX file as application/octet-stream' });
    const raw = await post(`${secret}/../../etc/passwd`, { 'content-type': 'text/plain' });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({ error: 'body is not JSON: expected {"model":"<registry id or path>"}' });
    expect(log.filter((l) => l.includes(secret))).toEqual([]);
    expect(log).toContain('model swap refused (415): content type "multipart/form-data"');
    expect(pipeline.model.id).toBe('squeezenet1.1');
  });

  it('logs model names quoted, so a name cannot forge a log line', async () => {
    const forged = '/nonexistent/x.onnx\nmodel swapped to "pwned" (cpu)';
    const res = await post(JSON.stringify({ model: forged }), { 'content-type': 'application/json' });
    expect(res.status).toBe(422);
    const line = log.find((l) => l.startsWith('model swap refused (422)') && l.includes('pwned'));
    expect(line).toBe(`model swap refused (422): ${JSON.stringify(`${forged}: model file not found`)}`);
    expect(log.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('refuses /dev/zero and a FIFO as the model before reading them (422), and keeps serving', async () => {
    const zero = await post(JSON.stringify({ model: '/dev/zero' }), { 'content-type': 'application/json' });
    expect(zero.status).toBe(422);
    expect(await zero.json()).toEqual({ error: '/dev/zero: model file is not a regular file (it is a character device)' });
    const fifo = path.join(tempDir(), 'model.onnx');
    execFileSync('mkfifo', [fifo]);
    const f = await post(JSON.stringify({ model: fifo }), { 'content-type': 'application/json' });
    expect(f.status).toBe(422);
    expect(await f.json()).toEqual({ error: `${fifo}: model file is not a regular file (it is a FIFO (named pipe))` });
    expect(pipeline.model.id).toBe('squeezenet1.1');
    const r = await new Promise<{ model: string }>((resolve) => pipeline.once('result', resolve));
    expect(r.model).toBe('squeezenet1.1');
  });
});
