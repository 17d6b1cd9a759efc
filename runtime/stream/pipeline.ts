// Stream inference: frames from a devices/sources FrameSource → classifier → smoothed, hysteresis-
// stable labels. Capture never waits for inference: for live sources a single "latest frame" slot
// is overwritten (stale frames are dropped and counted); for files read as fast as possible a
// two-frame queue applies backpressure instead, so nothing is lost. Preprocessing (toTensor) of
// frame n+1 runs on the main thread while onnxruntime runs frame n on its own threads. Probabilities
// are smoothed with an EMA; the reported label needs `threshold` to appear and holds until it falls
// below `threshold - hysteresis` ("unknown" otherwise). Stats: fps in/out, dropped, skipped, p50/p95
// per stage. Models can be hot-swapped between frames: a new model first classifies a real frame on
// the inference stages that will serve it (a model that cannot run, or outputs NaN, is refused and
// the old one keeps serving), and the previous model is kept so that a swapped-in model that starts
// failing is rolled back. Longer than ~500 lines because StreamPipeline is one state machine (capture
// loop, in-flight frames, swap queue, rollback, stats) whose parts share its fields; the parts that
// stand alone live beside it (stages.ts, check.ts, smoothing.ts, worker.ts; its shapes in stream-types.ts).

import { EventEmitter } from 'node:events';
import type { Frame, FrameGeometry, FrameSource, SourceEvent } from '../../devices/sources/types.js';
import type { Classifier } from '../classify/classifier.js';
import { LabelSmoother, LatencyWindow, RateMeter, type LatencySummary } from './smoothing.js';
import { STAGES, round4, type Stage, type StreamOptions, type SmoothedLabel, type StreamResult, type StreamEvent, type StreamStats } from './stream-types.js';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { multilabelText, readOutput, topK } from '../classify/postprocess.js';
import type { TensorData } from '../core/tensor.js';
import { inferenceStages, type InferenceStages } from './stages.js';
import { checkStages, frameForGeometry } from './check.js';
import { Histogram, type HistogramSnapshot } from './metrics.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';
import { classScoresProblem } from '../core/model-card.js';

/** Every key of StreamOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const STREAM_OPTION_KEYS = ['topK', 'smoothing', 'threshold', 'hysteresis', 'maxFrames', 'dropFrames', 'signal', 'reopen', 'inference', 'sessionOptions', 'inflight', 'onWarning'] as const satisfies readonly (keyof StreamOptions)[];
/** `never` while STREAM_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedStreamOption = AssertNever<Exclude<keyof StreamOptions, (typeof STREAM_OPTION_KEYS)[number]>>;
type StreamSessionOptions = NonNullable<StreamOptions['sessionOptions']>;
const STREAM_SESSION_OPTION_KEYS = ['providers', 'threads', 'graphOptimizationLevel'] as const satisfies readonly (keyof StreamSessionOptions)[];
/** `never` while STREAM_SESSION_OPTION_KEYS lists every key of `sessionOptions` (a compile error names a missing one). */
export type UnlistedStreamSessionOption = AssertNever<Exclude<keyof StreamSessionOptions, (typeof STREAM_SESSION_OPTION_KEYS)[number]>>;

export { STAGES, resultJson, formatStats } from './stream-types.js';
export type { Stage, StreamOptions, SmoothedLabel, StreamResult, StreamEvent, StreamStats } from './stream-types.js';

/** Inference failures in a row after which a swapped-in model is replaced by the previous one. */
export const ROLLBACK_AFTER_ERRORS = 3;
/** Inference failures in a row after which the stream fails (no previous model to go back to). */
export const FAIL_AFTER_ERRORS = 10;

export function geometryOfClassifier(clf: Classifier): FrameGeometry {
  const s = clf.spec;
  return { width: s.width, height: s.height, channels: s.channels, resize: s.resize, crop: s.crop };
}

function sameGeometry(a: FrameGeometry, b: FrameGeometry): boolean {
  return a.width === b.width && a.height === b.height && a.channels === b.channels && a.resize === b.resize && a.crop === b.crop;
}

interface Prepared {
  frame: Frame;
  tensor: TensorData;
  arrived: number;
  queueMs: number;
  prepMs: number;
  stages: InferenceStages;
}

