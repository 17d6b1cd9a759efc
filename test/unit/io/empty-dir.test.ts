// An empty output folder (`--out "$DIR"` with the variable unset) is refused, naming the option, before
// anything is written: path.resolve('') is the current directory, which ensureWritableDir used to take
// (exportTritonRepository wrote its entry there, createTeach its examples/ models/ hard/ folders, an
// empty cacheDir put imports/ there). The library names its option (`out`, `dir`, `cache`); the CLI paths that reach them (watch --teach, finetune --cache)
// say the same, run in an empty working directory that must stay empty.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importedModelPath, importModelFile } from '../../../models/import.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { exportTritonRepository } from '../../../runtime/fleet/triton.js';
import { ensureWritableDir } from '../../../runtime/io/atomic.js';
import { createSource } from '../../../devices/index.js';
import { geometryOfClassifier, StreamPipeline } from '../../../runtime/stream/pipeline.js';
import { createTeach } from '../../../runtime/stream/teach.js';
import { finetune } from '../../../runtime/train/node/finetune.js';
import { buildWeb } from '../../../runtime/kiosk/build.js';
import { quantizeModel } from '../../../calibration/index.js';
import { scanDataset } from '../../../runtime/train/node/dataset.js';
import { repoRoot, runCli, shared, sharedDir, tempDir } from '../../helpers.js';

const resolve = { searchPath: [path.join(sharedDir, 'models')], download: false };
const FRUIT = shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite');
const work = tempDir('edgetune-empty-dir-');

/**
 * Runs `body` (an ES module's text; `dist(p)` is the import URL of dist/<p>) in a child process whose
 * working directory is `cwd`, a temp folder holding keep.txt: a call that took "" as the current
 * directory would build the kiosk bundle there and swap the folder out, so nothing here ever runs with
 * the repository (or any real folder) as the working directory. Returns its stdout, trimmed.
 */
