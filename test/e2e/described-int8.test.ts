// "Is it described?" and "is it int8?", one rule each (core/model-card.ts DESCRIPTION_NEEDS,
// onnx/quantized.ts), end to end: quantize refuses a model whose preprocessing is assumed unless
// --allow-assumed (flags that describe it are enough), and Teachable Machine's int8 model.tflite, whose
// pooled features reach the head through a QDQ pair, fine-tunes (it used to crash inside the head's
// GlobalAveragePool node) directly and through `edgetune import`, while --unfreeze refuses it as int8.

import { copyFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonLines, runCli, shared, tempDir } from '../helpers.js';

const env = { EDGETUNE_CACHE: tempDir('edgetune-rules-cache-'), EDGETUNE_OFFLINE: '1' };
const work = tempDir('edgetune-rules-');
const TM_INT8 = shared('models', 'teachable-machine', 'fruit-tflite', 'model.tflite');
const catsDogs = shared('datasets', 'cats_dogs-dev');

describe('is it described? (quantize)', () => {
  const copy = path.join(work, 'net.onnx'); // SqueezeNet 1.1 under a name no registry entry knows
  const calib = ['--calib', shared('camera', 'slow_traffic_frames'), '--calib-count', '4', '--correction-images', '0'];

  it('refuses assumed preprocessing, naming the fields and the ways to describe them; writes nothing', async () => {
    copyFileSync(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'), copy);
    const out = path.join(work, 'refused.onnx');
    const r = await runCli(['quantize', '--model', copy, ...calib, '--out', out], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `edgetune quantize: ${copy}: nothing describes its preprocess.colorOrder, preprocess.range, preprocess.mean, preprocess.std, preprocess.resize, preprocess.crop; quantization calibrates on images preprocessed that way, so give them with flags (--color-order, --range, --mean, --std, --resize, --crop, --size), a card file (${path.join(work, 'net.card.json')}) or edgetune card, or pass --allow-assumed`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('quantizes with --allow-assumed (saying what it assumed), or when flags describe the preprocessing', async () => {
    const a = await runCli(['quantize', '--model', copy, ...calib, '--out', path.join(work, 'assumed.onnx'), '--allow-assumed'], { env });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toContain('nothing describes some of this model; assumed layout NCHW 224x224 from the input shape; RGB, x/255, ImageNet mean/std');
    // SqueezeNet's real preprocessing (MODELS.md): BGR, 0..255 minus the Caffe mean
    const flags = ['--color-order', 'BGR', '--range', '0,255', '--mean', '104,117,123', '--std', '1,1,1', '--resize', 'cover', '--crop', '1', '--output-kind', 'probabilities'];
    const d = await runCli(['quantize', '--model', copy, ...calib, '--out', path.join(work, 'described.onnx'), ...flags], { env });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).not.toMatch(/preprocess|ImageNet mean/);
  });
});

describe("is it int8? (Teachable Machine's int8 model.tflite)", () => {
  it('fine-tunes directly and through edgetune import (its pooled features are seen through their QDQ pair, not pooled again), and eval agrees', async () => {
    const imported = path.join(work, 'tm-int8.onnx');
    expect((await runCli(['import', TM_INT8, '--out', imported], { env })).code).toBe(0);
    for (const [base, name] of [
      [TM_INT8, 'direct.onnx'],
      [imported, 'via-import.onnx'],
    ] as const) {
      const out = path.join(work, name);
      const r = await runCli(['finetune', path.join(catsDogs, 'train'), '--val', path.join(catsDogs, 'val'), '--model', base, '--augment', 'none', '--out', out, '--json'], { env, timeoutMs: 170_000 });
      expect(r.code, r.stderr).toBe(0);
      const rep = JSON.parse(r.stdout) as { accuracy: number; labels: string[] };
      expect(rep.labels).toEqual(['cats', 'dogs']);
      // measured: 0.825 on the 40 validation photos both ways (the float model_unquant.tflite: 0.875); chance 0.5
      expect(rep.accuracy).toBeGreaterThanOrEqual(0.75);
      const e = await runCli(['eval', path.join(catsDogs, 'val'), '--model', out, '--json'], { env });
      expect(e.code, e.stderr).toBe(0);
      expect((JSON.parse(e.stdout) as { accuracy: number }).accuracy).toBeCloseTo(rep.accuracy, 5);
      const c = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', out, '--json'], { env });
      expect(jsonLines<{ top: { label: string }[] }>(c.stdout)[0]!.top[0]!.label).toBe('dogs');
    }
  });

  it('--unfreeze refuses it as int8 by the same rule, before any work', async () => {
    const r = await runCli(['finetune', path.join(catsDogs, 'train'), '--model', TM_INT8, '--unfreeze', '1', '--out', path.join(work, 'x.onnx')], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--unfreeze trains the backbone's float weights, and model.tflite is int8: use its fp32 twin");
  });
});
