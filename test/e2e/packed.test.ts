// edgetune as a user gets it: `npm pack` of the repository (its prepare script builds dist/ and the
// kiosk bundle), installed into a fresh app folder with the README's install command, then run from
// there with nothing but EDGETUNE_MODEL_PATH (a folder holding one model file): no EDGETUNE_SHARED, no
// repository beside it. The install happens once (beforeAll) and every test reuses it.
//
// The pack runs in a copy of the working tree (node_modules linked, not copied): packing in the
// repository itself would rewrite dist/ and dist/web while other test files run from them.
//
// The install is `--offline`: nothing may come from the network. npm resolves a fresh app's version
// ranges (`^7.5.4`) from the registry's metadata documents (packuments), which the repository's
// `npm ci` never fetches (it installs from its lockfile: tarballs only), so a bare `npm install
// <tarball> --offline` fails with ENOTCACHED. An offline board installs the way an app is deployed:
// from the app's own lockfile, made where the registry was reachable. The app's lockfile here pins
// edgetune's dependencies as the repository's lockfile does (its non-dev entries), so every tarball
// comes from the npm cache. onnxruntime-node's CUDA download (api.nuget.org) is skipped by the
// README's ONNXRUNTIME_NODE_INSTALL=skip: without it this install fails with ENOTFOUND api.nuget.org.

import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, repoRoot, shared, tempDir, userEnv as shellEnv } from '../helpers.js';

// a user's shell, without onnxruntime-node's install switch unless a command sets it
const userEnv = (extra: Record<string, string> = {}) => shellEnv(extra, ['ONNXRUNTIME_NODE_INSTALL']);

const DOG = shared('camera', 'winml_dog.jpg');
const MODEL = shared('models', 'mobilenetv2-12-int8.onnx');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell: none of npm's lifecycle variables from `npm test`, no EDGETUNE_*. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

function must(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

let work: string;
let app: string;
let modelDir: string;
let installed: string;
const timings: Record<string, number> = {};

beforeAll(async () => {
  work = tempDir('edgetune-packed-');
  // 1. a copy of the working tree to pack in (what npm would pack from a fresh checkout)
  const src = path.join(work, 'src');
  const skip = new Set(['node_modules', 'dist', '.git', 'out', '.cache', '.whl', '.gl']);
  cpSync(repoRoot, src, { recursive: true, filter: (p) => !(path.dirname(p) === repoRoot && skip.has(path.basename(p))) });
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(src, 'node_modules'), 'dir');
  const packDir = path.join(work, 'pack');
  mkdirSync(packDir);
  let t = performance.now();
  must(await run('npm', ['pack', '--pack-destination', packDir], src, userEnv(), 400_000), 'npm pack');
  timings.pack = performance.now() - t;
  const tgz = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  expect(tgz).toEqual([`edgetune-${version}.tgz`]);

  // 2. an app (package.json + lockfile, no node_modules), installed the README's way
  app = path.join(work, 'app');
  mkdirSync(app);
  const manifest = { name: 'kiosk-app', version: '1.0.0', private: true };
  writeFileSync(path.join(app, 'package.json'), JSON.stringify(manifest));
  const repoLock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const pinned = Object.entries(repoLock.packages).filter(([k, v]) => k.startsWith('node_modules/') && !v.dev);
  writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ ...manifest, lockfileVersion: 3, requires: true, packages: { '': manifest, ...Object.fromEntries(pinned) } }));
  t = performance.now();
  must(
    await run('npm', ['install', path.join(packDir, tgz[0]!), '--offline', '--no-audit', '--no-fund'], app, userEnv({ ONNXRUNTIME_NODE_INSTALL: 'skip' }), 400_000),
    'npm install <tarball> --offline',
  );
  timings.install = performance.now() - t;
  installed = path.join(app, 'node_modules', 'edgetune');

  // 3. the user's model folder: one file, nothing else
  modelDir = path.join(work, 'models');
  mkdirSync(modelDir);
  symlinkSync(MODEL, path.join(modelDir, path.basename(MODEL)));
}, 600_000);

afterAll(() => {
  // Measured figures for the report (pack + install is most of this file's time).
  const s = (k: string) => (timings[k] === undefined ? '?' : (timings[k]! / 1000).toFixed(1));
  console.log(`packed.test: npm pack ${s('pack')} s, npm install ${s('install')} s`);
  if (work) rmSync(work, { recursive: true, force: true }); // about 530 MB: the app's node_modules and the copy
});

