// A regression model's outputs are values, read as they are: its card never assumes a classifier's
// output kind. Before, a regression model whose card file did not state outputKind was told
// "softmax applied unless outputs already sum to 1" (in quantize --allow-assumed's warning, card
// --allow-assumed's list, inspect and classify) and classify did apply it: the values came out as a
// distribution summing to 1. Real model: mnist_winml.onnx (10 outputs, raw scores; MODELS.md) described
// as a 10-value regression model by a card file beside a copy.

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quantizationCard } from '../../../calibration/prepare.js';
import { describeModel } from '../../../models/describe.js';
import { resolveModel } from '../../../models/loader.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { runCli, shared, tempDir } from '../../helpers.js';

const DIGIT = shared('camera', 'winml_mnist_28.png');
const dir = tempDir('edgetune-regression-card-');
const model = path.join(dir, 'digits.onnx');
copyFileSync(shared('models', 'mnist_winml.onnx'), model);
const card = (layer: object) => writeFileSync(path.join(dir, 'digits.card.json'), JSON.stringify(layer));
const NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
// what is assumed of mnist_winml.onnx when only the task (and names) are said: its preprocessing
const PREPROCESSING = ['layout NCHW 28x28 from the input shape', 'grayscale 0..1', 'shorter side resized and centre-cropped'];

describe('a regression model whose card does not state the output kind', () => {
  it('assumes nothing about its output: the layer that says "regression" says its values are read as they are', async () => {
    card({ task: 'regression', labels: NAMES });
    const { card: c } = await describeModel(model);
    expect(c.outputKind).toBe('probabilities');
    expect(c.sources.outputKind).toBe('card-file');
    // before: [...PREPROCESSING, 'softmax applied unless outputs already sum to 1']
    expect(c.assumptions).toEqual(PREPROCESSING);
    // unnamed values are said to be values (before: "10 unnamed classes")
    card({ task: 'regression' });
    expect((await describeModel(model)).card.assumptions).toEqual([...PREPROCESSING, '10 unnamed values (named by their index, 0 to 9)']);
  });

  it("quantize --allow-assumed's warning lists only what was assumed", async () => {
    card({ task: 'regression', labels: NAMES });
    const warnings: string[] = [];
    await quantizationCard(await resolveModel(model), new Uint8Array(readFileSync(model)), { allowAssumed: true, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([`${model}: nothing describes some of this model; assumed ${PREPROCESSING.join('; ')} (edgetune inspect shows each field's source)`]);
  });

  it('classify reads the values as the model gives them (before: softmaxed into a distribution summing to 1)', async () => {
    card({ task: 'regression', labels: NAMES });
    const clf = await loadClassifier(model, { providers: ['cpu'] });
    // the same model told its outputs are read as they are (outputKind probabilities: no softmax, before too)
    const raw = await loadClassifier(model, { providers: ['cpu'], overrides: { outputKind: 'probabilities' } });
    const [r, want] = [await clf.classify(DIGIT), await raw.classify(DIGIT)];
    await Promise.all([clf.dispose(), raw.dispose()]);
    if (r.reading.task !== 'regression' || want.reading.task !== 'regression') throw new Error(`read as ${r.reading.task}`);
    expect(r.reading.values).toEqual(want.reading.values);
    // the raw score of "eight" (the digit in the photo) is 23.0 (measured); a softmax made it 1.0000
    expect(r.reading.values.find((v) => v.name === 'eight')!.value).toBeCloseTo(23.0, 1);
  });

  it("classify's note names only what was assumed, and no missing card file beside one", async () => {
    card({ task: 'regression', labels: NAMES });
    const r = await runCli(['classify', DIGIT, '--model', model, '--json']);
    expect(r.code, r.stderr).toBe(0);
    // before: "edgetune: digits.onnx: nothing describes some of this model (no registry entry, card file or flags); assumed …; softmax applied unless outputs already sum to 1"
    expect(r.stderr).toBe(`edgetune: digits.onnx: nothing describes some of this model; assumed ${PREPROCESSING.join('; ')}\n`);
    expect((JSON.parse(r.stdout) as { values: { name: string; value: number }[] }).values[8]).toEqual({ name: 'eight', value: expect.closeTo(23.0, 1) });
  });

  it('edgetune card --allow-assumed embeds and lists only the preprocessing it assumed', async () => {
    card({ task: 'regression' });
    const out = path.join(dir, 'digits-card.onnx');
    const r = await runCli(['card', model, '--allow-assumed', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    // before: "10 named values" (no card names them: they are named by their index)
    expect(r.stdout).toBe(`edgetune card: wrote ${out} (10 values, 28x28 GRAY, regression)\n`);
    // before: "…; 10 unnamed classes; softmax applied unless outputs already sum to 1"
    expect(r.stderr).toContain(`edgetune card: embedded assumed values: ${[...PREPROCESSING, '10 unnamed values (named by their index, 0 to 9)'].join('; ')}\n`);
    // a card naming them: named values
    card({ task: 'regression', labels: NAMES });
    const named = await runCli(['card', model, '--allow-assumed', '--out', out]);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toBe(`edgetune card: wrote ${out} (10 named values, 28x28 GRAY, regression)\n`);
  });
});
