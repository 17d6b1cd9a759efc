// Frame sources on real material: the traffic video through ffmpeg (frame count, order, and pixels
// matching runtime/image/decode.ts's decode of the extracted stills), the still sequence through dir://,
// ffmpeg's synthetic test: source, the webcam: source with a stub fswebcam, reconnect after the ffmpeg
// child is killed, the Jetson CSI pipeline string, and the errors for missing programs.

import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  coverRegion,
  createSource,
  csiPipeline,
  ffmpegArgs,
  gstLaunchArgs,
  networkInput,
  v4l2Input,
  parseCsiUri,
  scaleFilter,
  type Frame,
  type SourceEvent,
} from '../../../devices/index.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { DEFAULT_SPEC } from '../../../runtime/image/preprocess.js';
import { shared, tempDir } from '../../helpers.js';

const video = () => shared('camera', 'slow_traffic_small.mp4');
const stills = () => shared('camera', 'slow_traffic_frames');

/** Mean absolute difference of two equally sized pixel buffers (0..255). */
function mad(a: Uint8Array | Uint8ClampedArray, b: Uint8Array | Uint8ClampedArray): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

async function collect(it: AsyncIterable<Frame>, max = Infinity, each?: (f: Frame) => void): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of it) {
    out.push(f);
    each?.(f);
    if (out.length >= max) break;
  }
  return out;
}

