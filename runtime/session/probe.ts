// Execution-provider probing: each provider is tried by opening a real session on a tiny built-in
// model (one Relu), so "works" means onnxruntime could really create a session there.

import protobuf from 'protobufjs/minimal.js';
import { createSession, KNOWN_PROVIDERS, type ProviderName } from './session.js';
import { messageOf } from '../core/errors.js';

/** A minimal ONNX model, Y = Relu(X) with X float [1,4], encoded field by field (opset 13, IR 7). */
export function tinyModel(): Uint8Array {
  const w = protobuf.Writer.create();
  const valueInfo = (name: string) => {
    const v = protobuf.Writer.create();
    v.uint32((1 << 3) | 2).string(name);
    const dim = (n: number) => protobuf.Writer.create().uint32((1 << 3) | 0).int64(n).finish();
    const shape = protobuf.Writer.create();
    for (const d of [1, 4]) shape.uint32((1 << 3) | 2).bytes(dim(d));
    const tensor = protobuf.Writer.create().uint32((1 << 3) | 0).int32(1).uint32((2 << 3) | 2).bytes(shape.finish()).finish();
    const type = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(tensor).finish();
    v.uint32((2 << 3) | 2).bytes(type);
    return v.finish();
  };
  const node = protobuf.Writer.create().uint32((1 << 3) | 2).string('X').uint32((2 << 3) | 2).string('Y').uint32((4 << 3) | 2).string('Relu').finish();
  const graph = protobuf.Writer.create()
    .uint32((1 << 3) | 2).bytes(node)
    .uint32((2 << 3) | 2).string('probe')
    .uint32((11 << 3) | 2).bytes(valueInfo('X'))
    .uint32((12 << 3) | 2).bytes(valueInfo('Y'))
    .finish();
  const opset = protobuf.Writer.create().uint32((1 << 3) | 2).string('').uint32((2 << 3) | 0).int64(13).finish();
  w.uint32((1 << 3) | 0).int64(7);
  w.uint32((7 << 3) | 2).bytes(graph);
  w.uint32((8 << 3) | 2).bytes(opset);
  return w.finish();
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
