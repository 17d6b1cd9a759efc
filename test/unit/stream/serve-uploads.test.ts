// POST /model on a live pipeline (ffmpeg's test pattern, real models, 127.0.0.1), the hostile cases of
// issue 22: uploaded models are removed once neither served nor kept for a rollback; a multipart or
// raw body is refused without being echoed (answer and log); a model name cannot forge a log line
// (names are logged quoted); `/dev/zero` and a FIFO as the model are refused before a byte is read.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../../../devices/index.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { startServer, type KioskServer } from '../../../runtime/stream/serve.js';
import { geometryOfClassifier, StreamPipeline } from '../../../runtime/stream/pipeline.js';
import { shared, tempDir } from '../../helpers.js';

process.env.EDGETUNE_MODEL_PATH = shared('models');
const TOKEN = 'upload-token-5d1e';
const cache = tempDir('edgetune-uploads-cache-');
process.env.EDGETUNE_CACHE = cache;
const uploadsDir = path.join(cache, 'uploads');

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
  server = await startServer(pipeline, { port: 0, token: TOKEN, loadModel: (ref) => loadClassifier(ref, { threads: 1 }), log: (l) => log.push(l) });
  await new Promise((r) => pipeline.once('result', r));
});

afterAll(async () => {
  await server?.close();
  ac.abort();
  await running;
  await pipeline?.model.dispose();
});

const auth = { authorization: `Bearer ${TOKEN}` };
const post = (body: BodyInit, headers: Record<string, string>) => fetch(new URL('/model', server.url), { method: 'POST', body, headers: { ...auth, ...headers } });
const upload = async (file: string) => {
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
    const u1 = await upload(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'));
    expect(uploads()).toEqual([u1]);
    const u2 = await upload(shared('models', 'SqueezeNet_fp16.onnx'));
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
