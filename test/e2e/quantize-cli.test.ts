// `edgetune quantize` from the command line: JSON output and report file, the fp16 model, cache reuse
// without a calibration folder, and bad input — a non-ONNX file, an already-quantized model, a
// calibration folder with no decodable image, a corrupt image among good ones (skipped and
// reported), an --exclude name that does not exist, and --out over an existing file (atomic: a
// failed run leaves the old file intact, a good one replaces it, no temp files remain).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModelInfo } from '../../runtime/io/model-file.js';
import { decodeModel } from '../../runtime/onnx/model.js';
import { runCli, shared, tempDir } from '../helpers.js';

const dir = tempDir('edgetune-quant-cli-');
const train = () => shared('datasets', 'hymenoptera', 'train');
const calibMixed = path.join(dir, 'calib-mixed');
const calibBad = path.join(dir, 'calib-bad');

beforeAll(() => {
  // 5 good photos in two class folders plus a truncated JPEG
  mkdirSync(path.join(calibMixed, 'ants'), { recursive: true });
  mkdirSync(path.join(calibMixed, 'bees'), { recursive: true });
  const ants = readdirSync(path.join(train(), 'ants')).filter((f) => f.endsWith('.jpg')).slice(0, 3);
  const bees = readdirSync(path.join(train(), 'bees')).filter((f) => f.endsWith('.jpg')).slice(0, 2);
  for (const f of ants) copyFileSync(path.join(train(), 'ants', f), path.join(calibMixed, 'ants', f));
  for (const f of bees) copyFileSync(path.join(train(), 'bees', f), path.join(calibMixed, 'bees', f));
  const jpg = readFileSync(path.join(train(), 'ants', ants[0]!));
  writeFileSync(path.join(calibMixed, 'bees', 'truncated.jpg'), jpg.subarray(0, 600));
  mkdirSync(calibBad);
  writeFileSync(path.join(calibBad, 'text.jpg'), 'this is not a JPEG');
  writeFileSync(path.join(calibBad, 'empty.png'), '');
  writeFileSync(path.join(calibBad, 'notes.txt'), 'not an image at all');
});

const tempLeft = (d: string) => readdirSync(d).filter((f) => f.endsWith('.tmp'));