/**
 * The pipeline. `run()` processes until the source ends, maxFrames, or the signal aborts, and
 * resolves with the final stats. Events: 'result' (StreamResult), 'frame' (every captured Frame),
 * 'event' (StreamEvent: reconnects, skipped frames, swaps, errors).
 */
export class StreamPipeline extends EventEmitter {
  private stages!: InferenceStages;
  private source: FrameSource;
  private readonly smoother: LabelSmoother;
  /** EMA of a calibrated model's unknown score (undefined until a first frame, and after a reset). */
  private unknownEma: number | undefined;
  private readonly k: number;
  private readonly drop: boolean;
  private readonly lat = Object.fromEntries(STAGES.map((s) => [s, new LatencyWindow()])) as Record<Stage, LatencyWindow>;
  /** All-time per-stage latency, seconds, in Prometheus buckets (stream/metrics.ts). */
  private readonly hist = Object.fromEntries(STAGES.map((s) => [s, new Histogram()])) as Record<Stage, Histogram>;
  private swaps = 0;
  private readonly inRate = new RateMeter();
  private readonly outRate = new RateMeter();
  private framesIn = 0;
  private processed = 0;
  private unknownFrames = 0;
  private dropped = 0;
  private skipped = 0;
  private errors = 0;
  private stalls = 0;
  private rollbacks = 0;
  /** The model served before the last swap, kept (undisposed) to roll back to if the new one fails. */
  private previous?: Classifier;
  private reconnectsBefore = 0;
  private state: StreamStats['state'] = 'starting';
  private readonly t0 = performance.now();
  private slot: { frame: Frame; arrived: number }[] = [];
  private captureDone = false;
  private captureError: unknown;
  private wakeConsumer?: () => void;
  private wakeProducer?: () => void;
  private stopping = false;
  /** Pending swaps; `rollback` (the failure that caused it) marks a return to the previous model. */
  private swapQueue: { clf: Classifier; resolve: () => void; reject: (e: unknown) => void; rollback?: string }[] = [];
  private running = false;
  /** The newest captured frame (for previews and snapshots). */
  latestFrame?: Frame;
  /** The newest result. */
  latestResult?: StreamResult;

  /**
   * A pipeline classifying `source`'s frames with `classifier` (start() runs it). `opts`: StreamOptions
   * (topK 5, smoothing 0.6, threshold 0.5, …). Errors: EARG when the source's frame size is not the
   * classifier's input size, or for an option it does not take, nested `sessionOptions` included
   * (`StreamPipeline: unknown option "topk" (options: …)`).
   */
  constructor(
    source: FrameSource,
    private classifier: Classifier,
    private readonly opts: StreamOptions = {},
  ) {
    super();
    checkOptionKeys('StreamPipeline', opts, STREAM_OPTION_KEYS);
    checkOptionKeys('StreamPipeline', opts.sessionOptions, STREAM_SESSION_OPTION_KEYS, 'sessionOptions');
    this.source = source;
    this.k = opts.topK ?? 5;
    this.smoother = new LabelSmoother(opts.smoothing ?? 0.6, opts.threshold ?? 0.5, opts.hysteresis ?? Math.min(0.1, opts.threshold ?? 0.5));
    this.drop = opts.dropFrames ?? source.live;
    // a regression model's outputs are values, not class scores: smoothed and shown as classes they read "petals (5655%)"
    const problem = classScoresProblem(classifier.card.task, classifier.id, 'a stream smooths and shows');
    if (problem) throw new EdgetuneError('EARG', problem, { subject: classifier.id });
    const g = geometryOfClassifier(classifier);
    if (source.width !== g.width || source.height !== g.height) {
      throw new EdgetuneError('EARG', `source ${source.uri} delivers ${source.width}x${source.height} frames but ${classifier.id} needs ${g.width}x${g.height}`);
    }
    this.unsubscribe = source.subscribe(this.onSourceEvent);
  }

  private unsubscribe: () => void;

  get model(): Classifier {
    return this.classifier;
  }

