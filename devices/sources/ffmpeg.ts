// ffmpeg-backed sources: v4l2:// (USB/UVC cameras), rtsp:// and http(s):// (IP cameras, MJPEG/HLS),
// file:// (video files, real time or as fast as possible) and test: (ffmpeg's synthetic lavfi
// patterns). One persistent ffmpeg child per stream writes raw RGB (or GRAY) frames already at the
// model's input size: the scale/crop filter follows fitGeometry (runtime/image/geometry.ts), as the
// sharp decode does (cover = resize the shorter side, centre-crop; crop < 1 resizes to size/crop
// first; fill stretches; contain pads).

import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { EdgetuneError, invalidParameter } from '../../runtime/core/errors.js';
import { fitGeometry, resizeTarget } from '../../runtime/image/geometry.js';
import { LUMA_709, SRGB_CURVE } from '../../runtime/image/gray.js';
import { ChildFrameSource, requireExecutable } from './child.js';
import { DEFAULT_GEOMETRY, type FrameGeometry, type FrameSource, type SourceOptions } from './types.js';

export function geometryOf(o: SourceOptions): FrameGeometry {
  return {
    width: o.width ?? DEFAULT_GEOMETRY.width,
    height: o.height ?? DEFAULT_GEOMETRY.height,
    channels: o.channels ?? DEFAULT_GEOMETRY.channels,
    resize: o.resize ?? DEFAULT_GEOMETRY.resize,
    crop: o.crop ?? DEFAULT_GEOMETRY.crop,
  };
}

/**
 * The ffmpeg video filter that turns the input into `width × height` frames with fitGeometry's
 * geometry (runtime/image/geometry.ts), as decodeImage does with sharp. With the source size known
 * (files) the resize size and the crop/letterbox offsets are fitGeometry's numbers.
 * Without it (cameras, network streams) they are left to ffmpeg — `force_original_aspect_ratio`
 * for the resize, centred `crop`/`pad` — whose rounding fitGeometry follows; the two forms give the
 * same bytes (test/unit/image/pixel-paths.test.ts). Crops are `exact` (never rounded to chroma
 * subsampling).
 */
export function scaleFilter(g: FrameGeometry, source?: { width: number; height: number }, flags = 'bicubic'): string {
  const { width: W, height: H } = g;
  if (g.resize === 'fill') return `scale=${W}:${H}:flags=${flags}`;
  if (source) {
    const f = fitGeometry(source.width, source.height, g);
    const scale = `scale=${f.resized.width}:${f.resized.height}:flags=${flags}`;
    if (g.resize === 'contain') return `${scale},pad=${W}:${H}:${f.pad.left}:${f.pad.top}:color=black`;
    return `${scale},crop=${W}:${H}:${f.crop.x}:${f.crop.y}:exact=1`;
  }
  if (g.resize === 'contain') {
    return `scale=${W}:${H}:force_original_aspect_ratio=decrease:flags=${flags},pad=${W}:${H}:(ow-iw)/2:(oh-ih)/2:color=black`;
  }
  // crop's own centring rounds half to even (lrint); fitGeometry's rounds up.
  const t = resizeTarget(g);
  return `scale=${t.width}:${t.height}:force_original_aspect_ratio=increase:flags=${flags},crop=${W}:${H}:ceil((in_w-out_w)/2):ceil((in_h-out_h)/2):exact=1`;
}

/**
 * ffmpeg filters that apply the one grayscale rule (runtime/image/gray.ts, libvips'): 8-bit sRGB →
 * 16-bit, the sRGB curve to linear light (lutrgb), the Rec.709 luminance into every channel
 * (colorchannelmixer), the curve back; `-pix_fmt gray` then takes the (equal) channels. ffmpeg's
 * own RGB → gray is gamma-space Rec.601 luma. Measured on winml_Input.jpg at 256²: within 1 level
 * of grayByte() on ffmpeg's rgb24 output (mean 0.19).
 */
export function grayFilter(): string {
  const { knee, slope, offset, gamma } = SRGB_CURVE;
  const max = 65535;
  // commas inside an option value are escaped for the filtergraph parser
  const dec = `if(lte(val\\,${knee * max})\\,val/${slope}\\,${max}*pow((val/${max}+${offset})/${1 + offset}\\,${gamma}))`;
  const enc = `if(lte(val\\,${(knee / slope) * max})\\,val*${slope}\\,${max}*(${1 + offset}*pow(val/${max}\\,1/${gamma})-${offset}))`;
  const [r, g, b] = LUMA_709;
  const mix = ['r', 'g', 'b'].map((c) => `${c}r=${r}:${c}g=${g}:${c}b=${b}`).join(':');
  return `format=rgb24,format=rgb48le,lutrgb=r=${dec}:g=${dec}:b=${dec},colorchannelmixer=${mix},lutrgb=r=${enc}:g=${enc}:b=${enc}`;
}

