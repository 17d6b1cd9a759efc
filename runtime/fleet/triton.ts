// exportTritonRepository(): an edgetune model → an entry of a Triton Inference Server model repository
// (also what KServe's Triton runtime serves), Node. Writes `<repo>/<name>/config.pbtxt`,
// `<repo>/<name>/labels.txt` and `<repo>/<name>/<version>/model.onnx`. The config is built from the
// model card (models/describe.ts) and the graph signature by tritonModelConfig, the one builder serve's
// /config answer uses too (runtime/serve/routes.ts modelConfig): `platform: "onnxruntime_onnx"`, inputs and
// outputs with Triton data types and dims, `max_batch_size` by Triton's batching rule, `label_filename`
// on the class output (with a background line where class 0 is background), the card as a `parameters`
// entry, and optional `dynamic_batching` / `instance_group`. What Triton would refuse or mis-serve is
// refused here with the reason. Schema: Triton's `model_config.proto` (message `inference.ModelConfig`,
// github triton-inference-server/common) and its model-configuration guide; the output follows the
// layout of Triton's own `densenet_onnx` example.

import { mkdir, readFile, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { checkDescribeOptionKeys, DESCRIBE_OPTION_KEYS, describeModel, type DescribeOptions } from '../../models/describe.js';
import { pickOptions, type AssertNever } from '../core/options.js';
import { EdgetuneError, invalidParameter } from '../core/errors.js';
import { METADATA_KEY, modelInfoOfCard, type EmbeddedModelInfo } from '../core/metadata.js';
import { assumedFields, type ModelCard } from '../core/model-card.js';
import { checkDirPath } from '../io/paths.js';
import { ensureWritableDir, removeStaleTemps, tempPathFor, writeAtomicSet } from '../io/atomic.js';
import { fsReason } from '../io/errno.js';
import { loadModelFile } from '../io/model-file.js';
import { setMetadataValue } from '../onnx/graph.js';
import { encodeModel } from '../onnx/model.js';
import { modelName } from '../serve/oip.js';

/** Triton's `DataType` enum name for each element type graphSignature() reports (model_config.proto). */
export const TRITON_DATA_TYPES: Readonly<Record<string, string>> = {
  bool: 'TYPE_BOOL',
  uint8: 'TYPE_UINT8',
  uint16: 'TYPE_UINT16',
  uint32: 'TYPE_UINT32',
  uint64: 'TYPE_UINT64',
  int8: 'TYPE_INT8',
  int16: 'TYPE_INT16',
  int32: 'TYPE_INT32',
  int64: 'TYPE_INT64',
  float16: 'TYPE_FP16',
  float32: 'TYPE_FP32',
  float64: 'TYPE_FP64',
  string: 'TYPE_STRING',
  bfloat16: 'TYPE_BF16',
};

/**
 * Output types Triton's classification extension ranks: its TopkClassifications (server
 * src/classification.cc) switches over these and answers any other type (FP16, BF16, BOOL, BYTES) with
 * "class result not available for output due to unsupported type". A class output of another type is
 * refused rather than exported with a label file Triton cannot use.
 */
const CLASSIFIABLE = new Set(['TYPE_UINT8', 'TYPE_UINT16', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_INT8', 'TYPE_INT16', 'TYPE_INT32', 'TYPE_INT64', 'TYPE_FP32', 'TYPE_FP64']);

/** max_batch_size written for a model whose every input and output has a dynamic first dimension, unless told. */
export const DEFAULT_MAX_BATCH_SIZE = 8;

/** The `parameters` key holding the model card (JSON of EmbeddedModelInfo, as in the ONNX metadata). */
export const TRITON_CARD_PARAMETER = METADATA_KEY;
/** The `parameters` key holding the sha256 (hex) of the version's model.onnx. */
export const TRITON_SHA256_PARAMETER = 'edgetune.sha256';

export type InstanceKind = 'KIND_AUTO' | 'KIND_CPU' | 'KIND_GPU';

export interface InstanceGroup {
  kind: InstanceKind;
  /** Model instances of this kind, >= 1. */
  count: number;
}

export interface TritonExportOptions extends DescribeOptions {
  /** The model repository folder (created when missing). */
  out: string;
  /** Entry name. Default: the registry id, or the model file's base name without extension. */
  name?: string;
  /** Version folder, integer >= 1. Default: 1 for a new entry, one above the highest for an existing one. */
  version?: number;
  /**
   * max_batch_size. Default DEFAULT_MAX_BATCH_SIZE when every input and output has a dynamic first
   * dimension (dims then omit it), else 0 (full dims). > 0 for a model with a fixed batch is refused.
   */
  maxBatchSize?: number;
  /** Write `dynamic_batching { }` (Triton forms batches from single requests). Needs max_batch_size > 0. */
  dynamicBatching?: boolean;
  /** `instance_group` entries. Default none (Triton's default: one instance per GPU, or one on CPU). */
  instanceGroups?: readonly InstanceGroup[];
  /** Embed the card even where fields had to be assumed (listed in `assumed`). Default false: refused. */
  allowAssumed?: boolean;
}

/** Every key of TritonExportOptions (its own and DescribeOptions'), for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const TRITON_EXPORT_OPTION_KEYS = ['out', 'name', 'version', 'maxBatchSize', 'dynamicBatching', 'instanceGroups', 'allowAssumed', ...DESCRIBE_OPTION_KEYS] as const satisfies readonly (keyof TritonExportOptions)[];
/** `never` while TRITON_EXPORT_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedTritonExportOption = AssertNever<Exclude<keyof TritonExportOptions, (typeof TRITON_EXPORT_OPTION_KEYS)[number]>>;

/** One input or output as the config declares it. */
export interface TritonTensor {
  name: string;
  /** Triton data type, e.g. TYPE_FP32. */
  dataType: string;
  /** Dims as in config.pbtxt (without the batch dimension when max_batch_size > 0); -1 = variable. */
  dims: number[];
  /** FORMAT_NCHW / FORMAT_NHWC for an image input. */
  format?: 'FORMAT_NCHW' | 'FORMAT_NHWC';
  /** `labels.txt` on the class output. */
  labelFilename?: string;
}

export interface TritonExportResult {
  /** The entry folder `<repo>/<name>`. */
  entry: string;
  name: string;
  version: number;
  /** Paths written: config.pbtxt, labels.txt, <version>/model.onnx. */
  files: { config: string; labels: string; model: string };
  /** The config.pbtxt text. */
  config: string;
  /**
   * The version config.pbtxt's card and sha256 describe: the highest in the entry (the one Triton
   * serves by default). `version` unless an older version was written beside a newer one.
   */
  configVersion: number;
  maxBatchSize: number;
  inputs: TritonTensor[];
  outputs: TritonTensor[];
  /** labels.txt lines (background lines included). */
  labelLines: string[];
  /** Other versions already in the entry, kept. */
  kept: number[];
  /** sha256 (hex) of the written model.onnx. */
  sha256: string;
  /** Fields of the card that were assumed (non-empty only with allowAssumed). */
  assumed: string[];
}

/** A Triton entry name: one path segment Triton and URLs take as is. */
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

function refuse(message: string, subject?: string): never {
  throw new EdgetuneError('EARG', message, subject ? { subject } : undefined);
}

/**
 * The default entry name of a described model: the registry id, else the file's base name without
 * extension (for a tfjs `model.json`, its folder's name), with characters Triton names avoid as "_".
 */
export function defaultEntryName(card: ModelCard, entryId: string | undefined, file: string): string {
  // The one naming rule, shared with the Open Inference Protocol's /v2/models/<name>.
  return modelName(file, entryId) || card.id.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** `kind:count` (cpu:2, gpu:1, auto:1) → an instance group. Errors: EARG naming the value. */
export function parseInstanceGroup(s: string): InstanceGroup {
  const m = /^(cpu|gpu|auto):(\d+)$/i.exec(s.trim());
  const count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1 && count <= 1024)) {
    throw invalidParameter('--instance-group', 'kind:count (kind cpu, gpu or auto; count 1..1024)', s);
  }
  return { kind: `KIND_${m[1]!.toUpperCase()}` as InstanceKind, count };
}

/**
 * The `format` of an image input in a Triton model configuration, or undefined when it must have none.
 * Triton takes a format only on 3 dims (model_config.proto Format: "'dims' … should only specify the 3
 * non-batch dimensions"; its ValidateModelInput refuses the model otherwise: "model input NHWC/NCHW
 * require 3 dims"), so a fixed-batch input's full dims [1, 3, 224, 224] go without one. `dims`: the
 * configuration's dims (without the batch dimension when max_batch_size > 0).
 */
export function tritonImageFormat(dims: readonly unknown[], layout: string): 'FORMAT_NCHW' | 'FORMAT_NHWC' | undefined {
  if (dims.length !== 3) return undefined;
  return layout === 'NHWC' ? 'FORMAT_NHWC' : 'FORMAT_NCHW';
}

/** A protobuf text-format string literal (C escapes; UTF-8 kept as is, which protoc and Triton read). */
export function textString(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is this function's job
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t').replace(/[\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`)}"`;
}

const isDynamic = (d: number | string | undefined): boolean => typeof d !== 'number' || d <= 0;

/** One graph input or output as graphSignature() and an onnxruntime session report it. */
export interface TritonSignatureEntry {
  name: string;
  /** 'float32', 'float16', 'int64', … (onnxruntime's names). */
  type: string;
  /** Sizes and symbolic names (a string or a size <= 0 is dynamic). */
  shape: readonly (number | string)[];
}

/** What a model's Triton configuration is built from: its graph signature and its card. */
export interface TritonConfigSource {
  /** The model's name in the repository (config `name`). */
  name: string;
  inputs: readonly TritonSignatureEntry[];
  outputs: readonly TritonSignatureEntry[];
  card: Pick<ModelCard, 'inputName' | 'outputName' | 'task' | 'labels' | 'labelOffset'> & { preprocess: Pick<ModelCard['preprocess'], 'layout'> };
}

/**
 * A model's Triton model configuration (the fields of model_config.proto's ModelConfig that edgetune
 * writes), built by tritonModelConfig: the export writes it as config.pbtxt (configText), serve answers
 * it as JSON on /config (runtime/serve/routes.ts modelConfig).
 */
export interface TritonModelConfig {
  name: string;
  maxBatchSize: number;
  inputs: TritonTensor[];
  outputs: TritonTensor[];
  /**
   * The first input or output without a dynamic first (batch) dimension, which keeps max_batch_size at
   * 0; undefined when the model batches.
   */
  fixedBatch?: { kind: 'input' | 'output'; entry: TritonSignatureEntry };
  /**
   * What Triton would refuse or mis-serve in this configuration, each with the reason (`model`: names
   * the model): an element type Triton has no data type for, an output without a declared shape, a card
   * output the graph lacks, a class output Triton's classification extension cannot rank. The export
   * refuses the first; serve answers the configuration still (its own engine serves the model).
   */
  problems: string[];
}

/**
 * The first input or output without a dynamic first (batch) dimension (none, or a fixed size), which
 * keeps Triton's max_batch_size at 0; undefined when the model batches (every first dimension dynamic).
 */
export function fixedBatchEntry(inputs: readonly TritonSignatureEntry[], outputs: readonly TritonSignatureEntry[]): { kind: 'input' | 'output'; entry: TritonSignatureEntry } | undefined {
  const all = [...inputs.map((entry) => ({ kind: 'input' as const, entry })), ...outputs.map((entry) => ({ kind: 'output' as const, entry }))];
  return all.find(({ entry }) => entry.shape.length === 0 || !isDynamic(entry.shape[0]));
}

/** Checks a requested max_batch_size (an integer >= 0). Errors: EARG naming --max-batch-size. */
export function checkMaxBatchSize(n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw invalidParameter('--max-batch-size', 'integer >= 0', n);
}

/**
 * The one builder of a model's Triton configuration (model_config.proto; Triton's model-configuration
 * guide), for the export's config.pbtxt and serve's /config alike:
 * - batching: max_batch_size is `maxBatchSize` (default DEFAULT_MAX_BATCH_SIZE) only when every input
 *   and output has a dynamic first dimension, and dims then leave that dimension out; otherwise (or
 *   with `maxBatchSize` 0) max_batch_size is 0 and dims are the full shapes;
 * - dims: a dynamic (symbolic, or <= 0) dimension is -1;
 * - data types: TRITON_DATA_TYPES (an unknown one is `TYPE_<TYPE>` and a problem);
 * - format: on the card's image input, by tritonImageFormat (3 dims only);
 * - label_filename `labels.txt` on the card's class output unless the model is a regression or has no labels.
 * Errors: EARG for a `maxBatchSize` that is not an integer >= 0. `model` names the model in `problems`.
 */
export function tritonModelConfig(src: TritonConfigSource, maxBatchSize: number | undefined, model: string): TritonModelConfig {
  checkMaxBatchSize(maxBatchSize);
  const fixedBatch = fixedBatchEntry(src.inputs, src.outputs);
  const max = fixedBatch ? 0 : (maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE);
  const problems: string[] = [];
  const tensor = (e: TritonSignatureEntry, kind: 'input' | 'output'): TritonTensor => {
    let dataType = TRITON_DATA_TYPES[e.type];
    if (!dataType) {
      problems.push(`${model}: ${kind} "${e.name}" has element type ${e.type}, which Triton has no data type for`);
      dataType = `TYPE_${e.type.toUpperCase()}`;
    }
    if (e.shape.length === 0 && kind === 'output') problems.push(`${model}: output "${e.name}" declares no shape; Triton needs its dims`);
    const dims = e.shape.map((d) => (isDynamic(d) ? -1 : (d as number)));
    return { name: e.name, dataType, dims: max > 0 ? dims.slice(1) : dims };
  };
  const inputs = src.inputs.map((e) => tensor(e, 'input'));
  const outputs = src.outputs.map((e) => tensor(e, 'output'));
  const card = src.card;
  const image = inputs.find((t) => t.name === card.inputName);
  const format = image && tritonImageFormat(image.dims, card.preprocess.layout);
  if (image && format) image.format = format;
  const classOut = outputs.find((t) => t.name === card.outputName);
  if (!classOut) problems.push(`${model}: the card names output "${card.outputName}" but the graph has ${outputs.map((t) => `"${t.name}"`).join(', ')}`);
  else if (card.task !== 'regression' && card.labelOffset + card.labels.length > 0) {
    if (!CLASSIFIABLE.has(classOut.dataType)) {
      problems.push(
        `${model}: class output "${classOut.name}" is ${classOut.dataType}, which Triton's classification extension cannot rank (its top-k has no ${classOut.dataType.slice(5)} case: a classification request would fail); export a model with an FP32 output (e.g. the model's fp32 twin)`,
      );
    }
    classOut.labelFilename = 'labels.txt';
  }
  return { name: src.name, maxBatchSize: max, inputs, outputs, ...(fixedBatch ? { fixedBatch } : {}), problems };
}

/** labels.txt lines: one per class output index (a "background" line per index below labelOffset). */
function labelLinesOf(card: ModelCard, model: string): string[] {
  const bad = card.labels.find((l) => /[\r\n]/.test(l));
  if (bad !== undefined) refuse(`${model}: label ${JSON.stringify(bad)} holds a line break; Triton's label file has one label per line`);
  return [...Array.from({ length: card.labelOffset }, () => 'background'), ...card.labels];
}

/** config.pbtxt text for the given parts (fields in model_config.proto's order). */
export function configText(c: {
  name: string;
  maxBatchSize: number;
  inputs: readonly TritonTensor[];
  outputs: readonly TritonTensor[];
  dynamicBatching?: boolean;
  instanceGroups?: readonly InstanceGroup[];
  parameters?: Readonly<Record<string, string>>;
}): string {
  const tensor = (t: TritonTensor) =>
    [
      '  {',
      `    name: ${textString(t.name)}`,
      `    data_type: ${t.dataType}`,
      ...(t.format ? [`    format: ${t.format}`] : []),
      `    dims: [ ${t.dims.join(', ')} ]`,
      ...(t.labelFilename ? [`    label_filename: ${textString(t.labelFilename)}`] : []),
      '  }',
    ].join('\n');
  const lines = [
    `name: ${textString(c.name)}`,
    'platform: "onnxruntime_onnx"',
    `max_batch_size: ${c.maxBatchSize}`,
    `input [\n${c.inputs.map(tensor).join(',\n')}\n]`,
    `output [\n${c.outputs.map(tensor).join(',\n')}\n]`,
  ];
  if (c.instanceGroups?.length) {
    lines.push(`instance_group [\n${c.instanceGroups.map((g) => `  {\n    kind: ${g.kind}\n    count: ${g.count}\n  }`).join(',\n')}\n]`);
  }
  if (c.dynamicBatching) lines.push('dynamic_batching { }');
  for (const [k, v] of Object.entries(c.parameters ?? {})) lines.push(`parameters {\n  key: ${textString(k)}\n  value { string_value: ${textString(v)} }\n}`);
  return lines.join('\n') + '\n';
}

/** The part of a config that every version of an entry shares (everything up to the parameters). */
function servingPart(config: string): string {
  const i = config.indexOf('\nparameters {');
  return i < 0 ? config : config.slice(0, i + 1);
}

/** The card parameter (`edgetune.model`) of a config.pbtxt configText wrote; undefined when it has none or it does not parse. */
function cardInConfig(config: string): Partial<EmbeddedModelInfo> | undefined {
  const m = /key: "edgetune\.model"\n {2}value \{ string_value: "((?:[^"\\]|\\.)*)" \}/.exec(config);
  if (!m) return undefined;
  try {
    // textString escapes only \ and " in JSON text (JSON.stringify writes no raw control characters)
    return JSON.parse(m[1]!.replace(/\\(.)/g, '$1')) as Partial<EmbeddedModelInfo>;
  } catch {
    return undefined;
  }
}

