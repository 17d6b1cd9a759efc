// Image decoding for Node with sharp: file or bytes → HWC uint8 pixels at the model's input size.
// EXIF orientation is applied; grayscale, alpha, 16-bit, CMYK and palette images all become 8-bit
// sRGB (or 8-bit gray for grayscale models); JPEG shrink-on-load does part of the downscaling in the
// decoder. The resize size and crop are fitGeometry's (runtime/image/geometry.ts), as on every other
// pixel path. Decompression bombs are refused by a pixel limit. Errors name the file and the problem.

import { access, constants, lstat, open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { errnoWords } from '../io/errno.js';
import { fileKind } from '../io/read-file.js';
import { fitGeometry, MAX_IMAGE_PIXELS, pixelLimitMessage } from './geometry.js';
import type { HwcImage, PreprocessSpec } from './preprocess.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';

/** Options of decodeImage and decodeFull (DECODE_OPTION_KEYS; a misspelt key is refused). */
export interface DecodeOptions {
  /** Refuse images with more pixels than this (width × height). Default 100 000 000 (e.g. 10000×10000). */
  maxPixels?: number;
  /** Background for images with transparency. Default white. */
  background?: { r: number; g: number; b: number };
}

/** Every key of DecodeOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const DECODE_OPTION_KEYS = ['maxPixels', 'background'] as const satisfies readonly (keyof DecodeOptions)[];
/** `never` while DECODE_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedDecodeOption = AssertNever<Exclude<keyof DecodeOptions, (typeof DECODE_OPTION_KEYS)[number]>>;

/** decodeImage's default `maxPixels`: MAX_IMAGE_PIXELS (100 000 000 pixels, runtime/image/geometry.ts), past which an image is refused as a possible decompression bomb. */
export const DEFAULT_MAX_PIXELS = MAX_IMAGE_PIXELS;

/** The largest side or offset sharp's resize/extract accept (its argument checks: 0 to 1e8). */
const MAX_SHARP_SIDE = 100_000_000;

// Model-sized decodes are small: one libvips thread per image, with several images decoded at once on
// libuv's pool, measured faster than libvips splitting each image across threads (3.7 vs 4.0 ms for a
// 1080² JPEG alone, 2.6 ms/image with 4 in flight; see scripts/bench.ts). sharp's cache only helps
// repeated decodes of the same file, which a classifier rarely does.
sharp.cache(false);
sharp.concurrency(Number(process.env.EDGETUNE_SHARP_CONCURRENCY ?? 1));

/**
 * The failure in words, about this file's own format (`format`, sniffed from its first bytes). libvips
 * keeps one error buffer per process, so a decode failing while another fails can be handed the other
 * file's message: a message from another format's decoder is never shown for this file. `input` is the
 * file's path (or bytes): libvips prefixes some lines with it, which are shown without it.
 */
function explain(err: unknown, format: string | undefined, input?: string | Uint8Array): string {
  const m = messageOf(err);
  if (/exceeds pixel limit/i.test(m)) return m;
  if (/unsupported image format/i.test(m)) {
    if (format && decodedFormat(format)) return `corrupt image (a damaged ${format} file: its decoder does not recognise it)`;
    return format ? `unsupported image format (${format}; this build decodes ${DECODED_IMAGE_EXTENSIONS.join(' ')})` : 'not a supported image (unsupported image format)';
  }
  // a TIFF's decoder (libtiff through tiff2vips) also reports the codecs inside it: libjpeg's words about a
  // JPEG-compressed strip are the TIFF's damage, not a JPEG file's ("0-bit JPEG", "Not a JPEG file")
  if (format === 'TIFF' && !foreign(decisiveLine(m, input), format)) return tiffWords(decisiveLine(m, input));
  // libheif: an iPhone's HEIC photo is HEIF compressed with HEVC, which this build of sharp (AVIF only) cannot decode
  const codec = /compression format has not been built in: (\w+)/i.exec(m)?.[1];
  if (codec) {
    return `unsupported image compression (${format ?? 'image'} compressed with ${codec}${codec.toUpperCase() === 'HEVC' ? ', a HEIC photo as phones save it' : ''}: this build decodes HEIF only as AVIF); convert it to JPEG or PNG first`;
  }
  // libjpeg-turbo as sharp builds it decodes 8-bit JPEG only (12-bit: medical and scientific cameras)
  const precision = /Unsupported JPEG data precision (\d+)/i.exec(m)?.[1];
  if (precision) return `unsupported image format (${precision}-bit JPEG; this build decodes 8-bit JPEG); convert it to an 8-bit JPEG or a PNG first`;
  const line = decisiveLine(m, input);
  if (format && foreign(line, format)) return `corrupt or truncated image (a damaged ${format} file)`;
  if (/premature end|truncated|VipsJpeg: .*(corrupt|end)|Invalid SOS|not enough data|read error|seek error|gifload|pngload|unexpected end/i.test(line)) {
    return `corrupt or truncated image (${line})`;
  }
  return line;
}

/** A libvips line that says a TIFF's data ends early or points past the end of the file. */
const TRUNCATED_TIFF = /not enough data|read error|seek error|premature end|unexpected end|bad seek/i;

/**
 * A TIFF's failure (its decisive line, see decisiveLine) in the words the other formats' failures use:
 * `corrupt or truncated image (a damaged TIFF file: Not enough data at scanline 0 (short 12288 bytes))`,
 * `corrupt image (a damaged TIFF file: Bad value 0 for "Orientation" tag)`, or for a compression this
 * build lacks `unsupported image compression (TIFF compressed with Old-style JPEG: …); convert it to JPEG
 * or PNG first`. libvips' and libtiff's prefixes (`Input file has corrupt header:`, `tiff2vips:`, libtiff's
 * name for the stream, `source input:`) are left out: the file is named before the reason.
 */
function tiffWords(line: string): string {
  const r = line
    .replace(/^Input (file|buffer) has corrupt header:\s*/i, '')
    .replace(/^tiff2vips:\s*/, '')
    .replace(/^(Warning )?source input[:;]\s*/, '');
  const missing = /^(.+?) compression support is not configured/i.exec(r)?.[1] ?? /^Compression scheme ([1-9]\d*) \w+ decoding is not implemented/i.exec(r)?.[1];
  if (missing) return `unsupported image compression (TIFF compressed with ${/^\d+$/.test(missing) ? `scheme ${missing}` : missing}: this build does not decode it); convert it to JPEG or PNG first`;
  return `${TRUNCATED_TIFF.test(r) ? 'corrupt or truncated image' : 'corrupt image'} (a damaged TIFF file: ${r || 'its decoder gives no reason'})`;
}

/** Whether this build of sharp decodes the sniffFormat-named format (a file of it that is "unsupported" is damaged). */
function decodedFormat(format: string): boolean {
  const id = ({ JPEG: 'jpeg', PNG: 'png', GIF: 'gif', WebP: 'webp', TIFF: 'tiff' } as Record<string, keyof typeof sharp.format>)[format];
  return id !== undefined && sharp.format[id].input.file === true;
}

/** A libvips line that is file or stream I/O probing ("x.tif: bad seek to 4909", "source: bad seek to 1024"): the reason follows it. */
const SEEK_NOISE = /(^|: )bad seek to \d+$/;

/**
 * libtiff's warnings, which libvips passes on with the error that follows them (`tiff2vips: Warning source
 * input; Tag InkNames:` and its indented continuation, `… is TIFF_SETGET_UNDEFINED and thus tag is not read
 * from file`): a warning is the reason a decode failed only when nothing else is said.
 */
const TIFF_WARNING = /\btiff2vips: Warning\b|TIFF_SETGET_UNDEFINED/;

/**
 * The line of a libvips message that says why: lines are stripped of this file's path prefix (an
 * indented line continues the one before); seek probing lines, libtiff's warnings (TIFF_WARNING) and a
 * line cut short where libvips' error buffer filled up (ending "...") are passed over when a line with a
 * reason is left, and the first remaining line is taken.
 */
function decisiveLine(message: string, input?: string | Uint8Array): string {
  const own = typeof input === 'string' ? `${input}: ` : undefined;
  const entries: string[] = [];
  for (const raw of message.split('\n')) {
    const l = raw.trim();
    if (!l) continue;
    if (/^\s/.test(raw) && entries.length) entries[entries.length - 1] += ` ${l}`;
    else entries.push(own && l.startsWith(own) ? l.slice(own.length) : l);
  }
  const errors = entries.filter((l) => !TIFF_WARNING.test(l));
  const whole = errors.filter((l) => !l.endsWith('...'));
  return whole.find((l) => !SEEK_NOISE.test(l)) ?? whole[0] ?? errors[0] ?? entries[0] ?? message;
}

/**
 * Whether a libvips message names a file other than `input` (libtiff and libvips prefix lines with the
 * path they read: with one error buffer per process, another file's line can land in this file's error).
 */
function namesOtherFile(message: string, input: string | Uint8Array): boolean {
  return message.split('\n').some((l) => {
    const prefix = /^(.+?): /.exec(l.trim())?.[1];
    return prefix !== undefined && /[/\\]|\.\w{2,5}$/.test(prefix) && prefix !== input;
  });
}

/** Whether a decoder message names another format's decoder than `format`'s (crosstalk). */
function foreign(message: string, format: string): boolean {
  const from = LOADERS.filter(([re]) => re.test(message)).map(([, f]) => f);
  return from.length > 0 && !from.includes(format);
}

async function headOf(input: string | Uint8Array): Promise<Uint8Array> {
  if (typeof input !== 'string') return input.subarray(0, 16);
  try {
    const fh = await open(input, 'r');
    try {
      const b = new Uint8Array(16);
      await fh.read(b, 0, 16, 0);
      return b;
    } finally {
      await fh.close();
    }
  } catch {
    return new Uint8Array(0);
  }
}

/** Vector formats sharp can render (sharp.format ids, as metadata() names them), refused where a photo is expected (see refuseVector). */
const VECTOR_FORMATS = new Set(['svg', 'pdf']);

/**
 * Throws when sharp's `format` (from metadata(), which only parses the header) is a vector format.
 * Rendering SVG has no bound that the pixel limit sees: a 1 MB SVG of 100×100 declared pixels holding
 * one long `<text>` took > 3 GB in 12 s inside librsvg. Every command here expects photos or camera
 * frames (classify, finetune, eval, quantize, watch dir://, augment-preview), so vector images are
 * refused with the reason, before any rendering; rasterise one first (e.g. `rsvg-convert -o x.png x.svg`).
 */
export function refuseVector(format: string | undefined): void {
  if (format && VECTOR_FORMATS.has(format)) {
    throw new EdgetuneError('EINPUT', `vector image (${format.toUpperCase()}) refused: edgetune reads photos, and rendering a vector image has no size bound; convert it to PNG or JPEG first`);
  }
}

/**
 * A sharp pipeline that outputs the model-ready HWC pixels: the header is read first (EXIF-rotated
 * size), then fitGeometry (runtime/image/geometry.ts) says the resize size and the crop or letterbox,
 * which sharp does with those numbers (resize, then extract or extend).
 */
async function pipeline(input: string | Uint8Array, spec: PreprocessSpec, opts: DecodeOptions): Promise<Sharp> {
  const limit = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const img = sharp(input, { limitInputPixels: limit, failOn: 'error', sequentialRead: true });
  const { autoOrient, format } = await img.metadata();
  refuseVector(format);
  const g = fitGeometry(autoOrient.width, autoOrient.height, spec);
  // sharp takes sides and offsets up to MAX_SHARP_SIDE; past that it throws its own argument names
  // ("for left but received …"): say what the image is instead
  const sides = [g.resized.width, g.resized.height, g.crop.x + g.crop.width, g.crop.y + g.crop.height];
  if (sides.some((s) => !Number.isFinite(s) || s > MAX_SHARP_SIDE)) {
    throw new EdgetuneError(
      'EINPUT',
      `image is ${autoOrient.width}x${autoOrient.height}: fitting it to the model's ${spec.width}x${spec.height} (${spec.resize}) would first scale it to ${g.resized.width}x${g.resized.height}, past the largest side the decoder takes (${MAX_SHARP_SIDE}); an aspect ratio this extreme is not a photo`,
    );
  }
  img.rotate();
  img.flatten({ background: opts.background ?? { r: 255, g: 255, b: 255 } });
  // cover/contain: sharp is given the constraining side only, so it scales both axes by one factor
  // and derives the other side with the same rounding; fill: both sides.
  const size = g.fixed === 'both' ? { ...g.resized, fit: 'fill' as const } : g.fixed === 'width' ? { width: g.resized.width } : { height: g.resized.height };
  // fastShrinkOnLoad off: libvips' most aggressive JPEG shrink rounds the shrunk size up and skews the
  // scale (800×533 → contain 224²: mean 1.23 / max 41 levels from the page's resampler with it, 0.45 /
  // 15 without); measured no slower on winml_dog.jpg → 224² (median 9.0 vs 9.8 ms, interleaved runs).
  img.resize({ ...size, fastShrinkOnLoad: false });
  if (spec.resize === 'cover' && (g.crop.width !== g.resized.width || g.crop.height !== g.resized.height)) {
    img.extract({ left: g.crop.x, top: g.crop.y, width: g.crop.width, height: g.crop.height });
  }
  if (g.pad.left || g.pad.top || g.pad.right || g.pad.bottom) img.extend({ ...g.pad, background: { r: 0, g: 0, b: 0 } });
  img.toColourspace(spec.channels === 1 ? 'b-w' : 'srgb');
  return img.raw({ depth: 'uchar' });
}

/**
 * Decode one image to the model's input size (`spec`'s width × height, its resize/crop and channels):
 * 8-bit HWC pixels. `name` is used in error messages (defaults to the path). Errors: EINPUT naming the
 * file (missing, a directory, empty, not an image, over `maxPixels`, a vector image); EARG for an option
 * it does not take (`decodeImage: unknown option "maxPixel" (options: maxPixels, background)`).
 */
export async function decodeImage(input: string | Uint8Array, spec: PreprocessSpec, opts: DecodeOptions = {}, name?: string): Promise<HwcImage> {
  checkOptionKeys('decodeImage', opts, DECODE_OPTION_KEYS);
  const label = name ?? (typeof input === 'string' ? input : '<buffer>');
  if (typeof input === 'string') {
    let size: number;
    try {
      const st = await stat(input);
      if (st.isDirectory()) throw new EdgetuneError('EINPUT', `${label}: is a directory, not an image`, { subject: label });
      // a FIFO or a device has size 0 ("empty file" would be wrong) and reading one may never end
      if (!st.isFile()) throw new EdgetuneError('EINPUT', `${label}: not a regular file (it is ${fileKind(st)})`, { subject: label });
      size = st.size;
    } catch (err) {
      if (err instanceof EdgetuneError) throw err;
      const dangling = (err as NodeJS.ErrnoException).code === 'ENOENT' && (await lstat(input).then((l) => l.isSymbolicLink(), () => false));
      throw new EdgetuneError('EINPUT', `${label}: ${dangling ? 'dangling symbolic link (its target does not exist)' : readErrorReason(err)}`, { subject: label });
    }
    if (size === 0) throw new EdgetuneError('EINPUT', `${label}: empty file (0 bytes)`, { subject: label });
    // sharp says "unsupported image format" for a file it may not open: say what it is
    try {
      await access(input, constants.R_OK);
    } catch (err) {
      throw new EdgetuneError('EINPUT', `${label}: ${readErrorReason(err)}`, { subject: label });
    }
  } else if (input.byteLength === 0) {
    throw new EdgetuneError('EINPUT', `${label}: empty file (0 bytes)`, { subject: label });
  }
  return run(() => pipeline(input, spec, opts), input, opts, label);
}

type Raw = { data: Buffer; info: { width: number; height: number; channels: number } };

/** Serialises the re-runs below so that two re-runs never overlap (first runs of other files still may). */
let retryChain: Promise<unknown> = Promise.resolve();
/** run()'s sharp pipelines in flight in this process, and how many have started (to tell whether two overlapped). */
let active = 0;
let started = 0;

/** One sharp pipeline to raw pixels, counted: `overlapped` when another of run()'s pipelines was running at any moment of it. */
async function tracked(make: () => Sharp | Promise<Sharp>): Promise<{ ok: true; raw: Raw } | { ok: false; error: unknown; overlapped: boolean }> {
  const busy = active > 0;
  const mine = ++started;
  active++;
  try {
    return { ok: true, raw: await (await make()).toBuffer({ resolveWithObject: true }) };
  } catch (error) {
    return { ok: false, error, overlapped: busy || started !== mine };
  } finally {
    active--;
  }
}

/**
 * Run a sharp pipeline to HWC pixels. libvips keeps one error buffer per process: when several
 * decodes fail at the same moment (decode-ahead over a folder of broken files), one of them can be
 * left with "Unknown error", another file's reason, or its own and another's. Another format's decoder
 * gives the crosstalk away, but two damaged TIFFs (or two JPEGs) read alike. So a failed run that
 * overlapped nothing (no other decode of this process ran at any moment of it) is told at once: its
 * reason can only be its own. One that overlapped another decode is run again, one re-run at a time in
 * the process (first runs of other files may still run beside it), until a re-run overlaps nothing or
 * gives a reason an earlier run gave (a file's own failure is the same every time; a vague reason or
 * another format's never counts; at most 3 re-runs); the last run's reason is the one told.
 */
async function run(make: () => Sharp | Promise<Sharp>, input: string | Uint8Array, opts: DecodeOptions, label: string): Promise<HwcImage> {
  const toImage = ({ data, info }: Raw): HwcImage => ({
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
    channels: info.channels,
  });
  const first = await tracked(make);
  if (first.ok) return toImage(first.raw);
  let failure = first.error;
  let overlapped = first.overlapped;
  const format = sniffFormat(await headOf(input));
  // a vague message, or one from another format's decoder (another file's failure), never settles it
  const vague = (e: unknown) => noReason(e) || namesOtherFile(messageOf(e), input) || (format !== undefined && foreign(decisiveLine(messageOf(e), input), format));
  const reason = (e: unknown) => decisiveLine(messageOf(e), input);
  // our own refusals (vector image, geometry) are not libvips' buffer: they are the reason as they are
  const seen = new Set(vague(failure) ? [] : [reason(failure)]);
  for (let attempt = 0; attempt < 3 && overlapped && !(failure instanceof EdgetuneError); attempt++) {
    const again = retryChain.then(() => tracked(make));
    retryChain = again;
    const r = await again;
    if (r.ok) return toImage(r.raw);
    failure = r.error;
    overlapped = r.overlapped;
    if (vague(failure)) continue;
    if (seen.has(reason(failure))) break; // a reason two runs gave: the file's own
    seen.add(reason(failure));
  }
  throw new EdgetuneError('EINPUT', `${label}: ${await describeFailure(input, failure, opts, format)}`, { subject: label, cause: failure });
}

/** Whether libvips said nothing: an empty message, "Unknown error", or "corrupt header:" with no reason after it. */
function noReason(err: unknown): boolean {
  const m = messageOf(err).trim().replace(/^Input (file|buffer) has corrupt header:\s*/i, '');
  return !m || /^unknown error$/i.test(m);
}

/** The reason a decode failed; for the pixel limit, the header's size (read without decoding). */
async function describeFailure(input: string | Uint8Array, err: unknown, opts: DecodeOptions, format: string | undefined): Promise<string> {
  if (err instanceof EdgetuneError) return err.message; // our own reason (the geometry check)
  const m = messageOf(err).trim();
  if (noReason(err)) {
    // libvips gave no reason even alone: say what the header says
    try {
      const h = await sharp(input, { limitInputPixels: false }).metadata();
      return `corrupt image: its ${h.format ?? format ?? 'image'} header reads as ${h.width}x${h.height}, but the pixel data does not decode`;
    } catch {
      return format ? `corrupt image (a damaged ${format} file: not even its header reads)` : 'not an image (no known image format starts this way, and the decoder cannot read it)';
    }
  }
  if (/^Expected .+ for \w+ but received /.test(m)) return `cannot be decoded to the model's input (the decoder refused its own geometry: ${format ?? 'unknown'} image)`;
  // the header read, but its bands do not convert to RGB (a TIFF's PhotometricInterpretation damaged:
  // "vips_colourspace: no known route from 'multiband' to 'srgb'", "linear: vector must have 1 or 2 elements")
  if (/^(vips_colourspace|linear): /.test(decisiveLine(m, input))) {
    const h = await sharp(input, { limitInputPixels: false }).metadata().catch(() => undefined);
    const what = h ? `its header's ${h.channels} channels in colour space "${h.space}"` : 'its channels';
    return `corrupt image (a damaged ${format ?? h?.format?.toUpperCase() ?? 'image'} file: ${what} do not convert to RGB)`;
  }
  if (/exceeds pixel limit/i.test(messageOf(err))) {
    const limit = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
    try {
      const m = await sharp(input, { limitInputPixels: false }).metadata();
      return pixelLimitMessage(m.width ?? 0, m.height ?? 0, limit);
    } catch {
      return `image exceeds the limit of ${limit} pixels; refused as a possible decompression bomb`;
    }
  }
  return explain(err, format, input);
}

/**
 * Decode without resizing (for previews, augmentation and capture): 8-bit sRGB HWC at the image's own
 * size, EXIF-rotated, transparency flattened onto `background`. Errors: EINPUT naming the image, as
 * decodeImage; EARG for an option it does not take (`decodeFull: unknown option "…" (options: maxPixels, background)`).
 */
export async function decodeFull(input: string | Uint8Array, opts: DecodeOptions = {}, name?: string): Promise<HwcImage> {
  checkOptionKeys('decodeFull', opts, DECODE_OPTION_KEYS);
  const label = name ?? (typeof input === 'string' ? input : '<buffer>');
  const make = async () => {
    const img = sharp(input, { limitInputPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS, failOn: 'error' });
    refuseVector((await img.metadata()).format);
    return img
      .rotate()
      .flatten({ background: opts.background ?? { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' });
  };
  return run(make, input, opts, label);
}

/** Encode 8-bit HWC pixels (1, 3 or 4 channels) as a JPEG (snapshots, captured frames); `quality` 1–100, default 90. */
export async function encodeJpeg(img: HwcImage, quality = 90): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 | 4 } })
    .jpeg({ quality })
    .toBuffer();
}

