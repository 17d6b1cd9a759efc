// Where things live on disk (Node only): the package root, the model search path, the user cache
// and the repository's test-asset root. Every other module asks here instead of reading env vars itself.
//
//   EDGETUNE_MODEL_PATH  directories searched for model and label files, separated by ':' (';' on
//                        Windows). Default: none (an installed package finds models in the cache, or
//                        downloads them; label lists ship inside the package under models/labels/).
//   EDGETUNE_SHARED      the source repository's real test/benchmark assets (models/, labels/,
//                        datasets/, camera/). Only tests, benchmarks and `bench`'s default image read
//                        it; default ../shared beside the package root (this repository's convention).
//   EDGETUNE_CACHE       download cache. Default: $XDG_CACHE_HOME/edgetune or ~/.cache/edgetune.
//   EDGETUNE_EMBED_CACHE_MB  size cap of <EDGETUNE_CACHE>/embeddings (read by runtime/train/node/embed.ts). Default 512.
//   EDGETUNE_OFFLINE=1   never download; a missing file is an error that says how to get it.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EdgetuneError, invalidParameter } from '../core/errors.js';

/**
 * The compiled JavaScript of the module `name` (e.g. `worker.js`) in the folder of the module whose
 * `import.meta.url` is `metaUrl`: beside it when that module runs compiled, under `dist/` when it runs
 * from its TypeScript source (tests). Worker threads run compiled code. Errors: EIO `<file> missing:
 * run "npm run build" first (<what> runs compiled code)`.
 */
export function compiledSibling(metaUrl: string, name: string, what: string): URL {
  const here = fileURLToPath(metaUrl);
  const file = here.endsWith('.ts') ? path.join(packageRoot(), 'dist', path.relative(packageRoot(), path.dirname(here)), name) : path.join(path.dirname(here), name);
  if (!existsSync(file)) throw new EdgetuneError('EIO', `${file} missing: run "npm run build" first (${what} runs compiled code)`);
  return pathToFileURL(file);
}

let root: string | undefined;
/** The directory holding edgetune's package.json (works from source and from dist/). */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'edgetune') return (root = dir);
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('edgetune: cannot find the package root');
    dir = up;
  }
}

/** The repository's test/benchmark assets (EDGETUNE_SHARED, default `<package>/../shared`); never a model default. */
export function sharedRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.EDGETUNE_SHARED ?? path.join(packageRoot(), '..', 'shared'));
}

/** EDGETUNE_MODEL_PATH's directories (absolute), in order; `[]` when unset (then: the cache, then a download). */
export function modelSearchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env.EDGETUNE_MODEL_PATH;
  if (v === undefined) return [];
  return v.split(path.delimiter).filter(Boolean).map((d) => path.resolve(d));
}

/** Label lists shipped inside the package (`<package>/models/labels`), searched before anything else. */
export function packagedLabelsDir(): string {
  return path.join(packageRoot(), 'models', 'labels');
}

/**
 * `dir` as given, refused when it names no folder: an empty or blank path (`--out "$DIR"` with the
 * variable unset) resolves to the current directory, which would then be written. `flag` is the
 * option that gave it. Errors: EARG `Expected a folder for <flag> but received ""`.
 */
export function checkDirPath(dir: unknown, flag: string): string {
  return checkPathGiven(dir, flag, 'a folder');
}

/**
 * checkDirPath's rule for any path (a file, a folder or a CSV, a model file): `p` as given, refused when
 * it is not a string or is empty or blank (path.resolve('') is the current directory, which callers then
 * read or write). `what` says what was expected. The CLI's parser applies it to every option its table marks `path`.
 * Errors: EARG `Expected <what> for <flag> but received ""`.
 */
export function checkPathGiven(p: unknown, flag: string, what = 'a file'): string {
  if (typeof p !== 'string' || !p.trim()) throw invalidParameter(flag, what, p);
  return p;
}

/** A `cacheDir` option (checkDirPath: an empty one is refused, never the current directory), else cacheDir(). */
export function cacheDirOr(given: string | undefined): string {
  return given === undefined ? cacheDir() : checkDirPath(given, 'cacheDir');
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EDGETUNE_CACHE) return path.resolve(env.EDGETUNE_CACHE);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(homedir(), '.cache');
  return path.join(base, 'edgetune');
}

export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.EDGETUNE_OFFLINE === '1' || env.EDGETUNE_OFFLINE === 'true';
}

/**
 * Whether a model reference reads as a file path rather than a registry id: it has a path separator or
 * a model file's extension (.onnx, .ort, .tflite, a tfjs .json). The loader's and createSession's one rule.
 */
export function looksLikeModelPath(ref: string): boolean {
  return ref.includes('/') || ref.includes(path.sep) || /\.(onnx|ort|tflite|json)$/i.test(ref);
}