  /** The models this pipeline holds: the serving one and the one kept for a rollback (their files must stay). */
  get heldModels(): Classifier[] {
    return this.previous && this.previous !== this.classifier ? [this.classifier, this.previous] : [this.classifier];
  }

  get sourceUri(): string {
    return this.source.uri;
  }

  private note(e: StreamEvent): void {
    if (e.type === 'stall') this.stalls++;
    if (e.type === 'reconnect') this.state = 'reconnecting';
    else if (e.type === 'info' && this.state === 'reconnecting') this.state = 'running';
    this.emit('event', e);
  }

  /** Source events arrive here (the pipeline subscribes to its source). */
  readonly onSourceEvent = (e: SourceEvent): void => this.note({ type: e.type, message: e.message });

  /** The provider serving inference: the worker's once run() started, else the classifier's. */
  get provider(): string {
    return (this.stages as InferenceStages | undefined)?.provider ?? this.classifier.provider;
  }

  /** Where inference runs ('worker' or 'main'), once run() started. */
  get inferenceMode(): 'worker' | 'main' | undefined {
    return (this.stages as InferenceStages | undefined)?.mode;
  }

  /** The inference worker's memory and heap-snapshot diagnostics (worker mode, once run() started): see InferenceStages.worker. */
  get worker(): InferenceStages['worker'] {
    return (this.stages as InferenceStages | undefined)?.worker;
  }

  stats(): StreamStats {
    const elapsed = (performance.now() - this.t0) / 1000;
    const r = (v: number) => Math.round(v * 10) / 10;
    return {
      source: this.source.uri,
      model: this.classifier.id,
      state: this.state,
      uptimeSeconds: r(elapsed),
      framesIn: this.framesIn,
      processed: this.processed,
      unknown: this.unknownFrames,
      dropped: this.dropped,
      skipped: this.skipped,
      errors: this.errors,
      reconnects: this.reconnectsBefore + this.source.reconnects,
      stalls: this.stalls,
      rollbacks: this.rollbacks,
      swaps: this.swaps,
      fpsIn: this.inRate.rate(),
      fpsOut: this.outRate.rate(),
      avgFpsIn: elapsed > 0 ? r(this.framesIn / elapsed) : 0,
      avgFpsOut: elapsed > 0 ? r(this.processed / elapsed) : 0,
      latency: Object.fromEntries(STAGES.map((s) => [s, this.lat[s].summary()])) as Record<Stage, LatencySummary>,
    };
  }

  /** Per-stage latency histograms (seconds, every processed frame since the start). */
  latencyHistograms(): Record<Stage, HistogramSnapshot> {
    return Object.fromEntries(STAGES.map((s) => [s, this.hist[s].snapshot()])) as Record<Stage, HistogramSnapshot>;
  }

  /**
   * Swap the model between frames. A model with another input geometry reopens the source through
   * `opts.reopen`. Resolves once the new model serves frames (or at once when the pipeline is idle).
   */
  swapModel(clf: Classifier): Promise<void> {
    const g = geometryOfClassifier(clf);
    if (!sameGeometry(g, geometryOfClassifier(this.classifier)) && !this.opts.reopen) {
      return Promise.reject(new EdgetuneError('EARG', `${clf.id} needs ${g.width}x${g.height}x${g.channels} frames but the source delivers ${this.source.width}x${this.source.height}x${this.source.channels}, and this pipeline cannot reopen its source`));
    }
    return new Promise((resolve, reject) => {
      this.swapQueue.push({ clf, resolve, reject });
      if (!this.running) void this.applySwaps();
      this.wakeConsumer?.();
    });
  }

