// End-to-end test of the browser kiosk in real headless Chromium (Debian chromium + playwright-core)
// with a fake camera fed from ../shared/camera/slow_traffic_small.mp4 (turned into a y4m by ffmpeg in
// a temp dir). It runs the built CLI's `edgetune kiosk`, checks live predictions on the traffic
// frames, the WebNN → WebGPU → wasm fallback and its messages, then teaches ants vs bees from uploaded
// hymenoptera photos, checks the page's validation accuracy and confusion matrix, classifies held-back
// val photos with the new model, reloads (IndexedDB persistence) and serves the exported ONNX with the
// CLI. EDGETUNE_KIOSK_SCREENSHOT=<png> also saves a screenshot of the running app (docs/kiosk.png).

import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli, shared, steps, tempDir } from '../helpers.js';
import { launchChromium, pick, startKiosk, trainInKiosk, type Kiosk } from './kiosk-helpers.js';
import { FINETUNE_DEFAULTS } from '../../runtime/train/finetune.js';
import { accuracyText } from '../../runtime/core/stats.js';
import { MAGIC, MAGIC_V3 } from '../../runtime/train/resume-format.js';

/** Road-vehicle ImageNet classes (what mobilenetv2-int8 sees in the traffic clip). */
const VEHICLES = new Set([
  'minivan', 'limousine', 'race car', 'semi-trailer truck', 'taxicab', 'convertible', 'sports car', 'station wagon',
  'pickup truck', 'police car', 'jeep', 'moving van', 'minibus', 'trolleybus', 'tow truck', 'garbage truck', 'car wheel',
  'tram', 'school bus', 'ambulance', 'fire truck', 'recreational vehicle', 'go-kart', 'cab', 'trailer truck',
]);
/** Photos per class uploaded in teach mode (every 8th jpg of hymenoptera/train, sorted). */
const PER_CLASS = 15;
/**
 * The test picks a 25% validation split: 4 photos per class of these 15. Measured 0.875 (7 of 8) with
 * the page's default `auto` head (prototype below 20 training photos per class); a raw linear head got
 * 0.75 (6 of 8).
 */
const VAL_ACCURACY_FLOOR = 0.75;
/** The exported model on all 153 hymenoptera/val photos (CLI `eval`): measured 0.967. */
const HELD_OUT_ACCURACY_FLOOR = 0.9;
/** Measured: 0.875 (7 of 8) for the prototype head on un-augmented samples; the floor allows one more miss. */
const PROTOTYPE_ACCURACY_FLOOR = 0.75;

let kiosk: Kiosk;
let url: string;
let ctx: BrowserContext;
let page: Page;
let work: string;
const pageErrors: string[] = [];

async function open(query = ''): Promise<void> {
  await page.goto(`${url}${query}`);
  await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: 90_000 });
}

const text = (sel: string) => page.locator(sel).textContent().then((t) => t ?? '');