/**
 * What a client needs alike from every version of an entry, as the config's card says it
 * (preprocessing, output kind, task): the fields that differ, as `preprocess.mean [0.485,…] there, [0,0,0] here` (there: the entry; here: the model).
 */
function cardUseDiff(old: Partial<EmbeddedModelInfo>, now: EmbeddedModelInfo): string[] {
  const flat = (c: Partial<EmbeddedModelInfo>): Record<string, unknown> => ({
    ...Object.fromEntries(Object.entries(c.preprocess ?? {}).map(([k, x]) => [`preprocess.${k}`, x])),
    outputKind: c.outputKind,
    task: c.task ?? 'classification',
  });
  const a = flat(old);
  const b = flat(now);
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !isDeepStrictEqual(a[k], b[k])).map((k) => `${k} ${JSON.stringify(a[k])} there, ${JSON.stringify(b[k])} here`);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const real = async (p: string) => realpath(p).catch(() => path.resolve(p));
  return (await real(a)) === (await real(b));
}

async function versionsIn(entry: string): Promise<number[]> {
  const names = await readdir(entry).catch(() => [] as string[]);
  return names.filter((n) => /^[1-9]\d*$/.test(n)).map(Number).sort((a, b) => a - b);
}

/**
 * Export a model as a Triton model repository entry. `ref` is anything describeModel takes (registry id,
 * ONNX file, imported `.tflite` / tfjs `model.json`, fine-tuned export). A new entry is built in a temp
 * folder and renamed into place; a version added to an existing entry is renamed into place beside the
 * others (which are kept; the same version is replaced), then config.pbtxt and labels.txt are replaced
 * together (writeAtomicSet). Errors (EARG, with the reason): a bad name or version, max_batch_size > 0
 * for a fixed batch dimension, dynamic batching without batching, a class output Triton cannot rank
 * (FP16), an element type Triton lacks, an existing entry whose config or labels differ (Triton serves
 * every version with one config), assumed card fields without allowAssumed, an output that would
 * replace the input model, an empty `out` (`Expected a folder for out but received ""`: never the
 * current directory), and an option it does not take, nested `overrides` included
 * (`exportTritonRepository: unknown option "verison" (options: …)`). EMODEL / EIO from reading the model
 * and writing the files.
 */
