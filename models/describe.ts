// describeModel(): a model reference → its model card (Node). The one place that reads what a model
// is: the registry entry, the `edgetune.model` metadata embedded in the file and the graph signature,
// merged with the caller's overrides by the card rule (runtime/core/model-card.ts). The file is read
// once; its bytes come back with the card so callers can open a session without reading it again.

import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from '../runtime/core/errors.js';
import { checkOptionKeys, pickOptions, type AssertNever } from '../runtime/core/options.js';
import { parseModelInfo, readMetadataProps, type EmbeddedModelInfo } from '../runtime/core/metadata.js';
import { cardFilePath, checkCardLayerKeys, parseCardLayer, type CardLayer, type CardSource, type ModelCard } from '../runtime/core/model-card.js';
import { readSideLabelsFile } from '../runtime/io/labels-file.js';
import { inlineExternalData } from '../runtime/io/model-file.js';
import { MAX_MODEL_FILE_BYTES, MAX_TEXT_FILE_BYTES, readRegularFile, readRegularText, sideFilePath } from '../runtime/io/read-file.js';
import { cardFromBytes, type GraphSignature } from '../runtime/classify/describe.js';
import { decodeModel, type OnnxModel } from '../runtime/onnx/model.js';
import { labelsOf, loadLabelSet, loadRegistry, RESOLVE_OPTION_KEYS, resolveModel, type ResolveOptions, type ResolvedModel } from './loader.js';
import { specOf, type ModelEntry } from './registry.js';
import { importedModelId } from './import.js';

/** describeModel's options: where to find the model (ResolveOptions) and the caller's own card layer. */
export interface DescribeOptions extends ResolveOptions {
  /** Highest-priority layer: what the user said (CLI flags, library options). */
  overrides?: CardLayer;
  /** Describe a model whose output is not class scores (a backbone). Default false. */
  allowNonClassifier?: boolean;
}

/**
 * Every key of DescribeOptions, for refusing a misspelt option from JavaScript (`{ overide: … }` would
 * otherwise describe the model without the caller's fields, without a word). The type below fails to
 * compile when a key is missing.
 */
export const DESCRIBE_OPTION_KEYS = [...RESOLVE_OPTION_KEYS, 'overrides', 'allowNonClassifier'] as const satisfies readonly (keyof DescribeOptions)[];
/** `never` while DESCRIBE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedDescribeOption = AssertNever<Exclude<keyof DescribeOptions, (typeof DESCRIBE_OPTION_KEYS)[number]>>;

/** A described model: its merged card, where its file is, the file's bytes (read once) and what the graph declares. */
export interface DescribedModel {
  card: ModelCard;
  /** Absolute path of the model file. */
  path: string;
  source: ResolvedModel['source'];
  /** The registry entry, when the reference is an id or a known file name. */
  entry?: ModelEntry;
  /** For an imported `.tflite` / tfjs `model.json`: the source file (`path` is the converted ONNX). */
  importedFrom?: string;
  /** The file's bytes (read once here). */
  bytes: Uint8Array;
  /** Inputs and outputs as the graph declares them. */
  signature: GraphSignature;
  /** The embedded description, when the file carries one. */
  embedded?: EmbeddedModelInfo;
}

/**
 * Refuse the keys of `o` that function `fn` does not take (`keys`: DESCRIBE_OPTION_KEYS, or those of a
 * function whose options extend DescribeOptions), and those of its nested `overrides`. Errors: EARG as
 * checkOptionKeys (`<fn>: unknown option "overrides.preprocess.maen" (overrides.preprocess options: …)`).
 */
export function checkDescribeOptionKeys(fn: string, o: Pick<DescribeOptions, 'overrides'>, keys: readonly string[]): void {
  checkOptionKeys(fn, o, keys);
  checkCardLayerKeys(fn, o.overrides, 'overrides');
}

/** The card layer a registry entry gives. */
export async function registryLayer(entry: ModelEntry, opts: ResolveOptions = {}): Promise<CardLayer> {
  return {
    id: entry.id,
    inputName: entry.input.name,
    outputName: entry.output.name,
    preprocess: specOf(entry),
    labels: await labelsOf(entry, opts),
    labelOffset: entry.labelOffset,
    outputKind: entry.output.kind,
    ...(entry.embedding ? { embedding: { ...entry.embedding } } : {}),
  };
}

/**
 * Describe a model: resolve the reference (path or registry id, as models/loader.ts), read the file
 * once, and merge registry entry, embedded metadata, graph signature and `overrides` into a card.
 * Errors: EMODEL when the file cannot be read, is not ONNX, declares no inputs/outputs, or its input
 * is not an image tensor and nothing else describes it; EARG for an option it does not take
 * (`describeModel: unknown option "overide" (options: …)`), `overrides` included
 * (`unknown option "overrides.preprocess.maen" (overrides.preprocess options: …)`).
 */