/** The extensions (lower case, with the dot) of the formats this build of sharp decodes from memory whose sharp.format id `keep` accepts. */
function suffixesOf(keep: (format: string) => boolean): readonly string[] {
  const all = Object.entries(sharp.format).flatMap(([id, f]) => (f.input.buffer && f.input.fileSuffix && keep(id) ? f.input.fileSuffix : []));
  return Object.freeze([...new Set(all.map((e) => e.toLowerCase()))].sort());
}

/**
 * The file extensions of the images edgetune decodes: every format this build of sharp decodes from
 * memory (sharp.format: jpeg .jpg .jpeg .jpe .jfif, png, webp, tiff .tif .tiff, gif, heif .avif, …) but
 * the vector ones (svg), which refuseVector refuses. Lower case with the dot. What the messages
 * listing the accepted images say ("no images", "unsupported image format").
 */
export const DECODED_IMAGE_EXTENSIONS: readonly string[] = suffixesOf((id) => !VECTOR_FORMATS.has(id));

/**
 * The names every command (classify, finetune, eval, quantize, the still source) takes as images:
 * DECODED_IMAGE_EXTENSIONS and the vector formats' (.svg), so that an SVG where a photo is expected is
 * refused with the reason (refuseVector) instead of passed over unseen. The same sharp.format list.
 */