export async function exportTritonRepository(ref: string, opts: TritonExportOptions): Promise<TritonExportResult> {
  checkDescribeOptionKeys('exportTritonRepository', opts, TRITON_EXPORT_OPTION_KEYS);
  checkDirPath(opts.out, 'out');
  const d = await describeModel(ref, pickOptions(opts, DESCRIBE_OPTION_KEYS));
  const card = d.card;
  const model = d.importedFrom ?? d.path;
  const name = opts.name ?? defaultEntryName(card, d.entry?.id, model);
  if (!NAME_RE.test(name)) throw invalidParameter('--name', 'a model name of letters, digits, "_", "." and "-" (not starting with "." or "-")', name);
  if (opts.version !== undefined && !(Number.isInteger(opts.version) && opts.version >= 1)) throw invalidParameter('--version', 'positive integer', opts.version);
  const assumed = assumedFields(card).filter((f) => f !== 'embedding');
  if (assumed.length && !opts.allowAssumed) {
    refuse(`nothing says ${assumed.join(', ')} for ${model}: give them with flags or a card file (or --allow-assumed to export the assumed values: ${card.assumptions.join('; ')})`);
  }

  const built = tritonModelConfig({ name, inputs: d.signature.inputs, outputs: d.signature.outputs, card }, opts.maxBatchSize, model);
  if (built.fixedBatch && opts.maxBatchSize !== undefined && opts.maxBatchSize > 0) {
    const { kind, entry: e } = built.fixedBatch;
    refuse(
      `${model}: --max-batch-size ${opts.maxBatchSize} needs a dynamic first (batch) dimension on every input and output, but ${kind} "${e.name}" has shape [${e.shape.join(', ')}]; Triton refuses max_batch_size > 0 for it (export with --max-batch-size 0)`,
    );
  }
  const { maxBatchSize, inputs, outputs } = built;
  if (opts.dynamicBatching && maxBatchSize === 0) {
    refuse(`${model}: --dynamic-batching needs max_batch_size > 0 (a dynamic first dimension on every input and output); Triton refuses dynamic batching for a model that does not batch`);
  }
  if (built.problems.length) refuse(built.problems[0]!);
  const labelLines = labelLinesOf(card, model);

  // The written model stands alone: its card embedded as in `edgetune card`, external data inlined.
  const info: EmbeddedModelInfo = modelInfoOfCard(card, 'edgetune export --format triton');
  const { model: onnx } = await loadModelFile(d.path);
  setMetadataValue(onnx, METADATA_KEY, JSON.stringify(info));
  const bytes = encodeModel(onnx);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const config = configText({
    name,
    maxBatchSize,
    inputs,
    outputs,
    dynamicBatching: opts.dynamicBatching,
    instanceGroups: opts.instanceGroups,
    parameters: { [TRITON_CARD_PARAMETER]: JSON.stringify(info), [TRITON_SHA256_PARAMETER]: sha256 },
  });
  const labelsText = labelLines.map((l) => `${l}\n`).join('');

  const repo = path.resolve(opts.out);
  // --out is the repository, not one of its entries or version folders (a nested entry there is one
  // Triton never loads, and sits inside a version it does)
  for (const [dir, what] of [[repo, 'an entry'], [path.dirname(repo), 'a version folder of an entry']] as const) {
    if ((dir === repo || /^[1-9]\d*$/.test(path.basename(repo))) && (await exists(path.join(dir, 'config.pbtxt')))) {
      refuse(`--out ${opts.out} is ${what} of a Triton repository (${path.join(dir, 'config.pbtxt')} is there); give the repository folder, ${path.dirname(dir)}`, opts.out);
    }
  }
  // made and proved writable (the errno in words: `read-only file system (EROFS)`), killed runs' temps cleaned
  await ensureWritableDir(opts.out);
  const entry = path.join(repo, name);
  const configFile = path.join(entry, 'config.pbtxt');
  const labelsFile = path.join(entry, 'labels.txt');
  const existing = await versionsIn(entry);
  const version = opts.version ?? (existing.length ? existing[existing.length - 1]! + 1 : 1);
  const modelFile = path.join(entry, String(version), 'model.onnx');
  const newer = existing.filter((v) => v > version);
  for (const f of [modelFile, configFile, labelsFile]) {
    if (await sameFile(f, d.path)) refuse(`--out ${opts.out} would replace the input model ${d.path} (${path.relative(repo, f)}); choose another --out, --name or --version`, d.path);
  }
  const entryExists = await exists(entry);
  if (entryExists) {
    const old = await readFile(configFile, 'utf8').catch(() => undefined);
    if (old !== undefined && servingPart(old) !== servingPart(config)) {
      refuse(
        `${configFile} declares other inputs, outputs, batching or instances than ${model} needs, and Triton serves every version of an entry with one config; export under another --name (or remove ${entry})`,
        configFile,
      );
    }
    const oldCard = old === undefined ? undefined : cardInConfig(old);
    const diff = oldCard ? cardUseDiff(oldCard, info) : [];
    if (diff.length) {
      // one config card for every version: a client (edgetune's --model URL) would preprocess one version as the other
      refuse(`${configFile}'s card differs from ${model}'s (${diff.join('; ')}), and every version of an entry shares the config's card; export under another --name (or remove ${entry})`, configFile);
    }
    const oldLabels = await readFile(labelsFile, 'utf8').catch(() => undefined);
    if (oldLabels !== undefined && oldLabels !== labelsText) {
      refuse(`${labelsFile} lists other labels than ${model}, and every version of an entry shares it; export under another --name (or remove ${entry})`, labelsFile);
    }
  }

  await removeStaleTemps(repo);
  if (!entryExists) {
    // A new entry appears whole or not at all.
    const tmp = tempPathFor(entry);
    try {
      await mkdir(path.join(tmp, String(version)), { recursive: true });
      await writeFile(path.join(tmp, String(version), 'model.onnx'), bytes);
      await writeFile(path.join(tmp, 'labels.txt'), labelsText);
      await writeFile(path.join(tmp, 'config.pbtxt'), config);
      await rename(tmp, entry);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw new EdgetuneError('EIO', `cannot write ${entry}: ${fsReason(err)}`, { subject: entry, cause: err });
    }
  } else {
    await removeStaleTemps(entry);
    const vdir = path.join(entry, String(version));
    const tmp = tempPathFor(vdir);
    const aside = tempPathFor(vdir);
    try {
      await mkdir(tmp);
      await writeFile(path.join(tmp, 'model.onnx'), bytes);
      // The same version is replaced: the old folder moves aside, the new one in, then the old goes.
      if (await exists(vdir)) await rename(vdir, aside);
      await rename(tmp, vdir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if ((await exists(aside)) && !(await exists(vdir))) await rename(aside, vdir);
      throw new EdgetuneError('EIO', `cannot write ${vdir}: ${fsReason(err)}`, { subject: vdir, cause: err });
    }
    await rm(aside, { recursive: true, force: true });
    // Triton serves the highest version (its default version policy, latest 1): the config's card and
    // sha256 keep describing it when an older version is written (they named the older one, and a
    // client read that sha256 and card for the version it was not served).
    if (!newer.length) {
      await writeAtomicSet([
        { file: configFile, data: config },
        { file: labelsFile, data: labelsText },
      ]);
    }
  }
  const configVersion = newer.length && entryExists ? newer[newer.length - 1]! : version;
  return {
    entry,
    name,
    version,
    files: { config: configFile, labels: labelsFile, model: modelFile },
    config: configVersion === version ? config : await readFile(configFile, 'utf8'),
    configVersion,
    maxBatchSize,
    inputs,
    outputs,
    labelLines,
    kept: existing.filter((v) => v !== version),
    sha256,
    assumed: assumed.length ? card.assumptions : [],
  };
}

/** One model of a Triton model repository as Triton serves it (tritonRepositoryModels). */
export interface TritonRepositoryModel {
  /** The entry's folder name: the model's name in Triton's URLs (and in edgetune serve's). */
  name: string;
  /** `<entry>/<version>/model.onnx` of the highest version. */
  file: string;
  version: number;
  /** The entry's config.pbtxt `max_batch_size` (0 when the config has none: the proto3 default), what Triton serves it with. */
  maxBatchSize: number;
}

/**
 * The top-level `max_batch_size` of a config.pbtxt's text (protobuf text format: `max_batch_size: 8`,
 * spaces around the colon allowed); 0 when absent (proto3's default, as Triton reads it).
 */
export function configMaxBatchSize(config: string): number {
  const m = /^[ \t]*max_batch_size[ \t]*:[ \t]*(\d+)[ \t]*(?:#.*)?$/m.exec(config);
  return m ? Number(m[1]) : 0;
}

/**
 * The models a folder holds as a Triton model repository (the layout exportTritonRepository writes and
 * Triton loads): for `dir` a repository, each entry (a sub-folder holding config.pbtxt; folders starting
 * with "." are skipped: the export's temporaries), in name order; for `dir` an entry itself (config.pbtxt
 * in it), that one. Each is its highest version's model.onnx, the version Triton serves by its default
 * version policy (latest 1), with the entry's max_batch_size. Undefined when there is no config.pbtxt at either level (not a repository).
 * Errors: EMODEL naming the entry when it has no version folder, or when its highest version has no
 * model.onnx (Triton would fail to load it too).
 */
export async function tritonRepositoryModels(dir: string): Promise<TritonRepositoryModel[] | undefined> {
  const root = path.resolve(dir);
  let entries = [root];
  if (!(await exists(path.join(root, 'config.pbtxt')))) {
    const names = (await readdir(root).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
    entries = [];
    for (const n of names) if (await exists(path.join(root, n, 'config.pbtxt'))) entries.push(path.join(root, n));
  }
  if (!entries.length) return undefined;
  const out: TritonRepositoryModel[] = [];
  for (const entry of entries) {
    const version = (await versionsIn(entry)).pop();
    if (version === undefined) throw new EdgetuneError('EMODEL', `${entry}: a Triton repository entry without a version folder (<entry>/1/model.onnx)`, { subject: entry });
    const file = path.join(entry, String(version), 'model.onnx');
    if (!(await exists(file))) throw new EdgetuneError('EMODEL', `${file} missing: version ${version} is the highest of the entry ${entry}, the one Triton serves`, { subject: entry });
    out.push({ name: path.basename(entry), file, version, maxBatchSize: configMaxBatchSize(await readFile(path.join(entry, 'config.pbtxt'), 'utf8')) });
  }
  return out;
}
