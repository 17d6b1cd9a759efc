// Bad input: each gets an error naming the file/value and the problem; in a batch the other files are
// still classified and the exit code is 1.

import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { createSession, liveSessionCount } from '../../../runtime/session/session.js';
import { writeBadInputs } from '../../fixtures.js';
import { jsonLines, runCli, shared, tempDir } from '../../helpers.js';

let dir: string;
let bad: ReturnType<typeof writeBadInputs>;
beforeAll(() => {
  dir = tempDir();
  bad = writeBadInputs(dir, shared('camera', 'winml_dog.jpg'));
});

describe('bad images', () => {
  it.each([
    ['empty', (f: string) => `${f}: empty file (0 bytes)`],
    ['truncated', (f: string) => `${f}: corrupt or truncated image (VipsJpeg: premature end of JPEG image)`],
    ['text', (f: string) => `${f}: not a supported image (unsupported image format)`],
    [
      'bomb',
      (f: string) => `${f}: image is 30000x30000 (900000000 pixels), over the limit of 100000000 pixels; refused as a possible decompression bomb`,
    ],
  ] as const)('%s file', async (kind, message) => {
    const c = await loadClassifier('mobilenetv2-int8', { providers: ['cpu'] });
    const file = bad[kind];
    await expect(c.classify(file)).rejects.toThrow(message(file));
    // The classifier keeps serving after the failure.
    expect((await c.classify(shared('camera', 'winml_dog.jpg'))).top[0]!.label).toBe('Golden Retriever');
    await c.dispose();
  });

  it('a directory with mixed good and bad files: good ones classified, bad ones reported, exit 1', async () => {
    const mixed = path.join(dir, 'mixed');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(mixed);
    copyFileSync(shared('camera', 'winml_dog.jpg'), path.join(mixed, 'a-dog.jpg'));
    copyFileSync(bad.truncated, path.join(mixed, 'b-truncated.jpg'));
    copyFileSync(shared('camera', 'hwacc_imagenet_finch.jpeg'), path.join(mixed, 'c-finch.jpeg'));
    copyFileSync(bad.text, path.join(mixed, 'd-notes.jpg'));
    const r = await runCli(['classify', mixed, '--json', '--top', '1']);
    expect(r.code).toBe(1);
    const lines = jsonLines<{ file: string; error?: string; top?: { label: string }[] }>(r.stdout);
    expect(lines.map((l) => path.basename(l.file))).toEqual(['a-dog.jpg', 'b-truncated.jpg', 'c-finch.jpeg', 'd-notes.jpg']);
    expect(lines[0]!.top![0]!.label).toBe('Golden Retriever');
    expect(lines[1]!.error).toBe(`${path.join(mixed, 'b-truncated.jpg')}: corrupt or truncated image (VipsJpeg: premature end of JPEG image)`);
    expect(lines[2]!.top![0]!.label).toBe('house finch');
    expect(lines[3]!.error).toBe(`${path.join(mixed, 'd-notes.jpg')}: not a supported image (unsupported image format)`);
  });

  it('a missing file in text mode goes to stderr with the file name; the rest is classified', async () => {
    const missing = path.join(dir, 'nope.jpg');
    const r = await runCli(['classify', missing, shared('camera', 'winml_dog.jpg'), '--top', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${missing}: cannot read file: no such file or directory (ENOENT)`);
    expect(r.stdout).toContain('winml_dog.jpg: Golden Retriever');
  });
});

describe('bad models and options', () => {
  it('unknown model id lists the known ids', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', 'mobilenet-v9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('edgetune classify: Unknown model id "mobilenet-v9": expected a path to an .onnx file or one of: mobilenetv2-int8, mobilenetv2-fp32, squeezenet1.1,');
  });

  it('a model file that is not ONNX', async () => {
    const fake = path.join(dir, 'fake.onnx');
    writeFileSync(fake, 'definitely not protobuf\n'.repeat(10));
    const err = await createSession(fake, { providers: ['cpu'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgetuneError);
    expect((err as EdgetuneError).code).toBe('EMODEL');
    expect((err as Error).message).toMatch(new RegExp(`^${fake.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not a valid ONNX model \\(.*[Pp]rotobuf parsing failed`));
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', fake]);
    expect(r.code).toBe(1);
    // the CLI describes the model (reads its graph) before opening a session: our toolkit's reason
    expect(r.stderr).toContain(`${fake}: not a readable ONNX model (Not an ONNX model: the data is not a protobuf ModelProto`);
  });

  it('createSession on a path that does not exist, or a registry id, says "model file not found"', async () => {
    // before: `<path>: not a valid ONNX model (Load model <path> failed. File doesn't exist)`
    const missing = path.join(dir, 'nowhere.onnx');
    await expect(createSession(missing, { providers: ['cpu'] })).rejects.toMatchObject({ code: 'EMODEL', message: `${missing}: model file not found` });
    await expect(createSession('mobilenetv2-int8', { providers: ['cpu'] })).rejects.toMatchObject({
      code: 'EMODEL',
      message: 'mobilenetv2-int8: model file not found (createSession opens a file path or bytes; for a registry id, resolveModel(id).path is its file)',
    });
  });

  it('loadClassifier, classify and classifyFiles refuse a topK or batch that is not a positive integer', async () => {
    // before: topK 0 → top [] (top[0] undefined), topK 2.5 → 3 predictions, batch 0 → batch 1, all without a word
    // refused before a session is opened: none left open (was one per refused call)
    const sessions = liveSessionCount();
    await expect(loadClassifier('mobilenetv2-int8', { topK: 0 })).rejects.toThrow('Expected positive integer for topK but received 0');
    expect(liveSessionCount()).toBe(sessions);
    const clf = await loadClassifier('mobilenetv2-int8', { topK: 3 });
    try {
      const dog = shared('camera', 'winml_dog.jpg');
      await expect(clf.classify(dog, { topK: 2.5 })).rejects.toThrow('Expected positive integer for topK but received 2.5');
      const files = clf.classifyFiles([dog], { batch: 0 });
      await expect(files.next()).rejects.toThrow('Expected positive integer for batch but received 0');
      expect((await clf.classify(dog)).top.map((p) => p.label)).toEqual(['Golden Retriever', 'Labrador Retriever', 'Chesapeake Bay Retriever']);
    } finally {
      await clf.dispose();
    }
  });

  it('a model path that does not exist', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', './nowhere/m.onnx']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('edgetune classify: ./nowhere/m.onnx: model file not found');
  });

  it('a wrong provider name', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--ep', 'cuda,gpu3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown execution provider "gpu3": expected one of tensorrt, cuda, webgpu, coreml, dml, cpu, wasm');
  });

  it('bad numeric options', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--top=-3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Expected positive integer for --top but received "-3"');
  });
});
