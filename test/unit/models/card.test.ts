// The model card: one way to describe a model, shared by every command and the library. A registry
// model copied to an unknown name and described with flags, with a card file, or embedded with
// `edgetune card` behaves exactly like the registry original; `inspect` shows where each field came
// from; bad cards and bad flags get exact messages; a model with external data is rewritten as one
// self-contained file.

import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier, type Classifier } from '../../../runtime/classify/classifier.js';
import { describeModel } from '../../../models/describe.js';
import { parseCardLayer } from '../../../runtime/core/model-card.js';
import { createSession } from '../../../runtime/session/session.js';
import { jsonLines, runCli, shared, tempDir } from '../../helpers.js';

const PHOTOS = ['winml_dog.jpg', 'hwacc_imagenet_finch.jpeg', 'winml_hummingbird.jpg'];
// What MODELS.md says MobileNetV1-0.25-128 wants, as flags (the registry entry says the same).
const V1_FLAGS = ['--color-order', 'RGB', '--range', '-1,1', '--mean', '0,0,0', '--std', '1,1,1', '--resize', 'cover', '--crop', '0.875', '--label-offset', '1', '--output-kind', 'probabilities'];

/** top-1 index per image of hymenoptera/val (153 photos), in a fixed order. */
async function valTop1(c: Classifier): Promise<number[]> {
  const out: number[] = [];
  for (const cls of ['ants', 'bees']) {
    const dir = shared('datasets', 'hymenoptera', 'val', cls);
    for (const f of readdirSync(dir).sort()) out.push((await c.classify(path.join(dir, f))).top[0]!.index);
  }
  return out;
}

