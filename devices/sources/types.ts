// Frame-source contract shared by every camera/stream source: a source yields HWC uint8 frames that
// are already at the size the model needs (scaling happens in ffmpeg, GStreamer or sharp, never per
// frame in JS), with a sequence number and timestamps, and can be closed at any time. Sources report
// what happens to them (starts, reconnects, skipped frames) through `onEvent` rather than printing.

import type { HwcImage, PreprocessSpec } from '../../runtime/image/preprocess.js';

export interface Frame extends HwcImage {
  data: Uint8Array;
  /** Wall-clock time the frame arrived, ms since the epoch. */
  timestamp: number;
  /** 0-based position in the stream; continues across reconnects. */
  seq: number;
  /** Media time in ms for sources that have one (files, image sequences with an fps). */
  pts?: number;
}

export type SourceEventType = 'start' | 'reconnect' | 'stall' | 'skip' | 'end' | 'info';

export interface SourceEvent {
  type: SourceEventType;
  message: string;
  /** Reconnect attempt number (1-based) for `reconnect` events. */
  attempt?: number;
  /** Backoff delay before the reconnect, ms. */
  delayMs?: number;
}

export interface ReconnectOptions {
  /** Attempts in a row before giving up (a delivered frame resets the count). Default 8; Infinity for ever. */
  retries?: number;
  /** First backoff delay, ms; doubled per attempt. Default 250. */
  initialMs?: number;
  /** Longest backoff delay, ms. Default 5000. */
  maxMs?: number;
  /**
   * Frame watchdog for live process-backed sources (ffmpeg, GStreamer): a child that delivers no
   * frame for this long is stopped, reported (`stall` event) and restarted with the backoff above.
   * The first frame of each start may take max(this, 10 s) (network probing). Default 5000;
   * Infinity turns it off.
   */
  stallTimeoutMs?: number;
}

/** Geometry and fitting of the frames a source delivers (the model's preprocessing spec fits). */
export type FrameGeometry = Pick<PreprocessSpec, 'width' | 'height' | 'channels' | 'resize' | 'crop'>;

export interface SourceOptions extends Partial<FrameGeometry> {
  /**
   * Pace files and image sequences at their frame rate, as a camera would (default false: as fast
   * as the consumer takes them, nothing dropped).
   */
  realtime?: boolean;
  /** Frame rate for image sequences (`dir://`) and polling sources (`webcam:`), and a cap for tests. */
  fps?: number;
  reconnect?: ReconnectOptions;
  onEvent?: (event: SourceEvent) => void;
  /** Override the executables (tests, unusual installs). */
  ffmpegPath?: string;
  gstLaunchPath?: string;
}

export interface FrameSource {
  /** The URI it was opened with. */
  readonly uri: string;
  /** Scheme family: v4l2, rtsp, http, file, csi, webcam, dir, test. */
  readonly kind: string;
  /**
   * True for sources that produce frames at their own pace (cameras, realtime files): a consumer
   * that is slower must drop frames. False for files/dirs read as fast as possible (lossless).
   */
  readonly live: boolean;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** Frames in order. Ends at the end of a finite source, after close(), or throws when reconnects are exhausted. */
  frames(): AsyncIterableIterator<Frame>;
  close(): Promise<void>;
  /** Add a listener for source events (in addition to options.onEvent); returns an unsubscribe function. */
  subscribe(listener: (event: SourceEvent) => void): () => void;
  /** Reconnects so far. */
  readonly reconnects: number;
  /** Child process id while one runs (tests kill it to prove reconnects). */
  readonly pid?: number;
}

export const DEFAULT_GEOMETRY: FrameGeometry = { width: 224, height: 224, channels: 3, resize: 'cover', crop: 1 };

/** A tiny listener list for sources: options.onEvent plus subscribers. */
export class SourceEvents {
  private readonly listeners = new Set<(e: SourceEvent) => void>();
  constructor(first?: (e: SourceEvent) => void) {
    if (first) this.listeners.add(first);
  }
  emit(e: SourceEvent): void {
    for (const l of this.listeners) l(e);
  }
  subscribe(listener: (e: SourceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
