// edgetune's library entry: load a classifier, run sessions with provider fallback, preprocess, and
// resolve models from the registry. Stages beyond inference (quantization, fine-tuning, camera
// streams) are exported from their own modules below.

export { loadClassifier, type Classifier, type ClassifierOptions, type ClassifyOptions, type ClassifyFilesOptions, type Classification, type FileResult } from './classify/classifier.js';
export { createSession, liveSessionCount, parseProviders, KNOWN_PROVIDERS, providerMemory, type ModelSession, type SessionOptions, type ProviderName, type ProviderRequest } from './session/session.js';
export { PROVIDER_TABLE, ProviderError, type ProviderInfo } from './core/providers.js';
export type { Session } from './core/session.js';
export { toTensor, writeImage, DEFAULT_SPEC, type PreprocessSpec, type HwcImage } from './image/preprocess.js';
export { decodeImage, decodeFull, encodeJpeg, type DecodeOptions } from './image/decode.js';
export { softmax, topK, toProbabilities, type Prediction } from './classify/postprocess.js';
export { mergeCard, assumedFields, type ModelCard, type CardLayer, type CardSource, type OutputKind } from './core/model-card.js';
export { cardFromBytes } from './classify/describe.js';
export { describeModel, type DescribedModel, type DescribeOptions } from '../models/describe.js';
export { EdgetuneError, invalidParameter } from './core/errors.js';
export type { TensorData, TensorType } from './core/tensor.js';
export { METADATA_KEY, type EmbeddedModelInfo } from './core/metadata.js';
export { readModelInfo } from './io/model-file.js';
export { probeProviders } from './session/probe.js';
export { benchModel, type BenchRow } from './classify/bench.js';
export { loadRegistry, resolveModel, labelsOf } from '../models/loader.js';
export { exportTritonRepository, parseInstanceGroup, TRITON_CARD_PARAMETER, TRITON_SHA256_PARAMETER, type TritonExportOptions, type TritonExportResult, type TritonTensor, type InstanceGroup } from './fleet/triton.js';
export { importModelFile, importedModelPath, importFormatOf, type ImportedModelFile, type ImportFileOptions } from '../models/import.js';
export { specOf, type ModelEntry } from '../models/registry.js';
export { detectProfile, detectFacts, getProfile, type DeviceProfile } from '../devices/profiles.js';

// Personalization: finetune() (everything `edgetune finetune` does; more in 'edgetune/train'), the
// browser-safe trainer, augmentation and export, and the ONNX toolkit.
export { finetune, type FinetuneOptions, type FinetuneProgress, type FinetuneReport, type TargetsReport, type LabelledFile } from './train/node/finetune.js';
export { trainHead, trainHeadSync, predictHead, prototypeHead, computeMetrics } from './train/index.js';
export type { HeadWeights, TrainConfig, TrainResult, FeatureSet } from './train/index.js';
export { parseAugmentation, sampleView, viewRng } from './train/augment/ops.js';
export { exportClassifierModel, embeddingModel, findCut, headFromModel } from './train/export.js';
export * as onnx from './onnx/index.js';

// Streams: frame sources live in devices/, the pipeline and the kiosk service here.
export { StreamPipeline } from './stream/pipeline.js';
export { startServer } from './stream/serve.js';
export { createTeach, checkTeachable, TeachError, type Teach, type TeachOptions, type TeachTrainResult, type TeachLabel, type HardFrame } from './stream/teach.js';
export { Histogram, exposition, LATENCY_BUCKETS_SECONDS, type MetricFamily, type HistogramSnapshot } from './stream/metrics.js';

// The Open Inference Protocol (KServe v2 / Triton HTTP): serve models, use served models.
export { serveModels, inferMetricsText, type ModelServer, type ServeModelsOptions, type InferStats } from './serve/server.js';
export { createOipRoutes, modelConfig, modelMetadata, servedName, type OipRoutes, type OipRoutesOptions } from './serve/routes.js';
export { connectRemoteModel, isModelUrl, parseModelUrl, type RemoteModel, type RemoteOptions, type ConnectRemoteOptions } from './serve/client.js';
export { modelName } from './serve/oip.js';
export { createSource } from '../devices/sources/index.js';

// int8 quantization.
export { quantizeModel } from '../calibration/index.js';
