// The model card: everything edgetune needs to know to feed a model and read its answer, as one
// plain, serialisable object shared by every command, the library and the kiosk page. Browser-safe.
//
// A card is merged from layers by one rule (`mergeCard`), highest first:
//   flags (CLI options / library overrides) > card file beside the model > embedded `edgetune.model`
//   metadata > registry entry > graph signature > assumed (ImageNet habits)
// and records, per field, which layer it came from (`sources`) and what had to be assumed
// (`assumptions`), so `inspect` can show it and `quantize`/`finetune` can say what they guessed.
// The one postprocess rule that reads `outputKind` is `toProbabilities` in classify/postprocess.ts.

import { EdgetuneError } from './errors.js';
import type { PreprocessSpec } from '../image/preprocess.js';

/** Where a card field came from, highest priority first. */
export type CardSource = 'flags' | 'card-file' | 'embedded' | 'registry' | 'graph' | 'assumed';
export const CARD_SOURCES: readonly CardSource[] = ['flags', 'card-file', 'embedded', 'registry', 'graph', 'assumed'];

/** How a model's output row becomes probabilities. `auto`: softmax unless the row already sums to 1. */
export type OutputKind = 'logits' | 'probabilities' | 'auto';

/** Where head training cuts the backbone. */
export interface EmbeddingSpec {
  /** Tensor name; `null` = found from the graph (input of the last Gemm/MatMul, …). */
  tensor: string | null;
  /** Feature size after pooling (0 = unknown until the graph is read). */
  dims: number;
  /** `global-average` pools an [N,C,H,W] tensor to [N,C]. Default `none`. */
  pool?: 'none' | 'global-average';
  note?: string;
}

/** The fields a layer may set. Every field is optional in a layer; the merged card has them all. */
export interface CardLayer {
  id?: string;
  inputName?: string;
  outputName?: string;
  preprocess?: Partial<PreprocessSpec>;
  labels?: string[];
  /** Output index of label 0 (1 when index 0 is a background class). */
  labelOffset?: number;
  outputKind?: OutputKind;
  embedding?: EmbeddingSpec;
  provenance?: Record<string, unknown>;
}

export type CardField = 'id' | 'inputName' | 'outputName' | 'preprocess' | 'labels' | 'labelOffset' | 'outputKind' | 'embedding';

export interface ModelCard {
  version: 1;
  /** Registry id, or the model's file name. */
  id: string;
  inputName: string;
  outputName: string;
  /** Input geometry, layout, dtype and pixel normalisation. */
  preprocess: PreprocessSpec;
  /** Class names; label i is output index i + labelOffset. */
  labels: string[];
  labelOffset: number;
  outputKind: OutputKind;
  embedding?: EmbeddingSpec;
  provenance?: Record<string, unknown>;
  /** Which layer each field came from (preprocess per sub-field: `preprocess.mean`, …). */
  sources: Record<string, CardSource>;
  /** Plain sentences for what was assumed rather than read. Empty when the model is fully described. */
  assumptions: string[];
}

const PREPROCESS_KEYS = ['width', 'height', 'channels', 'layout', 'colorOrder', 'range', 'mean', 'std', 'resize', 'crop', 'dtype'] as const;

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
  const embedding = pick('embedding');
  if (embedding) card.embedding = { ...embedding };
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

/** The card file that describes `modelPath`: `<name>.card.json` beside it (`m.onnx` → `m.card.json`). */
export function cardFilePath(modelPath: string): string {
  return modelPath.replace(/\.(onnx|ort|tflite|json)$/i, '') + '.card.json';
}

/**
 * Check a JSON value as a card layer (a card file, or the `edgetune.card` of an import). Unknown
 * fields are refused so a typo does not pass silently. Errors: EINPUT naming `source` and the field.
 */
