// Fine-tuning on backbones beyond the shipped int8 MobileNetV2: an fp16 backbone (SqueezeNet fp16, fed
// float16, its float32 head behind a Cast) trains like its fp32 twin; MNIST, whose embedding is an
// unpooled 16×4×4 feature map (flattened to 256), on digits rendered here in its own input format;
// a model whose weights live in external data, exported as one self-contained file; and a registry
// model under an unknown name described by a card file, which fine-tunes exactly like the original.

import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FinetuneReport } from '../../runtime/train/node/finetune.js';
import { createSession } from '../../runtime/session/session.js';
import { runCli, shared, subsetDataset, tempDir } from '../helpers.js';

const env = { EDGETUNE_CACHE: tempDir('edgetune-bb-cache-') };
const work = tempDir('edgetune-bb-');

async function finetune(args: string[]): Promise<FinetuneReport> {
  const r = await runCli(['finetune', ...args, '--augment', 'none', '--json'], { env, timeoutMs: 170_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as FinetuneReport;
}


describe('backbones', () => {
  let train: string;
  let val: string;
  beforeAll(() => {
    train = subsetDataset(path.join(work, 'hym-train-30'), ['datasets', 'hymenoptera', 'train'], ['ants', 'bees'], 30);
    val = subsetDataset(path.join(work, 'hym-val-30'), ['datasets', 'hymenoptera', 'val'], ['ants', 'bees'], 30);
  });

  it('squeezenet1.1-fp16 fine-tunes like its fp32 twin (float16 in, float32 head), and the export loads in bare onnxruntime', async () => {
    const [h16, h32] = [await finetune([train, '--val', val, '--model', 'squeezenet1.1-fp16', '--out', path.join(work, 'sq16.onnx')]), await finetune([train, '--val', val, '--model', 'squeezenet1.1', '--out', path.join(work, 'sq32.onnx')])];
    // measured on the full hymenoptera set: 0.882 both; here (30 + 30 per class) both agree within one image
    expect(Math.abs(h16.accuracy! - h32.accuracy!)).toBeLessThanOrEqual(1 / 60 + 1e-9);
    expect(h16.accuracy!).toBeGreaterThanOrEqual(0.8);
    const s = await createSession(path.join(work, 'sq16.onnx'), { providers: ['cpu'] });
    expect(s.inputs[0]!.type).toBe('float16');
    expect(s.outputs.find((o) => o.name === 'probabilities')?.type).toBe('float32');
    await s.dispose();
  });

  it('mnist fine-tunes on digits rendered in its input format (white on black, 28×28): its 16×4×4 feature map flattened', async () => {
    const root = path.join(work, 'digits');
    for (const split of ['train', 'val'] as const) {
      for (const d of ['3', '7']) {
        mkdirSync(path.join(root, split, `digit${d}`), { recursive: true });
        for (let i = 0; i < (split === 'train' ? 12 : 6); i++) {
          const k = i + (split === 'val' ? 100 : 0);
          const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28" fill="black"/><text x="${9 + (k % 3)}" y="${21 + ((k >> 1) % 3)}" font-family="DejaVu Sans" font-weight="${400 + (k % 4) * 100}" font-size="${18 + (k % 5) * 2}" fill="white">${d}</text></svg>`;
          await sharp(Buffer.from(svg)).png().toFile(path.join(root, split, `digit${d}`, `${k}.png`));
        }
      }
    }
    const rep = await finetune([path.join(root, 'train'), '--val', path.join(root, 'val'), '--model', 'mnist', '--out', path.join(work, 'digits.onnx')]);
    // measured: 0.917 (11 of 12 rendered validation digits); the prototype baseline 1.000
    expect(rep.accuracy!).toBeGreaterThanOrEqual(0.83);
    const e = await runCli(['eval', path.join(root, 'val'), '--model', path.join(work, 'digits.onnx'), '--json'], { env });
    expect((JSON.parse(e.stdout) as { accuracy: number }).accuracy).toBeCloseTo(rep.accuracy!, 6);
  });

  it('a model with external data fine-tunes from another working directory and is exported as one file', async () => {
    const out = path.join(tempDir('edgetune-ext-out-'), 'flowers.onnx');
    const r = await runCli(['finetune', shared('faults', 'external-data', 'ds'), '--model', shared('faults', 'external-data', 'model_ext.onnx'), '--augment', 'none', '--val-split', '0', '--out', out], { env, cwd: tempDir('edgetune-cwd-') });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(path.dirname(out)).filter((f) => f.endsWith('.onnx'))).toEqual(['flowers.onnx']);
    const s = await createSession(out, { providers: ['cpu'] });
    expect(s.outputs.map((o) => o.name)).toContain('probabilities');
    await s.dispose();
  });

  it('a registry model under an unknown name, described by a card file, fine-tunes exactly like the original', async () => {
    const dir = path.join(work, 'custom');
    mkdirSync(dir, { recursive: true });
    copyFileSync(shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx'), path.join(dir, 'v1.onnx'));
    writeFileSync(
      path.join(dir, 'v1.card.json'),
      JSON.stringify({ preprocess: { colorOrder: 'RGB', range: [-1, 1], mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 0.875 }, labelOffset: 1, outputKind: 'probabilities', embedding: { tensor: 'MobilenetV1/Logits/AvgPool_1a/AvgPool', dims: 256 } }),
    );
    const [a, b] = [await finetune([train, '--val', val, '--model', path.join(dir, 'v1.onnx'), '--out', path.join(work, 'custom.onnx')]), await finetune([train, '--val', val, '--model', 'mobilenetv1-0.25-128', '--out', path.join(work, 'registry.onnx')])];
    expect(a.accuracy).toBe(b.accuracy);
    expect(a.confusion).toEqual(b.confusion);
    expect(a.warnings.filter((w) => /assumed/.test(w))).toEqual([]);
  });
});
