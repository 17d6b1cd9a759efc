// Resolves registry entries to files on disk (Node only). A model reference is either a path (that
// file) or a registry id, looked up in order: EDGETUNE_MODEL_PATH directories → the user cache →
// a download from the entry's URL with progress, sha256 check and an atomic write. Offline with no
// file, the error says everywhere it looked and how to get the file. A registry file found on disk
// is checked against the entry's sha256 every time it is opened (verifyRegistryFile; the verdict is
// kept per file identity, so repeated opens cost one stat), never only when downloaded.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from '../runtime/core/errors.js';
import { removeStaleTemps, tempPathFor } from '../runtime/io/atomic.js';
import { cacheDir, cacheDirOr, isOffline, looksLikeModelPath, modelSearchPath, packageRoot, packagedLabelsDir } from '../runtime/io/paths.js';
import * as v from 'valibot';
import { parseJson, parseJsonContract } from '../runtime/core/schema.js';
import { Registry, type LabelSet, type ModelEntry, type RemoteFile } from './registry.js';
import { importFormatOf, importedModelPath } from './import.js';
import { writeAtomic } from '../runtime/io/atomic.js';
import { checkOptionKeys, type AssertNever } from '../runtime/core/options.js';

let registry: Registry | undefined;
export function loadRegistry(): Registry {
  if (!registry) {
    const file = path.join(packageRoot(), 'models', 'registry.json');
    registry = new Registry(parseJson(readFileSync(file, 'utf8'), file, 'EMODEL'), 'registry.json');
  }
  return registry;
}

export interface ResolveOptions {
  searchPath?: string[];
  cacheDir?: string;
  /** Allow downloading. Default: true unless EDGETUNE_OFFLINE=1. */
  download?: boolean;
  /** Download progress, bytes so far and total (0 when unknown). Default: a progress line on a TTY stderr. */
  onProgress?: (done: number, total: number) => void;
}

/** Every key of ResolveOptions, for refusing a misspelt one (resolveModel's, quantizeModel's `resolve`). The type below fails to compile when a key is missing. */
export const RESOLVE_OPTION_KEYS = ['searchPath', 'cacheDir', 'download', 'onProgress'] as const satisfies readonly (keyof ResolveOptions)[];
/** `never` while RESOLVE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedResolveOption = AssertNever<Exclude<keyof ResolveOptions, (typeof RESOLVE_OPTION_KEYS)[number]>>;

export type FileSource = 'path' | 'local' | 'cache' | 'download';

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function ttyProgress(name: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    const mb = (n: number) => (n / 1048576).toFixed(1);
    const pct = total ? ` ${((100 * done) / total).toFixed(0)}%` : '';
    process.stderr.write(`\r\x1b[Kdownloading ${name}: ${mb(done)}${total ? `/${mb(total)}` : ''} MB${pct}`);
    if (total && done >= total) process.stderr.write('\n');
  };
}

/** Download `url` to `dest` atomically (temp file + rename), verifying sha256 when given. */
export async function downloadFile(url: string, dest: string, sha256?: string, onProgress?: (d: number, t: number) => void): Promise<void> {
  await mkdir(path.dirname(dest), { recursive: true });
  // one temp scheme (runtime/io/atomic.ts): a killed download's temp is removed by the next one here
  await removeStaleTemps(path.dirname(path.resolve(dest)));
  const tmp = tempPathFor(dest);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new EdgetuneError('EIO', `cannot download ${url}: ${messageOf((err as { cause?: unknown }).cause ?? err)}`, { subject: url, cause: err });
  }
  if (!res.ok || !res.body) throw new EdgetuneError('EIO', `cannot download ${url}: HTTP ${res.status}`, { subject: url });
  const total = Number(res.headers.get('content-length') ?? 0);
  const hash = createHash('sha256');
  const fh = await open(tmp, 'w');
  let done = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      await fh.write(chunk);
      done += chunk.byteLength;
      onProgress?.(done, total);
    }
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw new EdgetuneError('EIO', `download of ${url} failed: ${messageOf(err)}`, { subject: url, cause: err });
  }
  await fh.close();
  const got = hash.digest('hex');
  if (sha256 && got !== sha256) {
    await rm(tmp, { force: true });
    throw new EdgetuneError('EIO', `sha256 mismatch for ${url}: expected ${sha256} but received ${got}; the file was not saved`, { subject: url });
  }
  await rename(tmp, dest);
}

/** Name of the file in the cache folder that keeps sha256 verdicts (path → identity + hash). */
export const VERIFIED_FILE = 'verified.json';

/** A file's identity: a verdict is reused only while all of these are unchanged. */
interface FileIdentity {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
  sha256: string;
}

