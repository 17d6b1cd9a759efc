// loadBackbone reads the model file once and decodes it once (issue 21, "Model files"): the card is
// described from those bytes and that decoded model, external data inlined on the way. Counted by
// wrapping the one file reader (runtime/io/read-file.ts) and the one decoder (runtime/onnx/model.ts).

import { describe, expect, it, vi } from 'vitest';
import { shared } from '../../helpers.js';

const counts = vi.hoisted(() => ({ reads: [] as string[], decodes: 0 }));
vi.mock('../../../runtime/io/read-file.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../../runtime/io/read-file.js')>();
  return {
    ...orig,
    readRegularFile: async (file: string, o: Parameters<typeof orig.readRegularFile>[1]) => {
      counts.reads.push(file);
      return orig.readRegularFile(file, o);
    },
  };
});
vi.mock('../../../runtime/onnx/model.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../../runtime/onnx/model.js')>();
  return {
    ...orig,
    decodeModel: (bytes: Uint8Array) => {
      counts.decodes++;
      return orig.decodeModel(bytes);
    },
  };
});

const { loadBackbone } = await import('../../../runtime/train/node/embed.js');

describe('loadBackbone', () => {
  it('reads the model file once and decodes it once (MobileNetV2 int8, and a model with external data)', async () => {
    const file = shared('models', 'mobilenetv2-12-int8.onnx');
    const b = await loadBackbone(file);
    expect(b.cut.tensor.length).toBeGreaterThan(0);
    expect(counts.reads.filter((f) => f.endsWith('.onnx'))).toEqual([file]);
    expect(counts.decodes).toBe(1);

    counts.reads.length = 0;
    counts.decodes = 0;
    const ext = shared('faults', 'external-data', 'model_ext.onnx');
    const e = await loadBackbone(ext);
    expect(e.model.graph.initializer.filter((t) => t.dataLocation === 1)).toEqual([]);
    expect(counts.reads.filter((f) => f.endsWith('.onnx'))).toEqual([ext]);
    expect(counts.decodes).toBe(1);
  });
});
