// Partial fine-tuning through ONNX training graphs: cut a backbone (cut.ts), build forward+backward
// graphs (autodiff.ts, grad-ops.ts, shapes.ts), train tail + head through any session (tail-trainer.ts).
// Browser-safe.

export { tailBlocks, resolveCut, cutModel, type CutPoint, type CutResult } from './cut.js';
export { buildTrainingGraph, backprop, defaultTrainable, type TrainingGraph, type TrainingGraphOptions } from './autodiff.js';
export { GRAD_RULES, unbroadcast, type GradContext, type GradRule } from './grad-ops.js';
export { inferShapes, broadcastShapes, type Dim, type Shape } from './shapes.js';
export type { GraphSession, SessionFactory } from './session.js';
export {
  trainTail,
  evaluateTail,
  exportTail,
  crossEntropy,
  DEFAULT_TAIL_CONFIG,
  type TailTrainConfig,
  type TailTrainInput,
  type TailTrainResult,
  type TailEpochStats,
  type TailData,
  type TailStream,
  type TailRows,
} from './tail-trainer.js';