/** `npx edgetune …` in the app, as a user types it: only EDGETUNE_MODEL_PATH says where the model is. */
function edgetune(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  // An empty cache and EDGETUNE_OFFLINE=1 make sure the model comes from EDGETUNE_MODEL_PATH and the
  // labels from the package, never from a download or an earlier run's cache.
  const env = userEnv({ EDGETUNE_MODEL_PATH: modelDir, EDGETUNE_CACHE: tempDir('edgetune-packed-cache-'), EDGETUNE_OFFLINE: '1', ...extra });
  return run('npx', ['--no', 'edgetune', ...args], app, env, 170_000);
}

describe('the packed package, installed into a fresh app', () => {
  it('ships the labels and the prebuilt kiosk page, not the page sources; the CUDA download was skipped', () => {
    expect(existsSync(path.join(installed, 'models', 'labels', 'imagenet-simple-labels.json'))).toBe(true);
    expect(existsSync(path.join(installed, 'dist', 'web', 'app.js'))).toBe(true);
    expect(existsSync(path.join(installed, 'dist', 'web', 'ort', 'ort-wasm-simd-threaded.jsep.wasm'))).toBe(true);
    expect(existsSync(path.join(installed, 'runtime', 'kiosk', 'page'))).toBe(false);
    const ortBin = path.join(app, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch);
    expect(readdirSync(ortBin)).toContain('onnxruntime_binding.node');
    expect(readdirSync(ortBin).filter((f) => /providers_cuda/.test(f))).toEqual([]);
  });

  it('`npx edgetune classify` finds the model through EDGETUNE_MODEL_PATH and labels it from the package', async () => {
    const r = await edgetune(['classify', DOG, '--model', 'mobilenetv2-int8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [row] = jsonLines<{ file: string; model: string; top: { index: number; label: string }[] }>(r.stdout);
    expect(row).toMatchObject({ file: DOG, model: 'mobilenetv2-int8' });
    expect(row!.top[0]).toMatchObject({ index: 207, label: 'Golden Retriever' });
    const text = await edgetune(['classify', DOG, '--model', 'mobilenetv2-int8']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`${DOG}: Golden Retriever`);
  });

  it('`npx edgetune bench` without --image says the default image lives only in the source repository', async () => {
    const r = await edgetune(['bench', '--model', 'mobilenetv2-int8']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('bench needs --image <file>: the default test image');
  });

  it('`npx edgetune kiosk --port 0` serves the prebuilt page and /api/config', async () => {
    const env = userEnv({ EDGETUNE_MODEL_PATH: modelDir, EDGETUNE_CACHE: tempDir('edgetune-packed-cache-'), EDGETUNE_OFFLINE: '1' });
    // Its own process group: npx does not pass SIGTERM on to the kiosk it started, so the group is signalled.
    const child: ChildProcess = spawn('npx', ['--no', 'edgetune', 'kiosk', '--port', '0'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (d) => {
          out += d;
          const m = /serving mobilenetv2-int8 at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.stderr!.on('data', (d) => (err += d));
        child.on('exit', (code) => reject(new Error(`kiosk exited with ${code}:\n${out}\n${err}`)));
        // a bound on a hang, so the finally below still stops the kiosk (it started in 3.1 s here)
        setTimeout(() => reject(new Error(`kiosk did not start in 120 s:\n${out}\n${err}`)), 120_000).unref();
      });
      expect(err).not.toMatch(/building the page bundle/); // served as packed, nothing rebuilt
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>edgetune kiosk</title>');
      const bundle = await fetch(new URL('app.js', url));
      expect(bundle.status).toBe(200);
      const config = (await (await fetch(new URL('api/config', url))).json()) as { model: { id: string; labels: string[] } };
      expect(config.model.id).toBe('mobilenetv2-int8');
      expect(config.model.labels).toHaveLength(1000);
      expect(config.model.labels[207]).toBe('Golden Retriever');
    } finally {
      const exited = new Promise((r) => child.once('close', r));
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
  });

  // README "Library": every ```ts block, as written, in a folder holding the files the section names
  // (its documented rule: dog.jpg, cat.jpg, photos/{train,val} = cats_dogs-dev, daisies/ = tf_flowers-dev's
  // daisies), run in order as .mjs files by node, and type-checked by tsc against the installed package's
  // types; every `import { … } from 'edgetune…'` the README names inline must be an export too.
  it('every README library example runs as written against the packed package, and type-checks', async () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    // the Library section's blocks: classify, fine-tune, resume + list, quantize (a count that cannot silently drop to 0)
    expect(blocks.length).toBe(4);
    const dir = path.join(app, 'readme');
    mkdirSync(dir);
    symlinkSync(DOG, path.join(dir, 'dog.jpg'));
    symlinkSync(shared('camera', 'winml_cat.jpg'), path.join(dir, 'cat.jpg'));
    symlinkSync(shared('datasets', 'cats_dogs-dev'), path.join(dir, 'photos'), 'dir');
    symlinkSync(shared('datasets', 'tf_flowers-dev', 'train', 'daisy'), path.join(dir, 'daisies'), 'dir');
    const models = path.join(work, 'readme-models');
    mkdirSync(models);
    symlinkSync(MODEL, path.join(models, path.basename(MODEL)));
    symlinkSync(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'), path.join(models, 'squeezenet1.1_fp32_from_winml_fp16.onnx'));
    const env = userEnv({ EDGETUNE_MODEL_PATH: models, EDGETUNE_CACHE: tempDir('edgetune-packed-cache-'), EDGETUNE_OFFLINE: '1' });
    const outs: string[] = [];
    for (const [i, code] of blocks.entries()) {
      writeFileSync(path.join(dir, `example-${i + 1}.mjs`), code);
      writeFileSync(path.join(dir, `example-${i + 1}.mts`), code);
      const r = await run(process.execPath, [`example-${i + 1}.mjs`], dir, env, 300_000);
      expect(r.code, `README example ${i + 1}:\n${code}\n${r.stdout}\n${r.stderr}`).toBe(0);
      outs.push(r.stdout);
    }
    // what each example prints, checked against what the README's comments say
    expect(outs[0]).toContain('Golden Retriever');
    expect(outs[1]).toContain("[ 'cats', 'dogs' ]");
    expect(outs[1]).toMatch(/phase 1 epoch 1\/30: loss/);
    const acc = Number(/\] (0\.\d+|1) /.exec(outs[1]!)?.[1]);
    // measured 0.95 (38 of 40 cats_dogs-dev/val photos); the floor allows two more misses
    expect(acc).toBeGreaterThanOrEqual(0.9);
    expect(existsSync(path.join(dir, 'pets.resume.bin'))).toBe(true);
    expect(outs[2]).toContain("[ 'cats', 'dogs', 'daisies' ]");
    expect(outs[2]).toContain("label: 'cats'");
    expect(outs[3]).toMatch(/\{ Conv: 26, MaxPool: 3, Concat: 8 \}/); // squeezenet1.1's 26 Convs, as the README's quantize section says
    // types: tsc on the same blocks, resolving 'edgetune' through the app's node_modules
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules', '@types')] },
      include: ['*.mts'],
    }));
    const tsc = await run(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir, env, 200_000);
    expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);
    // inline mentions (`import { quantizeModel } from 'edgetune/calibration'`): each name is an export of that entry
    const named = [...readme.matchAll(/import \{ ([^}]+) \} from '(edgetune(?:\/[a-z]+)?)'/g)];
    expect(named.length).toBeGreaterThan(4);
    const check = named.map((m) => `import(${JSON.stringify(m[2])}).then((x) => { for (const n of ${JSON.stringify(m[1]!.split(',').map((n) => n.trim()))}) if (!(n in x)) throw new Error(${JSON.stringify(m[2])} + ' has no export ' + n); })`).join(',\n');
    writeFileSync(path.join(dir, 'named.mjs'), `await Promise.all([\n${check}\n]);\nconsole.log('ok');\n`);
    const n = await run(process.execPath, ['named.mjs'], dir, env, 60_000);
    expect(n.code, n.stderr).toBe(0);
  }, 900_000);

  // Last: it breaks the installed onnxruntime-node on purpose.
  it('without onnxruntime-node\'s native binary: a clear reason, and the wasm fallback still classifies', async () => {
    const binding = path.join(app, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch, 'onnxruntime_binding.node');
    renameSync(binding, `${binding}.away`);
    const cpu = await edgetune(['classify', DOG, '--model', 'mobilenetv2-int8', '--ep', 'cpu']);
    expect(cpu.code).toBe(1);
    expect(cpu.stderr).toContain(`cpu: onnxruntime-node has no loadable native binary for ${process.platform}/${process.arch}`);
    expect(cpu.stderr).toContain('reinstall with ONNXRUNTIME_NODE_INSTALL=skip npm install (README "Install"), or use --ep wasm');
    const fallback = await edgetune(['classify', DOG, '--model', 'mobilenetv2-int8']);
    expect(fallback.code, fallback.stderr).toBe(0);
    expect(fallback.stderr).toMatch(/execution provider cpu: onnxruntime-node has no loadable native binary.*; falling back to wasm/);
    expect(fallback.stdout).toContain(`${DOG}: Golden Retriever`);
  });
});
