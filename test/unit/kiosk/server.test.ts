// The kiosk's HTTP side without a browser: the model description it serves for registry models and for
// models edgetune exported (embedded `edgetune.model` metadata), the on-demand bundle build, static
// file safety, and the CLI's option and startup errors.

import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportClassifierModel, findCut } from '../../../runtime/train/export.js';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { kioskConfig, startKiosk, type KioskServer } from '../../../runtime/kiosk/server.js';
import type { HeadWeights } from '../../../runtime/train/types.js';
import { loadRegistry } from '../../../models/loader.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { runCli, shared, tempDir } from '../../helpers.js';

process.env.EDGETUNE_MODEL_PATH = path.dirname(shared('models', 'mobilenetv2-12-int8.onnx'));
process.env.EDGETUNE_OFFLINE = '1';

const work = tempDir('edgetune-kiosk-server-');
const open: KioskServer[] = [];
afterAll(async () => {
  for (const k of open) await k.close();
});

function rawGet(url: string, rawPath: string, headers: Record<string, string> = {}): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: rawPath, method: 'GET', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('kiosk server', () => {
  it('describes a registry model from its entry', async () => {
    const { config, file } = await kioskConfig('mobilenetv2-int8', 3, 'webgpu,wasm');
    expect(path.basename(file)).toBe('mobilenetv2-12-int8.onnx');
    expect(config.topK).toBe(3);
    expect(config.providers).toBe('webgpu,wasm');
    expect(config.model).toMatchObject({
      id: 'mobilenetv2-int8',
      url: '/model.onnx',
      labelOffset: 0,
      outputKind: 'logits',
      inputName: 'input',
      outputName: 'output',
      preprocess: { width: 224, height: 224, channels: 3, layout: 'NCHW', colorOrder: 'RGB', range: [0, 1], resize: 'cover', crop: 0.875, dtype: 'float32' },
    });
    // where head training cuts the backbone, straight from the registry entry
    const entry = loadRegistry().get('mobilenetv2-int8')!;
    expect(config.model.embedding).toEqual(entry.embedding);
    expect(config.model.embedding?.dims).toBe(1280);
    expect(config.model.sources).toMatchObject({ labels: 'registry', 'preprocess.mean': 'registry', inputName: 'registry' });
    expect(config.model.labels[309]).toBe('bee');
    expect(config.model.bytes).toBe(readFileSync(file).byteLength);
    const v1 = await kioskConfig('mobilenetv1-0.25-128');
    expect(v1.config.model).toMatchObject({ labelOffset: 1, outputKind: 'probabilities', preprocess: { width: 128, range: [-1, 1] } });
  });

  it('serves an exported model from its embedded metadata, builds the bundle on demand, and refuses paths outside it', async () => {
    const backbone = readFileSync(shared('models', 'mobilenetv2-12-int8.onnx'));
    const model = decodeModel(backbone);
    const cut = findCut(model);
    const head: HeadWeights = {
      format: 'edgetune.head', version: 1, kind: 'linear', dims: 1280, classes: 2, normalize: false,
      layers: [{ in: 1280, out: 2, weight: new Float32Array(2560).fill(0.001), bias: new Float32Array([0, 1]) }],
    };
    const spec = { width: 224, height: 224, channels: 3 as const, layout: 'NCHW' as const, colorOrder: 'RGB' as const, range: [0, 1] as [number, number], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'cover' as const, crop: 0.875, dtype: 'float32' as const };
    const file = path.join(work, 'cats-dogs.onnx');
    writeFileSync(file, exportClassifierModel(model, cut, head, ['cat', 'dog'], spec, { base: 'mobilenetv2-int8' }));
    const webDir = path.join(work, 'web');
    const log: string[] = [];
    const k = await startKiosk({ model: file, port: 0, webDir, log: (l) => log.push(l) });
    open.push(k);
    expect(log[0]).toBe('edgetune kiosk: building the page bundle (no bundle yet)…');
    for (const f of ['app.js', 'index.html', 'style.css', 'ort/ort-wasm-simd-threaded.jsep.wasm', 'ort/ort-wasm-simd-threaded.jsep.mjs']) {
      expect(existsSync(path.join(webDir, f)), f).toBe(true);
    }
    expect(k.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const cfg = (await (await fetch(`${k.url}api/config`)).json()) as typeof k.config;
    expect(cfg.model).toMatchObject({ id: 'cats-dogs.onnx', labels: ['cat', 'dog'], outputKind: 'probabilities', outputName: 'probabilities', labelOffset: 0, preprocess: spec, provenance: { base: 'mobilenetv2-int8' } });
    const page = await fetch(k.url);
    // Content types are sirv's (module scripts are UTF-8 by definition).
    expect(page.headers.get('content-type')).toBe('text/html;charset=utf-8');
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(await page.text()).toContain('<script type="module" src="app.js"></script>');
    const app = await fetch(`${k.url}app.js`);
    expect([app.headers.get('content-type'), app.headers.get('cache-control'), app.headers.get('cross-origin-embedder-policy')]).toEqual(['text/javascript', 'no-cache', 'require-corp']);
    // An unchanged file revalidates with its ETag.
    expect((await fetch(`${k.url}app.js`, { headers: { 'if-none-match': app.headers.get('etag')! } })).status).toBe(304);
    const wasm = await fetch(`${k.url}ort/ort-wasm-simd-threaded.jsep.wasm`, { method: 'HEAD' });
    expect([wasm.status, wasm.headers.get('content-type'), wasm.headers.get('cache-control')]).toEqual([200, 'application/wasm', 'public, max-age=86400']);
    const served = new Uint8Array(await (await fetch(`${k.url}model.onnx`)).arrayBuffer());
    expect(served).toEqual(new Uint8Array(readFileSync(file)));
    expect(await rawGet(k.url, '/..%2f..%2fpackage.json')).toBe(403);
    expect(await rawGet(k.url, '/%E0%A4%A')).toBe(400);
    expect(await rawGet(k.url, '/ort/')).toBe(404);
    // DNS rebinding: a page on another name that resolves here gets nothing.
    const port = new URL(k.url).port;
    expect(await rawGet(k.url, '/api/config', { host: `rebind.evil.example:${port}` })).toBe(421);
    expect(await rawGet(k.url, '/model.onnx', { host: `evil.example` })).toBe(421);
    expect(await rawGet(k.url, '/api/config', { host: `localhost:${port}` })).toBe(200);
    expect(await rawGet(k.url, '/api/config', { host: `[::1]:${port}` })).toBe(200);
    // The same model over the Open Inference Protocol (its Node session opens on the first request),
    // named by the file's base name: a remote classifier on it agrees with the file opened here.
    expect(await rawGet(k.url, '/v2/health/ready', { host: `evil.example` })).toBe(421);
    expect(await (await fetch(`${k.url}v2/models/cats-dogs/ready`)).json()).toEqual({ name: 'cats-dogs', ready: true });
    const remote = await loadClassifier(`${k.url}v2/models/cats-dogs`);
    const here = await loadClassifier(file);
    try {
      expect([remote.provider, remote.card.labels, remote.card.preprocess]).toEqual(['remote', ['cat', 'dog'], spec]);
      const photo = shared('camera', 'winml_cat.jpg');
      expect((await remote.classify(photo)).top).toEqual((await here.classify(photo)).top);
    } finally {
      await remote.dispose();
      await here.dispose();
    }
  });

  it('refuses a model it cannot describe, a busy port and bad options, with clear messages', async () => {
    const plain = path.join(work, 'digits.onnx');
    copyFileSync(shared('models', 'mnist_winml.onnx'), plain);
    await expect(startKiosk({ model: plain, port: 0, webDir: path.join(work, 'web') })).rejects.toThrow(
      `${plain}: nothing describes its preprocess.colorOrder, preprocess.range, preprocess.mean, preprocess.std, preprocess.resize, preprocess.crop, labels, labelOffset (no registry entry, card file or embedded "edgetune.model" metadata), so the kiosk would show guessed labels on guessed pixels; describe it (${path.join(work, 'digits.card.json')}, or edgetune card), or use a registry id or a model exported by edgetune`,
    );
    // the same rule (DESCRIPTION_NEEDS.kiosk): preprocessing described by a card file, labels still assumed → still refused, naming only the labels
    writeFileSync(path.join(work, 'digits.card.json'), JSON.stringify({ preprocess: { colorOrder: 'GRAY', range: [0, 255], mean: [0], std: [1], resize: 'fill', crop: 1 } }));
    await expect(startKiosk({ model: plain, port: 0, webDir: path.join(work, 'web') })).rejects.toThrow(`${plain}: nothing describes its labels, labelOffset (no registry entry`);
    rmSync(path.join(work, 'digits.card.json'));
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await runCli(['kiosk', '--port', String(port)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`edgetune kiosk: port ${port} on 127.0.0.1 is already in use (choose another with --port)`);
    } finally {
      busy.close();
    }
    const badPort = await runCli(['kiosk', '--port', '70000']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toBe('edgetune kiosk: Expected integer between 0 and 65535 for --port but received "70000"\n');
    const badEp = await runCli(['kiosk', '--ep', 'webgpu,cuda']);
    expect(badEp.code).toBe(2);
    expect(badEp.stderr).toBe('edgetune kiosk: Unknown execution provider "cuda" for the kiosk: expected one of webnn, webnn-gpu, webnn-cpu, webgpu, wasm\n');
    const unknown = await runCli(['kiosk', '--model', 'resnet-9000']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^edgetune kiosk: Unknown model id "resnet-9000": expected a path to an \.onnx file or one of: mobilenetv2-int8, /);
    const help = await runCli(['kiosk', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: edgetune kiosk [options]');
  });
});