  private async applySwaps(): Promise<void> {
    while (this.swapQueue.length) {
      const { clf, resolve, reject, rollback } = this.swapQueue.shift()!;
      try {
        const old = this.classifier;
        const g = geometryOfClassifier(clf);
        const reopen = !sameGeometry(g, geometryOfClassifier(old));
        if (reopen && !this.running) {
          throw new EdgetuneError('EARG', `${clf.id} needs ${g.width}x${g.height}x${g.channels} frames; a model of another input size can be swapped in only while the stream runs`);
        }
        // Idle pipelines only switch classifiers; run() starts the inference stages.
        const stages = this.running ? await inferenceStages(clf, this.opts) : undefined;
        // The new model classifies a real frame where it will run before it serves.
        if (stages) {
          try {
            await checkStages(stages, await frameForGeometry(g, this.latestFrame));
          } catch (err) {
            await stages.dispose();
            throw err;
          }
        }
        if (reopen) {
          let next: FrameSource;
          try {
            next = await this.opts.reopen!(g);
          } catch (err) {
            await stages?.dispose();
            throw err;
          }
          const prev = this.source;
          this.reconnectsBefore += prev.reconnects;
          this.source = next;
          this.slot = [];
          this.wakeProducer?.();
          this.unsubscribe();
          this.unsubscribe = next.subscribe(this.onSourceEvent);
          await prev.close();
          this.startCapture(next);
        }
        if (stages) {
          const oldStages = this.stages as InferenceStages | undefined;
          this.stages = stages;
          await oldStages?.dispose();
        }
        this.classifier = clf;
        this.smoother.reset();
        this.unknownEma = undefined;
        const how = reopen ? ` (source reopened for ${g.width}x${g.height}x${g.channels} ${g.resize} crop ${g.crop})` : '';
        if (rollback !== undefined) {
          // The failing model goes; there is nothing older to return to.
          this.rollbacks++;
          if (old !== clf) await old.dispose();
          this.note({ type: 'rollback', message: `model ${old.id} failed (${rollback}); rolled back to ${clf.id}${how}` });
        } else {
          if (old !== clf) {
            // Keep the model just replaced for a rollback; the one before it is not needed any more.
            const drop = this.previous;
            this.previous = old;
            if (drop && drop !== clf && drop !== old) await drop.dispose();
          }
          this.swaps++;
          this.note({ type: 'swap', message: `model swapped: ${old.id} → ${clf.id}${how}` });
        }
        resolve();
      } catch (err) {
        reject(err);
      }
    }
  }

  private startCapture(src: FrameSource): void {
    this.captureDone = false;
    this.captureError = undefined;
    void (async () => {
      try {
        for await (const frame of src.frames()) {
          if (this.source !== src || this.stopping) break;
          const arrived = performance.now();
          this.framesIn++;
          this.inRate.tick(arrived);
          this.latestFrame = frame;
          if (this.state === 'starting' || this.state === 'reconnecting') this.state = 'running';
          this.emit('frame', frame);
          if (frame.data.length !== frame.width * frame.height * frame.channels) {
            this.skipped++;
            this.note({ type: 'skip', message: `frame ${frame.seq}: ${frame.data.length} bytes, expected ${frame.width * frame.height * frame.channels}; skipped` });
            continue;
          }
          if (this.drop) {
            // Latest frame wins: an unconsumed frame is stale now.
            if (this.slot.length) this.dropped += this.slot.length;
            this.slot = [{ frame, arrived }];
            this.wakeConsumer?.();
          } else {
            this.slot.push({ frame, arrived });
            this.wakeConsumer?.();
            while (this.slot.length >= 2 && !this.stopping && this.source === src) {
              await new Promise<void>((r) => (this.wakeProducer = r));
            }
          }
        }
      } catch (err) {
        if (this.source === src) this.captureError = err;
      }
      if (this.source === src) {
        this.captureDone = true;
        this.wakeConsumer?.();
      }
    })();
  }

  /** Next frame, waiting for capture; undefined at the end of the stream. */
  private async take(): Promise<{ frame: Frame; arrived: number } | undefined> {
    for (;;) {
      if (this.stopping) return undefined;
      if (this.swapQueue.length) return undefined;
      const f = this.slot.shift();
      if (f) {
        this.wakeProducer?.();
        return f;
      }
      if (this.captureDone) return undefined;
      await new Promise<void>((r) => (this.wakeConsumer = r));
      this.wakeConsumer = undefined;
    }
  }

  private async prepareNext(): Promise<Prepared | undefined> {
    for (;;) {
      const got = await this.take();
      if (!got) return undefined;
      const t = performance.now();
      try {
        const tensor = this.stages.prepare(got.frame);
        return { frame: got.frame, tensor, arrived: got.arrived, queueMs: t - got.arrived, prepMs: performance.now() - t, stages: this.stages };
      } catch (err) {
        this.skipped++;
        this.note({ type: 'skip', message: `frame ${got.frame.seq}: ${messageOf(err)}; skipped` });
      }
    }
  }