export interface FfmpegArgsOptions {
  /** Input options and `-i <url>`. */
  input: string[];
  geometry: FrameGeometry;
  /**
   * The input's frame size when known up front (files: after rotation): the filter then has
   * fitGeometry's numbers. Not for lavfi test patterns, which round odd sizes down for yuv420p.
   */
  source?: { width: number; height: number };
  /** Read at the native frame rate (-re). */
  realtime?: boolean;
  /** Start this many seconds in (accurate seek, used to resume a file after a restart). */
  seekSeconds?: number;
}

/** Full ffmpeg argument list: input → scaled raw frames on stdout, one per decoded frame. */
export function ffmpegArgs(o: FfmpegArgsOptions): string[] {
  const pre = ['-hide_banner', '-nostdin', '-loglevel', 'error'];
  if (o.realtime) pre.push('-re');
  if (o.seekSeconds && o.seekSeconds > 0) pre.push('-ss', o.seekSeconds.toFixed(4));
  return [
    ...pre,
    ...o.input,
    '-map', '0:v:0',
    '-an', '-sn', '-dn',
    '-vf', o.geometry.channels === 1 ? `${scaleFilter(o.geometry, o.source)},${grayFilter()}` : scaleFilter(o.geometry, o.source),
    // One output frame per decoded frame: no duplication or dropping to a constant rate.
    '-fps_mode', 'passthrough',
    '-pix_fmt', o.geometry.channels === 1 ? 'gray' : 'rgb24',
    '-f', 'rawvideo',
    'pipe:1',
  ];
}

export interface VideoInfo {
  width: number;
  height: number;
  /** Average frame rate, frames per second. */
  fps?: number;
  /** Frame count from the container, when it says. */
  frames?: number;
  durationSeconds?: number;
  /** Display rotation in degrees (ffmpeg applies it when decoding: ±90 swaps the delivered width and height). */
  rotation?: number;
  /**
   * Presentation time of each frame in ms from the first, in display order: only for a variable-frame-rate
   * stream (its r_frame_rate, the base rate, differs from avg_frame_rate, as a phone's video often does),
   * where `seq / fps` would misplace frames. From ffprobe's packet timestamps (no decoding).
   */
  frameTimes?: number[];
}

/** Whether two frame rates differ by more than 0.5% (a variable-frame-rate stream's base and average rates). */
function ratesDiffer(a: number | undefined, b: number | undefined): boolean {
  return a !== undefined && b !== undefined && Math.abs(a - b) > 0.005 * Math.max(a, b);
}

/**
 * The media time (ms) of frame `seq` of a file: its own timestamp when the stream's frame times are known
 * (variable frame rate, VideoInfo.frameTimes), else `seq / fps`; past the known times (frames the packet
 * list did not have) the last known time plus whole frames at the average rate. Undefined without a rate.
 */
export function frameTime(info: Pick<VideoInfo, 'fps' | 'frameTimes'>, seq: number): number | undefined {
  const t = info.frameTimes;
  if (t?.length) {
    if (seq < t.length) return t[seq]!;
    return info.fps ? t[t.length - 1]! + ((seq - t.length + 1) * 1000) / info.fps : undefined;
  }
  return info.fps ? (seq * 1000) / info.fps : undefined;
}

