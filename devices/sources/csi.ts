// csi://N: a Jetson CSI camera through GStreamer. nvarguscamerasrc captures into NVMM memory,
// nvvidconv crops (for `cover`) and scales on the VIC hardware to the model's input size, and
// videoconvert packs RGB (or GRAY8) for fdsink on stdout, which ChildFrameSource reads like ffmpeg's
// output. The pipeline string is built here and unit-tested; it runs only on a Jetson.
//
//   csi://0?width=1920&height=1080&fps=30&flip=0

import { invalidParameter } from '../../runtime/core/errors.js';
import { ChildFrameSource } from './child.js';
import { geometryOf, splitQuery } from './ffmpeg.js';
import type { FrameGeometry, FrameSource, SourceOptions } from './types.js';

export interface CsiOptions {
  sensorId: number;
  /** Sensor mode to capture (must be one the sensor offers). Default 1920×1080 at 30 fps. */
  captureWidth: number;
  captureHeight: number;
  fps: number;
  /** nvvidconv flip-method 0..7 (2 = rotate 180°, common for upside-down mounted modules). */
  flip: number;
}

export function parseCsiUri(uri: string): CsiOptions {
  const { base, params } = splitQuery(uri.replace(/^csi:(\/\/)?/, ''));
  const sensorId = base === '' ? 0 : Number(base);
  if (!Number.isInteger(sensorId) || sensorId < 0) throw invalidParameter('csi sensor id', 'non-negative integer, e.g. csi://0', base);
  const num = (k: string, def: number, ok: (n: number) => boolean, expected: string) => {
    const v = params.get(k);
    if (v === null) return def;
    const n = Number(v);
    if (!ok(n)) throw invalidParameter(`csi ${k}`, expected, v);
    return n;
  };
  const posInt = (n: number) => Number.isInteger(n) && n > 0;
  return {
    sensorId,
    captureWidth: num('width', 1920, posInt, 'positive integer'),
    captureHeight: num('height', 1080, posInt, 'positive integer'),
    fps: num('fps', 30, posInt, 'positive integer'),
    flip: num('flip', 0, (n) => Number.isInteger(n) && n >= 0 && n <= 7, 'integer 0..7'),
  };
}

/** Centre region of the sensor image that `cover` (with crop) keeps, in sensor pixels. */
export function coverRegion(sw: number, sh: number, g: FrameGeometry): { left: number; top: number; right: number; bottom: number } {
  // The decoder resizes so the image covers (W/crop × H/crop), then centre-crops W × H: the kept
  // region is W/s × H/s sensor pixels with s = max(tw/sw, th/sh).
  const tw = g.width / g.crop;
  const th = g.height / g.crop;
  const s = Math.max(tw / sw, th / sh);
  const rw = Math.min(sw, Math.round(g.width / s));
  const rh = Math.min(sh, Math.round(g.height / s));
  const left = Math.floor((sw - rw) / 2);
  const top = Math.floor((sh - rh) / 2);
  return { left, top, right: left + rw, bottom: top + rh };
}

/** The gst-launch-1.0 pipeline description for a CSI sensor delivering model-sized raw frames to stdout. */
export function csiPipeline(c: CsiOptions, g: FrameGeometry): string {
  const format = g.channels === 1 ? 'GRAY8' : 'RGB';
  const parts = [
    `nvarguscamerasrc sensor-id=${c.sensorId}`,
    `video/x-raw(memory:NVMM),width=${c.captureWidth},height=${c.captureHeight},framerate=${c.fps}/1,format=NV12`,
  ];
  let conv = `nvvidconv flip-method=${c.flip}`;
  if (g.resize === 'cover') {
    const r = coverRegion(c.captureWidth, c.captureHeight, g);
    if (r.left || r.top || r.right !== c.captureWidth || r.bottom !== c.captureHeight) {
      conv += ` left=${r.left} right=${r.right} top=${r.top} bottom=${r.bottom}`;
    }
  }
  if (g.resize === 'contain') {
    const s = Math.min(g.width / c.captureWidth, g.height / c.captureHeight);
    const w = Math.round(c.captureWidth * s);
    const h = Math.round(c.captureHeight * s);
    const padX = g.width - w;
    const padY = g.height - h;
    parts.push(conv, `video/x-raw,width=${w},height=${h},format=RGBA`, 'videoconvert', `video/x-raw,format=${format}`);
    parts.push(
      `videobox left=-${Math.floor(padX / 2)} right=-${padX - Math.floor(padX / 2)} top=-${Math.floor(padY / 2)} bottom=-${padY - Math.floor(padY / 2)} fill=black`,
    );
  } else {
    parts.push(conv, `video/x-raw,width=${g.width},height=${g.height},format=RGBA`, 'videoconvert');
  }
  parts.push(`video/x-raw,format=${format},width=${g.width},height=${g.height}`, 'fdsink fd=1 sync=false');
  return parts.join(' ! ');
}

/** gst-launch-1.0 arguments: quiet (stdout carries only frames), EOS on interrupt. */
export function gstLaunchArgs(pipeline: string): string[] {
  return ['-q', '-e', ...pipeline.split(' ')];
}

export function openCsiSource(uri: string, o: SourceOptions): FrameSource {
  const c = parseCsiUri(uri);
  const g = geometryOf(o);
  const pipeline = csiPipeline(c, g);
  return new ChildFrameSource({
    uri,
    kind: 'csi',
    live: true,
    finite: false,
    bin: o.gstLaunchPath ?? 'gst-launch-1.0',
    width: g.width,
    height: g.height,
    channels: g.channels,
    args: () => gstLaunchArgs(pipeline),
    reconnect: o.reconnect,
    onEvent: o.onEvent,
  });
}
