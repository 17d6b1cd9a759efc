// What a new user ran into following the README with their own photos and models: augment-preview
// writing its contact sheet over the photo it was given and refusing a model file, usage errors that
// named the command twice, and `export` messages that did not say what was wrong. Real photos and
// models from ../shared; exact messages and exit codes.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { finetune, type FinetuneOptions } from '../../runtime/train/node/finetune.js';
import { runCli, shared, subsetDataset, tempDir } from '../helpers.js';

const work = tempDir('edgetune-newuser-');
const env = { EDGETUNE_CACHE: tempDir('edgetune-newuser-cache-') };

describe('augment-preview', () => {
  it('refuses an --out that is the input photo (also through a link) and leaves the photo as it was', async () => {
    const photo = path.join(work, 'dog.jpg');
    copyFileSync(shared('camera', 'winml_dog.jpg'), photo);
    const before = readFileSync(photo);
    const r = await runCli(['augment-preview', 'dog.jpg', '--out', 'dog.jpg'], { cwd: work, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`edgetune augment-preview: cannot write --out ${photo}: it is the input dog.jpg (the same file); write to another file\n`);
    symlinkSync('dog.jpg', path.join(work, 'link.jpg'));
    const l = await runCli(['augment-preview', 'link.jpg', '--out', 'dog.jpg'], { cwd: work, env });
    expect(l.code).toBe(1);
    expect(l.stderr).toBe(`edgetune augment-preview: cannot write --out ${photo}: it is the input link.jpg (the same file); write to another file\n`);
    expect(readFileSync(photo).equals(before)).toBe(true);
  });

  it('takes a model file for --model and uses its input size (mnist 28x28: 2x2 tiles of 28 px, 4 px apart)', async () => {
    const out = path.join(work, 'mnist-sheet.png');
    const r = await runCli(['augment-preview', shared('camera', 'winml_dog.jpg'), '--model', shared('models', 'mnist_winml.onnx'), '--views', '4', '--out', out], { env });
    expect(r.code, r.stderr).toBe(0);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).toEqual([2 * 28 + 4, 2 * 28 + 4]);
    // a Coral .tflite (224x224 input): 2x2 tiles of 224 px
    const coral = path.join(work, 'coral-sheet.png');
    const t = await runCli(['augment-preview', shared('camera', 'winml_dog.jpg'), '--model', shared('models', 'tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite'), '--views', '4', '--out', coral], { env });
    expect(t.code, t.stderr).toBe(0);
    expect((await sharp(coral).metadata()).width).toBe(2 * 224 + 4);
  });
});

describe('usage errors', () => {
  it('name the command once', async () => {
    const c = await runCli(['classify'], { env });
    expect(c.code).toBe(2);
    expect(c.stderr.split('\n')[0]).toBe('edgetune classify: no input images given');
    const e = await runCli(['eval', '--model', 'mobilenetv2-int8'], { env });
    expect(e.code).toBe(2);
    expect(e.stderr.split('\n')[0]).toBe('edgetune eval: expected one dataset folder but received 0');
    const m = await runCli(['models', 'path'], { env });
    expect(m.code).toBe(2);
    expect(m.stderr).toBe('edgetune models: path: give at least one model id\n');
  });

  it('say "number >= 0" for a range without an upper bound, not "between 0 and Infinity"', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--unknown-threshold', '-1'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('edgetune classify: Expected number >= 0 for --unknown-threshold but received "-1"\n');
  });

  it('export says --format is required, and that an --out file is not a folder', async () => {
    const f = await runCli(['export', 'mobilenetv2-int8', '--out', path.join(work, 'repo')], { env });
    expect(f.code).toBe(2);
    expect(f.stderr.split('\n')[0]).toBe('edgetune export: --format is required (triton: the only layout written)');
    const file = path.join(work, 'taken.onnx');
    writeFileSync(file, 'not a folder');
    const o = await runCli(['export', 'mobilenetv2-int8', '--format', 'triton', '--out', file], { env });
    expect(o.code).toBe(1);
    expect(o.stderr).toBe(`edgetune export: cannot write --out ${file}: it is a file, not a folder (${file})\n`);
    expect(readFileSync(file, 'utf8')).toBe('not a folder');
  });
});

describe('--model given a folder', () => {
  it('names the model files in an export folder, also for a bare folder name', async () => {
    const tm = shared('models', 'teachable-machine', 'fruit-tflite');
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', tm], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`edgetune classify: ${tm}: is a directory, not a model file; it holds ${path.join(tm, 'model.tflite')}, ${path.join(tm, 'model_unquant.tflite')}: pass one of them\n`);
    // a bare name that is no registry id (was: Unknown model id "twins-tfjs")
    const b = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', 'twins-tfjs'], { env, cwd: shared('models', 'teachable-machine') });
    expect(b.code).toBe(1);
    expect(b.stderr).toBe(`edgetune classify: twins-tfjs: is a directory, not a model file; it holds ${path.join('twins-tfjs', 'model.json')}: pass one of them\n`);
  });
});

