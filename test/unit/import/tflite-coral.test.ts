// TFLite import of the real Coral models (uint8 per-tensor quantized): the converted QDQ ONNX
// against LiteRT.js (the reference TFLite runtime, wasm, in Node) on photos and on hymenoptera/val;
// onnxruntime's optimiser must fuse the QDQ convolutions into QLinearConv; the embedding extractor's
// 1024-d output must match. One conversion and one oracle per model for the whole file.

import { describe, it, expect, beforeAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { shared, tempDir } from '../../helpers.js';
import { importTflite, type ImportResult } from '../../../runtime/onnx/import/index.js';
import { decodeModel } from '../../../runtime/onnx/index.js';
import { argmax, maxAbsDiff, ortSession, outputQuantization, photoPixels, runOrt, tfliteOracle, toNchw, type TfliteOracle } from './oracles.js';

const V2 = shared('models', 'tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite');
const V1_EMBED = shared('models', 'tflite', 'coral_mobilenet_v1_1.0_224_quant_embedding_extractor.tflite');
const LABELS = readFileSync(shared('models', 'tflite', 'coral_imagenet_labels.txt'), 'utf8');

/** (x − 128)/128 NCHW, the float input the card describes for Coral's uint8 input. */
const coralInput = (px: Uint8Array) => toNchw(px, 224, 128, 128);

describe('TFLite import: Coral MobileNetV2 1.0 224 quant (uint8)', () => {
  let conv: ImportResult;
  let session: ort.InferenceSession;
  let oracle: TfliteOracle;
  beforeAll(async () => {
    conv = importTflite(new Uint8Array(readFileSync(V2)), { labels: LABELS });
    session = await ortSession(conv.model);
    oracle = await tfliteOracle(V2, outputQuantization(V2));
  });

  it('describes the file: uint8 input 1/128 zp 128 ⇒ (x − 128)/128, 1000 labels after background, softmax output, pooled embedding', () => {
    const c = conv.card;
    expect(c.layer.inputName).toBe('input');
    expect(c.sourceInput).toMatchObject({ shape: [1, 224, 224, 3], dtype: 'uint8', quantization: { scale: 0.0078125, zeroPoint: 128 } });
    expect(c.layer.preprocess).toEqual({
      width: 224,
      height: 224,
      channels: 3,
      layout: 'NCHW',
      colorOrder: 'RGB',
      range: [0, 255],
      mean: [128, 128, 128],
      std: [128, 128, 128],
      resize: 'cover',
      crop: 1,
      dtype: 'float32',
    });
    expect(c.preprocessSource).toBe('input-quantization');
    // the label rule (core/labels.ts): 1001 names for 1001 outputs, "background" is label 0, offset 0
    expect(c.layer.labels).toHaveLength(1001);
    expect(c.layer.labels!.slice(0, 2)).toEqual(['background', 'tench, Tinca tinca']);
    expect(c.layer.labelOffset).toBe(0);
    expect([c.layer.outputName, c.output, c.layer.outputKind]).toEqual(['MobilenetV2/Predictions/Softmax', { dims: [1, 1001], extractor: false }, 'probabilities']);
    expect(c.layer.embedding).toMatchObject({ tensor: 'MobilenetV2/Logits/AvgPool', dims: 1280 });
    // full-integer: its activations are int8 too (QDQ pairs onnxruntime fuses), not a dynamic-range model's float ones
    expect([c.precision, c.activations]).toEqual(['int8', 'int8']);
    expect(session.inputNames).toEqual(['input']);
  });

  it('gets the three photos right (Coral index = ImageNet class + 1) and agrees with LiteRT', async () => {
    const photos: [string, number][] = [
      ['winml_dog.jpg', 207],
      ['hwacc_imagenet_finch.jpeg', 12],
      ['winml_hummingbird.jpg', 94],
    ];
    for (const [file, cls] of photos) {
      const px = await photoPixels(shared('camera', file), 224);
      const ours = await runOrt(session, coralInput(px), [1, 3, 224, 224]);
      const ref = await oracle.run(px, [1, 224, 224, 3]);
      expect(argmax(ours), file).toBe(cls + 1);
      expect(argmax(ref), file).toBe(cls + 1);
      console.log(`coral v2 ${file}: ours p=${ours[cls + 1]!.toFixed(4)} LiteRT p=${ref[cls + 1]!.toFixed(4)} max |Δp| ${maxAbsDiff(ours, ref).toFixed(4)}`);
      // measured: max |Δp| 0.0000 on all three (bit-identical); one output step (1/256) allowed
      expect(maxAbsDiff(ours, ref), file).toBeLessThanOrEqual(1 / 256);
    }
  });

  // Measured on all 153 images: 153/153 agree, max |Δp| 0.0039. The test runs every second image (77)
  // to keep CI time modest (≈ 35 ms per image for both runtimes, several times that on a busy machine).
  it('top-1 agreement with LiteRT on hymenoptera/val ≥ 0.99 (every second of the 153 images)', async () => {
    const all: string[] = [];
    for (const cls of ['ants', 'bees']) {
      const dir = shared('datasets', 'hymenoptera', 'val', cls);
      for (const f of readdirSync(dir).sort()) all.push(path.join(dir, f));
    }
    expect(all.length).toBe(153);
    const files = all.filter((_, i) => i % 2 === 0);
    let agree = 0;
    let maxDiff = 0;
    for (const f of files) {
      const px = await photoPixels(f, 224);
      const ours = await runOrt(session, coralInput(px), [1, 3, 224, 224]);
      const ref = await oracle.run(px, [1, 224, 224, 3]);
      if (argmax(ours) === argmax(ref)) agree++;
      maxDiff = Math.max(maxDiff, maxAbsDiff(ours, ref));
    }
    const rate = agree / files.length;
    console.log(`coral v2 vs LiteRT on hymenoptera/val: top-1 agreement ${agree}/${files.length} = ${rate.toFixed(4)}, max |Δp| ${maxDiff.toFixed(4)}`);
    // measured: 77/77 = 1.0000, max |Δp| 0.0000 (on all 153: 153/153, max |Δp| 0.0039 = one output step)
    expect(rate).toBeGreaterThanOrEqual(0.99);
  });

  it('onnxruntime fuses the QDQ convolutions: QLinearConv, no float Conv left', async () => {
    const optimized = path.join(tempDir('edgetune-import-'), 'coral-v2-opt.onnx');
    await ortSession(conv.model, { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized });
    const g = decodeModel(new Uint8Array(readFileSync(optimized))).graph;
    const count = (op: string) => g.node.filter((n) => n.opType === op).length;
    // 36 CONV_2D + 17 DEPTHWISE_CONV_2D in the file
    expect(count('QLinearConv')).toBe(53);
    expect(count('Conv')).toBe(0);
    expect(count('FusedConv')).toBe(0);
  });
});

describe('TFLite import: labels packed in the file', () => {
  it('without a labels option, the Coral model’s associated imagenet_labels.txt (a zip after the flatbuffer) gives the labels', () => {
    const { card } = importTflite(new Uint8Array(readFileSync(V2)));
    expect(card.layer.labels).toHaveLength(1001);
    expect(card.layer.labels!.slice(0, 2)).toEqual(['background', 'tench, Tinca tinca']);
    expect(card.layer.labelOffset).toBe(0);
    expect(card.notes).toContain("labels from the file's associated file imagenet_labels.txt");
  });
});

describe('TFLite import: Coral MobileNetV1 embedding extractor (uint8)', () => {
  it('outputs the 1024-d pooled features as LiteRT does', async () => {
    const { model, card } = importTflite(new Uint8Array(readFileSync(V1_EMBED)));
    // a feature extractor: the output is the embedding, and its output kind 'auto' (no class scores)
    expect([card.layer.outputName, card.output, card.layer.outputKind]).toEqual(['MobilenetV1/Logits/AvgPool_1a/AvgPool', { dims: [1, 1024, 1, 1], extractor: true }, 'auto']);
    expect(card.layer.embedding).toMatchObject({ tensor: 'MobilenetV1/Logits/AvgPool_1a/AvgPool', dims: 1024 });
    const session = await ortSession(model);
    const oracle = await tfliteOracle(V1_EMBED, outputQuantization(V1_EMBED));
    let worst = 0;
    for (const file of ['winml_dog.jpg', 'hwacc_imagenet_finch.jpeg', 'winml_hummingbird.jpg']) {
      const px = await photoPixels(shared('camera', file), 224);
      const ours = await runOrt(session, coralInput(px), [1, 3, 224, 224]);
      const ref = await oracle.run(px, [1, 224, 224, 3]);
      expect(ours).toHaveLength(1024);
      worst = Math.max(worst, maxAbsDiff(ours, ref));
    }
    console.log(`coral v1 embedding vs LiteRT: max |Δ| ${worst.toFixed(4)} (output step 0.0235)`);
    // measured: max |Δ| 0.0000 over the three photos (bit-identical); one output step (0.02353) allowed
    expect(worst).toBeLessThanOrEqual(0.0236);
  });
});