beforeAll(async () => {
  work = tempDir('edgetune-kiosk-');
  const y4m = path.join(work, 'camera.y4m');
  // 4 s of traffic at 10 fps, 640×360 (the clip's own size): Chromium loops it as the camera.
  const ff = spawnSync('ffmpeg', ['-loglevel', 'error', '-y', '-ss', '5', '-t', '4', '-i', shared('camera', 'slow_traffic_small.mp4'), '-vf', 'fps=10', '-pix_fmt', 'yuv420p', y4m]);
  if (ff.status !== 0) throw new Error(`ffmpeg failed: ${ff.stderr}`);
  kiosk = await startKiosk();
  url = kiosk.url;
  ctx = await launchChromium(path.join(work, 'profile'), ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`]);
  page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await kiosk?.stop();
});

describe('edgetune kiosk in Chromium', () => {
  // the first four tests each open the page afresh; from the teaching on, each builds on the classes,
  // saved models and open tab the one before it left
  const { step } = steps();

  it('serves the bundle, the model and its description over http', async () => {
    const cfg = (await (await fetch(`${url}api/config`)).json()) as { model: { id: string; labels: string[]; preprocess: { width: number; crop: number }; bytes: number } };
    expect(cfg.model.id).toBe('mobilenetv2-int8');
    expect(cfg.model.labels).toHaveLength(1000);
    expect(cfg.model.preprocess).toMatchObject({ width: 224, height: 224, crop: 0.875, layout: 'NCHW' });
    const model = await fetch(`${url}model.onnx`);
    expect(model.status).toBe(200);
    expect((await model.arrayBuffer()).byteLength).toBe(cfg.model.bytes);
    const wasm = await fetch(`${url}ort/ort-wasm-simd-threaded.jsep.wasm`, { method: 'HEAD' });
    expect(wasm.status).toBe(200);
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    // cross-origin isolated, so onnxruntime-web may use threads
    expect(wasm.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect((await fetch(`${url}nope.js`)).status).toBe(404);
    expect((await fetch(`${url}model.onnx`, { method: 'POST' })).status).toBe(405);
  });

  it('classifies the fake camera live: vehicle labels on wasm, with the WebNN/WebGPU fallback reasons shown', async () => {
    await open();
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('ready');
    await page.waitForFunction(() => Number(document.body.dataset.frames ?? 0) >= 5, null, { timeout: 60_000 });
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      const f0 = Number(await page.evaluate(() => document.body.dataset.frames));
      await page.waitForFunction((f) => Number(document.body.dataset.frames) > f + 2, f0, { timeout: 30_000 });
      seen.push(await page.locator('#top1').getAttribute('data-label').then((s) => s ?? ''));
    }
    const vehicles = seen.filter((l) => VEHICLES.has(l));
    expect(vehicles.length, `top-1 labels: ${seen.join(', ')}`).toBeGreaterThanOrEqual(6);
    const preds = await page.locator('#predictions li').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.score)));
    expect(preds).toHaveLength(5);
    expect(preds[0]).toBeGreaterThan(0);
    expect([...preds].sort((a, b) => b - a)).toEqual(preds);
    expect(await page.locator('#provider').getAttribute('data-provider')).toBe('wasm');
    expect(await text('#provider')).toBe('WebAssembly (CPU)');
    const note = await text('#provider-note');
    expect(note).toContain('webnn: WebNN is not available in this browser (navigator.ml is missing) → falling back');
    expect(note).toMatch(/webgpu: (no WebGPU adapter|WebGPU is not available)/);
    expect(note).toContain('using wasm');
    expect(await text('#fps')).toMatch(/^\d+\.\d fps$/);
    expect(await page.locator('#camera option').count()).toBeGreaterThanOrEqual(1);
    if (process.env.EDGETUNE_KIOSK_SCREENSHOT) await page.screenshot({ path: process.env.EDGETUNE_KIOSK_SCREENSHOT });
  });

  it('refuses an uploaded photo declaring more than 100 000 000 pixels from its header, and keeps classifying the next one', async () => {
    // a valid 12000×12000 1-bit PNG of 17.6 KB, made here: before, the page decoded it (4.7 s, the JS
    // heap 42 → 614 MB) and showed "match"; a 20000×14000 JPEG left every later photo classified "match"
    const bomb = path.join(work, 'bomb.png');
    const chunk = (type: string, data: Buffer) => {
      const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      td.copy(out, 4);
      out.writeUInt32BE(zlib.crc32(td), 8 + data.length);
      return out;
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(12000, 0);
    ihdr.writeUInt32BE(12000, 4);
    ihdr[8] = 1; // bit depth 1, gray
    const idat = zlib.deflateSync(Buffer.alloc((1 + 1500) * 12000), { level: 9 });
    writeFileSync(bomb, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]));
    await open('?ep=wasm');
    const cat = shared('camera', 'winml_cat.jpg');
    for (const f of [cat, bomb, cat]) {
      await page.evaluate(() => {
        delete document.getElementById('top1')?.dataset.source;
        document.getElementById('error')!.textContent = '';
      });
      await page.locator('#photo-input').setInputFiles(f);
      await page.waitForFunction((n) => document.getElementById('top1')?.dataset.source === n || document.getElementById('error')?.textContent, path.basename(f));
      if (f === bomb) {
        expect(await text('#error')).toBe('bomb.png: image is 12000x12000 (144000000 pixels), over the limit of 100000000 pixels; refused as a possible decompression bomb');
      } else {
        expect(await text('#error')).toBe('');
        expect(await page.locator('#top1').getAttribute('data-label')).toBe('Egyptian Mau');
      }
    }
  });

  it('falls back from a forced unavailable provider, fails with every cause when none works, rejects unknown names', async () => {
    await open('?ep=webgpu,wasm');
    expect(await page.locator('#provider').getAttribute('data-provider')).toBe('wasm');
    const note = await text('#provider-note');
    expect(note).toMatch(/^webgpu: .+ → falling back\nusing wasm$/);
    expect(note).not.toContain('webnn');

    await open('?ep=webnn');
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('error');
    expect(await text('#error')).toBe('No execution provider could serve the model:\n  - webnn: WebNN is not available in this browser (navigator.ml is missing)');
    expect(await text('#provider')).toBe('none');

    await open('?ep=webgpu,cuda');
    expect(await text('#error')).toBe('Unknown execution provider "cuda": expected one of webnn, webnn-gpu, webnn-cpu, webgpu, wasm');
  });

  step('teaches ants vs bees from uploaded photos, reports validation accuracy, and the new model recognises held-back photos', async () => {
    await open('?ep=wasm');
    await page.click('#tab-teach');
    for (const name of ['ants', 'bees']) {
      await page.fill('#class-name', name);
      await page.click('#add-class');
      await page.locator(`.class-card[data-class="${name}"]`).waitFor();
    }
    // a bad file is reported and skipped, the photos are added
    const bad = path.join(work, 'broken.jpg');
    spawnSync('sh', ['-c', `printf 'not a jpeg' > '${bad}'`]);
    await page.locator('.class-card[data-class="ants"] input.upload').setInputFiles([...pick(shared('datasets', 'hymenoptera', 'train', 'ants'), PER_CLASS, 8), bad]);
    await page.locator(`.class-card[data-class="ants"][data-count="${PER_CLASS}"]`).waitFor({ timeout: 60_000 });
    expect(await text('#train-status')).toBe('ants: added 15 images; skipped 1:\nbroken.jpg: not a supported image (the browser cannot decode it)');
    await page.locator('.class-card[data-class="bees"] input.upload').setInputFiles(pick(shared('datasets', 'hymenoptera', 'train', 'bees'), PER_CLASS, 8));
    await page.locator(`.class-card[data-class="bees"][data-count="${PER_CLASS}"]`).waitFor({ timeout: 60_000 });

    // the controls start on the fine-tune defaults (runtime/train/finetune.ts); 25% keeps 4 validation photos per class
    expect(await page.locator('#val-split').inputValue()).toBe(String(FINETUNE_DEFAULTS.valSplit));
    await page.selectOption('#val-split', '0.25');
    expect(await trainInKiosk(page)).toBe('done');
    expect(await text('#train-status')).toMatch(/^trained on wasm: 22 training \+ 8 validation images$/);
    const acc = Number(await page.locator('#val-acc').getAttribute('data-value'));
    console.log(`kiosk teach: validation accuracy ${acc} (${await text('#acc-detail')})`);
    expect(acc).toBeGreaterThanOrEqual(VAL_ACCURACY_FLOOR);
    // 2×2 confusion matrix over the 8 validation photos, its diagonal matching the accuracy
    const cells = await page.locator('#confusion td').allTextContents();
    expect(cells).toHaveLength(4);
    const m = cells.map(Number);
    expect(m.reduce((a, b) => a + b, 0)).toBe(8);
    expect(m[0]! + m[3]!).toBe(acc * 8);
    expect(m[0]! + m[1]!).toBe(4);

    await page.click('#use-model');
    await page.waitForFunction(() => document.querySelector('#model-name')?.textContent?.startsWith('ants / bees'));
    // the tab switches once the new model is in place, a moment after its name is shown
    await page.locator('#view-live').waitFor({ state: 'visible', timeout: 30_000 });
    const bee = pick(shared('datasets', 'hymenoptera', 'val', 'bees'), 1, 1)[0]!;
    await page.locator('#photo-input').setInputFiles(bee);
    await page.waitForFunction((n) => document.querySelector('#top1')?.getAttribute('data-source') === n, path.basename(bee));
    expect(await page.locator('#top1').getAttribute('data-label')).toBe('bees');
    expect(await page.locator('#predictions li').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.label))).toEqual(['bees', 'ants']);
    // held-back photos of each class: the few-shot head (prototype, from 11 training photos per class)
    // misses about 1 in 30 val photos (the exported model scores 0.967 on all 153), and the first val ant
    // photo is one of them (CLI classify of the same head: bees 0.62); measured 2 of these 3 ants and 3 of
    // 3 bees, so each class needs a majority, not every photo
    for (const name of ['ants', 'bees']) {
      let right = 0;
      for (const photo of pick(shared('datasets', 'hymenoptera', 'val', name), 3, 1)) {
        await page.locator('#photo-input').setInputFiles(photo);
        await page.waitForFunction((n) => document.querySelector('#top1')?.getAttribute('data-source') === n, path.basename(photo));
        if ((await page.locator('#top1').getAttribute('data-label')) === name) right++;
      }
      expect(right, name).toBeGreaterThanOrEqual(2);
    }
  });

  step('keeps classes and the taught model across a reload (IndexedDB) and exports an ONNX the CLI serves', async () => {
    await open('?ep=wasm');
    // the live view comes back on the taught model
    expect(await text('#model-name')).toMatch(/^ants \/ bees/);
    await page.click('#tab-teach');
    expect(await page.locator('.class-card').evaluateAll((els) => els.map((e) => `${(e as HTMLElement).dataset.class}:${(e as HTMLElement).dataset.count}`))).toEqual([
      'ants:15',
      'bees:15',
    ]);
    expect(await page.locator('#models li').count()).toBe(1);
    // Export downloads two files, the model and its resume data (runtime/kiosk/page/results.ts exportModel);
    // Chromium may report them in either order (a clean-clone CI run saw the resume data first), so wait for each by name
    const byName = (name: string) => page.waitForEvent('download', { predicate: (d) => d.suggestedFilename() === name, timeout: 30_000 });
    const [download, resume] = await Promise.all([
      byName('ants-bees.onnx'),
      byName('ants-bees.resume.bin'),
      page.locator('#models li button', { hasText: 'Export' }).click(),
    ]);
    const resumeFile = path.join(work, 'ants-bees.resume.bin');
    await resume.saveAs(resumeFile);
    expect([MAGIC, MAGIC_V3]).toContain(readFileSync(resumeFile).subarray(0, MAGIC.length).toString('latin1'));
    const file = path.join(work, 'ants-bees.onnx');
    await download.saveAs(file);
    const bee = pick(shared('datasets', 'hymenoptera', 'val', 'bees'), 1, 1)[0]!;
    const r = await runCli(['classify', '--model', file, '--json', '--top', '2', bee]);
    expect(r.stderr).not.toContain('has no registry entry');
    expect(r.code).toBe(0);
    const [row] = jsonLines<{ top: { label: string; score: number }[] }>(r.stdout);
    expect(row!.top.map((t) => t.label)).toEqual(['bees', 'ants']);
    // the model taught in the page, on every held-out photo
    const ev = await runCli(['eval', shared('datasets', 'hymenoptera', 'val'), '--model', file, '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const report = JSON.parse(ev.stdout) as { accuracy: number; images: number };
    console.log(`kiosk teach: exported model on hymenoptera/val: accuracy ${report.accuracy.toFixed(3)} on ${report.images} photos`);
    expect(report.images).toBe(153);
    expect(report.accuracy).toBeGreaterThanOrEqual(HELD_OUT_ACCURACY_FLOOR);

    // importing it back adds a saved model and switches the live view to it
    await page.locator('#import-model').setInputFiles(file);
    await page.waitForFunction(() => document.querySelectorAll('#models li').length === 2);
    await page.waitForFunction(() => document.querySelector('#model-name')?.textContent === 'ants-bees');
    // the status line is written once the live view has switched, a moment after the model name
    await page.waitForFunction(() => document.querySelector('#train-status')?.textContent?.startsWith('imported') === true);
    expect(await text('#train-status')).toBe('imported ants-bees.onnx: 2 classes (ants, bees)');
    // a valid ONNX file without edgetune's metadata is refused with the reason
    const plain = path.join(work, 'digits.onnx');
    copyFileSync(shared('models', 'mnist_winml.onnx'), plain);
    await page.locator('#import-model').setInputFiles(plain);
    await page.waitForFunction(() => !document.querySelector<HTMLElement>('#error')!.hidden);
    expect(await text('#error')).toBe('digits.onnx: no "edgetune.model" metadata (labels and preprocessing); export models with edgetune finetune or this kiosk');
    expect(await page.locator('#models li').count()).toBe(2);
  });

  step('records samples from the camera while the button is held, and deletes a class', async () => {
    await page.fill('#class-name', 'road');
    await page.click('#add-class');
    const card = page.locator('.class-card[data-class="road"]');
    await card.waitFor();
    expect(await card.getAttribute('data-count')).toBe('0');
    const button = card.locator('button.record');
    await button.dispatchEvent('pointerdown', { pointerId: 1, button: 0 });
    // 3 samples or more: the count read as a number (a textual '· 3' prefix missed a count that went 2 → 4
    // between two looks of a slow test process, and matched again only at 30)
    await page.waitForFunction(() => Number(/^● REC road · (\d+)$/.exec(document.querySelector('#rec-indicator')?.textContent ?? '')?.[1] ?? 0) >= 3);
    await button.dispatchEvent('pointerup', { pointerId: 1, button: 0 });
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('.class-card[data-class="road"]')?.dataset.count) >= 3);
    expect(await page.locator('#rec-indicator').isHidden()).toBe(true);
    // the class list is redrawn (with the new thumbnails) after the samples are stored: wait for it
    await page.waitForFunction(() => document.querySelectorAll('.class-card[data-class="road"] .thumbs img').length >= 3);
    page.once('dialog', (d) => void d.accept());
    await card.locator('button.delete').click();
    await card.waitFor({ state: 'detached' });
    expect(await page.locator('.class-card').count()).toBe(2);
  });

  step('can cancel training', async () => {
    await page.click('#train');
    await page.locator('#train-cancel').click();
    await page.waitForFunction(() => document.body.dataset.training === 'cancelled', null, { timeout: 60_000 });
    expect(await text('#train-status')).toBe('training cancelled');
    expect(await page.locator('#train-cancel').isHidden()).toBe(true);
    expect(await page.locator('#models li').count()).toBe(2);
  });

  step('refuses to unfreeze the int8 backbone it serves, naming the fp32 twin, before any embedding work', async () => {
    await page.selectOption('#head-kind', 'linear');
    await page.selectOption('#unfreeze', '1');
    expect(await trainInKiosk(page, 60_000)).toBe('failed');
    expect(await text('#train-status')).toBe(
      "training failed: --unfreeze trains the backbone's float weights, and mobilenetv2-int8 is int8: use its fp32 twin (e.g. --model mobilenetv2-fp32 for mobilenetv2-int8), then --int8 to quantize the result",
    );
    await page.selectOption('#unfreeze', '0');
  });

  step('trains a few-shot prototype head without augmentation', async () => {
    await page.selectOption('#head-kind', 'prototype');
    await page.selectOption('#augment', 'none');
    await page.selectOption('#val-split', '0.25');
    expect(await trainInKiosk(page, 120_000)).toBe('done');
    expect(await text('#acc-detail')).toMatch(/^8 validation \/ 22 training images · training accuracy \d+\.\d% · prototype head · \d+\.\d s$/);
    const acc = Number(await page.locator('#val-acc').getAttribute('data-value'));
    console.log(`kiosk teach (prototype, no augmentation): validation accuracy ${acc}`);
    // the page says how few images the figure stands on, with its 95% Wilson interval (core/stats.ts)
    const correct = Math.round(acc * 8);
    expect(`${await text('#val-acc')} ${await text('#val-ci')}`).toBe(accuracyText(correct, 8));
    expect(await text('#val-ci')).toMatch(/^of 8 \(95% interval \d+–\d+%\)$/);
    expect(acc).toBeGreaterThanOrEqual(PROTOTYPE_ACCURACY_FLOOR);
    expect(await page.locator('#models li').count()).toBe(3);
    expect(pageErrors).toEqual([]);
  });
});
