// The label rule end to end (runtime/core/labels.ts): Coral's 1001-line list (background first) on
// 1001-output models, directly and through `edgetune import`, names the golden retriever (it used to
// come out "curly-coated retriever", every label shifted by one); `inspect` says why; label lists that
// do not fit the output (a count, an offset of 1e9, metadata labels given as a string, a zero-unit
// Dense) are refused at load with the reason, never `"top": []` with exit 0; eval shows how class
// folders mapped to labels.

import { copyFileSync, cpSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonLines, runCli, shared, tempDir } from '../helpers.js';

const env = { EDGETUNE_CACHE: tempDir('edgetune-labels-cache-'), EDGETUNE_OFFLINE: '1' };
const cli = (args: string[]) => runCli(args, { env });
const work = tempDir('edgetune-labels-');
const CORAL = shared('models', 'tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite');
const CORAL_LABELS = shared('models', 'tflite', 'coral_imagenet_labels.txt');
const V1 = shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx');
const DOG = shared('camera', 'winml_dog.jpg'); // a golden retriever (MODELS.md)
const FRUIT = shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite');
const TWINS = shared('models', 'teachable-machine', 'twins-tfjs');

type Row = { file: string; top: { index: number; label: string; score: number }[] };
async function top1(args: string[]): Promise<{ label: string; score: number }> {
  const r = await cli(['classify', DOG, ...args, '--json', '--top', '3']);
  expect(r.code, r.stderr).toBe(0);
  return jsonLines<Row>(r.stdout)[0]!.top[0]!;
}

/** A copy of the twins tfjs export whose files `edit` may change. */
function twinsCopy(name: string, edit: (dir: string) => void): string {
  const dir = path.join(work, name);
  cpSync(TWINS, dir, { recursive: true });
  for (const f of readdirSync(dir)) chmodSync(path.join(dir, f), 0o644);
  edit(dir);
  return path.join(dir, 'model.json');
}

