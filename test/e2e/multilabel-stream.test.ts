// A multilabel model (finetune --task multilabel) in the stream and the kiosk page: every label whose
// (smoothed) probability is above the threshold shows, by classify's rule (classify/postprocess.ts
// readOutput, MULTILABEL_THRESHOLD), in `watch`'s label lines and --json, in the SSE `prediction` events
// of its service, and in the kiosk page's top line; before, each showed only the single top label.
// Real photos of ../shared/datasets/tf_flowers-dev; the model is trained here on 8 per class.

import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../../devices/index.js';
import { loadClassifier } from '../../runtime/classify/classifier.js';
import { geometryOfClassifier, StreamPipeline } from '../../runtime/stream/pipeline.js';
import { startServer } from '../../runtime/stream/serve.js';
import { runCli, shared, tempDir } from '../helpers.js';
import { launchChromium, startKiosk } from './kiosk-helpers.js';

const work = tempDir('edgetune-multilabel-stream-');
const env = { EDGETUNE_CACHE: tempDir('edgetune-multilabel-stream-cache-') };
const flowers = (split: string, c: string) => shared('datasets', 'tf_flowers-dev', split, c);
const first = (split: string, c: string, n: number) => readdirSync(flowers(split, c)).sort().slice(0, n).map((f) => path.join(flowers(split, c), f));
const model = path.join(work, 'ml.onnx');
/** The frames, in order: two dandelions (measured: yellow and dandelion both above 0.5), then a daisy (daisy alone). */
const photos = [...first('val', 'dandelion', 2), first('val', 'daisy', 1)[0]!];
const frames = path.join(work, 'frames');
type Label = { index: number; label: string; score: number };
/** classify --json's `labels` of each photo: the rule the stream and the page must follow. */
let expected: Label[][];

beforeAll(async () => {
  // daisy → daisy; dandelion and sunflowers → themselves and yellow
  const rows = ['daisy', 'dandelion', 'sunflowers'].flatMap((c) => first('train', c, 8).map((f) => `${f},${c === 'daisy' ? c : `${c};yellow`}\n`));
  writeFileSync(path.join(work, 'ml.csv'), `file,labels\n${rows.join('')}`);
  const ft = await runCli(['finetune', 'ml.csv', '--task', 'multilabel', '--augment', 'none', '--out', model], { cwd: work, env });
  expect(ft.code, ft.stderr).toBe(0);
  mkdirSync(frames);
  photos.forEach((p, i) => symlinkSync(p, path.join(frames, `${i + 1}-${path.basename(p)}`)));
  const c = await runCli(['classify', ...photos, '--model', model, '--json'], { env });
  expect(c.code, c.stderr).toBe(0);
  expected = c.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { labels: Label[] }).labels);
  // the photos are what the test needs: two labels on, then another single one (measured: yellow 0.89 and
  // dandelion 0.87, yellow 0.93 and dandelion 0.83, daisy 0.88)
  expect(expected.map((ls) => ls.map((l) => l.label))).toEqual([['yellow', 'dandelion'], ['yellow', 'dandelion'], ['daisy']]);
}, 240_000);

/** `yellow (89%), dandelion (87%)`: classify's multilabel line at whole percent. */
const line = (labels: Label[]) => labels.map((l) => `${l.label} (${(l.score * 100).toFixed(0)}%)`).join(', ');

