// The stream pipeline's public shapes (options, results, events, stats) and their text/JSON forms, beside
// the state machine in pipeline.ts that produces them.

import type { Frame, FrameGeometry, FrameSource, SourceEvent } from '../../devices/sources/types.js';
import type { Prediction } from '../classify/postprocess.js';
import type { SessionOptions } from '../session/session.js';
import type { LatencySummary } from './smoothing.js';

export const STAGES = ['queue', 'preprocess', 'inference', 'postprocess', 'total'] as const;
export type Stage = (typeof STAGES)[number];

export interface StreamOptions {
  /** Predictions per frame in `top`. Default 5. */
  topK?: number;
  /** EMA weight of the history, 0 (no smoothing) .. <1. Default 0.6. */
  smoothing?: number;
  /** Smoothed probability a label needs to be shown. Default 0.5. */
  threshold?: number;
  /** A shown label holds until its smoothed probability falls below threshold - hysteresis. Default 0.1. */
  hysteresis?: number;
  /** Stop after this many processed frames. */
  maxFrames?: number;
  /** Latest-frame-wins (drop stale frames). Default: the source's `live`. */
  dropFrames?: boolean;
  signal?: AbortSignal;
  /** Opens a source with other geometry, for hot-swapping to a model with another input size. */
  reopen?: (geometry: FrameGeometry) => Promise<FrameSource>;
  /**
   * Where the model runs: 'worker' (default) runs it on a worker thread with its own session, so
   * capture and preprocessing continue meanwhile (onnxruntime-node blocks the thread it runs on);
   * 'main' runs the classifier's own session on the main thread.
   */
  inference?: 'worker' | 'main';
  /** Session options for the worker's session. Default: the classifier's provider, onnxruntime's threads. */
  sessionOptions?: Pick<SessionOptions, 'providers' | 'threads' | 'graphOptimizationLevel'>;
  /** Frames in flight to the model: default 2 for lossless sources (keeps the worker busy), 1 for live ones. */
  inflight?: number;
  /** Warnings from the worker's session (providers skipped). */
  onWarning?: (message: string) => void;
}

export interface SmoothedLabel {
  /** The stable label, or "unknown" when nothing is confidently above the threshold. */
  label: string;
  /** Class index of the label (-1 for unknown). */
  index: number;
  /** Smoothed probability of the label (of the best class when unknown). */
  score: number;
  /**
   * A model with an open-set calibration: the unknown score smoothed by the same EMA (higher = less like
   * anything taught); above the classifier's unknownThreshold the label is "unknown" whatever the probabilities.
   */
  unknownScore?: number;
  /**
   * A multilabel model: every label whose smoothed probability is above MULTILABEL_THRESHOLD, highest
   * first (classify's rule, classify/postprocess.ts readOutput; empty when none is), scores rounded to
   * 4 decimals. Absent for other models. `label` stays the single most probable one.
   */
  labels?: Prediction[];
  /**
   * A multilabel model: `labels` as one line in classify's words at whole percent (classify/postprocess.ts
   * multilabelText: `sunflowers (97%), yellow (93%)`, or `(no label above 50%)`), what watch and the
   * live page show. Absent for other models.
   */
  text?: string;
}

export interface StreamResult {
  seq: number;
  /** Frame arrival time, ms since the epoch. */
  ts: number;
  pts?: number;
  /** This frame's own top-k. */
  top: Prediction[];
  smoothed: SmoothedLabel;
  /** Frame arrival → result, ms. */
  ms: number;
  stages: Record<Stage, number>;
  frame: Frame;
  model: string;
}

export interface StreamEvent {
  type: SourceEvent['type'] | 'error' | 'swap' | 'rollback';
  message: string;
}


export interface StreamStats {
  source: string;
  model: string;
  state: 'starting' | 'running' | 'reconnecting' | 'ended' | 'failed';
  uptimeSeconds: number;
  framesIn: number;
  processed: number;
  /** Processed frames whose smoothed label was "unknown" (below the threshold, or above a calibrated model's unknown threshold). */
  unknown: number;
  dropped: number;
  skipped: number;
  errors: number;
  reconnects: number;
  /** Times the frame watchdog found the source stalled (no frames while it kept running). */
  stalls: number;
  /** Times a swapped-in model failed and the previous one was put back. */
  rollbacks: number;
  /** Models swapped in (POST /model, swapModel), rollbacks not counted. */
  swaps: number;
  /** Rates over the last few seconds. */
  fpsIn: number;
  fpsOut: number;
  /** Rates over the whole run. */
  avgFpsIn: number;
  avgFpsOut: number;
  latency: Record<Stage, LatencySummary>;
}

/** `v` rounded to 4 decimals (stats and JSON lines). */
export function round4(v: number): number {
  return Math.round(v * 10000) / 10000;
}

/** The JSON-lines record for one result (what `watch --json` prints). */
export function resultJson(r: StreamResult): Record<string, unknown> {
  const o: Record<string, unknown> = { seq: r.seq, ts: r.ts };
  if (r.pts !== undefined) o.pts = r.pts;
  o.top = r.top;
  o.smoothed = r.smoothed;
  o.ms = r.ms;
  return o;
}

/** One human line of stats. */
export function formatStats(s: StreamStats): string {
  const l = (st: Stage) => `${st} ${s.latency[st].p50.toFixed(1)}/${s.latency[st].p95.toFixed(1)}`;
  return (
    `fps in ${s.fpsIn.toFixed(1)} out ${s.fpsOut.toFixed(1)} | frames ${s.framesIn} processed ${s.processed} dropped ${s.dropped}` +
    `${s.skipped ? ` skipped ${s.skipped}` : ''}${s.reconnects ? ` reconnects ${s.reconnects}` : ''}${s.stalls ? ` stalls ${s.stalls}` : ''}` +
    `${s.errors ? ` errors ${s.errors}` : ''}${s.rollbacks ? ` rollbacks ${s.rollbacks}` : ''}` +
    ` | ms p50/p95: ${STAGES.map(l).join(', ')}`
  );
}