export function parseCardLayer(raw: unknown, source: string): CardLayer {
  const fail = (field: string, want: string, got: unknown): never => {
    throw new EdgetuneError('EINPUT', `${source}: ${field}: expected ${want} but received ${JSON.stringify(got)}`, { subject: source });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('card', 'a JSON object', raw);
  const o = raw as Record<string, unknown>;
  const known = new Set(['version', 'id', 'inputName', 'outputName', 'preprocess', 'labels', 'labelOffset', 'outputKind', 'embedding', 'provenance', '$comment']);
  for (const k of Object.keys(o)) if (!known.has(k)) fail(k, `one of the card fields (${[...known].join(', ')})`, 'an unknown field');
  const layer: CardLayer = {};
  for (const k of ['id', 'inputName', 'outputName'] as const) {
    if (o[k] !== undefined) layer[k] = typeof o[k] === 'string' ? (o[k] as string) : fail(k, 'a string', o[k]);
  }
  if (o.labels !== undefined) layer.labels = Array.isArray(o.labels) && o.labels.every((l) => typeof l === 'string') ? (o.labels as string[]) : fail('labels', 'an array of strings or a label file name', o.labels);
  if (o.labelOffset !== undefined) layer.labelOffset = Number.isInteger(o.labelOffset) && (o.labelOffset as number) >= 0 ? (o.labelOffset as number) : fail('labelOffset', 'an integer >= 0', o.labelOffset);
  if (o.outputKind !== undefined) layer.outputKind = ['logits', 'probabilities', 'auto'].includes(o.outputKind as string) ? (o.outputKind as OutputKind) : fail('outputKind', '"logits", "probabilities" or "auto"', o.outputKind);
  if (o.embedding !== undefined) {
    const e = o.embedding as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || !(e.tensor === null || typeof e.tensor === 'string')) fail('embedding.tensor', 'a tensor name or null', e?.tensor);
    layer.embedding = { tensor: e.tensor as string | null, dims: typeof e.dims === 'number' ? e.dims : 0, ...(e.pool === 'global-average' || e.pool === 'none' ? { pool: e.pool } : {}) };
  }
  if (o.provenance !== undefined) layer.provenance = typeof o.provenance === 'object' && o.provenance !== null ? (o.provenance as Record<string, unknown>) : fail('provenance', 'an object', o.provenance);
  if (o.preprocess !== undefined) {
    const p = o.preprocess as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) fail('preprocess', 'an object', p);
    const pre: Record<string, unknown> = {};
    const nums = (k: string, n?: number) => (Array.isArray(p[k]) && (p[k] as unknown[]).every((x) => typeof x === 'number' && Number.isFinite(x)) && (n === undefined || (p[k] as unknown[]).length === n) ? p[k] : fail(`preprocess.${k}`, n ? `${n} numbers` : 'an array of numbers', p[k]));
    const pick = (k: string, allowed: readonly unknown[]) => (allowed.includes(p[k]) ? p[k] : fail(`preprocess.${k}`, allowed.map((a) => JSON.stringify(a)).join(' | '), p[k]));
    for (const k of Object.keys(p)) {
      if (k === 'width' || k === 'height') pre[k] = Number.isInteger(p[k]) && (p[k] as number) > 0 ? p[k] : fail(`preprocess.${k}`, 'a positive integer', p[k]);
      else if (k === 'channels') pre[k] = pick(k, [1, 3]);
      else if (k === 'layout') pre[k] = pick(k, ['NCHW', 'NHWC']);
      else if (k === 'colorOrder') pre[k] = pick(k, ['RGB', 'BGR', 'GRAY']);
      else if (k === 'resize') pre[k] = pick(k, ['cover', 'fill', 'contain']);
      else if (k === 'dtype') pre[k] = pick(k, ['float32', 'float16']);
      else if (k === 'crop') pre[k] = typeof p[k] === 'number' && (p[k] as number) > 0 && (p[k] as number) <= 1 ? p[k] : fail('preprocess.crop', 'a number in (0, 1]', p[k]);
      else if (k === 'range') pre[k] = nums(k, 2);
      else if (k === 'mean' || k === 'std') pre[k] = nums(k);
      else fail(`preprocess.${k}`, 'a preprocessing field (width, height, channels, layout, colorOrder, range, mean, std, resize, crop, dtype)', 'an unknown field');
    }
    layer.preprocess = pre as Partial<PreprocessSpec>;
  }
  return layer;
}
