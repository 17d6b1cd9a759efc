// Mixed precision (quantizeModel keepFloat / `quantize --keep-float N`) on the real MobileNetV1-0.25:
// the N layers whose int8 weights alone cost the most (the sensitivity report's weight entries) stay
// float in the written model, everything else stays int8.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantizeModel, type QuantizeResult } from '../../../calibration/index.js';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { shared, sharedDir, tempDir } from '../../helpers.js';

const dir = tempDir('edgetune-keep-float-');
const resolve = { searchPath: [path.join(sharedDir, 'models'), path.join(sharedDir, 'labels')], download: false };

describe('keepFloat on mobilenetv1-0.25-128', () => {
  let r: QuantizeResult;
  beforeAll(async () => {
    r = await quantizeModel({
      model: 'mobilenetv1-0.25-128',
      resolve,
      calib: shared('datasets', 'hymenoptera', 'train'),
      calibCount: 32,
      correctionImages: 0,
      sensitivityImages: 8,
      keepFloat: 2,
      out: path.join(dir, 'v1-kf2.onnx'),
    });
  }, 600_000);

  it('keeps the two costliest weight layers of the sensitivity report in float', () => {
    const weights = r.sensitivity!.entries.filter((e) => e.kind === 'weights');
    expect(r.keptFloat!.map((k) => k.name)).toEqual(weights.slice(0, 2).map((e) => e.name));
    expect(r.keptFloat![0]!.meanKL).toBeGreaterThanOrEqual(r.keptFloat![1]!.meanKL);
    for (const k of r.keptFloat!) expect(r.excluded.some((e) => e.endsWith(k.name))).toBe(true);
  });

  it('the written model reads float weights in exactly those layers', () => {
    const m = decodeModel(readFileSync(r.out));
    const inits = new Set(m.graph.initializer.map((t) => t.name));
    const convs = m.graph.node.filter((n) => n.opType === 'Conv');
    const floatWeights = convs.filter((n) => inits.has(n.input[1]!));
    // 28 Convs (the README's count): 26 read DequantizeLinear outputs, 2 their float weights
    expect(convs).toHaveLength(28);
    expect(floatWeights.map((n) => n.name || n.output[0])).toEqual(expect.arrayContaining(r.keptFloat!.map((k) => k.name)));
    expect(floatWeights).toHaveLength(2);
  });
});
