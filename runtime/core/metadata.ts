// Model self-description: models that edgetune exports (fine-tuned heads, quantized models) carry
// their labels and preprocessing in ONNX metadata_props under the key `edgetune.model`, so the file
// alone is enough to serve it. This module defines that contract and reads it cheaply: only the
// top-level metadata_props field of the ModelProto is decoded, the graph is skipped. The JSON is
// checked by `ModelInfoSchema` (the type is derived from it). Browser-safe (io/model-file.ts reads
// it from a file).

import protobuf from 'protobufjs/minimal.js';
import * as v from 'valibot';
import { PreprocessSpecSchema } from './preprocess-spec.js';
import { parseJsonContract } from './schema.js';
import { EmbeddingSpecSchema, OpenSetSchema, OutputKindSchema, TaskSchema, type ModelCard } from './model-card.js';

export const METADATA_KEY = 'edgetune.model';

export const ModelInfoSchema = v.object({
  version: v.literal(1),
  labels: v.array(v.string()),
  preprocess: PreprocessSpecSchema,
  /** How outputs become probabilities (`auto`: softmax unless a row already sums to 1). */
  outputKind: OutputKindSchema,
  /**
   * What the outputs mean: classification (softmax probabilities), multilabel (sigmoid probability
   * per label) or regression (values, one per label name). Absent = classification.
   */
  task: v.optional(TaskSchema),
  /** Where head training cuts the backbone (set by `edgetune card` and imports). */
  embedding: v.optional(EmbeddingSpecSchema),
  /** Open-set calibration (core/model-card.ts OpenSetSchema): an `unknown_score` output and its threshold. */
  openSet: v.optional(OpenSetSchema),
  outputName: v.optional(v.string()),
  /** Output index of label 0 (1 when the model has a background class at index 0). Default 0. */
  labelOffset: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  /** Where the model came from (base model id, head kind, quantization method …). */
  provenance: v.optional(v.record(v.string(), v.unknown())),
});

export type EmbeddedModelInfo = v.InferOutput<typeof ModelInfoSchema>;

/** metadata_props (ModelProto field 14, StringStringEntryProto key=1 value=2) of an ONNX model. */
export function readMetadataProps(bytes: Uint8Array): Record<string, string> {
  const r = protobuf.Reader.create(bytes);
  const props: Record<string, string> = {};
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 14 && (tag & 7) === 2) {
      const end = r.uint32() + r.pos;
      let key = '';
      let value = '';
      while (r.pos < end) {
        const t = r.uint32();
        if (t >>> 3 === 1) key = r.string();
        else if (t >>> 3 === 2) value = r.string();
        else r.skipType(t & 7);
      }
      props[key] = value;
    } else {
      r.skipType(tag & 7);
    }
  }
  return props;
}

/**
 * The `edgetune.model` entry of a model's metadata_props, checked: undefined when the model has none
 * (not written by edgetune). `source` names the model in errors. Errors: EMODEL
 * `<source>: edgetune.model: <path>: expected … but received …` (or `not valid JSON`) when the entry is
 * there but does not hold the contract.
 */
export function parseModelInfo(props: Record<string, string>, source = 'model'): EmbeddedModelInfo | undefined {
  const raw = props[METADATA_KEY];
  if (!raw) return undefined;
  return parseJsonContract(ModelInfoSchema, raw, `${source}: ${METADATA_KEY}`, 'EMODEL');
}

/**
 * The embedded description of a merged card (what `edgetune card` writes into a file, and `export
 * --format triton` into the config's parameters): labels, label offset, preprocessing, output kind and
 * name, task, embedding, and the provenance with `base` (the card's id unless it names one) and `tool`.
 */
export function modelInfoOfCard(c: ModelCard, tool: string): EmbeddedModelInfo {
  return {
    version: 1,
    labels: c.labels,
    ...(c.labelOffset ? { labelOffset: c.labelOffset } : {}),
    preprocess: c.preprocess,
    outputKind: c.outputKind,
    outputName: c.outputName,
    ...(c.task ? { task: c.task } : {}),
    ...(c.embedding ? { embedding: c.embedding } : {}),
    ...(c.openSet ? { openSet: c.openSet } : {}),
    provenance: { ...(c.provenance ?? {}), base: c.provenance?.base ?? c.id, tool },
  };
}