/** Verdicts of this process, and the ones read from `<cache>/verified.json` (keyed by the cache folder). */
const verdicts = new Map<string, Map<string, FileIdentity>>();

async function verdictsOf(cache: string): Promise<Map<string, FileIdentity>> {
  let m = verdicts.get(cache);
  if (m) return m;
  m = new Map();
  try {
    const raw = JSON.parse(await readFile(path.join(cache, VERIFIED_FILE), 'utf8')) as Record<string, FileIdentity>;
    for (const [k, id] of Object.entries(raw)) if (id && typeof id.sha256 === 'string' && typeof id.size === 'number') m.set(k, id);
  } catch {
    // none yet, or unreadable: every file is hashed again
  }
  verdicts.set(cache, m);
  return m;
}

/**
 * Check a registry file found on disk against its entry's sha256 (no sha256 in the entry: nothing to
 * check). A good verdict is kept in memory and in `<cache>/verified.json`, keyed by the file's
 * absolute path and reused while its size, mtime, ctime, inode and device are unchanged (any write
 * changes ctime), so opening the same file again costs one stat; a damaged file is hashed again on
 * every open until it is replaced. Errors: EMODEL naming the file, both hashes and how to fix it.
 */
export async function verifyRegistryFile(file: string, f: Pick<RemoteFile, 'file' | 'sha256' | 'url'>, what: string, cache = cacheDir()): Promise<void> {
  if (!f.sha256) return;
  const abs = path.resolve(file);
  const st = await stat(abs);
  const known = await verdictsOf(cache);
  const id = known.get(abs);
  const same = (x: FileIdentity | undefined) => x && x.size === st.size && x.mtimeMs === st.mtimeMs && x.ctimeMs === st.ctimeMs && x.ino === st.ino && x.dev === st.dev && x.sha256 === f.sha256;
  if (same(id)) return;
  const got = await sha256File(abs);
  if (got !== f.sha256) {
    const inCache = path.dirname(abs) === path.resolve(cache);
    const how = inCache && f.url ? `delete it: the next use downloads it again from ${f.url}` : `replace it with a good copy of ${f.file}${f.url ? ` (from ${f.url})` : ''}`;
    throw new EdgetuneError(
      'EMODEL',
      `${what}: ${abs} is damaged or not the registry's file: sha256 expected ${f.sha256} but the file (${st.size} bytes) has ${got}; ${how}`,
      { subject: abs },
    );
  }
  known.set(abs, { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev, sha256: got });
  // Kept for the next process; a cache folder that cannot be written only costs a hash next time.
  await mkdir(cache, { recursive: true })
    .then(() => writeAtomic(path.join(cache, VERIFIED_FILE), JSON.stringify(Object.fromEntries(known)) + '\n'))
    .catch(() => undefined);
}

/** Find (or fetch) a registry file; a file found on disk is verified (verifyRegistryFile). */
export async function resolveRemoteFile(f: RemoteFile, what: string, opts: ResolveOptions = {}): Promise<{ path: string; source: FileSource }> {
  const dirs = opts.searchPath ?? modelSearchPath();
  const cache = cacheDirOr(opts.cacheDir);
  for (const d of dirs) {
    const p = path.join(d, f.file);
    if (existsSync(p)) {
      await verifyRegistryFile(p, f, what, cache);
      return { path: p, source: 'local' };
    }
  }
  const cached = path.join(cache, f.file);
  if (existsSync(cached)) {
    await verifyRegistryFile(cached, f, what, cache);
    return { path: cached, source: 'cache' };
  }
  const allowed = opts.download ?? !isOffline();
  const looked = [...dirs, cache].map((d) => `  - ${d}`).join('\n');
  if (!f.url || !allowed) {
    const how = f.url
      ? `download it from ${f.url}${f.sha256 ? ` (sha256 ${f.sha256})` : ''} into ${cache}, or unset EDGETUNE_OFFLINE`
      : `copy ${f.file} into one of those directories or add its directory to EDGETUNE_MODEL_PATH`;
    throw new EdgetuneError('EMODEL', `${what}: file ${f.file} not found. Looked in:\n${looked}\nTo get it: ${how}.`, { subject: f.file });
  }
  try {
    await downloadFile(f.url, cached, f.sha256, opts.onProgress ?? ttyProgress(f.file));
  } catch (err) {
    // Offline, DNS, HTTP or checksum failure: say where we looked and where the file can go by hand.
    const how =
      `fetch ${f.url}${f.sha256 ? ` (sha256 ${f.sha256})` : ''} on a machine with network access and put it at ${cached}, ` +
      `or put ${f.file} in a directory listed in EDGETUNE_MODEL_PATH`;
    throw new EdgetuneError('EMODEL', `${what}: file ${f.file} not found and the download failed (${messageOf(err)}). Looked in:\n${looked}\nTo get it: ${how}.`, {
      subject: f.file,
      cause: err,
    });
  }
  return { path: cached, source: 'download' };
}

