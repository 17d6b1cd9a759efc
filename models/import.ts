// Importing foreign model files (Node): a TFLite flatbuffer (`.tflite`, e.g. Coral or Teachable
// Machine exports) or a TensorFlow.js layers model (`model.json` + its weight shards, Teachable
// Machine's tfjs export) becomes an ONNX model with its card embedded as `edgetune.model` metadata,
// so every command can open it like any edgetune model. The converters are runtime/onnx/import/
// (browser-safe); this module finds the side files (labels, weights, metadata.json), embeds the card
// and caches each conversion by content hash under `$EDGETUNE_CACHE/imports/<sha256>.onnx`.

import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from '../runtime/core/errors.js';
import { placeholderKind, utf8Text } from '../runtime/core/text.js';
import { checkOptionKeys, type AssertNever } from '../runtime/core/options.js';
import { METADATA_KEY, type EmbeddedModelInfo } from '../runtime/core/metadata.js';
import { writeAtomic } from '../runtime/io/atomic.js';
import { fsReason } from '../runtime/io/errno.js';
import { readLabelsFile, readSideLabelsFile } from '../runtime/io/labels-file.js';
import { MAX_MODEL_FILE_BYTES, MAX_TEXT_FILE_BYTES, readRegularFile, readSideFile } from '../runtime/io/read-file.js';
import { tfjsGroupBytes } from '../runtime/onnx/import/tfjs-weights.js';
import { cacheDirOr, checkPathGiven } from '../runtime/io/paths.js';
import { setMetadataValue } from '../runtime/onnx/graph.js';
import { encodeModel } from '../runtime/onnx/model.js';
import { importTfjsLayers, importTflite, parseTflite, type ImportedModelCard, type ImportResult, type TfjsMetadata, type TfjsModelJson } from '../runtime/onnx/import/index.js';

/** Bumped when the converters change what they write, so stale cached conversions are not reused. */
export const IMPORT_FORMAT_VERSION = 2;

export type ImportFormat = 'tflite' | 'tfjs';

export interface ImportFileOptions {
  /** A label file (one name per line, Teachable Machine `i NAME` lines, or a JSON array). Default: see importModelFile. */
  labels?: string;
  /** Where converted models are cached (`<dir>/imports/`). Default: cacheDir() (EDGETUNE_CACHE). */
  cacheDir?: string;
}

/**
 * Every key of ImportFileOptions, for refusing a misspelt option from JavaScript (`{ label: 'labels.txt' }`
 * would otherwise import without the caller's labels, without a word). The type below fails to compile
 * when a key is missing.
 */
export const IMPORT_FILE_OPTION_KEYS = ['labels', 'cacheDir'] as const satisfies readonly (keyof ImportFileOptions)[];
/** `never` while IMPORT_FILE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedImportFileOption = AssertNever<Exclude<keyof ImportFileOptions, (typeof IMPORT_FILE_OPTION_KEYS)[number]>>;

export interface ImportedModelFile {
  /** The converted ONNX model, with `edgetune.model` embedded. */
  bytes: Uint8Array;
  /** What the source file says (the converter's card). */
  card: ImportedModelCard;
  /** The embedded metadata written into `bytes`. */
  info: EmbeddedModelInfo;
  format: ImportFormat;
  /** Absolute path of the source file (.tflite or model.json). */
  source: string;
  /** Where the labels came from: the given file, a labels.txt / metadata.json beside the model, the .tflite itself, or none. */
  labelsFrom?: string;
  /** sha256 of everything the conversion depends on (source, weights, labels, converter version): the cache key. */
  key: string;
}

/**
 * The import format a model reference names, or undefined for anything else: a path ending in
 * `.tflite`, or an existing `.json` file other than a `.card.json` (a tfjs layers model.json, the only
 * JSON model format: a broken one is then reported as a tfjs file, never as an ONNX protobuf). A
 * missing file is undefined (the caller reports it).
 */
export async function importFormatOf(file: string): Promise<ImportFormat | undefined> {
  if (/\.tflite$/i.test(file)) return 'tflite';
  if (!/\.json$/i.test(file) || !existsSync(file) || !statSync(file).isFile()) return undefined;
  if (/\.card\.json$/i.test(file)) return undefined;
  return 'tfjs';
}

/** JSON text (a leading BOM dropped, as editors on Windows write it) → value. Throws SyntaxError. */
function parseJsonText(text: string): unknown {
  return JSON.parse(text.replace(/^\uFEFF/, ''));
}

