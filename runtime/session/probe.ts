// Execution-provider probing: each provider is tried by opening a real session on a tiny built-in
// model (one Relu), so "works" means onnxruntime could really create a session there.
// `probeProvidersIsolated` runs the same probe in a child process: native libraries (Dawn, the Vulkan
// loader, CUDA) write to file descriptor 2 directly, and only a separate process keeps those lines
// off the user's terminal (they come back as `nativeLog`).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, makeModel, makeNode, makeTensorType, makeValueInfo } from '../onnx/graph.js';
import { encodeModel } from '../onnx/model.js';
import { createSession, KNOWN_PROVIDERS, type ProviderName } from './session.js';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { packageRoot } from '../io/paths.js';

/** A minimal ONNX model, Y = Relu(X) with X float [1,4] (opset 13, IR 7), built with the ONNX toolkit. */
export function tinyModel(): Uint8Array {
  const io = (name: string) => makeValueInfo(name, makeTensorType(DataType.FLOAT, [1, 4]));
  const model = makeModel({ name: 'probe', node: [makeNode('Relu', ['X'], ['Y'])], input: [io('X')], output: [io('Y')] }, { opset: 13, irVersion: 7 });
  return encodeModel(model);
}

export interface ProbeResult {
  name: ProviderName;
  ok: boolean;
  ms: number;
  error?: string;
}

export async function probeProviders(names: readonly ProviderName[] = KNOWN_PROVIDERS.filter((p) => p !== 'coreml' && p !== 'dml')): Promise<ProbeResult[]> {
  const model = tinyModel();
  const out: ProbeResult[] = [];
  for (const name of names) {
    const t0 = performance.now();
    try {
      const s = await createSession(model, { providers: [name], onWarning: () => undefined });
      const r = await s.run({ X: { type: 'float32', data: new Float32Array([-1, 0, 1, 2]), dims: [1, 4] } });
      await s.dispose();
      const y = r.Y!.data as Float32Array;
      out.push({ name, ok: y[0] === 0 && y[3] === 2, ms: performance.now() - t0 });
    } catch (err) {
      out.push({ name, ok: false, ms: performance.now() - t0, error: messageOf(err).replace(/^No execution provider could serve the model:\n\s*- \w+: /, '') });
    }
  }
  return out;
}

/** What the isolated probe found, and what native code printed meanwhile (one entry a line). */
export interface IsolatedProbe {
  probes: ProbeResult[];
  nativeLog: string[];
}

/** The compiled probe module (tests run the TypeScript sources; the child runs the build). */
function probeScript(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? path.join(packageRoot(), 'dist', 'runtime', 'session', 'probe.js') : here;
  if (!existsSync(file)) throw new EdgetuneError('EIO', `${file} missing: run "npm run build" first`);
  return file;
}

/**
 * probeProviders() in a child process, with native stderr captured instead of printed. Rejects when
 * the child fails to report (its stderr then says why).
 */
export function probeProvidersIsolated(names?: readonly ProviderName[]): Promise<IsolatedProbe> {
  const env = { ...process.env, EDGETUNE_PROBE_CHILD: JSON.stringify(names ?? null) };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [probeScript()], { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const nativeLog = stderr.split('\n').filter((l) => l.trim());
      const line = stdout.split('\n').find((l) => l.startsWith('{"probes":'));
      if (!line) {
        reject(new EdgetuneError('EPROVIDER', `the provider probe process failed${err ? ` (${err.message.split('\n')[0]})` : ''}: ${nativeLog.slice(-3).join(' | ')}`));
        return;
      }
      resolve({ probes: (JSON.parse(line) as { probes: ProbeResult[] }).probes, nativeLog });
    });
  });
}

// Run as the probe child: print the results as one JSON line.
if (process.env.EDGETUNE_PROBE_CHILD !== undefined && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const names = JSON.parse(process.env.EDGETUNE_PROBE_CHILD) as ProviderName[] | null;
  probeProviders(names ?? undefined).then(
    (probes) => process.stdout.write(JSON.stringify({ probes }) + '\n'),
    (err) => {
      process.stderr.write(`${messageOf(err)}\n`);
      process.exitCode = 1;
    },
  );
}
