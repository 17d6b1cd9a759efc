// scripts/gpu-check.sh, the GPU path's check, runs here so it cannot fall behind the CLI again (it called
// dist/runtime/cli.js for months after the restructuring removed it). Without a GPU: the script says so
// and exits 0, and `--cpu` runs every step (probe, classify, bench, quantize, finetune --unfreeze) on the
// CPU provider, each checked to be served by the provider it asked for. On a machine with an NVIDIA GPU
// the plain run is the real check: every step must pass on TensorRT+CUDA.

import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, sharedDir } from '../helpers.js';

const script = path.join(repoRoot, 'scripts', 'gpu-check.sh');
const env = { ...process.env, EDGETUNE_SHARED: sharedDir };
const hasGpu = (() => {
  try {
    return execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).includes('GPU');
  } catch {
    return false;
  }
})();

describe('scripts/gpu-check.sh', () => {
  it(hasGpu ? 'passes every step on the GPU' : 'says there is no GPU and exits 0', () => {
    const r = spawnSync('bash', [script], { env, encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    if (hasGpu) expect(r.stdout).toContain('== gpu-check (gpu): 0 step(s) failed');
    else expect(r.stdout).toContain('gpu-check: no NVIDIA GPU on this machine');
  });

  it('runs every step on the CPU provider with --cpu', () => {
    const r = spawnSync('bash', [script, '--cpu'], { env, encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const ok = r.stdout.split('\n').filter((l) => l.startsWith('ok: '));
    expect(ok).toEqual([
      'ok: devices (provider probe)',
      'ok: classify on cpu',
      'ok: bench on cpu',
      'ok: quantize smoke (int8 model served on cpu)',
      'ok: finetune --unfreeze on cpu',
    ]);
    expect(r.stdout).toContain('"provider":"cpu"');
    expect(r.stdout).toContain('== gpu-check (cpu): 0 step(s) failed');
  });
});
