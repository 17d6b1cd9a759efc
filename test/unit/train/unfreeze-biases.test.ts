// Phase 2's BitFit option (runtime/train/finetune-tail.ts planUnfreeze `biases`, the CLI's
// --unfreeze-biases): on the real fp32 MobileNetV2 the plan cuts at the biases' block and trains the
// unfrozen blocks' weights plus the frozen blocks' conv biases only; the training graph's gradient of
// each such bias matches central differences of the loss on two real photos; one trainTail step moves
// those biases and writes nothing else of the frozen blocks back into the backbone; such a bias trains
// at lrBiases (plain SGD: its update scales exactly with the rate, the other weights' do not).

import { describe, expect, it } from 'vitest';
import { planUnfreeze, unfrozenBackbone } from '../../../runtime/train/finetune-tail.js';
import { trainTail } from '../../../runtime/train/graph/tail-trainer.js';
import { createRng } from '../../../runtime/core/rng.js';
import { shared } from '../../helpers.js';
import { clipPoolTail, gradCheck, ortFactory, randn, } from './grad-helpers.js';
import { getInitializer, readFloat32 } from '../../../runtime/onnx/graph.js';
import { EMBEDDING, loadBackbone, preprocess, runBatched } from './mnv2-helpers.js';

describe('planUnfreeze biases (BitFit)', () => {
  it('cuts at the biases block and adds only the frozen blocks conv biases', () => {
    const model = loadBackbone();
    const u2 = planUnfreeze(model, EMBEDDING, 2);
    expect(u2.biases).toBe('none');
    expect(u2.cut.cut).toBe('452');
    // the last two blocks' 4 convs, weight and bias each: 882 560 values (phase2-rules.test.ts)
    expect(u2.trainable.length).toBe(8);
    expect(u2.parameters).toBe(882560);
    // block 3 (160 → 960 → depthwise 960 → 160, cut at tensor 443): 3 conv biases, 960 + 960 + 160 values
    const b3 = planUnfreeze(model, EMBEDDING, 2, 'mnv2', undefined, 3);
    expect(b3.cut.cut).toBe('443');
    expect(b3.trainable.slice(0, 8)).toEqual(u2.trainable);
    expect(b3.trainable.length).toBe(11);
    expect(b3.parameters).toBe(882560 + 960 + 960 + 160);
    const added = b3.trainable.slice(8);
    expect(added.every((w) => b3.cut.tail.graph.node.some((n) => n.opType === 'Conv' && n.input[2] === w))).toBe(true);
    // all: cut at the input; 52 convs before the embedding, 4 of them unfrozen: 48 more biases, 13 536 values
    // (measured by planUnfreeze on mobilenetv2-12-fp32-rebuilt.onnx)
    const all = planUnfreeze(model, EMBEDDING, 2, 'mnv2', undefined, 'all');
    expect(all.cut.cut).toBe('input');
    expect(all.trainable.length).toBe(56);
    expect(all.parameters).toBe(896096);
    // as many blocks as unfrozen (or fewer) adds nothing
    expect(planUnfreeze(model, EMBEDDING, 2, 'mnv2', undefined, 2)).toMatchObject({ parameters: 882560, cut: { cut: '452' } });
    expect(() => planUnfreeze(model, EMBEDDING, 2, 'mnv2', undefined, 0)).toThrow("Expected 'none', 'all' or a whole number of blocks (1 or more) for unfreezeBiases but received 0");
    expect(() => planUnfreeze(model, EMBEDDING, 2, 'mnv2', undefined, 'some' as never)).toThrow(/for unfreezeBiases but received "some"/);
  });

  it('gives each frozen bias its exact gradient, and trains the biases but no frozen weight', async () => {
    const model = loadBackbone();
    const plan = planUnfreeze(model, EMBEDDING, 2, 'mnv2', undefined, 3);
    const x = await preprocess([shared('camera', 'winml_dog.jpg'), shared('camera', 'winml_hummingbird.jpg')]);
    const acts = await runBatched(plan.cut.frozen, 'input', plan.cut.cut, x, [3, 224, 224]);
    const rng = createRng(4, 'bitfit-grad');
    const K = 3;
    const head = { 'head.0.weight': randn(rng, K * 1280, 0.05), 'head.0.bias': randn(rng, K, 0.1) };
    const biases = plan.trainable.slice(8);
    // gradients of the three frozen-block biases only (weights constants of the graph)
    const r = await gradCheck(plan.cut.tail, { head: [{ in: 1280, out: K }], trainable: biases }, { x: acts, labels: BigInt64Array.from([0n, 2n]), head }, { batch: 2, samples: 8, eps: 1e-2, floor: 1e-4, floorRel: 0.05, largest: true });
    expect(Object.keys(r.perWeight).sort()).toEqual([...biases, 'head.0.bias', 'head.0.weight'].sort());
    // same tolerance as the two-block check in grad-mobilenet.test.ts (float32 loss differences)
    expect(r.maxRel).toBeLessThan(5e-2);
    expect(r.kinks).toBeLessThanOrEqual(Math.ceil(r.checked / 4));

    // one trainTail epoch on the two photos' activations: the trained tensors are exactly the plan's
    const t = await trainTail({ tail: plan.cut.tail, classes: K, train: { x: acts, labels: Int32Array.from([0, 2]) }, createSession: ortFactory }, { trainable: plan.trainable, epochs: 1, batchSize: 2, lrBackbone: 0.01 });
    expect(Object.keys(t.tailWeights).sort()).toEqual([...plan.trainable].sort());
    const original = (name: string) => readFloat32(getInitializer(plan.model.graph, name)!);
    for (const b of biases) expect(Array.from(t.tailWeights[b]!)).not.toEqual(Array.from(original(b)));
    // the frozen block's conv weights are byte-identical in the exported backbone
    const tuned = unfrozenBackbone(plan, t);
    const frozenWeights = plan.cut.tail.graph.node.filter((n) => n.opType === 'Conv' && biases.includes(n.input[2]!)).map((n) => n.input[1]!);
    expect(frozenWeights.length).toBe(3);
    for (const w of frozenWeights) expect(readFloat32(getInitializer(tuned.graph, w)!)).toEqual(original(w));
    for (const b of biases) expect(readFloat32(getInitializer(tuned.graph, b)!)).toEqual(t.tailWeights[b]);
  });

  it('trains a bias whose conv weight is frozen at lrBiases, the unfrozen weights at lrBackbone', async () => {
    const rng = createRng(6, 'bias-rate');
    // conv W1 (frozen weight, trained bias B1) → conv W2, B2 (trained) → Clip → pool
    const tail = clipPoolTail(rng, 2);
    const r = createRng(9, 'rows');
    const labels = Int32Array.from({ length: 12 }, (_, i) => i % 3);
    const train = { x: Float32Array.from({ length: 12 * 100 }, (_, j) => r.normal() + (Math.floor(j / 25) % 4 === labels[Math.floor(j / 100)] ? 1 : 0)), labels };
    const cfg = { trainable: ['B1', 'W2', 'B2'], epochs: 1, batchSize: 12, optimizer: 'sgd' as const, lrHead: 0.05, lrBackbone: 0.05, weightDecay: 0, seed: 1 };
    const base = await trainTail({ tail, classes: 3, train, createSession: ortFactory }, { ...cfg, lrBiases: 0.05 });
    const twice = await trainTail({ tail, classes: 3, train, createSession: ortFactory }, { ...cfg, lrBiases: 0.1 });
    expect(Object.keys(base.tailWeights).sort()).toEqual(['B1', 'B2', 'W2']);
    const init = (name: string) => readFloat32(tail.graph.initializer.find((t) => t.name === name)!);
    const delta = (w: Record<string, Float32Array>, name: string) => Array.from(w[name]!, (v, i) => v - init(name)[i]!);
    const d1 = delta(base.tailWeights, 'B1');
    expect(Math.max(...d1.map(Math.abs))).toBeGreaterThan(1e-4);
    delta(twice.tailWeights, 'B1').forEach((v, i) => expect(v).toBeCloseTo(2 * d1[i]!, 5));
    expect(twice.tailWeights.W2).toEqual(base.tailWeights.W2);
    expect(twice.tailWeights.B2).toEqual(base.tailWeights.B2);
    // default: the head's rate
    expect((await trainTail({ tail, classes: 3, train, createSession: ortFactory }, { ...cfg, epochs: 1 })).config.lrBiases).toBe(0.05);
  });
});