  stop(): void {
    this.stopping = true;
    this.wakeConsumer?.();
    this.wakeProducer?.();
  }

  async run(): Promise<StreamStats> {
    if (this.running) throw new EdgetuneError('EARG', 'run() is already running');
    this.running = true;
    const onAbort = () => this.stop();
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (this.opts.signal?.aborted) this.stop();
    try {
      this.stages = await inferenceStages(this.classifier, this.opts);
    } catch (err) {
      this.running = false;
      this.unsubscribe();
      await this.source.close();
      throw err;
    }
    this.startCapture(this.source);
    let consecutiveErrors = 0;
    let rollbackPending = false;
    let rollbackError: unknown;
    // Frames in flight: for lossless sources two (the worker always has the next tensor queued, so
    // it never idles while a result travels back); for live sources one (freshest frame first).
    const depth = this.opts.inflight ?? (this.drop ? 1 : 2);
    const limit = this.opts.maxFrames ?? Infinity;
    type Flight = { cur: Prepared; tRun: number; result: Promise<{ probs: Float32Array; ms: number; unknown?: number } | Error> };
    const inflight: Flight[] = [];
    let launched = 0;
    let nextP: Promise<Prepared | undefined> | undefined = this.prepareNext();
    const launch = (cur: Prepared) => {
      const tRun = performance.now();
      const result = cur.stages.infer(cur.tensor).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      inflight.push({ cur, tRun, result });
      launched++;
      nextP = launched < limit ? this.prepareNext() : undefined;
    };
    /** A prepared frame for the current model (frames prepared before a swap are re-prepared or dropped). */
    const current = (cur: Prepared): Prepared | undefined => {
      if (cur.stages === this.stages) return cur;
      try {
        const t = performance.now();
        return { ...cur, tensor: this.stages.prepare(cur.frame), prepMs: performance.now() - t, stages: this.stages };
      } catch {
        this.dropped++;
        return undefined;
      }
    };
    try {
      for (;;) {
        if (nextP && inflight.length < depth) {
          if (inflight.length === 0) {
            const cur = await nextP;
            nextP = undefined;
            if (cur) {
              const c = current(cur);
              if (c) launch(c);
              else nextP = this.prepareNext();
              continue;
            }
          } else {
            // Launch the next frame only if it is ready before the oldest result.
            const head = inflight[0]!;
            const won = await Promise.race([nextP.then((v) => ({ frame: true as const, v })), head.result.then(() => ({ frame: false as const, v: undefined }))]);
            if (won.frame) {
              nextP = undefined;
              if (won.v) {
                const c = current(won.v);
                if (c) launch(c);
                else nextP = this.prepareNext();
              }
              continue;
            }
          }
        }
        const head = inflight.shift();
        if (!head) {
          // Nothing in flight and no next frame: a pending swap, or the end.
          if (this.swapQueue.length && !this.stopping) {
            await this.applySwaps();
            if (rollbackError) throw rollbackError;
            nextP = launched < limit ? this.prepareNext() : undefined;
            continue;
          }
          break;
        }
        const r = await head.result;
        const tInf = performance.now();
        if (r instanceof Error) {
          this.errors++;
          consecutiveErrors++;
          this.note({ type: 'error', message: `frame ${head.cur.frame.seq}: inference failed: ${messageOf(r)}` });
          if (this.previous && !rollbackPending && !this.stopping && consecutiveErrors >= ROLLBACK_AFTER_ERRORS) {
            // A swapped-in model that starts failing: put the previous one back between frames.
            rollbackPending = true;
            const reason = `inference failed on ${consecutiveErrors} frames in a row: ${messageOf(r)}`;
            this.swapQueue.unshift({
              clf: this.previous,
              rollback: reason,
              resolve: () => {
                rollbackPending = false;
                consecutiveErrors = 0;
              },
              reject: (e) => (rollbackError = new EdgetuneError('EMODEL', `${reason}; rolling back to the previous model failed too: ${messageOf(e)}`)),
            });
            this.previous = undefined;
          } else if (!rollbackPending && consecutiveErrors >= FAIL_AFTER_ERRORS) {
            throw new EdgetuneError('EMODEL', `inference failed on ${FAIL_AFTER_ERRORS} frames in a row: ${messageOf(r)}`);
          }
        } else {
          consecutiveErrors = 0;
          if (head.cur.stages === this.stages) this.emitResult(head.cur, r.probs, r.ms, tInf, r.unknown);
        }
        if (this.swapQueue.length && !this.stopping && inflight.length === 0) {
          // Swap between frames, with nothing in flight on the old model.
          const pending = nextP ? await nextP : undefined;
          await this.applySwaps();
          if (rollbackError) throw rollbackError;
          nextP = pending ? Promise.resolve(pending) : launched < limit ? this.prepareNext() : undefined;
        }
      }
      if (this.captureError && !this.stopping) {
        this.state = 'failed';
        throw this.captureError;
      }
      this.state = 'ended';
      return this.stats();
    } finally {
      this.stop();
      this.running = false;
      this.opts.signal?.removeEventListener('abort', onAbort);
      this.unsubscribe();
      await this.source.close();
      await this.stages.dispose();
      for (const s of this.swapQueue.splice(0)) s.reject(new EdgetuneError('EIO', 'stream stopped before the model swap'));
      // The model kept for a rollback is not needed once the stream stops (the current one is the caller's).
      if (this.previous && this.previous !== this.classifier) await this.previous.dispose();
      this.previous = undefined;
    }
  }

