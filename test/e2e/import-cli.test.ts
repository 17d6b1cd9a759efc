// Imported models end to end: `edgetune import` on the four shared TFLite / Teachable Machine files,
// `classify --model x.tflite` (converted once, then served from the import cache), a bare
// onnxruntime session on the written file, `finetune` on an imported Coral embedding extractor and
// on the Teachable Machine tfjs backbone with `eval` of the exports, the kiosk serving an imported
// model, and the errors for a truncated .tflite and a model.json whose weights file is missing.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { readModelInfo } from '../../runtime/io/model-file.js';
import { startKiosk, type KioskServer } from '../../runtime/kiosk/server.js';
import { jsonLines, runCli, shared, tempDir } from '../helpers.js';

const TFLITE = shared('models', 'tflite');
const CORAL = path.join(TFLITE, 'coral_mobilenet_v2_1.0_224_quant.tflite');
const CORAL_LABELS = path.join(TFLITE, 'coral_imagenet_labels.txt');
const CORAL_EMBED = path.join(TFLITE, 'coral_mobilenet_v1_1.0_224_quant_embedding_extractor.tflite');
const FRUIT = shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite');
const TWINS = shared('models', 'teachable-machine', 'twins-tfjs', 'model.json');
const beans = shared('datasets', 'beans-dev');
const cache = tempDir('edgetune-import-cache-');
const work = tempDir('edgetune-import-');
const env = { EDGETUNE_CACHE: cache, EDGETUNE_OFFLINE: '1' };
const cli = (args: string[]) => runCli(args, { env });

