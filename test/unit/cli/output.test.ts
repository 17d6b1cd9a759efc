// What the CLI prints around its results: a closed stdout (`… | head`) ends a command quietly, the
// classify summary names the provider that served (read before the session is closed), and
// `devices` keeps native libraries' own stderr lines (Vulkan loader, XDG_RUNTIME_DIR) off the
// terminal and gives whole reasons, never cut mid-word.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runCli, shared, sharedDir } from '../../helpers.js';

/** Run the built CLI with its stdout closed before it writes anything (the reader went away). */
function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js'), ...args], {
    env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('a closed stdout', () => {
  it('ends `models list --json` and `classify --json` quietly, without an EPIPE stack trace', async () => {
    const list = await runWithClosedStdout(['models', 'list', '--json']);
    expect(list).toEqual({ code: 0, stderr: '' });
    const cls = await runWithClosedStdout(['classify', shared('camera', 'slow_traffic_frames'), '--json', '--threads', '1']);
    expect(cls).toEqual({ code: 0, stderr: '' });
  });
});

describe('classify summary', () => {
  it('names the provider that served, not "unopened"', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), shared('camera', 'winml_cat.jpg'), '--ep', 'cpu', '--threads', '1']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('edgetune: 2/2 classified with mobilenetv2-int8 on cpu\n');
  });
});

describe('devices', () => {
  it('prints only its table: no native stderr lines, and whole reasons', async () => {
    const r = await runCli(['devices'], { env: { EDGETUNE_DEBUG: '' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const rows = r.stdout.split('\n').filter((l) => /^(tensorrt|cuda|webgpu|cpu|wasm)\s/.test(l));
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(['tensorrt', 'cuda', 'webgpu', 'cpu', 'wasm']);
    const webgpu = rows.find((l) => l.startsWith('webgpu'))!;
    // Either it works, or the reason is a whole sentence (on machines without a GPU, Dawn's own words).
    expect(webgpu).toMatch(/\byes\s+\d+ ms to open$|\bno\s+.*[\w.)]$/);
    if (/no WebGPU adapter/.test(webgpu)) expect(webgpu).toMatch(/no WebGPU adapter on this machine \((No supported adapters|[^)]*\w)\)$/);
    expect(webgpu).not.toMatch(/…/);
    const debug = await runCli(['devices', '--json'], { env: { EDGETUNE_DEBUG: '1' } });
    expect(debug.code).toBe(0);
    // With EDGETUNE_DEBUG the native lines are shown, marked as such.
    for (const l of debug.stderr.split('\n').filter(Boolean)) expect(l).toMatch(/^edgetune devices: native: /);
  });
});
