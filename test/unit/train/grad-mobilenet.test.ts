// Full gradient check of a real two-block MobileNetV2 tail (last inverted-residual block + final 1×1
// conv, BN already folded in the fp32 rebuilt model) + a linear head, on the cut activations of two
// real photos, against central differences of the loss for a sample of entries of every weight.

import { describe, expect, it } from 'vitest';
import { cutModel, tailBlocks } from '../../../runtime/train/graph/cut.js';
import { createRng } from '../../../runtime/core/rng.js';
import { shared } from '../../helpers.js';
import { gradCheck, randn } from './grad-helpers.js';
import { EMBEDDING, loadBackbone, preprocess, runBatched } from './mnv2-helpers.js';

describe('MobileNetV2 fp32: two-block tail gradients', () => {
  it('finds the block boundaries and checks every weight of the last two blocks + head', async () => {
    const model = loadBackbone();
    expect(model.graph.node.some((n) => n.opType === 'BatchNormalization')).toBe(false); // BN folded upstream
    const blocks = tailBlocks(model, EMBEDDING);
    expect(blocks.slice(0, 3).map((b) => b.tensor)).toEqual(['624', '452', '443']);
    expect(blocks[0]!.weights).toEqual(['conv_95_weight', 'conv_95_bias']);
    const cut = cutModel(model, blocks[1]!.tensor, EMBEDDING);
    expect(cut.cutShape).toEqual(['N', 160, 7, 7]);
    expect(cut.tail.graph.node.map((n) => n.opType)).toEqual(['Conv', 'Clip', 'Conv', 'Clip', 'Conv', 'Conv', 'Clip', 'GlobalAveragePool', 'Flatten']);

    const x = await preprocess([shared('camera', 'winml_dog.jpg'), shared('camera', 'winml_hummingbird.jpg')]);
    const acts = await runBatched(cut.frozen, 'input', cut.cut, x, [3, 224, 224]);
    const rng = createRng(3, 'mnv2-grad');
    const K = 3;
    const head = { 'head.0.weight': randn(rng, K * 1280, 0.05), 'head.0.bias': randn(rng, K, 0.1) };
    const t0 = performance.now();
    const r = await gradCheck(cut.tail, { head: [{ in: 1280, out: K }] }, { x: acts, labels: BigInt64Array.from([0n, 2n]), head }, { batch: 2, samples: 8, eps: 1e-2, floor: 1e-4, floorRel: 0.05, largest: true });
    console.log('mnv2 two-block', 'loss', r.loss.toFixed(4), 'max rel', r.maxRel.toExponential(2), 'kinks', r.kinks, '/', r.checked + r.kinks, `${(performance.now() - t0).toFixed(0)} ms`);
    for (const [k, v] of Object.entries(r.perWeight)) console.log(`  ${k}: max ${v.maxRel.toExponential(1)} median ${v.medianRel.toExponential(1)} (${v.checked} checked, ${v.kinks} kinks)`);
    expect(Object.keys(r.perWeight).length).toBe(10);
    expect(r.maxRel).toBeLessThan(5e-2);
    expect(r.kinks).toBeLessThanOrEqual(Math.ceil(r.checked / 4));
  });
});
