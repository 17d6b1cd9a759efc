// createSource(uri, options): opens a frame source by URI scheme. Every source yields HWC uint8
// frames at the requested (model) size; see types.ts for the contract and SOURCES_USAGE for the
// schemes the CLI help lists.

import { stat } from 'node:fs/promises';
import { EdgetuneError } from '../../runtime/core/errors.js';
import { maskUri } from '../../runtime/core/redact.js';
import { openCsiSource } from './csi.js';
import { filePath, openFfmpegSource, pathToUriPart } from './ffmpeg.js';
import { openDirSource, openImageFileSource, openWebcamSource } from './still.js';
import { isStillImageFile } from '../../runtime/image/decode.js';
import type { FrameSource, ReconnectOptions, SourceOptions } from './types.js';
import { checkOptionKeys, type AssertNever } from '../../runtime/core/options.js';

/** Every key of SourceOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const SOURCE_OPTION_KEYS = ['width', 'height', 'channels', 'resize', 'crop', 'realtime', 'fps', 'reconnect', 'onEvent', 'ffmpegPath', 'gstLaunchPath'] as const satisfies readonly (keyof SourceOptions)[];
/** `never` while SOURCE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedSourceOption = AssertNever<Exclude<keyof SourceOptions, (typeof SOURCE_OPTION_KEYS)[number]>>;
const RECONNECT_OPTION_KEYS = ['retries', 'initialMs', 'maxMs', 'stallTimeoutMs'] as const satisfies readonly (keyof ReconnectOptions)[];
/** `never` while RECONNECT_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedReconnectOption = AssertNever<Exclude<keyof ReconnectOptions, (typeof RECONNECT_OPTION_KEYS)[number]>>;

/** The URI schemes createSource opens (a bare path is file:// or, for a folder, dir://). */
export const SOURCE_SCHEMES = ['v4l2', 'rtsp', 'rtsps', 'http', 'https', 'file', 'csi', 'webcam', 'dir', 'test'] as const;

/** The sources as the CLI's help lists them (watch, capture): one line per scheme, with what it needs. */
export const SOURCES_USAGE = `Sources:
  v4l2:///dev/video0[?size=1280x720&fps=30&format=mjpeg]   USB/UVC camera (ffmpeg)
  rtsp://user:pass@host/stream, http(s)://host/video.mjpg     IP camera (ffmpeg; RTSP over TCP)
  file://path/video.mp4                                       video file (ffmpeg), paced in real time
                                                              unless --as-fast-as-possible
  photo.jpg, file://path/photo.png                            still photo: one frame, decoded as classify
                                                              decodes it (EXIF orientation applied)
  csi://0[?width=1920&height=1080&fps=30&flip=0]              Jetson CSI camera (GStreamer nvarguscamerasrc)
  webcam:default, webcam:/dev/video1[?size=1280x720]          snapshots by fswebcam (Linux) / imagesnap (macOS)
  dir://path/to/frames[?fps=2]                                sorted image sequence (paced when fps is given)
  test:[testsrc2|smptebars|mandelbrot][?size=640x360&rate=30&duration=10]   ffmpeg synthetic pattern
Frames arrive at the model's input size (ffmpeg/GStreamer scale them; same resize/centre-crop as classify).
A source process that dies, or delivers no frame for --stall-timeout, is restarted with backoff (250 ms
doubling to 5 s), at most --retries times in a row. Credentials in a URI are masked in everything shown.`;

/** Whether `uri` starts with a scheme (`file:`, `rtsp:`, …; a Windows drive letter `C:\\` is a path). */
function hasScheme(uri: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(uri) && !/^[a-z]:[\\/]/i.test(uri);
}

/**
 * A path or URI with no scheme: a path ending in '/' becomes dir://, other paths file:// (createSource
 * also takes an existing folder without the '/' as dir://). A plain path is taken literally: its "%" and
 * "?" are escaped in the URI (a file named `100%.mov` was "URI malformed").
 */
export function normalizeUri(uri: string): string {
  if (hasScheme(uri)) return uri;
  return uri.endsWith('/') ? `dir://${pathToUriPart(uri)}` : `file://${pathToUriPart(uri)}`;
}

/**
 * Open the frame source `uri` (a scheme of SOURCES_USAGE, or a bare path: a folder is dir://, a file
 * file://). Frames are HWC uint8 at `options`' width × height (the model's input size; SourceOptions
 * gives the defaults). Errors: EARG for an unknown scheme, or for an option it does not take, nested
 * `reconnect` included (`createSource: unknown option "reconnect.retry" (reconnect options: retries, …)`);
 * the scheme's own errors (a missing ffmpeg, a file that cannot be opened) as EDEPEND / EINPUT.
 */
export async function createSource(uri: string, options: SourceOptions = {}): Promise<FrameSource> {
  checkOptionKeys('createSource', options, SOURCE_OPTION_KEYS);
  checkOptionKeys('createSource', options.reconnect, RECONNECT_OPTION_KEYS, 'reconnect');
  let u = normalizeUri(uri);
  // a bare path that is a folder is an image sequence, trailing '/' or not (`watch frames` like `watch frames/`)
  if (!hasScheme(uri) && (await stat(uri).then((st) => st.isDirectory(), () => false))) u = `dir://${pathToUriPart(uri)}`;
  const scheme = u.slice(0, u.indexOf(':')).toLowerCase();
  switch (scheme) {
    case 'v4l2':
    case 'rtsp':
    case 'rtsps':
    case 'http':
    case 'https':
    case 'test':
      return openFfmpegSource(u, options);
    case 'file': {
      // one decode path: a still photo is decoded as classify decodes it (sharp, EXIF orientation), a video by ffmpeg
      const { file } = filePath(u);
      return (await isStillImageFile(file)) ? openImageFileSource(u, file, options) : openFfmpegSource(u, options);
    }
    case 'csi':
      return openCsiSource(u, options);
    case 'dir':
      return openDirSource(u, options);
    case 'webcam':
      return openWebcamSource(u, options);
    default:
      throw new EdgetuneError('EARG', `Unknown source "${maskUri(uri)}": expected a URI starting with ${SOURCE_SCHEMES.map((s) => s + ':').join(', ')}`, { subject: maskUri(uri) });
  }
}

export type { Frame, FrameSource, FrameGeometry, SourceEvent, SourceOptions, ReconnectOptions } from './types.js';
export { csiPipeline, parseCsiUri, coverRegion, gstLaunchArgs } from './csi.js';
export { ffmpegArgs, scaleFilter, probeVideo, v4l2Input, networkInput, testInput, type VideoInfo } from './ffmpeg.js';
export { findExecutable, requireExecutable, backoffDelay, DEFAULT_STALL_TIMEOUT_MS } from './child.js';
