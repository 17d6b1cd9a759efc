// What a second new user ran into with eval, quantize, import, watch and capture on the real models,
// photos and video in ../shared: an `eval --report` written over the model it evaluated, a quantize
// report whose labelled accuracy counted unlabelled images as misses, and capture / watch inputs taken
// in ways nothing said. Exact messages and exit codes.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonLines, runCli, shared, subsetDataset, tempDir } from '../helpers.js';

const work = tempDir('edgetune-newuser2-');
const env = { EDGETUNE_CACHE: tempDir('edgetune-newuser2-cache-') };

/** A small folder-per-class copy of hymenoptera/val (n photos of each of ants and bees). */
const antsAndBees = (dir: string, n: number) => subsetDataset(dir, ['datasets', 'hymenoptera', 'val'], ['ants', 'bees'], n);

describe('eval --report', () => {
  it('refuses a picture name that is not .png or that is one of its inputs, and leaves them as they were', async () => {
    const known = antsAndBees(path.join(work, 'known'), 2);
    const unknown = path.join(work, 'unknown');
    mkdirSync(unknown);
    copyFileSync(shared('camera', 'winml_fish.png'), path.join(unknown, 'fish.png'));
    copyFileSync(shared('camera', 'winml_dog.jpg'), path.join(unknown, 'dog.jpg'));
    const model = path.join(work, 'model.onnx');
    copyFileSync(shared('models', 'mobilenetv2-12-int8.onnx'), model);
    const before = readFileSync(model);
    // before: rc 0, "report: model.onnx", and the model was a 900x480 PNG afterwards
    const m = await runCli(['eval', 'known', '--model', 'model.onnx', '--unknown', 'unknown', '--report', 'model.onnx'], { cwd: work, env });
    expect(m.code).toBe(2);
    expect(m.stderr).toBe('edgetune eval: Expected a file name ending in .png for --report but received "model.onnx"\n');
    expect(readFileSync(model).equals(before)).toBe(true);
    const photo = readFileSync(path.join(unknown, 'fish.png'));
    const p = await runCli(['eval', known, '--model', model, '--unknown', unknown, '--report', 'unknown/fish.png'], { cwd: work, env });
    expect(p.code).toBe(1);
    expect(p.stderr).toBe(`edgetune eval: cannot write --report unknown/fish.png: it is the input ${path.join(unknown, 'fish.png')} (the same file); write to another file\n`);
    expect(readFileSync(path.join(unknown, 'fish.png')).equals(photo)).toBe(true);
  });
});

