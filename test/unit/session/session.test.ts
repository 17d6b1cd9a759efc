// Execution providers: ordered fallback with one warning per skipped provider, one error listing every
// cause when none works, the serving provider reported, probing, dispose (the leak test is in test/leak/).

import { describe, expect, it } from 'vitest';
import { createSession, parseProviders } from '../../../runtime/session/session.js';
import { probeProviders, tinyModel } from '../../../runtime/session/probe.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { detectFacts, detectProfile, getProfile, matches } from '../../../devices/profiles.js';
import { shared, tempDir } from '../../helpers.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// This machine (and CI) has no CUDA/TensorRT libraries and no GPU: those providers must fall back.
describe('provider fallback', () => {
  it('skips unavailable providers with one warning each and reports the one serving', async () => {
    const warnings: string[] = [];
    const s = await createSession(shared('models', 'mnist_winml.onnx'), { providers: ['tensorrt', 'cuda', 'cpu'], onWarning: (w) => warnings.push(w) });
    expect(s.provider).toBe('cpu');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^execution provider tensorrt: .*Failed to load shared library.*; falling back to cpu$/);
    expect(warnings[1]).toMatch(/^execution provider cuda: .*Failed to load shared library.*; falling back to cpu$/);
    await s.dispose();
  });

  it('one error lists every provider and its cause when none works', async () => {
    const err = (await createSession(shared('models', 'mnist_winml.onnx'), { providers: ['tensorrt', 'cuda'] }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^No execution provider could serve .*mnist_winml\.onnx:\n  - tensorrt: .+\n  - cuda: .+$/);
  });

  it('falls back to wasm when the native providers fail', async () => {
    const warnings: string[] = [];
    const s = await createSession(tinyModel(), { providers: ['cuda', 'wasm'], onWarning: (w) => warnings.push(w) });
    expect(s.provider).toBe('wasm');
    expect(warnings).toHaveLength(1);
    const r = await s.run({ X: { type: 'float32', data: new Float32Array([-2, -1, 3, 4]), dims: [1, 4] } });
    expect(Array.from(r.Y!.data as Float32Array)).toEqual([0, 0, 3, 4]);
    await s.dispose();
  });

  it('rejects unknown provider names', () => {
    expect(() => parseProviders('cpu,npu')).toThrow('Unknown execution provider "npu": expected one of tensorrt, cuda, webgpu, coreml, dml, cpu, wasm');
  });

  it('probing finds cpu and wasm working here', async () => {
    const r = await probeProviders(['cpu', 'wasm', 'cuda']);
    expect(r.find((p) => p.name === 'cpu')!.ok).toBe(true);
    expect(r.find((p) => p.name === 'wasm')!.ok).toBe(true);
    expect(r.find((p) => p.name === 'cuda')!.ok).toBe(false);
  });
});

describe('device profiles', () => {
  it('detects a Jetson Orin from /etc/nv_tegra_release and the device-tree model', () => {
    const root = tempDir();
    mkdirSync(path.join(root, 'etc'));
    mkdirSync(path.join(root, 'proc/device-tree'), { recursive: true });
    writeFileSync(path.join(root, 'etc/nv_tegra_release'), '# R36 (release), REVISION: 3.0, GCID: 1, BOARD: generic, EABI: aarch64\n');
    writeFileSync(path.join(root, 'proc/device-tree/model'), 'NVIDIA Jetson AGX Orin Developer Kit\0');
    const facts = detectFacts(root);
    expect(facts).toMatchObject({ tegra: true, model: 'NVIDIA Jetson AGX Orin Developer Kit' });
    expect(detectProfile(facts, {}).id).toBe('jetson-orin');
    expect(detectProfile({ ...facts, model: 'NVIDIA Jetson Nano Developer Kit' }, {}).id).toBe('jetson-nano');
  });

  it('x86 with an NVIDIA driver gets TensorRT/CUDA first; a bare machine gets cpu then wasm', () => {
    expect(detectProfile({ platform: 'linux', arch: 'x64', tegra: false, nvidiaGpu: true }, {}).id).toBe('x86-nvidia');
    const bare = detectProfile({ platform: 'linux', arch: 'x64', tegra: false, nvidiaGpu: false }, {});
    expect(bare.id).toBe('generic-cpu');
    expect(bare.providers).toEqual(['cpu', 'wasm']);
    expect(matches(getProfile('jetson-orin'), { platform: 'linux', arch: 'arm64', tegra: false, nvidiaGpu: false })).toBe(false);
    expect(() => getProfile('raspberry')).toThrow('Unknown device profile "raspberry"');
  });

  it('the x86-nvidia profile serves on cpu here with a warning per GPU provider', async () => {
    const warnings: string[] = [];
    const c = await loadClassifier('mobilenetv2-int8', { providers: getProfile('x86-nvidia').providers, onWarning: (w) => warnings.push(w) });
    expect(c.provider).toBe('cpu');
    expect(warnings.map((w) => w.split(':')[0])).toEqual(['execution provider tensorrt', 'execution provider cuda', 'execution provider webgpu']);
    await c.dispose();
  });
});

describe('dispose', () => {
  it('a disposed session refuses to run', async () => {
    const s = await createSession(tinyModel(), { providers: ['cpu'] });
    await s.dispose();
    await expect(s.run({ X: { type: 'float32', data: new Float32Array(4), dims: [1, 4] } })).rejects.toThrow('session was disposed');
  });
});