export const IMAGE_EXTENSIONS: readonly string[] = suffixesOf(() => true);

/** The sniffFormat names of the formats sharp decodes here, whatever the file's name. */
const DECODED_SIGNATURES = new Set(['JPEG', 'PNG', 'GIF', 'WebP', 'TIFF']);

/**
 * Whether `file` is a still image that decodeImage reads: named like one (IMAGE_EXTENSIONS), or starting
 * like a JPEG, PNG, GIF, WebP or TIFF whatever its name, and not an animation (a GIF or WebP of several
 * frames, a video to ffmpeg). A still photo given as a stream source (`watch photo.jpg`) is decoded as
 * classify decodes it (EXIF orientation applied, the same resize and crop), never by ffmpeg. Never throws:
 * a damaged or unreadable image file is still one (decodeImage then names its problem); a path that is
 * not a file (missing, a folder, ffmpeg's `frame_%04d.png` pattern) is not (the video source names it).
 */
export async function isStillImageFile(file: string): Promise<boolean> {
  if (!(await stat(file).then((st) => st.isFile(), () => false))) return false;
  const named = IMAGE_EXTENSIONS.includes(extname(file).toLowerCase());
  const format = sniffFormat(await headOf(file));
  if (!named && !(format && DECODED_SIGNATURES.has(format))) return false;
  if (format !== 'GIF' && format !== 'WebP') return true;
  const pages = await sharp(file, { limitInputPixels: false }).metadata().then((m) => m.pages ?? 1, () => 1);
  return pages <= 1;
}

