// Builds the browser kiosk (runtime/kiosk/page/) into dist/web/: esbuild bundles page/app.ts (the page) and
// page/ort-worker.ts (the inference worker holding onnxruntime-web) together with the browser-safe
// runtime modules they import (preprocessing, postprocessing, augmentation, head training, ONNX
// editing) into two ES modules, copies index.html and style.css, and copies onnxruntime-web's WebAssembly
// runtime (the JSEP build, which serves the wasm, WebGPU and WebNN providers) into dist/web/ort/ so
// the kiosk runs offline with no CDN. The output appears atomically: it is built in a temp folder
// beside dist/web and renamed into place, so a failed build leaves an older bundle intact.
//
//   node dist/scripts/build-web.js [--out <dir>] [--no-minify]

import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { removeStaleTemps, tempPathFor } from '../io/atomic.js';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { checkDirPath, packageRoot } from '../io/paths.js';

/** onnxruntime-web files the bundle loads at run time (ort.min.mjs imports the JSEP build). */
export const ORT_RUNTIME_FILES = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'] as const;
/** Static files copied from web/ as they are. */
const STATIC_FILES = ['index.html', 'style.css'] as const;
/** Every name a bundle folder holds (the two modules, their source maps, the static files, ort/): buildWeb replaces only a folder made of these. */
const BUNDLE_NAMES: ReadonlySet<string> = new Set(['app.js', 'app.js.map', 'ort-worker.js', 'ort-worker.js.map', ...STATIC_FILES, 'ort']);

/**
 * Refuses an existing `outDir` that is not a previous bundle: buildWeb swaps the old folder out and
 * deletes it, so it must hold app.js and nothing but the bundle's own names (ort/ only onnxruntime's
 * files). An empty folder is fine. A user's folder (`--out .`, a project folder) is never removed.
 */
async function checkReplaceable(outDir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(outDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw new EdgetuneError('EIO', `${outDir}: is a file, not a folder (the kiosk bundle's output folder)`, { subject: outDir });
    throw err;
  }
  if (entries.length === 0) return;
  const stranger = entries.find((e) => !BUNDLE_NAMES.has(e.name) || (e.name === 'ort') !== e.isDirectory());
  const ort = entries.some((e) => e.name === 'ort') ? await readdir(path.join(outDir, 'ort')) : [];
  const ortStranger = ort.find((f) => !(ORT_RUNTIME_FILES as readonly string[]).includes(f));
  const name = stranger?.name ?? (ortStranger !== undefined ? `ort/${ortStranger}` : undefined) ?? (entries.some((e) => e.name === 'app.js') ? undefined : '(no app.js)');
  if (name !== undefined) {
    throw new EdgetuneError(
      'EIO',
      `${outDir}: not a kiosk bundle folder (it holds ${name}); building there would replace it: name an empty or new folder, or a previous bundle's`,
      { subject: outDir },
    );
  }
}

/**
 * A few shared runtime modules keep a small Node-only helper beside their browser-safe code (e.g.
 * runtime/core/metadata.ts reads a file with node:fs/promises in `readModelInfo`, which the page never
 * calls). Node built-ins resolve to a stub whose every function throws, so the page can import the
 * browser-safe parts of those modules unchanged.
 */
const nodeBuiltinStubs: import('esbuild').Plugin = {
  name: 'edgetune-node-builtin-stubs',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-stub' }));
    build.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => ({
      contents: `const fail = () => { throw new Error(${JSON.stringify('')} + ${JSON.stringify(args.path)} + ' is not available in the browser'); };
module.exports = new Proxy({}, { get: (_, k) => (k === '__esModule' ? false : fail) });`,
      loader: 'js',
    }));
  },
};

export interface BuildWebOptions {
  /** Output folder. Default `<package>/dist/web`. */
  outDir?: string;
  /** Default true. */
  minify?: boolean;
  /** Where the sources live. Default `<package>/runtime/kiosk/page`. */
  srcDir?: string;
  log?: (line: string) => void;
}

export interface BuildWebResult {
  outDir: string;
  bytes: number;
  ms: number;
}

/** The page's TypeScript sources (present in the source repository, not in the installed package's dist). */
export function pageSourceDir(root = packageRoot()): string {
  return path.join(root, 'runtime', 'kiosk', 'page');
}

/** Whether the page's sources are here (a source checkout) or not (an installed package, which ships only the prebuilt dist/web). */
export function hasPageSources(root = packageRoot()): boolean {
  return existsSync(path.join(pageSourceDir(root), 'app.ts'));
}

/** `<package>/dist/web`: where `npm run build:web` (and `npm pack`, through the prepack script) puts the bundle. */
export function defaultWebOutDir(): string {
  return path.join(packageRoot(), 'dist', 'web');
}

/** The ES module of the bundle (its presence means the bundle is built). */
export function bundleEntry(outDir = defaultWebOutDir()): string {
  return path.join(outDir, 'app.js');
}

