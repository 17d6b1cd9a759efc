// Still-image sources, decoded with sharp exactly like `classify` decodes (runtime/image/decode.ts, so the
// model sees the same pixels, EXIF orientation applied): a still photo given as a file (`watch photo.jpg`:
// one frame), dir:// plays a sorted image sequence (numeric-aware order, optional fps for media time and
// pacing) and webcam: takes snapshots by running fswebcam (Linux) or imagesnap (macOS) for machines with no
// other way to reach a camera. A corrupt image is reported
// and skipped; a sequence none of whose images decode is an error; a failing snapshot tool is retried
// with backoff.

import { execFile } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EdgetuneError, invalidParameter, messageOf } from '../../runtime/core/errors.js';
import { decodeImage, DECODED_IMAGE_EXTENSIONS, IMAGE_EXTENSIONS } from '../../runtime/image/decode.js';
import { DEFAULT_SPEC, type PreprocessSpec } from '../../runtime/image/preprocess.js';
import { backoffDelay, findExecutable, PACKAGES } from './child.js';
import { decodeUriPath, geometryOf, splitQuery } from './ffmpeg.js';
import { isUndecodedImageFile, notAnImage } from '../../runtime/io/files.js';
import { SourceEvents, type Frame, type FrameGeometry, type FrameSource, type SourceOptions } from './types.js';

function specFor(g: FrameGeometry): PreprocessSpec {
  return { ...DEFAULT_SPEC, ...g, channels: g.channels === 1 ? 1 : 3, colorOrder: g.channels === 1 ? 'GRAY' : 'RGB' };
}

function toFrame(img: { data: Uint8Array | Uint8ClampedArray; width: number; height: number; channels: number }, seq: number, pts?: number): Frame {
  const data = img.data instanceof Uint8Array ? img.data : new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const f: Frame = { data, width: img.width, height: img.height, channels: img.channels, timestamp: Date.now(), seq };
  if (pts !== undefined) f.pts = pts;
  return f;
}

const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

function positive(v: string | null | undefined, name: string): number | undefined {
  if (v === null || v === undefined) return undefined;
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw invalidParameter(name, 'positive number', v);
  return n;
}

interface StillContext {
  spec: PreprocessSpec;
  signal: AbortSignal;
  events: SourceEvents;
  /** Counts retries for the source's `reconnects`. */
  retried(): void;
}

/**
 * The FrameSource both still sources are: frames() iterable once, events, close() stopping the
 * generator (and running `cleanup`). `produce` yields the frames.
 */
function stillSource(uri: string, kind: 'file' | 'dir' | 'webcam', live: boolean, o: SourceOptions, produce: (ctx: StillContext) => AsyncGenerator<Frame>, cleanup?: () => Promise<void>): FrameSource {
  const g = geometryOf(o);
  const spec = specFor(g);
  const ac = new AbortController();
  const events = new SourceEvents(o.onEvent);
  let started = false;
  const src: FrameSource & { reconnects: number } = {
    uri,
    kind,
    subscribe: (l) => events.subscribe(l),
    live,
    width: g.width,
    height: g.height,
    channels: spec.channels,
    reconnects: 0,
    frames() {
      if (started) throw new EdgetuneError('EARG', `${uri}: frames() can be iterated only once per source`);
      started = true;
      return produce({ spec, signal: ac.signal, events, retried: () => void src.reconnects++ });
    },
    async close() {
      ac.abort();
      await cleanup?.();
    },
  };
  return src;
}

/**
 * A still photo as a source (`watch photo.jpg`, `file://photo.jpg` naming a still image:
 * isStillImageFile): decoded once, at open, by decodeImage as `classify` decodes it (EXIF orientation,
 * the same resize and crop; ffmpeg ignored PNG's and WebP's orientation and read a rotated JPEG with the
 * unrotated size), then one frame (seq 0, pts 0) and the end. Kind `file`, not live. Errors: EINPUT
 * naming the file, as classify's (`photo.jpg: corrupt or truncated image (…)`).
 */
export async function openImageFileSource(uri: string, file: string, o: SourceOptions): Promise<FrameSource> {
  const img = await decodeImage(file, specFor(geometryOf(o)));
  return stillSource(uri, 'file', false, o, async function* ({ events, signal }) {
    if (signal.aborted) return;
    const frame = toFrame(img, 0, 0);
    frame.timestamp = Date.now();
    yield frame;
    events.emit({ type: 'end', message: `file: end of ${file} (a still image: 1 frame)` });
  });
}

