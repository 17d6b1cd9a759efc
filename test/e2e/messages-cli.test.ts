// Messages, one test per kind (issue 22 #19): broken tfjs JSON is reported as tfjs, a BOM is not an
// error, card/graph mismatches are refused once at load (not per image as raw onnxruntime errors), a
// dynamic-size tfjs model is refused at import leaving no file, decode failures never show sharp's
// argument names or an empty reason, non-UTF-8 arguments are refused, and a corrupt TFLite exits 1.

import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { importTflite } from '../../runtime/onnx/import/index.js';
import { decodeModel, encodeModel } from '../../runtime/onnx/model.js';
import { jsonLines, repoRoot, runCli, shared, tempDir } from '../helpers.js';

const cache = tempDir('edgetune-msg-cache-');
const env = { EDGETUNE_CACHE: cache, EDGETUNE_OFFLINE: '1' };
const cli = (args: string[]) => runCli(args, { env });
const work = tempDir('edgetune-msg-');
const DOG = shared('camera', 'winml_dog.jpg');
const CAT = shared('camera', 'winml_cat.jpg');
const V1 = shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx');
/** MobileNetV1's registry description, as a card file would give it (MODELS.md). */
const V1_CARD = { preprocess: { colorOrder: 'RGB', range: [-1, 1], mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 0.875 }, labelOffset: 1, outputKind: 'probabilities' };

function twinsCopy(name: string): string {
  const dir = path.join(work, name);
  cpSync(shared('models', 'teachable-machine', 'twins-tfjs'), dir, { recursive: true });
  for (const f of readdirSync(dir)) chmodSync(path.join(dir, f), 0o644);
  return dir;
}

