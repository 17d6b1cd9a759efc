// The model card: everything edgetune needs to know to feed a model and read its answer, as one
// plain, serialisable object shared by every command, the library and the kiosk page. Browser-safe.
//
// A card is merged from layers by one rule (`mergeCard`), highest first:
//   flags (CLI options / library overrides) > card file beside the model > embedded `edgetune.model`
//   metadata > registry entry > graph signature > assumed (ImageNet habits)
// and records, per field, which layer it came from (`sources`) and what had to be assumed
// (`assumptions`), so `inspect` can show it and `quantize`/`finetune` can say what they guessed.
// The one postprocess rule that reads `outputKind` is `toProbabilities` in classify/postprocess.ts.

import * as v from 'valibot';
import { PreprocessSpecSchema, type PreprocessSpec } from './preprocess-spec.js';
import { parseContract } from './schema.js';
import { checkOptionKeys, type AssertNever } from './options.js';

// The card's schemas define the contract once; the types below are derived from them. A card file
// beside a model is read with `CardLayerSchema` (strict: a misspelt key is an error, not ignored).

/** Where a card field came from, highest priority first. */
export const CARD_SOURCES = ['flags', 'card-file', 'embedded', 'registry', 'graph', 'assumed'] as const;
export type CardSource = (typeof CARD_SOURCES)[number];

/**
 * How a model's output row becomes probabilities. `auto`: softmax unless the row already sums to 1; for a
 * multilabel model the card resolves `auto` from the graph (classify/describe.ts: Sigmoid output →
 * `probabilities`, else `logits`).
 */
export const OutputKindSchema = v.picklist(['logits', 'probabilities', 'auto']);
export type OutputKind = v.InferOutput<typeof OutputKindSchema>;

/**
 * What a model's outputs mean: `classification` (one class: argmax / top-k of the probabilities),
 * `multilabel` (each label's own probability, sigmoid: the labels above 0.5 apply) or `regression`
 * (the outputs are values, one per label name). Absent = classification.
 */
export const TaskSchema = v.picklist(['classification', 'multilabel', 'regression']);
export type ModelTask = v.InferOutput<typeof TaskSchema>;

/**
 * Why `name` cannot be shown as class scores (`shower`: what shows them, e.g. "a stream smooths and
 * shows", "the kiosk page shows"): a regression model's outputs are values, which would read as class
 * percentages ("petals 8391%"). Undefined for a classifier or multilabel model.
 */
export function classScoresProblem(task: ModelTask | undefined, name: string, shower: string): string | undefined {
  return task === 'regression' ? `${name} is a regression model: ${shower} class scores, not values (edgetune classify reads its values)` : undefined;
}

/** Where head training cuts the backbone. */
export const EmbeddingSpecSchema = v.strictObject({
  /** Tensor name; `null` = found from the graph (input of the last Gemm/MatMul, …). */
  tensor: v.nullable(v.string()),
  /** Feature size after pooling (0 = unknown until the graph is read). */
  dims: v.pipe(v.number(), v.integer(), v.minValue(0)),
  /** `global-average` pools an [N,C,H,W] tensor to [N,C]. Default `none`. */
  pool: v.optional(v.picklist(['none', 'global-average'])),
  note: v.optional(v.string()),
});
export type EmbeddingSpec = v.InferOutput<typeof EmbeddingSpecSchema>;

/**
 * Open-set calibration a fine-tuned classifier carries (runtime/train/openset.ts fits it): `method`
 * (mahalanobis: Lee et al. 2018), the graph output `output` (float [N, 1], higher = less like anything
 * taught) and its `threshold` (above it the input is "unknown"), the softmax `temperature` (Guo et al.
 * 2017; already applied in the graph's probabilities), the share of known validation images the
 * threshold was chosen to keep (`target`) and what it kept there (`kept`).
 */
export const OpenSetSchema = v.object({
  method: v.picklist(['mahalanobis']),
  output: v.string(),
  threshold: v.pipe(v.number(), v.finite()),
  temperature: v.pipe(v.number(), v.minValue(0)),
  target: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
  kept: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
  fittedOn: v.optional(v.picklist(['validation', 'training'])),
  /** The Mahalanobis covariance: one pooled within-class covariance, or one per class (runtime/train/openset.ts). */
  covariance: v.optional(v.picklist(['shared', 'per-class'])),
  /** Backbone tensors a multi-layer score reads (the embedding is `edgetune_embedding`); absent: the embedding alone. */
  layers: v.optional(v.array(v.string())),
});
export type OpenSetSpec = v.InferOutput<typeof OpenSetSchema>;

const labelOffset = v.pipe(v.number(), v.integer(), v.minValue(0));
const provenance = v.record(v.string(), v.unknown());

