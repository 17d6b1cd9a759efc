// Model importers: TFLite flatbuffers and TensorFlow.js layers models (Teachable Machine exports) →
// ONNX (NCHW float input; quantized TFLite as QDQ), each with a card of what the source file says.
// Browser-safe: bytes and parsed JSON in, OnnxModel out; reading files is the caller's business.
//
//   const { model, card } = importTflite(tfliteBytes, { labels: labelsTxt });
//   const { model, card } = importTfjsLayers(modelJson, { 'weights.bin': bin }, { metadata });
//   encodeModel(model) → .onnx bytes; card.layer is the converted model's model-card layer
//   (core/model-card.ts CardLayer: names, full preprocess spec, labels, labelOffset, outputKind,
//   embedding); the rest of the card is about the source file (sourceInput, preprocessSource, …).

export { importTflite, type TfliteImportOptions } from './tflite.js';
export { readAssociatedFiles } from './tflite-card.js';
export { parseTflite, type TfliteModel, type TfliteSubgraph, type TfliteTensor, type TfliteOperator, type TfliteQuantization } from './tflite-schema.js';
export { parseLabels, decideLabels } from '../../core/labels.js';
export type { ImportedModelCard, ImportedCardLayer, PixelNormalisation, ImportResult } from './common.js';
export { importTfjsLayers, type TfjsImportOptions, type TfjsModelJson, type TfjsLayer, type TfjsMetadata } from './tfjs.js';
export { decodeTfjsWeights, type TfjsWeight, type TfjsWeightGroup, type TfjsWeightSpec } from './tfjs-weights.js';