describe('edgetune import', () => {
  it('converts the Coral MobileNetV2 (uint8) with its labels file: card embedded, printed, loads in a bare onnxruntime session', async () => {
    const out = path.join(work, 'coral.onnx');
    const r = await cli(['import', CORAL, '--labels', CORAL_LABELS, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`edgetune import: wrote ${out} (TFLite ${CORAL})`);
    expect(r.stdout).toContain('scale 0.0078125 zero point 128');
    expect(r.stdout).toContain("from the input's quantization");
    expect(r.stdout).toContain(`1001 (background, tench, goldfish, …), label offset 0, from ${CORAL_LABELS}`);
    expect(r.stdout).toContain('MobilenetV2/Predictions/Softmax [1,1001] probabilities');
    expect(r.stdout).toContain('embedding      MobilenetV2/Logits/AvgPool (1280-d)');
    expect(r.stdout).toContain('precision      int8');
    const info = await readModelInfo(out);
    expect(info).toMatchObject({ outputKind: 'probabilities', outputName: 'MobilenetV2/Predictions/Softmax', embedding: { tensor: 'MobilenetV2/Logits/AvgPool', dims: 1280 } });
    expect(info!.labels).toHaveLength(1001);
    expect(info!.labelOffset ?? 0).toBe(0);
    expect(info!.preprocess).toMatchObject({ width: 224, height: 224, layout: 'NCHW', range: [0, 255], mean: [128, 128, 128], std: [128, 128, 128] });
    expect(info!.provenance).toMatchObject({ source: 'coral_mobilenet_v2_1.0_224_quant.tflite', schema: 'tflite schema v3', precision: 'int8', labels: 'coral_imagenet_labels.txt' });
    expect((info!.provenance as { sha256: string }).sha256).toMatch(/^[0-9a-f]{64}$/);
    // self-contained: a plain onnxruntime session runs it; the dog photo, fitted and normalised as
    // the card says ((x − 128)/128, centre square), is output 208 = label 208 "golden retriever"
    const s = await ort.InferenceSession.create(out);
    const px = await sharp(shared('camera', 'winml_dog.jpg')).resize(224, 224, { fit: 'cover' }).removeAlpha().raw().toBuffer();
    const x = new Float32Array(3 * 224 * 224);
    for (let i = 0; i < 224 * 224; i++) for (let c = 0; c < 3; c++) x[c * 224 * 224 + i] = (px[i * 3 + c]! - 128) / 128;
    const y = await s.run({ input: new ort.Tensor('float32', x, [1, 3, 224, 224]) });
    const p = y['MobilenetV2/Predictions/Softmax']!;
    expect(p.dims).toEqual([1, 1001]);
    const scores = [...(p.data as Float32Array)];
    expect(scores.indexOf(Math.max(...scores))).toBe(208);
    expect(info!.labels[208]).toBe('golden retriever');
  });

  it('converts the Coral embedding extractor, the Teachable Machine float .tflite (labels.txt beside it) and the tfjs model.json (metadata.json beside it)', async () => {
    const embed = await cli(['import', CORAL_EMBED, '--out', path.join(work, 'embed.onnx')]);
    expect(embed.code, embed.stderr).toBe(0);
    expect(embed.stdout).toContain('labels         none');
    expect(embed.stdout).toContain('MobilenetV1/Logits/AvgPool_1a/AvgPool [1,1024,1,1] embedding');
    // a feature extractor has no class scores: its card's output kind is 'auto'
    expect(await readModelInfo(path.join(work, 'embed.onnx'))).toMatchObject({ outputKind: 'auto', embedding: { tensor: 'MobilenetV1/Logits/AvgPool_1a/AvgPool', dims: 1024 } });

    const fruit = await cli(['import', FRUIT, '--out', path.join(work, 'fruit.onnx')]);
    expect(fruit.code, fruit.stderr).toBe(0);
    expect(fruit.stdout).toContain(`6 (FRESH APPLE, FRESH BANANA, FRESH ORANGE, …), label offset 0, from ${path.join(path.dirname(FRUIT), 'labels.txt')}`);
    expect(fruit.stdout).toContain('assumed (nothing in the file says)');
    expect(fruit.stdout).toContain('precision      fp32');
    const fi = await readModelInfo(path.join(work, 'fruit.onnx'));
    expect(fi?.labels).toEqual(['FRESH APPLE', 'FRESH BANANA', 'FRESH ORANGE', 'ROTTEN APPLE', 'ROTTEN ORANGE', 'ROTTEN BANANA']);
    expect(fi?.preprocess).toMatchObject({ mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] });

    const twins = await cli(['import', TWINS, '--out', path.join(work, 'twins.onnx'), '--json']);
    expect(twins.code, twins.stderr).toBe(0);
    const card = JSON.parse(twins.stdout) as { id: string; labels: string[]; format: string; precision: string; embedding: { tensor: string; dims: number }; sources: Record<string, string> };
    expect(card).toMatchObject({ format: 'tfjs', precision: 'fp32', labels: ['twin1', 'twin2'], embedding: { tensor: 'global_average_pooling2d_GlobalAveragePooling2D2', dims: 1280 } });
    expect(card.sources.labels).toBe('embedded');
    expect((await readModelInfo(path.join(work, 'twins.onnx')))?.provenance).toMatchObject({ source: 'twins-tfjs/model.json', labels: 'metadata.json' });
  });
});

