// Mixed precision chosen by measured accuracy and speed (quantizeModel keepFloat 'auto', `quantize
// --keep-float auto`, calibration/mixed.ts) on the real mobilenetv2-fp32: calibrated on the 200
// tf_flowers-dev/train photos, judged on the 100 held-out tf_flowers-dev/val photos (1000-way top-1
// agreement with fp32). The kept units' tensors carry no quantizer in the written model, and exactly
// the excluded layers read float weights.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantizeModel, type QuantizeResult } from '../../../calibration/index.js';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { shared, sharedDir, tempDir } from '../../helpers.js';

const dir = tempDir('edgetune-mixed-');
const resolve = { searchPath: [path.join(sharedDir, 'models'), path.join(sharedDir, 'labels')], download: false };
/** Calibration, two bias-correction passes, the per-unit scoring and the evaluation of MobileNetV2 on a busy 2-core machine. */
const SLOW_MS = 1_500_000;

describe("keepFloat 'auto' on mobilenetv2-fp32 (tf_flowers-dev)", () => {
  let r: QuantizeResult;
  beforeAll(async () => {
    r = await quantizeModel({
      model: 'mobilenetv2-fp32',
      resolve,
      calib: shared('datasets', 'tf_flowers-dev', 'train'),
      calibCount: 200,
      keepFloat: 'auto',
      eval: shared('datasets', 'tf_flowers-dev', 'val'),
      out: path.join(dir, 'mnv2-auto.onnx'),
    });
  }, SLOW_MS);

  it('stays closer to fp32 on the held-out photos than all-int8', () => {
    const rep = r.report!;
    expect(rep.images).toBe(100);
    // measured (bench:quant and `quantize … --keep-float auto`, runs whose timed choices differed with the
    // machine's load): mean KL 0.0262, 0.0273, 0.0244 and, in a clean-clone CI run, 0.0342; top-1 agreement
    // 0.84, 0.87 and 0.89; all-int8 defaults on the same calibration: KL 0.0383, agreement 0.84. The choice depends on
    // the kernel times measured here, so the bound is the claim itself: closer to fp32 than all-int8. The KL
    // bound is what tells auto from all-int8 (its 0.0383 fails it); top-1 agreement on 100 photos cannot
    // (auto 0.84–0.89 against all-int8 0.84, and 0.80 in a clean-clone CI run beside a second vitest process,
    // whose load changed the timed choice): it is only a floor against a broken model, 5 photos under the
    // lowest measured
    expect(rep.meanKL).toBeLessThan(0.0383);
    expect(rep.agreementTop1).toBeGreaterThanOrEqual(0.75);
  });

  it('keeps the chosen units float: no quantizer on their tensors, float weights in exactly the excluded layers', () => {
    const p = r.precision!;
    const kept = p.units.filter((u) => u.kept);
    expect(r.keptFloat!.map((k) => k.name)).toEqual(kept.map((u) => u.name));
    // which units depend on this machine's kernel times; measured here: 11 and 14 kept, Conv_0's for
    // free in both runs (its int8 kernel, 3 input channels, measured slower than the float one)
    expect(kept.length).toBeGreaterThan(0);
    for (const u of kept) {
      expect(u.klGain).toBeGreaterThanOrEqual(0);
      if (u.kept === 'free') expect(u.costMs).toBeLessThanOrEqual(0);
    }
    expect(p.addedMs).toBeLessThanOrEqual(p.budgetMs + 1e-9);
    // every unit is a layer output of the model scored and timed: the 52 Convs' outputs
    expect(p.units.length).toBe(52);
    expect(p.exclude).toEqual([...new Set(kept.flatMap((u) => u.exclude))]);
    const m = decodeModel(readFileSync(r.out));
    const quantizedTensors = new Set(m.graph.node.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input[0]));
    for (const u of kept) expect(quantizedTensors.has(u.tensor)).toBe(false);
    const inits = new Set(m.graph.initializer.map((t) => t.name));
    const floatHeavy = m.graph.node.filter((n) => (n.opType === 'Conv' || n.opType === 'Gemm') && inits.has(n.input[1]!)).map((n) => n.name);
    const excludedHeavy = p.exclude.filter((e) => /^(Conv|Gemm)_/.test(e));
    expect(floatHeavy.sort()).toEqual([...excludedHeavy].sort());
  });
});
