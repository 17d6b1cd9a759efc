// `edgetune finetune` / `eval` / `classify` / `augment-preview` end to end on the real datasets and
// mobilenetv2-int8: acceptance accuracies, augmentation vs none, the report, resume with an added
// class reusing cached embeddings, and every bad input giving a clear error and no output file.
// One embedding cache for the whole file keeps it fast.

import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FinetuneReport } from '../../runtime/train/node/finetune.js';
import { readModelInfo } from '../../runtime/io/model-file.js';
import { decodeModel } from '../../runtime/onnx/model.js';
import { jsonLines, runCli, shared, tempDir } from '../helpers.js';

const hym = shared('datasets', 'hymenoptera');
const flowers = shared('datasets', 'flowers5-small');
const cache = tempDir('edgetune-ft-cache-');
const work = tempDir('edgetune-ft-');
const env = { EDGETUNE_CACHE: cache };
const ft = (args: string[]) => runCli(['finetune', ...args], { env, timeoutMs: 170_000 });

async function finetuneJson(args: string[]): Promise<FinetuneReport> {
  const r = await ft([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as FinetuneReport;
}

function copyImages(from: string, to: string, n: number): void {
  mkdirSync(to, { recursive: true });
  readdirSync(from).slice(0, n).forEach((f) => copyFileSync(path.join(from, f), path.join(to, f)));
}

describe('finetune on hymenoptera (mobilenetv2-int8)', () => {
  let withAug: FinetuneReport;
  let plain: FinetuneReport;
  const model = path.join(work, 'ants-bees.onnx');
  beforeAll(async () => {
    withAug = await finetuneJson([path.join(hym, 'train'), '--val', path.join(hym, 'val'), '--augment', 'default', '--out', model]);
    plain = await finetuneJson([path.join(hym, 'train'), '--val', path.join(hym, 'val'), '--augment', 'none', '--out', path.join(work, 'plain.onnx')]);
  });

  it('reaches the acceptance accuracy; augmentation costs at most a point', () => {
    expect(withAug.accuracy).toBeGreaterThanOrEqual(0.93);
    expect(plain.accuracy).toBeGreaterThanOrEqual(0.93);
    expect(withAug.accuracy!).toBeGreaterThanOrEqual(plain.accuracy! - 0.01);
    console.log(`hymenoptera val accuracy: default augmentation ${withAug.accuracy}, none ${plain.accuracy}, prototype ${withAug.prototypeAccuracy}`);
  });

  it('reports counts, prototype baseline, best epoch, timing split, per-class metrics', () => {
    expect(withAug.labels).toEqual(['ants', 'bees']);
    expect(withAug.counts).toEqual({ train: { ants: 124, bees: 121 }, val: { ants: 70, bees: 83 } });
    expect(withAug.views).toBe(4);
    expect(withAug.augment).toBe('flip:0.5,rotate:10,crop:0.7,color:0.2');
    expect(typeof withAug.prototypeAccuracy).toBe('number');
    expect(withAug.bestEpoch).toBeGreaterThanOrEqual(1);
    expect(withAug.history[withAug.bestEpoch - 1]!.valLoss).toBe(Math.min(...withAug.history.map((h) => h.valLoss!)));
    expect(withAug.timing.embedded).toBe(245 * 4 + 153);
    expect(withAug.timing.embeddingS).toBeGreaterThan(0);
    expect(withAug.timing.trainingS).toBeGreaterThan(0);
    const sum = withAug.confusion.flat().reduce((a, b) => a + b, 0);
    expect(sum).toBe(153);
    expect(withAug.perClass.bees!.support).toBe(83);
    // the none run embedded nothing new: its clean views were cached by the first run
    expect(plain.timing.embedded).toBe(0);
    expect(plain.timing.cacheHits).toBe(245 + 153);
  });

  it('writes the model (labels and preprocessing embedded), a PNG report and the JSON report beside it', async () => {
    const info = await readModelInfo(model);
    expect(info?.labels).toEqual(['ants', 'bees']);
    expect(info?.outputKind).toBe('probabilities');
    expect(info?.preprocess).toMatchObject({ width: 224, height: 224, crop: 0.875, mean: [0.485, 0.456, 0.406] });
    expect((info!.provenance as { base: { id: string } }).base.id).toBe('mobilenetv2-int8');
    const png = readFileSync(path.join(work, 'ants-bees.report.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const json = JSON.parse(readFileSync(path.join(work, 'ants-bees.report.json'), 'utf8')) as FinetuneReport;
    expect(json.accuracy).toBe(withAug.accuracy);
    expect(json.confusion).toEqual(withAug.confusion);
  });

  it('eval --json on the exported model agrees with the in-process validation result', async () => {
    const r = await runCli(['eval', path.join(hym, 'val'), '--model', model, '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as { accuracy: number; perClass: Record<string, { precision: number; recall: number; f1: number; support: number }>; confusion: number[][]; labels: string[] };
    expect(e.labels).toEqual(['ants', 'bees']);
    expect(e.confusion).toEqual(withAug.confusion);
    expect(e.accuracy).toBe(withAug.accuracy);
    expect(Object.keys(e.perClass.ants!).sort()).toEqual(['f1', 'precision', 'recall', 'support']);
    expect(e.perClass.bees).toEqual(withAug.perClass.bees);
  });

  it('classify serves the exported model with its labels', async () => {
    const bee = path.join(hym, 'val', 'bees', readdirSync(path.join(hym, 'val', 'bees'))[0]!);
    const r = await runCli(['classify', bee, '--model', model, '--json', '--top', '2'], { env });
    expect(r.code, r.stderr).toBe(0);
    const [line] = jsonLines<{ top: { label: string; score: number }[] }>(r.stdout);
    expect(line!.top.map((t) => t.label).sort()).toEqual(['ants', 'bees']);
    expect(line!.top[0]!.score + line!.top[1]!.score).toBeCloseTo(1, 5);
  });

  it('--resume --add-class trains a third class reusing every embedding (from the resume data)', async () => {
    const wasps = path.join(work, 'wasps');
    copyImages(path.join(flowers, 'train', 'sunflower'), wasps, 30);
    const out = path.join(work, 'ants-bees-wasps.onnx');
    const r = await finetuneJson(['--resume', model, '--add-class', 'wasps', wasps, '--out', out]);
    expect(r.labels).toEqual(['ants', 'bees', 'wasps']);
    // 30 new images, 20% held out for validation: only their views are computed
    expect(r.counts.val.wasps).toBe(6);
    expect(r.counts.train.wasps).toBe(24);
    expect(r.timing.embedded).toBe(24 * 4 + 6);
    // the resumed model's images come from its resume data (ants-bees.resume.bin), not from the cache
    expect(r.timing.cacheHits).toBe(0);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.9);
    const c = await runCli(['classify', path.join(flowers, 'val', 'sunflower'), '--model', out, '--json'], { env });
    const tops = jsonLines<{ top: { label: string }[] }>(c.stdout).map((l) => l.top[0]!.label);
    expect(tops.filter((t) => t === 'wasps').length).toBeGreaterThan(tops.length / 2);
  });
});

describe('finetune on flowers5-small', () => {
  it('reaches the acceptance accuracy; augmentation costs at most a point', async () => {
    const args = [path.join(flowers, 'train'), '--val', path.join(flowers, 'val')];
    const aug = await finetuneJson([...args, '--out', path.join(work, 'flowers.onnx')]);
    const plain = await finetuneJson([...args, '--augment', 'none', '--out', path.join(work, 'flowers-plain.onnx')]);
    console.log(`flowers5-small val accuracy: default augmentation ${aug.accuracy}, none ${plain.accuracy}, prototype ${aug.prototypeAccuracy}`);
    expect(aug.accuracy).toBeGreaterThanOrEqual(0.68);
    expect(aug.accuracy!).toBeGreaterThanOrEqual(plain.accuracy! - 0.01);
    expect(aug.labels).toEqual(['daisy', 'dandelion', 'rose', 'sunflower', 'tulip']);
  });
});

describe('finetune --int8', () => {
  it('quantizes a float backbone, scores float and int8 on the held-apart validation images; an int8 backbone is kept as it is', async () => {
    const root = path.join(work, 'int8-data');
    const valRoot = path.join(work, 'int8-val');
    for (const c of ['daisy', 'sunflower']) {
      copyImages(path.join(flowers, 'train', c), path.join(root, c), 15);
      copyImages(path.join(flowers, 'val', c), path.join(valRoot, c), 20);
    }
    const out = path.join(work, 'v1-int8.onnx');
    const r = await finetuneJson([root, '--val', valRoot, '--model', 'mobilenetv1-0.25-128', '--augment', 'none', '--int8', '--out', out]);
    expect(r.int8!.float).toBe(path.join(work, 'v1-int8.fp32.onnx'));
    expect(existsSync(r.int8!.float)).toBe(true);
    expect(Object.keys(r.int8!.quantized).length).toBeGreaterThan(0);
    expect((await readModelInfo(out))?.labels).toEqual(['daisy', 'sunflower']);
    // calibrated on the 30 training images, scored on the 40 validation images, never on calibration ones
    expect(r.int8!.calibrationImages).toBe(30);
    expect(r.int8!.images).toBe(40);
    // the float file on the validation images is the head on their embeddings
    expect(r.int8!.accuracyFloat).toBe(r.accuracy);
    // the drop against the float export and whether it is within the 0.5-point budget (issue 20)
    expect(r.int8!.accuracyDrop).toBeCloseTo(r.int8!.accuracyFloat! - r.int8!.accuracyInt8!, 12);
    expect(r.int8!.withinHalfPoint).toBe(r.int8!.accuracyDrop! <= 0.005 + 1e-12);
    // the first layer stays float (inputLayerUnit): exactly the Convs the report names read float weights in the file
    const written = decodeModel(readFileSync(out));
    const inits = new Set(written.graph.initializer.map((t) => t.name));
    const convs = written.graph.node.filter((n) => n.opType === 'Conv');
    const floatConvs = convs.filter((n) => inits.has(n.input[1]!)).map((n) => n.name || n.output[0]!);
    const convNames = new Set(convs.map((n) => n.name || n.output[0]!));
    expect(floatConvs.sort()).toEqual(r.int8!.keptFloat.filter((k) => convNames.has(k)).sort());
    expect(floatConvs.length).toBeLessThan(convs.length);
    expect(floatConvs).toContain(convs[0]!.name || convs[0]!.output[0]!);
    // and `eval` of the int8 file on them says what the report says
    const e = await runCli(['eval', valRoot, '--model', out, '--json'], { env });
    expect(e.code, e.stderr).toBe(0);
    expect((JSON.parse(e.stdout) as { accuracy: number }).accuracy).toBe(r.int8!.accuracyInt8);
    console.log(`finetune --int8 (mobilenetv1-0.25-128, daisy vs sunflower): validation accuracy float ${r.int8!.accuracyFloat}, int8 ${r.int8!.accuracyInt8}`);
    // MobileNetV1-0.25 taught from 15 photos per class separates daisy from sunflower only moderately
    // (measured on these 40 validation images: float 0.675, int8 0.700): the float head must beat chance
    // clearly and the int8 file keep its accuracy within 4 images, not beat a fixed bar
    expect(r.int8!.accuracyFloat!).toBeGreaterThanOrEqual(0.6);
    expect(r.int8!.accuracyInt8!).toBeGreaterThanOrEqual(r.int8!.accuracyFloat! - 0.1);
    const kept = await ft([root, '--augment', 'none', '--int8', '--epochs', '3', '--out', path.join(work, 'v2-int8.onnx')]);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stderr).toContain('--int8: the backbone mobilenetv2-int8 is already int8');
  });
});

describe('bad input: clear errors, no output file', () => {
  const small = (name: string, classes: Record<string, number>) => {
    const root = path.join(work, name);
    for (const [c, n] of Object.entries(classes)) copyImages(path.join(flowers, 'train', 'rose'), path.join(root, c), n);
    return root;
  };
  const expectNoOutput = (out: string) => {
    expect(existsSync(out)).toBe(false);
    expect(existsSync(out.replace(/\.onnx$/, '.report.json'))).toBe(false);
    expect(existsSync(out.replace(/\.onnx$/, '.report.png'))).toBe(false);
  };

  it('missing folder, one class, empty class, unknown op, bad parameter, unwritable --out', async () => {
    const out = path.join(work, 'bad.onnx');
    const cases: [string[], string][] = [
      [[path.join(work, 'nope')], `${path.join(work, 'nope')}: training set folder not found`],
      [[small('one', { solo: 3 })], 'training set has only one class folder ("solo")'],
      [[small('empty', { a: 3, b: 0 })], `${path.join(work, 'empty', 'b')}: class "b" has no images`],
      [[small('ok', { a: 3, b: 3 }), '--augment', 'flip,twirl'], 'Unknown augmentation op "twirl"'],
      [[path.join(work, 'ok'), '--augment', 'rotate:abc'], 'Expected number between 0 and 180 for augmentation rotate but received "abc"'],
      [[path.join(work, 'ok'), '--optimizer', 'lbfgs'], 'Expected one of sgd, momentum, adagrad, adadelta, rmsprop, adam for --optimizer but received "lbfgs"'],
    ];
    for (const [args, msg] of cases) {
      const r = await ft([...args, '--out', out]);
      expect(r.code, args.join(' ')).not.toBe(0);
      // bad options are usage errors (exit 2), bad data is not (exit 1)
      if (args.some((a) => a.startsWith('--'))) expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(msg);
      expectNoOutput(out);
    }
    const missingDir = path.join(work, 'no-such-dir', 'm.onnx');
    const r = await ft([path.join(work, 'ok'), '--out', missingDir]);
    expect(r.stderr).toContain(`cannot write --out ${missingDir}: directory does not exist`);
    const fileAsDir = path.join(work, 'ok', 'a', readdirSync(path.join(work, 'ok', 'a'))[0]!);
    const r2 = await ft([path.join(work, 'ok'), '--out', path.join(fileAsDir, 'm.onnx')]);
    expect(r2.stderr).toContain(`cannot write --out ${path.join(fileAsDir, 'm.onnx')}: not a directory`);
  });

  it('a failed run leaves an existing model intact', async () => {
    const out = path.join(work, 'keep.onnx');
    writeFileSync(out, 'old model');
    const r = await ft([small('one2', { solo: 2 }), '--out', out]);
    expect(r.code).not.toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('old model');
  });

  it('corrupt images are skipped and listed; a class left without images is refused', async () => {
    const root = small('corrupt', { a: 4, b: 4 });
    const good = readFileSync(path.join(root, 'a', readdirSync(path.join(root, 'a'))[0]!));
    writeFileSync(path.join(root, 'a', 'broken.jpg'), good.subarray(0, 200));
    writeFileSync(path.join(root, 'b', 'empty.png'), '');
    const rep = await finetuneJson([root, '--val-split', '0', '--augment', 'none', '--epochs', '3', '--out', path.join(work, 'corrupt.onnx')]);
    expect(rep.skipped.map((s) => path.basename(s.file)).sort()).toEqual(['broken.jpg', 'empty.png']);
    expect(rep.skipped.find((s) => s.file.endsWith('broken.jpg'))!.reason).toMatch(/corrupt|truncated|premature/i);
    expect(rep.counts.train).toEqual({ a: 4, b: 4 });
    const allBad = small('allbad', { a: 3 });
    mkdirSync(path.join(allBad, 'b'));
    writeFileSync(path.join(allBad, 'b', 'x.jpg'), good.subarray(0, 100));
    const out = path.join(work, 'allbad.onnx');
    const r = await ft([allBad, '--val-split', '0', '--augment', 'none', '--out', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${path.join(allBad, 'b')}: class "b" has no usable training images`);
    expect(r.stderr).toContain('x.jpg');
    expectNoOutput(out);
  });

  it('eval --json refuses classes the model does not have; augment-preview writes a contact sheet', async () => {
    const r = await runCli(['eval', path.join(flowers, 'val'), '--model', path.join(work, 'corrupt.onnx'), '--json'], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('class folder "daisy" is not a label of corrupt.onnx');
    const sheet = path.join(work, 'sheet.png');
    const p = await runCli(['augment-preview', shared('camera', 'winml_dog.jpg'), '--augment', 'default', '--views', '9', '--out', sheet], { env });
    expect(p.code, p.stderr).toBe(0);
    expect(readFileSync(sheet).subarray(1, 4).toString()).toBe('PNG');
    const bad = await runCli(['augment-preview', shared('camera', 'winml_dog.jpg'), '--augment', 'rotate:abc', '--out', path.join(work, 'x.png')], { env });
    expect(bad.code).toBe(2);
    expect(existsSync(path.join(work, 'x.png'))).toBe(false);
  });
});
