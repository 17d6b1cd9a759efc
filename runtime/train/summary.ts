// The one report of a fine-tune, as both drivers fill it (BROWSER-SAFE): finetuneSummary() turns a trained
// transfer (runtime/train/finetune.ts) and, when it ran, phase 2 (runtime/train/phase2.ts) into the
// FinetuneSummary that the library's FinetuneReport extends (with its files, timing and int8 scores;
// runtime/train/node/finetune.ts) and the kiosk page keeps with a taught model (teach.ts). Metrics are
// the exported model's: phase 2's when it ran, else the head's.

import type { Transfer, TransferResult } from './finetune.js';
import type { Phase2Summary } from './phase2.js';
import type { Metrics } from './metrics.js';
import type { HeadWeights, TrainConfig, TrainResult } from './types.js';

export interface FinetuneSummary {
  labels: string[];
  /** Images per class, training and validation (a training image counts once, whatever its views). */
  counts: { train: Record<string, number>; val: Record<string, number> };
  head: HeadWeights['kind'];
  /** The head trainer's resolved config (absent for a prototype head). */
  config?: TrainConfig;
  /** Phase 1's best epoch and epochs run (0 for a prototype head). */
  bestEpoch: number;
  epochs: number;
  stoppedEarly: boolean;
  /** Validation accuracy of the exported model (null without validation data). */
  accuracy: number | null;
  /** Validation accuracy of the nearest-class-mean baseline on the same embeddings (null without validation data). */
  prototypeAccuracy: number | null;
  /** Accuracy of the phase-1 head on the training examples (every view). */
  trainAccuracy: number;
  /** Per class, on the validation images (the training ones without validation data). */
  perClass: Record<string, { precision: number; recall: number; f1: number; support: number }>;
  /** confusion[truth][predicted], on the same images. */
  confusion: number[][];
  history: TrainResult['history'];
  /** Phase 2, when it ran: what it did and gained over the head alone. */
  unfreeze?: Phase2Summary;
}

/** The summary of a trained transfer `t` (result `r`), with phase 2's metrics and summary when it ran. */
export function finetuneSummary(t: Pick<Transfer, 'labels' | 'counts'>, r: TransferResult, phase2?: { metrics: Metrics; summary: Phase2Summary }): FinetuneSummary {
  const labels = [...t.labels];
  const m = phase2?.metrics ?? r.metrics;
  const c = t.counts();
  const byLabel = <T>(v: readonly T[]) => Object.fromEntries(labels.map((l, i) => [l, v[i]!]));
  return {
    labels,
    counts: { train: byLabel(c.train), val: byLabel(c.val) },
    head: r.head.kind,
    config: r.training?.config,
    bestEpoch: r.training?.bestEpoch ?? 0,
    epochs: r.training?.history.length ?? 0,
    stoppedEarly: r.training?.stoppedEarly ?? false,
    accuracy: r.validated ? m.accuracy : null,
    prototypeAccuracy: r.prototypeAccuracy,
    trainAccuracy: r.trainAccuracy,
    perClass: byLabel(m.perClass),
    confusion: m.confusion,
    history: r.training?.history ?? [],
    ...(phase2 ? { unfreeze: phase2.summary } : {}),
  };
}