/** The file the user named: a regular file of at most `maxBytes` (runtime/io/read-file.ts). */
async function readSource(file: string, what: string, maxBytes = MAX_MODEL_FILE_BYTES): Promise<Uint8Array> {
  return readRegularFile(file, { what, maxBytes, code: 'EMODEL' });
}

/** Whether `file` exists as a directory entry (a dangling link too: reading it then names the problem). */
async function present(file: string): Promise<boolean> {
  return lstat(file).then(() => true, () => false);
}

/**
 * Prefix an importer error with the file it was converting. EMODEL/EINPUT keep their code; an EARG
 * from the ONNX toolkit (a value the file declares that does not fit, e.g. a zero point beyond int8)
 * is about the file, not the command line: EMODEL (exit 1, never the usage code 2).
 */
function naming(file: string, err: unknown): EdgetuneError {
  if (err instanceof EdgetuneError) return new EdgetuneError(err.code === 'EARG' ? 'EMODEL' : err.code, `${file}: ${err.message}`, { subject: file, cause: err });
  return new EdgetuneError('EMODEL', `${file}: cannot convert (${messageOf(err)})`, { subject: file, cause: err });
}

interface Gathered {
  format: ImportFormat;
  source: string;
  hash: ReturnType<typeof createHash>;
  labels?: string[];
  labelsFrom?: string;
  convert: () => ImportResult;
  /** The source's format and schema version, for provenance (set by `convert` for TFLite). */
  schema: string;
  /** sha256 of the source file alone (provenance). */
  sourceSha256: string;
}

async function gatherTflite(source: string, opts: ImportFileOptions, hash: ReturnType<typeof createHash>): Promise<Gathered> {
  const bytes = await readSource(source, 'TFLite model');
  hash.update(bytes);
  let labels: string[] | undefined;
  let labelsFrom: string | undefined;
  if (opts.labels) {
    labelsFrom = path.resolve(opts.labels);
    labels = await readLabelsFile(labelsFrom);
  } else if (await present(path.join(path.dirname(source), 'labels.txt'))) {
    // beside the model, so a side file: inside its folder (a link out of it is refused)
    const side = await readSideLabelsFile(source, 'labels.txt');
    labelsFrom = path.join(path.dirname(source), 'labels.txt');
    labels = side.labels;
  }
  const g: Gathered = {
    format: 'tflite',
    source,
    hash,
    labels,
    labelsFrom,
    schema: 'tflite',
    sourceSha256: createHash('sha256').update(bytes).digest('hex'),
    convert: () => {
      g.schema = `tflite schema v${parseTflite(bytes).version}`;
      return importTflite(bytes, { ...(labels ? { labels } : {}), name: path.basename(source, path.extname(source)) });
    },
  };
  return g;
}

