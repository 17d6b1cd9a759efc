// Execution providers: ordered fallback with one warning per skipped provider, one error listing every
// cause when none works, the serving provider reported, probing, dispose (the leak test is in test/leak/).

import { beforeAll, describe, expect, it } from 'vitest';
import { createSession, parseProviders } from '../../../runtime/session/session.js';
import { probeProviders, tinyModel, type ProbeResult } from '../../../runtime/session/probe.js';
import { listNativeProviders } from '../../../runtime/session/ort.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { detectFacts, detectProfile, getProfile, matches } from '../../../devices/profiles.js';
import { shared, tempDir } from '../../helpers.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// Which providers serve depends on the machine (CI: cpu and wasm; a Jetson or a GPU server: also
// tensorrt / cuda / webgpu): the tests probe first and expect whatever this machine has. coreml and dml
// never load on Linux (macOS / Windows only), so they are the fallbacks every Linux machine shows.
let probed: ProbeResult[] = [];
const works = (name: string) => probed.find((p) => p.name === name)!.ok;
beforeAll(async () => {
  probed = await probeProviders(['tensorrt', 'cuda', 'webgpu', 'coreml', 'dml', 'cpu', 'wasm']);
});

describe('provider fallback', () => {
  it('probing finds cpu and wasm working, and gives a reason for each provider that is not', () => {
    expect(works('cpu')).toBe(true);
    expect(works('wasm')).toBe(true);
    if (process.platform === 'linux') expect(works('coreml') || works('dml')).toBe(false);
    for (const p of probed.filter((x) => !x.ok)) expect(p.error, p.name).toMatch(/\w{3}/);
  });

  it('skips unavailable providers with one warning each and reports the one serving', async () => {
    const warnings: string[] = [];
    const s = await createSession(shared('models', 'mnist_winml.onnx'), { providers: ['coreml', 'dml', 'cpu'], onWarning: (w) => warnings.push(w) });
    expect(s.provider).toBe('cpu');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^execution provider coreml: .+; falling back to cpu$/);
    expect(warnings[1]).toMatch(/^execution provider dml: .+; falling back to cpu$/);
    await s.dispose();
  });

  it('serves on the first GPU provider this machine has, warning once for each one before it', async () => {
    const order = ['tensorrt', 'cuda', 'cpu'] as const;
    const serving = order.find(works)!;
    const warnings: string[] = [];
    const s = await createSession(shared('models', 'mnist_winml.onnx'), { providers: [...order], onWarning: (w) => warnings.push(w) });
    expect(s.provider).toBe(serving);
    const skipped = order.slice(0, order.indexOf(serving));
    expect(warnings.map((w) => w.split(':')[0])).toEqual(skipped.map((p) => `execution provider ${p}`));
    for (const w of warnings) expect(w).toMatch(new RegExp(`; falling back to ${serving}$`));
    await s.dispose();
  });

  it('a provider this onnxruntime-node build lacks never reports as serving, also when grouped with cpu', async () => {
    // onnxruntime drops such a provider from a [coreml, cpu] session with only a log line; before this
    // check the session said "coreml" while the CPU served.
    const built = (await listNativeProviders()).map((p) => p.name);
    const absent = (['coreml', 'dml'] as const).find((p) => !built.includes(p));
    expect(absent, `this onnxruntime-node build has both coreml and dml (${built.join(', ')})`).toBeDefined();
    const warnings: string[] = [];
    const s = await createSession(shared('models', 'mnist_winml.onnx'), { providers: [absent!, 'cpu'], onWarning: (w) => warnings.push(w) });
    expect(s.provider).toBe('cpu');
    expect(s.providers).toEqual(['cpu']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toBe(`execution provider ${absent}: not in this onnxruntime-node build (it has ${built.join(', ')}); falling back to cpu`);
    await s.dispose();
  });

  it('one error lists every provider and its cause when none works', async () => {
    const err = (await createSession(shared('models', 'mnist_winml.onnx'), { providers: ['coreml', 'dml'] }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^No execution provider could serve .*mnist_winml\.onnx:\n  - coreml: .+\n  - dml: .+$/);
  });

  it('falls back to wasm when the native providers fail', async () => {
    const warnings: string[] = [];
    const s = await createSession(tinyModel(), { providers: ['coreml', 'wasm'], onWarning: (w) => warnings.push(w) });
    expect(s.provider).toBe('wasm');
    expect(warnings).toHaveLength(1);
    const r = await s.run({ X: { type: 'float32', data: new Float32Array([-2, -1, 3, 4]), dims: [1, 4] } });
    expect(Array.from(r.Y!.data as Float32Array)).toEqual([0, 0, 3, 4]);
    await s.dispose();
  });

  it('rejects unknown provider names', () => {
    expect(() => parseProviders('cpu,npu')).toThrow('Unknown execution provider "npu": expected one of tensorrt, cuda, webgpu, coreml, dml, cpu, wasm');
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

  it('the x86-nvidia profile serves on its first provider that works here, with a warning for each one before it', async () => {
    const warnings: string[] = [];
    const providers = getProfile('x86-nvidia').providers;
    const order = providers.map((p) => (typeof p === 'string' ? p : p.name));
    expect(order).toEqual(['tensorrt', 'cuda', 'webgpu', 'cpu', 'wasm']);
    const serving = order.find(works)!;
    const c = await loadClassifier('mobilenetv2-int8', { providers, onWarning: (w) => warnings.push(w) });
    expect(c.provider).toBe(serving);
    expect(warnings.map((w) => w.split(':')[0])).toEqual(order.slice(0, order.indexOf(serving)).map((p) => `execution provider ${p}`));
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