describe('Coral labels (1001 lines, background first) on 1001 outputs', () => {
  it('the Coral MobileNetV2 .tflite names the golden retriever with its own labels and with --labels', async () => {
    // measured: golden retriever 99.2% (Labrador retriever 0.4% next)
    for (const extra of [[], ['--labels', CORAL_LABELS]]) {
      const t = await top1(['--model', CORAL, ...extra]);
      expect(t.label).toBe('golden retriever');
      expect(t.score).toBeGreaterThan(0.9);
    }
  });

  it('a label file with Places365-style names ("/g/golden_retriever", "AC/DC") classifies with them', async () => {
    // before: refused, "line 208 ("/g/golden_retriever") cannot name a class" — such labels name outputs, never folders
    const lines = readFileSync(CORAL_LABELS, 'utf8').trim().split('\n');
    const i = lines.indexOf('golden retriever');
    expect(i).toBeGreaterThan(0);
    lines[i] = '/g/golden_retriever';
    lines[0] = 'AC/DC';
    const file = path.join(work, 'places-style.txt');
    writeFileSync(file, lines.join('\n') + '\n');
    expect((await top1(['--model', CORAL, '--labels', file])).label).toBe('/g/golden_retriever');
  });

  it('through edgetune import: the converted ONNX with and without --labels names the golden retriever; inspect shows the rule', async () => {
    const out = path.join(work, 'coral.onnx');
    const r = await cli(['import', CORAL, '--labels', CORAL_LABELS, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`1001 (background, tench, goldfish, …), label offset 0, from ${CORAL_LABELS}`);
    // this was "curly-coated retriever 99.2%": the flag's list with the embedded offset 1
    expect((await top1(['--model', out])).label).toBe('golden retriever');
    expect((await top1(['--model', out, '--labels', CORAL_LABELS])).label).toBe('golden retriever');
    const i = await cli(['inspect', out, '--labels', CORAL_LABELS]);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toContain('label rule: 1001 labels (from flags) for 1001 outputs: label i is output i (offset 0)');
  });

  it('an ONNX with 1001 outputs (MobileNetV1) takes the Coral list (offset 0) and the 1000-name list (offset 1) alike', async () => {
    const copy = path.join(work, 'v1.onnx'); // by another name: no registry entry says its offset
    copyFileSync(V1, copy);
    const card = ['--range', '-1,1', '--mean', '0,0,0', '--std', '1,1,1', '--crop', '0.875', '--output-kind', 'probabilities'];
    // measured: golden retriever 88.6% with either list (the same output 208)
    const a = await top1(['--model', copy, ...card, '--labels', CORAL_LABELS]);
    const b = await top1(['--model', copy, ...card, '--labels', shared('labels', 'imagenet-simple-labels.json')]);
    expect([a.label, b.label]).toEqual(['golden retriever', 'Golden Retriever']);
    expect(a.score).toBeCloseTo(b.score, 6);
    const i = await cli(['inspect', copy, '--labels', shared('labels', 'imagenet-simple-labels.json')]);
    expect(i.stdout).toContain('label rule: 1000 labels (from flags) for 1001 outputs: output 0 is a background class, label i is output i + 1 (offset 1)');
  });
});

describe('label lists that do not fit the output are refused at load, with the reason', () => {
  it('a label count that fits neither way (--labels, or a card file), and labelOffset 1e9', async () => {
    const seven = path.join(work, 'seven.txt');
    writeFileSync(seven, 'a\nb\nc\nd\ne\nf\ng\n');
    const r = await cli(['classify', DOG, '--model', FRUIT, '--labels', seven, '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('(converted: ' + env.EDGETUNE_CACHE);
    expect(r.stderr).toContain('7 labels (from flags) for 6 outputs: a label list has one name per output, or one fewer when output 0 is a background class');
    const dir = path.join(work, 'offset');
    mkdirSync(dir);
    const model = path.join(dir, 'fruit.onnx');
    expect((await cli(['import', FRUIT, '--out', model])).code).toBe(0);
    writeFileSync(path.join(dir, 'fruit.card.json'), JSON.stringify({ labelOffset: 1e9 }));
    const o = await cli(['classify', DOG, '--model', model, '--json']);
    expect(o.code).toBe(1);
    expect(o.stdout).toBe(''); // never {"top": []}
    expect(o.stderr).toBe(
      `edgetune classify: ${model}: label offset 1000000000 (from card-file ${path.join(dir, 'fruit.card.json')}) + 6 labels (from embedded) = 1000000006, but the model has 6 outputs; label i names output i + offset, so the list must cover the output exactly\n`,
    );
  });

  it("Teachable Machine metadata.json labels given as a string, or a label count that is not the output's", async () => {
    const asString = twinsCopy('tm-string', (d) => {
      const md = JSON.parse(readFileSync(path.join(d, 'metadata.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(path.join(d, 'metadata.json'), JSON.stringify({ ...md, labels: 'twin1' }));
    });
    const r = await cli(['import', asString, '--out', path.join(work, 'tm-string.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`edgetune import: ${path.join(path.dirname(asString), 'metadata.json')}: labels: expected an array of strings (one per class) but received string\n`);
    expect(existsSync(path.join(work, 'tm-string.onnx'))).toBe(false);
    const three = twinsCopy('tm-three', (d) => {
      const md = JSON.parse(readFileSync(path.join(d, 'metadata.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(path.join(d, 'metadata.json'), JSON.stringify({ ...md, labels: ['a', 'b', 'c', 'd'] }));
    });
    const c = await cli(['classify', DOG, '--model', three, '--json']);
    expect(c.code).toBe(1);
    expect(c.stdout).toBe('');
    expect(c.stderr).toBe(`edgetune classify: ${three}: 4 labels (from metadata.json) for 2 outputs: a label list has one name per output, or one fewer when output 0 is a background class\n`);
  });

  it('a zero-unit Dense layer is refused at import, with or without labels', async () => {
    for (const keepMetadata of [true, false]) {
      const zero = twinsCopy(`tm-zero-${keepMetadata}`, (d) => {
        const m = JSON.parse(readFileSync(path.join(d, 'model.json'), 'utf8')) as { modelTopology: { config: { layers: { config: { layers: { config: { units: number } }[] } }[] } }; weightsManifest: { weights: { name: string; shape: number[] }[] }[] };
        m.modelTopology.config.layers[1]!.config.layers[1]!.config.units = 0;
        // the kernel's bytes leave the shard too (a shard larger than its manifest declares is refused first)
        let offset = 0;
        let cut: [number, number] | undefined;
        for (const w of m.weightsManifest[0]!.weights) {
          const bytes = 4 * w.shape.reduce((a, b) => a * b, 1); // the twins' weights are all float32
          if (w.name === 'dense_Dense4/kernel') {
            cut = [offset, offset + bytes];
            w.shape = [100, 0];
          }
          offset += bytes;
        }
        const shard = readFileSync(path.join(d, 'weights.bin'));
        writeFileSync(path.join(d, 'weights.bin'), Buffer.concat([shard.subarray(0, cut![0]), shard.subarray(cut![1])]));
        writeFileSync(path.join(d, 'model.json'), JSON.stringify(m));
        if (!keepMetadata) writeFileSync(path.join(d, 'metadata.json'), JSON.stringify({ tmVersion: '2.2.2' }));
      });
      const r = await cli(['classify', DOG, '--model', zero, '--json']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`${zero}: tfjs layer Dense "dense_Dense4" (layer 156) has 0 units and a [100, 0] kernel: a Dense layer needs at least one unit, as many as its kernel's columns`);
    }
  });
});

describe('eval: class folders → labels by the one folder rule, shown', () => {
  it('hymenoptera ants/bees on mobilenetv2-int8 map to ant/bee; a folder that is no label is refused naming it', async () => {
    const ds = path.join(work, 'hym');
    for (const cls of ['ants', 'bees']) {
      mkdirSync(path.join(ds, cls), { recursive: true });
      const from = shared('datasets', 'hymenoptera', 'val', cls);
      for (const f of readdirSync(from).sort().slice(0, 4)) copyFileSync(path.join(from, f), path.join(ds, cls, f));
    }
    const r = await cli(['eval', ds, '--model', 'mobilenetv2-int8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('edgetune eval: class folder ants → ant (output 310, singular)');
    const j = JSON.parse(r.stdout) as { classMap: Record<string, unknown>; images: number };
    expect(j.classMap).toEqual({ ants: { label: 'ant', output: 310, how: 'singular' }, bees: { label: 'bee', output: 309, how: 'singular' } });
    expect(j.images).toBe(8);
    mkdirSync(path.join(ds, 'wasps'));
    copyFileSync(path.join(ds, 'ants', readdirSync(path.join(ds, 'ants'))[0]!), path.join(ds, 'wasps', 'w.jpg'));
    const bad = await cli(['eval', ds, '--model', 'mobilenetv2-int8']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^edgetune eval: .*: class folder "wasps" is not a label of mobilenetv2-int8 \(its labels: tench, goldfish, /);
  });
});
