// Raw frames from a child process (ffmpeg or gst-launch-1.0) writing packed RGB/GRAY frames of a
// known size to stdout. One persistent process per stream; stdout is read with backpressure (a slow
// consumer pauses the child instead of buffering without bound). When the child dies (camera
// unplugged, network drop, killed), the source says so through onEvent and restarts it with
// exponential backoff, resuming where it left off for seekable inputs; a partial frame left by a
// dying child is discarded and reported. A frame watchdog restarts a child that keeps running but
// stops delivering frames (a network camera that holds the socket open and sends nothing): no frame
// for `stallTimeoutMs` while the source waits for one is reported as a stall and the child is
// restarted through the same backoff. Retries are bounded (default 8 in a row); the last failure is a
// clear error. The source's `uri` and every message carry the URI with its credentials masked. A
// missing executable is a clear error naming the package.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { EdgetuneError } from '../../runtime/core/errors.js';
import { maskSecrets, maskUri } from '../../runtime/core/redact.js';
import { SourceEvents, type Frame, type FrameSource, type ReconnectOptions, type SourceEvent } from './types.js';

/** Where to get each external program, for the "not found" error. */
export const PACKAGES: Record<string, string> = {
  ffmpeg: 'install the Debian/Ubuntu package "ffmpeg" (sudo apt-get install ffmpeg; macOS: brew install ffmpeg)',
  ffprobe: 'install the Debian/Ubuntu package "ffmpeg" (sudo apt-get install ffmpeg; macOS: brew install ffmpeg)',
  'gst-launch-1.0':
    'install the Debian/Ubuntu packages "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good" (on Jetson, nvarguscamerasrc and nvvidconv come with JetPack\'s "nvidia-l4t-gstreamer")',
  fswebcam: 'install the Debian/Ubuntu package "fswebcam" (sudo apt-get install fswebcam; macOS: brew install imagesnap)',
};

