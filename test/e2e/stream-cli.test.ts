// `edgetune watch` and `edgetune capture` through the built CLI: the JSON-lines sink on the traffic
// video and the still sequence, the webcam stub, capture into a dataset folder, the kiosk service
// with SIGTERM closing the ffmpeg child, and clear errors.

import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { jsonLines, repoRoot, runCli, shared, sharedDir, tempDir } from '../helpers.js';

interface Line {
  seq: number;
  ts: number;
  pts?: number;
  top: { index: number; label: string; score: number }[];
  smoothed: { label: string; index: number; score: number };
  ms: number;
}

const VEHICLES = new Set(['minivan', 'limousine', 'race car', 'semi-trailer truck', 'tow truck', 'station wagon', 'recreational vehicle', 'convertible', 'ambulance', 'minibus', 'jeep', 'pickup truck', 'sports car', 'car wheel', 'grille', 'car mirror', 'moving van', 'police car', 'taxicab']);

describe('edgetune watch', () => {
  it('prints one JSON line per frame of the traffic video, in order, mostly vehicles', async () => {
    const r = await runCli(['watch', `file://${shared('camera', 'slow_traffic_small.mp4')}`, '--model', 'mobilenetv2-int8', '--json', '--max-frames', '90', '--as-fast-as-possible', '--threads', '1']);
    expect(r.code).toBe(0);
    const lines = jsonLines<Line>(r.stdout);
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 90 }, (_, i) => i));
    expect(Object.keys(lines[0]!)).toEqual(['seq', 'ts', 'pts', 'top', 'smoothed', 'ms']);
    expect(lines[0]!.top).toHaveLength(5);
    const vehicles = lines.filter((l) => VEHICLES.has(l.top[0]!.label)).length;
    // measured: 90 of 90 frames' top-1 is a vehicle class
    expect(vehicles / lines.length).toBeGreaterThanOrEqual(0.95);
    expect(r.stderr).toMatch(/done: 90 frames with mobilenetv2-int8 on cpu/);
    expect(r.stderr).toMatch(/frames \d+ processed 90 dropped 0 \| ms p50\/p95: queue [\d.]+\/[\d.]+, preprocess/);
  });

  it('plays the still sequence (dir://) and a stub webcam', async () => {
    const r = await runCli(['watch', `dir://${shared('camera', 'slow_traffic_frames')}`, '--json', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines<Line>(r.stdout);
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 61 }, (_, i) => i));
    // measured: 61 of 61 stills (top-1 minivan 28, race car 12, semi-trailer truck 11, limousine 9, tow truck 1)
    expect(lines.filter((l) => VEHICLES.has(l.top[0]!.label)).length).toBeGreaterThanOrEqual(55);

    const bin = tempDir();
    writeFileSync(path.join(bin, 'fswebcam'), `#!/bin/sh\nfor last; do :; done\ncp "${shared('camera', 'winml_dog.jpg')}" "$last"\n`, { mode: 0o755 });
    const w = await runCli(['watch', 'webcam:default', '--json', '--max-frames', '3', '--threads', '1'], { env: { PATH: `${bin}${path.delimiter}${process.env.PATH}` } });
    // (its stderr says what a hung run was doing when it was killed: runCli's hangReport)
    expect(w.code, w.stderr).toBe(0);
    const wl = jsonLines<Line>(w.stdout);
    expect(wl.map((l) => l.top[0]!.label)).toEqual(['Golden Retriever', 'Golden Retriever', 'Golden Retriever']);
    expect(wl[2]!.smoothed).toMatchObject({ label: 'Golden Retriever', index: 207 });
  });

  it('prints label changes in plain mode', async () => {
    const r = await runCli(['watch', 'test:testsrc2?duration=1', '--as-fast-as-possible', '--threshold', '0.3', '--threads', '1', '--inference', 'main']);
    expect(r.code).toBe(0);
    // testsrc2 is a clock-like pattern with a counter; the first line is the first shown label.
    expect(r.stdout).toMatch(/^0\.00s frame 0: \S.*\n/);
    expect(r.stderr).toMatch(/done: 30 frames/);
  });

  it('serves the kiosk on 127.0.0.1 and closes the ffmpeg child on SIGTERM', async () => {
    const cli = path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js');
    const child = spawn(process.execPath, [cli, 'watch', 'test:?rate=10', '--serve', '127.0.0.1:0', '--model-name', 'kiosk-7', '--quiet', '--threads', '1'], {
      env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models'), EDGETUNE_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no "serving" line: ${stderr}`)), 60000);
      child.stderr.on('data', () => {
        const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
    });
    expect(stderr).toContain('POST /model disabled: EDGETUNE_TOKEN not set');
    // Wait until frames flow, then check health and the token rule.
    let health: Response | undefined;
    for (let i = 0; i < 100; i++) {
      health = await fetch(new URL('/healthz', url));
      if (health.status === 200 && (await health.clone().json()).processed > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(health!.status).toBe(200);
    // --model-name: the name the model is served under (not mobilenetv2-int8), version 1 until a swap
    const meta = await (await fetch(new URL('/v2/models/kiosk-7', url))).json();
    expect([meta.name, meta.versions]).toEqual(['kiosk-7', ['1']]);
    expect((await fetch(new URL('/v2/models/mobilenetv2-int8', url))).status).toBe(404);
    const post = await fetch(new URL('/model', url), { method: 'POST', body: '{"model":"mnist"}', headers: { 'content-type': 'application/json' } });
    expect(post.status).toBe(401);
    const kids = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(child.pid)]).toString();
    const ffmpegPid = Number(/(\d+)\s+ffmpeg/.exec(kids)?.[1]);
    expect(ffmpegPid).toBeGreaterThan(0);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/SIGTERM received, stopping/);
    expect(stderr).toMatch(/stopped: \d+ frames with mobilenetv2-int8/);
    expect(() => process.kill(ffmpegPid, 0)).toThrow();
  });

  it('fails clearly on bad sources and options', async () => {
    const bad = await runCli(['watch', 'ftp://camera/stream']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('edgetune watch: Unknown source "ftp://camera/stream": expected a URI starting with v4l2:');
    const missing = await runCli(['watch', 'file:///nonexistent/traffic.mp4']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('edgetune watch: /nonexistent/traffic.mp4: cannot read video file (ENOENT)');
    const opt = await runCli(['watch', 'test:', '--smooth', '1.5']);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toContain('Expected number between 0 and 0.99 for --smooth but received "1.5"');
    const where = await runCli(['watch', 'test:', '--inference', 'gpu']);
    expect(where.code).toBe(2);
    expect(where.stderr).toContain('Expected worker or main for --inference but received "gpu"');
    const name = await runCli(['watch', 'test:', '--serve', '127.0.0.1:0', '--model-name', 'a/b']);
    expect(name.code).toBe(2);
    expect(name.stderr).toContain('Expected model name of letters, digits, "_", "." and "-" (not starting with "." or "-") for --model-name but received "a/b"');
    const unserved = await runCli(['watch', 'test:', '--model-name', 'kiosk']);
    expect(unserved.code).toBe(2);
    expect(unserved.stderr).toContain('--model-name needs --serve <host:port> (it names the model the server serves)');
    const help = await runCli(['watch', '--help']);
    expect(help.stdout).toContain('csi://0[?width=1920&height=1080&fps=30&flip=0]');
  });
});

describe('edgetune capture', () => {
  it('saves frames into <out>/<class>/ as uniquely named JPEGs, spaced by media time', async () => {
    const out = tempDir();
    const args = ['capture', 'test:testsrc2?rate=30&duration=2', '--class', 'bee', '--out', out, '--count', '4', '--every', '250ms', '--as-fast-as-possible', '--size', '320x240', '--json'];
    const r = await runCli(args);
    expect(r.code).toBe(0);
    const lines = jsonLines<{ file: string; seq: number }>(r.stdout);
    // Every 250 ms of media time at 30 fps: the first frames at or after 0, 250, 500 and 750 ms.
    expect(lines.map((l) => l.seq)).toEqual([0, 8, 15, 23]);
    const files = readdirSync(path.join(out, 'bee')).sort();
    expect(files).toHaveLength(4);
    expect(files.every((f) => /^bee-\d{8}T\d{6}-000[1-4]\.jpg$/.test(f))).toBe(true);
    const meta = await sharp(path.join(out, 'bee', files[0]!)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 320, 240]);
    expect(r.stderr).toContain(`4 frames saved in ${path.join(out, 'bee')}`);
    // A second run adds files without overwriting.
    const again = await runCli(args);
    expect(again.code).toBe(0);
    expect(readdirSync(path.join(out, 'bee')).filter((f) => f.endsWith('.jpg'))).toHaveLength(8);
    expect(readdirSync(path.join(out, 'bee')).some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('reports a source that ends early and bad options', async () => {
    const out = tempDir();
    const r = await runCli(['capture', `dir://${shared('camera', 'slow_traffic_frames')}`, '--class', 'car', '--out', out, '--count', '100', '--every', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('61 frames saved');
    expect(r.stderr).toContain('(the source ended before 100)');
    const cls = await runCli(['capture', 'test:', '--class', '../x', '--out', out]);
    expect(cls.code).toBe(2);
    expect(cls.stderr).toContain('Expected a class name (not empty, not "." or ".."; no line break or other control character, no "/", no leading or trailing space) that names a folder (no "\\") for --class but received "../x"');
    const every = await runCli(['capture', 'test:', '--class', 'x', '--out', out, '--every', 'soon']);
    expect(every.stderr).toContain('Expected a duration such as 500ms or 2s for --every but received "soon"');
  });
});