describe('file:// (ffmpeg)', () => {
  it('delivers all 914 frames of the traffic video in order, at the model size, with media time', async () => {
    const events: SourceEvent[] = [];
    const src = await createSource(`file://${video()}`, { realtime: false, onEvent: (e) => events.push(e) });
    expect(src.live).toBe(false);
    const frames = await collect(src.frames());
    expect(frames.length).toBe(914);
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 914 }, (_, i) => i));
    for (const f of [frames[0]!, frames[913]!]) {
      expect([f.width, f.height, f.channels, f.data.length]).toEqual([224, 224, 3, 224 * 224 * 3]);
    }
    // 29.97 fps: frame 913 is at 913 / (30000/1001) s.
    expect(frames[913]!.pts).toBeCloseTo((913 * 1001) / 30, 0);
    expect(events.map((e) => e.type)).toEqual(['start', 'end']);

    // The stills were extracted at 2 fps at t = (k - 0.5)/2 s. Each decoded like `classify` does
    // (sharp, cover + centre crop) must match the video frame at that time far better than a frame
    // half a second away: this checks both the order and the scaling semantics.
    for (const k of [1, 10, 33, 61]) {
      const still = await decodeImage(path.join(stills(), `frame_${String(k).padStart(3, '0')}.jpg`), DEFAULT_SPEC);
      const at = Math.round(((k - 0.5) / 2) * (30000 / 1001));
      const d = frames.map((f) => mad(still.data, f.data));
      const best = d.indexOf(Math.min(...d));
      expect(Math.abs(best - at)).toBeLessThanOrEqual(1);
      expect(d[best]).toBeLessThan(4);
      expect(d[Math.min(913, at + 15)]! > 2 * d[best]! || d[Math.max(0, at - 15)]! > 2 * d[best]!).toBe(true);
    }
  });

  it('scales with the decoder semantics for other fits and sizes (fill, crop < 1, gray)', async () => {
    const spec = { ...DEFAULT_SPEC, width: 128, height: 96, resize: 'cover' as const, crop: 0.875 };
    const still = await decodeImage(path.join(stills(), 'frame_001.jpg'), spec);
    const src = await createSource(`file://${video()}`, { realtime: false, width: 128, height: 96, crop: 0.875 });
    const [f] = await collect(src.frames(), 8).then((fs) => [fs[7]!]); // frame 7 ≈ t = 0.25 s
    await src.close();
    expect([f!.width, f!.height]).toEqual([128, 96]);
    expect(mad(still.data, f!.data)).toBeLessThan(5);

    const gray = await createSource(`file://${video()}`, { realtime: false, width: 32, height: 32, channels: 1, resize: 'fill' });
    const [g] = await collect(gray.frames(), 1);
    await gray.close();
    expect([g!.channels, g!.data.length]).toEqual([1, 32 * 32]);
  });

  it('builds the documented ffmpeg filter for each fit', () => {
    const g = { width: 224, height: 224, channels: 3 as const, crop: 1 };
    // Source size unknown (cameras, streams): ffmpeg's aspect rule, crop centred with fitGeometry's ceil.
    expect(scaleFilter({ ...g, resize: 'cover' })).toBe(
      'scale=224:224:force_original_aspect_ratio=increase:flags=bicubic,crop=224:224:ceil((in_w-out_w)/2):ceil((in_h-out_h)/2):exact=1',
    );
    expect(scaleFilter({ ...g, resize: 'cover', crop: 0.875 })).toBe(
      'scale=256:256:force_original_aspect_ratio=increase:flags=bicubic,crop=224:224:ceil((in_w-out_w)/2):ceil((in_h-out_h)/2):exact=1',
    );
    // Source size known (files): fitGeometry's numbers (1280×720 → 455×256, window at ceil(231/2) = 116, 16).
    expect(scaleFilter({ ...g, resize: 'cover', crop: 0.875 }, { width: 1280, height: 720 })).toBe('scale=455:256:flags=bicubic,crop=224:224:116:16:exact=1');
    expect(scaleFilter({ ...g, resize: 'contain' }, { width: 1280, height: 720 })).toBe('scale=224:126:flags=bicubic,pad=224:224:0:49:color=black');
    expect(scaleFilter({ ...g, resize: 'fill' })).toBe('scale=224:224:flags=bicubic');
    expect(scaleFilter({ ...g, resize: 'contain' })).toContain('pad=224:224');
    const args = ffmpegArgs({ input: ['-i', 'x.mp4'], geometry: { ...g, resize: 'cover' }, realtime: true, seekSeconds: 2 });
    expect(args.slice(0, 8)).toEqual(['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-ss', '2.0000', '-i']);
    expect(args.slice(-5)).toEqual(['-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1']);
  });

  it('restarts a killed ffmpeg with backoff and resumes at the next frame', async () => {
    const events: SourceEvent[] = [];
    const src = await createSource(`file://${video()}`, { realtime: false, onEvent: (e) => events.push(e), reconnect: { initialMs: 50 } });
    let killed = false;
    const frames = await collect(src.frames(), 400, (f) => {
      if (f.seq === 120 && !killed) {
        killed = true;
        process.kill(src.pid!, 'SIGKILL');
      }
    });
    await src.close();
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    const rec = events.filter((e) => e.type === 'reconnect');
    expect(rec.length).toBe(1);
    expect(rec[0]!.message).toMatch(/ffmpeg was killed by SIGKILL; reconnecting in 50 ms \(attempt 1\/8\)/);
    expect(events.some((e) => e.type === 'info' && /reconnected/.test(e.message))).toBe(true);
    expect(src.reconnects).toBe(1);
    // Frames after the restart are the right frames: compare with a clean read.
    const clean = await createSource(`file://${video()}`, { realtime: false });
    const ref = await collect(clean.frames(), 400);
    await clean.close();
    for (const seq of [121, 300, 399]) expect(mad(frames[seq]!.data, ref[seq]!.data)).toBeLessThan(0.5);
  });

  it('a variable-frame-rate video (as phones record): each frame carries its own media time, and a restart resumes at the right frame', async () => {
    // made here from the traffic video: frames 0–29 every 100 ms, then 30–59 at 30000/1001 fps (3.0 s + 1 s)
    const vfr = path.join(tempDir(), 'phone.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', video(), '-vf', "setpts='if(lt(N,30),N*0.1,3+(N-30)*1001/30000)/TB'", '-fps_mode', 'vfr', '-frames:v', '60', '-c:v', 'libx264', '-an', vfr]);
    const events: SourceEvent[] = [];
    const src = await createSource(`file://${vfr}`, { realtime: false, onEvent: (e) => events.push(e), reconnect: { initialMs: 50 } });
    let killed = false;
    const frames = await collect(src.frames(), Infinity, (f) => {
      if (f.seq === 40 && !killed) {
        killed = true;
        process.kill(src.pid!, 'SIGKILL');
      }
    });
    await src.close();
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    // before: seq × 1000 / avg_frame_rate (14.5 fps): frame 30 at 2068.9 ms, not 3003 (mp4's timebase rounds to 0.1 ms)
    expect(frames[29]!.pts).toBeCloseTo(2900, -1);
    expect(frames[30]!.pts).toBeCloseTo(3000, -1);
    expect(frames[59]!.pts).toBeCloseTo(3000 + (29 * 1001) / 30, -1);
    expect(events.filter((e) => e.type === 'reconnect').length).toBe(1);
    // frames after the restart are the right frames (before: the seek went to 39.5 / 14.5 s, frame 27's time)
    const clean = await createSource(`file://${vfr}`, { realtime: false });
    const ref = await collect(clean.frames());
    await clean.close();
    for (const seq of [41, 50, 59]) expect(mad(frames[seq]!.data, ref[seq]!.data)).toBeLessThan(0.5);
  });

  it('a plain path is taken literally: "%" and "?" in a file or folder name (was "URI malformed", or cut at the "?")', async () => {
    const d = tempDir();
    const clip = path.join(d, 'Clip 100%?.mp4');
    symlinkSync(video(), clip);
    const frames = await collect((await createSource(clip, { realtime: false })).frames(), 3);
    expect(frames.map((f) => f.seq)).toEqual([0, 1, 2]);
    const seq = path.join(d, 'frames 50%');
    mkdirSync(seq);
    symlinkSync(path.join(stills(), 'frame_001.jpg'), path.join(seq, 'a.jpg'));
    const src = await createSource(seq, { realtime: false });
    expect(src.kind).toBe('dir');
    expect((await collect(src.frames())).length).toBe(1);
    // in a URI the escapes are the user's: a bare "%" is named as malformed, not a URIError
    await expect(createSource(`file://${clip}`)).rejects.toThrow(`file://${clip}: malformed %-escape in the path (in a file:// or dir:// URI a "%" is written %25; a plain path needs no escapes)`);
    // ffmpeg's image2 pattern is not a file: the folder is named
    await expect(createSource(path.join(d, 'frame_%04d.png'))).rejects.toThrow(`${path.join(d, 'frame_%04d.png')}: cannot read video file (ENOENT); an image sequence is read as its folder: dir://${d}`);
  });

  it('reports a missing or non-video file clearly', async () => {
    await expect(createSource('file:///nonexistent/clip.mp4')).rejects.toThrow('/nonexistent/clip.mp4: cannot read video file (ENOENT)');
    const dir = tempDir();
    const bad = path.join(dir, 'notes.mp4');
    writeFileSync(bad, 'not a video at all');
    await expect(createSource(`file://${bad}`)).rejects.toThrow(/notes\.mp4: not a readable video/);
  });
});

