// csi://N: a Jetson CSI camera through GStreamer. nvarguscamerasrc captures into NVMM memory,
// nvvidconv crops (for `cover`) and scales on the VIC hardware to the model's input size, and
// videoconvert packs RGB (or GRAY8) for fdsink on stdout, which ChildFrameSource reads like ffmpeg's
// output. The pipeline string is built here and unit-tested; it runs only on a Jetson.
//
//   csi://0?width=1920&height=1080&fps=30&flip=0

import { invalidParameter } from '../../runtime/core/errors.js';
import { fitGeometry, sourceEdges } from '../../runtime/image/geometry.js';
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

/**
 * The region of the sensor image that `cover` (with crop) keeps, in whole sensor pixels: fitGeometry's
 * source rectangle (runtime/image/geometry.ts) with its edges rounded, as nvvidconv crops by integers.
 */
export function coverRegion(sw: number, sh: number, g: FrameGeometry): { left: number; top: number; right: number; bottom: number } {
  return sourceEdges(fitGeometry(sw, sh, g), sw, sh);
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
    const { resized, pad } = fitGeometry(c.captureWidth, c.captureHeight, g);
    parts.push(conv, `video/x-raw,width=${resized.width},height=${resized.height},format=RGBA`, 'videoconvert', `video/x-raw,format=${format}`);
    parts.push(`videobox left=-${pad.left} right=-${pad.right} top=-${pad.top} bottom=-${pad.bottom} fill=black`);
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
