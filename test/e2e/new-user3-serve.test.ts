// What a third new user ran into growing a kiosk into a fleet (`edgetune serve`, `export --format
// triton`, `/metrics`) with the real models in ../shared: a served model's sha256 that named whatever
// file was on disk at scrape time, requests the protocol allows answered 500, and a Triton entry whose
// config described a version Triton does not serve. Exact messages and statuses.

import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { serveModels } from '../../runtime/serve/server.js';
import { runCli, type ServeProcess, shared, startServe, subsetDataset, tempDir } from '../helpers.js';

const work = tempDir('edgetune-newuser3-');
const env = { EDGETUNE_CACHE: tempDir('edgetune-newuser3-cache-') };
// ../shared/models/MODELS.md: the sha256 of mnist_winml.onnx and of mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx
const MNIST_SHA = 'bd5891fdd7987910bfc3d8fc9a697a88e48309e26e529faa87931fba52904fe8';
const V1_SHA = '2fb6a91745128925f6bb0822be40de180350747adb448ad5b664bbcc61720aae';

let serve: ServeProcess;
let base = '';
const served = path.join(work, 'digits.onnx');

beforeAll(async () => {
  copyFileSync(shared('models', 'mnist_winml.onnx'), served);
  serve = await startServe([served, 'mobilenetv2-int8', '--port', '0', '--threads', '1', '--max-body', '1'], 2, env);
  base = serve.base;
});

afterAll(async () => {
  await serve.stop();
});