/** Formats recognised by their first bytes, to name an undecodable file's format (and to tell its own decoder's message from another file's). */
const SIGNATURES: [string, (b: Uint8Array) => boolean][] = [
  ['JPEG', (b) => b[0] === 0xff && b[1] === 0xd8],
  ['PNG', (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47],
  ['GIF', (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46],
  ['WebP', (b) => b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45],
  // classic TIFF (42) and BigTIFF (43), both byte orders
  ['TIFF', (b) => (b[0] === 0x49 && b[1] === 0x49 && (b[2] === 0x2a || b[2] === 0x2b) && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && (b[3] === 0x2a || b[3] === 0x2b))],
  ['BMP', (b) => b[0] === 0x42 && b[1] === 0x4d],
  ['ICO', (b) => b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0],
  ['PSD', (b) => b[0] === 0x38 && b[1] === 0x42 && b[2] === 0x50 && b[3] === 0x53],
  // Netpbm: P1–P7 and a whitespace byte (PBM, PGM, PPM, PAM)
  ['PNM', (b) => b[0] === 0x50 && b[1]! >= 0x31 && b[1]! <= 0x37 && (b[2] === 0x0a || b[2] === 0x20 || b[2] === 0x0d || b[2] === 0x09)],
  ['PDF', (b) => b[0] === 0x25 && b[1] === 0x50 && b[2] === 0x44 && b[3] === 0x46],
  // the JP2 signature box, or a bare JPEG 2000 codestream (SOC + SIZ markers)
  ['JPEG 2000', (b) => (b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0x0c && b[4] === 0x6a && b[5] === 0x50) || (b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51)],
  ['AVIF/HEIF', (b) => b[4] === 0x66 && b[5] === 0x74 && b[6] === 0x79 && b[7] === 0x70],
];

/** The image format named by a file's first bytes (JPEG, PNG, BMP, …), or undefined. */
export function sniffFormat(head: Uint8Array): string | undefined {
  return SIGNATURES.find(([, test]) => test(head))?.[0];
}

/** The decoder (libvips loader) a message comes from, as a sniffFormat name. */
const LOADERS: [RegExp, string][] = [
  [/jpeg|jpg/i, 'JPEG'],
  [/png/i, 'PNG'],
  [/gif/i, 'GIF'],
  [/webp/i, 'WebP'],
  [/tiff/i, 'TIFF'],
  [/heif|avif/i, 'AVIF/HEIF'],
];

/** The reason, in words, that a file could not be read: permission denied, not found, a folder, … (from a Node error code). */
export function readErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'EISDIR':
      return 'is a directory, not an image';
    case 'ELOOP':
      return 'symbolic link loop (ELOOP)';
    default:
      return code ? `cannot read file: ${errnoWords(code)}` : messageOf(err);
  }
}