describe('--model x.tflite in every command', () => {
  it('classify --model <coral>.tflite --labels <its labels file> names the three photos; the second use hits the import cache', async () => {
    const photos = ['winml_dog.jpg', 'hwacc_imagenet_finch.jpeg', 'winml_hummingbird.jpg'].map((f) => shared('camera', f));
    const r = await cli(['classify', ...photos, '--model', CORAL, '--labels', CORAL_LABELS, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = jsonLines<{ file: string; model: string; top: { index: number; label: string }[] }>(r.stdout);
    // the names of coral_imagenet_labels.txt (1001 lines for 1001 outputs: label i is output i)
    expect(rows.map((x) => x.top[0]!.label)).toEqual(['golden retriever', 'house finch, linnet, Carpodacus mexicanus', 'hummingbird']);
    expect(rows[0]!.model).toBe('coral_mobilenet_v2_1.0_224_quant.tflite');
    const imports = path.join(cache, 'imports');
    const files = readdirSync(imports);
    expect(files).toHaveLength(1);
    const converted = path.join(imports, files[0]!);
    const mtime = statSync(converted).mtimeMs;
    const again = await cli(['inspect', CORAL]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`${CORAL} (converted to ${converted})`);
    // no second conversion: the same cached file, not rewritten
    expect(readdirSync(imports)).toEqual(files);
    expect(statSync(converted).mtimeMs).toBe(mtime);
  });

  it('finetune on the imported Coral embedding extractor and on the Teachable Machine tfjs backbone; eval scores the exports', async () => {
    for (const [base, name, floor] of [
      // measured (beans-dev, --augment none, default head and seed): val accuracy 0.917 (55/60)
      [CORAL_EMBED, 'beans-coral.onnx', 0.85],
      // measured: val accuracy 0.950 (57/60)
      [TWINS, 'beans-tm.onnx', 0.88],
    ] as const) {
      const out = path.join(work, name);
      const ft = await runCli(['finetune', path.join(beans, 'train'), '--val', path.join(beans, 'val'), '--model', base, '--augment', 'none', '--out', out, '--json'], { env, timeoutMs: 170_000 });
      expect(ft.code, ft.stderr).toBe(0);
      const report = JSON.parse(ft.stdout) as { accuracy: number; labels: string[] };
      expect(report.labels).toEqual(['angular_leaf_spot', 'bean_rust', 'healthy']);
      const ev = await cli(['eval', path.join(beans, 'val'), '--model', out, '--json']);
      expect(ev.code, ev.stderr).toBe(0);
      const e = JSON.parse(ev.stdout) as { accuracy: number; images: number };
      console.log(`finetune beans-dev on ${path.basename(base)}: val ${report.accuracy}, eval ${e.accuracy}`);
      expect(e.images).toBe(60);
      expect(e.accuracy).toBeGreaterThanOrEqual(floor);
      expect(e.accuracy).toBeCloseTo(report.accuracy, 5);
    }
  });
});

describe('kiosk', () => {
  const open: KioskServer[] = [];
  afterAll(async () => {
    for (const k of open) await k.close();
  });
  it('serves an imported model: /api/config has its labels and preprocessing', async () => {
    const model = path.join(work, 'fruit-kiosk.onnx');
    const r = await cli(['import', FRUIT, '--out', model]);
    expect(r.code, r.stderr).toBe(0);
    const k = await startKiosk({ model, port: 0, log: () => undefined });
    open.push(k);
    const cfg = (await (await fetch(`${k.url}api/config`)).json()) as { model: { labels: string[]; outputKind: string; preprocess: { mean: number[] } } };
    expect(cfg.model.labels).toEqual(['FRESH APPLE', 'FRESH BANANA', 'FRESH ORANGE', 'ROTTEN APPLE', 'ROTTEN ORANGE', 'ROTTEN BANANA']);
    expect(cfg.model.outputKind).toBe('probabilities');
    expect(cfg.model.preprocess.mean).toEqual([127.5, 127.5, 127.5]);
    // the .tflite itself works too (converted through the import cache)
    const direct = await startKiosk({ model: FRUIT, port: 0, log: () => undefined });
    open.push(direct);
    expect(direct.config.model).toMatchObject({ id: 'model_unquant.tflite', labels: cfg.model.labels });
  });
});

describe('errors name the file', () => {
  it('a truncated .tflite', async () => {
    const bad = path.join(work, 'truncated.tflite');
    writeFileSync(bad, readFileSync(CORAL).subarray(0, 4096));
    for (const args of [['import', bad, '--out', path.join(work, 'never.onnx')], ['classify', shared('camera', 'winml_dog.jpg'), '--model', bad]]) {
      const r = await cli(args);
      expect(r.code, args[0]).not.toBe(0);
      expect(r.stderr).toContain(`${bad}: Corrupt TFLite file`);
    }
    expect(existsSync(path.join(work, 'never.onnx'))).toBe(false);
  });

  it('a model.json whose weights.bin is missing', async () => {
    const dir = path.join(work, 'no-weights');
    mkdirSync(dir);
    copyFileSync(TWINS, path.join(dir, 'model.json'));
    copyFileSync(path.join(path.dirname(TWINS), 'metadata.json'), path.join(dir, 'metadata.json'));
    const r = await cli(['import', path.join(dir, 'model.json'), '--out', path.join(work, 'never2.onnx')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${path.join(dir, 'model.json')}: weights file ${path.join(dir, 'weights.bin')} cannot be read (no such file or directory (ENOENT))`);
    const c = await cli(['classify', shared('camera', 'winml_dog.jpg'), '--model', path.join(dir, 'model.json')]);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toContain(`weights file ${path.join(dir, 'weights.bin')}`);
  });
});
