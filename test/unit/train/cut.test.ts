// Cutting the fp32 MobileNetV2 into frozen part + tail: block boundaries, explicit cut tensors,
// errors, and frozen → tail reproducing the full model's pooled features.

import { describe, expect, it } from 'vitest';
import { cutModel, resolveCut, tailBlocks } from '../../../runtime/train/graph/cut.js';
import { shared } from '../../helpers.js';
import { EMBEDDING, loadBackbone, preprocess, runBatched } from './mnv2-helpers.js';

describe('cut', () => {
  const model = loadBackbone();

  it('lists block boundaries from the embedding backwards', () => {
    const blocks = tailBlocks(model, EMBEDDING);
    // final 1×1 conv, then inverted-residual blocks (Add outputs, or the linear projection of a block without residual)
    expect(blocks.slice(0, 5).map((b) => b.tensor)).toEqual(['624', '452', '443', '597', '426']);
    expect(blocks.map((b) => b.blocks)).toEqual(blocks.map((_, i) => i + 1));
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.parameters).toBeGreaterThan(blocks[i - 1]!.parameters);
    expect(blocks[0]!.parameters).toBe(320 * 1280 + 1280);
    expect(blocks[blocks.length - 1]!.tensor).toBe('input'); // the whole backbone
    expect(resolveCut(model, EMBEDDING, 2)).toBe('452');
  });

  it('accepts a single-path tensor by name and refuses others', () => {
    expect(resolveCut(model, EMBEDDING, '621')).toBe('621'); // inside the last block, still single-path (after the depthwise conv)
    expect(() => resolveCut(model, EMBEDDING, '609')).toThrow(/not a single-path tensor/); // inside a residual block: the Add also reads 443
    expect(() => resolveCut(model, EMBEDDING, 0)).toThrow(/unfreeze/);
    expect(() => resolveCut(model, EMBEDDING, 999)).toThrow(/unfreeze/);
    expect(() => tailBlocks(model, 'nope')).toThrow(/embedding tensor "nope"/);
  });

  it('frozen part then tail reproduces the full model features', async () => {
    const cut = cutModel(model, '443', EMBEDDING);
    expect(cut.frozen.graph.output.map((o) => o.name)).toEqual(['443']);
    expect(cut.tail.graph.input.map((i) => i.name)).toEqual(['443']);
    expect(cut.frozen.graph.node.length + cut.tail.graph.node.length).toBe(model.graph.node.length - 2); // the classifier MatMul + Add are not on the way to the features
    const x = await preprocess([shared('camera', 'winml_cat.jpg')]);
    const full = await runBatched(model, 'input', EMBEDDING, x, [3, 224, 224]);
    const acts = await runBatched(cut.frozen, 'input', '443', x, [3, 224, 224]);
    const viaTail = await runBatched(cut.tail, '443', EMBEDDING, acts, cut.cutShape.slice(1) as number[]);
    let maxDiff = 0;
    for (let i = 0; i < full.length; i++) maxDiff = Math.max(maxDiff, Math.abs(full[i]! - viaTail[i]!));
    expect(maxDiff).toBeLessThan(1e-4);
  });
});
