// Cutting the fp32 MobileNetV2 into frozen part + tail: block boundaries, explicit cut tensors,
// errors, and frozen → tail reproducing the full model's pooled features.

import { describe, expect, it } from 'vitest';
import { cutModel, resolveCut, tailBlocks } from '../../../runtime/train/graph/cut.js';
import { readFileSync } from 'node:fs';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { embeddingModel, findCut } from '../../../runtime/train/export.js';
import { createRng } from '../../../runtime/core/rng.js';
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

describe('cut: SqueezeNet 1.1 (fire modules end at their Concat) and MobileNetV1 (a plain chain)', () => {
  const cases = [
    // fire9's squeeze + both expands: 64·512 + 64 + 256·64 + 256 + 256·64·9 + 256 = 197 184 parameters
    { file: 'squeezenet1.1_fp32_from_winml_fp16.onnx', embedding: 'fire9/concat_1', per: [3, 224, 224], blocks: 8, first: ['fire8/concat_1', 'fire7/concat_1', 'fire6/concat_1', 'fire5/concat_1'], parameters: 197_184, dims: 512 },
    // Conv2d_13's depthwise + pointwise pair: 3·3·256 + 256 + 256·256 + 256 = 68 352 parameters; 13 pairs + Conv2d_0
    { file: 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx', embedding: 'MobilenetV1/Logits/AvgPool_1a/AvgPool', per: [3, 128, 128], blocks: 14, first: ['MobilenetV1/MobilenetV1/Conv2d_12_pointwise/Relu6', 'MobilenetV1/MobilenetV1/Conv2d_11_pointwise/Relu6'], parameters: 68_352, dims: 256 },
  ];
  it.each(cases)('$file: blocks, and frozen part then tail (pooled and flattened as the export) reproduce the embedding', async (c) => {
    const m = decodeModel(readFileSync(shared('models', c.file)));
    const blocks = tailBlocks(m, c.embedding);
    expect(blocks.length).toBe(c.blocks);
    expect(blocks.slice(0, c.first.length).map((b) => b.tensor)).toEqual(c.first);
    expect(blocks[0]!.parameters).toBe(c.parameters);
    expect(blocks[blocks.length - 1]!.tensor).toBe(m.graph.input.find((i) => !m.graph.initializer.some((t) => t.name === i.name))!.name);
    const spec = findCut(m, c.embedding);
    const cut = cutModel(m, blocks[1]!.tensor, c.embedding, { pool: spec.pool });
    expect(cut.embeddingShape).toEqual(['N', c.dims]);
    const rng = createRng(3, c.file);
    const x = Float32Array.from({ length: 2 * c.per.reduce((a, b) => a * b, 1) }, () => rng.normal() * 50);
    const full = await runBatched(embeddingModel(m, spec), m.graph.input.at(-1)!.name!, 'edgetune_embedding', x, c.per, 1);
    const acts = await runBatched(cut.frozen, cut.frozen.graph.input.at(-1)!.name!, cut.cut, x, c.per, 1);
    const viaTail = await runBatched(cut.tail, cut.cut, cut.embedding, acts, cut.cutShape.slice(1) as number[]);
    expect(viaTail.length).toBe(2 * c.dims);
    let maxDiff = 0;
    let scale = 0;
    for (let i = 0; i < full.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(full[i]! - viaTail[i]!));
      scale = Math.max(scale, Math.abs(full[i]!));
    }
    expect(scale).toBeGreaterThan(0);
    expect(maxDiff / scale).toBeLessThan(1e-5); // the same kernels on the same values: measured 0
  });
});
