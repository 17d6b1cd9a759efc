// Read and write only what the user named (issue 22, items 1-3, 6, 14), through the built CLI and the
// kiosk's library entry, on hostile cases built here from the real shared models:
//  - side files a model names (tfjs weight shards, Teachable Machine metadata.json, a card's label
//    file, ONNX external data) must resolve inside the model's folder (symbolic links resolved), be
//    regular files and be no larger than the model declares: `../../etc/passwd`, `/etc/passwd`, links
//    out of the folder, a FIFO, `/dev/zero` and an oversized shard are refused, naming the file;
//  - `--out` is never renamed over a FIFO, a device or a symbolic link, and never over an input
//    (import, card, quantize, finetune), while `finetune --resume m.onnx --out m.onnx` stays allowed;
//  - a read-only or full disk is named in words (EROFS, ENOSPC), found before any work, and a full
//    disk leaves no temp file behind (`capture`). These mount a tmpfs in a private mount namespace
//    (`unshare -rm`), which the CI machine allows; without it the test fails and says so.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { recoverSets } from '../../runtime/io/atomic.js';
import { kioskConfig, startKiosk } from '../../runtime/kiosk/server.js';
import { decodeModel, encodeModel } from '../../runtime/onnx/model.js';
import { jsonLines, repoRoot, runCli, shared, tempDir } from '../helpers.js';

const TWINS = shared('models', 'teachable-machine', 'twins-tfjs', 'model.json');
const SQUEEZE = shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx');
const MNIST = shared('models', 'mnist_winml.onnx');
const EXT = shared('faults', 'external-data', 'model_ext.onnx');
const DOG = shared('camera', 'winml_dog.jpg');
const cache = tempDir('edgetune-files-cache-');
const env = { EDGETUNE_CACHE: cache, EDGETUNE_OFFLINE: '1' };
const cli = (args: string[]) => runCli(args, { env });
const CLI = path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js');

/** A copy of the Teachable Machine tfjs export in a fresh folder, its model.json's manifest paths replaced by `paths`. */
function tfjsCopy(paths?: string[]): { dir: string; mj: string } {
  const dir = realpathSync(tempDir('edgetune-tfjs-'));
  const json = JSON.parse(readFileSync(TWINS, 'utf8')) as { weightsManifest: { paths: string[] }[] };
  if (paths) json.weightsManifest[0]!.paths = paths;
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  copyFileSync(path.join(path.dirname(TWINS), 'weights.bin'), path.join(dir, 'weights.bin'));
  copyFileSync(path.join(path.dirname(TWINS), 'metadata.json'), path.join(dir, 'metadata.json'));
  return { dir, mj: path.join(dir, 'model.json') };
}

