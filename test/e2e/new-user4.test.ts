// What a fourth new user ran into using edgetune as a package in their own project (CommonJS
// `require`), in the kiosk page and on finetune's less-travelled paths (multilabel, regression,
// prototype / mlp heads, --resume --add-examples), with the real models and photos in ../shared.
// Exact messages.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runCli, shared, tempDir } from '../helpers.js';
import type { Page } from 'playwright-core';
import { launchChromium, startKiosk } from './kiosk-helpers.js';
import { loadClassifier } from '../../runtime/classify/classifier.js';

describe('CommonJS require (Node >= 20.19 loads ES modules with require)', () => {
  it('every entry in package.json "exports" can be required, the main entry included', () => {
    // before: require('edgetune') threw ERR_REQUIRE_ASYNC_MODULE ("require() cannot be used on an ESM graph
    // with top-level await"): runtime/stream/teach-worker.ts ran its thread body with a top-level await
    const entries = ['runtime/index.js', 'calibration/index.js', 'devices/index.js', 'runtime/train/node/index.js', 'runtime/onnx/index.js'];
    const script = `for (const f of ${JSON.stringify(entries.map((e) => path.join(repoRoot, 'dist', e)))}) console.log(Object.keys(require(f)).length > 0 ? 'ok' : 'empty', f);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0])).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    // the classes a CommonJS program checks errors with come through require too
    const e = spawnSync(process.execPath, ['-e', `const { EdgetuneError, loadClassifier } = require(${JSON.stringify(path.join(repoRoot, 'dist/runtime/index.js'))}); console.log(typeof EdgetuneError, typeof loadClassifier);`], { encoding: 'utf8' });
    expect(e.stdout).toBe('function function\n');
  });
});

const work = tempDir('edgetune-newuser4-');
const env = { EDGETUNE_CACHE: tempDir('edgetune-newuser4-cache-') };
const flowers = (split: string, cls: string) => shared('datasets', 'tf_flowers-dev', split, cls);
/** n photos of each class of tf_flowers-dev/train, from photo `from` on, linked into dir/<class>. */
function flowerFolders(dir: string, classes: readonly string[], n: number, from = 0): string {
  for (const c of classes) {
    mkdirSync(path.join(dir, c), { recursive: true });
    for (const f of readdirSync(flowers('train', c)).sort().slice(from, from + n)) symlinkSync(path.join(flowers('train', c), f), path.join(dir, c, f));
  }
  return dir;
}
const reportOf = (model: string) => JSON.parse(readFileSync(model.replace(/\.onnx$/, '.report.json'), 'utf8')) as { head: string; config?: { hidden?: number | number[] } };

describe('finetune --resume keeps the head kind of the model it resumes', () => {
  it('a prototype model stays a prototype model, an MLP keeps its hidden layer', async () => {
    const train = flowerFolders(path.join(work, 'heads'), ['daisy', 'roses', 'tulips'], 6);
    const more = flowerFolders(path.join(work, 'heads-more'), ['daisy'], 6, 6);
    const p = await runCli(['finetune', train, '--head', 'prototype', '--augment', 'none', '--out', path.join(work, 'proto.onnx')], { env });
    expect(p.code, p.stderr).toBe(0);
    const m = await runCli(['finetune', train, '--hidden', '16', '--epochs', '5', '--augment', 'none', '--out', path.join(work, 'mlp.onnx')], { env });
    expect(m.code, m.stderr).toBe(0);
    expect([reportOf(path.join(work, 'proto.onnx')).head, reportOf(path.join(work, 'mlp.onnx')).head]).toEqual(['prototype', 'mlp']);
    // before: both resumed models had a linear head trained for 60 epochs ("best epoch 54/60"), nothing said so
    const pr = await runCli(['finetune', '--resume', path.join(work, 'proto.onnx'), '--add-examples', `daisy=${path.join(more, 'daisy')}`, '--out', path.join(work, 'proto-more.onnx')], { env });
    expect(pr.code, pr.stderr).toBe(0);
    expect(pr.stdout).toContain('no training (nearest class mean)');
    expect(reportOf(path.join(work, 'proto-more.onnx')).head).toBe('prototype');
    const mr = await runCli(['finetune', '--resume', path.join(work, 'mlp.onnx'), '--add-examples', `daisy=${path.join(more, 'daisy')}`, '--epochs', '5', '--out', path.join(work, 'mlp-more.onnx')], { env });
    expect(mr.code, mr.stderr).toBe(0);
    const r = reportOf(path.join(work, 'mlp-more.onnx'));
    expect([r.head, r.config?.hidden]).toEqual(['mlp', 16]);
    // naming a head still chooses it
    const lr = await runCli(['finetune', '--resume', path.join(work, 'mlp.onnx'), '--add-examples', `daisy=${path.join(more, 'daisy')}`, '--head', 'linear', '--epochs', '5', '--out', path.join(work, 'lin-more.onnx')], { env });
    expect(lr.code, lr.stderr).toBe(0);
    expect(reportOf(path.join(work, 'lin-more.onnx')).head).toBe('linear');
  });
});

describe('multilabel and regression models downstream', () => {
  it('eval and finetune --resume refuse them with the reason', async () => {
    const rows = (split: string) =>
      ['daisy', 'dandelion', 'sunflowers'].flatMap((c) => readdirSync(flowers(split, c)).sort().slice(0, 5).map((f) => ({ file: path.join(flowers(split, c), f), c })));
    writeFileSync(path.join(work, 'ml.csv'), rows('train').map((r) => `${r.file},${r.c}${r.c === 'daisy' ? '' : ';yellow'}\n`).join(''));
    writeFileSync(path.join(work, 'rg.csv'), `file,yellowness\n${rows('train').map((r) => `${r.file},${r.c === 'daisy' ? 0 : 1}\n`).join('')}`);
    const ml = await runCli(['finetune', 'ml.csv', '--task', 'multilabel', '--augment', 'none', '--epochs', '5', '--out', 'ml.onnx'], { cwd: work, env });
    expect(ml.code, ml.stderr).toBe(0);
    const rg = await runCli(['finetune', 'rg.csv', '--task', 'regression', '--augment', 'none', '--epochs', '5', '--out', 'rg.onnx'], { cwd: work, env });
    expect(rg.code, rg.stderr).toBe(0);
    const val = path.join(work, 'val');
    for (const c of ['daisy', 'dandelion', 'sunflowers']) {
      mkdirSync(val, { recursive: true });
      symlinkSync(flowers('val', c), path.join(val, c));
    }
    // before: the multilabel model got "accuracy 0.8…" from its top label among the folders' labels, the regression
    // model "class folder "daisy" is not a label of rg.onnx (its labels: yellowness)"
    const e1 = await runCli(['eval', 'val', '--model', 'ml.onnx'], { cwd: work, env });
    expect([e1.code, e1.stderr]).toEqual([2, 'edgetune eval: ml.onnx is a multilabel model; eval scores classifiers on class folders (finetune --task multilabel --val <file.csv> reports its validation F1 and exact match)\n']);
    const e2 = await runCli(['eval', 'val', '--model', 'rg.onnx'], { cwd: work, env });
    expect([e2.code, e2.stderr]).toEqual([2, 'edgetune eval: rg.onnx is a regression model; eval scores classifiers on class folders (finetune --task regression --val <file.csv> reports its validation MAE, RMSE and R²)\n']);
    // before: "ml.onnx: has no fine-tuning provenance (base model, dataset folders); it cannot be resumed" (it has)
    const r1 = await runCli(['finetune', '--resume', 'ml.onnx', '--add-examples', `daisy=${flowers('val', 'daisy')}`, '--out', 'ml2.onnx'], { cwd: work, env });
    expect([r1.code, r1.stderr]).toEqual([2, 'edgetune finetune: ml.onnx: a multilabel model; --resume is for classification models: train again on its CSV with the new rows\n']);
    const r2 = await runCli(['finetune', '--resume', 'rg.onnx', '--add-class', 'roses', flowers('val', 'roses'), '--out', 'rg2.onnx'], { cwd: work, env });
    expect([r2.code, r2.stderr]).toEqual([2, 'edgetune finetune: rg.onnx: a regression model; --resume is for classification models: train again on its CSV with the new rows\n']);
  });
});

describe('a regression model in the stream and the kiosk (values are not class scores)', () => {
  // rg.onnx is the regression model the test above trained (tests of a file run in order)
  it('watch and kiosk refuse it with the reason, and so does the page importing it', async () => {
    const rg = path.join(work, 'rg.onnx');
    // before: "0.00s frame 0: petals (5655%)" (the value 56.55 as a class probability), rc 0
    const w = await runCli(['watch', shared('camera', 'slow_traffic_small.mp4'), '--model', rg, '--max-frames', '3', '--quiet'], { env });
    expect([w.code, w.stdout]).toEqual([2, '']);
    expect(w.stderr).toBe(`edgetune watch: rg.onnx is a regression model: a stream smooths and shows class scores, not values (edgetune classify reads its values)\n`);
    // before: the page showed "petals 8391%" for a sunflower
    const k = await runCli(['kiosk', '--model', rg, '--port', '0'], { env });
    expect([k.code, k.stderr]).toEqual([2, `edgetune kiosk: ${rg} is a regression model: the kiosk page shows class scores, not values (edgetune classify reads its values)\n`]);
    const kiosk = await startKiosk();
    const ctx = await launchChromium(path.join(work, 'profile'));
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      await page.goto(`${kiosk.url}?ep=wasm`);
      await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: 90_000 });
      await page.click('#tab-teach');
      await page.locator('#import-model').setInputFiles(rg);
      await page.waitForFunction(() => !document.querySelector<HTMLElement>('#error')!.hidden);
      expect(await page.locator('#error').textContent()).toBe('rg.onnx is a regression model: the kiosk page shows class scores, not values (edgetune classify reads its values)');
      expect(await page.locator('#models li').count()).toBe(0);
    } finally {
      await ctx.close();
      await kiosk.stop();
    }
  });
});

describe('library classify() of a multilabel or regression model', () => {
  // rg.onnx and ml.onnx are the models the tests above trained (tests of a file run in order)
  it("says what the row means by the model's task, as classifyFiles does", async () => {
    const photo = shared('datasets', 'tf_flowers-dev', 'val', 'sunflowers', readdirSync(flowers('val', 'sunflowers')).sort()[0]!);
    for (const name of ['rg.onnx', 'ml.onnx']) {
      const clf = await loadClassifier(path.join(work, name));
      try {
        // before: classify() returned only `top` (a regression model's values ranked as if class scores), no `reading`
        const one = await clf.classify(photo);
        let row: Awaited<ReturnType<typeof clf.classify>>['reading'] | undefined;
        for await (const r of clf.classifyFiles([photo])) row = r.reading;
        expect(one.reading, name).toEqual(row);
        expect(one.reading.task).toBe(name === 'rg.onnx' ? 'regression' : 'multilabel');
        if (one.reading.task === 'regression') expect(one.reading.values.map((v) => v.name)).toEqual(['yellowness']);
      } finally {
        await clf.dispose();
      }
    }
  });
});

describe("the package's declarations in a user's strict TypeScript project", () => {
  it('type-check with skipLibCheck false (tsc\'s default): every entry, as a user imports it', () => {
    const dir = tempDir('edgetune-newuser4-tsc-');
    const entries = ['runtime/index.js', 'calibration/index.js', 'devices/index.js', 'runtime/train/node/index.js', 'runtime/onnx/index.js'];
    writeFileSync(path.join(dir, 'user.ts'), `${entries.map((e, i) => `import * as m${i} from ${JSON.stringify(path.join(repoRoot, 'dist', e))};`).join('\n')}\nconsole.log(${entries.map((_, i) => `m${i}`).join(', ')});\n`);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules', '@types')] }, files: ['user.ts'] }),
    );
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
    // before: dist/runtime/serve/oip.d.ts(48,20): error TS2589: Type instantiation is excessively deep and possibly infinite.
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('quantize keeps what the outputs mean', () => {
  it("a quantized regression model still reads as values (the card's task survives)", async () => {
    // rg.csv is the CSV the multilabel/regression test above wrote; a float backbone so that quantize has work to do
    const f = await runCli(['finetune', 'rg.csv', '--task', 'regression', '--model', 'mobilenetv2-fp32', '--augment', 'none', '--epochs', '5', '--out', 'rgf.onnx'], { cwd: work, env });
    expect(f.code, f.stderr).toBe(0);
    const q = await runCli(['quantize', '--model', 'rgf.onnx', '--calib', path.join(work, 'heads'), '--calib-count', '6', '--out', 'rgq.onnx'], { cwd: work, env });
    expect(q.code, q.stderr).toBe(0);
    const photo = path.join(flowers('val', 'sunflowers'), readdirSync(flowers('val', 'sunflowers')).sort()[0]!);
    const rows = await Promise.all(['rgf.onnx', 'rgq.onnx'].map(async (m) => JSON.parse((await runCli(['classify', photo, '--model', m, '--json'], { cwd: work, env })).stdout) as { task?: string; values?: { name: string; value: number }[] }));
    // before: the int8 model's row was {"top":[{"label":"yellowness","score":…}]}: no task, no values
    expect(rows.map((r) => [r.task, r.values?.map((v) => v.name)])).toEqual([
      ['regression', ['yellowness']],
      ['regression', ['yellowness']],
    ]);
  });
});

describe('the kiosk page in two tabs at once (one IndexedDB)', () => {
  it('photos uploaded into a class another tab deleted are refused with the reason, not stored where nothing shows them', async () => {
    const kiosk = await startKiosk();
    const ctx = await launchChromium(path.join(work, 'profile-tabs'));
    try {
      const open = async (p: Page) => {
        await p.goto(`${kiosk.url}?ep=wasm`);
        await p.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: 90_000 });
        await p.click('#tab-teach');
      };
      const a = ctx.pages()[0] ?? (await ctx.newPage());
      await open(a);
      for (const name of ['daisy', 'roses']) {
        await a.fill('#class-name', name);
        await a.click('#add-class');
        await a.locator(`.class-card[data-class="${name}"]`).waitFor();
      }
      const b = await ctx.newPage();
      await open(b);
      b.once('dialog', (d) => void d.accept());
      await b.locator('.class-card[data-class="daisy"] button.delete').click();
      await b.locator('.class-card[data-class="daisy"]').waitFor({ state: 'detached' });
      // tab A still shows daisy; before: "daisy: added 5 images", the card vanished and the 5 samples stayed in
      // IndexedDB under a deleted class (counted, never shown, trained or deleted)
      const photos = readdirSync(flowers('train', 'daisy')).sort().slice(0, 5).map((f) => path.join(flowers('train', 'daisy'), f));
      await a.locator('.class-card[data-class="daisy"] input.upload').setInputFiles(photos);
      await a.waitForFunction(() => !document.querySelector<HTMLElement>('#error')!.hidden, null, { timeout: 60_000 });
      expect(await a.locator('#error').textContent()).toBe('daisy: the photos were not stored: its class no longer exists (deleted in another tab?); reload the page');
      const stored = await a.evaluate(
        () =>
          new Promise<number>((resolve, reject) => {
            const r = indexedDB.open('edgetune-kiosk');
            r.onerror = () => reject(r.error);
            r.onsuccess = () => {
              const q = r.result.transaction('samples').objectStore('samples').count();
              q.onsuccess = () => resolve(q.result);
            };
          }),
      );
      expect(stored).toBe(0);
    } finally {
      await ctx.close();
      await kiosk.stop();
    }
  });
});