/** Absolute path of an executable on PATH (or the path itself when it contains a slash), else undefined. */
export function findExecutable(bin: string, envPath = process.env.PATH ?? ''): string | undefined {
  const candidates = bin.includes('/') ? [bin] : envPath.split(path.delimiter).filter(Boolean).map((d) => path.join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The executable's path, or an EDEPEND error saying which package provides it. */
export function requireExecutable(bin: string, what = path.basename(bin)): string {
  const found = findExecutable(bin);
  if (found) return found;
  const pkg = PACKAGES[path.basename(bin)] ?? `install ${path.basename(bin)}`;
  throw new EdgetuneError('EDEPEND', `${what} needs ${path.basename(bin)}, which was not found on PATH: ${pkg}`, { subject: bin });
}

export function backoffDelay(attempt: number, opts: ReconnectOptions = {}): number {
  const initial = opts.initialMs ?? 250;
  const max = opts.maxMs ?? 5000;
  return Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
}

/** Resume point handed to `args()` after a restart. */
export interface ResumePoint {
  /** Frames delivered so far (the next frame's seq). */
  seq: number;
}

/** Default frame watchdog: a live source that delivers no frame for this long is restarted, ms. */
export const DEFAULT_STALL_TIMEOUT_MS = 5000;

/** How long a freshly started child may take to deliver its first frame (network probing), ms. */
export function firstFrameTimeout(stallMs: number): number {
  return Math.max(stallMs, 2 * DEFAULT_STALL_TIMEOUT_MS);
}

export interface ChildSourceSpec {
  /** The URI as given (it reaches the child's arguments only; `uri` of the source is masked). */
  uri: string;
  kind: string;
  live: boolean;
  /** Finite inputs (files, lavfi with a duration) end when the child exits 0. */
  finite: boolean;
  bin: string;
  width: number;
  height: number;
  channels: number;
  args(resume: ResumePoint): string[];
  /** Media time of frame `seq` in ms, for inputs with a known frame rate. */
  ptsOf?: (seq: number) => number | undefined;
  /** Frames a finite input holds, when its container says (files: ffprobe's nb_frames); named when damaged frames are skipped. */
  frames?: number;
  reconnect?: ReconnectOptions;
  onEvent?: (e: SourceEvent) => void;
}

/**
 * The command that starts `exe args` so that it dies with edgetune, whatever ends edgetune (SIGKILL,
 * a crash, the OOM killer): on Linux, util-linux's `setpriv --pdeathsig KILL` (util-linux is
 * essential on Debian/Ubuntu; setpriv has had --pdeathsig since 2.33) sets the kernel's parent-death
 * signal and execs the program, so the child keeps its pid, signals and exit status. Without it a
 * child that is not writing (a camera that sends nothing, ffmpeg blocked connecting) never notices its
 * reader is gone and is left holding the camera, reparented to init. The parent-death signal belongs
 * to the thread that spawned the child; sources spawn from the main thread, which lives as long as
 * the process. Elsewhere (macOS, no setpriv) the command is run as is.
 */
export function dieWithParent(exe: string, args: readonly string[]): { cmd: string; args: string[] } {
  const setpriv = process.platform === 'linux' ? (setprivPath ??= findExecutable('setpriv') ?? null) : null;
  return setpriv ? { cmd: setpriv, args: ['--pdeathsig', 'KILL', '--', exe, ...args] } : { cmd: exe, args: [...args] };
}
let setprivPath: string | null | undefined;

/** Sleep that close() can cut short. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class ChildFrameSource implements FrameSource {
  readonly uri: string;
  readonly kind: string;
  readonly live: boolean;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  reconnects = 0;
  private child?: ChildProcess;
  private readonly ac = new AbortController();
  private readonly exe: string;
  private started = false;
  private readonly events: SourceEvents;

  constructor(private readonly spec: ChildSourceSpec) {
    this.uri = maskUri(spec.uri);
    this.kind = spec.kind;
    this.live = spec.live;
    this.width = spec.width;
    this.height = spec.height;
    this.channels = spec.channels;
    this.exe = requireExecutable(spec.bin, this.uri);
    this.events = new SourceEvents(spec.onEvent);
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  private emit(e: SourceEvent): void {
    this.events.emit(e);
  }

  subscribe(listener: (e: SourceEvent) => void): () => void {
    return this.events.subscribe(listener);
  }

  frames(): AsyncIterableIterator<Frame> {
    if (this.started) throw new EdgetuneError('EARG', `${this.uri}: frames() can be iterated only once per source`);
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncIterableIterator<Frame> {
    const frameBytes = this.width * this.height * this.channels;
    const signal = this.ac.signal;
    let seq = 0;
    let attempt = 0;
    let everDelivered = false;
    // ffmpeg's first error line over every process of this source (a restarted file resumes where it was)
    let firstError: string | undefined;
    const configured = this.spec.reconnect?.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    // Only live sources stall (a file read as fast as possible waits for its consumer); 0 = off.
    const stallMs = this.live && configured > 0 ? configured : Infinity;
    while (!signal.aborted) {
      const args = this.spec.args({ seq });
      const cmd = dieWithParent(this.exe, args);
      const child = spawn(cmd.cmd, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      const stderr: string[] = [];
      let partial = '';
      child.stderr!.setEncoding('utf8');
      // Whole lines are masked (a URI split across two chunks is still one line); the decoder
      // instances' addresses ("[h264 @ 0x55…]") are dropped: they differ on every run and say nothing.
      const keep = (lines: string[]) => {
        const kept = lines.map((l) => maskSecrets(l).replace(/ @ 0x[0-9a-f]+\]/g, ']')).filter((l) => l.trim());
        firstError ??= kept[0];
        stderr.push(...kept);
        if (stderr.length > 20) stderr.splice(0, stderr.length - 20);
      };
      child.stderr!.on('data', (d: string) => {
        const lines = (partial + d).split('\n');
        partial = lines.pop()!;
        keep(lines);
      });
      child.stderr!.on('end', () => keep([partial]));
      let spawnError: Error | undefined;
      child.on('error', (err) => (spawnError = err));
      const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve) =>
        child.on('close', (code, sig) => resolve({ code, sig })),
      );
      if (attempt === 0 && seq === 0) this.emit({ type: 'start', message: `${this.spec.kind}: started ${path.basename(this.exe)} (pid ${child.pid})` });
      let buf = new Uint8Array(frameBytes);
      let filled = 0;
      let delivered = 0;
      // The watchdog runs only while this source waits for the child's bytes (never while a slow
      // consumer holds a frame: that is backpressure, not a stall).
      let stalledMs: number | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      const arm = () => {
        const ms = delivered ? stallMs : firstFrameTimeout(stallMs);
        if (!Number.isFinite(ms) || ms <= 0) return;
        watchdog = setTimeout(() => {
          stalledMs = ms;
          child.kill('SIGKILL');
        }, ms);
      };
      const disarm = () => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = undefined;
      };
      arm();
      try {
        for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
          let off = 0;
          while (off < chunk.length) {
            const n = Math.min(frameBytes - filled, chunk.length - off);
            buf.set(chunk.subarray(off, off + n), filled);
            filled += n;
            off += n;
            if (filled === frameBytes) {
              const frame: Frame = { data: buf, width: this.width, height: this.height, channels: this.channels, timestamp: Date.now(), seq };
              const pts = this.spec.ptsOf?.(seq);
              if (pts !== undefined) frame.pts = pts;
              seq++;
              delivered++;
              everDelivered = true;
              if (attempt > 0) {
                this.emit({ type: 'info', message: `${this.spec.kind}: reconnected, frames flowing again at seq ${frame.seq}` });
                attempt = 0;
              }
              buf = new Uint8Array(frameBytes);
              filled = 0;
              disarm();
              yield frame;
              if (signal.aborted) return;
              arm();
            }
          }
        }
      } catch (err) {
        // close() destroys stdout under a pending read: that is a normal end, not a failure.
        if (signal.aborted) return;
        throw err;
      } finally {
        disarm();
        // The consumer stopped early (break/return) or close() was called: stop the child.
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      }
      const { code, sig } = await exited;
      if (signal.aborted) return;
      if (filled > 0) this.emit({ type: 'skip', message: `${this.spec.kind}: incomplete frame discarded (${filled} of ${frameBytes} bytes) after the process exited` });
      if (spawnError) throw new EdgetuneError('EDEPEND', `${this.uri}: cannot start ${this.exe}: ${spawnError.message}`, { subject: this.uri });
      const why =
        stalledMs !== undefined
          ? `delivered no frame for ${(stalledMs / 1000).toFixed(1)} s (stalled source; stopped it)`
          : sig
            ? `was killed by ${sig}`
            : `exited with code ${code}`;
      const tail = stderr.slice(-3).join(' | ');
      if (stalledMs !== undefined) {
        this.emit({ type: 'stall', message: `${this.spec.kind}: no frame for ${(stalledMs / 1000).toFixed(1)} s while ${path.basename(this.exe)} kept running; restarting the source` });
      }
      if (code === 0 && this.spec.finite) {
        // ffmpeg skips the frames it cannot decode and says so on stderr (-loglevel error): some
        // frames bad → reported here, the stream goes on; none good → ffmpeg fails, an error below.
        if (firstError !== undefined && everDelivered) {
          const of = this.spec.frames !== undefined && seq < this.spec.frames ? `${seq} of the ${this.spec.frames} frames its container lists were decoded, the damaged ones skipped` : `${seq} frames decoded, damaged ones skipped or concealed`;
          this.emit({ type: 'skip', message: `${this.spec.kind}: damaged input: ${of} (${path.basename(this.exe)}: ${firstError.trim()})` });
        }
        this.emit({ type: 'end', message: `${this.spec.kind}: end of stream after ${seq} frames` });
        return;
      }
      // A finite input that fails before delivering anything is a bad input, not a dropout.
      if (!everDelivered && this.spec.finite && !sig) {
        throw new EdgetuneError('EINPUT', `${this.uri}: ${path.basename(this.exe)} ${why}${tail ? `: ${tail}` : ''}`, { subject: this.uri });
      }
      attempt++;
      const retries = this.spec.reconnect?.retries ?? 8;
      if (attempt > retries) {
        throw new EdgetuneError(
          'EIO',
          `${this.uri}: ${path.basename(this.exe)} ${why} and ${retries} reconnect attempts failed${tail ? `: ${tail}` : ''}${this.live ? ' (retries are bounded: --retries inf waits for the source for ever)' : ''}`,
          { subject: this.uri },
        );
      }
      const delay = backoffDelay(attempt, this.spec.reconnect);
      this.reconnects++;
      this.emit({
        type: 'reconnect',
        attempt,
        delayMs: delay,
        message: `${this.spec.kind}: ${path.basename(this.exe)} ${why}${delivered || !tail ? '' : ` (${tail})`}; reconnecting in ${delay} ms (attempt ${attempt}/${retries === Infinity ? '∞' : retries})`,
      });
      await sleep(delay, signal);
    }
  }

  async close(): Promise<void> {
    this.ac.abort();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // 'exit', not 'close': nobody may be reading stdout any more, so it may never drain.
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    child.stdout?.destroy();
    const t = setTimeout(() => child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
}
