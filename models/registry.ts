// The model registry's schema, types and lookups. Browser-safe: it takes the parsed registry.json
// (the data), checks it against `RegistrySchema` (the types are derived from it; strict, so a
// misspelt key is an error) and answers lookups; models/loader.ts reads the file and resolves
// entries to files on disk.

import * as v from 'valibot';
import { EdgetuneError } from '../runtime/core/errors.js';
import { EmbeddingSpecSchema } from '../runtime/core/model-card.js';
import { PreprocessSpecSchema, type PreprocessSpec } from '../runtime/core/preprocess-spec.js';
import { parseContract } from '../runtime/core/schema.js';

export const PrecisionSchema = v.picklist(['fp32', 'fp16', 'int8']);
export type Precision = v.InferOutput<typeof PrecisionSchema>;

const sha256 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'));
const count = v.pipe(v.number(), v.integer(), v.minValue(1));

/** Where a file comes from: its name (looked up in EDGETUNE_MODEL_PATH and the cache) and download URL. */
const remoteFileEntries = {
  file: v.string(),
  url: v.optional(v.pipe(v.string(), v.url())),
  sha256: v.optional(sha256),
};
export type RemoteFile = v.InferOutput<v.ObjectSchema<typeof remoteFileEntries, undefined>>;

export const LabelSetSchema = v.pipe(
  v.strictObject({
    ...v.partial(v.object(remoteFileEntries)).entries,
    /** Inline labels (small sets); otherwise `file` is a JSON array of names. */
    labels: v.optional(v.array(v.string())),
    count,
  }),
  v.check((s) => (s.labels ? s.labels.length === s.count : s.file !== undefined), 'needs "labels" (as many as "count") or a label "file"'),
);
export type LabelSet = v.InferOutput<typeof LabelSetSchema>;

const { colorOrder, range, mean, std, resize, crop } = PreprocessSpecSchema.entries;

export const ModelEntrySchema = v.strictObject({
  id: v.pipe(v.string(), v.nonEmpty('expected a non-empty id')),
  description: v.string(),
  ...remoteFileEntries,
  precision: PrecisionSchema,
  input: v.strictObject({
    name: v.string(),
    /** [N, C, H, W] or [N, H, W, C]; -1 = dynamic (the batch). */
    shape: v.pipe(v.array(v.pipe(v.number(), v.integer())), v.length(4, 'expected 4 dimensions')),
    layout: PreprocessSpecSchema.entries.layout,
    dtype: PreprocessSpecSchema.entries.dtype,
  }),
  preprocess: v.strictObject({ colorOrder, range, mean, std, resize, crop }),
  /** A label-set name from `labelSets`, or the labels themselves. */
  labels: v.union([v.string(), v.array(v.string())]),
  labelOffset: v.pipe(v.number(), v.integer(), v.minValue(0)),
  output: v.strictObject({ name: v.string(), kind: v.picklist(['logits', 'probabilities']) }),
  /** The tensor head training cuts at; `null` tensor = found automatically. */
  embedding: v.optional(EmbeddingSpecSchema),
});
export type ModelEntry = v.InferOutput<typeof ModelEntrySchema>;

export const RegistrySchema = v.strictObject({
  $comment: v.optional(v.string()),
  labelSets: v.record(v.string(), LabelSetSchema),
  models: v.array(ModelEntrySchema),
});
export type RegistryData = v.InferOutput<typeof RegistrySchema>;

export class Registry {
  readonly models: readonly ModelEntry[];
  readonly labelSets: Readonly<Record<string, LabelSet>>;
  /**
   * `data`: the parsed registry JSON; `source` names it in errors. Errors: EMODEL, one line per
   * problem, `registry.json: models[3].input.layout: expected "NCHW" | "NHWC" but received "CHW"`;
   * also for two entries with one id and a label-set name that `labelSets` lacks.
   */
  constructor(data: unknown, source = 'registry.json') {
    const reg = parseContract(RegistrySchema, data, source, 'EMODEL');
    const ids = new Set<string>();
    reg.models.forEach((m, i) => {
      if (ids.has(m.id)) throw new EdgetuneError('EMODEL', `${source}: models[${i}].id: a second entry with id "${m.id}"`, { subject: source });
      ids.add(m.id);
      if (typeof m.labels === 'string' && !reg.labelSets[m.labels]) {
        const known = Object.keys(reg.labelSets).map((k) => JSON.stringify(k)).join(' | ');
        throw new EdgetuneError('EMODEL', `${source}: models[${i}].labels: expected a label set (${known}) but received "${m.labels}"`, { subject: source });
      }
    });
    this.models = reg.models;
    this.labelSets = reg.labelSets;
  }

  get(id: string): ModelEntry | undefined {
    return this.models.find((m) => m.id === id);
  }

  /** The entry whose file name matches (so `--model path/to/mobilenetv2-12-int8.onnx` gets its preprocessing). */
  byFileName(name: string): ModelEntry | undefined {
    return this.models.find((m) => m.file === name);
  }

  require(id: string): ModelEntry {
    const m = this.get(id);
    if (!m) {
      throw new EdgetuneError(
        'EMODEL',
        `Unknown model id "${id}": expected a path to an .onnx file or one of: ${this.models.map((x) => x.id).join(', ')}`,
        { subject: id },
      );
    }
    return m;
  }
}

/** The full preprocessing spec of a registry entry. */
export function specOf(entry: ModelEntry): PreprocessSpec {
  const s = entry.input.shape;
  const nchw = entry.input.layout === 'NCHW';
  const channels = (nchw ? s[1] : s[3]) as 1 | 3;
  return {
    width: (nchw ? s[3] : s[2])!,
    height: (nchw ? s[2] : s[1])!,
    channels,
    layout: entry.input.layout,
    dtype: entry.input.dtype,
    ...entry.preprocess,
  };
}