describe('v4l2://, rtsp://, http://', () => {
  it('builds the ffmpeg inputs for cameras', () => {
    expect(v4l2Input('v4l2:///dev/video2?size=1280x720&fps=30&format=mjpeg')).toEqual([
      '-f', 'v4l2', '-framerate', '30', '-video_size', '1280x720', '-input_format', 'mjpeg', '-i', '/dev/video2',
    ]);
    expect(v4l2Input('v4l2://')).toEqual(['-f', 'v4l2', '-i', '/dev/video0']);
    expect(networkInput('rtsp://cam.local:554/stream1')).toEqual(['-rtsp_transport', 'tcp', '-i', 'rtsp://cam.local:554/stream1']);
    expect(networkInput('http://cam.local/video.mjpg')).toEqual(['-i', 'http://cam.local/video.mjpg']);
  });

  it('retries a camera that is not there with backoff, then gives up with ffmpeg\'s reason', async () => {
    const events: SourceEvent[] = [];
    const src = await createSource('v4l2:///dev/video-missing', { reconnect: { retries: 2, initialMs: 20 }, onEvent: (e) => events.push(e) });
    await expect(collect(src.frames())).rejects.toThrow(
      /^v4l2:\/\/\/dev\/video-missing: ffmpeg exited with code \d+ and 2 reconnect attempts failed: .*\/dev\/video-missing/,
    );
    expect(events.filter((e) => e.type === 'reconnect').map((e) => [e.attempt, e.delayMs])).toEqual([
      [1, 20],
      [2, 40],
    ]);
  });

  it('reads an http:// stream (served here on 127.0.0.1) as a live source', async () => {
    const file = video();
    const size = statSync(file).size;
    // MP4 demuxing seeks, so the server answers byte ranges like any web server.
    const server = createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const end = m && m[2] ? Number(m[2]) : size - 1;
      const headers = { 'Content-Type': 'video/mp4', 'Accept-Ranges': 'bytes', 'Content-Length': end - start + 1 };
      if (m) res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}` });
      else res.writeHead(200, headers);
      createReadStream(file, { start, end }).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/traffic.mp4`;
      const src = await createSource(url);
      expect([src.kind, src.live]).toEqual(['http', true]);
      const frames = await collect(src.frames(), 20);
      await src.close();
      expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      const clean = await createSource(`file://${file}`, { realtime: false });
      const ref = await collect(clean.frames(), 20);
      await clean.close();
      expect(mad(frames[19]!.data, ref[19]!.data)).toBeLessThan(0.5);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('dir:// and test:', () => {
  it('plays the still sequence in numeric order and skips a corrupt image', async () => {
    const dir = tempDir();
    // Links, not copies, of the shared stills (frame_9 sorts before frame_10 numerically).
    for (const k of [1, 2, 3]) symlinkSync(path.join(stills(), `frame_00${k}.jpg`), path.join(dir, `f_${k * 5}.jpg`));
    writeFileSync(path.join(dir, 'f_12.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 1, 2, 3]));
    writeFileSync(path.join(dir, 'readme.txt'), 'ignored');
    const events: SourceEvent[] = [];
    const src = await createSource(`dir://${dir}?fps=4`, { realtime: false, onEvent: (e) => events.push(e) });
    const frames = await collect(src.frames());
    expect(frames.map((f) => [f.seq, f.pts])).toEqual([
      [0, 0],
      [1, 250],
      [2, 500],
    ]);
    const skips = events.filter((e) => e.type === 'skip');
    expect(skips.length).toBe(1);
    expect(skips[0]!.message).toMatch(/f_12\.jpg: corrupt or truncated image.*skipped/);
    // f_5 (frame_001), f_10 (frame_002), f_15 (frame_003), in that order.
    const expected = await decodeImage(path.join(stills(), 'frame_002.jpg'), DEFAULT_SPEC);
    expect(mad(frames[1]!.data, expected.data)).toBe(0);
  });

  it('a frame in a format this build does not decode (a phone\'s .HEIC) is reported, not passed over unseen; a folder of only such frames says so', async () => {
    const dir = tempDir();
    symlinkSync(path.join(stills(), 'frame_001.jpg'), path.join(dir, 'f_1.jpg'));
    writeFileSync(path.join(dir, 'f_2.HEIC'), 'a phone frame');
    writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
    const events: SourceEvent[] = [];
    const frames = await collect((await createSource(`dir://${dir}`, { realtime: false, onEvent: (e) => events.push(e) })).frames());
    expect(frames.length).toBe(1);
    // before: no skip event at all
    expect(events.filter((e) => e.type === 'skip').map((e) => e.message.replace(/; images are [^)]*\)/, '; …)'))).toEqual([`dir: ${path.join(dir, 'f_2.HEIC')}: unsupported image format (.HEIC; …); skipped`]);
    const only = tempDir();
    writeFileSync(path.join(only, 'IMG_0001.HEIC'), 'a phone frame');
    await expect(createSource(`dir://${only}`)).rejects.toThrow(/no images \(dir:\/\/ reads .*\); 1 file passed over, the first: IMG_0001\.HEIC: unsupported image format \(\.HEIC; images are /);
  });

  it('reads all 61 shared stills; with an fps it is paced like a camera', async () => {
    const src = await createSource(`dir://${stills()}`);
    expect(src.live).toBe(false);
    const frames = await collect(src.frames());
    expect(frames.length).toBe(61);
    const paced = await createSource(`dir://${stills()}?fps=20`);
    expect(paced.live).toBe(true);
    const t0 = performance.now();
    const six = await collect(paced.frames(), 6);
    await paced.close();
    expect(six.map((f) => f.pts)).toEqual([0, 50, 100, 150, 200, 250]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240); // 5 periods of 50 ms at least
    await expect(createSource(`dir://${tempDir()}`)).rejects.toThrow(/no images/);
  });

  it('test: generates a finite synthetic pattern that changes over time', async () => {
    const src = await createSource('test:testsrc2?size=320x240&rate=25&duration=1', { realtime: false, width: 64, height: 48 });
    const frames = await collect(src.frames());
    expect(frames.length).toBe(25);
    expect([frames[0]!.width, frames[0]!.height]).toEqual([64, 48]);
    expect(mad(frames[0]!.data, frames[24]!.data)).toBeGreaterThan(1);
    expect(frames[24]!.pts).toBe(960);
    await expect(createSource('test:no-such-pattern!')).rejects.toThrow('Expected a lavfi source name');
  });
});

describe('webcam: (fswebcam snapshots)', () => {
  it('runs fswebcam (a stub first on PATH) with an argument list, one snapshot per frame', async () => {
    const bin = tempDir();
    // The stub behaves like fswebcam: the output file is the last argument.
    const stub = path.join(bin, 'fswebcam');
    writeFileSync(stub, `#!/bin/sh\nfor last; do :; done\necho "$@" >> "${path.join(bin, 'calls.log')}"\ncp "${shared('camera', 'winml_dog.jpg')}" "$last"\n`, { mode: 0o755 });
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${oldPath}`;
    try {
      const src = await createSource('webcam:/dev/video7?size=640x480');
      const frames = await collect(src.frames(), 3);
      await src.close();
      expect(frames.map((f) => f.seq)).toEqual([0, 1, 2]);
      const expected = await decodeImage(shared('camera', 'winml_dog.jpg'), DEFAULT_SPEC);
      expect(mad(frames[2]!.data, expected.data)).toBe(0);
      const calls = readFileSync(path.join(bin, 'calls.log'), 'utf8').trim().split('\n');
      expect(calls.length).toBe(3);
      expect(calls[0]).toMatch(/^-q -r 640x480 --jpeg 90 -d \/dev\/video7 --no-banner \S+shot\.jpg$/);
    } finally {
      process.env.PATH = oldPath;
    }
  });
  it('passes the device name as one argument, never through a shell', async () => {
    const bin = tempDir();
    const marker = path.join(bin, 'INJECTED');
    writeFileSync(path.join(bin, 'fswebcam'), `#!/bin/sh\nfor last; do :; done\nprintf '%s\\n' "$@" > "${path.join(bin, 'args.log')}"\ncp "${shared('camera', 'winml_dog.jpg')}" "$last"\n`, { mode: 0o755 });
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${oldPath}`;
    try {
      const device = `/dev/video0;touch ${marker}`;
      const src = await createSource(`webcam:${encodeURIComponent(device)}`);
      await collect(src.frames(), 1);
      await src.close();
      const args = readFileSync(path.join(bin, 'args.log'), 'utf8').split('\n');
      expect(args[args.indexOf('-d') + 1]).toBe(device);
      expect(existsSync(marker)).toBe(false);
    } finally {
      process.env.PATH = oldPath;
    }
  });

  it('retries a failing snapshot tool with backoff, counts the retries, and gives up with a clear error', async () => {
    const bin = tempDir();
    const count = path.join(bin, 'count');
    // Fails on calls 1–2 and 5–7, succeeds on 3–4.
    writeFileSync(
      path.join(bin, 'fswebcam'),
      `#!/bin/sh\nn=$(cat "${count}" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${count}"\nfor last; do :; done\ncase $n in 3|4) cp "${shared('camera', 'winml_dog.jpg')}" "$last";; *) echo "no camera at call $n" >&2; exit 1;; esac\n`,
      { mode: 0o755 },
    );
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${oldPath}`;
    try {
      const events: SourceEvent[] = [];
      const src = await createSource('webcam:default', { reconnect: { retries: 2, initialMs: 5 }, onEvent: (e) => events.push(e) });
      const frames: Frame[] = [];
      const err = await (async () => {
        try {
          for await (const f of src.frames()) frames.push(f);
        } catch (e) {
          return e as Error;
        }
      })();
      await src.close();
      expect(frames.map((f) => f.seq)).toEqual([0, 1]);
      expect(src.reconnects).toBe(4);
      expect(events.filter((e) => e.type === 'reconnect').map((e) => [e.attempt, e.delayMs])).toEqual([[1, 5], [2, 10], [1, 5], [2, 10]]);
      expect(events.some((e) => e.type === 'info' && e.message === 'webcam: snapshots working again')).toBe(true);
      expect(err?.message).toMatch(/^webcam:default: snapshot failed 3 times: /);
    } finally {
      process.env.PATH = oldPath;
    }
  });
});

describe('missing programs and bad URIs', () => {
  it('names the package to install', async () => {
    const empty = tempDir();
    const oldPath = process.env.PATH;
    process.env.PATH = empty;
    try {
      await expect(createSource('test:')).rejects.toThrow(
        'test: needs ffmpeg, which was not found on PATH: install the Debian/Ubuntu package "ffmpeg" (sudo apt-get install ffmpeg; macOS: brew install ffmpeg)',
      );
      await expect(createSource('csi://0')).rejects.toThrow(/csi:\/\/0 needs gst-launch-1\.0, which was not found on PATH: install the Debian\/Ubuntu packages "gstreamer1\.0-tools/);
      await expect(createSource('webcam:default')).rejects.toThrow(/needs fswebcam.*"fswebcam"/);
    } finally {
      process.env.PATH = oldPath;
    }
    await expect(createSource('ftp://host/x')).rejects.toThrow('Unknown source "ftp://host/x": expected a URI starting with v4l2:');
    await expect(createSource('v4l2:///dev/video0?size=big')).rejects.toThrow('Expected WIDTHxHEIGHT, e.g. 640x480 for v4l2 size but received "big"');
  });
});

describe('csi:// (GStreamer on Jetson)', () => {
  it('builds the nvarguscamerasrc pipeline with the cover crop done by nvvidconv', () => {
    const c = parseCsiUri('csi://1?width=1280&height=720&fps=60&flip=2');
    expect(c).toEqual({ sensorId: 1, captureWidth: 1280, captureHeight: 720, fps: 60, flip: 2 });
    const g = { width: 224, height: 224, channels: 3 as const, resize: 'cover' as const, crop: 1 };
    // 16:9 → square: the centre 720×720 of the 1280×720 sensor image.
    expect(coverRegion(1280, 720, g)).toEqual({ left: 280, top: 0, right: 1000, bottom: 720 });
    const p = csiPipeline(c, g);
    expect(p).toBe(
      'nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=60/1,format=NV12 ! ' +
        'nvvidconv flip-method=2 left=280 right=1000 top=0 bottom=720 ! video/x-raw,width=224,height=224,format=RGBA ! videoconvert ! ' +
        'video/x-raw,format=RGB,width=224,height=224 ! fdsink fd=1 sync=false',
    );
    expect(gstLaunchArgs(p).slice(0, 4)).toEqual(['-q', '-e', 'nvarguscamerasrc', 'sensor-id=1']);
    // Crop 0.875 keeps 630×630 where fitGeometry's window lies (resized 455×256, window at x = 116 →
    // 326.25 sensor pixels, rounded); grayscale models get GRAY8.
    expect(coverRegion(1280, 720, { ...g, crop: 0.875 })).toEqual({ left: 326, top: 45, right: 956, bottom: 675 });
    expect(csiPipeline(parseCsiUri('csi://0'), { ...g, channels: 1, resize: 'fill' })).toBe(
      'nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1,format=NV12 ! ' +
        'nvvidconv flip-method=0 ! video/x-raw,width=224,height=224,format=RGBA ! videoconvert ! ' +
        'video/x-raw,format=GRAY8,width=224,height=224 ! fdsink fd=1 sync=false',
    );
    expect(csiPipeline(parseCsiUri('csi://0'), { ...g, resize: 'contain' })).toContain('videobox left=-0 right=-0 top=-49 bottom=-49 fill=black');
    expect(() => parseCsiUri('csi://x')).toThrow('Expected non-negative integer, e.g. csi://0 for csi sensor id but received "x"');
    expect(() => parseCsiUri('csi://0?flip=9')).toThrow('Expected integer 0..7 for csi flip but received "9"');
  });
});
