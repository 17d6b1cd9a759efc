// Teaching a running `edgetune watch --serve --teach` over HTTP (runtime/stream/teach.ts): a base model
// finetuned on three tf_flowers-dev classes (daisy from 30 of its photos, dandelion, roses) serves a live
// test pattern; a fourth class (sunflowers) is taught from its 40 training photos over POST
// /teach/examples, and daisy gets its other 10 photos as more examples of an old class; live frames are
// captured and deleted again, POST /teach/train retrains through finetune() on a worker thread (frames
// keep flowing meanwhile: a total stall is caught here, a stutter by npm run bench:teach; 409 for a second training) and swaps the model in, and the swapped model is
// measured on the held-out validation photos (20 per class, never uploaded): the new class, the old
// classes, and a far-unknown class (cats and dogs). Hard frames and the unknown rate come from the live
// pattern. The kiosk page (/kiosk/) teaches through the same API in Chromium. Ctrl-C (SIGINT) during a
// training stops the watch with nothing written; a watch killed mid-training leaves the serving model
// and the examples as they were.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../../runtime/classify/classifier.js';
import { toTensor } from '../../runtime/image/preprocess.js';
import { finetune, reportPaths, type FinetuneReport } from '../../runtime/train/node/finetune.js';
import { lastTaught, oldClassAccuracy } from '../../runtime/stream/teach.js';
import { parseModelInfo, readMetadataProps } from '../../runtime/core/metadata.js';
import { repoRoot, runCli, shared, sharedDir, steps, tempDir } from '../helpers.js';
import { launchChromium } from './kiosk-helpers.js';

const OLD = ['daisy', 'dandelion', 'roses'];
/** daisy's training photos the base is trained on; the other 10 are taught over HTTP as more examples of an old class. */
const DAISY_BASE = 30;
const NEW = 'sunflowers';
const flowers = (split: string, label: string) => readdirSync(shared('datasets', 'tf_flowers-dev', split, label)).sort().map((f) => shared('datasets', 'tf_flowers-dev', split, label, f));
const TOKEN = 'teach-test-token';
const auth = { Authorization: `Bearer ${TOKEN}` };

