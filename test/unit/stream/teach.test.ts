// The teach module's pure rules (runtime/stream/teach.ts): which labels can be class folders, when a
// frame counts as unknown, and the old-class accuracy the 422 gate compares. The routes, training and
// swap run end to end in test/e2e/watch-teach.test.ts.

import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createSource } from '../../../devices/index.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { checkLabel, createTeach, isUnknown, lastTaught, oldClassAccuracy, pruneTaughtModels } from '../../../runtime/stream/teach.js';
import { shared, tempDir } from '../../helpers.js';
import { geometryOfClassifier, StreamPipeline, type StreamResult } from '../../../runtime/stream/pipeline.js';

describe('teach rules', () => {
  it('takes labels that are safe folder names and refuses path parts with the reason', () => {
    for (const ok of ['sunflowers', 'Golden Retriever', 'class_2', 'été', 'a.b-c+d']) expect(checkLabel(ok)).toBe(ok);
    for (const bad of ['', '..', '../models', 'a/b', 'a\\b', '.hidden', 'x'.repeat(65), 'ends.', ' lead']) {
      expect(() => checkLabel(bad)).toThrow(`Expected a label of 1 to 64 letters, digits, spaces or "_.+-" (starting with a letter or digit) but received ${JSON.stringify(bad)}`);
    }
  });

  it('a result is unknown when the stream shows "unknown", or by its own open-set flag', () => {
    const r = (index: number, unknown?: boolean) => ({ top: [{ index: 0, label: 'daisy', score: 0.9 }], smoothed: { label: index < 0 ? 'unknown' : 'daisy', index, score: 0.9 }, ...(unknown === undefined ? {} : { unknown }) }) as unknown as StreamResult;
    expect(isUnknown(r(-1))).toBe(true);
    expect(isUnknown(r(0))).toBe(false);
    expect(isUnknown(r(0, true))).toBe(true);
    expect(isUnknown(r(-1, false))).toBe(true);
  });

  it('older trained sets are removed whole, keeping the newest and the ones the stream holds', async () => {
    // Before, DIR/models/ grew by a set (~12 MB here: 3.4 MB model, 8.8 MB resume data, report) per
    // training for ever. The names and files are those one training of watch --teach wrote.
    const dir = tempDir('edgetune-teach-prune-');
    const stems = ['teach-2026-12-07T14-57-22-515Z', 'teach-2026-12-07T14-57-49-745Z', 'teach-2026-12-07T15-04-02-302Z', 'teach-2026-12-07T15-04-13-802Z'];
    for (const stem of stems) for (const ext of ['.onnx', '.resume.bin', '.report.json', '.report.png']) writeFileSync(path.join(dir, stem + ext), '');
    writeFileSync(path.join(dir, `.${stems[3]}.onnx.4242.17.tmp`), ''); // a set being written by another training
    // the oldest is held (the stream serves it after a rollback): it stays; the second oldest goes whole
    expect(await pruneTaughtModels(dir, 2, [path.join(dir, `${stems[0]}.onnx`)])).toEqual([stems[1]]);
    expect(readdirSync(dir).filter((f) => f.startsWith(stems[1]!))).toEqual([]);
    expect(readdirSync(dir)).toHaveLength(13);
    expect(await pruneTaughtModels(dir, 0)).toEqual([]);
    expect(await pruneTaughtModels(dir, 1)).toEqual([stems[2], stems[0]]);
    expect(readdirSync(dir).sort()).toEqual([`.${stems[3]}.onnx.4242.17.tmp`, ...['.onnx', '.report.json', '.report.png', '.resume.bin'].map((e) => stems[3] + e)].sort());
  });

  it('a training never removes the base every training resumes from, the model this watch started on, nor the one serving.json names', async () => {
    // watch --model DIR/models/teach-X.onnx --teach DIR (the lastTaught doc's case): after 3 trainings
    // the sets newest first were [t3, t2, t1, X]; X (the base, its resume data) went, and the 4th
    // training and the kiosk's restart command then failed on the missing files.
    const dir = tempDir('edgetune-teach-held-');
    const models = path.join(dir, 'models');
    mkdirSync(models);
    const stem = (month: string) => `teach-2026-${month}-01T00-00-00-000Z`;
    const [base, recorded, older, t1, t2, t3] = ['01', '02', '03', '04', '05', '06'].map(stem) as [string, string, string, string, string, string];
    for (const s of [base, recorded, older, t1, t2, t3]) for (const ext of ['.resume.bin', '.report.json']) writeFileSync(path.join(models, s + ext), '');
    for (const s of [recorded, older, t1, t2]) writeFileSync(path.join(models, `${s}.onnx`), '');
    // real models where they are read: the base (its labels, sha256) and the one serving
    copyFileSync(shared('models', 'mobilenetv2-12-int8.onnx'), path.join(models, `${base}.onnx`));
    copyFileSync(shared('models', 'mobilenetv2-12-int8.onnx'), path.join(models, `${t3}.onnx`));
    // a restart serves `recorded` (the record's sha256 does not apply here: only its name counts for pruning)
    const result = { path: path.join(models, `${recorded}.onnx`), sha256: '0'.repeat(64), labels: ['a', 'b'], accuracy: 1, seconds: 1 };
    writeFileSync(path.join(dir, 'serving.json'), JSON.stringify({ model: `${recorded}.onnx`, sha256: '0'.repeat(64), base: path.join(models, `${base}.onnx`), baseSha256: '1'.repeat(64), result }));
    const clf = await loadClassifier(path.join(models, `${t3}.onnx`), { threads: 1, lazy: true });
    const src = await createSource(`dir://${path.dirname(shared('camera', 'slow_traffic_frames', 'frame_001.jpg'))}`, geometryOfClassifier(clf));
    const pipeline = new StreamPipeline(src, clf);
    const log: string[] = [];
    const teach = await createTeach(pipeline, { dir, base: path.join(models, `${base}.onnx`), loadModel: (f) => loadClassifier(f, { lazy: true }), log: (l) => log.push(l) });
    try {
      // no examples: refused at once, and the older sets are pruned as after every training
      await expect(teach.train()).rejects.toThrow('nothing to train: no examples yet');
      await expect.poll(() => log.find((l) => l.startsWith('teach: removed'))).toBe(`teach: removed 1 older trained set from ${models} (${older}; --keep-models 3)`);
      expect(readdirSync(models).filter((f) => f.startsWith(older))).toEqual([]);
      for (const s of [base, recorded, t1, t2, t3]) for (const ext of ['.onnx', '.resume.bin', '.report.json']) expect(existsSync(path.join(models, s + ext)), s + ext).toBe(true);
    } finally {
      await teach.close();
      await src.close();
      await clf.dispose();
    }
  });

  it('a teach route asked with a method it does not take is 405 naming that method (HEAD too)', async () => {
    const dir = tempDir('edgetune-teach-405-');
    const base = path.join(dir, 'flowers3.onnx');
    copyFileSync(shared('models', 'mobilenetv2-12-int8.onnx'), base);
    writeFileSync(path.join(dir, 'flowers3.resume.bin'), ''); // never read: no training runs here
    const clf = await loadClassifier(base, { threads: 1, lazy: true });
    const src = await createSource(`dir://${path.dirname(shared('camera', 'slow_traffic_frames', 'frame_001.jpg'))}`, geometryOfClassifier(clf));
    const teach = await createTeach(new StreamPipeline(src, clf), { dir: path.join(dir, 'teach'), loadModel: (f) => loadClassifier(f, { lazy: true }) });
    /** The status, Allow header and body teach.handle answers `method p`. */
    const ask = async (method: string, p: string) => {
      const req = Object.assign(new PassThrough(), { method, headers: {} }) as unknown as IncomingMessage;
      req.push(null);
      let head: [number, Record<string, unknown>] = [0, {}];
      let body = '';
      const res = { writeHead: (s: number, h: Record<string, unknown>) => (head = [s, h]), end: (b: string) => (body = b) } as unknown as ServerResponse;
      expect(await teach.handle(req, res, new URL(p, 'http://127.0.0.1'))).toBe(true);
      return [head[0], head[1].Allow, JSON.parse(body) as unknown];
    };
    try {
      // before: "method GET not allowed" for a HEAD (HEAD is answered as GET where GET is taken)
      expect(await ask('HEAD', '/teach/train')).toEqual([405, 'POST', { error: 'method HEAD not allowed on /teach/train (POST)' }]);
      expect(await ask('PUT', '/teach/train')).toEqual([405, 'POST', { error: 'method PUT not allowed on /teach/train (POST)' }]);
      expect(await ask('HEAD', '/teach/nothing')).toEqual([404, undefined, { error: 'no such endpoint: HEAD /teach/nothing' }]);
    } finally {
      await teach.close();
      await src.close();
      await clf.dispose();
    }
  });

  it('a serving.json that is not a serving record is named with its problem and passed over', async () => {
    const dir = tempDir('edgetune-teach-record-');
    const file = path.join(dir, 'serving.json');
    const base = shared('models', 'mobilenetv2-12-int8.onnx');
    const record = { model: 'teach-2026-01-01T00-00-00-000Z.onnx', sha256: 'a'.repeat(64), base, baseSha256: 'b'.repeat(64) };
    // before: a TypeError on r.sha256.slice (no sha256), and watch crashed on taught.result.labels (no result)
    const cases: [unknown, string][] = [
      [{ ...record, sha256: undefined, result: { path: 'x', sha256: 'a', labels: [] } }, `${file}: sha256: required but missing`],
      [record, `${file}: result: required but missing`],
      [{ ...record, result: { path: 'x', sha256: 'a', labels: 'daisy' } }, `${file}: result.labels: expected Array but received "daisy"`],
      [{ ...record, model: '../../etc/passwd', result: { path: 'x', sha256: 'a', labels: [] } }, `${file}: model: expected a taught model's file name (teach-<time>.onnx) but received "../../etc/passwd"`],
    ];
    for (const [r, why] of cases) {
      writeFileSync(file, JSON.stringify(r));
      expect(await lastTaught(dir, base)).toEqual({ skipped: why });
    }
    writeFileSync(file, '{"model": ');
    expect(await lastTaught(dir, base)).toEqual({ skipped: expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\(`)) });
  });

  it('old-class accuracy counts the old rows of the confusion matrix, wherever their images went', () => {
    // the taught model of the e2e test: 30 old validation images, 27 on their own class, 3 to sunflowers
    const r = { labels: ['daisy', 'dandelion', 'roses', 'sunflowers'], confusion: [[9, 1, 0, 0], [0, 9, 0, 1], [0, 0, 9, 1], [0, 1, 0, 7]] };
    expect(oldClassAccuracy(r, ['daisy', 'dandelion', 'roses'])).toEqual({ accuracy: 27 / 30, images: 30 });
    expect(oldClassAccuracy(r, ['tulips'])).toEqual({ accuracy: null, images: 0 });
  });
});