describe('eval', () => {
  it('warns about each file its folder walk left out, as finetune does, not only counting it', async () => {
    const ds = subsetDataset(path.join(work, 'pets-eval'), ['datasets', 'hymenoptera', 'val'], ['ants', 'bees'], 2);
    writeFileSync(path.join(ds, 'ants', 'notes.txt'), 'where these photos came from\n');
    const r = await runCli(['eval', ds, '--model', 'mobilenetv2-int8'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`edgetune: warning: skipped ${path.join(ds, 'ants', 'notes.txt')}: not an image file (.txt)\n`);
    expect(r.stdout).toContain('(4 images, 1 skipped)');
  });
});

describe('eval --unknown', () => {
  it('warns when "unknown" images are copies of the known ones', async () => {
    const ds = subsetDataset(path.join(work, 'known'), ['datasets', 'hymenoptera', 'val'], ['ants', 'bees'], 2);
    const ant = readdirSync(shared('datasets', 'hymenoptera', 'val', 'ants')).sort()[0]!;
    const unknown = path.join(work, 'unknown');
    mkdirSync(unknown);
    copyFileSync(shared('datasets', 'hymenoptera', 'val', 'ants', ant), path.join(unknown, 'copy.jpg'));
    copyFileSync(shared('camera', 'winml_dog.jpg'), path.join(unknown, 'dog.jpg'));
    const r = await runCli(['eval', ds, '--model', 'mobilenetv2-int8', '--unknown', unknown], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `edgetune: warning: 1 of 2 --unknown images are byte-identical to ${ds} images (e.g. ${path.join(unknown, 'copy.jpg')} = ${path.join(ds, 'ants', ant)}): they count as known and as unknown, which pulls the AUROC toward 0.5; keep the two sets apart\n`,
    );
  });
});

describe('finetune --resume', () => {
  const sunflowers = shared('datasets', 'tf_flowers-dev', 'train', 'sunflowers');

  it('refuses a class name a label cannot be (empty, blank, ".", "..", a line break, "/", outer spaces) before any work', async () => {
    // the name is checked first: the resumed model need not even exist ("." and ".." were taken: a class folder "." is the dataset itself)
    for (const name of ['', '  ', '.', '..', 'sun\nflowers', 'a/b', ' sunflowers']) {
      const out = path.join(work, 'named.onnx');
      const r = await runCli(['finetune', '--resume', path.join(work, 'absent.onnx'), '--add-class', name, sunflowers, '--out', out], { env });
      expect(r.code, name).toBe(2);
      expect(r.stderr).toBe(
        `edgetune finetune: Expected a class name (not empty, not "." or ".."; no line break or other control character, no "/", no leading or trailing space) for --add-class but received ${JSON.stringify(name)}\n`,
      );
    }
  });

  it('names the file that is not a finetune export, and says why a training folder is not taken', async () => {
    const base = shared('models', 'mobilenetv2-12-int8.onnx');
    const r = await runCli(['finetune', '--resume', base, '--add-class', 'sunflowers', sunflowers, '--out', path.join(work, 'f4.onnx')], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`edgetune finetune: ${base}: not a model exported by edgetune finetune (no edgetune head in the graph)\n`);
    const p = await runCli(['finetune', sunflowers, '--resume', 'flowers3.onnx', '--out', path.join(work, 'f4.onnx')], { env });
    expect(p.code).toBe(2);
    expect(p.stderr).toBe(
      `edgetune finetune: --resume flowers3.onnx reads the model's training images from its resume data, not from ${sunflowers}: add a class with --add-class NAME DIR, or more images of a class with --add-examples NAME=DIR\n`,
    );
  });
});

describe('inspect', () => {
  it("shows a fine-tuned model's open-set calibration, as --json has it", async () => {
    // a small real head: 25 daisies and 25 roses of tf_flowers-dev (40 train, 10 validation photos: the
    // multi-layer score needs 10, runtime/train/openset.ts MIN_LAYERED_VAL_ROWS)
    const ds = subsetDataset(path.join(work, 'five'), ['datasets', 'tf_flowers-dev', 'train'], ['daisy', 'roses'], 25, { link: true });
    const model = path.join(work, 'five.onnx');
    const ft = await runCli(['finetune', ds, '--augment', 'none', '--out', model], { env, timeoutMs: 170_000 });
    expect(ft.code, ft.stderr).toBe(0);
    const json = await runCli(['inspect', model, '--json'], { env });
    const o = JSON.parse(json.stdout).openSet as { temperature: number; kept: number; layers: string[] };
    // mobilenetv2-int8's taps (README "Unknown inputs"): blocks 15 and 16's depthwise outputs
    expect(o.layers).toEqual(['603_quantized', '612_quantized']);
    const text = await runCli(['inspect', model], { env });
    expect(text.code, text.stderr).toBe(0);
    const line = text.stdout.split('\n').find((l) => l.trimStart().startsWith('openSet'));
    expect(line?.replace(/\s+/g, ' ').trim()).toBe(
      `openSet mahalanobis on unknown_score: "unknown" above 1, temperature ${o.temperature.toFixed(3)}, keeps ${Math.round(o.kept * 100)}% of validation images; per-class covariance of 603_quantized, 612_quantized (embedded)`,
    );
  });
});

describe('finetune() from JavaScript', () => {
  it('refuses a misspelt option instead of training with the default, and writes nothing', async () => {
    const out = path.join(work, 'typo.onnx');
    // `epoch` for `epochs`: JavaScript has no type check to catch it
    const typo = { out, epoch: 5 } as unknown as FinetuneOptions;
    await expect(finetune(shared('datasets', 'cats_dogs-dev', 'train'), typo)).rejects.toThrow(/^finetune: unknown option "epoch" \(options: model, out, card, task, val, /);
    expect(readdirSync(work).filter((f) => f.startsWith('typo'))).toEqual([]);
  });
});

describe('bench', () => {
  it('says which --batch sizes a fixed-batch model did not run', async () => {
    const r = await runCli(['bench', '--model', 'squeezenet1.1', '--batch', '1,8', '--iterations', '1', '--image', shared('camera', 'winml_dog.jpg'), '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { batch: number }).batch)).toEqual([1]);
    expect(r.stderr).toBe('edgetune bench: squeezenet1.1 has a fixed batch dimension: batch 8 not run\n');
  });
});