/**
 * `dir://path/to/frames?fps=2`: the folder's images (IMAGE_EXTENSIONS, hidden files left out) in
 * numeric-aware name order, each decoded by decodeImage at the options' geometry; `fps` (frames per
 * second; option or query) gives media time (`pts`, ms) and, with `realtime` (default: on when fps is
 * given), pacing. A frame that does not decode is reported (`skip` event) and skipped. Errors: EARG for no
 * folder or a bad fps; EINPUT when the path is not a readable folder or holds no image it decodes (when
 * opened), or none of its images decodes (from frames()).
 */
export async function openDirSource(uri: string, o: SourceOptions): Promise<FrameSource> {
  const { base, params } = splitQuery(uri.replace(/^dir:(\/\/)?/, ''));
  // `dir://` alone (`dir://$FRAMES` with the variable unset) would stream the current folder's images
  if (!base) throw new EdgetuneError('EARG', `${uri}: no folder given (dir://path/to/frames)`, { subject: uri });
  const dir = path.resolve(decodeUriPath(base, uri));
  let names: string[];
  let others: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new EdgetuneError('EINPUT', `${dir}: not a directory`, { subject: dir });
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries.map((e) => e.name);
    // images in a format this build does not decode (a phone's .HEIC frames): reported, not passed over unseen (other files are ignored)
    others = entries.filter((e) => !e.name.startsWith('.') && isUndecodedImageFile(e.name)).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof EdgetuneError) throw err;
    throw new EdgetuneError('EINPUT', `${dir}: cannot read directory (${(err as NodeJS.ErrnoException).code})`, { subject: dir });
  }
  const files = names
    .filter((n) => IMAGE_EXTENSIONS.includes(path.extname(n).toLowerCase()))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((n) => path.join(dir, n));
  if (files.length === 0) {
    const over = others.length ? `; ${others.length} file${others.length === 1 ? '' : 's'} passed over, the first: ${others[0]}: ${notAnImage(others[0]!)}` : '';
    throw new EdgetuneError('EINPUT', `${dir}: no images (dir:// reads ${DECODED_IMAGE_EXTENSIONS.join(' ')})${over}`, { subject: dir });
  }
  const fps = o.fps ?? positive(params.get('fps'), 'dir fps');
  const realtime = o.realtime ?? (fps !== undefined);
  return stillSource(uri, 'dir', realtime, o, async function* ({ spec, signal, events }) {
    const period = 1000 / (fps ?? 1);
    const t0 = performance.now();
    // Decode two ahead on libuv's pool while the consumer works.
    const pending: Promise<Frame | Error>[] = [];
    let next = 0;
    const fill = () => {
      while (pending.length < 3 && next < files.length) {
        const file = files[next++]!;
        pending.push(decodeImage(file, spec).then((img) => toFrame(img, -1), (err: Error) => err));
      }
    };
    for (const n of others) events.emit({ type: 'skip', message: `dir: ${path.join(dir, n)}: ${notAnImage(n)}; skipped` });
    let seq = 0;
    let firstFailure: string | undefined;
    for (let i = 0; i < files.length && !signal.aborted; i++) {
      fill();
      const r = await pending.shift()!;
      if (r instanceof Error) {
        firstFailure ??= messageOf(r);
        events.emit({ type: 'skip', message: `dir: ${messageOf(r)}; skipped` });
        continue;
      }
      if (realtime) await wait(t0 + seq * period - performance.now(), signal);
      if (signal.aborted) return;
      r.seq = seq;
      r.timestamp = Date.now();
      if (fps) r.pts = (seq * 1000) / fps;
      seq++;
      yield r;
    }
    // Some images bad: each reported and skipped. None good: the sequence is a bad input, as a video
    // none of whose frames decode is (devices/sources/child.ts), not a stream that ended.
    if (seq === 0 && firstFailure !== undefined && !signal.aborted) {
      const all = files.length === 1 ? 'its one image' : `all ${files.length} images`;
      throw new EdgetuneError('EINPUT', `${dir}: no frame to play: ${all} failed to decode, each reported and skipped (the first: ${firstFailure})`, { subject: dir });
    }
    events.emit({ type: 'end', message: `dir: end of sequence after ${seq} frames` });
  });
}