describe('eval --unknown-threshold', () => {
  it('says it is ignored for a model without an open-set calibration, as classify and watch do', async () => {
    const known = antsAndBees(path.join(work, 'known-thr'), 2);
    // before: the picture and the numbers said "no threshold" and nothing said the flag was dropped
    const r = await runCli(['eval', known, '--model', 'squeezenet1.1', '--unknown', shared('camera'), '--unknown-threshold', '0.5'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('edgetune: squeezenet1.1 has no open-set calibration (no unknown score): --unknown-threshold is ignored\n');
  });
});

describe('quantize --eval', () => {
  it('reports the labelled accuracy on the images in class folders only, and says which images it left out of it', async () => {
    const evalDir = antsAndBees(path.join(work, 'q-eval'), 3);
    const args = (out: string) => ['quantize', '--model', 'squeezenet1.1', '--calib', shared('datasets', 'hymenoptera', 'train'), '--calib-count', '8', '--correction-images', '4', '--cache', path.join(work, 'q.calib.json'), '--eval', evalDir, '--out', path.join(work, out), '--json'];
    const a = await runCli(args('a.onnx'), { env });
    expect(a.code, a.stderr).toBe(0);
    const ra = JSON.parse(a.stdout).report;
    expect(ra.images).toBe(6);
    expect(ra.accuracyFloat).not.toBeNull();
    // two photos beside the class folders: no label, so not right or wrong (before: 6 of 8 images "labelled",
    // both photos counted as misses, e.g. hymenoptera/val 64.7% → 63.9% with dog.jpg and cat.jpg beside ants/ and bees/)
    copyFileSync(shared('camera', 'winml_dog.jpg'), path.join(evalDir, 'dog.jpg'));
    copyFileSync(shared('camera', 'winml_cat.jpg'), path.join(evalDir, 'cat.jpg'));
    const b = await runCli(args('b.onnx'), { env });
    expect(b.code, b.stderr).toBe(0);
    const rb = JSON.parse(b.stdout).report;
    expect(rb.images).toBe(8);
    expect([rb.accuracyFloat, rb.accuracyInt8]).toEqual([ra.accuracyFloat, ra.accuracyInt8]);
    expect(b.stderr).toContain(
      `edgetune: warning: --eval: 2 images are not inside a class folder (${path.join(evalDir, 'cat.jpg')}, ${path.join(evalDir, 'dog.jpg')}): counted in the float-vs-int8 agreement, not in the labelled accuracy\n`,
    );
  });
});

describe('watch and capture given a folder of frames', () => {
  it('take a folder path without a trailing "/" as an image sequence, and say dir:// when file:// names a folder', async () => {
    const frames = shared('camera', 'slow_traffic_frames');
    // before: `edgetune watch: …/slow_traffic_frames: not a file`, exit 1 (with "frames/" it worked)
    const w = await runCli(['watch', frames, '--max-frames', '2', '--as-fast-as-possible', '--json'], { env });
    expect(w.code, w.stderr).toBe(0);
    expect(jsonLines(w.stdout).map((l) => l.seq)).toEqual([0, 1]);
    const out = path.join(work, 'frames-ds');
    const c = await runCli(['capture', frames, '--class', 'traffic', '--out', out, '--count', '3', '--every', '0'], { env });
    expect(c.code, c.stderr).toBe(0);
    expect(readdirSync(path.join(out, 'traffic'))).toHaveLength(3);
    const f = await runCli(['watch', `file://${frames}`, '--max-frames', '2'], { env });
    expect(f.code).toBe(1);
    expect(f.stderr.split('\n').at(-2)).toBe(`edgetune watch: ${frames}: not a file (a folder: an image sequence is dir://${frames})`);
  });

  it('capture spaces an image sequence without ?fps by its frames (an image a second), not by how fast they were read', async () => {
    const out = path.join(work, 'every-ds');
    // before: `1 frame saved in …/every-ds/c (the source ended before 5)`, exit 1
    const r = await runCli(['capture', shared('camera', 'slow_traffic_frames'), '--class', 'c', '--out', out, '--every', '2s', '--count', '5', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(r.stdout).map((l) => l.seq)).toEqual([0, 2, 4, 6, 8]);
    expect(r.stderr).toBe(`edgetune capture: 5 frames saved in ${path.join(out, 'c')}\n`);
  });

  it('watch refuses --allow-host without --serve (it ran the whole stream with nothing served)', async () => {
    const r = await runCli(['watch', shared('camera', 'slow_traffic_frames'), '--allow-host', 'kiosk.local'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('edgetune watch: --allow-host needs --serve <host:port> (it names the Host headers the server answers)\n');
  });

  it('watch says --fps is ignored for a video (it was taken without a word)', async () => {
    const r = await runCli(['watch', `file://${shared('camera', 'slow_traffic_small.mp4')}`, '--fps', '5', '--max-frames', '2', '--as-fast-as-possible', '--quiet'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n')[0]).toBe('edgetune watch: --fps is for dir:// sequences and webcam: snapshots; file frames come at their own rate (--fps ignored)');
  });

  it('refuse dir:// and file:// with no path (an unset "$FRAMES"), which streamed the current folder', async () => {
    const cwd = path.join(work, 'cwd-frames');
    mkdirSync(cwd);
    copyFileSync(shared('camera', 'winml_dog.jpg'), path.join(cwd, 'dog.jpg'));
    const d = await runCli(['watch', 'dir://', '--max-frames', '1'], { cwd, env });
    expect(d.code).toBe(2);
    expect(d.stderr.split('\n').at(-2)).toBe('edgetune watch: dir://: no folder given (dir://path/to/frames)');
    const c = await runCli(['capture', 'file://?realtime=0', '--class', 'x', '--out', 'ds'], { cwd, env });
    expect(c.code).toBe(2);
    expect(c.stderr).toBe('edgetune capture: file://?realtime=0: no file given (file://path/video.mp4)\n');
    expect(readdirSync(cwd)).toEqual(['dog.jpg']);
  });
});

describe('capture --class and --out', () => {
  it('refuse a class name the label rule refuses (finetune would train a class " car"), and an empty --out', async () => {
    const out = path.join(work, 'class-ds');
    const rule = 'a class name (not empty, not "." or ".."; no line break or other control character, no "/", no leading or trailing space) that names a folder (no "\\")';
    for (const name of [' car', 'car ', 'a\tb', '..']) {
      const r = await runCli(['capture', 'test:', '--class', name, '--out', out, '--count', '1', '--as-fast-as-possible'], { env });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`edgetune capture: Expected ${rule} for --class but received ${JSON.stringify(name)}\n`);
    }
    expect(readdirSync(work)).not.toContain('class-ds');
    // before: --out '' (an unset "$DATASET") saved the frames into <cwd>/car without a word
    const cwd = path.join(work, 'cwd');
    mkdirSync(cwd);
    const e = await runCli(['capture', 'test:', '--class', 'car', '--out', '', '--count', '1', '--as-fast-as-possible'], { cwd, env });
    expect(e.code).toBe(2);
    expect(e.stderr.split('\n')[0]).toBe('edgetune capture: Expected a folder for --out but received ""');
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('capture that saves nothing', () => {
  it('leaves no empty class folder (nor the --out folder it made) for finetune to refuse', async () => {
    const frames = path.join(work, 'broken-frames');
    mkdirSync(frames);
    writeFileSync(path.join(frames, 'a.jpg'), 'not a JPEG');
    // before: rc 1 and an empty <out>/car left behind (`finetune` then refuses the class with no images)
    const r = await runCli(['capture', `dir://${frames}`, '--class', 'car', '--out', 'new-ds/train'], { cwd: work, env });
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`edgetune capture: dir: ${path.join(frames, 'a.jpg')}: not a supported image (unsupported image format); skipped`);
    expect(readdirSync(work)).not.toContain('new-ds');
    // a folder that was there stays, and a capture that saves makes the class folder again
    mkdirSync(path.join(work, 'kept'));
    const k = await runCli(['capture', `dir://${frames}`, '--class', 'car', '--out', 'kept'], { cwd: work, env });
    expect(k.code).toBe(1);
    expect(readdirSync(path.join(work, 'kept'))).toEqual([]);
    const s = await runCli(['capture', 'test:', '--class', 'car', '--out', 'kept', '--count', '2', '--as-fast-as-possible'], { cwd: work, env });
    expect(s.code, s.stderr).toBe(0);
    expect(readdirSync(path.join(work, 'kept', 'car'))).toHaveLength(2);
  });
});

describe('bench --image', () => {
  it('names the image that cannot be read or decoded (was "<buffer>: …" and Node\'s bare ENOENT)', async () => {
    const text = path.join(work, 'notes.jpg');
    writeFileSync(text, 'not a JPEG');
    const t = await runCli(['bench', '--image', text, '--iterations', '1'], { env });
    expect(t.code).toBe(1);
    expect(t.stderr).toBe(`edgetune bench: ${text}: not a supported image (unsupported image format)\n`);
    const missing = path.join(work, 'nowhere.jpg');
    const m = await runCli(['bench', '--image', missing, '--iterations', '1'], { env });
    expect(m.code).toBe(1);
    expect(m.stderr).toBe(`edgetune bench: ${missing}: cannot read image (no such file or directory (ENOENT))\n`);
  });
});

describe('quantize --eval that is not a folder of images', () => {
  it('is named as the evaluation folder, not the calibration folder, and refused before calibrating', async () => {
    const photo = shared('camera', 'winml_dog.jpg');
    const empty = path.join(work, 'empty-eval');
    mkdirSync(empty);
    const base = ['quantize', '--model', 'squeezenet1.1', '--calib', shared('datasets', 'hymenoptera', 'train'), '--out', path.join(work, 'never.onnx')];
    // before: `<photo>: calibration path is not a folder`, after calibrating and quantizing (32.6 s here, now 0.7 s)
    const f = await runCli([...base, '--eval', photo], { env });
    expect(f.code).toBe(1);
    expect(f.stderr).toBe(`edgetune quantize: ${photo}: evaluation path is not a folder\n`);
    const e = await runCli([...base, '--eval', empty], { env });
    expect(e.code).toBe(1);
    expect(e.stderr).toBe(`edgetune quantize: ${empty}: no image files in the evaluation folder\n`);
    expect(readdirSync(work)).not.toContain('never.onnx');
  });
});

describe('quantize an imported model', () => {
  it('names the .tflite the user gave, not its converted copy in the import cache', async () => {
    const tflite = shared('models', 'teachable-machine', 'fruit-tflite', 'model.tflite');
    const out = path.join(work, 'fruit-int8.onnx');
    // before: `edgetune quantize: <EDGETUNE_CACHE>/imports/9d44…bd.onnx: model is already quantized (…)`
    const r = await runCli(['quantize', '--model', tflite, '--calib', shared('datasets', 'hymenoptera', 'train'), '--out', out], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`edgetune quantize: ${tflite}: model is already quantized (74 QuantizeLinear, 182 DequantizeLinear); quantize its float original instead\n`);
    expect(readdirSync(work)).not.toContain('fruit-int8.onnx');
  });
});

describe('import --out', () => {
  it('must be an .onnx file name: --out weights.bin replaced the tfjs model\'s own weights', async () => {
    const dir = path.join(work, 'twins');
    mkdirSync(dir);
    for (const f of readdirSync(shared('models', 'teachable-machine', 'twins-tfjs'))) copyFileSync(shared('models', 'teachable-machine', 'twins-tfjs', f), path.join(dir, f));
    const weights = path.join(dir, 'weights.bin');
    const before = readFileSync(weights);
    // before: rc 0, "wrote …/weights.bin", and the model no longer imported ("weights file is 2196169 bytes, more than 2154032")
    const r = await runCli(['import', path.join(dir, 'model.json'), '--out', weights], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`edgetune import: Expected a file name ending in .onnx for --out but received ${JSON.stringify(weights)}\n`);
    expect(readFileSync(weights).equals(before)).toBe(true);
    const ok = await runCli(['import', path.join(dir, 'model.json'), '--out', path.join(dir, 'twins.onnx')], { env });
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('card --out', () => {
  it('must be an .onnx file name: --out m.card.json put the model where every command reads m.onnx\'s card', async () => {
    const model = path.join(work, 'digits.onnx');
    copyFileSync(shared('models', 'mnist_winml.onnx'), model);
    // before: rc 0, then `classify --model digits.onnx` failed with "digits.card.json: model card is not valid JSON (…)"
    const r = await runCli(['card', model, '--allow-assumed', '--out', path.join(work, 'digits.card.json')], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`edgetune card: Expected a file name ending in .onnx for --out but received ${JSON.stringify(path.join(work, 'digits.card.json'))}\n`);
    expect(readdirSync(work)).not.toContain('digits.card.json');
  });
});

describe('quantize --cache', () => {
  it('refuses a cache named like a file of the output set (the report replaced it without a word)', async () => {
    const d = path.join(work, 'qcache');
    mkdirSync(d);
    const q = (cache: string) =>
      runCli(['quantize', '--model', 'squeezenet1.1', '--calib', shared('datasets', 'hymenoptera', 'train'), '--calib-count', '4', '--out', path.join(d, 'q.onnx'), '--cache', cache, '--eval', shared('datasets', 'hymenoptera', 'val'), '--eval-count', '4'], { cwd: d, env });
    // before: rc 0; q.report.json held the report, the histograms were gone
    const r = await q('q.report.json');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`edgetune quantize: --cache q.report.json is the report quantize writes for --out ${path.join(d, 'q.onnx')}: give the cache its own name (e.g. q.calib.json)\n`);
    const t = await q('q.calibration.cache');
    expect(t.stderr).toBe(`edgetune quantize: --cache q.calibration.cache is the TensorRT calibration table quantize writes for --out ${path.join(d, 'q.onnx')}: give the cache its own name (e.g. q.calib.json)\n`);
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('classify with a feature extractor', () => {
  it('refuses the Coral embedding extractor (its card names its output as the embedding) instead of printing a softmax of features', async () => {
    const embed = shared('models', 'tflite', 'coral_mobilenet_v1_1.0_224_quant_embedding_extractor.tflite');
    // before: rc 0, "dog.jpg: 197 (4.2%), 627 (2.5%), …" with "assumed 1024 unnamed classes"
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', embed], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `edgetune classify: ${embed}: output "MobilenetV1/Logits/AvgPool_1a/AvgPool" is the model's embedding (1024-d features, its card says), not class scores: a backbone to train a classifier on (edgetune finetune --model)\n`,
    );
    // what it is for still works: its card, and timing it
    const i = await runCli(['inspect', embed], { env });
    expect(i.code, i.stderr).toBe(0);
    const b = await runCli(['bench', '--model', embed, '--iterations', '1', '--json'], { env });
    expect(b.code, b.stderr).toBe(0);
  });
});