async function gatherTfjs(source: string, opts: ImportFileOptions, hash: ReturnType<typeof createHash>): Promise<Gathered> {
  const text = await readSource(source, 'tfjs model.json', MAX_TEXT_FILE_BYTES);
  hash.update(text);
  let json: TfjsModelJson;
  const jsonText = utf8Text(text, { what: 'tfjs model.json', file: source, code: 'EMODEL' });
  try {
    json = parseJsonText(jsonText) as TfjsModelJson;
  } catch (err) {
    const instead = placeholderKind(text);
    throw new EdgetuneError('EMODEL', instead ? `${source}: ${instead}` : `${source}: tfjs model.json is not valid JSON (${messageOf(err)})`, { subject: source });
  }
  const top = json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json;
  if (top !== 'object') throw new EdgetuneError('EMODEL', `${source}: tfjs model.json holds ${top}, not an object with modelTopology and weightsManifest`, { subject: source });
  if ((json as { format?: unknown }).format === 'graph-model') {
    throw new EdgetuneError(
      'EMODEL',
      `${source}: a TensorFlow.js graph model (format "graph-model", converted from a SavedModel or a frozen graph): edgetune imports tfjs layers models (Keras, Teachable Machine); convert the original model to ONNX (tf2onnx) or TFLite instead`,
      { subject: source },
    );
  }
  if (!json.modelTopology || typeof json.modelTopology !== 'object') {
    throw new EdgetuneError('EMODEL', `${source}: tfjs model.json has no modelTopology object (keys: ${Object.keys(json).join(', ') || 'none'}): not a tfjs layers model`, { subject: source });
  }
  const dir = path.dirname(source);
  const weights = new Map<string, Uint8Array>();
  if (json.weightsManifest !== undefined && !Array.isArray(json.weightsManifest)) throw new EdgetuneError('EMODEL', `${source}: weightsManifest is not a list of weight groups`, { subject: source });
  for (const group of json.weightsManifest ?? []) {
    // Each shard is a side file (inside the model's folder, regular) no larger than its group declares.
    const need = tfjsGroupBytes(group);
    for (const p of group.paths ?? []) {
      if (weights.has(p)) continue;
      if (typeof p !== 'string') throw new EdgetuneError('EMODEL', `${source}: a weightsManifest path is not a string`, { subject: source });
      const { bytes: data } = await readSideFile(source, p, {
        what: 'weights file',
        maxBytes: need ?? MAX_MODEL_FILE_BYTES,
        bound: need === undefined ? 'the largest accepted' : 'what its weightsManifest declares for the group',
        code: 'EMODEL',
      });
      hash.update(p).update(data);
      weights.set(p, data);
    }
  }
  let metadata: TfjsMetadata | undefined;
  let labelsFrom: string | undefined;
  const metaFile = path.join(dir, 'metadata.json');
  if (await present(metaFile)) {
    const metaBytes = (await readSideFile(source, 'metadata.json', { what: 'Teachable Machine metadata', maxBytes: MAX_TEXT_FILE_BYTES, code: 'EINPUT' })).bytes;
    const metaText = utf8Text(metaBytes, { what: 'Teachable Machine metadata', file: metaFile, code: 'EINPUT' });
    try {
      metadata = parseJsonText(metaText) as TfjsMetadata;
    } catch (err) {
      throw new EdgetuneError('EINPUT', `${metaFile}: not valid JSON (${messageOf(err)})`, { subject: metaFile });
    }
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw new EdgetuneError('EINPUT', `${metaFile}: expected a JSON object (Teachable Machine's metadata)`, { subject: metaFile });
    const ml: unknown = metadata.labels;
    if (ml !== undefined && (!Array.isArray(ml) || !ml.every((l) => typeof l === 'string'))) {
      throw new EdgetuneError('EINPUT', `${metaFile}: labels: expected an array of strings (one per class) but received ${Array.isArray(ml) ? 'an array with a non-string' : ml === null ? 'null' : typeof ml}`, { subject: metaFile });
    }
    hash.update(metaText);
    if (Array.isArray(metadata?.labels)) labelsFrom = metaFile;
  }
  let labels: string[] | undefined;
  if (opts.labels) {
    labelsFrom = path.resolve(opts.labels);
    labels = await readLabelsFile(labelsFrom);
  }
  return {
    format: 'tfjs',
    source,
    hash,
    labels,
    labelsFrom,
    sourceSha256: createHash('sha256').update(text).digest('hex'),
    schema: `tfjs ${json.format ?? 'layers-model'}${json.convertedBy ? ` (${json.convertedBy})` : ''}`,
    convert: () => importTfjsLayers(json, weights, { ...(metadata ? { metadata } : {}), ...(labels ? { labels } : {}), name: path.basename(dir) || 'tfjs' }),
  };
}

/** The `edgetune.model` metadata an imported card becomes: its model-card layer, as that contract spells it. */
export function embeddedInfoOf(card: ImportedModelCard, provenance: Record<string, unknown>): EmbeddedModelInfo {
  const { layer } = card;
  return {
    version: 1,
    labels: layer.labels ?? [],
    ...(layer.labelOffset ? { labelOffset: layer.labelOffset } : {}),
    preprocess: layer.preprocess,
    outputKind: layer.outputKind,
    outputName: layer.outputName,
    ...(layer.embedding ? { embedding: layer.embedding } : {}),
    provenance,
  };
}

/**
 * Convert a model file to ONNX bytes with its card embedded (no cache; see importedModelPath).
 * `file`: a `.tflite` (labels: `opts.labels`, else `labels.txt` beside it, else the file's own
 * associated labels) or a tfjs layers `model.json` (weight shards from its manifest paths, relative
 * to the json; labels: `opts.labels`, else `metadata.json` beside it).
 * Errors: EMODEL naming the file (unreadable, corrupt or truncated, a weights file missing, an
 * unsupported operator or layer); EINPUT naming a label file that cannot be read or is not text; EARG
 * for an option it does not take (`importModelFile: unknown option "label" (options: labels, cacheDir)`),
 * or an empty `file` or `labels` (`Expected a label file for labels but received ""`).
 */
