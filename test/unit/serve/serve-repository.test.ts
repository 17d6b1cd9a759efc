// `edgetune serve REPO` (serveModels with a folder): a Triton model repository written by
// `edgetune export --format triton` from the real models in ../shared is served entry by entry, each
// under its folder name from its highest version, as Triton serves it; an entry folder serves that
// entry; a folder that is neither, or an entry whose highest version has no model.onnx, is refused
// naming it. Before, every folder was "is a directory, not a model file".

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { exportTritonRepository } from '../../../runtime/fleet/triton.js';
import { serveModels, type ModelServer } from '../../../runtime/serve/server.js';
import { runCli, shared, tempDir } from '../../helpers.js';

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
