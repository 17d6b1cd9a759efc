// The package's `edgetune/train` entry (Node): the high-level finetune() (runtime/train/node/finetune.ts,
// everything `edgetune finetune` does), the browser-safe pieces it is made of (the trainer
// runtime/train/index.ts, the fine-tune module runtime/train/finetune.ts, phase 2 runtime/train/phase2.ts,
// augmentation and export), and the Node helpers below them (backbones and embeddings with their disk
// cache, image-folder datasets, resume data).

export * from '../index.js';
export { finetune, reportPaths, type FinetuneOptions, type FinetuneProgress, type FinetuneReport, type TargetsReport, type LabelledFile } from './finetune.js';
export {
  createTransfer, collectEmbeddings, stratifiedSplit, viewCount, viewParams, finetuneConfig, FINETUNE_DEFAULTS, AUTO_PROTOTYPE_BELOW, INT8_CALIBRATION_IMAGES, FROM_PAGE,
  type Transfer, type TransferResult, type TrainOptions, type ViewEmbedder, type CollectOptions, type CollectResult, type SkippedImage, type HeadKind, type FinetuneProvenance,
} from '../finetune.js';
export { runPhase2, phase2Config, keepPhase2, keepTest, KEEP_Z, freshViewSeed, type KeepTest, type Phase2Options, type Phase2Result, type Phase2Settings, type Phase2Summary } from '../phase2.js';
export { planUnfreeze, trainUnfrozen, unfrozenBackbone, UNFREEZE_DEFAULTS, type UnfreezePlan, type UnfrozenResult } from '../finetune-tail.js';
export { parseAugmentation, formatAugmentation, sampleView, viewRng, renderView, type AugmentSpec, type ViewParams } from '../augment/ops.js';
export { exportClassifierModel, embeddingGraph, embeddingModel, findCut, headFromModel, type EmbeddingGraph, type CutSpec } from '../export.js';
export { Embedder, EmbeddingCache, loadBackbone, type Backbone } from './embed.js';
export { scanDataset, finetuneItems, type Dataset, type DatasetItem, type SkippedFile } from './dataset.js';
export { readResume, decodeResume, encodeResume, resumePath, resumeKey, type ResumeData } from './resume.js';