/** Newest modification time (ms) of the files the bundle is made from, or 0 when the sources are absent (installed package). */
export async function newestSourceTime(root = packageRoot()): Promise<number> {
  let newest = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.(ts|html|css)$/.test(e.name) && !e.name.endsWith('.d.ts')) newest = Math.max(newest, (await stat(p)).mtimeMs);
    }
  };
  await walk(pageSourceDir(root));
  if (newest === 0) return 0;
  await walk(path.join(root, 'runtime'));
  await walk(path.join(root, 'models'));
  return newest;
}

/**
 * Builds the kiosk bundle into `outDir` (see the file's first lines), replacing a previous bundle there
 * only once the new one is complete. Errors: EARG `Expected a folder for outDir but received ""` (an
 * empty or blank outDir, which would be the current directory); EIO `<outDir>: not a kiosk bundle
 * folder (it holds <name>)…` when the folder exists and holds anything but a previous bundle (it is
 * left as it is); EINPUT when the sources are missing or do not compile; EDEPEND without esbuild or
 * onnxruntime-web.
 */
export async function buildWeb(options: BuildWebOptions = {}): Promise<BuildWebResult> {
  const t0 = performance.now();
  const root = packageRoot();
  const srcDir = options.srcDir ?? pageSourceDir(root);
  const outDir = path.resolve(options.outDir === undefined ? defaultWebOutDir() : checkDirPath(options.outDir, 'outDir'));
  await checkReplaceable(outDir);
  const entry = path.join(srcDir, 'app.ts');
  if (!existsSync(entry)) {
    throw new EdgetuneError('EINPUT', `${entry}: kiosk sources not found (runtime/kiosk/page/ ships only in the source repository)`, { subject: entry });
  }
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new EdgetuneError('EDEPEND', `building the kiosk needs esbuild (a devDependency): ${messageOf(err)}`, { cause: err });
  }
  const ortDist = path.join(root, 'node_modules', 'onnxruntime-web', 'dist');
  for (const f of ORT_RUNTIME_FILES) {
    if (!existsSync(path.join(ortDist, f))) {
      throw new EdgetuneError('EDEPEND', `${path.join(ortDist, f)} missing: onnxruntime-web is not installed`, { subject: f });
    }
  }
  // one temp scheme (runtime/io/atomic.ts): a killed build's folder is removed by the next build
  await removeStaleTemps(path.dirname(path.resolve(outDir)));
  const tmp = tempPathFor(path.resolve(outDir));
  await mkdir(path.join(tmp, 'ort'), { recursive: true });
  try {
    const result = await esbuild.build({
      // the page, and the inference worker that holds onnxruntime-web (runtime/kiosk/page/ort-worker.ts)
      entryPoints: [entry, path.join(srcDir, 'ort-worker.ts')],
      outdir: tmp,
      entryNames: '[name]',
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['chrome110', 'firefox115', 'safari16'],
      // ort.min.mjs: onnxruntime-web without the wasm glue inlined; it loads dist/web/ort/*.
      conditions: ['onnxruntime-web-use-extern-wasm'],
      minify: options.minify ?? true,
      sourcemap: true,
      legalComments: 'none',
      logLevel: 'silent',
      metafile: false,
      plugins: [nodeBuiltinStubs],
    });
    for (const w of result.warnings) options.log?.(`warning: ${w.text}`);
    for (const f of STATIC_FILES) await copyFile(path.join(srcDir, f), path.join(tmp, f));
    for (const f of ORT_RUNTIME_FILES) await copyFile(path.join(ortDist, f), path.join(tmp, 'ort', f));
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors;
    if (errors?.length) {
      const lines = errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`);
      throw new EdgetuneError('EINPUT', `kiosk bundle failed:\n${lines.join('\n')}`, { cause: err });
    }
    throw err;
  }
  // Swap into place: the old bundle is removed only once the new one is complete (checked again: the
  // folder may have changed during the build).
  try {
    await checkReplaceable(outDir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  // A second build running at the same moment (two kiosks started together, in this process or
  // another) may move the folder first: its bundle in place is kept (not checked to be of the same
  // sources; build-web started 2 or 3 at once on one --out: 1 of 8 pairs and 1 of 12 triples failed with
  // ENOTEMPTY before; 0 of 12 triples now). The old bundle goes aside under a name of this build's own
  // (was `<outDir>.<pid>.old`, one per process: two builds in one process collided, ENOTEMPTY).
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code;
  const old = tempPathFor(path.resolve(outDir), '.old');
  if (existsSync(outDir)) await rename(outDir, old).catch((err: unknown) => { if (code(err) !== 'ENOENT') throw err; });
  await mkdir(path.dirname(outDir), { recursive: true });
  try {
    await rename(tmp, outDir);
  } catch (err) {
    if (!((code(err) === 'ENOTEMPTY' || code(err) === 'EEXIST') && existsSync(bundleEntry(outDir)))) throw err;
    await rm(tmp, { recursive: true, force: true });
  }
  await rm(old, { recursive: true, force: true });
  const bytes = (await stat(path.join(outDir, 'app.js'))).size;
  return { outDir, bytes, ms: performance.now() - t0 };
}