describe('tfjs JSON and card files', () => {
  it('broken model.json is reported as a tfjs file (never an ONNX protobuf error); a BOM is accepted', async () => {
    const dir = twinsCopy('tfjs-json');
    const json = readFileSync(path.join(dir, 'model.json'), 'utf8');
    const cases: [string, string, string][] = [
      ['null.json', 'null', 'tfjs model.json holds null, not an object with modelTopology and weightsManifest'],
      ['empty.json', '{}', 'tfjs model.json has no modelTopology object (keys: none): not a tfjs layers model'],
      ['notopo.json', '{"weightsManifest": []}', 'tfjs model.json has no modelTopology object (keys: weightsManifest): not a tfjs layers model'],
      ['list.json', '[1]', 'tfjs model.json holds an array, not an object with modelTopology and weightsManifest'],
      ['cut.json', json.slice(0, 100), 'tfjs model.json is not valid JSON ('],
    ];
    for (const [name, text, why] of cases) {
      writeFileSync(path.join(dir, name), text);
      const r = await cli(['classify', DOG, '--model', path.join(dir, name)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`edgetune classify: ${path.join(dir, name)}: ${why}`);
      expect(r.stderr).not.toMatch(/protobuf|ONNX/);
    }
    writeFileSync(path.join(dir, 'model.json'), '\uFEFF' + json);
    writeFileSync(path.join(dir, 'metadata.json'), '\uFEFF' + readFileSync(path.join(dir, 'metadata.json'), 'utf8'));
    const ok = await cli(['classify', DOG, '--model', path.join(dir, 'model.json'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(jsonLines<{ top: { label: string }[] }>(ok.stdout)[0]!.top.map((t) => t.label).sort()).toEqual(['twin1', 'twin2']);
  });

  it('a .card.json starting with a BOM describes the model (golden retriever, fields from card-file)', async () => {
    const copy = path.join(work, 'bom-v1.onnx');
    copyFileSync(V1, copy);
    writeFileSync(path.join(work, 'bom-v1.card.json'), '\uFEFF' + JSON.stringify(V1_CARD));
    const r = await cli(['classify', DOG, '--model', copy, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines<{ top: { label: string }[] }>(r.stdout)[0]!.top[0]!.label).toBe('Golden Retriever');
    expect(r.stderr).not.toContain('preprocess');
  });
});

describe('card/graph mismatches are refused once, at load', () => {
  const cases: [string, (dir: string, file: string) => void, (file: string) => string][] = [
    ['output not in the graph', (d) => writeFileSync(path.join(d, 'm.card.json'), JSON.stringify({ ...V1_CARD, outputName: 'logits' })), (f) => `${f}: the card names output "logits" (from card-file), but the graph's outputs are "MobilenetV1/Predictions/Reshape_1"`],
    [
      'channels 1 vs 3',
      (d) => writeFileSync(path.join(d, 'm.card.json'), JSON.stringify({ ...V1_CARD, preprocess: { ...V1_CARD.preprocess, channels: 1, colorOrder: 'GRAY', mean: [0], std: [1] } })),
      (f) => `${f}: the card says 1 channel(s) in NCHW (preprocess.channels from card-file, layout from graph), but input "input" is [1,3,128,128]: axis 1 is 3`,
    ],
    [
      'a fixed batch of 64',
      (d, f) => {
        writeFileSync(path.join(d, 'm.card.json'), JSON.stringify(V1_CARD));
        const m = decodeModel(new Uint8Array(readFileSync(f)));
        m.graph.input[0]!.type!.tensorType!.shape!.dim![0] = { dimValue: 64 };
        writeFileSync(f, encodeModel(m));
      },
      (f) => `${f}: input "input" is [64,3,128,128]: a fixed batch of 64 images; edgetune runs one image (or a dynamic batch) per run: export the model with batch 1 or a dynamic batch`,
    ],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      const dir = tempDir('edgetune-msg-card-');
      const file = path.join(dir, 'm.onnx');
      copyFileSync(V1, file);
      make(dir, file);
      const r = await cli(['classify', DOG, CAT, '--model', file, '--json']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe(''); // no per-image error lines
      expect(r.stderr).toBe(`edgetune classify: ${message(file)}\n`);
    });
  }
});

describe('import and decode messages', () => {
  it('a dynamic-size tfjs model is refused at import, and no file is left (neither --out nor the import cache)', async () => {
    const dir = twinsCopy('tfjs-dynamic');
    const f = path.join(dir, 'model.json');
    writeFileSync(f, readFileSync(f, 'utf8').replace('"batch_input_shape":[null,224,224,3]', '"batch_input_shape":[null,null,null,3]'));
    const out = path.join(work, 'dynamic.onnx');
    const r = await cli(['import', f, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `edgetune import: ${f}: the input is [null,null,null,3]: edgetune imports image models with a fixed height, width and 1 or 3 channels ([null, H, W, C]); re-export the model with a fixed input size (Teachable Machine exports [null, 224, 224, 3])\n`,
    );
    expect(existsSync(out)).toBe(false);
    const converted = () => (existsSync(path.join(cache, 'imports')) ? readdirSync(path.join(cache, 'imports')).filter((x) => x.endsWith('.onnx')) : []);
    const before = converted();
    const c = await cli(['classify', DOG, '--model', f]);
    expect(c.code).toBe(1);
    expect(converted()).toEqual(before);
  });

  it("decode failures say what is wrong with the file: no sharp argument names, no empty reason", async () => {
    const wide = path.join(work, 'wide.png');
    await sharp({ create: { width: 3_000_000, height: 1, channels: 3, background: 'red' } }).png().toFile(wide);
    const png8 = path.join(work, 'header-only.png');
    writeFileSync(png8, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const r = await cli(['classify', wide, png8, DOG, '--model', 'mobilenetv2-int8', '--json']);
    expect(r.code).toBe(1);
    const rows = jsonLines<{ file: string; error?: string; top?: unknown[] }>(r.stdout);
    expect(rows.map((x) => x.error)).toEqual([
      `${wide}: image is 3000000x1: fitting it to the model's 224x224 (cover) would first scale it to 768000000x256, past the largest side the decoder takes (100000000); an aspect ratio this extreme is not a photo`,
      `${png8}: corrupt image (a damaged PNG file: not even its header reads)`,
      undefined,
    ]);
  });

  it('a non-UTF-8 argument is refused naming it (exit 2), not opened as another name', () => {
    const cliPath = path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js');
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cliPath}" classify "$(printf 'caf\\xe9.jpg')"`], { encoding: 'utf8', env: { ...process.env, ...env } });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('edgetune: argument 2 ("caf\uFFFD.jpg") is not valid UTF-8 (the bytes shown as \uFFFD): edgetune reads names as UTF-8, and reading this one would open or write another file; rename it to UTF-8 (e.g. convmv -f latin1 -t utf8)\n');
  });

  it('a corrupt TFLite whose values do not fit exits 1 (a model error), not 2 (usage)', async () => {
    // seeded byte flips of the int8 Teachable Machine file until the importer rejects a value (measured:
    // 101 of 400 such mutations raised the toolkit's argument error, which used to exit 2)
    const src = new Uint8Array(readFileSync(shared('models', 'teachable-machine', 'fruit-tflite', 'model.tflite')));
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let bad: Uint8Array | undefined;
    let why = '';
    for (let t = 0; t < 400 && !bad; t++) {
      const b = src.slice();
      for (let i = 0, n = 1 + Math.floor(rnd() * 8); i < n; i++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        importTflite(b);
      } catch (err) {
        if ((err as { code?: string }).code === 'EARG') [bad, why] = [b, (err as Error).message];
      }
    }
    expect(bad, 'no mutation raised EARG').toBeDefined();
    const file = path.join(work, 'corrupt.tflite');
    writeFileSync(file, bad!);
    for (const args of [['classify', DOG, '--model', file], ['import', file, '--out', path.join(work, 'corrupt.onnx')]]) {
      const r = await cli(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`edgetune ${args[0]}: ${file}: ${why}\n`);
    }
  });
});