export interface ResolvedModel {
  path: string;
  source: FileSource;
  /** The registry entry, when the reference is an id or a known file name. */
  entry?: ModelEntry;
  /**
   * For a `.tflite` or tfjs `model.json` reference: the source file (absolute), while `path` is its
   * converted ONNX in the import cache (models/import.ts). Messages should name this file.
   */
  importedFrom?: string;
}

/**
 * A model reference → its file: a path (`.onnx`/`.ort` as is; `.tflite` or a tfjs `model.json`
 * converted to ONNX through the import cache, see `importedFrom`) or a registry id (found or
 * downloaded, see resolveRemoteFile). Errors: EMODEL for a missing file, a directory, an unknown id,
 * or a foreign model that cannot be converted (naming the file); EARG for an option it does not take
 * (`resolveModel: unknown option "serchPath" (options: searchPath, …)`).
 */
export async function resolveModel(ref: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  checkOptionKeys('resolveModel', opts, RESOLVE_OPTION_KEYS);
  const reg = loadRegistry();
  // A served model (runtime/serve/client.ts) has no file here: only classifiers use it.
  if (/^https?:\/\//i.test(ref)) {
    throw new EdgetuneError('EMODEL', `${ref}: a served model's URL works where a classifier runs it (classify, eval, watch, loadClassifier); this needs the model file`, { subject: ref });
  }
  // a bare name that is no registry id but exists here (`--model exports`, a folder) is a path too
  if ((looksLikeModelPath(ref) || existsSync(ref)) && !reg.get(ref)) {
    const p = path.resolve(ref);
    if (!existsSync(p)) throw new EdgetuneError('EMODEL', `${ref}: model file not found`, { subject: ref });
    if (statSync(p).isDirectory()) {
      // a Teachable Machine or Coral export folder: name the model files in it
      const inside = readdirSync(p).filter((n) => /^model\.json$|\.(onnx|tflite)$/i.test(n)).sort();
      const hint = inside.length ? `; it holds ${inside.map((n) => path.join(ref, n)).join(', ')}: pass one of them` : '';
      throw new EdgetuneError('EMODEL', `${ref}: is a directory, not a model file${hint}`, { subject: ref });
    }
    // TFLite and tfjs layers models: converted once (cached by content hash), then opened as ONNX.
    if (await importFormatOf(p)) {
      const imported = await importedModelPath(p, opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {});
      return { path: imported.path, source: 'path', importedFrom: imported.source };
    }
    return { path: p, source: 'path', entry: reg.byFileName(path.basename(p)) };
  }
  const entry = reg.require(ref);
  const r = await resolveRemoteFile(entry, `model ${entry.id}`, opts);
  return { ...r, entry };
}

/** Where each registry model is right now, without downloading. */
export function locateModels(opts: ResolveOptions = {}): { entry: ModelEntry; where: FileSource | 'remote' | 'missing'; path?: string }[] {
  const dirs = opts.searchPath ?? modelSearchPath();
  const cache = cacheDirOr(opts.cacheDir);
  return loadRegistry().models.map((entry) => {
    for (const d of dirs) {
      const p = path.join(d, entry.file);
      if (existsSync(p)) return { entry, where: 'local' as const, path: p };
    }
    const c = path.join(cache, entry.file);
    if (existsSync(c)) return { entry, where: 'cache' as const, path: c };
    return { entry, where: entry.url ? ('remote' as const) : ('missing' as const) };
  });
}

const labelCache = new Map<string, string[]>();
/** The labels of a label set (inline, or a JSON file resolved like a model). */
export async function loadLabelSet(name: string, set: LabelSet, opts: ResolveOptions = {}): Promise<string[]> {
  if (set.labels) return set.labels;
  const hit = labelCache.get(name);
  if (hit) return hit;
  // Label lists ship inside the package (models/labels/, found from the package root); searched first.
  const searchPath = [packagedLabelsDir(), ...(opts.searchPath ?? modelSearchPath())];
  const r = await resolveRemoteFile(set as RemoteFile, `label set ${name}`, { ...opts, searchPath });
  const labels = parseJsonContract(v.pipe(v.array(v.string()), v.length(set.count, `expected ${set.count} labels`)), await readFile(r.path, 'utf8'), r.path, 'EMODEL');
  labelCache.set(name, labels);
  return labels;
}

export async function labelsOf(entry: ModelEntry, opts: ResolveOptions = {}): Promise<string[]> {
  if (Array.isArray(entry.labels)) return entry.labels;
  return loadLabelSet(entry.labels, loadRegistry().labelSets[entry.labels]!, opts);
}
