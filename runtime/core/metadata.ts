// Model self-description: models that edgetune exports (fine-tuned heads, quantized models) carry
// their labels and preprocessing in ONNX metadata_props under the key `edgetune.model`, so the file
// alone is enough to serve it. This module defines that contract and reads it cheaply: only the
// top-level metadata_props field of the ModelProto is decoded, the graph is skipped. Browser-safe
// (io/model-file.ts reads it from a file).

import protobuf from 'protobufjs/minimal.js';
import type { PreprocessSpec } from '../image/preprocess.js';
import type { EmbeddingSpec, OutputKind } from './model-card.js';

export const METADATA_KEY = 'edgetune.model';

export interface EmbeddedModelInfo {
  version: 1;
  labels: string[];
  preprocess: PreprocessSpec;
  /** How outputs become probabilities (`auto`: softmax unless a row already sums to 1). */
  outputKind: OutputKind;
  /** Where head training cuts the backbone (set by `edgetune card` / imports). */
  embedding?: EmbeddingSpec;
  outputName?: string;
  /** Output index of label 0 (1 when the model has a background class at index 0). Default 0. */
  labelOffset?: number;
  /** Where the model came from (base model id, head kind, quantization method …). */
  provenance?: Record<string, unknown>;
}

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

export function parseModelInfo(props: Record<string, string>): EmbeddedModelInfo | undefined {
  const raw = props[METADATA_KEY];
  if (!raw) return undefined;
  const info = JSON.parse(raw) as EmbeddedModelInfo;
  if (info.version !== 1 || !Array.isArray(info.labels) || !info.preprocess) return undefined;
  return info;
}
