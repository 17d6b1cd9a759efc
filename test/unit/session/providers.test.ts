// The one provider table and what sessions do with it: names and aliases, groups registered together
// in one session (TensorRT + CUDA + CPU), the provider options onnxruntime-node receives, and providers
// that failed to load remembered for the process instead of retried on every session.
// This machine (and CI) has no CUDA/TensorRT libraries: onnxruntime-node fails to load them, which is
// the load failure the memory is for.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { culpritOf, isLoadFailure, providerGroups, providerInfo, providerNamesIn, ProviderMemory } from '../../../runtime/core/providers.js';
import { buildSessionOptions, nodeBackend } from '../../../runtime/session/ort.js';
import { createSession, KNOWN_PROVIDERS, parseProviders, providerMemory } from '../../../runtime/session/session.js';
import { DEFAULT_ORDER, parseOrder, WEB_PROVIDERS } from '../../../runtime/kiosk/page/providers.js';
import { tinyModel } from '../../../runtime/session/probe.js';

afterEach(() => {
  providerMemory.clear();
  vi.restoreAllMocks();
});

describe('the provider table', () => {
  it('gives every runtime its names in one preference order', () => {
    expect(KNOWN_PROVIDERS).toEqual(['tensorrt', 'cuda', 'webgpu', 'coreml', 'dml', 'cpu', 'wasm']);
    expect(nodeBackend.providers).toEqual(['tensorrt', 'cuda', 'webgpu', 'coreml', 'dml', 'cpu']);
    expect(WEB_PROVIDERS).toEqual(['webnn', 'webnn-gpu', 'webnn-cpu', 'webgpu', 'wasm']);
    expect(DEFAULT_ORDER).toEqual(['webnn', 'webgpu', 'wasm']);
    expect(providerNamesIn('browser')).toEqual(WEB_PROVIDERS);
  });

  it('accepts aliases and onnxruntime spellings, and refuses names a runtime cannot serve', () => {
    expect(parseProviders('trt,CUDAExecutionProvider,CPU').map((p) => p.name)).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(providerInfo('DmlExecutionProvider')?.name).toBe('dml');
    expect(parseOrder('WebGPU,webassembly')).toEqual(['webgpu', 'wasm']);
    expect(() => parseOrder('cuda')).toThrow('Unknown execution provider "cuda": expected one of webnn, webnn-gpu, webnn-cpu, webgpu, wasm');
    expect(() => parseProviders('webnn')).toThrow('Unknown execution provider "webnn": expected one of tensorrt, cuda, webgpu, coreml, dml, cpu, wasm');
  });

  it('groups TensorRT, CUDA and a following CPU into one session; other families stand alone', () => {
    const names = (l: string[]) => providerGroups(l.map((name) => ({ name }))).map((g) => g.map((p) => p.name));
    expect(names(['tensorrt', 'cuda', 'cpu', 'wasm'])).toEqual([['tensorrt', 'cuda', 'cpu'], ['wasm']]);
    expect(names(['tensorrt', 'cuda', 'webgpu', 'cpu', 'wasm'])).toEqual([['tensorrt', 'cuda'], ['webgpu', 'cpu'], ['wasm']]);
    expect(names(['cuda', 'tensorrt'])).toEqual([['cuda', 'tensorrt']]);
    expect(names(['cpu', 'wasm'])).toEqual([['cpu'], ['wasm']]);
    expect(names(['wasm', 'cpu'])).toEqual([['wasm'], ['cpu']]);
  });

  it('blames the provider an onnxruntime error names, else the first of the group', () => {
    const g = [{ name: 'tensorrt' }, { name: 'cuda' }, { name: 'cpu' }];
    expect(culpritOf(g, 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library').name).toBe('cuda');
    expect(culpritOf(g, 'OrtSessionOptionsAppendExecutionProvider_TensorRT: Failed to load shared library').name).toBe('tensorrt');
    expect(culpritOf(g, 'something else').name).toBe('tensorrt');
  });
});

describe('provider options for onnxruntime-node', () => {
  it('registers every provider of a group in one session, with its options', () => {
    const o = buildSessionOptions([{ name: 'tensorrt', options: { deviceId: 0 } }, { name: 'cuda', options: { deviceId: 0 } }, { name: 'cpu' }], { intraOpNumThreads: 2 });
    expect(o.executionProviders).toEqual([{ name: 'tensorrt', deviceId: 0 }, { name: 'cuda', deviceId: 0 }, 'cpu']);
    expect(o.intraOpNumThreads).toBe(2);
  });

  it('turns intra-op spinning off only when asked (phase-2 training sessions), and a session opens with it', async () => {
    expect(buildSessionOptions(['cpu'], { allowSpinning: false }).extra).toEqual({ session: { intra_op: { allow_spinning: '0' } } });
    expect(buildSessionOptions(['cpu'], {}).extra).toBeUndefined();
    const s = await createSession(tinyModel(), { providers: ['cpu'], threads: 2, spinning: false });
    expect(s.provider).toBe('cpu');
    await s.dispose();
  });

  it('plans no memory pattern only when asked (phase-2 training sessions), and a session opens and runs without one', async () => {
    expect(buildSessionOptions(['cpu'], { enableMemPattern: false }).enableMemPattern).toBe(false);
    expect('enableMemPattern' in buildSessionOptions(['cpu'], {})).toBe(false);
    const s = await createSession(tinyModel(), { providers: ['cpu'], memoryPattern: false });
    const name = s.inputs[0]!.name;
    const dims = s.inputs[0]!.shape.map((d) => (typeof d === 'number' ? d : 1));
    const out = Object.values(await s.run({ [name]: { type: 'float32', data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims } }))[0]!;
    expect(out.data.length).toBeGreaterThan(0);
    await s.dispose();
  });

  it('refuses provider options onnxruntime-node would ignore (TensorRT FP16 and engine cache are not reachable from Node)', () => {
    expect(() => parseProviders([{ name: 'tensorrt', options: { trt_fp16_enable: true } }])).toThrow(
      'Expected only deviceId (what onnxruntime-node reads) for tensorrt provider options but received "trt_fp16_enable"',
    );
    expect(() => parseProviders([{ name: 'tensorrt', options: { trt_engine_cache_enable: '1' } }])).toThrow('for tensorrt provider options but received "trt_engine_cache_enable"');
    expect(parseProviders([{ name: 'cuda', options: { deviceId: 1 } }])[0]).toEqual({ name: 'cuda', options: { deviceId: 1 } });
  });
});

describe('providers that failed to load are remembered per process', () => {
  it('tries TensorRT+CUDA+CPU as one session, falls back, and does not try the failed providers again', async () => {
    const create = vi.spyOn(nodeBackend, 'create');
    const warnings: string[] = [];
    const a = await createSession(tinyModel(), { providers: ['tensorrt', 'cuda', 'cpu'], onWarning: (w) => warnings.push(w) });
    expect(a.provider).toBe('cpu');
    expect(a.providers).toEqual(['cpu']);
    // [tensorrt, cuda, cpu] (TensorRT fails to load), [cuda, cpu] (CUDA fails), [cpu]
    expect(create.mock.calls.map((c) => c[1].map((p) => p.name))).toEqual([['tensorrt', 'cuda', 'cpu'], ['cuda', 'cpu'], ['cpu']]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^execution provider tensorrt: .*Failed to load shared library.*; falling back to cpu$/);
    expect(providerMemory.entries().map(([n]) => n)).toEqual(['tensorrt', 'cuda']);
    await a.dispose();

    create.mockClear();
    warnings.length = 0;
    const b = await createSession(tinyModel(), { providers: ['tensorrt', 'cuda', 'cpu'], onWarning: (w) => warnings.push(w) });
    expect(b.provider).toBe('cpu');
    // the second session goes straight to the CPU: the GPU providers are not loaded again
    expect(create.mock.calls.map((c) => c[1].map((p) => p.name))).toEqual([['cpu']]);
    expect(b.skipped).toEqual([expect.stringMatching(/^tensorrt: .*\(remembered: not tried again in this process\)$/), expect.stringMatching(/^cuda: .*\(remembered/)]);
    expect(warnings).toHaveLength(2);
    await b.dispose();
  });

  it('with nothing left, one error lists every provider and its cause, remembered ones included', async () => {
    await createSession(tinyModel(), { providers: ['cuda', 'cpu'], onWarning: () => undefined }).then((s) => s.dispose());
    const err = (await createSession(tinyModel(), { providers: ['tensorrt', 'cuda'] }).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('EPROVIDER');
    expect(err.message).toMatch(/^No execution provider could serve the model:\n {2}- cuda: .*remembered.*\n {2}- tensorrt: .*Failed to load shared library.*$/);
  });

  it('remembers load failures only, not a provider failing on one model', () => {
    const m = new ProviderMemory();
    expect(m.remember('cuda', 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library')).toBe(true);
    expect(m.remember('tensorrt', 'TensorRT input: x has no shape specified')).toBe(false);
    expect(m.remember('webgpu', 'no WebGPU adapter on this machine (No supported adapters)')).toBe(true);
    expect(m.entries().map(([n]) => n)).toEqual(['cuda', 'webgpu']);
    expect(isLoadFailure('WebNN is not available in this browser (navigator.ml is missing)')).toBe(true);
  });
});
