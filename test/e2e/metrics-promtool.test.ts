// `/metrics` of a running `edgetune watch --serve` on the camera video in ../shared, checked by
// Debian's `promtool check metrics` (the prometheus package; the test fails, never skips, without it):
// the exposition parses and passes promtool's naming lint before and after a model swap; the latency
// histograms are cumulative and count every processed frame; the model's name and file sha256 are
// labels; the swap is counted. promtool refuses the old summary in milliseconds, so the check can fail.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, shared, sharedDir, tempDir } from '../helpers.js';

const TOKEN = 'metrics-test-token';

/** promtool check metrics on `text` (stdin); exit status and what it printed. */
function promtool(text: string): { status: number; out: string } {
  const v = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) throw new Error('promtool missing: apt-get install prometheus (.ci/run installs it)');
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`.trim() };
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
};

let child: ChildProcess;
let url: string;
let stderr = '';
let exited: Promise<number | null>;

async function metrics(): Promise<string> {
  const r = await fetch(new URL('/metrics', url));
  expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return r.text();
}

/** Poll /metrics until `ok` holds (the video plays in real time; no fixed sleeps). */
async function metricsWhen(ok: (text: string) => boolean, what: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const t = await metrics();
    if (ok(t)) return t;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; stderr:\n${stderr}`);
}

beforeAll(async () => {
  const cli = path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js');
  const video = shared('camera', 'slow_traffic_small.mp4');
  child = spawn(process.execPath, [cli, 'watch', `file://${video}`, '--serve', '127.0.0.1:0', '--quiet', '--threads', '1'], {
    env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models'), EDGETUNE_TOKEN: TOKEN, EDGETUNE_OFFLINE: '1', EDGETUNE_CACHE: tempDir('edgetune-metrics-cache-') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d) => (stderr += d));
  exited = new Promise((r) => child.on('close', (code) => r(code)));
  url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "serving" line: ${stderr}`)), 60_000);
    child.stderr!.on('data', () => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
});

afterAll(async () => {
  child?.kill('SIGTERM');
  await exited;
});

describe('/metrics of watch --serve on the traffic video', () => {
  it('passes promtool check metrics with the model name and sha256 as labels, histograms in seconds per stage, build info', async () => {
    const text = await metricsWhen((t) => /^edgetune_frames_processed_total ([1-9]\d+)$/m.test(t), '10 processed frames');
    expect(promtool(text)).toEqual({ status: 0, out: '' });
    expect(text).toContain(`edgetune_model_info{model="mobilenetv2-int8",version="1",file="mobilenetv2-12-int8.onnx",sha256="${sha256(shared('models', 'mobilenetv2-12-int8.onnx'))}",provider="cpu",source="file://${shared('camera', 'slow_traffic_small.mp4')}"} 1`);
    expect(text).toMatch(/^edgetune_build_info\{version="0\.1\.0",onnxruntime="[\d.]+",node="v\d+\.\d+\.\d+"\} 1$/m);
    expect(text).toMatch(/^# TYPE edgetune_stage_latency_seconds histogram$/m);
    expect(text).not.toContain('_ms');
    const processed = value(text, 'edgetune_frames_processed_total');
    for (const stage of ['queue', 'preprocess', 'inference', 'postprocess', 'total']) {
      // Cumulative buckets ending at +Inf = count = every frame processed (one snapshot: stats and histograms are read together).
      const buckets = [...text.matchAll(new RegExp(`^edgetune_stage_latency_seconds_bucket\\{stage="${stage}",le="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => [m[1]!, Number(m[2])] as const);
      expect(buckets.map(([le]) => le)).toEqual(['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]![1]).toBeGreaterThanOrEqual(buckets[i - 1]![1]);
      expect(buckets.at(-1)![1]).toBe(processed);
      expect(value(text, `edgetune_stage_latency_seconds_count{stage="${stage}"}`)).toBe(processed);
      expect(value(text, `edgetune_stage_latency_seconds_sum{stage="${stage}"}`)).toBeGreaterThan(0);
    }
    // total = arrival → result covers the inference stage of every frame
    expect(value(text, 'edgetune_stage_latency_seconds_sum{stage="total"}')).toBeGreaterThanOrEqual(value(text, 'edgetune_stage_latency_seconds_sum{stage="inference"}'));
  });

  it('after POST /model: the same model name as version 2, the new file and sha256, the swap counted, still promtool-clean', async () => {
    const r = await fetch(new URL('/model', url), { method: 'POST', body: '{"model":"squeezenet1.1"}', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` } });
    expect(r.status, await r.text()).toBe(200);
    // the name stays (a dashboard keyed on it keeps its series); the version and file say what changed
    const text = await metricsWhen((t) => t.includes('version="2"'), 'the swapped model in /metrics');
    expect(text).toContain(`edgetune_model_info{model="mobilenetv2-int8",version="2",file="squeezenet1.1_fp32_from_winml_fp16.onnx",sha256="${sha256(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'))}"`);
    expect(value(text, 'edgetune_model_swaps_total')).toBe(1);
    expect(value(text, 'edgetune_model_rollbacks_total')).toBe(0);
    expect(promtool(text)).toEqual({ status: 0, out: '' });
  });

  it('promtool refuses the old summary in milliseconds (the check can fail)', () => {
    const old = '# HELP edgetune_stage_latency_ms x\n# TYPE edgetune_stage_latency_ms summary\nedgetune_stage_latency_ms{stage="total",quantile="0.5"} 1\nedgetune_stage_latency_ms_sum{stage="total"} 1\nedgetune_stage_latency_ms_count{stage="total"} 1\n';
    const r = promtool(old);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('edgetune_stage_latency_ms metric names should not contain abbreviated units');
  });
});