/** The fields a layer may set. Every field is optional in a layer; the merged card has them all. */
export const CardLayerSchema = v.strictObject({
  /** A card file may say which card format it is written in (1). */
  version: v.optional(v.literal(1)),
  id: v.optional(v.string()),
  inputName: v.optional(v.string()),
  outputName: v.optional(v.string()),
  // strict at every level: `preprocess.maen` or `openSet.treshold` in a card file is refused, not ignored
  preprocess: v.optional(v.strictObject(v.partial(PreprocessSpecSchema).entries)),
  labels: v.optional(v.array(v.string())),
  /** Output index of label 0 (1 when index 0 is a background class). */
  labelOffset: v.optional(labelOffset),
  outputKind: v.optional(OutputKindSchema),
  /** What the outputs mean (see TaskSchema). Default classification. */
  task: v.optional(TaskSchema),
  embedding: v.optional(EmbeddingSpecSchema),
  openSet: v.optional(v.strictObject(OpenSetSchema.entries)),
  provenance: v.optional(provenance),
});
export type CardLayer = v.InferOutput<typeof CardLayerSchema>;

export type CardField = 'id' | 'inputName' | 'outputName' | 'preprocess' | 'labels' | 'labelOffset' | 'outputKind' | 'task' | 'embedding' | 'openSet';

export const ModelCardSchema = v.object({
  version: v.literal(1),
  /** Registry id, or the model's file name. */
  id: v.string(),
  inputName: v.string(),
  outputName: v.string(),
  /** Input geometry, layout, dtype and pixel normalisation. */
  preprocess: PreprocessSpecSchema,
  /** Class names; label i is output index i + labelOffset. */
  labels: v.array(v.string()),
  labelOffset,
  /** Why labels and labelOffset are what they are (the label rule, runtime/core/labels.ts): counts and sources. */
  labelReason: v.optional(v.string()),
  outputKind: OutputKindSchema,
  /** What the outputs mean (see TaskSchema); absent = classification. */
  task: v.optional(TaskSchema),
  embedding: v.optional(EmbeddingSpecSchema),
  /** Open-set calibration ("unknown" inputs); absent = the model never says unknown by itself. */
  openSet: v.optional(OpenSetSchema),
  provenance: v.optional(provenance),
  /** Which layer each field came from (preprocess per sub-field: `preprocess.mean`, …). */
  sources: v.record(v.string(), v.picklist(CARD_SOURCES)),
  /** Plain sentences for what was assumed rather than read. Empty when the model is fully described. */
  assumptions: v.array(v.string()),
});
export type ModelCard = v.InferOutput<typeof ModelCardSchema>;

/**
 * A card file's layer (JSON already parsed), checked. `source` names the file in errors.
 * Errors: EMODEL `<source>: <path>: expected … but received …`, one line per problem.
 */
export function parseCardLayer(json: unknown, source: string): CardLayer {
  return parseContract(CardLayerSchema, json, source, 'EMODEL');
}

/**
 * Every field of a PreprocessSpec (a card's `preprocess`), for refusing a misspelt one in a card file or
 * an `overrides.preprocess` (`unknown option "overrides.preprocess.maen"`). The type below fails to compile
 * when a field is missing.
 */
export const PREPROCESS_KEYS = ['width', 'height', 'channels', 'layout', 'colorOrder', 'range', 'mean', 'std', 'resize', 'crop', 'dtype'] as const satisfies readonly (keyof PreprocessSpec)[];
/** `never` while PREPROCESS_KEYS (the preprocess spec's fields) lists every preprocess field (a compile error names a missing one). */
export type UnlistedPreprocessField = AssertNever<Exclude<keyof PreprocessSpec, (typeof PREPROCESS_KEYS)[number]>>;

/**
 * Refuse misspelt keys in a card layer given as an option from JavaScript (`overrides` of
 * describeModel / loadClassifier / connectRemoteModel, finetune's `card`): `{ preprocess: { maen: … } }`
 * would otherwise describe the model with the assumed mean, without a word. `within` is the option's
 * name. Errors: EARG `<fn>: unknown option "overrides.preprocess.maen" (overrides.preprocess options: width, …)`.
 */
export function checkCardLayerKeys(fn: string, layer: CardLayer | undefined, within: string): void {
  if (layer == null || typeof layer !== 'object') return;
  checkOptionKeys(fn, layer, Object.keys(CardLayerSchema.entries), within);
  checkOptionKeys(fn, layer.preprocess, PREPROCESS_KEYS, `${within}.preprocess`);
  checkOptionKeys(fn, layer.embedding, Object.keys(EmbeddingSpecSchema.entries), `${within}.embedding`);
  checkOptionKeys(fn, layer.openSet, Object.keys(OpenSetSchema.entries), `${within}.openSet`);
}

