// edgetune's library entry: load a classifier, run sessions with provider fallback, preprocess, and
// resolve models from the registry. Stages beyond inference (quantization, fine-tuning, camera
// streams) are exported from their own modules below.

export { loadClassifier, type Classifier, type ClassifierOptions, type Classification, type FileResult } from './classifier.js';
export { createSession, liveSessionCount, parseProviders, KNOWN_PROVIDERS, type ModelSession, type SessionOptions, type ProviderName, type ProviderRequest } from './session.js';
export { toTensor, writeImage, DEFAULT_SPEC, type PreprocessSpec, type HwcImage } from './preprocess.js';
export { decodeImage, decodeFull, encodeJpeg, type DecodeOptions } from './image.js';
export { softmax, topK, type Prediction } from './postprocess.js';
export { EdgetuneError, invalidParameter } from './errors.js';
export type { TensorData, TensorType } from './tensor.js';
export { readModelInfo, METADATA_KEY, type EmbeddedModelInfo } from './model-info.js';
export { probeProviders } from './probe.js';
export { benchModel, type BenchRow } from './bench.js';
export { loadRegistry, resolveModel, labelsOf } from '../models/loader.js';
export { specOf, type ModelEntry } from '../models/registry.js';
export { detectProfile, detectFacts, getProfile, type DeviceProfile } from '../devices/profiles.js';
