// The contract between the kiosk server and its page: what GET /api/config returns, as a valibot
// schema (the page checks the response with it; `KioskConfig` is derived from it). Browser-safe.

import * as v from 'valibot';
import { ModelCardSchema } from '../core/model-card.js';
import { parseContract } from '../core/schema.js';

export const KioskConfigSchema = v.object({
  version: v.literal(1),
  /** The model card, plus where the page fetches the ONNX bytes and how many there are. */
  model: v.object({ ...ModelCardSchema.entries, url: v.string(), bytes: v.pipe(v.number(), v.integer(), v.minValue(0)) }),
  /** Predictions shown live. */
  topK: v.pipe(v.number(), v.integer(), v.minValue(1)),
  /** Default provider order for the page (`?ep=` overrides). */
  providers: v.optional(v.string()),
});

/** What the page reads from /api/config. */
export type KioskConfig = v.InferOutput<typeof KioskConfigSchema>;

/** The parsed /api/config response, checked. Errors: EINPUT `/api/config: model.labels[2]: expected string but received 3`. */
export function parseKioskConfig(json: unknown, source = '/api/config'): KioskConfig {
  return parseContract(KioskConfigSchema, json, source);
}