/** Import, classify and the kiosk's config all refuse `mj` with `message`; nothing is written. */
async function refusedEverywhere(mj: string, message: string): Promise<void> {
  const out = path.join(path.dirname(mj), 'never.onnx');
  const r = await cli(['import', mj, '--out', out]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(message);
  expect(existsSync(out)).toBe(false);
  const c = await cli(['classify', DOG, '--model', mj, '--json']);
  expect(c.code).toBe(1);
  expect(c.stderr).toContain(message);
  await expect(withEnv(() => kioskConfig(mj))).rejects.toThrow(message);
}

async function withEnv<T>(f: () => Promise<T>): Promise<T> {
  const old = process.env.EDGETUNE_CACHE;
  process.env.EDGETUNE_CACHE = cache;
  try {
    return await f();
  } finally {
    if (old === undefined) delete process.env.EDGETUNE_CACHE;
    else process.env.EDGETUNE_CACHE = old;
  }
}

describe('side files a model names stay inside its folder, are regular and bounded', () => {
  it('the intact copy imports (the control for the cases below)', async () => {
    const { dir, mj } = tfjsCopy();
    const r = await cli(['import', mj, '--out', path.join(dir, 'ok.onnx')]);
    expect(r.code, r.stderr).toBe(0);
  });

  it.each([['../../../../../etc/passwd'], ['/etc/passwd']])('a tfjs weightsManifest path %s is refused by import, classify and the kiosk', async (p) => {
    const { dir, mj } = tfjsCopy([p]);
    await refusedEverywhere(mj, `${mj}: weights file "${p}" is outside the model's folder ${dir} (side files must be inside it)`);
  });

  it.each([['/etc/passwd'], ['/dev/zero']])('a weights file that is a symbolic link to %s is refused', async (target) => {
    const { dir, mj } = tfjsCopy(['w.bin']);
    symlinkSync(target, path.join(dir, 'w.bin'));
    await refusedEverywhere(mj, `${mj}: weights file "w.bin" is a symbolic link to ${target}, outside the model's folder ${dir} (side files must be inside it)`);
  });

  it('a weights file that is a FIFO inside the folder is refused without waiting on it', async () => {
    const { dir, mj } = tfjsCopy(['pipe.bin']);
    execFileSync('mkfifo', [path.join(dir, 'pipe.bin')]);
    await refusedEverywhere(mj, `${path.join(dir, 'pipe.bin')}: weights file is not a regular file (it is a FIFO (named pipe))`);
  });

  it('a weights file larger than its manifest declares is refused before it is read', async () => {
    const { dir, mj } = tfjsCopy(['big.bin']);
    // the manifest declares 2154032 bytes for the group (263 float32 weights): the real weights.bin's size
    writeFileSync(path.join(dir, 'big.bin'), Buffer.concat([readFileSync(path.join(dir, 'weights.bin')), Buffer.alloc(1 << 20)]));
    await refusedEverywhere(mj, `${path.join(dir, 'big.bin')}: weights file is ${2154032 + (1 << 20)} bytes, more than 2154032 (what its weightsManifest declares for the group)`);
  });

  it("Teachable Machine's metadata.json linked out of the folder is refused", async () => {
    const { dir, mj } = tfjsCopy();
    const meta = path.join(dir, 'metadata.json');
    execFileSync('rm', [meta]);
    symlinkSync('/etc/passwd', meta);
    await refusedEverywhere(mj, `${mj}: Teachable Machine metadata "metadata.json" is a symbolic link to /etc/passwd, outside the model's folder ${dir} (side files must be inside it)`);
  });

  it.each([
    ['/etc/passwd', (dir: string) => `label file "/etc/passwd" is outside the model's folder ${dir} (side files must be inside it)`],
    ['../../../../etc/passwd', (dir: string) => `label file "../../../../etc/passwd" is outside the model's folder ${dir} (side files must be inside it)`],
    ['hostname.txt', (dir: string) => `label file "hostname.txt" is a symbolic link to /etc/hostname, outside the model's folder ${dir} (side files must be inside it)`],
    ['fifo.txt', (dir: string) => `${dir}/fifo.txt: label file is not a regular file (it is a FIFO (named pipe))`],
  ])("a .card.json whose labels name %s is refused by classify, card and the kiosk's /api/config", async (labels, message) => {
    const dir = realpathSync(tempDir('edgetune-card-'));
    const m = path.join(dir, 'm.onnx');
    symlinkSync(SQUEEZE, m); // the model the user names may be a link; its side files may not leave its folder
    symlinkSync('/etc/hostname', path.join(dir, 'hostname.txt'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.txt')]);
    writeFileSync(path.join(dir, 'm.card.json'), JSON.stringify({ labels }));
    const want = message(dir);
    const c = await cli(['classify', DOG, '--model', m]);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain(want);
    const k = await cli(['card', m, '--out', path.join(dir, 'm2.onnx'), '--allow-assumed']);
    expect(k.code).toBe(1);
    expect(k.stderr).toContain(want);
    expect(existsSync(path.join(dir, 'm2.onnx'))).toBe(false);
    await expect(withEnv(() => kioskConfig(m))).rejects.toThrow(want);
  });

  it('a labels.txt beside a .tflite that links out of its folder is refused; a FIFO there too', async () => {
    const dir = realpathSync(tempDir('edgetune-tflite-'));
    const t = path.join(dir, 'model_unquant.tflite');
    copyFileSync(shared('models', 'teachable-machine', 'fruit-tflite', 'model_unquant.tflite'), t);
    symlinkSync('/etc/passwd', path.join(dir, 'labels.txt'));
    const r = await cli(['import', t, '--out', path.join(dir, 'x.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${t}: label file "labels.txt" is a symbolic link to /etc/passwd, outside the model's folder ${dir} (side files must be inside it)`);
    execFileSync('rm', [path.join(dir, 'labels.txt')]);
    execFileSync('mkfifo', [path.join(dir, 'labels.txt')]);
    const f = await cli(['import', t, '--out', path.join(dir, 'x.onnx')]);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain(`${path.join(dir, 'labels.txt')}: label file is not a regular file (it is a FIFO (named pipe))`);
    expect(existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });

  /** The shared external-data model in a fresh folder (its data file copied), its first tensor's location set to `location`. */
  function extCopy(location?: string): { dir: string; m: string; tensor: string } {
    const dir = realpathSync(tempDir('edgetune-ext-'));
    const model = decodeModel(new Uint8Array(readFileSync(EXT)));
    const t = model.graph.initializer.find((x) => x.dataLocation === 1)!;
    if (location !== undefined) t.externalData = t.externalData.map((e) => (e.key === 'location' ? { ...e, value: location } : e));
    const m = path.join(dir, 'model_ext.onnx');
    writeFileSync(m, encodeModel(model));
    copyFileSync(`${EXT}.data`, path.join(dir, 'model_ext.onnx.data'));
    return { dir, m, tensor: t.name! };
  }

  it('ONNX external data: the intact copy classifies; a location outside the folder, a link out of it or a FIFO is refused', async () => {
    const ok = extCopy();
    const good = await cli(['classify', DOG, '--model', ok.m, '--json']);
    expect(good.code, good.stderr).toBe(0);
    expect(jsonLines(good.stdout)[0]).toHaveProperty('top');

    const up = extCopy('../../../../etc/passwd');
    const r1 = await cli(['classify', DOG, '--model', up.m]);
    expect(r1.stderr).toContain(`${up.m}: external data of tensor ${up.tensor} "../../../../etc/passwd" is outside the model's folder ${up.dir} (side files must be inside it)`);

    const link = extCopy('data.bin');
    symlinkSync('/dev/zero', path.join(link.dir, 'data.bin'));
    const r2 = await cli(['classify', DOG, '--model', link.m]);
    expect(r2.stderr).toContain(`${link.m}: external data of tensor ${link.tensor} "data.bin" is a symbolic link to /dev/zero, outside the model's folder ${link.dir} (side files must be inside it)`);

    const fifo = extCopy('pipe.data');
    execFileSync('mkfifo', [path.join(fifo.dir, 'pipe.data')]);
    const r3 = await cli(['card', fifo.m, '--out', path.join(fifo.dir, 'x.onnx'), '--allow-assumed']);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain(`${path.join(fifo.dir, 'pipe.data')}: external data file is not a regular file (it is a FIFO (named pipe))`);
    for (const r of [r1, r2]) expect(r.code).toBe(1);
  });
});

describe("the kiosk's /model.onnx", () => {
  it('serves the model file, and refuses it (404, at once) once it is replaced by a FIFO or a link to /dev/zero', async () => {
    const d = realpathSync(tempDir());
    const m = path.join(d, path.basename(SQUEEZE)); // the registry's file name: described by its entry
    copyFileSync(SQUEEZE, m);
    const k = await withEnv(() => startKiosk({ model: m, port: 0, log: () => undefined }));
    try {
      const ok = await fetch(`${k.url}model.onnx`);
      expect(ok.status).toBe(200);
      expect(Buffer.from(await ok.arrayBuffer()).equals(readFileSync(SQUEEZE))).toBe(true);
      execFileSync('rm', [m]);
      execFileSync('mkfifo', [m]);
      const fifo = await fetch(`${k.url}model.onnx`);
      expect([fifo.status, await fifo.text()]).toEqual([404, 'not found\n']);
      execFileSync('rm', [m]);
      symlinkSync('/dev/zero', m);
      const zero = await fetch(`${k.url}model.onnx`);
      expect([zero.status, await zero.text()]).toEqual([404, 'not found\n']);
    } finally {
      await k.close();
    }
  });
});

describe('--out is never renamed over something that is not a regular file, nor over an input', () => {
  it('a FIFO, /dev/null and a symbolic link as --out are refused, and left as they were', async () => {
    const d = realpathSync(tempDir());
    const fifo = path.join(d, 'fifo.onnx');
    execFileSync('mkfifo', [fifo]);
    const r1 = await cli(['import', TWINS, '--out', fifo]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain(`cannot write --out ${fifo}: it is a FIFO (named pipe), not a regular file`);
    expect(lstatSync(fifo).isFIFO()).toBe(true);

    const r2 = await cli(['import', TWINS, '--out', '/dev/null']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('cannot write --out /dev/null: it is a character device, not a regular file');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);

    // a deployment link current.onnx -> v7.onnx: refused (never silently replaced by a file)
    writeFileSync(path.join(d, 'v7.onnx'), 'version 7');
    symlinkSync('v7.onnx', path.join(d, 'current.onnx'));
    const r3 = await cli(['import', TWINS, '--out', path.join(d, 'current.onnx')]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain(`cannot write --out ${path.join(d, 'current.onnx')}: it is a symbolic link (to v7.onnx); edgetune replaces files, never links: write to the link's target or to a new file, then point the link at it`);
    expect(readlinkSync(path.join(d, 'current.onnx'))).toBe('v7.onnx');
    expect(readFileSync(path.join(d, 'v7.onnx'), 'utf8')).toBe('version 7');
    expect(readdirSync(d).sort()).toEqual(['current.onnx', 'fifo.onnx', 'v7.onnx']);
  });

  it('--out equal to the input (the same path, or a hard link to it) is refused before any work by import, card, quantize and finetune', async () => {
    const { dir, mj } = tfjsCopy();
    const before = readFileSync(mj);
    const r1 = await cli(['import', mj, '--out', mj]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain(`cannot write --out ${mj}: it is the input ${mj} (the same file); write to another file`);
    expect(readFileSync(mj).equals(before)).toBe(true);

    const m = path.join(dir, 'm.onnx');
    copyFileSync(MNIST, m);
    const hard = path.join(dir, 'hard.onnx');
    linkSync(m, hard);
    const r2 = await cli(['card', m, '--out', hard, '--allow-assumed']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`cannot write --out ${hard}: it is the input ${m} (the same file); write to another file`);

    const r3 = await cli(['quantize', '--model', m, '--out', m, '--calib', shared('faults', 'divergence', 'ds')]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain(`cannot write --out ${m}: it is the input ${m} (the same file); write to another file`);
    expect(r3.stderr).not.toContain('calibrating');

    const r4 = await cli(['finetune', shared('faults', 'divergence', 'ds'), '--model', m, '--out', m]);
    expect(r4.code).toBe(1);
    expect(r4.stderr).toContain(`cannot write --out ${m}: it is the input ${m} (the same file); write to another file`);
    expect(readFileSync(m).equals(readFileSync(MNIST))).toBe(true);
  });

  it('finetune --resume m.onnx --out m.onnx replaces m.onnx on purpose (allowed)', async () => {
    const d = realpathSync(tempDir());
    const m = path.join(d, 'm.onnx');
    const ds = shared('faults', 'divergence', 'ds');
    const first = await runCli(['finetune', ds, '--augment', 'none', '--epochs', '3', '--out', m], { env, timeoutMs: 170_000 });
    expect(first.code, first.stderr).toBe(0);
    const tulip = shared('faults', 'external-data', 'tulip');
    const again = await runCli(['finetune', '--resume', m, '--add-class', 'tulip', tulip, '--augment', 'none', '--epochs', '3', '--out', m, '--json'], { env, timeoutMs: 170_000 });
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { labels: string[] }).labels).toEqual(['daisy', 'rose', 'tulip']);
    // resume data that is a FIFO is not waited on: it is named and the folders are read again
    const fifoModel = path.join(d, 'f.onnx');
    copyFileSync(m, fifoModel);
    execFileSync('mkfifo', [path.join(d, 'f.resume.bin')]);
    // (the run then goes on to the training folders, as without resume data; it is not waiting on the FIFO)
    const r = await runCli(['finetune', '--resume', fifoModel, '--add-class', 'tulip2', tulip, '--augment', 'none', '--epochs', '3', '--out', path.join(d, 'g.onnx')], { env, timeoutMs: 170_000 });
    expect(r.stderr).toContain(`${path.join(d, 'f.resume.bin')}: resume data is not a regular file (it is a FIFO (named pipe)); the training folders are read again`);
  });
});

/** Run `script` (sh) in a private mount namespace where `dir` is a fresh tmpfs mounted with `opts`. */
function inTmpfs(dir: string, opts: string, script: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o ${opts} tmpfs "$0" && ${script}`, dir], {
    encoding: 'utf8',
    env: { ...process.env, ...env, EDGETUNE_MODEL_PATH: shared('models') },
    timeout: 170_000,
  });
  if (r.error || /unshare: |mount: /.test(r.stderr)) throw new Error(`cannot make a tmpfs with unshare -rm (needed for this test): ${r.error?.message ?? r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('read-only and full disks', () => {
  it('quantize on a read-only folder says EROFS before calibrating; capture too, before opening the camera', () => {
    const d = realpathSync(tempDir());
    const q = inTmpfs(d, 'ro', `node ${CLI} quantize --model squeezenet1.1 --out "$0/q.onnx" --calib ${shared('faults', 'divergence', 'ds')}`);
    expect(q.status).toBe(1);
    expect(q.stderr).toContain(`cannot write --out ${d}/q.onnx: read-only file system (EROFS) (${d})`);
    expect(q.stderr).not.toContain('calibrating');
    const c = inTmpfs(d, 'ro', `node ${CLI} capture 'test:testsrc2?rate=30&duration=2' --class bee --out "$0/ds" --count 2 --as-fast-as-possible`);
    expect(c.status).toBe(1);
    expect(c.stderr).toContain(`cannot write --out ${d}/ds/bee: read-only file system (EROFS) (${d})`);
  });

  it('capture on a full disk stops with ENOSPC in words and leaves no temp file', () => {
    const d = realpathSync(tempDir());
    // 200 KiB hold a few 640x480 test-pattern JPEGs (about 40 KB each), not 50
    const c = inTmpfs(d, 'size=200k', `node ${CLI} capture 'test:testsrc2?rate=30&duration=10' --class bee --out "$0/ds" --count 50 --every 0 --size 640x480 --as-fast-as-possible; echo "rc=$?"; ls -a "$0/ds/bee"`);
    expect(c.stderr).toContain(`cannot save into ${d}/ds/bee: no space left on device (ENOSPC)`);
    expect(c.stdout).toContain('rc=1');
    const listed = c.stdout.split('\n').filter((l) => l && !l.startsWith('rc=') && !l.startsWith('/'));
    const files = listed.filter((n) => n !== '.' && n !== '..');
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((n) => !/^bee-\d{8}T\d{6}-\d{4}\.jpg$/.test(n))).toEqual([]);
  });
});

describe('quantize writes its model, calibration table and report as one set', () => {
  const calib = shared('datasets', 'hymenoptera', 'train');
  const evalDir = shared('datasets', 'hymenoptera', 'val');
  const q = (out: string, count: string, extra: string[], envExtra: Record<string, string> = {}) =>
    runCli(['quantize', '--model', 'mobilenetv1-0.25-128', '--calib', calib, '--calib-count', count, '--out', out, '--ep', 'cpu', ...extra], { env: { ...env, ...envExtra } });
  const snapshot = (d: string) => Object.fromEntries(readdirSync(d).sort().map((n) => [n, readFileSync(path.join(d, n)).toString('base64')]));

  it('without --eval the older report goes with the old set; a kill -9 before the commit keeps the old set, after it the next run finishes the new one', async () => {
    const d = realpathSync(tempDir());
    const out = path.join(d, 'q.onnx');
    const withEval = ['--eval', evalDir, '--eval-count', '6'];
    const first = await q(out, '6', withEval);
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(d).sort()).toEqual(['q.calibration.cache', 'q.onnx', 'q.report.json']);
    const old = snapshot(d);

    // killed after its three temps and the journal's temp, before the commit: the old set, byte for byte
    const k4 = await q(out, '4', [...withEval, '--method', 'entropy'], { EDGETUNE_TEST_KILL_AT: '4' });
    expect(k4.code).not.toBe(0);
    await recoverSets(d);
    expect(snapshot(d)).toEqual(old);

    // killed just after the commit: the next write there (recoverSets) finishes the new set
    const k5 = await q(out, '4', [...withEval, '--method', 'entropy'], { EDGETUNE_TEST_KILL_AT: '5' });
    expect(k5.code).not.toBe(0);
    await recoverSets(d);
    const now = snapshot(d);
    expect(Object.keys(now)).toEqual(['q.calibration.cache', 'q.onnx', 'q.report.json']);
    for (const n of Object.keys(now)) expect(now[n], n).not.toBe(old[n]);

    // without --eval: model and table, and no report of another model beside them
    const plain = await q(out, '6', []);
    expect(plain.code, plain.stderr).toBe(0);
    expect(readdirSync(d).sort()).toEqual(['q.calibration.cache', 'q.onnx']);
  });
});