interface Watch {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startWatch(model: string, dir: string): Promise<Watch> {
  const cli = path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js');
  // --threshold 0.99: the 3-flower head rarely gives a synthetic pattern 99%, so its frames show "unknown" (hard frames)
  const child = spawn(process.execPath, [cli, 'watch', 'test:?rate=5', '--model', model, '--serve', '127.0.0.1:0', '--teach', dir, '--keep-hard', '3', '--teach-interval', '200ms', '--threshold', '0.99', '--quiet', '--threads', '1', '--retries', 'inf'], {
    // a cache of its own: the examples are embedded afresh, so a training lasts long enough to be killed
    env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models'), EDGETUNE_TOKEN: TOKEN, EDGETUNE_CACHE: tempDir('edgetune-teach-cache-') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return new Promise<Watch>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "serving" line: ${stderr}`)), 90_000);
    child.once('close', () => reject(new Error(`watch exited: ${stderr}`)));
    child.stderr!.on('data', () => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1]!, stderr: () => stderr, exited });
      }
    });
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('watch --teach: teaching a running stream over HTTP', () => {
  const work = tempDir('edgetune-teach-');
  const base = path.join(work, 'flowers3.onnx');
  const dir = path.join(work, 'teach');
  let baseReport: FinetuneReport;
  let w: Watch;
  // the tests share one running watch and its teach folder: each step builds on the examples, models
  // and process the steps before it left (the refusals test builds on none)
  const { step, needs } = steps();

  beforeAll(async () => {
    // validation: the first 10 val photos of each class; the other 10 stay held out for the measurement
    const list = (split: string, pick: (f: string[]) => string[]) => OLD.flatMap((label) => pick(flowers(split, label)).map((file) => ({ file, label })));
    const train = OLD.flatMap((label) => flowers('train', label).slice(0, label === 'daisy' ? DAISY_BASE : undefined).map((file) => ({ file, label })));
    baseReport = await finetune(train, { out: base, val: list('val', (f) => f.slice(0, 10)) });
    w = await startWatch(base, dir);
  });
  afterAll(async () => {
    if (w && w.child.exitCode === null) {
      w.child.kill('SIGTERM');
      await w.exited;
    }
  });

  step('takes examples, trains a new class, swaps it in, keeps the old classes', async () => {
    const u = (p: string) => new URL(p, w.url);
    expect(await (await fetch(u('/teach'))).json()).toMatchObject({ labels: [], base: OLD, training: false });
    // every write needs the token
    const anon = await fetch(u(`/teach/examples?label=${NEW}`), { method: 'POST', body: readFileSync(flowers('train', NEW)[0]!) });
    expect(anon.status).toBe(401);
    // a foreign Host is refused (DNS rebinding), for reads and writes alike
    const foreign = await new Promise<number>((resolve, reject) => {
      const rq = request(u('/teach'), { headers: { Host: 'evil.example' } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      rq.on('error', reject);
      rq.end();
    });
    expect(foreign).toBe(421);
    // bad bodies and labels are refused with the reason, and nothing is stored
    const text = await fetch(u(`/teach/examples?label=${NEW}`), { method: 'POST', headers: auth, body: 'not an image' });
    expect(text.status).toBe(422);
    expect((await text.json()).error).toBe(`example for "${NEW}": expected a JPEG or PNG body, got 12 bytes of no known image format`);
    const cut = readFileSync(flowers('train', NEW)[0]!).subarray(0, 2000);
    const truncated = await fetch(u(`/teach/examples?label=${NEW}`), { method: 'POST', headers: auth, body: cut });
    expect(truncated.status).toBe(422);
    expect((await truncated.json()).error).toMatch(/^example for "sunflowers": /);
    for (const label of ['..%2Fmodels', '..', '.']) {
      const sneaky = await fetch(u(`/teach/examples?label=${label}`), { method: 'POST', headers: auth, body: readFileSync(flowers('train', NEW)[0]!) });
      expect([label, sneaky.status]).toEqual([label, 400]);
    }
    const big = await fetch(u(`/teach/examples?label=${NEW}`), { method: 'POST', headers: auth, body: new Uint8Array(17 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect(existsSync(path.join(dir, 'examples', NEW))).toBe(false);

    // the 40 training photos of the new class
    const photos = flowers('train', NEW);
    expect(photos).toHaveLength(40);
    for (const [i, f] of photos.entries()) {
      const r = await fetch(u(`/teach/examples?label=${NEW}`), { method: 'POST', headers: { ...auth, 'Content-Type': 'image/jpeg' }, body: readFileSync(f) });
      expect(r.status).toBe(201);
      expect(await r.json()).toMatchObject({ label: NEW, count: i + 1 });
    }
    // more examples of an old class: daisy's 10 training photos the base never saw
    for (const f of flowers('train', 'daisy').slice(DAISY_BASE)) {
      const r = await fetch(u('/teach/examples?label=daisy'), { method: 'POST', headers: auth, body: readFileSync(f) });
      expect(r.status).toBe(201);
    }
    // live frames: two captured under a label, then deleted again one by one
    const cap = await fetch(u('/teach/examples?label=pattern&frames=2'), { method: 'POST', headers: auth });
    expect(cap.status).toBe(201);
    expect(await cap.json()).toEqual({ label: 'pattern', count: 2, added: 2 });
    const listed = (await (await fetch(u('/teach'))).json()) as { labels: { label: string; count: number; files: string[]; new: boolean }[] };
    expect(listed.labels.map((l) => [l.label, l.count, l.new])).toEqual([['daisy', 10, false], ['pattern', 2, true], [NEW, 40, true]]);
    for (const f of listed.labels[1]!.files) {
      const del = await fetch(u(`/teach/examples/pattern/${f}`), { method: 'DELETE', headers: auth });
      expect(del.status).toBe(200);
    }
    expect((await fetch(u('/teach/examples/pattern/0000000000000000.jpg'), { method: 'DELETE', headers: auth })).status).toBe(404);
    expect(((await (await fetch(u('/teach'))).json()) as typeof listed).labels.map((l) => l.label)).toEqual(['daisy', NEW]);
    expect(readdirSync(path.join(dir, 'examples', NEW))).toHaveLength(40);

    // with no tolerance on the old classes the new model is refused (measured: it gives 2 of the 30 old
    // validation photos to sunflowers) and the base keeps serving
    const strict = await fetch(u('/teach/train?tolerance=0'), { method: 'POST', headers: auth });
    const refused = (await strict.json()) as { error: string };
    expect(strict.status, JSON.stringify(refused)).toBe(422);
    const servingOld = oldClassAccuracy(baseReport, OLD).accuracy!;
    expect(refused.error).toMatch(new RegExp(`^the new model is worse on the old classes: [\\d.]+% of their 30 validation images against ${(servingOld * 100).toFixed(1).replace('.', '\\.')}% for the serving model, more than the tolerance of 0\\.0 points \\(the serving model keeps serving; teach-.*\\.onnx stays in .* for inspection\\)$`));
    expect(await (await fetch(u('/metrics'))).text()).toContain(`sha256="${sha256(base)}"`);
    expect((await fetch(u('/teach/train?tolerance=2'), { method: 'POST', headers: auth })).status).toBe(400);

    // train; a second training meanwhile is refused with 409
    const training = fetch(u('/teach/train'), { method: 'POST', headers: auth });
    const running = await until('the training to start', async () => {
      const t = (await (await fetch(u('/teach'))).json()) as { training: boolean; progress: { stage: string } | null };
      return t.training ? t : undefined;
    });
    expect(['start', 'embed', 'epoch']).toContain(running.progress!.stage);
    // the stream keeps classifying frames while it trains: past the embedding, two readings of /healthz 3
    // frames apart, with GET /teach saying the training still runs after the second. This catches a stream
    // stalled for the whole training, not a stutter: this small training passed here on the stream's own
    // thread too, before the worker came in. The worker thread is measured by npm run bench:teach instead
    // (README, "Teaching a running stream"): largest gap between frames 213 ms on the worker, 11.8 s on the stream's thread.
    await until('the training past its embedding', async () => (((await (await fetch(u('/teach'))).json()) as { progress: { stage: string } | null }).progress?.stage === 'epoch' ? true : undefined));
    const health = async () => ((await (await fetch(u('/healthz'))).json()) as { processed: number }).processed;
    const p0 = await health();
    await until('3 frames classified during the training', async () => ((await health()) >= p0 + 3 ? true : undefined));
    const still = (await (await fetch(u('/teach'))).json()) as { training: boolean; progress: { stage: string; seconds: number } | null };
    expect(still.training).toBe(true);
    // finetune() reports nothing after its epochs until it is done: a running training past its embedding is in 'epoch'
    expect(still.progress!.stage).toBe('epoch');
    const second = await fetch(u('/teach/train'), { method: 'POST', headers: auth });
    expect(second.status).toBe(409);
    expect((await second.json()).error).toBe('a training is running; try again when it is done (GET /teach says)');
    const res = await training;
    const body = (await res.json()) as { path: string; sha256: string; labels: string[]; accuracy: number; seconds: number; oldClasses: { accuracy: number; serving: number; images: number }; examples: { label: string; count: number; new: boolean }[] };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.labels).toEqual([...OLD, NEW]);
    expect(path.dirname(body.path)).toBe(path.join(dir, 'models'));
    expect(body.sha256).toBe(sha256(body.path));
    expect(body.seconds).toBeGreaterThan(0);
    // the old classes are scored on the base's own 30 validation photos (kept in its resume data)
    expect(body.oldClasses.images).toBe(30);
    // the old class's extra examples were trained (not just stored): the report counts them
    expect(body.examples).toEqual([{ label: 'daisy', count: 10, new: false }, { label: NEW, count: 40, new: true }]);
    const report = JSON.parse(readFileSync(reportPaths(body.path).json, 'utf8')) as FinetuneReport;
    expect(baseReport.counts.train.daisy).toBe(DAISY_BASE);
    expect(report.counts.train.daisy).toBe(40);
    expect(report.examples).toEqual({ daisy: 10 });
    // the retrained model keeps the base's multi-layer open-set score: the taps' rows of the base's images
    // come from its resume data (version 3), the taught images' from the same backbone pass as their embeddings
    const cardOf = (file: string) => parseModelInfo(readMetadataProps(new Uint8Array(readFileSync(file))))!.openSet;
    expect(cardOf(base)?.layers).toEqual(['603_quantized', '612_quantized']);
    expect(cardOf(body.path)?.layers).toEqual(['603_quantized', '612_quantized']);
    console.log(`teach: trained in ${body.seconds}s, validation accuracy ${body.accuracy}, old classes ${body.oldClasses.accuracy} (serving ${body.oldClasses.serving})`);

    // the stream now runs the new model: /metrics names its file's sha256
    await until('the swapped model in /metrics', async () => ((await (await fetch(u('/metrics'))).text()).includes(`sha256="${body.sha256}"`) ? true : undefined));
    // served under the name the watch started with (the base's file name), as version 2 (Triton: a new
    // version per model); was /v2/models/teach-<time> with /v2/models/flowers3 a 404
    const file = path.basename(body.path);
    expect((body as unknown as { served: unknown }).served).toEqual({ name: 'flowers3', version: '2' });
    expect(((await (await fetch(u('/teach'))).json()) as { last: { served: unknown } }).last.served).toEqual({ name: 'flowers3', version: '2' });
    const versions = async () => ((await (await fetch(u('/v2/models/flowers3'))).json()) as { versions: string[] }).versions;
    expect(await versions()).toEqual(['2']);
    expect(await (await fetch(u('/metrics'))).text()).toContain(`edgetune_model_info{model="flowers3",version="2",file="${file}",sha256="${body.sha256}"`);
    const old = await fetch(u('/v2/models/flowers3/versions/1/ready'));
    expect([old.status, await old.json()]).toEqual([404, { error: 'model "flowers3" has no version "1" (versions: "2")' }]);
    expect((await fetch(u(`/v2/models/${file.replace(/\.onnx$/, '')}`))).status).toBe(404);
    // POST /model: the base again (version 3), then the taught model again (version 4: each swap is a new version)
    for (const [model, version, labels] of [[base, '3', 3], [body.path, '4', 4]] as const) {
      const swap = await fetch(u('/model'), { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ model }) });
      expect(swap.status).toBe(200);
      expect(await swap.json()).toMatchObject({ model: path.basename(model), name: 'flowers3', version });
      expect(await versions()).toEqual([version]);
      const meta = (await (await fetch(u(`/v2/models/flowers3/versions/${version}`))).json()) as { outputs: { shape: number[] }[] };
      expect(meta.outputs[0]!.shape.at(-1)).toBe(labels);
      expect(await (await fetch(u('/metrics'))).text()).toContain(`edgetune_model_info{model="flowers3",version="${version}",file="${path.basename(model)}",sha256="${sha256(model)}"`);
    }
    // inference through the stable name answers with the version serving; our own remote client
    // (watch/classify --model http://…/v2/models/flowers3) keeps the one URL across the swaps
    const local = await loadClassifier(body.path, { topK: 1 });
    const remote = await loadClassifier(`${w.url}v2/models/flowers3`, { topK: 1 });
    try {
      const photo = flowers('val', NEW)[0]!;
      const t = toTensor([await local.decode(photo)], local.spec);
      const inferReq = { inputs: [{ name: local.inputName, shape: [...t.dims], datatype: 'FP32', data: Array.from(t.data as Float32Array) }], outputs: [{ name: local.outputName, parameters: { classification: 1 } }] };
      const inferred = (await (await fetch(u('/v2/models/flowers3/infer'), { method: 'POST', body: JSON.stringify(inferReq) })).json()) as { model_name: string; model_version: string; outputs: { data: string[] }[] };
      expect([inferred.model_name, inferred.model_version]).toEqual(['flowers3', '4']);
      const expected = (await local.classify(photo)).top[0]!.label;
      expect(inferred.outputs[0]!.data[0]).toMatch(new RegExp(`:${expected}$`));
      expect((await remote.classify(photo)).top[0]!.label).toBe(expected);
    } finally {
      await local.dispose();
      await remote.dispose();
    }

    // held-out photos (tf_flowers-dev/val, 20 per class, never uploaded) through the served file
    const clf = await loadClassifier(body.path, { topK: 1 });
    const baseClf = await loadClassifier(base, { topK: 1 });
    try {
      // held out: all 20 val photos of the new class, the last 10 of each old class (the first 10 validated the base)
      const acc = async (c: typeof clf, label: string) => {
        const files = label === NEW ? flowers('val', label) : flowers('val', label).slice(10);
        let right = 0;
        for (const f of files) if ((await c.classify(f)).top[0]!.label === label) right++;
        return right / files.length;
      };
      const taught = await acc(clf, NEW);
      let oldNew = 0;
      let oldBase = 0;
      for (const l of OLD) {
        oldNew += (await acc(clf, l)) / OLD.length;
        oldBase += (await acc(baseClf, l)) / OLD.length;
      }
      console.log(`teach: held-out ${NEW} ${taught}, old classes ${oldNew.toFixed(3)} (base ${oldBase.toFixed(3)}; base report ${baseReport.accuracy})`);
      // the bar: a class taught from 40 photos reaches ≥ 85% on held-out photos (measured 20/20)
      expect(taught).toBeGreaterThanOrEqual(0.85);
      // without losing the old classes: measured 0.900 on their 30 held-out photos against the base's
      // 0.933 (one photo went to sunflowers); the floor allows one photo more
      expect(oldNew).toBeGreaterThanOrEqual(oldBase - 2 / 30 - 1e-9);
    } finally {
      await clf.dispose();
      await baseClf.dispose();
    }

    // hard frames of the live pattern (below --threshold 0.99), at most --keep-hard 3, with scores
    const hard = await until('hard frames', async () => {
      const h = (await (await fetch(u('/teach/hard'))).json()) as { keep: number; frames: { file: string; unknown: boolean; smoothed: { label: string; score: number }; top: { label: string; score: number }[] }[] };
      return h.frames.length >= 2 ? h : undefined;
    });
    expect(hard.keep).toBe(3);
    expect(hard.frames.length).toBeLessThanOrEqual(3);
    expect(hard.frames[0]!.unknown).toBe(true);
    expect(hard.frames[0]!.smoothed.label).toBe('unknown');
    expect(hard.frames[0]!.smoothed.score).toBeLessThan(0.99);
    // the frame's own top-k: every class of the 3-class base or the 4-class taught model
    expect([3, 4]).toContain(hard.frames[0]!.top.length);
    // a listed frame served as a JPEG: the server keeps only the newest 3, one every 200 ms, so a frame listed a
    // moment ago may be gone (404) by the time a slow client asks for it: then the newest of a fresh listing
    const jpg = await until('a listed hard frame served', async () => {
      const newest = ((await (await fetch(u('/teach/hard'))).json()) as typeof hard).frames[0]!.file;
      const r = await fetch(u(`/teach/hard/${newest}`));
      if (r.status === 200) return r;
      expect(r.status).toBe(404);
      return undefined;
    });
    expect(jpg.headers.get('content-type')).toBe('image/jpeg');
    const metrics = await (await fetch(u('/metrics'))).text();
    expect(metrics).toMatch(/^edgetune_unknown_rate\{window="60s"\} (0\.\d+|1)$/m);
    expect(metrics).toMatch(/^edgetune_teach_trainings_total 1$/m);
    // the teach series pass promtool's parser and naming lint (Debian's prometheus package; fails without it)
    const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });

  needs('rejects a far-unknown class (cats and dogs) with the taught model', async () => {
    // Depends on part 1 of issue 19 (the open-set calibration finetune writes into every model: the
    // classifier's result says `unknown`); without it this fails.
    const t = (await (await fetch(new URL('/teach', w.url))).json()) as { last: { path: string } | null };
    expect(t.last).not.toBeNull();
    const clf = await loadClassifier(t.last!.path, { topK: 1 });
    try {
      let rejected = 0;
      let n = 0;
      for (const label of ['cats', 'dogs']) {
        for (const f of readdirSync(shared('datasets', 'cats_dogs-dev', 'val', label))) {
          const r = (await clf.classify(shared('datasets', 'cats_dogs-dev', 'val', label, f))) as { unknown?: boolean };
          n++;
          if (r.unknown === true) rejected++;
        }
      }
      console.log(`teach: far unknown (cats_dogs-dev/val) rejected ${rejected}/${n}`);
      // the bar: ≥ 80% of far unknowns rejected at the model's own threshold (measured: 39/40 in three runs)
      expect(rejected / n).toBeGreaterThanOrEqual(0.8);
    } finally {
      await clf.dispose();
    }
  });

  needs('refuses a label that differs from a class only in case, malformed escapes, bad numbers and wrong methods with the reason', async () => {
    const u = (p: string) => new URL(p, w.url);
    const answer = async (r: Response) => [r.status, await r.json()];
    // "Daisy" beside the model's "daisy": was a new class "Daisy" (201) that took daisy's photos
    const daisy = flowers('train', 'daisy')[0]!;
    expect(await answer(await fetch(u('/teach/examples?label=Daisy'), { method: 'POST', headers: auth, body: readFileSync(daisy) }))).toEqual([
      400,
      { error: 'label "Daisy" differs from the class "daisy" only in case or Unicode form: teach "daisy" (one folder on a case-insensitive file system; a new class otherwise)' },
    ]);
    expect(await answer(await fetch(u('/teach/examples?label=SUNFLOWERS&frames=1'), { method: 'POST', headers: auth }))).toEqual([
      400,
      { error: 'label "SUNFLOWERS" differs from the class "sunflowers" only in case or Unicode form: teach "sunflowers" (one folder on a case-insensitive file system; a new class otherwise)' },
    ]);
    // a photo already taught as sunflowers, posted as roses: was a second example of it (contradicting labels)
    const sun = readdirSync(path.join(dir, 'examples', NEW)).sort()[0]!;
    expect(await answer(await fetch(u('/teach/examples?label=roses'), { method: 'POST', headers: auth, body: readFileSync(path.join(dir, 'examples', NEW, sun)) }))).toEqual([
      409,
      { error: `this photo is already an example of "${NEW}" (${NEW}/${sun}); one photo teaches one class: DELETE /teach/examples/${NEW}/${sun} first to move it` },
    ]);
    // a malformed escape: was 500 "URI malformed"
    expect(await answer(await fetch(u('/teach/hard/%ZZ')))).toEqual([404, { error: 'no hard frame %ZZ' }]);
    expect(await answer(await fetch(u('/teach/examples/%ZZ/x.jpg'), { method: 'DELETE', headers: auth }))).toEqual([400, { error: 'Expected a label of 1 to 64 letters, digits, spaces or "_.+-" (starting with a letter or digit) but received "%ZZ"' }]);
    // the value as sent: was 'but received null' (the NaN it parsed to)
    expect(await answer(await fetch(u('/teach/examples?label=sunflowers&frames=1e2'), { method: 'POST', headers: auth }))).toEqual([400, { error: 'Expected integer between 1 and 200 for frames but received "1e2"' }]);
    expect(await answer(await fetch(u('/teach/train?tolerance=abc'), { method: 'POST', headers: auth }))).toEqual([400, { error: 'Expected number between 0 and 1 for tolerance but received "abc"' }]);
    expect(await answer(await fetch(u('/teach/train?tolerance=2'), { method: 'POST', headers: auth }))).toEqual([400, { error: 'Expected number between 0 and 1 for tolerance but received 2' }]);
    // a teach route with another method: was 404 "no such endpoint"
    const put = await fetch(u('/teach/train'), { method: 'PUT', headers: auth });
    expect([put.status, put.headers.get('allow'), await put.json()]).toEqual([405, 'POST', { error: 'method PUT not allowed on /teach/train (POST)' }]);
    const get = await fetch(u('/teach/examples'));
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    expect((await fetch(u('/teach/nothing'))).status).toBe(404);
    // HEAD answers as GET, without a body (was 404 for every teach route)
    const head = await fetch(u('/teach'), { method: 'HEAD' });
    expect([head.status, head.headers.get('content-type'), await head.text()]).toEqual([200, 'application/json; charset=utf-8', '']);
    expect((await fetch(u('/teach/hard'), { method: 'HEAD' })).status).toBe(200);
  });

  step("the watch page's teach panel: live frames under a label, an example deleted, hard frames shown", async () => {
    const ctx = await launchChromium(tempDir('edgetune-teach-chromium-'));
    try {
      const page = await ctx.newPage();
      // the page's clock is paused: its 10 s refresh runs only where this test fires it (clock.runFor), at
      // the moments a slow machine could have fired it
      const t0 = Date.now();
      await page.clock.install({ time: t0 });
      await page.clock.pauseAt(t0 + 1000);
      await page.goto(w.url);
      await page.fill('#t-token', TOKEN);
      await page.dispatchEvent('#t-token', 'change');
      await page.fill('#t-label', 'pattern');
      await page.click('#t-frames');
      await page.waitForFunction(() => document.getElementById('t-msg')!.textContent === '10 frames added to pattern', undefined, { timeout: 60_000 });
      await page.waitForFunction(() => document.getElementById('t-labels')!.textContent!.includes('pattern (10, new)'));
      await page.click('#t-labels details:has-text("pattern") summary');
      // the periodic refresh lands between opening the list and clicking in it: the list stays open
      const opened = await page.$('#t-labels details:has-text("pattern")');
      await page.clock.runFor(10_000);
      await page.waitForFunction((d) => !d!.isConnected, opened);
      await page.click('#t-labels details:has-text("pattern") button >> nth=0');
      await page.waitForFunction(() => document.getElementById('t-labels')!.textContent!.includes('pattern (9, new)'));
      expect(readdirSync(path.join(dir, 'examples', 'pattern'))).toHaveLength(9);
      // the hard frames of the pattern are shown with their top label and score
      expect(await page.locator('#t-hard img').count()).toBeGreaterThan(0);
      expect(await page.locator('#t-hard button').first().textContent()).toMatch(/^.+ \d+% → label$/);
      for (const f of readdirSync(path.join(dir, 'examples', 'pattern'))) {
        expect((await fetch(new URL(`/teach/examples/pattern/${f}`, w.url), { method: 'DELETE', headers: auth })).status).toBe(200);
      }
      expect(existsSync(path.join(dir, 'examples', 'pattern'))).toBe(false);
      // photos from the picker: it is cleared as soon as its files are read, while the uploads (held here) are
      // still under way, so picking the same photos again fires a change (Chromium fires none for a pick equal
      // to the files an input still holds); it used to be cleared only after the last upload
      let releaseUploads!: () => void;
      const uploadsHeld = new Promise<void>((r) => (releaseUploads = r));
      let uploads = 0;
      const examplesPost = (url: URL) => url.pathname === '/teach/examples';
      await page.route(examplesPost, async (route) => {
        uploads++;
        await uploadsHeld;
        await route.continue();
      });
      await page.setInputFiles('#t-files', flowers('train', 'tulips').slice(0, 2));
      await until('the first upload', async () => (uploads >= 1 ? true : undefined));
      const held = await page.evaluate(() => (document.getElementById('t-files') as HTMLInputElement).files!.length);
      releaseUploads();
      await page.waitForFunction(() => document.getElementById('t-msg')!.textContent === '2 photos added');
      await page.unrouteAll({ behavior: 'wait' });
      expect(held).toBe(0);
      expect(readdirSync(path.join(dir, 'examples', 'pattern'))).toHaveLength(2);
      for (const f of readdirSync(path.join(dir, 'examples', 'pattern'))) {
        expect((await fetch(new URL(`/teach/examples/pattern/${f}`, w.url), { method: 'DELETE', headers: auth })).status).toBe(200);
      }
      // train from the page: it says what now serves. A periodic refresh during the training has its answer
      // (training: true) held until the page has said what serves (two requests answered out of order): it
      // must not say "training…" over it
      let heldTraining = false;
      const teachState = (url: URL) => url.pathname === '/teach';
      await page.route(teachState, async (route) => {
        const answer = await route.fetch();
        if (((await answer.json()) as { training: boolean }).training) {
          heldTraining = true;
          await page.waitForFunction(() => document.getElementById('t-msg')!.textContent!.startsWith('serving '), undefined, { timeout: 170_000 });
        }
        await route.fulfill({ response: answer });
      });
      await page.click('#t-train');
      await until('the training to start', async () => (((await (await fetch(new URL('/teach', w.url))).json()) as { training: boolean }).training ? true : undefined));
      await page.clock.runFor(10_000);
      await page.waitForFunction(() => document.getElementById('t-msg')!.textContent!.startsWith('serving '), undefined, { timeout: 170_000 });
      // every refresh answered (the held one too)
      await page.waitForSelector('#t-labels:not([aria-busy])', { state: 'attached' });
      await page.unrouteAll({ behavior: 'wait' });
      expect(heldTraining).toBe(true);
      expect(await page.textContent('#t-msg')).toMatch(/^serving daisy, dandelion, roses, sunflowers · validation \d+% · [\d.]+ s$/);
    } finally {
      await ctx.close();
    }
  });

  step('the kiosk page (/kiosk/) teaches through the API: page camera, photos, an example deleted, a hard frame labelled, training with progress', async () => {
    const u = (p: string) => new URL(p, w.url);
    // Chromium's own synthetic camera (no file): the page records from it
    const ctx = await launchChromium(tempDir('edgetune-teach-kiosk-'), ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);
    const count = async (label: string) => (((await (await fetch(u('/teach'))).json()) as { labels: { label: string; count: number }[] }).labels.find((l) => l.label === label)?.count ?? 0);
    try {
      const page = await ctx.newPage();
      await page.goto(new URL('/kiosk/', w.url).href);
      // the page found the teach API (GET /teach) and teaches through it, not in the page
      await page.waitForFunction(() => document.body.dataset.state === 'ready', undefined, { timeout: 120_000 });
      expect(await page.evaluate(() => document.body.dataset.teach)).toBe('server');
      await page.click('#tab-teach');
      expect(await page.isVisible('#view-teach-server')).toBe(true);
      expect(await page.isVisible('#view-teach')).toBe(false);
      // the model's classes and the taught ones, each with its server-side count
      await page.waitForSelector(`.class-card[data-class="${NEW}"]`);
      expect(await page.locator('#st-classes .class-card').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.class))).toEqual([...OLD, NEW]);
      expect(await page.getAttribute('.class-card[data-class="daisy"]', 'data-count')).toBe('10');
      expect(await page.getAttribute(`.class-card[data-class="${NEW}"]`, 'data-count')).toBe('40');

      // without the token a write is refused with the reason; with it, photos are added from the file picker
      await page.fill('#st-class-name', 'pattern');
      await page.click('#st-add-class');
      const card = page.locator('.class-card[data-class="pattern"]');
      // the page's refreshes (GET /teach) held back until both picks are done: the card is not redrawn in
      // between, so the second pick of the same photos lands on the same file input (CI once saw that:
      // Chromium fires no change for a pick equal to the files an input still holds)
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const teachState = (url: URL) => url.pathname === '/teach';
      await page.route(
        teachState,
        async (route) => {
          await held;
          await route.continue();
        },
      );
      await card.locator('input.upload').setInputFiles(flowers('train', 'tulips').slice(0, 2));
      await page.waitForFunction(() => document.getElementById('st-status')!.textContent!.startsWith('pattern: added 0 photos; skipped 2'));
      expect(await page.textContent('#st-status')).toContain('type the token (EDGETUNE_TOKEN) first');
      await page.fill('#st-token', TOKEN);
      await page.dispatchEvent('#st-token', 'change');
      await card.locator('input.upload').setInputFiles(flowers('train', 'tulips').slice(0, 2));
      await page.waitForFunction(() => document.getElementById('st-status')!.textContent === 'pattern: added 2 photos');
      release();
      await page.unrouteAll({ behavior: 'wait' });
      expect(await count('pattern')).toBe(2);
      // hold to record: this page's camera, each frame a POST
      await card.locator('button.record').dispatchEvent('pointerdown');
      await until('3 recorded frames on the server', async () => ((await count('pattern')) >= 5 ? true : undefined));
      // the refresh that follows the recording (GET /teach) is held until the card's example list is open:
      // the card is redrawn after the operator opened the list (a slow refresh), and the list stays open
      let releaseList!: () => void;
      const listHeld = new Promise<void>((r) => (releaseList = r));
      await page.route(teachState, async (route) => {
        await listHeld;
        await route.continue();
      });
      await card.locator('button.record').dispatchEvent('pointerup');
      await page.waitForFunction(() => document.body.dataset.recording === undefined);
      const recorded = await count('pattern');
      expect(await page.textContent('#st-status')).toBe(`recording pattern: ${recorded - 2} added (${recorded})`);
      // one example deleted from its card (the card drawn before the recording lists the 2 photos)
      await page.waitForSelector('.class-card[data-class="pattern"] button.delete-example', { state: 'attached' });
      await page.click('.class-card[data-class="pattern"] summary');
      releaseList();
      await page.waitForFunction((n) => document.querySelectorAll('.class-card[data-class="pattern"] button.delete-example').length === n, recorded);
      await page.unrouteAll({ behavior: 'wait' });
      await page.click('.class-card[data-class="pattern"] button.delete-example >> nth=0');
      await until('the example deleted', async () => ((await count('pattern')) === recorded - 1 ? true : undefined));
      // the page has its answer too (its status line is the next step's evidence)
      await page.waitForFunction(() => document.getElementById('st-status')!.textContent!.startsWith('deleted '));

      // a hard frame of the live pattern labelled into the examples
      // the panel is a snapshot taken at Refresh (the server keeps only the newest --keep-hard 3, one every 200 ms):
      // the frame chosen stays in place while other refreshes land, and is labelled after the server dropped it
      await page.click('#st-refresh');
      await page.waitForSelector('#st-hard:not([aria-busy]) figure.hard-frame');
      const shown = await page.locator('#st-hard figure.hard-frame').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.file!));
      const file = shown[0]!;
      const frame = page.locator(`#st-hard figure.hard-frame[data-file="${file}"]`);
      await page.selectOption(`#st-hard figure.hard-frame[data-file="${file}"] select`, 'pattern');
      // the server has dropped it by now (newer hard frames came): the page sends the JPEG it shows
      const listed = async () => ((await (await fetch(u('/teach/hard'))).json()) as { frames: { file: string }[] }).frames.map((f) => f.file);
      await until('the chosen frame dropped by the server', async () => (!(await listed()).includes(file) ? true : undefined));
      await frame.locator('button').click();
      // the page says so once its POST is answered (the server's count may be seen first)
      await page.waitForFunction(() => document.getElementById('st-status')!.textContent === 'hard frame added to pattern');
      expect(await count('pattern')).toBe(recorded);
      // labelled, it leaves the snapshot; the refresh after it keeps the other frames shown, in place
      await frame.waitFor({ state: 'detached' });
      expect(await page.locator('#st-hard figure.hard-frame').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.file!))).toEqual(shown.slice(1));

      // the pattern examples off again (the later tests count the labels), then train from the page
      for (const f of readdirSync(path.join(dir, 'examples', 'pattern'))) expect((await fetch(u(`/teach/examples/pattern/${f}`), { method: 'DELETE', headers: auth })).status).toBe(200);
      await page.click('#st-refresh');
      // every status line the page shows during the training, for its progress
      await page.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { seen: string[] }).seen = seen;
        new MutationObserver(() => seen.push(document.getElementById('st-status')!.textContent!)).observe(document.getElementById('st-status')!, { childList: true, characterData: true, subtree: true });
      });
      await page.evaluate(() => delete document.body.dataset.training);
      await page.click('#st-train');
      await page.waitForFunction(() => document.body.dataset.training === 'done' || document.body.dataset.training === 'failed', undefined, { timeout: 170_000 });
      const status = (await page.textContent('#st-status'))!;
      expect(status).toMatch(/^serving daisy, dandelion, roses, sunflowers · validation \d+% · old classes \d+% \(was \d+%\) · [\d.]+ s$/);
      const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
      console.log(`kiosk page: training status lines ${JSON.stringify(seen)}`);
      expect(seen.some((t) => /^training: (start|embed|epoch)/.test(t))).toBe(true);
      // the live view runs the model the server now serves
      const now = (await (await fetch(u('/teach'))).json()) as { last: { path: string } };
      await page.waitForFunction((name) => document.getElementById('model-name')!.textContent === name, path.basename(now.last.path));
    } finally {
      await ctx.close();
    }
  });

  it('refuses --teach without --serve, and a model without resume data, with the reason', async () => {
    const noServe = await runCli(['watch', 'test:', '--teach', tempDir()]);
    expect(noServe.code).toBe(2);
    expect(noServe.stderr).toContain('--teach needs --serve <host:port> (the teach API is served over HTTP)');
    const noResume = await runCli(['watch', 'test:', '--serve', '127.0.0.1:0', '--teach', tempDir(), '--model', 'mobilenetv2-int8']);
    expect(noResume.code).toBe(2);
    expect(noResume.stderr).toContain(`--teach retrains from the model's resume data: ${shared('models', 'mobilenetv2-12-int8.onnx')} has no mobilenetv2-12-int8.resume.bin beside it (serve a model exported by \`edgetune finetune\`)`);
  });

  step('Ctrl-C (SIGINT) during a training stops the watch with nothing of the training written', async () => {
    const u = (p: string) => new URL(p, w.url);
    const before = readdirSync(path.join(dir, 'models')).sort();
    // 40 photos never embedded by this watch's cache: the training is still embedding when it is stopped
    for (const f of readdirSync(shared('datasets', 'cats_dogs-dev', 'train', 'dogs'))) {
      const r = await fetch(u('/teach/examples?label=dogs'), { method: 'POST', headers: auth, body: readFileSync(shared('datasets', 'cats_dogs-dev', 'train', 'dogs', f)) });
      expect(r.status).toBe(201);
    }
    const answer = fetch(u('/teach/train'), { method: 'POST', headers: auth }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }));
    await until('the training to embed', async () => (((await (await fetch(u('/teach'))).json()) as { progress: { stage: string } | null }).progress?.stage === 'embed' ? true : undefined));
    w.child.kill('SIGINT');
    // the request is answered with the reason before the server closes, and the watch exits cleanly
    expect(await answer).toEqual({ status: 503, body: { error: 'teaching stopped: the server is shutting down (nothing of this training was written)' } });
    expect(await w.exited).toBe(0);
    expect(w.stderr()).toMatch(/stopped: \d+ frames/);
    // no new model, no temp left in the models folder
    expect(readdirSync(path.join(dir, 'models')).sort()).toEqual(before);
    w = await startWatch(base, dir);
  });

  step('a watch killed mid-training leaves the serving model and the examples intact, and serves the model taught last when started again', async () => {
    const u = (p: string) => new URL(p, w.url);
    // the model the last training swapped in (this watch, started again after the SIGINT above, serves it again)
    const taught = ((await (await fetch(u('/teach'))).json()) as { last: { path: string; labels: string[] } | null }).last;
    expect(taught?.labels).toContain(NEW);
    const before = readdirSync(path.join(dir, 'models')).filter((f) => !f.startsWith('.')).sort();
    // every model file (the base, which this watch serves, and each trained set) with its hash
    const files = [base, ...readdirSync(path.join(dir, 'models')).filter((f) => !f.startsWith('.')).map((f) => path.join(dir, 'models', f))];
    const hashes = files.map(sha256);
    for (const f of readdirSync(shared('datasets', 'cats_dogs-dev', 'train', 'cats')).slice(0, 10)) {
      const r = await fetch(u('/teach/examples?label=cats'), { method: 'POST', headers: auth, body: readFileSync(shared('datasets', 'cats_dogs-dev', 'train', 'cats', f)) });
      expect(r.status).toBe(201);
    }
    void fetch(u('/teach/train'), { method: 'POST', headers: auth }).catch(() => undefined);
    await until('the training to start', async () => (((await (await fetch(u('/teach'))).json()) as { training: boolean }).training ? true : undefined));
    w.child.kill('SIGKILL');
    await w.exited;
    expect(readdirSync(path.join(dir, 'models')).filter((f) => !f.startsWith('.')).sort()).toEqual(before);
    expect(files.map(sha256)).toEqual(hashes);
    expect(readdirSync(path.join(dir, 'examples', NEW))).toHaveLength(40);
    expect(readdirSync(path.join(dir, 'examples', 'cats'))).toHaveLength(10);
    // a watch started again on the same folder finds the examples as they were
    w = await startWatch(base, dir);
    const again = (await (await fetch(new URL('/teach', w.url))).json()) as { labels: { label: string; count: number }[]; training: boolean };
    expect(again.labels.map((l) => [l.label, l.count])).toEqual([['cats', 10], ['daisy', 10], ['dogs', 40], [NEW, 40]]);
    expect(again.training).toBe(false);
    // A kiosk restarted (a power cut) with its usual command serves what it was taught, not the untaught
    // base: before, it served the base (sunflowers unknown again) and GET /teach said last: null.
    const name = path.basename(taught!.path);
    expect(w.stderr()).toContain(`edgetune watch: teach: serving ${name} again, the model the last training taught from flowers3.onnx (${taught!.labels.join(', ')}; ${path.join(dir, 'serving.json')})`);
    expect(((await (await fetch(new URL('/teach', w.url))).json()) as { last: { path: string } | null; base: string[] }).last?.path).toBe(taught!.path);
    expect(((await (await fetch(new URL('/teach', w.url))).json()) as { base: string[] }).base).toEqual(OLD);
    // under the base's name (the one the watch is started with), version 1 of this run, the taught file apart
    expect(await (await fetch(new URL('/metrics', w.url))).text()).toContain(`edgetune_model_info{model="flowers3",version="1",file="${name}",sha256="${sha256(taught!.path)}"`);
    expect(((await (await fetch(new URL('/v2/models/flowers3', w.url))).json()) as { versions: string[] }).versions).toEqual(['1']);
    // taught from another base: the record does not apply, and says why
    const other = shared('models', 'mobilenetv2-12-int8.onnx');
    // the taught model given as --model itself: nothing to restore (was "taught from another base model than" itself)
    expect(await lastTaught(dir, taught!.path)).toBeUndefined();
    expect(await lastTaught(dir, other)).toEqual({ skipped: `${taught!.path} was taught from another base model than ${other} (sha256 ${sha256(base).slice(0, 12)}…, this one ${sha256(other).slice(0, 12)}…)` });
  });
});
