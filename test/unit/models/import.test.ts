// models/import.ts: which files are imported, the content-hash cache (one conversion per source +
// labels), the embedded card, and describeModel on a .tflite (card file beside the source, --labels
// fitted like the importer fits them), on the Teachable Machine fruit export.

import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeModel } from '../../../models/describe.js';
import { conversionCount, importFormatOf, importedModelPath, importModelFile } from '../../../models/import.js';
import { runCli, shared, tempDir } from '../../helpers.js';

const FRUIT = shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite');
const TWINS = shared('models', 'teachable-machine', 'twins-tfjs', 'model.json');
const FRUIT_LABELS = ['FRESH APPLE', 'FRESH BANANA', 'FRESH ORANGE', 'ROTTEN APPLE', 'ROTTEN ORANGE', 'ROTTEN BANANA'];

describe('models/import', () => {
  const work = tempDir('edgetune-import-unit-');

  it('recognises .tflite files and .json files (tfjs, the only JSON model format) except card files, nothing else', async () => {
    expect(await importFormatOf(FRUIT)).toBe('tflite');
    expect(await importFormatOf(TWINS)).toBe('tfjs');
    // any other .json given as a model is read as tfjs, so its error is a tfjs one (never an ONNX protobuf error)
    expect(await importFormatOf(shared('models', 'teachable-machine', 'twins-tfjs', 'metadata.json'))).toBe('tfjs');
    const card = path.join(work, 'm.card.json');
    writeFileSync(card, JSON.stringify({ modelTopology: {} }));
    expect(await importFormatOf(card)).toBeUndefined();
    expect(await importFormatOf(shared('models', 'mobilenetv2-12-int8.onnx'))).toBeUndefined();
  });

  it('converts once per source and labels: the second call is a cache hit, other labels another entry', async () => {
    const cacheDir = path.join(work, 'cache');
    const before = conversionCount;
    const a = await importedModelPath(FRUIT, { cacheDir });
    const b = await importedModelPath(FRUIT, { cacheDir });
    expect(a.converted).toBe(true);
    expect(b).toEqual({ ...a, converted: false });
    expect(a.path).toMatch(/imports\/[0-9a-f]{64}\.onnx$/);
    expect(conversionCount).toBe(before + 1);
    const labels = path.join(work, 'labels.json');
    writeFileSync(labels, JSON.stringify(FRUIT_LABELS.map((l) => l.toLowerCase())));
    const c = await importedModelPath(FRUIT, { cacheDir, labels });
    expect(c.converted).toBe(true);
    expect(c.path).not.toBe(a.path);
  });

  it('a label file that is not text (a photo, Latin-1) is refused as such, naming it (was "line 3 is empty" for a JPEG)', async () => {
    const jpeg = shared('camera', 'winml_dog.jpg'); // its 5th byte (offset 4) is the 0x00 of the JFIF segment length
    await expect(importModelFile(FRUIT, { labels: jpeg })).rejects.toMatchObject({
      code: 'EINPUT',
      message: `${jpeg}: label file is not a text file (byte 4 is a NUL byte; edgetune reads UTF-8 text)`,
    });
    const latin1 = path.join(work, 'latin1-labels.txt');
    writeFileSync(latin1, Buffer.from('FRESH APPLE\nFRESH BANANA\nFRESH ORANGE\nROTTEN APPLE\nROTTEN ORANGE\nPL\xc4TANO PODRIDO\n', 'latin1'));
    await expect(importModelFile(FRUIT, { labels: latin1 })).rejects.toMatchObject({
      code: 'EINPUT',
      message: `${latin1}: label file is not a text file (it is not valid UTF-8; edgetune reads UTF-8 text)`,
    });
    // the CLI says the same (import and card read label files through runtime/io/labels-file.ts)
    const out = path.join(work, 'not-written.onnx');
    const r = await runCli(['import', FRUIT, '--labels', jpeg, '--out', out], { env: { EDGETUNE_CACHE: path.join(work, 'cli-cache') } });
    expect(r.stderr).toBe(`edgetune import: ${jpeg}: label file is not a text file (byte 4 is a NUL byte; edgetune reads UTF-8 text)\n`);
    expect(r.code).toBe(1); // EINPUT (an input that cannot be read), not a usage error (2)
    const c = await runCli(['card', shared('models', 'mnist_winml.onnx'), '--labels', jpeg, '--out', out]);
    expect(c.stderr).toContain(`${jpeg}: label file is not a text file (byte 4 is a NUL byte; edgetune reads UTF-8 text)`);
    expect(existsSync(out)).toBe(false);
  });

  it('embeds the card: labels from labels.txt beside the file, preprocessing, output, embedding, provenance', async () => {
    const r = await importModelFile(FRUIT);
    expect(r.format).toBe('tflite');
    expect(r.labelsFrom).toBe(path.join(path.dirname(FRUIT), 'labels.txt'));
    expect(r.info).toMatchObject({
      labels: FRUIT_LABELS,
      outputKind: 'probabilities',
      outputName: 'sequential_3/dense_Dense2/Softmax',
      preprocess: { width: 224, height: 224, channels: 3, layout: 'NCHW', range: [0, 255], mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5], dtype: 'float32' },
      embedding: { dims: 1280 },
      provenance: { source: 'model_unquant.tflite', schema: 'tflite schema v3', precision: 'fp32', preprocessSource: 'assumed', labels: 'labels.txt' },
    });
  });

  it('describeModel on a .tflite: the card file beside the source applies; --labels is decided against the outputs', async () => {
    const copy = path.join(tempDir('edgetune-import-described-'), 'fruit.tflite');
    copyFileSync(FRUIT, copy);
    writeFileSync(copy.replace(/\.tflite$/, '.card.json'), JSON.stringify({ preprocess: { crop: 0.875 } }));
    const cacheDir = path.join(work, 'cache2');
    const d = await describeModel(copy, { cacheDir });
    expect(d.importedFrom).toBe(copy);
    expect(d.card.id).toBe('fruit.tflite');
    expect(d.card.preprocess.crop).toBe(0.875);
    expect(d.card.sources['preprocess.crop']).toBe('card-file');
    // the label rule: a flag list as long as the outputs is label i = output i, even with a leading
    // "background" (Coral's 1001-line file); one name fewer than outputs means output 0 is background
    const flagged = await describeModel(copy, { cacheDir, overrides: { labels: ['background', ...FRUIT_LABELS.slice(0, 5)] } });
    expect(flagged.card.labels).toEqual(['background', ...FRUIT_LABELS.slice(0, 5)]);
    expect(flagged.card.labelOffset).toBe(0);
    const shorter = await describeModel(copy, { cacheDir, overrides: { labels: FRUIT_LABELS.slice(1) } });
    expect(shorter.card.labelOffset).toBe(1);
    expect(shorter.card.labelReason).toBe('5 labels (from flags) for 6 outputs: output 0 is a background class, label i is output i + 1 (offset 1)');
  });
});
