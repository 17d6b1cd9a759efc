// A network camera that keeps its socket open but stops sending: an MJPEG server on 127.0.0.1 sends
// frames, then goes silent without closing. The frame watchdog must report the stall, restart ffmpeg
// with the backoff, and frames must flow again from the next connection; a stream whose source never
// delivers ends with a clear error after the bounded retries. Also: credentials in the URI never
// appear in the source's uri, its events or its errors.

import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSource, type Frame, type SourceEvent } from '../../../devices/index.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { geometryOfClassifier, StreamPipeline, type StreamEvent } from '../../../runtime/stream/pipeline.js';
import { startServer } from '../../../runtime/stream/serve.js';
import { maskSecrets, maskUri } from '../../../runtime/core/redact.js';
import { refusedPort, shared } from '../../helpers.js';

process.env.EDGETUNE_MODEL_PATH = shared('models');

/** Four real camera stills, sent in turn. */
const jpegs = [1, 2, 3, 4].map((k) => readFileSync(path.join(shared('camera', 'slow_traffic_frames'), `frame_00${k}.jpg`)));

/** Connections so far, and what the server saw of each (the Authorization it got). */
let connections = 0;
const auth: (string | undefined)[] = [];
const open = new Set<ServerResponse>();
let port = 0;
const server = createServer((req, res) => {
  // Like a camera, it asks for the login first (ffmpeg sends it when challenged).
  if (!req.headers.authorization) {
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="camera"', 'Content-Length': 0 });
    return void res.end();
  }
  const n = ++connections;
  auth.push(req.headers.authorization);
  res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=ffserver', Connection: 'close' });
  open.add(res);
  req.on('close', () => open.delete(res));
  // The first connection sends 40 frames and then nothing, with the socket left open (the fault).
  // Later ones send up to 400 frames (bounded), paced by the client reading them.
  const total = n === 1 ? 40 : 400;
  let i = 0;
  const sendSome = () => {
    while (i < total && !res.destroyed) {
      const jpg = jpegs[i++ % jpegs.length]!;
      const ok = res.write(`--ffserver\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpg.length}\r\n\r\n`) && res.write(jpg) && res.write('\r\n');
      if (!ok) return void res.once('drain', sendSome);
    }
  };
  sendSome();
});

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const res of open) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('frame watchdog', () => {
  it('restarts an MJPEG camera that stops sending but keeps the socket open, and frames flow again', async () => {
    connections = 0;
    const events: SourceEvent[] = [];
    const uri = `http://viewer:s3cret-pw@127.0.0.1:${port}/video.mjpg`;
    const src = await createSource(uri, { reconnect: { stallTimeoutMs: 800, initialMs: 50 }, onEvent: (e) => events.push(e) });
    expect([src.kind, src.live]).toEqual(['http', true]);
    expect(src.uri).toBe(`http://***@127.0.0.1:${port}/video.mjpg`);
    const frames: Frame[] = [];
    // Until frames come from a second connection (the first one sends at most 40).
    for await (const f of src.frames()) {
      frames.push(f);
      if (connections >= 2 && frames.length > 45) break;
    }
    await src.close();
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: frames.length }, (_, i) => i));
    const stall = events.find((e) => e.type === 'stall');
    expect(stall?.message).toBe('http: no frame for 0.8 s while ffmpeg kept running; restarting the source');
    const rec = events.filter((e) => e.type === 'reconnect');
    expect(rec[0]!.message).toBe('http: ffmpeg delivered no frame for 0.8 s (stalled source; stopped it); reconnecting in 50 ms (attempt 1/8)');
    expect(events.some((e) => e.type === 'info' && /reconnected, frames flowing again/.test(e.message))).toBe(true);
    expect(src.reconnects).toBeGreaterThanOrEqual(1);
    // ffmpeg really logged in (basic auth), yet no event says the password.
    expect(auth[0]).toBe(`Basic ${Buffer.from('viewer:s3cret-pw').toString('base64')}`);
    expect(JSON.stringify(events)).not.toContain('s3cret');
  });

  it('gives up on a source that never delivers after the bounded retries, with a clear error', async () => {
    // Nothing listens there: every start fails at once.
    const deadPort = await refusedPort();
    const events: SourceEvent[] = [];
    const src = await createSource(`rtsp://admin:hunter2@127.0.0.1:${deadPort}/stream1`, { reconnect: { retries: 2, initialMs: 10 }, onEvent: (e) => events.push(e) });
    const err = await (async () => {
      try {
        for await (const _ of src.frames()) void _;
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(new RegExp(`^rtsp://\\*\\*\\*@127\\.0\\.0\\.1:${deadPort}/stream1: ffmpeg exited with code \\d+ and 2 reconnect attempts failed: .*\\(retries are bounded: --retries inf waits for the source for ever\\)$`));
    expect(err!.message).not.toContain('hunter2');
    expect(events.filter((e) => e.type === 'reconnect').map((e) => e.message.replace(/\(.*\)/, '(…)'))).toHaveLength(2);
    expect(JSON.stringify(events)).not.toContain('hunter2');
  });
});

describe('a stalled camera behind the stream service', () => {
  it('is reported in /healthz and /metrics, which never show the password', async () => {
    connections = 0;
    const clf = await loadClassifier('squeezenet1.1', { threads: 1 });
    const uri = `http://viewer:s3cret-pw@127.0.0.1:${port}/video.mjpg`;
    const src = await createSource(uri, { ...geometryOfClassifier(clf), reconnect: { stallTimeoutMs: 800, initialMs: 50 } });
    const p = new StreamPipeline(src, clf, { inference: 'main' });
    const sse: string[] = [];
    p.on('event', (e: StreamEvent) => sse.push(JSON.stringify(e)));
    const server = await startServer(p, { port: 0 });
    const run = p.run();
    try {
      // Frames again after the stall (a second connection).
      await new Promise<void>((resolve) => {
        const check = () => {
          if (p.stats().stalls >= 1 && connections >= 2) {
            p.off('result', check);
            resolve();
          }
        };
        p.on('result', check);
      });
      const health = await (await fetch(new URL('/healthz', server.url))).json();
      expect(health).toMatchObject({ status: 'ok', source: `http://***@127.0.0.1:${port}/video.mjpg` });
      expect(health.stalls).toBeGreaterThanOrEqual(1);
      const metrics = await (await fetch(new URL('/metrics', server.url))).text();
      expect(metrics).toMatch(/^edgetune_source_stalls_total [1-9]\d*$/m);
      expect(metrics).toContain(`source="http://***@127.0.0.1:${port}/video.mjpg"`);
      expect(metrics + JSON.stringify(health) + sse.join('\n')).not.toContain('s3cret');
      expect(sse.some((e) => e.includes('"type":"stall"'))).toBe(true);
    } finally {
      await server.close();
      p.stop();
      await run;
      await clf.dispose();
    }
  });
});

describe('maskUri / maskSecrets', () => {
  it('hides user info and secret query values, and leaves everything else alone', () => {
    expect(maskUri('rtsp://user:secret@cam.local:554/Streaming/101')).toBe('rtsp://***@cam.local:554/Streaming/101');
    expect(maskUri('rtsp://user@cam/1')).toBe('rtsp://***@cam/1');
    // A password with '@' and ':' in it.
    expect(maskUri('rtsps://admin:p@ss:w0rd@10.0.0.7/live')).toBe('rtsps://***@10.0.0.7/live');
    expect(maskUri('http://cam/video.cgi?user=admin&pwd=hunter2&resolution=640x480')).toBe('http://cam/video.cgi?user=admin&pwd=***&resolution=640x480');
    expect(maskUri('https://cam/mjpg?Token=abc#x')).toBe('https://cam/mjpg?Token=***#x');
    for (const plain of ['test:smptebars?rate=15', 'file:///data/clip.mp4', 'v4l2:///dev/video0?size=640x480', 'webcam:default', 'dir://frames?fps=2', 'http://[::1]:8080/a']) {
      expect(maskUri(plain)).toBe(plain);
    }
    expect(maskSecrets('[tcp @ 0x55] rtsp://u:p4ss@10.1.1.1/x: Connection refused; see "http://a:b@h/?password=z"')).toBe(
      '[tcp @ 0x55] rtsp://***@10.1.1.1/x: Connection refused; see "http://***@h/?password=***"',
    );
  });
});