export async function describeModel(ref: string, opts: DescribeOptions = {}): Promise<DescribedModel> {
  checkDescribeOptionKeys('describeModel', opts, DESCRIBE_OPTION_KEYS);
  const resolved = await resolveModel(ref, pickOptions(opts, RESOLVE_OPTION_KEYS));
  const bytes = await readRegularFile(resolved.path, { what: 'model file', maxBytes: MAX_MODEL_FILE_BYTES, bound: "protobuf's limit for one ONNX model", code: 'EMODEL' });
  return describeBytes(bytes, resolved, opts);
}

/**
 * describeModel for a model already read (the bytes of `resolved.path`; `decoded`: what they decode
 * to, when the caller has it, so the bytes are decoded once). External data the model names is
 * checked (inside the model's folder, regular files, long enough: runtime/io/model-file.ts) before
 * anything opens it.
 */
export async function describeBytes(bytes: Uint8Array, resolved: ResolvedModel, opts: DescribeOptions = {}, decoded?: OnnxModel): Promise<DescribedModel> {
  let model = decoded;
  if (!model && bytes.byteLength) {
    try {
      model = decodeModel(bytes);
    } catch {
      // cardFromBytes names the file and the decode error
    }
  }
  if (model) await inlineExternalData(model, resolved.path, { checkOnly: true });
  const layers: Partial<Record<CardSource, CardLayer>> = {};
  if (opts.overrides) layers.flags = opts.overrides;
  // An imported model's card file sits beside its source (`model.card.json` for `model.tflite`).
  const cardPath = cardFilePath(resolved.importedFrom ?? resolved.path);
  const cardFile = await readCardFile(cardPath);
  if (cardFile) layers['card-file'] = cardFile;
  if (resolved.entry) layers.registry = await registryLayer(resolved.entry, opts);
  const imagenet = loadRegistry().labelSets.imagenet!;
  const file = resolved.importedFrom ? importedModelId(resolved.importedFrom) : path.basename(resolved.path);
  // ImageNet names for an undescribed model with 1000 outputs (1001: a background class first).
  const labels = layers.registry || (await hasEmbedded(bytes, model)) ? undefined : await loadLabelSet('imagenet', imagenet, opts);
  const { card, signature, embedded } = cardFromBytes(bytes, {
    id: file,
    name: resolved.importedFrom ? `${resolved.importedFrom} (converted: ${resolved.path})` : resolved.path,
    layers,
    ...(cardFile ? { layerFiles: { 'card-file': cardPath } } : {}),
    allowNonClassifier: opts.allowNonClassifier,
    ...(model ? { model } : {}),
    assumedLabels: (n) =>
      labels && (n === 1000 || n === 1001) ? { labels, labelOffset: n - 1000, note: `ImageNet labels${n === 1001 ? ' with a background class at index 0' : ''}` } : undefined,
  });
  return {
    card,
    path: resolved.path,
    source: resolved.source,
    entry: resolved.entry,
    ...(resolved.importedFrom ? { importedFrom: resolved.importedFrom } : {}),
    bytes,
    signature,
    ...(embedded ? { embedded } : {}),
  };
}

/**
 * The card file beside a model (`<name>.card.json`: a JSON object with any card fields, see
 * `CardLayer`; `labels` may also name a label file relative to the card), or undefined when there is
 * none. Errors: EINPUT naming the file when it is not valid JSON or a field has the wrong type.
 */
export async function readCardFile(file: string): Promise<CardLayer | undefined> {
  if (!(await lstat(file).then(() => true, () => false))) return undefined;
  // Beside the model, so a side file: inside the model's folder (a link out of it is refused), regular, bounded.
  const real = await sideFilePath(file, path.basename(file), { what: 'model card', code: 'EINPUT' });
  const text = await readRegularText(real, { what: 'model card', maxBytes: MAX_TEXT_FILE_BYTES, code: 'EINPUT' });
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, '')); // a BOM (Windows editors) is not part of the card
  } catch (err) {
    throw new EdgetuneError('EINPUT', `${file}: model card is not valid JSON (${messageOf(err)})`, { subject: file });
  }
  const obj = raw as Record<string, unknown>;
  if (typeof obj?.labels === 'string') obj.labels = (await readSideLabelsFile(file, obj.labels)).labels;
  return parseCardLayer(obj, file);
}

async function hasEmbedded(bytes: Uint8Array, model?: OnnxModel): Promise<boolean> {
  try {
    return parseModelInfo(model ? Object.fromEntries(model.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])) : readMetadataProps(bytes)) !== undefined;
  } catch {
    return false;
  }
}