export async function importModelFile(file: string, opts: ImportFileOptions = {}): Promise<ImportedModelFile> {
  checkOptionKeys('importModelFile', opts, IMPORT_FILE_OPTION_KEYS);
  const g = await gather(file, opts);
  return convertGathered(g);
}

async function gather(file: string, opts: ImportFileOptions): Promise<Gathered> {
  // an empty path ("$F" unset) is refused naming it: '' was the current directory, and `labels: ''` was ignored (labels.txt beside the model taken instead)
  checkPathGiven(file, 'file', 'a model file');
  if (opts.labels !== undefined) checkPathGiven(opts.labels, 'labels', 'a label file');
  const source = path.resolve(file);
  const format = await importFormatOf(source);
  if (!format) {
    if (!existsSync(source)) throw new EdgetuneError('EMODEL', `${file}: model file not found`, { subject: file });
    throw new EdgetuneError('EMODEL', `${file}: not a model edgetune imports (expected a .tflite file or a tfjs layers model.json)`, { subject: file });
  }
  const hash = createHash('sha256').update(`edgetune-import ${IMPORT_FORMAT_VERSION} ${format}\n`);
  const g = format === 'tflite' ? await gatherTflite(source, opts, hash) : await gatherTfjs(source, opts, hash);
  if (g.labels) hash.update(`labels\n${g.labels.join('\n')}`);
  return g;
}

function convertGathered(g: Gathered): ImportedModelFile {
  const key = g.hash.copy().digest('hex');
  let result: ImportResult;
  try {
    result = g.convert();
  } catch (err) {
    throw naming(g.source, err);
  }
  // A .tflite with no label file given or beside it may carry its own (an associated labels file).
  if (!g.labelsFrom && result.card.layer.labels) g.labelsFrom = `${path.basename(g.source)} (its associated labels file)`;
  const { model, card } = result;
  const info = embeddedInfoOf(card, {
    source: importedModelId(g.source),
    sha256: g.sourceSha256,
    converter: `edgetune import (${g.format === 'tflite' ? 'TFLite' : 'tfjs layers'} → ONNX opset 13, v${IMPORT_FORMAT_VERSION})`,
    schema: g.schema,
    precision: card.precision,
    preprocessSource: card.preprocessSource,
    ...(g.labelsFrom ? { labels: path.isAbsolute(g.labelsFrom) ? path.basename(g.labelsFrom) : g.labelsFrom } : {}),
    ...(card.notes.length ? { notes: card.notes } : {}),
  });
  setMetadataValue(model, METADATA_KEY, JSON.stringify(info));
  return { bytes: encodeModel(model), card, info, format: g.format, source: g.source, ...(g.labelsFrom ? { labelsFrom: g.labelsFrom } : {}), key };
}

/** How an imported model is named (card id, provenance): `x.tflite`, or `<folder>/model.json` for tfjs. */
export function importedModelId(source: string): string {
  const base = path.basename(source);
  return /\.json$/i.test(base) ? `${path.basename(path.dirname(source))}/${base}` : base;
}

/** Conversions done by this process (the cache is what keeps it at one per file). */
export let conversionCount = 0;

/**
 * The converted ONNX file for `file` (see importModelFile), converted once and cached by content
 * hash as `<cacheDir>/imports/<sha256>.onnx`; later calls with the same source, weights and labels
 * return the cached path without converting. `converted`: whether this call did the conversion.
 * Errors: as importModelFile (`importedModelPath: unknown option …`); EIO when the cache cannot be written.
 */
export async function importedModelPath(file: string, opts: ImportFileOptions = {}): Promise<{ path: string; source: string; format: ImportFormat; converted: boolean }> {
  checkOptionKeys('importedModelPath', opts, IMPORT_FILE_OPTION_KEYS);
  const cache = cacheDirOr(opts.cacheDir);
  const g = await gather(file, opts);
  const key = g.hash.copy().digest('hex');
  const dir = path.join(cache, 'imports');
  const out = path.join(dir, `${key}.onnx`);
  if (existsSync(out)) return { path: out, source: g.source, format: g.format, converted: false };
  const imported = convertGathered(g);
  conversionCount++;
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new EdgetuneError('EIO', `cannot create the import cache ${dir}: ${fsReason(err)}`, { subject: dir });
  }
  await writeAtomic(out, imported.bytes);
  return { path: out, source: g.source, format: g.format, converted: true };
}