describe('a multilabel model in watch', () => {
  it('--json gives every label above 0.5 per frame, as classify; the label lines list them when the set changes', async () => {
    const args = ['watch', `dir://${frames}`, '--model', model, '--smooth', '0', '--as-fast-as-possible', '--max-frames', '3'];
    const j = await runCli([...args, '--json'], { env });
    expect(j.code, j.stderr).toBe(0);
    const results = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; smoothed: { label: string; labels?: Label[]; text?: string } });
    // before: smoothed was {label: "yellow", …} alone, no labels (dandelion, also on, was not said)
    expect(results.map((r) => r.smoothed.labels?.map((l) => l.label))).toEqual(expected.map((ls) => ls.map((l) => l.label)));
    // --smooth 0: the frame's own probabilities; frames are decoded on another path than classify's (4 decimals agree, measured)
    results.forEach((r, i) => r.smoothed.labels!.forEach((l, k) => expect(l.score).toBeCloseTo(expected[i]![k]!.score, 2)));
    for (const r of results) expect(r.smoothed.text).toBe(line(r.smoothed.labels!));

    const t = await runCli(args, { env });
    expect(t.code, t.stderr).toBe(0);
    // before: "frame 0: yellow (89%)" and "frame 2: daisy (88%)"
    expect(t.stdout.trim().split('\n').map((l) => l.replace(/^\S+ /, ''))).toEqual([`frame 0: ${line(results[0]!.smoothed.labels!)}`, `frame 2: ${line(results[2]!.smoothed.labels!)}`]);
  });

  it("the service's SSE prediction events carry the labels", async () => {
    const clf = await loadClassifier(model, { threads: 1 });
    const source = await createSource(`dir://${frames}`, { ...geometryOfClassifier(clf), realtime: false });
    const pipeline = new StreamPipeline(source, clf, { smoothing: 0, maxFrames: 3 });
    const server = await startServer(pipeline, { port: 0 });
    try {
      const res = await fetch(new URL('/events', server.url));
      const reader = res.body!.getReader();
      const running = pipeline.run();
      let text = '';
      while (!/event: prediction\ndata: .*\n\n/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      await reader.cancel();
      await running;
      const event = JSON.parse(/event: prediction\ndata: (.*)\n\n/.exec(text)![1]!) as { seq: number; smoothed: { labels?: Label[]; text?: string } };
      // before: no labels in the event
      expect(event.smoothed.labels?.map((l) => l.label)).toEqual(expected[event.seq]!.map((l) => l.label));
      // the line the live page shows, made on the server (before: the page ran its own copy of multilabelText)
      expect(event.smoothed.text).toBe(line(event.smoothed.labels!));
    } finally {
      await server.close();
      await clf.dispose();
    }
  });
});

describe("a multilabel model on watch --serve's own live page", () => {
  it('the big label lists every label above 50%, in classify\'s words', async () => {
    const clf = await loadClassifier(model, { threads: 1 });
    const source = await createSource(`dir://${frames}`, { ...geometryOfClassifier(clf), realtime: false });
    const pipeline = new StreamPipeline(source, clf, { smoothing: 0, maxFrames: 1 });
    const server = await startServer(pipeline, { port: 0 });
    const ctx = await launchChromium(path.join(work, 'profile-live'));
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      await page.goto(server.url, { waitUntil: 'domcontentloaded' }); // the MJPEG preview never finishes loading
      // the page's EventSource is open before the one frame runs (a top-level const of the page's script)
      await page.waitForFunction(() => (globalThis as unknown as { eval: (s: string) => number }).eval('es.readyState') === 1);
      await pipeline.run();
      await page.waitForFunction(() => document.getElementById('label')?.textContent !== '…');
      // before: "yellow" (the top label alone) for the first dandelion
      expect(await page.locator('#label').textContent()).toMatch(new RegExp(`^${expected[0]!.map((l) => `${l.label} \\(\\d+%\\)`).join(', ')}$`));
    } finally {
      await ctx.close();
      await server.close();
      await clf.dispose();
    }
  }, 120_000);
});

describe('a multilabel model in the kiosk page', () => {
  it("a photo's top line lists every label above 50%, as classify does", async () => {
    const kiosk = await startKiosk(model);
    const ctx = await launchChromium(path.join(work, 'profile'));
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      await page.goto(`${kiosk.url}?ep=wasm&camera=off`);
      await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: 90_000 });
      expect(await page.evaluate(() => document.body.dataset.state)).toBe('ready');
      for (const [i, photo] of photos.entries()) {
        await page.locator('#photo-input').setInputFiles(photo);
        await page.waitForFunction((n) => document.querySelector('#top1')?.getAttribute('data-source') === n, path.basename(photo));
        const top1 = page.locator('#top1');
        // before: "yellow 89%" (the top label alone) for a dandelion
        // a JSON array (before: the names joined with ",", which a name may hold)
        expect(JSON.parse((await top1.getAttribute('data-labels'))!), path.basename(photo)).toEqual(expected[i]!.map((l) => l.label));
        // the page decodes and resizes with the canvas, not sharp: the same labels, percentages within a few points
        expect(await top1.textContent()).toMatch(new RegExp(`^${expected[i]!.map((l) => `${l.label} \\(\\d+%\\)`).join(', ')}$`));
      }
    } finally {
      await ctx.close();
      await kiosk.stop();
    }
  }, 180_000);
});