function parseRate(r: string | undefined): number | undefined {
  if (!r) return undefined;
  const [n, d] = r.split('/').map(Number);
  const v = d ? n! / d : n!;
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** ffprobe a video file's first video stream. */
export async function probeVideo(file: string, ffprobe = 'ffprobe'): Promise<VideoInfo> {
  const exe = requireExecutable(ffprobe, file);
  let out: string;
  try {
    ({ stdout: out } = await promisify(execFile)(exe, [
      '-v', 'error', '-select_streams', 'v:0',
      '-show_entries', 'stream=width,height,avg_frame_rate,r_frame_rate,nb_frames:stream_side_data=rotation:stream_tags=rotate:format=duration',
      '-of', 'json', file,
    ]));
  } catch (err) {
    const msg = String((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').pop();
    throw new EdgetuneError('EINPUT', `${file}: not a readable video (${msg})`, { subject: file });
  }
  const j = JSON.parse(out) as { streams?: (Record<string, string | number> & { side_data_list?: { rotation?: number }[]; tags?: { rotate?: string } })[]; format?: { duration?: string } };
  const s = j.streams?.[0];
  if (!s) throw new EdgetuneError('EINPUT', `${file}: no video stream found`, { subject: file });
  const fps = parseRate(s.avg_frame_rate as string) ?? parseRate(s.r_frame_rate as string);
  const frameTimes = ratesDiffer(parseRate(s.avg_frame_rate as string), parseRate(s.r_frame_rate as string)) ? await packetTimes(exe, file) : undefined;
  const frames = Number(s.nb_frames);
  const dur = Number(j.format?.duration);
  const rotation = Number(s.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? s.tags?.rotate ?? 0);
  return {
    width: Number(s.width),
    height: Number(s.height),
    fps,
    frames: Number.isFinite(frames) && frames > 0 ? frames : undefined,
    durationSeconds: Number.isFinite(dur) ? dur : undefined,
    rotation: Number.isFinite(rotation) && rotation !== 0 ? rotation : undefined,
    ...(frameTimes ? { frameTimes } : {}),
  };
}

/**
 * The first video stream's packet presentation times (ms from the first, sorted into display order;
 * packets before the stream start, dropped by the decoder's edit list, left out), or undefined when
 * ffprobe cannot list them.
 */
async function packetTimes(ffprobe: string, file: string): Promise<number[] | undefined> {
  try {
    const { stdout } = await promisify(execFile)(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file], { maxBuffer: 64 * 1024 * 1024 });
    const t = stdout
      .split('\n')
      .map((l) => Number.parseFloat(l))
      .filter((v) => Number.isFinite(v) && v >= 0)
      .sort((a, b) => a - b);
    return t.length ? t.map((v) => Math.round((v - t[0]!) * 1e6) / 1e3) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A URI's path part with its %-escapes decoded (`file://clip%20one.mp4` → `clip one.mp4`). Errors:
 * EARG naming the URI for a malformed escape (a bare `%` in a file:// or dir:// URI).
 */
export function decodeUriPath(p: string, uri: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new EdgetuneError('EARG', `${uri}: malformed %-escape in the path (in a file:// or dir:// URI a "%" is written %25; a plain path needs no escapes)`, { subject: uri });
  }
}

/** A plain path as the path part of a URI: its "%" and "?" escaped, so a file named `100%.mov` or `what?.mp4` is that file, not an escape or a query. */
export function pathToUriPart(p: string): string {
  return p.replace(/%/g, '%25').replace(/\?/g, '%3F');
}

/** `scheme:rest?a=1&b=2` → rest and params (rest keeps its own URL form for rtsp/http). */
export function splitQuery(s: string): { base: string; params: URLSearchParams } {
  const q = s.indexOf('?');
  return q < 0 ? { base: s, params: new URLSearchParams() } : { base: s.slice(0, q), params: new URLSearchParams(s.slice(q + 1)) };
}

function sizeParam(v: string | null, name: string): string | undefined {
  if (v === null) return undefined;
  if (!/^\d+x\d+$/.test(v)) throw invalidParameter(name, 'WIDTHxHEIGHT, e.g. 640x480', v);
  return v;
}

function numParam(v: string | null, name: string): number | undefined {
  if (v === null) return undefined;
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw invalidParameter(name, 'positive number', v);
  return n;
}

function boolParam(v: string | null): boolean | undefined {
  return v === null ? undefined : v === '' || v === '1' || v === 'true' || v === 'yes';
}

/** `v4l2:///dev/video0?size=1280x720&fps=30&format=mjpeg` */
export function v4l2Input(uri: string): string[] {
  const { base, params } = splitQuery(uri.replace(/^v4l2:(\/\/)?/, ''));
  const device = base || '/dev/video0';
  const size = sizeParam(params.get('size'), 'v4l2 size');
  const fps = numParam(params.get('fps'), 'v4l2 fps');
  const format = params.get('format');
  return [
    '-f', 'v4l2',
    ...(fps ? ['-framerate', String(fps)] : []),
    ...(size ? ['-video_size', size] : []),
    ...(format ? ['-input_format', format] : []),
    '-i', device,
  ];
}

/**
 * rtsp:// over TCP (no smeared frames from lost UDP packets); http(s):// (MJPEG, HLS, files) as
 * given. No `-fflags nobuffer`: measured on the shared H.264 clip it changed the decoded pixels
 * (mean abs difference 19/255), and the pipeline's latest-frame-wins already bounds latency.
 */
export function networkInput(uri: string): string[] {
  if (uri.startsWith('rtsp')) return ['-rtsp_transport', 'tcp', '-i', uri];
  return ['-i', uri];
}

/** `test:`, `test:smptebars?size=320x240&rate=25&duration=5` → lavfi input. */
export function testInput(uri: string): { input: string[]; finite: boolean; fps: number } {
  const { base, params } = splitQuery(uri.replace(/^test:(\/\/)?/, ''));
  const pattern = base || 'testsrc2';
  if (!/^[a-z0-9_]+$/.test(pattern)) throw invalidParameter('test pattern', 'a lavfi source name such as testsrc2, smptebars, mandelbrot', pattern);
  const size = sizeParam(params.get('size'), 'test size') ?? '640x360';
  const fps = numParam(params.get('rate') ?? params.get('fps'), 'test rate') ?? 30;
  const duration = numParam(params.get('duration'), 'test duration');
  return {
    input: ['-f', 'lavfi', '-i', `${pattern}=size=${size}:rate=${fps}${duration ? `:duration=${duration}` : ''}`],
    finite: duration !== undefined,
    fps,
  };
}

/** `file:///abs/path.mp4`, `file://relative/path.mp4` (relative to the working directory) or a plain path. */
export function filePath(uri: string): { file: string; params: URLSearchParams } {
  const { base, params } = splitQuery(uri.replace(/^file:(\/\/)?/, ''));
  if (!base) throw new EdgetuneError('EARG', `${uri}: no file given (file://path/video.mp4)`, { subject: uri });
  return { file: path.resolve(decodeUriPath(base, uri)), params };
}

/** Where to seek (s) to resume a file at frame `seq`: half a frame before its time, so the first frame at or after it is `seq`. */
function seekTo(info: VideoInfo, seq: number): number {
  const t = frameTime(info, seq);
  const before = frameTime(info, seq - 1);
  return t === undefined ? 0 : (before !== undefined ? (t + before) / 2 : t) / 1000;
}

export async function openFfmpegSource(uri: string, o: SourceOptions): Promise<FrameSource> {
  const g = geometryOf(o);
  const ffmpeg = o.ffmpegPath ?? 'ffmpeg';
  const common = { uri, bin: ffmpeg, width: g.width, height: g.height, channels: g.channels, reconnect: o.reconnect, onEvent: o.onEvent };
  const scheme = uri.slice(0, uri.indexOf(':')).toLowerCase();
  switch (scheme) {
    case 'v4l2': {
      const input = v4l2Input(uri);
      return new ChildFrameSource({ ...common, kind: 'v4l2', live: true, finite: false, args: () => ffmpegArgs({ input, geometry: g }) });
    }
    case 'rtsp':
    case 'rtsps':
    case 'http':
    case 'https': {
      const input = networkInput(uri);
      return new ChildFrameSource({ ...common, kind: scheme.startsWith('rtsp') ? 'rtsp' : 'http', live: true, finite: false, args: () => ffmpegArgs({ input, geometry: g }) });
    }
    case 'test': {
      const t = testInput(uri);
      const realtime = o.realtime ?? true;
      return new ChildFrameSource({
        ...common,
        kind: 'test',
        live: realtime,
        finite: t.finite,
        args: () => ffmpegArgs({ input: t.input, geometry: g, realtime }),
        ptsOf: (seq) => (seq * 1000) / t.fps,
      });
    }
    case 'file': {
      const { file, params } = filePath(uri);
      try {
        const st = await stat(file);
        if (!st.isFile()) throw new EdgetuneError('EINPUT', `${file}: not a file${st.isDirectory() ? ` (a folder: an image sequence is dir://${file})` : ''}`, { subject: file });
      } catch (err) {
        if (err instanceof EdgetuneError) throw err;
        // ffmpeg's image2 pattern (frame_%04d.png) is not a file: a sequence is read as its folder
        const pattern = /%0?\d*d/.test(path.basename(file)) ? `; an image sequence is read as its folder: dir://${path.dirname(file)}` : '';
        throw new EdgetuneError('EINPUT', `${file}: cannot read video file (${(err as NodeJS.ErrnoException).code})${pattern}`, { subject: file });
      }
      requireExecutable(ffmpeg, uri);
      const info = await probeVideo(file, ffmpeg.includes('/') ? path.join(path.dirname(ffmpeg), 'ffprobe') : 'ffprobe');
      const realtime = o.realtime ?? boolParam(params.get('realtime')) ?? true;
      const quarter = Math.abs(info.rotation ?? 0) % 180 === 90;
      const source = quarter ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
      return new ChildFrameSource({
        ...common,
        kind: 'file',
        live: realtime,
        finite: true,
        // After a restart, resume at the next frame instead of replaying the file (seek half a frame
        // early: the first frame at or after the seek point is the one wanted).
        args: ({ seq }) => ffmpegArgs({ input: ['-i', file], geometry: g, source, realtime, seekSeconds: seq ? seekTo(info, seq) : 0 }),
        ptsOf: (seq) => frameTime(info, seq),
        frames: info.frames,
      });
    }
    default:
      throw new EdgetuneError('EARG', `not an ffmpeg source: ${uri}`, { subject: uri });
  }
}
