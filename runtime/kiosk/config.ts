// The contract between the kiosk server and its page: what GET /api/config returns (browser-safe).

import type { ModelCard } from '../core/model-card.js';

/** What the page reads from /api/config. */
export interface KioskConfig {
  version: 1;
  /** The model card, plus where the page fetches the ONNX bytes and how many there are. */
  model: ModelCard & { url: string; bytes: number };
  /** Predictions shown live. */
  topK: number;
  /** Default provider order for the page (`?ep=` overrides). */
  providers?: string;
}