describe('a registry model under an unknown name', () => {
  const dir = tempDir('edgetune-card-');
  const copy = path.join(dir, 'my-classifier.onnx');
  let original: Classifier;
  let reference: number[];
  beforeAll(async () => {
    copyFileSync(shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx'), copy);
    original = await loadClassifier('mobilenetv1-0.25-128', { providers: ['cpu'] });
    reference = await valTop1(original);
  });
  afterAll(() => original.dispose());

  it('undescribed, it is classified with assumed ImageNet habits, and says so once', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', copy, '--top', '1']);
    expect(r.code).toBe(0);
    // the wrong preprocessing (x/255 + ImageNet mean/std instead of x/127.5 - 1) changes the answer
    expect(r.stdout).toMatch(/Chow Chow/);
    expect(r.stderr.match(/assumed/g)).toHaveLength(1);
    expect(r.stderr).toContain('my-classifier.onnx: nothing describes some of this model (no registry entry, card file or flags); assumed layout NCHW 128x128 from the input shape; RGB, x/255, ImageNet mean/std');
  });

  it('with flags it classifies exactly like the registry original (photos and hymenoptera/val)', async () => {
    for (const f of PHOTOS) {
      const [a, b] = await Promise.all([runCli(['classify', shared('camera', f), '--model', copy, '--top', '1', '--json', ...V1_FLAGS]), original.classify(shared('camera', f))]);
      // only the label names are still assumed (ImageNet's, from the 1001 outputs)
      expect(a.stderr).toContain('assumed ImageNet labels with a background class at index 0\n');
      expect(a.stderr.match(/assumed/g)).toHaveLength(1);
      expect(jsonLines<{ top: { index: number; score: number }[] }>(a.stdout)[0]!.top[0]).toMatchObject({ index: b.top[0]!.index, score: expect.closeTo(b.top[0]!.score, 5) });
    }
    const card = (await describeModel(copy, { overrides: { preprocess: { range: [-1, 1], mean: [0, 0, 0], std: [1, 1, 1], crop: 0.875 }, labelOffset: 1, outputKind: 'probabilities' } })).card;
    expect(card.sources).toMatchObject({ 'preprocess.range': 'flags', 'preprocess.mean': 'flags', labelOffset: 'flags', inputName: 'graph', 'preprocess.width': 'graph', labels: 'assumed' });
    const c = await loadClassifier(copy, { providers: ['cpu'], overrides: { preprocess: card.preprocess, labelOffset: 1, outputKind: 'probabilities' } });
    expect(await valTop1(c)).toEqual(reference);
    await c.dispose();
  });

  it('a card file beside the model (labels from a Teachable-Machine-style labels.txt) describes it', async () => {
    const d2 = tempDir('edgetune-cardfile-');
    const m = path.join(d2, 'v1.onnx');
    copyFileSync(copy, m);
    const names = (await describeModel('mobilenetv1-0.25-128')).card.labels;
    writeFileSync(path.join(d2, 'labels.txt'), names.map((n, i) => `${i} ${n}`).join('\n') + '\n');
    writeFileSync(
      path.join(d2, 'v1.card.json'),
      JSON.stringify({ preprocess: { colorOrder: 'RGB', range: [-1, 1], mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 0.875 }, labels: 'labels.txt', labelOffset: 1, outputKind: 'probabilities' }),
    );
    const c = await loadClassifier(m, { providers: ['cpu'] });
    expect(c.assumptions).toEqual([]);
    expect(c.card.sources).toMatchObject({ labels: 'card-file', 'preprocess.mean': 'card-file', outputKind: 'card-file' });
    expect(c.card.labels).toEqual(names);
    expect((await c.classify(shared('camera', 'winml_dog.jpg'))).top[0]).toMatchObject({ index: 207, label: 'Golden Retriever' });
    expect(await valTop1(c)).toEqual(reference);
    await c.dispose();
    // inspect shows where each field came from
    const r = await runCli(['inspect', m, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { sources: Record<string, string>; assumptions: string[] };
    expect(j.sources).toMatchObject({ labels: 'card-file', 'preprocess.width': 'graph', id: 'graph' });
    expect(j.assumptions).toEqual([]);
    const t = await runCli(['inspect', m]);
    expect(t.stdout).toMatch(/preprocess\.range\s+\[-1, 1\]\s+\(card-file\)/);
  });

  it('edgetune card embeds the card: the written file stands alone (classify, inspect, bare onnxruntime)', async () => {
    const out = path.join(dir, 'standalone.onnx');
    const refused = await runCli(['card', copy, '--out', out, '--range', '-1,1']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`edgetune card: nothing says preprocess.colorOrder, preprocess.mean, preprocess.std, preprocess.resize, preprocess.crop, labels, labelOffset, outputKind for ${copy}: give them with flags or a card file`);
    expect(existsSync(out)).toBe(false);
    const r = await runCli(['card', copy, '--out', out, ...V1_FLAGS, '--labels', shared('labels', 'imagenet-simple-labels.json')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = await loadClassifier(out, { providers: ['cpu'] });
    expect(c.card.sources).toMatchObject({ labels: 'embedded', 'preprocess.range': 'embedded', labelOffset: 'embedded' });
    expect(await valTop1(c)).toEqual(reference);
    await c.dispose();
    const s = await createSession(out, { providers: ['cpu'] });
    expect(s.inputs[0]!.name).toBe('input');
    await s.dispose();
  });
});

describe('card files and flags are checked', () => {
  it('a bad card field or an unknown one is refused with the file and the field', () => {
    expect(() => parseCardLayer({ preprocess: { layout: 'CHW' } }, 'm.card.json')).toThrow('m.card.json: preprocess.layout: expected "NCHW" | "NHWC" but received "CHW"');
    expect(() => parseCardLayer({ lables: [] }, 'm.card.json')).toThrow('m.card.json: lables: unknown key (not part of this contract)');
    expect(() => parseCardLayer({ labelOffset: -1 }, 'm.card.json')).toThrow('m.card.json: labelOffset: expected >=0 but received -1');
    expect(() => parseCardLayer({ preprocess: { mean: [0, 'x'] } }, 'c')).toThrow('c: preprocess.mean[1]: expected number but received "x"');
  });

  it('bad flag values name the option', async () => {
    const model = shared('models', 'mnist_winml.onnx');
    const img = shared('camera', 'winml_mnist_28.png');
    const cases: [string[], string][] = [
      [['--range', '0'], 'Expected 2 comma-separated numbers for --range but received "0"'],
      [['--std', '0'], 'Expected non-zero numbers for --std but received "0"'],
      [['--layout', 'CHW'], 'Expected one of NCHW, NHWC for --layout but received "CHW"'],
      [['--crop', '1.5'], 'Expected number between 0 (exclusive) and 1 for --crop but received "1.5"'],
      [['--label-offset', '-1'], 'Expected integer >= 0 for --label-offset but received "-1"'],
      [['--labels', '/nonexistent/labels.txt'], '/nonexistent/labels.txt: cannot read label file (no such file or directory (ENOENT))'],
    ];
    for (const [flags, msg] of cases) {
      const r = await runCli(['classify', img, '--model', model, ...flags]);
      expect(r.stderr, flags.join(' ')).toContain(msg);
      expect(r.code).toBeGreaterThan(0);
    }
  });
});

describe('external data', () => {
  it('a model whose weights live in model.onnx.data is read relative to the model, and rewritten as one file', async () => {
    const src = shared('faults', 'external-data', 'model_ext.onnx');
    const elsewhere = tempDir('edgetune-cwd-');
    const out = path.join(tempDir('edgetune-ext-'), 'standalone.onnx');
    // an edgetune export: its card is embedded, so nothing is assumed
    const r = await runCli(['card', src, '--out', out], { cwd: elsewhere });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(path.dirname(out))).toEqual(['standalone.onnx']);
    // the copy needs nothing beside it, and computes what the original does
    const [a, b] = await Promise.all([createSession(src, { providers: ['cpu'] }), createSession(out, { providers: ['cpu'] })]);
    const input = a.inputs[0]!;
    const dims = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const data = new Float32Array(dims.reduce((x, y) => x * y, 1)).map((_, i) => (i % 255) / 255);
    const feeds = { [input.name]: { type: 'float32' as const, data, dims } };
    const [ya, yb] = [await a.run(feeds), await b.run(feeds)];
    const name = a.outputs[0]!.name;
    expect(Array.from(yb[name]!.data as Float32Array)).toEqual(Array.from(ya[name]!.data as Float32Array));
    await Promise.all([a.dispose(), b.dispose()]);
  });
});