/**
 * Merge layers by the card rule: for each field the highest-priority layer that sets it wins.
 * `layers` maps each source to its layer (absent sources are skipped). The result still needs a
 * complete preprocess spec: a missing sub-field is an error naming it (the `assumed` layer normally
 * supplies every field, so this only fires when a caller passes no `assumed` layer).
 */
export function mergeCard(layers: Partial<Record<CardSource, CardLayer>>, assumptions: readonly string[] = []): ModelCard {
  const sources: Record<string, CardSource> = {};
  const pick = <K extends keyof CardLayer>(key: K): CardLayer[K] | undefined => {
    for (const s of CARD_SOURCES) {
      const v = layers[s]?.[key];
      if (v !== undefined) {
        sources[key] = s;
        return v;
      }
    }
    return undefined;
  };
  const preprocess: Record<string, unknown> = {};
  for (const k of PREPROCESS_KEYS) {
    for (const s of CARD_SOURCES) {
      const v = layers[s]?.preprocess?.[k];
      if (v !== undefined) {
        preprocess[k] = Array.isArray(v) ? [...v] : v;
        sources[`preprocess.${k}`] = s;
        break;
      }
    }
    if (preprocess[k] === undefined) throw new Error(`model card: no layer says preprocess.${k}`);
  }
  const id = pick('id');
  const inputName = pick('inputName');
  const outputName = pick('outputName');
  if (id === undefined || inputName === undefined || outputName === undefined) {
    throw new Error(`model card: no layer names the model's ${id === undefined ? 'id' : inputName === undefined ? 'input' : 'output'}`);
  }
  const labels = pick('labels') ?? [];
  const card: ModelCard = {
    version: 1,
    id,
    inputName,
    outputName,
    preprocess: preprocess as unknown as PreprocessSpec,
    labels: [...labels],
    labelOffset: pick('labelOffset') ?? 0,
    outputKind: pick('outputKind') ?? 'auto',
    sources,
    assumptions: [],
  };
  const task = pick('task');
  if (task) card.task = task;
  const embedding = pick('embedding');
  if (embedding) card.embedding = { ...embedding };
  const openSet = pick('openSet');
  if (openSet) card.openSet = { ...openSet };
  const provenance = layers.embedded?.provenance ?? layers['card-file']?.provenance;
  if (provenance) card.provenance = provenance;
  card.assumptions = [...assumptions];
  return card;
}

/** Fields whose value was assumed (not read from the model, its card or the user). */
export function assumedFields(card: ModelCard): string[] {
  return Object.entries(card.sources)
    .filter(([, s]) => s === 'assumed')
    .map(([k]) => k);
}

/**
 * "Is it described?", one rule: a use needs some of the card's field groups said by something other
 * than the `assumed` layer (flags, a card file, embedded metadata, the registry; the graph for names,
 * size, layout and dtype). `preprocessing`: every `preprocess.*` field (calibration and the page feed
 * pixels this way); `labels`: labels and labelOffset; `output`: outputKind.
 *   quantize   preprocessing (refused unless --allow-assumed: the calibration images are preprocessed this way)
 *   kiosk      preprocessing and labels (refused: the page shows the labels; no override flags there)
 *   card       preprocessing, labels and output (refused unless --allow-assumed: the file would carry guesses as facts)
 *   classify, eval, inspect, finetune: nothing (they say once what was assumed)
 */
export const DESCRIPTION_NEEDS = {
  quantize: ['preprocessing'],
  kiosk: ['preprocessing', 'labels'],
  card: ['preprocessing', 'labels', 'output'],
} as const satisfies Record<string, readonly ('preprocessing' | 'labels' | 'output')[]>;
export type DescribedUse = keyof typeof DESCRIPTION_NEEDS;

/** The assumed fields `use` needs described (empty: described enough), in the card's field order. */
export function undescribedFields(card: ModelCard, use: DescribedUse): string[] {
  const groups: readonly string[] = DESCRIPTION_NEEDS[use];
  const groupOf = (f: string) => (f.startsWith('preprocess.') ? 'preprocessing' : f === 'labels' || f === 'labelOffset' ? 'labels' : f === 'outputKind' ? 'output' : undefined);
  return assumedFields(card).filter((f) => groups.includes(groupOf(f) ?? ''));
}

/** The card file that describes `modelPath`: `<name>.card.json` beside it (`m.onnx` → `m.card.json`). */
export function cardFilePath(modelPath: string): string {
  return modelPath.replace(/\.(onnx|ort|tflite|json)$/i, '') + '.card.json';
}
