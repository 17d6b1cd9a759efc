// `edgetune serve REPO` (serveModels with a folder): a Triton model repository written by
// `edgetune export --format triton` from the real models in ../shared is served entry by entry, each
// under its folder name from its highest version, as Triton serves it; an entry folder serves that
// entry; a folder that is neither, or an entry whose highest version has no model.onnx, is refused
// naming it. Before, every folder was "is a directory, not a model file".

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { configMaxBatchSize, exportTritonRepository } from '../../../runtime/fleet/triton.js';
import { serveModels, type ModelServer } from '../../../runtime/serve/server.js';
import { runCli, shared, sharedDir, tempDir } from '../../helpers.js';

const DOG = shared('camera', 'winml_dog.jpg');
const FINCH = shared('camera', 'hwacc_imagenet_finch.jpeg');
const session = { port: 0, threads: 1, providers: ['cpu'] };

describe('serve a Triton model repository folder', () => {
  const repo = tempDir('edgetune-serve-repo-');
  let server: ModelServer;

  beforeAll(async () => {
    // two entries; mobilenetv2-int8 exported twice: versions 1 and 2 (the export's default: one above the highest)
    expect((await exportTritonRepository('mobilenetv2-int8', { out: repo })).version).toBe(1);
    expect((await exportTritonRepository('squeezenet1.1', { out: repo })).version).toBe(1);
    expect((await exportTritonRepository('mobilenetv2-int8', { out: repo })).version).toBe(2);
    server = await serveModels([repo], session);
  }, 120_000);
  afterAll(() => server?.close());

  it('serves every entry under its folder name, from its highest version', () => {
    expect(server.names).toEqual(['mobilenetv2-int8', 'squeezenet1.1']);
    expect(server.stats.models.map((m) => path.relative(repo, m.file))).toEqual([path.join('mobilenetv2-int8', '2', 'model.onnx'), path.join('squeezenet1.1', '1', 'model.onnx')]);
  });

  it('the served models classify as the files themselves do', async () => {
    for (const name of server.names) {
      const remote = await loadClassifier(new URL(`v2/models/${name}`, server.url).href, { topK: 1 });
      const local = await loadClassifier(server.stats.models.find((m) => m.name === name)!.file, { topK: 1, providers: ['cpu'], threads: 1 });
      try {
        for (const photo of [DOG, FINCH]) {
          expect([name, photo, (await remote.classify(photo)).top[0]!.label]).toEqual([name, photo, (await local.classify(photo)).top[0]!.label]);
        }
        // README: winml_dog.jpg → Golden Retriever on mobilenetv2-int8
        if (name === 'mobilenetv2-int8') expect((await remote.classify(DOG)).top[0]!.label).toBe('Golden Retriever');
      } finally {
        await remote.dispose();
        await local.dispose();
      }
    }
  });

  it("answers as the entry's highest version, the one Triton serves: metadata, /versions/<v> and infer responses say 2", async () => {
    // Before, every model answered as version "1": metadata said versions ["1"], /versions/2 was a 404
    // and /versions/1 answered with version 2's model (Triton, latest 1: only version 2 is loaded).
    const meta = (await (await fetch(new URL('v2/models/mobilenetv2-int8', server.url))).json()) as { versions: string[]; inputs: { name: string }[] };
    expect(meta.versions).toEqual(['2']);
    expect((await fetch(new URL('v2/models/mobilenetv2-int8/versions/2/ready', server.url))).status).toBe(200);
    const v1 = await fetch(new URL('v2/models/mobilenetv2-int8/versions/1', server.url));
    expect([v1.status, await v1.json()]).toEqual([404, { error: 'model "mobilenetv2-int8" has no version "1" (versions: "2")' }]);
    // squeezenet1.1 was exported once: version 1
    expect(((await (await fetch(new URL('v2/models/squeezenet1.1', server.url))).json()) as { versions: string[] }).versions).toEqual(['1']);
    const remote = await loadClassifier(new URL('v2/models/mobilenetv2-int8/versions/2', server.url).href, { topK: 1 });
    try {
      expect((await remote.classify(DOG)).top[0]!.label).toBe('Golden Retriever');
    } finally {
      await remote.dispose();
    }
    const x = new Float32Array(3 * 224 * 224);
    const header = JSON.stringify({ inputs: [{ name: meta.inputs[0]!.name, shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'output', parameters: { classification: 1 } }] });
    const res = await fetch(new URL('v2/models/mobilenetv2-int8/infer', server.url), { method: 'POST', headers: { 'Inference-Header-Content-Length': String(Buffer.byteLength(header)) }, body: Buffer.concat([Buffer.from(header), Buffer.from(x.buffer)]) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model_version: string }).model_version).toBe('2');
    // /metrics names the version served, as Triton's metrics label theirs
    const metrics = await (await fetch(new URL('metrics', server.url))).text();
    expect(metrics).toMatch(/^edgetune_model_info\{model="mobilenetv2-int8",version="2",sha256="[0-9a-f]{64}"\} 1$/m);
    expect(metrics).toMatch(/^edgetune_model_info\{model="squeezenet1\.1",version="1",sha256="[0-9a-f]{64}"\} 1$/m);
  });

  it("reads max_batch_size as Triton's own configs write it", () => {
    // Triton's densenet_onnx example writes "max_batch_size : 0"; ours "max_batch_size: 8"; absent is proto3's 0
    expect(configMaxBatchSize(readFileSync(path.join(sharedDir, 'specs', 'triton', 'examples', 'densenet_onnx', 'config.pbtxt'), 'utf8'))).toBe(0);
    expect(configMaxBatchSize('name: "a"\nmax_batch_size : 16\ninput [\n]\n')).toBe(16);
    expect(configMaxBatchSize('name: "a"\nplatform: "onnxruntime_onnx"\n')).toBe(0);
  });

  it("serves an entry with its config.pbtxt's max_batch_size, not the server's default", async () => {
    // Before, /config said 8 (the server's default) and a batch of 3 was run for an entry exported with --max-batch-size 2.
    const small = tempDir('edgetune-serve-mbs-');
    await exportTritonRepository('mobilenetv2-int8', { out: small, name: 'mb2', maxBatchSize: 2 });
    const one = await serveModels([small], session);
    try {
      const config = (await (await fetch(new URL('v2/models/mb2/config', one.url))).json()) as { max_batch_size: number; input: { name: string; dims: number[] }[] };
      expect([config.max_batch_size, config.input[0]!.dims]).toEqual([2, [3, 224, 224]]);
      const x = new Float32Array(3 * 3 * 224 * 224);
      const header = JSON.stringify({ inputs: [{ name: config.input[0]!.name, shape: [3, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }] });
      const res = await fetch(new URL('v2/models/mb2/infer', one.url), { method: 'POST', headers: { 'Inference-Header-Content-Length': String(Buffer.byteLength(header)) }, body: Buffer.concat([Buffer.from(header), Buffer.from(x.buffer)]) });
      expect([res.status, await res.json()]).toEqual([400, { error: `input "${config.input[0]!.name}": batch of 3 is over the model's max_batch_size 2` }]);
    } finally {
      await one.close();
    }
  });

  it('an entry exported under a name other than its registry id is served under its folder name', async () => {
    const named = tempDir('edgetune-serve-named-');
    expect((await exportTritonRepository('mobilenetv2-int8', { out: named, name: 'pets' })).version).toBe(1);
    const one = await serveModels([named], session);
    try {
      // the folder's name, as Triton serves it, not the id its card carries (mobilenetv2-int8)
      expect(one.names).toEqual(['pets']);
      const meta = await fetch(new URL('v2/models/pets', one.url));
      expect(meta.status).toBe(200);
      expect(((await meta.json()) as { name: string }).name).toBe('pets');
      expect((await fetch(new URL('v2/models/mobilenetv2-int8', one.url))).status).toBe(404);
    } finally {
      await one.close();
    }
  });

  it('an entry folder serves that entry', async () => {
    const one = await serveModels([path.join(repo, 'squeezenet1.1')], session);
    try {
      expect(one.names).toEqual(['squeezenet1.1']);
    } finally {
      await one.close();
    }
  });

  it('refuses a folder that is no repository, and an entry whose highest version has no model.onnx, naming them', async () => {
    const plain = tempDir('edgetune-serve-plain-');
    writeFileSync(path.join(plain, 'notes.txt'), 'not a model\n');
    await expect(serveModels([plain], session)).rejects.toMatchObject({
      code: 'EMODEL',
      message: `${plain}: a folder, but neither a Triton model repository (no <name>/config.pbtxt in it) nor an entry of one (no config.pbtxt in it); serve takes model files, and the folders "edgetune export --format triton" writes`,
    });
    const broken = tempDir('edgetune-serve-broken-');
    mkdirSync(path.join(broken, 'pets', '1'), { recursive: true });
    mkdirSync(path.join(broken, 'pets', '3'));
    writeFileSync(path.join(broken, 'pets', 'config.pbtxt'), 'name: "pets"\n');
    await expect(serveModels([broken], session)).rejects.toMatchObject({
      code: 'EMODEL',
      message: `${path.join(broken, 'pets', '3', 'model.onnx')} missing: version 3 is the highest of the entry ${path.join(broken, 'pets')}, the one Triton serves`,
    });
    mkdirSync(path.join(broken, 'empty'));
    writeFileSync(path.join(broken, 'empty', 'config.pbtxt'), 'name: "empty"\n');
    await expect(serveModels([path.join(broken, 'empty')], session)).rejects.toMatchObject({
      code: 'EMODEL',
      message: `${path.join(broken, 'empty')}: a Triton repository entry without a version folder (<entry>/1/model.onnx)`,
    });
    // the CLI says the same (exit 1, as for any model that cannot be read)
    const r = await runCli(['serve', plain, '--port', '0']);
    expect([r.code, r.stderr.split('\n')[0]]).toEqual([1, `edgetune serve: ${plain}: a folder, but neither a Triton model repository (no <name>/config.pbtxt in it) nor an entry of one (no config.pbtxt in it); serve takes model files, and the folders "edgetune export --format triton" writes`]);
  });
});