const infer = (model: string, body: unknown) => fetch(`${base}v2/models/${model}/infer`, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
const digitInput = { name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from({ length: 784 }, (_, i) => (i % 7) * 30) };

describe('edgetune serve', () => {
  it('/metrics has each model\'s request counter and latency histogram at 0 before the first request', async () => {
    const text = await (await fetch(`${base}metrics`)).text();
    // before: no sample until the first request, which then appeared at 1 (rate() and increase() count a series' first sample as nothing)
    for (const model of ['digits', 'mobilenetv2-int8']) {
      expect(text).toContain(`edgetune_infer_requests_total{model="${model}",status="200"} 0\n`);
      expect(text).toContain(`edgetune_infer_latency_seconds_count{model="${model}",stage="total"} 0\n`);
      expect(text).toContain(`edgetune_infer_latency_seconds_bucket{model="${model}",stage="run",le="+Inf"} 0\n`);
    }
  });

  it('names the model it loaded in /metrics and /config after its file is replaced on disk', async () => {
    const info = async () => /^edgetune_model_info\{model="digits",version="1",sha256="([0-9a-f]*)"\} 1$/m.exec(await (await fetch(`${base}metrics`)).text())?.[1];
    const configSha = async () => ((await (await fetch(`${base}v2/models/digits/config`)).json()) as { parameters: Record<string, { string_value: string }> }).parameters['edgetune.sha256']!.string_value;
    expect(await info()).toBe(MNIST_SHA);
    // a new model copied over the served file (the old one still answers: this process loaded it)
    copyFileSync(shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx'), served);
    // before: both said 2fb6a917… (the file on disk now) while the metadata below still said MNIST
    expect(await info()).toBe(MNIST_SHA);
    expect(await configSha()).toBe(MNIST_SHA);
    expect(await configSha()).not.toBe(V1_SHA);
    const meta = (await (await fetch(`${base}v2/models/digits`)).json()) as { inputs: { name: string; shape: number[] }[] };
    expect(meta.inputs).toEqual([{ name: 'Input3', datatype: 'FP32', shape: [1, 1, 28, 28] }]);
  });

  it('/config gives dims as JSON numbers, as Triton answers, and no format on 4 dims (Triton refuses one there)', async () => {
    type Config = { max_batch_size: number; input: { dims: unknown[]; format?: string }[]; output: { dims: unknown[] }[] };
    const digits = (await (await fetch(`${base}v2/models/digits/config`)).json()) as Config;
    // before: "dims":["1","1","28","28"] (proto3's int64 strings; Triton's ModelConfigToJson writes numbers) and
    // "format":"FORMAT_NCHW" (Triton: "model input NHWC/NCHW require 3 dims")
    expect([digits.max_batch_size, digits.input[0]!.dims, digits.input[0]!.format, digits.output[0]!.dims]).toEqual([0, [1, 1, 28, 28], undefined, [1, 10]]);
    const mnv2 = (await (await fetch(`${base}v2/models/mobilenetv2-int8/config`)).json()) as Config;
    expect([mnv2.max_batch_size, mnv2.input[0]!.dims, mnv2.input[0]!.format, mnv2.output[0]!.dims]).toEqual([8, [3, 224, 224], 'FORMAT_NCHW', [1000]]);
  });

  it('answers "outputs": [] with every output, as the protocol says for no outputs named', async () => {
    const all = await infer('digits', { inputs: [digitInput] });
    const none = await infer('digits', { inputs: [digitInput], outputs: [] });
    // before: 500 {"error":"'fetches' cannot be an empty array."}
    expect(none.status).toBe(200);
    const a = (await all.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
    const b = (await none.json()) as typeof a;
    expect(b.outputs.map((o) => [o.name, o.shape])).toEqual([['Plus214_Output_0', [1, 10]]]);
    expect(b.outputs).toEqual(a.outputs);
  });

  it('refuses an empty batch with 400 naming the input, and keeps serving', async () => {
    const r = await infer('mobilenetv2-int8', { inputs: [{ name: 'input', shape: [0, 3, 224, 224], datatype: 'FP32', data: [] }] });
    // before: 500 with onnxruntime's "Non-zero status code returned while running Reshape node. Name:'Reshape_103' …"
    expect([r.status, await r.json()]).toEqual([400, { error: 'input "input": batch of 0; a request holds at least one item (shape [0,3,224,224])' }]);
    const metrics = await (await fetch(`${base}metrics`)).text();
    expect(metrics).toMatch(/^edgetune_infer_requests_total\{model="mobilenetv2-int8",status="400"\} 1$/m);
    expect((await fetch(`${base}v2/models/mobilenetv2-int8/ready`)).status).toBe(200);
  });
  it('answers JSON data nested 200,000 arrays deep with 400, not a 500 out of call stack', async () => {
    const deep = 200_000;
    const body = `{"inputs":[{"name":"Input3","shape":[1,1,28,28],"datatype":"FP32","data":${'['.repeat(deep)}1${']'.repeat(deep)}}]}`;
    const r = await fetch(`${base}v2/models/digits/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    // before: 500 {"error":"Maximum call stack size exceeded"}
    expect([r.status, await r.json()]).toEqual([400, { error: 'input "Input3": 1 data elements for shape [1,1,28,28] (expected 784)' }]);
  });

  it('says a binary request without Inference-Header-Content-Length needs that header', async () => {
    const header = JSON.stringify({ inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 3136 } }] });
    const body = Buffer.concat([Buffer.from(header), Buffer.alloc(3136)]);
    const r = await fetch(`${base}v2/models/digits/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
    // before: only "request body is not JSON (Unexpected non-whitespace character after JSON at position 112)"
    expect([r.status, await r.json()]).toEqual([
      400,
      {
        error: `request body is not JSON (Unexpected non-whitespace character after JSON at position ${header.length}); binary tensor data after the JSON needs an Inference-Header-Content-Length header giving the JSON's length in bytes`,
      },
    ]);
    const ok = await fetch(`${base}v2/models/digits/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) } });
    expect(ok.status).toBe(200);
  });
});

describe('a compressed request (Content-Encoding, as Triton\'s clients send with request_compression_algorithm)', () => {
  it('gzip and deflate bodies are inflated; another encoding is 415; a body that inflates past --max-body is 413', async () => {
    const json = Buffer.from(JSON.stringify({ inputs: [digitInput] }));
    const send = (body: Buffer, encoding: string) => fetch(`${base}v2/models/digits/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'Content-Encoding': encoding } });
    const plain = await (await infer('digits', { inputs: [digitInput] })).json();
    // before: 400 "request body is not JSON (Unexpected token '\u001f', …)"
    for (const [encoding, body] of [['gzip', gzipSync(json)], ['deflate', deflateSync(json)]] as const) {
      const r = await send(body, encoding);
      expect([encoding, r.status, await r.json()]).toEqual([encoding, 200, plain]);
    }
    const br = await send(brotliCompressSync(json), 'br');
    expect([br.status, await br.json()]).toEqual([415, { error: 'Content-Encoding "br" is not supported (gzip, deflate or none)' }]);
    const junk = await send(json, 'gzip');
    expect(junk.status).toBe(400);
    expect(((await junk.json()) as { error: string }).error).toMatch(/^request body is not gzip data \(/);
    // 2 MiB of zeros gzip to about 2 KiB; serve runs with --max-body 1 (MiB)
    const bomb = await send(gzipSync(Buffer.alloc(2 * 1024 * 1024)), 'gzip');
    expect([bomb.status, await bomb.json()]).toEqual([413, { error: 'request body over the limit of 1048576 bytes once inflated (Content-Encoding gzip)' }]);
    expect((await infer('digits', { inputs: [digitInput] })).status).toBe(200);
  });
});

describe('edgetune serve: two models of one name', () => {
  it('says how to serve both (Teachable Machine names every export model_unquant.tflite)', async () => {
    const tm = shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite');
    const copy = path.join(work, 'fruit2', 'model_unquant.tflite');
    mkdirSync(path.dirname(copy));
    copyFileSync(tm, copy);
    const two = await runCli(['serve', tm, copy, '--port', '0'], { env });
    // before: only 'serve: two models are both named "model_unquant" (…)', nothing on what to do
    expect([two.code, two.stderr]).toEqual([2, `edgetune serve: two models are both named "model_unquant" (${tm}, ${copy}); a model is named after its registry id or file base name: copy one to a file of another name\n`]);
    const twice = await runCli(['serve', 'mnist', 'mnist', '--port', '0'], { env });
    expect([twice.code, twice.stderr]).toEqual([2, 'edgetune serve: two models are both named "mnist" (mnist, mnist); give it once\n']);
  });
});

describe('serving the entries of a Triton repository', () => {
  it('serves each <name>/<version>/model.onnx under its entry name, as Triton does (all were "model", two refused)', async () => {
    const repo = path.join(work, 'fleet-repo');
    for (const m of ['mobilenetv2-int8', 'mnist']) expect((await runCli(['export', m, '--format', 'triton', '--out', repo], { env })).code).toBe(0);
    const files = ['mobilenetv2-int8', 'mnist'].map((m) => path.join(repo, m, '1', 'model.onnx'));
    // before: 'serve: two models are both named "model" (…)'
    const s = await serveModels(files, { port: 0, providers: ['cpu'], threads: 1 });
    try {
      expect(s.names).toEqual(['mobilenetv2-int8', 'mnist']);
      for (const m of s.names) {
        const config = (await (await fetch(`${s.url}v2/models/${m}/config`)).json()) as { name: string };
        expect([config.name, readFileSync(path.join(repo, m, 'config.pbtxt'), 'utf8').split('\n')[0]]).toEqual([m, `name: "${m}"`]);
      }
    } finally {
      await s.close();
    }
  });
});

describe('serveModels /metrics: a client that goes away', () => {
  it('counts a request whose client closed the connection mid-body as 499, not as a server error', async () => {
    const lines: string[] = [];
    const s = await serveModels(['mnist'], { port: 0, providers: ['cpu'], threads: 1, log: (l) => lines.push(l) });
    try {
      const count = async (status: number) => Number(new RegExp(`^edgetune_infer_requests_total\\{model="mnist",status="${status}"\\} (\\d+)$`, 'm').exec(await (await fetch(`${s.url}metrics`)).text())?.[1] ?? 0);
      const arrived = new Promise((r) => s.server.once('request', r));
      const req = request(`${s.url}v2/models/mnist/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': 100_000 } });
      req.on('error', () => undefined);
      req.write('{"inputs": [');
      await arrived; // the server is reading the body
      req.destroy();
      // before: counted as {status="500"}, logged "500 aborted"
      await vi.waitFor(async () => expect(await count(499)).toBe(1), { timeout: 30_000, interval: 50 });
      expect(await count(500)).toBe(0);
      expect(lines).toContain('POST /v2/models/mnist/infer: 499 the client closed the connection (aborted)');
    } finally {
      await s.close();
    }
  });
});

describe('serveModels close(): a rolling restart', () => {
  it('answers a request in progress before closing, and takes no new connection', async () => {
    const s = await serveModels(['mnist'], { port: 0, providers: ['cpu'], threads: 1 });
    let closed: Promise<void> | undefined;
    try {
      const body = Buffer.from(JSON.stringify({ inputs: [digitInput] }));
      const arrived = new Promise((r) => s.server.once('request', r));
      let sendRest!: () => void;
      const restMayGo = new Promise<void>((r) => (sendRest = r));
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${s.url}v2/models/mnist/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.write(body.subarray(0, 100)); // the request is in progress: headers and part of its body
        void restMayGo.then(() => req.end(body.subarray(100)));
      });
      await arrived;
      closed = s.close();
      sendRest();
      // before: close() cut every connection at once and the request failed with "socket hang up" (ECONNRESET)
      const r = await answer;
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { outputs: { name: string; shape: number[] }[] }).outputs.map((o) => [o.name, o.shape])).toEqual([['Plus214_Output_0', [1, 10]]]);
      await closed;
      await expect(fetch(`${s.url}v2/health/live`)).rejects.toThrow('fetch failed');
    } finally {
      await (closed ?? s.close());
    }
  });
});

describe('session flags with a model URL', () => {
  it('classify says --ep / --threads do nothing for a served model (taken without a word; eval and watch likewise)', async () => {
    const digit = shared('camera', 'winml_mnist_28.png');
    const url = `${base}v2/models/digits`;
    const c = await runCli(['classify', digit, '--model', url, '--ep', 'cpu', '--threads', '2', '--top', '1'], { env });
    expect([c.code, c.stdout, c.stderr]).toEqual([0, `${digit}: 8 (100.0%)\n`, `edgetune: warning: --ep, --threads have no effect on ${url}: a served model runs on its server\n`]);
    const here = await runCli(['classify', digit, '--model', 'mnist', '--threads', '1', '--top', '1'], { env });
    expect([here.code, here.stderr]).toEqual([0, '']);
  });
});

describe('watch --teach with a model URL', () => {
  it('says a served model cannot be taught here (it named a path made of the URL)', async () => {
    const url = `${base}v2/models/digits`;
    const teach = path.join(work, 'teach');
    const r = await runCli(['watch', `file://${shared('camera', 'slow_traffic_small.mp4')}`, '--model', url, '--serve', '127.0.0.1:0', '--teach', teach, '--max-frames', '2'], { cwd: work, env });
    // before: "--teach retrains from the model's resume data: <cwd>/http:/127.0.0.1:…/v2/models/digits has no digits.resume.bin beside it"
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`edgetune watch: --teach retrains the model on this machine from its resume data; ${url} runs on another server: watch with its file (exported by \`edgetune finetune\`, its .resume.bin beside it)\n`);
  });
});

describe('a model URL with credentials', () => {
  it('is refused naming the URL without them, pointing at EDGETUNE_TOKEN (they were dropped without a word)', async () => {
    const digit = shared('camera', 'winml_mnist_28.png');
    const url = base.replace('http://', 'http://kiosk:s3cret@');
    const user = await runCli(['classify', digit, '--model', `${url}v2/models/digits`], { env });
    expect([user.code, user.stderr]).toEqual([2, `edgetune classify: ${base}v2/models/digits: a model URL carries no user or password; set EDGETUNE_TOKEN (sent as "Authorization: Bearer <token>")\n`]);
    const query = await runCli(['classify', digit, '--model', `${base}v2/models/digits?token=s3cret`], { env });
    expect([query.code, query.stderr]).toEqual([2, `edgetune classify: ${base}v2/models/digits: a model URL carries no token; set EDGETUNE_TOKEN (sent as "Authorization: Bearer <token>")\n`]);
    // the same model without them answers (winml_mnist_28.png is a digit 8, ../shared/models/MODELS.md)
    const ok = await runCli(['classify', digit, '--model', `${base}v2/models/digits`, '--top', '1'], { env });
    expect([ok.code, ok.stdout]).toEqual([0, `${digit}: 8 (100.0%)\n`]);
  });
});

describe('edgetune export --format triton: --out', () => {
  it('refuses an entry or a version folder of a repository for --out, naming the repository, and writes nothing', async () => {
    const repo = path.join(work, 'out-repo');
    expect((await runCli(['export', 'mobilenetv2-int8', '--format', 'triton', '--out', repo], { env })).code).toBe(0);
    const entry = path.join(repo, 'mobilenetv2-int8');
    const before = readdirSync(entry).sort();
    // before: rc 0, a nested entry written at <repo>/mobilenetv2-int8/1/mnist (inside a version Triton loads)
    const inVersion = await runCli(['export', 'mnist', '--format', 'triton', '--out', path.join(entry, '1')], { env });
    expect([inVersion.code, inVersion.stderr]).toEqual([2, `edgetune export: --out ${path.join(entry, '1')} is a version folder of an entry of a Triton repository (${path.join(entry, 'config.pbtxt')} is there); give the repository folder, ${repo}\n`]);
    const inEntry = await runCli(['export', 'mnist', '--format', 'triton', '--out', entry], { env });
    expect([inEntry.code, inEntry.stderr]).toEqual([2, `edgetune export: --out ${entry} is an entry of a Triton repository (${path.join(entry, 'config.pbtxt')} is there); give the repository folder, ${repo}\n`]);
    expect(readdirSync(entry).sort()).toEqual(before);
    expect(readdirSync(path.join(entry, '1'))).toEqual(['model.onnx']);
  });
});

describe('edgetune export --format triton: versions of one entry', () => {
  const sha = (f: string) => /key: "edgetune\.sha256"\n {2}value \{ string_value: "([0-9a-f]+)" \}/.exec(readFileSync(f, 'utf8'))?.[1];

  it('writing an older version keeps config.pbtxt describing the newest (the one Triton serves); a card that preprocesses otherwise is refused', async () => {
    const ds = subsetDataset(path.join(work, 'pets'), ['datasets', 'cats_dogs-dev', 'train'], ['cats', 'dogs'], 6);
    // two fine-tunes of one base (seeds 1 and 2): same inputs, outputs, labels and preprocessing, other weights
    for (const seed of ['1', '2']) {
      const f = await runCli(['finetune', ds, '--model', 'mobilenetv2-int8', '--out', `pets${seed}.onnx`, '--epochs', '3', '--views', '1', '--augment', 'none', '--seed', seed], { cwd: work, env });
      expect(f.code, f.stderr).toBe(0);
    }
    const repo = path.join(work, 'repo');
    const entry = path.join(repo, 'pets');
    const config = path.join(entry, 'config.pbtxt');
    const exp = (model: string, ...more: string[]) => runCli(['export', model, '--format', 'triton', '--out', 'repo', '--name', 'pets', ...more], { cwd: work, env });
    expect((await exp('pets1.onnx')).code).toBe(0);
    const v1sha = sha(config);
    const v2 = await exp('pets2.onnx');
    expect(v2.stdout).toBe(`edgetune export: wrote ${entry} version 2 (max_batch_size 8, 1 input, 2 outputs, 2 labels; kept version 1)\n`);
    const v2sha = sha(config);
    expect(v2sha).toBe(createHash('sha256').update(readFileSync(path.join(entry, '2', 'model.onnx'))).digest('hex'));
    expect(v2sha).not.toBe(v1sha);
    // pets1 re-exported into version 1 (say, a mend of the older model) beside version 2
    const again = await exp('pets1.onnx', '--version', '1');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(`edgetune export: wrote ${entry} version 1 (max_batch_size 8, 1 input, 2 outputs, 2 labels; kept version 2; config.pbtxt still describes version 2, which Triton serves)\n`);
    // before: config.pbtxt's edgetune.sha256 and card became version 1's while Triton (latest 1) serves version 2
    expect(sha(config)).toBe(v2sha);
    expect(readdirSync(entry).sort()).toEqual(['1', '2', 'config.pbtxt', 'labels.txt']);

    const before = readFileSync(config, 'utf8');
    const other = await exp('pets2.onnx', '--mean', '0,0,0');
    expect(other.code).toBe(2);
    expect(other.stderr).toBe(
      `edgetune export: ${config}'s card differs from ${path.join(work, 'pets2.onnx')}'s (preprocess.mean [0.485,0.456,0.406] there, [0,0,0] here), and every version of an entry shares the config's card; export under another --name (or remove ${entry})\n`,
    );
    expect(readFileSync(config, 'utf8')).toBe(before);
    expect(readdirSync(entry).sort()).toEqual(['1', '2', 'config.pbtxt', 'labels.txt']);
  });
});