  private emitResult(cur: Prepared, probs: Float32Array, inferMs: number, tInf: number, unknown?: number): void {
    const post = this.classifier.post;
    const top = topK(probs, this.k, post);
    const { smoothed, index, best } = this.smoother.update(probs);
    const shown = index >= 0 ? index : best;
    const labelIndex = shown - post.labelOffset;
    const uThreshold = this.classifier.unknownThreshold;
    let u: number | undefined;
    if (unknown !== undefined && uThreshold !== undefined) {
      const a = this.opts.smoothing ?? 0.6;
      u = this.unknownEma = this.unknownEma === undefined ? unknown : a * this.unknownEma + (1 - a) * unknown;
    }
    const open = u !== undefined ? { unknownScore: round4(u) } : {};
    // a multilabel model shows every label over the threshold (classify's rule, readOutput), smoothed
    const reading = this.classifier.card.task === 'multilabel' ? readOutput(smoothed, 'multilabel', this.k, post) : undefined;
    const on = reading?.task === 'multilabel' ? reading.labels.map((t) => ({ ...t, score: round4(t.score) })) : undefined;
    // the line watch and the live page show, made here so the page runs no copy of multilabelText
    const labels = on ? { labels: on, text: multilabelText(on, 0) } : {};
    const label: SmoothedLabel =
      index >= 0 && labelIndex >= 0 && !(u !== undefined && u > uThreshold!)
        ? { label: post.labels[labelIndex] ?? String(labelIndex), index: labelIndex, score: round4(smoothed[shown]!), ...open, ...labels }
        : { label: 'unknown', index: -1, score: round4(smoothed[best]!), ...open, ...labels };
    const end = performance.now();
    const stages: Record<Stage, number> = {
      queue: cur.queueMs,
      preprocess: cur.prepMs,
      inference: inferMs,
      postprocess: end - tInf,
      total: end - cur.arrived,
    };
    for (const s of STAGES) {
      this.lat[s].add(stages[s]);
      this.hist[s].observe(stages[s] / 1000);
    }
    this.processed++;
    if (label.index < 0) this.unknownFrames++;
    this.outRate.tick(end);
    const result: StreamResult = {
      seq: cur.frame.seq,
      ts: cur.frame.timestamp,
      top: top.map((t) => ({ ...t, score: round4(t.score) })),
      smoothed: label,
      ms: Math.round(stages.total * 10) / 10,
      stages,
      frame: cur.frame,
      model: this.classifier.id,
    };
    if (cur.frame.pts !== undefined) result.pts = Math.round(cur.frame.pts * 10) / 10;
    this.latestResult = result;
    this.emit('result', result);
  }
}