describe('edgetune quantize', () => {
  it('--json prints the result with the report; the report is written next to the model', async () => {
    const out = path.join(dir, 'sq-int8.onnx');
    const cache = path.join(dir, 'sq.calib.json');
    const r = await runCli([
      'quantize', '--model', 'squeezenet1.1', '--calib', calibMixed, '--calib-count', '8', '--method', 'percentile',
      '--out', out, '--cache', cache, '--eval', shared('datasets', 'hymenoptera', 'val'), '--eval-count', '12', '--json', '--ep', 'cpu',
    ]);
    expect(r.code, r.stderr).toBe(0);
    // biome-ignore lint/suspicious/noExplicitAny: the JSON report is read field by field below
    const res = JSON.parse(r.stdout.trim()) as Record<string, any>;
    expect(res.out).toBe(out);
    expect(res.method).toBe('percentile');
    expect(res.calibrationImages).toBe(5);
    // the corrupt image is skipped and reported, the good ones are used
    expect(res.skipped.length).toBe(1);
    expect(res.skipped[0].file).toBe(path.join(calibMixed, 'bees', 'truncated.jpg'));
    expect(r.stderr).toContain(`edgetune: skipped ${path.join(calibMixed, 'bees', 'truncated.jpg')}: corrupt or truncated image`);
    expect(res.quantized).toEqual({ Conv: 26, MaxPool: 3, Concat: 8 });
    for (const k of ['agreementTop1', 'top5Overlap', 'meanKL', 'accuracyFloat', 'accuracyInt8', 'latencyFloatMs', 'latencyInt8Ms', 'sizeFloat', 'sizeInt8']) {
      expect(typeof res.report[k], k).toBe('number');
    }
    expect(res.report.images).toBe(12);
    const onDisk = JSON.parse(readFileSync(path.join(dir, 'sq-int8.report.json'), 'utf8')) as Record<string, unknown>;
    expect(onDisk.agreementTop1).toBe(res.report.agreementTop1);
    expect(readFileSync(path.join(dir, 'sq-int8.calibration.cache'), 'utf8')).toMatch(/^TRT-8601-MinMaxCalibration\ndata_0: [0-9a-f]{8}\n/);
    expect(tempLeft(dir)).toEqual([]);

    // the cache serves another method without a calibration folder; the table output works too
    const again = await runCli(['quantize', '--model', 'squeezenet1.1', '--cache', cache, '--method', 'mse', '--out', path.join(dir, 'sq-mse.onnx'), '--ep', 'cpu']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^wrote .*sq-mse\.onnx \(mse, 5 calibration images from cache; int8: 26 Conv, 3 MaxPool, 8 Concat\)$/m);
  });

  it('--sensitivity lists what each quantized tensor costs alone; a bad image count is refused', async () => {
    const out = path.join(dir, 'mnv1-sens.onnx');
    const r = await runCli(['quantize', '--model', 'mobilenetv1-0.25-128', '--calib', calibMixed, '--out', out, '--method', 'minmax', '--sensitivity', '--sensitivity-images', '3', '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('sensitivity on 3 calibration images (float model as reference; each row alone quantized, unfused):');
    const lines = r.stdout.split('\n');
    const head = lines.findIndex((l) => l.startsWith('quantized alone'));
    expect(head).toBeGreaterThan(0);
    expect(lines.slice(head + 1, head + 4).map((l) => l.split(/\s{2,}/)[0])).toEqual(['whole model', 'all weights', 'all activations']);
    const rows = lines.slice(head + 4, head + 14);
    for (const l of rows) expect(l).toMatch(/^(activation|weights of) \S+\s+(Conv|Conv\+Clip|AveragePool|input)?\s+\d\.\d{5}\s+\d+\.\d%$/);
    // 28 Conv weights + 30 activations, 10 shown
    // no --eval, so no report file holds them (it said "and the report file")
    expect(lines[head + 14]).toBe('(48 more in --json)');

    const bad = await runCli(['quantize', '--model', 'mobilenetv1-0.25-128', '--calib', calibMixed, '--out', out, '--sensitivity', '--sensitivity-images', '0', '--ep', 'cpu']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('edgetune quantize: Expected positive integer for --sensitivity-images but received "0"');
  });

  it('quantizes the float16 model (widened first) and classify serves the result', async () => {
    const out = path.join(dir, 'sq16-int8.onnx');
    const r = await runCli(['quantize', '--model', 'squeezenet1.1-fp16', '--calib', calibMixed, '--out', out, '--method', 'minmax', '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const info = await readModelInfo(out);
    expect(info!.preprocess.dtype).toBe('float32');
    expect(info!.preprocess.colorOrder).toBe('BGR');
    const c = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', out, '--json', '--ep', 'cpu']);
    expect(c.code, c.stderr).toBe(0);
    expect((JSON.parse(c.stdout.trim()) as { top: { label: string }[] }).top[0]!.label).toBe('Golden Retriever');
  });

  it('MNIST (grayscale, MatMul head): fully int8 and still reads the digit', async () => {
    const out = path.join(dir, 'mnist-int8.onnx');
    const r = await runCli(['quantize', '--model', 'mnist', '--calib', shared('camera', 'slow_traffic_frames'), '--calib-count', '16', '--out', out, '--json', '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout.trim()) as { quantized: Record<string, number> }).quantized).toEqual({ Conv: 2, MaxPool: 2, Reshape: 1, Gemm: 1 });
    const c = await runCli(['classify', shared('camera', 'winml_mnist_28.png'), '--model', out, '--json', '--ep', 'cpu']);
    expect(c.code, c.stderr).toBe(0);
    expect((JSON.parse(c.stdout.trim()) as { top: { label: string }[] }).top[0]!.label).toBe('8');
  });

  it('refuses a file that is not ONNX, naming it', async () => {
    const bad = path.join(dir, 'not-a-model.onnx');
    writeFileSync(bad, 'hello, not a model');
    const r = await runCli(['quantize', '--model', bad, '--calib', train(), '--out', path.join(dir, 'x.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^edgetune quantize: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a readable ONNX model \\(Not an ONNX model: `, 'm'));
  });

  it('refuses an already-quantized model', async () => {
    const r = await runCli(['quantize', '--model', 'mobilenetv2-int8', '--calib', train(), '--out', path.join(dir, 'x.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/mobilenetv2-12-int8\.onnx: model is already quantized \(1 QuantizeLinear, 52 QLinearConv, .*\); quantize its float original instead/);
  });

  it('a calibration folder without a decodable image is an error naming the folder', async () => {
    const r = await runCli(['quantize', '--model', 'squeezenet1.1', '--calib', calibBad, '--out', path.join(dir, 'x.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`edgetune quantize: ${calibBad}: no decodable images among 2 file(s)`);
    expect(r.stderr).toContain('empty file (0 bytes)');
  });

  it('an --exclude name that does not exist is a usage error', async () => {
    const r = await runCli(['quantize', '--model', 'squeezenet1.1', '--calib', calibMixed, '--out', path.join(dir, 'x.onnx'), '--exclude', 'Concat,fire99/nothing']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--exclude "fire99/nothing": no node, operator type or node output of that name in');
  });

  it('--out over an existing file: a failed run leaves it intact, a good run replaces it atomically', async () => {
    const d = tempDir('edgetune-quant-out-');
    const out = path.join(d, 'model.onnx');
    writeFileSync(out, 'OLD CONTENT');
    const bad = await runCli(['quantize', '--model', 'squeezenet1.1', '--calib', calibBad, '--out', out]);
    expect(bad.code).toBe(1);
    expect(readFileSync(out, 'utf8')).toBe('OLD CONTENT');
    expect(tempLeft(d)).toEqual([]);
    const good = await runCli(['quantize', '--model', 'mobilenetv1-0.25-128', '--calib', calibMixed, '--out', out, '--method', 'entropy', '--ep', 'cpu']);
    expect(good.code, good.stderr).toBe(0);
    const m = decodeModel(new Uint8Array(readFileSync(out)));
    // measured: 30 QuantizeLinear (the 30 quantized activations of MobileNetV1-0.25's 28 Convs, as --sensitivity lists them)
    expect(m.graph.node.filter((n) => n.opType === 'QuantizeLinear').length).toBe(30);
    expect(readdirSync(d).sort()).toEqual(['model.calibration.cache', 'model.onnx']);
  });

  it('warns when evaluation images were also calibration images', async () => {
    const r = await runCli(['quantize', '--model', 'mobilenetv1-0.25-128', '--calib', calibMixed, '--eval', calibMixed, '--out', path.join(dir, 'same.onnx'), '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('edgetune: warning: 6 of the 6 evaluation images were also calibration images: the report will look better than it should');
    // the truncated file is reported by calibration and again by the evaluation, and skipped by both
    expect(r.stderr.split('\n').filter((l) => l.startsWith('edgetune: skipped ') && l.includes('truncated.jpg')).length).toBe(2);
    expect(r.stdout).toMatch(/^images\s+5\s+1 skipped$/m);
    expect(r.stdout).toMatch(/^accuracy \(labelled\)\s+\d+\.\d% +\d+\.\d%$/m); // ants → "ant", bees → "bee"
  });

  it('usage errors', async () => {
    const r = await runCli(['quantize', '--model', 'squeezenet1.1', '--calib', calibMixed]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('quantize: --out is required');
    const m = await runCli(['quantize', '--model', 'squeezenet1.1', '--calib', calibMixed, '--out', path.join(dir, 'x.onnx'), '--method', 'kl']);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain('Expected one of minmax, percentile, entropy, mse for --method but received "kl"');
    const ci = await runCli(['quantize', '--model', 'squeezenet1.1', '--calib', calibMixed, '--out', path.join(dir, 'x.onnx'), '--correction-images', '-1']);
    expect(ci.code).toBe(2);
    expect(ci.stderr).toContain('correction-images');
    const h = await runCli(['quantize', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: edgetune quantize');
  });
});

/** One photo of tf_flowers-dev: its class folder `c`, file name `f` and path. */
interface Photo {
  c: string;
  f: string;
  file: string;
}

/**
 * The folders of a quantize --eval test in `work`: `calib/<class>/` and `ev/<class>/` link to the
 * `calib` and `evals` photos, and `ev/labels.csv` holds the `header` column and `row(p)` for each eval
 * photo, keyed `<class>/<file>` as finetune --val reads it. Returns the ev folder.
 */
function quantizeEvalFolders(work: string, calib: readonly Photo[], evals: readonly Photo[], header: string, row: (p: Photo) => string): string {
  const link = (folder: string, photos: readonly Photo[]) => {
    for (const p of photos) {
      mkdirSync(path.join(folder, p.c), { recursive: true });
      symlinkSync(p.file, path.join(folder, p.c, p.f));
    }
  };
  link(path.join(work, 'calib'), calib);
  const ev = path.join(work, 'ev');
  link(ev, evals);
  writeFileSync(path.join(ev, 'labels.csv'), `file,${header}\n${evals.map((p) => `${p.c}/${p.f},${row(p)}\n`).join('')}`);
  return ev;
}

describe('quantize --eval of a regression model (its outputs are values, not class scores)', () => {
  const work = tempDir('edgetune-quant-rg-');
  const flowers = (split: string, c: string) => shared('datasets', 'tf_flowers-dev', split, c);
  const yellowness = (c: string) => (c === 'daisy' ? 0 : 1);
  const classes = ['daisy', 'dandelion', 'sunflowers'];
  /** Photos `from`..`to` (sorted) of each class of tf_flowers-dev/<split>. */
  const photos = (split: string, from: number, to: number) => classes.flatMap((c) => readdirSync(flowers(split, c)).sort().slice(from, to).map((f) => ({ c, f, file: path.join(flowers(split, c), f) })));

  it('reports |int8 − float| per output and, with the folder\'s labels.csv, MAE / RMSE / R² of both (no top-1 agreement or KL)', async () => {
    // a regression model as finetune --task regression writes one: yellowness 0 for daisies, 1 for dandelions and sunflowers
    writeFileSync(path.join(work, 'rg.csv'), `file,yellowness\n${photos('train', 0, 8).map((p) => `${p.file},${yellowness(p.c)}\n`).join('')}`);
    const ft = await runCli(['finetune', 'rg.csv', '--task', 'regression', '--model', 'mobilenetv2-fp32', '--augment', 'none', '--out', 'rgf.onnx'], { cwd: work });
    expect(ft.code, ft.stderr).toBe(0);
    // the eval folder: 5 val photos per class and their targets, as finetune --val reads a regression CSV
    const evals = photos('val', 0, 5);
    const ev = quantizeEvalFolders(work, photos('train', 8, 12), evals, 'yellowness', (p) => String(yellowness(p.c)));
    const args = ['quantize', '--model', 'rgf.onnx', '--calib', 'calib', '--calib-count', '12', '--out', 'rgq.onnx', '--eval', 'ev'];
    const r = await runCli([...args, '--json'], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    // the folder's own labels.csv is its targets, not a skipped image (before: "skipped …labels.csv: not an image file (.csv)")
    expect(r.stderr).not.toMatch(/skipped .*labels\.csv/);
    type Metrics = { mae: number; rmse: number; r2: number };
    const rep = (JSON.parse(r.stdout) as { report: Record<string, unknown> & { regression: { outputs: string[]; meanAbsDiff: number[]; maxAbsDiff: number[]; targets: { images: number; float: Metrics; int8: Metrics } } } }).report;
    // before: agreementTop1 1 and meanKL -0.014815 (figures of class scores read off one value), and no regression figures
    expect([rep.agreementTop1, rep.top5Overlap, rep.meanKL, rep.accuracyFloat, rep.images]).toEqual([null, null, null, null, 15]);
    const g = rep.regression;
    expect([g.outputs, g.targets.images]).toEqual([['yellowness'], 15]);

    // the same figures from classify's values of both models on the same photos, and the CSV's targets
    const values = async (model: string) => {
      const c = await runCli(['classify', ...evals.map((p) => path.join('ev', p.c, p.f)), '--model', model, '--json'], { cwd: work });
      expect(c.code, c.stderr).toBe(0);
      const rows = c.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; values: { value: number }[] });
      return new Map(rows.map((x) => [path.resolve(work, x.file), x.values[0]!.value]));
    };
    const vf = await values('rgf.onnx');
    const vq = await values('rgq.onnx');
    const files = evals.map((p) => path.join(ev, p.c, p.f));
    const diffs = files.map((f) => Math.abs(vq.get(f)! - vf.get(f)!));
    const errors = (v: Map<string, number>) => evals.map((p, i) => v.get(files[i]!)! - yellowness(p.c));
    const mae = (e: number[]) => e.reduce((a, x) => a + Math.abs(x), 0) / e.length;
    const rmse = (e: number[]) => Math.sqrt(e.reduce((a, x) => a + x * x, 0) / e.length);
    // 4 decimals: the report rounds to 6 significant digits, and classify runs batches where the report runs single images
    expect(g.meanAbsDiff[0]).toBeCloseTo(diffs.reduce((a, b) => a + b, 0) / diffs.length, 4);
    expect(g.maxAbsDiff[0]).toBeCloseTo(Math.max(...diffs), 4);
    expect([g.targets.float.mae, g.targets.float.rmse]).toEqual([expect.closeTo(mae(errors(vf)), 4), expect.closeTo(rmse(errors(vf)), 4)]);
    expect([g.targets.int8.mae, g.targets.int8.rmse]).toEqual([expect.closeTo(mae(errors(vq)), 4), expect.closeTo(rmse(errors(vq)), 4)]);
    // measured (12 calibration photos): mean |int8 − float| 0.048, max 0.090 for values that span 0..1 — int8 moves them by
    // a few hundredths, not a class's worth
    expect(g.meanAbsDiff[0]).toBeGreaterThan(0);
    expect(g.maxAbsDiff[0]).toBeLessThan(0.25);

    const t = await runCli(args, { cwd: work });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^mean \|int8 − float\| yellowness +\d+\.\d+$/m);
    expect(t.stdout).toMatch(/^MAE vs targets yellowness +\d+\.\d+ +\d+\.\d+$/m);
    expect(t.stdout).toContain('15 images with a row in ev/labels.csv');
    expect(t.stdout).not.toMatch(/top-1 agreement|mean KL|accuracy \(labelled\)/);

    // targets that are not the model's outputs: refused naming the CSV, before calibrating (nothing written)
    writeFileSync(path.join(ev, 'labels.csv'), `file,greenness\n${evals.map((p) => `${p.c}/${p.f},1\n`).join('')}`);
    const bad = await runCli(['quantize', '--model', 'rgf.onnx', '--calib', 'calib', '--out', 'bad.onnx', '--eval', 'ev'], { cwd: work });
    expect([bad.code, bad.stderr]).toEqual([1, `edgetune quantize: ev/labels.csv: its targets are greenness but ${path.join(work, 'rgf.onnx')} outputs yellowness: the rows need one value per output, in that order\n`]);
    expect(existsSync(path.join(work, 'bad.onnx'))).toBe(false);
  }, 240_000);
});

describe('quantize --eval of a multilabel model (one sigmoid per label, not a distribution over classes)', () => {
  const work = tempDir('edgetune-quant-ml-');
  const flowers = (split: string, c: string) => shared('datasets', 'tf_flowers-dev', split, c);
  /** daisy → daisy; dandelion and sunflowers → themselves and yellow (as test/e2e/multilabel-stream.test.ts). */
  const labelsOf = (c: string) => (c === 'daisy' ? [c] : [c, 'yellow']);
  const classes = ['daisy', 'dandelion', 'sunflowers'];
  const photos = (split: string, from: number, to: number) => classes.flatMap((c) => readdirSync(flowers(split, c)).sort().slice(from, to).map((f) => ({ c, f, file: path.join(flowers(split, c), f) })));

  it('reports label decisions that agree, |p int8 − p float| per label and, with the folder\'s labels.csv, micro / macro F1 of both (no top-1 agreement or KL)', async () => {
    writeFileSync(path.join(work, 'ml.csv'), `file,labels\n${photos('train', 0, 8).map((p) => `${p.file},${labelsOf(p.c).join(';')}\n`).join('')}`);
    const ft = await runCli(['finetune', 'ml.csv', '--task', 'multilabel', '--model', 'mobilenetv2-fp32', '--augment', 'none', '--out', 'mlf.onnx'], { cwd: work });
    expect(ft.code, ft.stderr).toBe(0);
    // the eval folder: 5 val photos per class and their labels, as finetune --task multilabel --val reads them
    const evals = photos('val', 0, 5);
    const ev = quantizeEvalFolders(work, photos('train', 8, 12), evals, 'labels', (p) => labelsOf(p.c).join(';'));
    const args = ['quantize', '--model', 'mlf.onnx', '--calib', 'calib', '--calib-count', '12', '--out', 'mlq.onnx', '--eval', 'ev'];
    const r = await runCli([...args, '--json'], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    // the folder's own labels.csv is its targets, not a skipped image (before: "skipped …labels.csv: not an image file (.csv)")
    expect(r.stderr).not.toMatch(/skipped .*labels\.csv/);
    type F1 = { microF1: number; macroF1: number };
    type Ml = { labels: string[]; threshold: number; decisionAgreement: number; meanAbsDiff: number[]; maxAbsDiff: number[]; targets: { images: number; float: F1; int8: F1 } };
    const rep = (JSON.parse(r.stdout) as { report: Record<string, unknown> & { multilabel: Ml } }).report;
    // before: agreementTop1 1, meanKL -0.01113 (a softmax KL of the sigmoids) and accuracyFloat 0.2667 (class folders as
    // single labels), and no multilabel figures
    expect([rep.agreementTop1, rep.top5Overlap, rep.meanKL, rep.accuracyFloat, rep.images]).toEqual([null, null, null, null, 15]);
    const g = rep.multilabel;
    const labels = ['daisy', 'dandelion', 'sunflowers', 'yellow'];
    expect([g.labels, g.threshold, g.targets.images]).toEqual([labels, 0.5, 15]);
    // the report file holds the same figures
    expect((JSON.parse(readFileSync(path.join(work, 'mlq.report.json'), 'utf8')) as { multilabel: Ml }).multilabel).toEqual(g);

    // the same figures from classify's probabilities of both models on the same photos (--top 5: every label's)
    const probs = async (model: string) => {
      const c = await runCli(['classify', ...evals.map((p) => path.join('ev', p.c, p.f)), '--model', model, '--json'], { cwd: work });
      expect(c.code, c.stderr).toBe(0);
      const rows = c.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; top: { label: string; score: number }[] });
      return new Map(rows.map((x) => [path.resolve(work, x.file), labels.map((l) => x.top.find((t) => t.label === l)!.score)]));
    };
    const pf = await probs('mlf.onnx');
    const pq = await probs('mlq.onnx');
    const files = evals.map((p) => path.join(ev, p.c, p.f));
    const on = (p: number) => p > 0.5;
    let same = 0;
    for (const f of files) labels.forEach((_, k) => (same += on(pf.get(f)![k]!) === on(pq.get(f)![k]!) ? 1 : 0));
    expect(g.decisionAgreement).toBeCloseTo(same / (files.length * labels.length), 4);
    labels.forEach((_, k) => {
      const d = files.map((f) => Math.abs(pq.get(f)![k]! - pf.get(f)![k]!));
      // 4 decimals: the report rounds to 6 significant digits, and classify runs batches where the report runs single images
      expect(g.meanAbsDiff[k]).toBeCloseTo(d.reduce((a, b) => a + b, 0) / d.length, 4);
      expect(g.maxAbsDiff[k]).toBeCloseTo(Math.max(...d), 4);
    });
    /** Micro and macro F1 of a model's probabilities against the CSV's labels, counted here. */
    const f1s = (p: Map<string, number[]>) => {
      const c = labels.map(() => ({ tp: 0, fp: 0, fn: 0 }));
      evals.forEach((e, i) =>
        labels.forEach((l, k) => {
          const truth = labelsOf(e.c).includes(l);
          const pred = on(p.get(files[i]!)![k]!);
          if (pred && truth) c[k]!.tp++;
          else if (pred) c[k]!.fp++;
          else if (truth) c[k]!.fn++;
        }),
      );
      const f1 = (x: { tp: number; fp: number; fn: number }) => (2 * x.tp) / (2 * x.tp + x.fp + x.fn);
      const sum = c.reduce((a, x) => ({ tp: a.tp + x.tp, fp: a.fp + x.fp, fn: a.fn + x.fn }), { tp: 0, fp: 0, fn: 0 });
      return { microF1: f1(sum), macroF1: c.reduce((a, x) => a + f1(x), 0) / c.length };
    };
    const want = { float: f1s(pf), int8: f1s(pq) };
    expect([g.targets.float.microF1, g.targets.float.macroF1, g.targets.int8.microF1, g.targets.int8.macroF1]).toEqual(
      [want.float.microF1, want.float.macroF1, want.int8.microF1, want.int8.macroF1].map((x) => expect.closeTo(x, 4)),
    );
    console.log(`multilabel quantize --eval: decisions agree ${g.decisionAgreement}, mean |Δp| ${g.meanAbsDiff.join(' ')}, max |Δp| ${g.maxAbsDiff.join(' ')}, F1 micro/macro float ${JSON.stringify(g.targets.float)} int8 ${JSON.stringify(g.targets.int8)}`);
    // measured (12 calibration photos, 15 × 4 decisions): every decision agrees; mean |Δp| 0.009–0.014 per label, max 0.054;
    // F1 float = int8 (micro 0.8261, macro 0.7728) — int8 moves probabilities by hundredths, not across 0.5
    expect(g.decisionAgreement).toBeGreaterThanOrEqual(0.95);
    expect(Math.min(...g.meanAbsDiff)).toBeGreaterThan(0);
    expect(Math.max(...g.maxAbsDiff)).toBeLessThan(0.15);
    const t = await runCli(args, { cwd: work });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^label decisions agree \(p > 0\.5\) +\d+\.\d%$/m);
    expect(t.stdout).toMatch(/^mean \|p int8 − p float\| yellow +\d\.\d{4}$/m);
    expect(t.stdout).toMatch(/^micro F1 vs targets +\d\.\d{4} +\d\.\d{4}$/m);
    expect(t.stdout).toContain('15 images with a row in ev/labels.csv');
    expect(t.stdout).not.toMatch(/top-1 agreement|mean KL|accuracy \(labelled\)/);

    // a label the model lacks: refused naming the CSV, before calibrating (nothing written)
    writeFileSync(path.join(ev, 'labels.csv'), `file,labels\n${evals.map((p) => `${p.c}/${p.f},red\n`).join('')}`);
    const bad = await runCli(['quantize', '--model', 'mlf.onnx', '--calib', 'calib', '--out', 'bad.onnx', '--eval', 'ev'], { cwd: work });
    expect([bad.code, bad.stderr]).toEqual([
      1,
      `edgetune quantize: ev/labels.csv: label "red" is not among ${path.join(work, 'mlf.onnx')}'s labels (${labels.join(', ')}): the model has no output to validate it on\n`,
    ]);
    expect(existsSync(path.join(work, 'bad.onnx'))).toBe(false);
  }, 300_000);
});