/** A snapshot tool's run longer than this is a failed snapshot (a camera that never answers). */
const SNAPSHOT_TIMEOUT_MS = 20_000;

/**
 * The snapshot tool's arguments: fswebcam (Linux) `-q -r WxH --jpeg 90 [-d DEVICE] --no-banner FILE`,
 * imagesnap (macOS) `-q [-d DEVICE] FILE`. Passed as an argument list, never through a shell, so a
 * device name is never interpreted.
 */
export function snapshotArgs(tool: 'fswebcam' | 'imagesnap', file: string, o: { width: number; height: number; device?: string }): string[] {
  const device = o.device ? ['-d', o.device] : [];
  if (tool === 'imagesnap') return ['-q', ...device, file];
  return ['-q', '-r', `${o.width}x${o.height}`, '--jpeg', '90', ...device, '--no-banner', file];
}

/**
 * `webcam:default`, `webcam:/dev/video1?size=1280x720&fps=2`: snapshots by running fswebcam (Linux) or
 * imagesnap (macOS) once per frame (devices/sources/child.ts finds the program and names its package).
 */
export async function openWebcamSource(uri: string, o: SourceOptions): Promise<FrameSource> {
  const { base, params } = splitQuery(uri.replace(/^webcam:(\/\/)?/, ''));
  const device = base === '' || base === 'default' ? undefined : decodeURIComponent(base);
  const size = params.get('size') ?? '1280x720';
  if (!/^\d+x\d+$/.test(size)) throw invalidParameter('webcam size', 'WIDTHxHEIGHT, e.g. 640x480', size);
  const [cw, ch] = size.split('x').map(Number) as [number, number];
  const fps = o.fps ?? positive(params.get('fps'), 'webcam fps');
  const tool = process.platform === 'darwin' ? 'imagesnap' : process.platform === 'win32' ? undefined : 'fswebcam';
  if (!tool) throw new EdgetuneError('EDEPEND', `${uri}: no snapshot tool on Windows; use a v4l2:, rtsp: or http: source through ffmpeg`, { subject: uri });
  const bin = findExecutable(tool);
  if (!bin) throw new EdgetuneError('EDEPEND', `${uri} needs ${tool}, which was not found on PATH: ${PACKAGES[tool] ?? `install ${tool}`}`, { subject: tool });
  const tmp = mkdtempSync(path.join(tmpdir(), 'edgetune-webcam-'));
  const shot = (file: string, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) =>
      execFile(bin, snapshotArgs(tool, file, { width: cw, height: ch, device }), { signal, timeout: SNAPSHOT_TIMEOUT_MS }, (err, _out, stderr) => {
        if (!err) return resolve();
        const why = String(stderr).trim().split('\n')[0] || messageOf(err);
        reject(new Error(`${tool} failed: ${why}`));
      }),
    );
  const produce = async function* ({ spec, signal, events, retried }: StillContext): AsyncGenerator<Frame> {
    let seq = 0;
    let attempt = 0;
    const retries = o.reconnect?.retries ?? 8;
    const file = path.join(tmp, 'shot.jpg');
    while (!signal.aborted) {
      const t = performance.now();
      try {
        await shot(file, signal);
        const img = await decodeImage(file, spec, {}, `${uri} snapshot`);
        if (signal.aborted) return;
        if (attempt > 0) events.emit({ type: 'info', message: `webcam: snapshots working again` });
        attempt = 0;
        yield toFrame(img, seq++);
      } catch (err) {
        if (signal.aborted) return;
        attempt++;
        if (attempt > retries) throw new EdgetuneError('EIO', `${uri}: snapshot failed ${attempt} times: ${messageOf(err).split('\n')[0]}`, { subject: uri });
        const delay = backoffDelay(attempt, o.reconnect);
        retried();
        events.emit({ type: 'reconnect', attempt, delayMs: delay, message: `webcam: snapshot failed (${messageOf(err).split('\n')[0]}); retrying in ${delay} ms (attempt ${attempt}/${retries})` });
        await wait(delay, signal);
        continue;
      }
      if (fps) await wait(1000 / fps - (performance.now() - t), signal);
    }
  };
  return stillSource(uri, 'webcam', true, o, produce, () => rm(tmp, { recursive: true, force: true }));
}
