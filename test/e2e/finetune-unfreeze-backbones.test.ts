// Phase 2 (`finetune --unfreeze 1`) on backbones other than MobileNetV2, on real hymenoptera photos:
// SqueezeNet 1.1 (fire modules: Concat; MaxPool in the frozen blocks whose biases train by default) and
// MobileNetV1 0.25 (a plain chain of depthwise-separable pairs, its embedding an AveragePool). The report
// says what phase 2 did and its keep decision by the rule; with --keep-unfrozen the exported model holds
// the tuned block (its weights moved) and scores the validation photos exactly as phase 2's report says,
// and `classify` labels a real photo with it.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FinetuneReport } from '../../runtime/train/node/finetune.js';
import { keepPhase2 } from '../../runtime/train/phase2.js';
import { decodeModel } from '../../runtime/onnx/model.js';
import { getInitializer, readFloat32 } from '../../runtime/onnx/graph.js';
import { runCli, shared, subsetDataset, tempDir } from '../helpers.js';

const env = { EDGETUNE_CACHE: tempDir('edgetune-p2-bb-cache-') };
const work = tempDir('edgetune-p2-bb-');


const cases = [
  // fire9 (squeeze 1×1, expand 1×1 and 3×3, Concat); the conv biases of every frozen fire module and conv1 train too (BitFit 'all')
  { model: 'squeezenet1.1', file: 'squeezenet1.1_fp32_from_winml_fp16.onnx', input: 'data_0', tuned: 'fire9/expand3x3_w_0', frozenBias: 'conv1_b_0' },
  // Conv2d_13's depthwise + pointwise pair, then the AveragePool the embedding is taken at
  { model: 'mobilenetv1-0.25-128', file: 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx', input: 'input', tuned: 'MobilenetV1/Conv2d_13_pointwise/weights', frozenBias: 'MobilenetV1/MobilenetV1/Conv2d_0/Conv2D_bias' },
];

describe('finetune --unfreeze 1 on SqueezeNet and MobileNetV1 (real photos)', () => {
  let train: string;
  let val: string;
  beforeAll(() => {
    train = subsetDataset(path.join(work, 'hym-train-10'), ['datasets', 'hymenoptera', 'train'], ['ants', 'bees'], 10);
    val = subsetDataset(path.join(work, 'hym-val-10'), ['datasets', 'hymenoptera', 'val'], ['ants', 'bees'], 10);
  });

  it.each(cases)('$model: phase 2 trains the last block, reports its keep decision, and the export classifies', async (c) => {
    const out = path.join(work, `${c.model}.onnx`);
    // --no-refit: the export is the validated run, so `eval` must reproduce the report's accuracy (measured here:
    // SqueezeNet 0.800 → 0.800, MobileNetV1 0.850 → 0.900 on these 20 validation photos; 14 s and 4 s)
    const r = await runCli(['finetune', train, '--val', val, '--model', c.model, '--unfreeze', '1', '--unfreeze-epochs', '2', '--augment', 'none', '--no-refit', '--keep-unfrozen', '--out', out, '--json'], { env, timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as FinetuneReport;
    const u = report.unfreeze!;
    expect(u.blocks).toBe(1);
    // block 1's weights train; with the default BitFit 'all' the training graph starts at the input
    expect(u.cut).toBe(c.input);
    expect(u.biases).toBe('all');
    expect(u.history.length).toBeGreaterThanOrEqual(1);
    expect(u.keepTest!.images).toBe(20);
    // the rule's decision is reported, and --keep-unfrozen keeps the run either way
    const rule = keepPhase2(u.keepTest);
    expect(u.kept).toBe(true);
    if (!rule.kept) expect(u.keepReason).toBe(`kept as asked (alwaysKeep), against the rule: ${rule.reason}`);
    expect(report.accuracy).toBe(u.accuracy);
    // measured 0.800 (SqueezeNet) and 0.900 (MobileNetV1) on these 20 photos, chance 0.5
    expect(u.accuracy).toBeGreaterThanOrEqual(0.7);

    // the export holds the tuned weights: the unfrozen block's and a frozen block's bias moved, shapes kept
    const original = decodeModel(new Uint8Array(readFileSync(shared('models', c.file))));
    const exported = decodeModel(new Uint8Array(readFileSync(out)));
    for (const name of [c.tuned, c.frozenBias]) {
      const a = readFloat32(getInitializer(original.graph, name)!);
      const b = readFloat32(getInitializer(exported.graph, name)!);
      expect(b.length, name).toBe(a.length);
      let moved = 0;
      for (let i = 0; i < a.length; i++) moved = Math.max(moved, Math.abs(a[i]! - b[i]!));
      expect(moved, name).toBeGreaterThan(0);
    }
    const ev = await runCli(['eval', val, '--model', out, '--json'], { env });
    expect(ev.code, ev.stderr).toBe(0);
    expect((JSON.parse(ev.stdout) as { accuracy: number }).accuracy).toBeCloseTo(u.accuracy, 9);

    const photo = path.join(val, 'bees', readdirSync(path.join(val, 'bees')).sort()[0]!);
    const cl = await runCli(['classify', photo, '--model', out, '--json'], { env });
    expect(cl.code, cl.stderr).toBe(0);
    const top = (JSON.parse(cl.stdout) as { top: { label: string; score: number }[] }).top;
    expect(top.map((t) => t.label).sort()).toEqual(['ants', 'bees']);
    expect(top[0]!.score + top[1]!.score).toBeCloseTo(1, 5);
  });
});
