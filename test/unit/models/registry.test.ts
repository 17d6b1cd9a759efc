// Model registry and resolution: every entry is well-formed, the shared files match their sha256,
// ids resolve through EDGETUNE_MODEL_PATH → cache → download (from a local HTTP server here), a bad
// checksum saves nothing, and offline with no file, or when a download fails, the error says where it
// looked and how to get the file; the ImageNet labels ship inside the package.

import { createServer, type Server } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry, resolveModel, resolveRemoteFile, sha256File, labelsOf } from '../../../models/loader.js';
import { specOf } from '../../../models/registry.js';
import { detectFacts, detectProfile } from '../../../devices/profiles.js';
import { graphSignature } from '../../../runtime/onnx/graph.js';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { jsonLines, repoRoot, runCli, shared, tempDir } from '../../helpers.js';

const SHARED_IDS = ['mobilenetv2-int8', 'mobilenetv2-fp32', 'squeezenet1.1', 'squeezenet1.1-fp16', 'mobilenetv1-0.25-128', 'mnist'];

describe('registry data', () => {
  const reg = loadRegistry();

  it('has the six shared models and public zoo models with URLs and sha256', () => {
    for (const id of SHARED_IDS) expect(reg.get(id), id).toBeDefined();
    for (const id of ['mobilenetv2-12', 'resnet18', 'efficientnet-lite4']) {
      const e = reg.require(id);
      expect(e.url).toMatch(/^https:\/\/github\.com\/onnx\/models\/raw\/main\/validated\/vision\/classification\/.+\.onnx$/);
      expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it.each(SHARED_IDS)('%s: the shared file matches the registry sha256 and input name', async (id) => {
    const e = reg.require(id);
    expect(await sha256File(shared('models', e.file))).toBe(e.sha256);
    // the names and input shape the entry declares are the graph's own
    const sig = graphSignature(decodeModel(readFileSync(shared('models', e.file))).graph);
    expect(sig.inputs[0]!.name).toBe(e.input.name);
    expect(sig.outputs.map((o) => o.name)).toContain(e.output.name);
    const spec = specOf(e);
    const dims = sig.inputs[0]!.shape.slice(1);
    expect(dims).toEqual(e.input.layout === 'NCHW' ? [spec.channels, spec.height, spec.width] : [spec.height, spec.width, spec.channels]);
  });

  it('MobileNetV1 has the background offset; SqueezeNet is BGR with the Caffe mean', () => {
    expect(reg.require('mobilenetv1-0.25-128').labelOffset).toBe(1);
    expect(reg.require('squeezenet1.1').preprocess).toMatchObject({ colorOrder: 'BGR', range: [0, 255], mean: [104, 117, 123] });
  });

  it('the ImageNet labels ship in the package (models/labels): they load with no search path and no download', async () => {
    const set = reg.labelSets.imagenet!;
    expect(await sha256File(path.join(repoRoot, 'models', 'labels', set.file!))).toBe(set.sha256);
    const labels = await labelsOf(reg.require('mobilenetv2-int8'), { searchPath: [], cacheDir: tempDir(), download: false });
    expect(labels).toHaveLength(1000);
    expect(labels[207]).toBe('Golden Retriever');
  });
});

describe('resolution', () => {
  let server: Server;
  let base: string;
  const served = () => readFileSync(shared('models', 'mnist_winml.onnx'));
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/mnist.onnx') {
        const body = served();
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('an id resolves to the file in EDGETUNE_MODEL_PATH', async () => {
    const r = await resolveModel('mobilenetv2-int8', { searchPath: [path.dirname(shared('models', 'MODELS.md'))] });
    expect(r).toMatchObject({ source: 'local', path: shared('models', 'mobilenetv2-12-int8.onnx') });
  });

  it('downloads into the cache with a sha256 check and an atomic write, then uses the cache', async () => {
    const cache = tempDir();
    const file = { file: 'mnist-dl.onnx', url: `${base}/mnist.onnx`, sha256: loadRegistry().require('mnist').sha256 };
    const first = await resolveRemoteFile(file, 'model mnist-dl', { searchPath: [], cacheDir: cache, download: true, onProgress: () => undefined });
    expect(first).toEqual({ path: path.join(cache, 'mnist-dl.onnx'), source: 'download' });
    expect(await sha256File(first.path)).toBe(file.sha256);
    expect(readdirSync(cache)).toEqual(['mnist-dl.onnx']); // no temp files left
    const second = await resolveRemoteFile(file, 'model mnist-dl', { searchPath: [], cacheDir: cache, download: true });
    expect(second.source).toBe('cache');
  });

  it('a sha256 mismatch saves nothing', async () => {
    const cache = tempDir();
    const wrong = '0'.repeat(64);
    const file = { file: 'mnist-bad.onnx', url: `${base}/mnist.onnx`, sha256: wrong };
    await expect(resolveRemoteFile(file, 'model x', { searchPath: [], cacheDir: cache, download: true, onProgress: () => undefined })).rejects.toThrow(
      `sha256 mismatch for ${base}/mnist.onnx: expected ${wrong} but received ${loadRegistry().require('mnist').sha256}; the file was not saved`,
    );
    expect(readdirSync(cache)).toEqual([]);
  });

  it('a failed download (HTTP 404) names the URL, where it looked and where to put the file', async () => {
    const cache = tempDir();
    const dir = tempDir();
    await expect(resolveRemoteFile({ file: 'x.onnx', url: `${base}/missing.onnx` }, 'model x', { searchPath: [dir], cacheDir: cache, download: true })).rejects.toThrow(
      `model x: file x.onnx not found and the download failed (cannot download ${base}/missing.onnx: HTTP 404). Looked in:\n  - ${dir}\n  - ${cache}\n` +
        `To get it: fetch ${base}/missing.onnx on a machine with network access and put it at ${path.join(cache, 'x.onnx')}, or put x.onnx in a directory listed in EDGETUNE_MODEL_PATH.`,
    );
  });

  it('a failed download (unresolvable host) says the same, with the network error', async () => {
    const cache = tempDir();
    const url = 'http://edgetune-test.invalid/x.onnx'; // .invalid never resolves (RFC 2606)
    const err = await resolveRemoteFile({ file: 'x.onnx', url, sha256: 'a'.repeat(64) }, 'model x', { searchPath: [], cacheDir: cache, download: true }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg.startsWith(`model x: file x.onnx not found and the download failed (cannot download ${url}: `), msg).toBe(true);
    expect(msg).toMatch(/ENOTFOUND|EAI_AGAIN/); // the resolver's own word for it
    expect(msg).toContain(`). Looked in:\n  - ${cache}\n`);
    expect(msg).toContain(`To get it: fetch ${url} (sha256 ${'a'.repeat(64)}) on a machine with network access and put it at ${path.join(cache, 'x.onnx')}`);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('offline with no file: the error says where it looked and how to get the file', async () => {
    const cache = tempDir();
    const dir = tempDir();
    const e = loadRegistry().require('resnet18');
    await expect(resolveModel('resnet18', { searchPath: [dir], cacheDir: cache, download: false })).rejects.toThrow(
      `model resnet18: file resnet18-v1-7.onnx not found. Looked in:\n  - ${dir}\n  - ${cache}\nTo get it: download it from ${e.url} (sha256 ${e.sha256}) into ${cache}, or unset EDGETUNE_OFFLINE.`,
    );
    expect(existsSync(path.join(cache, e.file))).toBe(false);
  });

  it('`models list --json` says where each file is', async () => {
    const r = await runCli(['models', 'list', '--json'], { env: { EDGETUNE_CACHE: tempDir() } });
    expect(r.code).toBe(0);
    const rows = jsonLines<{ id: string; where: string; precision: string }>(r.stdout);
    const byId = Object.fromEntries(rows.map((x) => [x.id, x]));
    for (const id of SHARED_IDS) expect(byId[id]!.where, id).toBe('local');
    expect(byId['resnet18']!.where).toBe('remote');
    expect(byId['squeezenet1.1-fp16']!.precision).toBe('fp16');
  });
});

describe('CLI', () => {
  it('classify --json follows the contract', async () => {
    // coreml exists only on macOS: on Linux (CI, a Jetson, a GPU server) it always falls back to cpu
    const r = await runCli(['classify', shared('camera', 'winml_hummingbird.jpg'), '--model', 'squeezenet1.1', '--ep', 'coreml,cpu', '--json', '--top', '3']);
    expect(r.code).toBe(0);
    const [line, ...rest] = jsonLines(r.stdout);
    expect(rest).toEqual([]);
    expect(Object.keys(line!)).toEqual(['file', 'model', 'provider', 'top', 'ms']);
    expect(line).toMatchObject({ file: shared('camera', 'winml_hummingbird.jpg'), model: 'squeezenet1.1', provider: 'cpu' });
    expect((line!.top as unknown[]).length).toBe(3);
    expect((line!.top as { index: number; label: string }[])[0]).toMatchObject({ index: 94, label: 'hummingbird' });
    expect(r.stderr).toMatch(/warning: execution provider coreml: .*falling back to cpu/);
  });

  it('devices --json reports working providers and the profile', async () => {
    const r = await runCli(['devices', '--json']);
    expect(r.code).toBe(0);
    const [d] = jsonLines<{ profile: string; profileProviders: string[]; providers: { name: string; ok: boolean; error?: string }[] }>(r.stdout);
    expect(d!.providers.find((p) => p.name === 'cpu')!.ok).toBe(true);
    // every provider that failed says why
    for (const p of d!.providers.filter((x) => !x.ok)) expect(p.error, p.name).toMatch(/\w{3}/);
    // the profile is the one this machine's facts select, with its providers
    const profile = detectProfile(detectFacts());
    expect(d!.profile).toBe(profile.id);
    expect(d!.profileProviders).toEqual(profile.providers);
  });

  it('bench --json prints per-stage medians and the ratio to bare session.run', async () => {
    const r = await runCli(['bench', '--model', 'mobilenetv1-0.25-128', '--iterations', '3', '--json', '--ep', 'cpu']);
    expect(r.code).toBe(0);
    const [row] = jsonLines<Record<string, number>>(r.stdout);
    for (const k of ['decodeMs', 'preprocessMs', 'runMs', 'postprocessMs', 'endToEndMs', 'bareRunMs', 'ratio']) expect(row![k], k).toBeGreaterThan(0);
    expect(row!.ratio).toBeCloseTo(row!.endToEndMs! / row!.bareRunMs!, 5);
  });

  it('unknown command and --help', async () => {
    const bad = await runCli(['clasify']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('edgetune: unknown command "clasify": expected one of classify,');
    const help = await runCli(['classify', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: edgetune classify <image|dir>... [options]');
  });
});