function runInTempCwd(cwd: string, body: string): string {
  mkdirSync(cwd, { recursive: true });
  writeFileSync(path.join(cwd, 'keep.txt'), 'the user\'s file\n');
  const dist = (p: string) => pathToFileURL(path.join(repoRoot, 'dist', p)).href;
  const code = body.replace(/dist\(([^)]*)\)/g, (_, p: string) => JSON.stringify(dist(JSON.parse(p.replace(/'/g, '"')) as string)));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models'), EDGETUNE_OFFLINE: '1' },
  });
  return r.stdout.trim();
}

describe('an empty output folder is refused, naming the option', () => {
  it('ensureWritableDir: "" and "  " are not the current directory', async () => {
    await expect(ensureWritableDir('')).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for --out but received ""' });
    await expect(ensureWritableDir('  ', '--teach')).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for --teach but received "  "' });
  });

  it('exportTritonRepository({ out: "" }) is refused before the model is read; importedModelPath({ cacheDir: "" }) before the import', async () => {
    await expect(exportTritonRepository('mobilenetv2-int8', { ...resolve, out: '' })).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for out but received ""' });
    await expect(importedModelPath(FRUIT, { cacheDir: '' })).rejects.toMatchObject({ code: 'EARG', message: 'Expected a folder for cacheDir but received ""' });
  });

  it('createTeach({ dir: "" }) is refused before any folder is made', async () => {
    const clf = await loadClassifier('mobilenetv2-int8', { ...resolve, providers: ['cpu'], threads: 1, lazy: true });
    const source = await createSource('test:smptebars?rate=15', geometryOfClassifier(clf));
    try {
      const pipeline = new StreamPipeline(source, clf, { topK: 1 });
      await expect(createTeach(pipeline, { dir: '', loadModel: () => Promise.reject(new Error('not loaded')) })).rejects.toMatchObject({
        code: 'EARG',
        message: 'Expected a folder for dir but received ""',
      });
    } finally {
      await source.close();
      await clf.dispose();
    }
  });

  it('finetune({ cache: "" }) is refused naming its option, before any work', async () => {
    const data = shared('datasets', 'cats_dogs-dev', 'train');
    await expect(finetune(data, { model: 'mobilenetv2-int8', out: path.join(work, 'lib-pets.onnx'), cache: '' })).rejects.toMatchObject({
      code: 'EARG',
      message: 'Expected a folder for cache but received ""',
    });
  });

  // the library names its option (above), the CLI its flag: watch checks --teach itself, finetune maps cache to --cache (withFlagName)
  it('the CLI: watch --teach "" and finetune --cache "" exit 2 naming the flag, writing nothing in the working directory', async () => {
    const cwd = path.join(work, 'cwd');
    mkdirSync(cwd);
    const env = { EDGETUNE_CACHE: path.join(work, 'cache') };
    const w = await runCli(['watch', 'test:', '--model', 'mobilenetv2-int8', '--serve', '127.0.0.1:0', '--teach', ''], { cwd, env });
    expect([w.code, w.stderr]).toEqual([2, 'edgetune watch: Expected a folder for --teach but received ""\n']);
    const data = shared('datasets', 'cats_dogs-dev', 'train');
    const f = await runCli(['finetune', data, '--model', 'mobilenetv2-int8', '--out', path.join(work, 'pets.onnx'), '--cache', ''], { cwd, env });
    expect([f.code, f.stderr]).toEqual([2, 'edgetune finetune: Expected a folder for --cache but received ""\n']);
    expect(readdirSync(cwd)).toEqual([]);
  });

  // Every path the command line takes: a flag its table marks `path`, and every positional, is refused by
  // parse (exit 2, the flag named) before anything is read. Before: eval --unknown "" and finetune --val ""
  // were ignored without a word, finetune "" trained on the current directory, quantize --calib "" said
  // --calib was required, classify "" and --labels "" failed to read a file named "" (exit 1).
  it('the CLI: an empty path flag or positional exits 2 naming it, in every command, reading nothing', async () => {
    const cwd = path.join(work, 'cwd-flags');
    mkdirSync(cwd);
    const env = { EDGETUNE_CACHE: path.join(work, 'cache-flags') };
    const dog = shared('camera', 'winml_dog.jpg');
    const val = shared('datasets', 'hymenoptera', 'val');
    const out = path.join(work, 'flags.onnx');
    const cases: [string[], string][] = [
      [['classify', ''], 'classify: Expected a non-empty value for argument 1'],
      [['classify', dog, '  '], 'classify: Expected a non-empty value for argument 2'],
      [['classify', dog, '--model', ''], 'classify: Expected a model for --model'],
      [['classify', dog, '--labels', ''], 'classify: Expected a file for --labels'],
      [['eval', val, '--model', 'mobilenetv2-int8', '--unknown', ''], 'eval: Expected a folder for --unknown'],
      [['eval', val, '--model', 'mobilenetv2-int8', '--unknown', val, '--report', ''], 'eval: Expected a file for --report'],
      [['eval', '', '--model', 'mobilenetv2-int8'], 'eval: Expected a non-empty value for argument 1'],
      [['quantize', '--model', 'mobilenetv2-fp32', '--calib', '', '--out', out], 'quantize: Expected a folder for --calib'],
      [['quantize', '--model', 'mobilenetv2-fp32', '--calib', val, '--eval', '', '--out', out], 'quantize: Expected a folder for --eval'],
      [['quantize', '--model', 'mobilenetv2-fp32', '--cache', '', '--out', out], 'quantize: Expected a file for --cache'],
      [['finetune', val, '--val', '', '--out', out], 'finetune: Expected a folder or CSV file for --val'],
      [['finetune', '', '--out', out], 'finetune: Expected a non-empty value for argument 1'],
      [['finetune', '--resume', '', '--add-class', 'wasp', val, '--out', out], 'finetune: Expected a file for --resume'],
      [['finetune', '--resume', out, '--add-class', 'wasp', '', '--out', out], 'finetune: Expected a non-empty value for argument 1'],
      [['export', 'mobilenetv2-int8', '--format', 'triton', '--out', ''], 'export: Expected a folder for --out'],
      [['import', FRUIT, '--out', ''], 'import: Expected a file for --out'],
      [['card', 'mobilenetv2-int8', '--out', ''], 'card: Expected a file for --out'],
      [['inspect', ''], 'inspect: Expected a non-empty value for argument 1'],
      [['serve', 'mobilenetv2-int8', ''], 'serve: Expected a non-empty value for argument 2'],
      [['capture', 'test:', '--class', 'car', '--out', ''], 'capture: Expected a folder for --out'],
      [['augment-preview', dog, '--out', ''], 'augment-preview: Expected a file for --out'],
      [['bench', '--image', ''], 'bench: Expected a file for --image'],
      [['kiosk', '--model', ''], 'kiosk: Expected a model for --model'],
    ];
    const got = [];
    for (const [args] of cases) {
      const r = await runCli(args, { cwd, env });
      got.push([args.join(' '), r.code, r.stderr]);
    }
    expect(got).toEqual(cases.map(([args, m]) => [args.join(' '), 2, `edgetune ${m} but received ${args.includes('  ') ? '"  "' : '""'}\n`]));
    expect(readdirSync(cwd)).toEqual([]);
  }, 240_000);

  it('finetune, quantizeModel, scanDataset and importModelFile refuse an empty data, val, resume, addClass / addExamples dir, calib, eval, cache, root, file or labels, naming it', async () => {
    const train = shared('datasets', 'hymenoptera', 'train');
    const out = path.join(work, 'lib-empty.onnx');
    const refused = async (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string; message: string }) => `${e.code} ${e.message}`);
    expect(await refused(finetune('', { model: 'mobilenetv2-int8', out }))).toBe('EARG Expected a folder or CSV file for data but received ""');
    expect(await refused(finetune(train, { model: 'mobilenetv2-int8', out, val: ' ' }))).toBe('EARG Expected a folder or CSV file for val but received " "');
    expect(await refused(finetune(undefined, { out, resume: '', addClass: [{ name: 'wasp', dir: train }] }))).toBe('EARG Expected a model file for resume but received ""');
    expect(await refused(finetune(undefined, { out, resume: out, addClass: [{ name: 'wasp', dir: '' }] }))).toBe('EARG Expected a folder for addClass[0].dir but received ""');
    expect(await refused(finetune(undefined, { out, resume: out, addExamples: [{ name: 'ants', dir: '' }] }))).toBe('EARG Expected a folder for addExamples[0].dir but received ""');
    const q = { resolve, model: 'mobilenetv2-fp32', out };
    expect(await refused(quantizeModel({ ...q, calib: '' }))).toBe('EARG Expected a folder for calib but received ""');
    expect(await refused(quantizeModel({ ...q, calib: train, eval: '' }))).toBe('EARG Expected a folder for eval but received ""');
    expect(await refused(quantizeModel({ ...q, cache: '' }))).toBe('EARG Expected a file for cache but received ""');
    expect(await refused(scanDataset('', { what: 'training set' }))).toBe('EARG Expected a folder for root but received ""');
    // importModelFile's labels: '' was ignored (the labels.txt beside the model taken instead)
    expect(await refused(importModelFile(FRUIT, { labels: '' }))).toBe('EARG Expected a label file for labels but received ""');
    expect(await refused(importedModelPath('', { cacheDir: path.join(work, 'cache-import') }))).toBe('EARG Expected a model file for file but received ""');
    expect(existsSync(out)).toBe(false);
  });

  // The kiosk bundle: buildWeb replaces its output folder (old one renamed aside, then removed), so an
  // empty webDir / outDir used to delete everything in the current directory.
  it('startServer({ kioskPage: { webDir: "" } }), startKiosk({ webDir: "" }), buildWeb({ outDir: "" }) are refused; the working directory keeps its file', () => {
    const cases: [string, string, string, string][] = [
      ['serve', `import { startServer } from dist('runtime/stream/serve.js');`, `startServer({}, { kioskPage: { webDir: '' } })`, 'kioskPage.webDir'],
      ['kiosk', `import { startKiosk } from dist('runtime/kiosk/server.js');`, `startKiosk({ model: 'mobilenetv2-int8', webDir: '' })`, 'webDir'],
      ['build', `import { buildWeb } from dist('runtime/kiosk/build.js');`, `buildWeb({ outDir: '  ' })`, 'outDir'],
    ];
    for (const [name, imp, call, option] of cases) {
      const cwd = path.join(work, `cwd-${name}`);
      const out = runInTempCwd(
        cwd,
        `${imp} await Promise.resolve().then(() => ${call}).then(() => console.log('resolved'), (e) => console.log(JSON.stringify([e.code, e.message]))); process.exit(0);`,
      );
      expect([name, out]).toEqual([name, JSON.stringify(['EARG', `Expected a folder for ${option} but received ${name === 'build' ? '"  "' : '""'}`])]);
      expect(readdirSync(cwd)).toEqual(['keep.txt']);
    }
  });

  it('node dist/scripts/build-web.js --out "" exits 1 naming --out; the working directory keeps its file', () => {
    const cwd = path.join(work, 'cwd-script');
    mkdirSync(cwd);
    writeFileSync(path.join(cwd, 'keep.txt'), 'x');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'scripts', 'build-web.js'), '--out', ''], { cwd, encoding: 'utf8', timeout: 120_000 });
    expect([r.status, r.stderr]).toEqual([1, 'build-web: Expected a folder for --out but received ""\n']);
    expect(readdirSync(cwd)).toEqual(['keep.txt']);
  });

  it('buildWeb into a folder that is not a previous bundle is refused and the folder left intact; a previous bundle is replaced', async () => {
    const user = path.join(work, 'project');
    mkdirSync(path.join(user, 'src'), { recursive: true });
    writeFileSync(path.join(user, 'app.js'), 'my app\n');
    writeFileSync(path.join(user, 'src', 'main.ts'), 'my code\n');
    await expect(buildWeb({ outDir: user })).rejects.toMatchObject({
      code: 'EIO',
      message: `${user}: not a kiosk bundle folder (it holds src); building there would replace it: name an empty or new folder, or a previous bundle's`,
    });
    expect(readdirSync(user).sort()).toEqual(['app.js', 'src']);
    expect(readFileSync(path.join(user, 'app.js'), 'utf8')).toBe('my app\n');
    // a folder of the bundle's names but without app.js (e.g. a site's index.html) is not a bundle either
    const site = path.join(work, 'site');
    mkdirSync(site);
    writeFileSync(path.join(site, 'index.html'), '<p>mine</p>');
    await expect(buildWeb({ outDir: site })).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining(`${site}: not a kiosk bundle folder (it holds (no app.js))`) });
    expect(readFileSync(path.join(site, 'index.html'), 'utf8')).toBe('<p>mine</p>');
    // a new folder is built, and a rebuild replaces it (the bundle's own names only)
    const web = path.join(work, 'web');
    await buildWeb({ outDir: web, minify: false });
    const made = readdirSync(web).sort();
    expect(made).toContain('app.js');
    const r = await buildWeb({ outDir: web, minify: false });
    expect([r.outDir, readdirSync(web).sort()]).toEqual([web, made]);
    // three builds at once in one process (kiosks started together through the library): each moves
    // the old bundle aside under a name of its own (was `<outDir>.<pid>.old` for all: a rename onto
    // the one another build had not removed yet failed with ENOTEMPTY)
    const together = await Promise.all([1, 2, 3].map(() => buildWeb({ outDir: web, minify: false })));
    expect(together.map((t) => t.outDir)).toEqual([web, web, web]);
    expect(readdirSync(web).sort()).toEqual(made);
    expect(readdirSync(work).filter((f) => f.includes('web.'))).toEqual([]);
  }, 120_000);
});
