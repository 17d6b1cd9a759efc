// A model card's labels are checked by the one label rule (runtime/core/labels.ts decideLabels), wherever
// they come from: a `<model>.card.json` beside the model, the embedded `edgetune.model` metadata, or
// flags. A count that does not cover the output, an empty label, and (for a multilabel or regression
// model, whose outputs are read by name) a repeated label are refused naming the model, the source and
// its file; a label that is not a string is refused by the card's schema with the file and the path.
// Real model: mnist_winml.onnx (10 outputs, MODELS.md).

import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeModel } from '../../../models/describe.js';
import { cardFromBytes } from '../../../runtime/classify/describe.js';
import { METADATA_KEY } from '../../../runtime/core/metadata.js';
import type { PreprocessSpec } from '../../../runtime/core/preprocess-spec.js';
import { decodeModel, encodeModel } from '../../../runtime/onnx/model.js';
import { runCli, shared, tempDir } from '../../helpers.js';

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

describe('labels in a card file beside the model', () => {
  const dir = tempDir('edgetune-card-labels-');
  const model = path.join(dir, 'm.onnx');
  const cardFile = path.join(dir, 'm.card.json');
  beforeAll(() => copyFileSync(shared('models', 'mnist_winml.onnx'), model));
  /** The message describeModel refuses the model with, with `card` as its card file. */
  const refusal = async (card: unknown): Promise<string> => {
    writeFileSync(cardFile, JSON.stringify(card));
    return describeModel(model).then(
      () => 'described',
      (err: Error) => err.message,
    );
  };

  it('a good list describes the model (the control)', async () => {
    writeFileSync(cardFile, JSON.stringify({ labels: DIGITS.map((d) => `digit ${d}`) }));
    const { card } = await describeModel(model);
    expect(card.labels[7]).toBe('digit 7');
    expect(card.sources.labels).toBe('card-file');
    // the reason the kiosk page receives names no file
    expect(card.labelReason).toBe('10 labels (from card-file) for 10 outputs: label i is output i (offset 0)');
  });

  it('a count that does not cover the output names the model, the card file and both numbers', async () => {
    // before: `…/m.onnx: 3 labels (from card-file) for 10 outputs: …`, the card file unnamed
    expect(await refusal({ labels: ['0', '1', '2'] })).toBe(
      `${model}: 3 labels (from card-file ${cardFile}) for 10 outputs: a label list has one name per output, or one fewer when output 0 is a background class`,
    );
    expect(await refusal({ labels: DIGITS.slice(1), labelOffset: 0 })).toBe(
      `${model}: label offset 0 (from card-file ${cardFile}) + 9 labels (from card-file ${cardFile}) = 9, but the model has 10 outputs; label i names output i + offset, so the list must cover the output exactly`,
    );
  });

  it('an empty or all-space label is refused (before: classify printed " (0.0%)")', async () => {
    expect(await refusal({ labels: [...DIGITS.slice(0, 9), ''] })).toBe(`${model}: labels[9] (from card-file ${cardFile}) is empty: every label names an output`);
    expect(await refusal({ labels: ['0', '  ', ...DIGITS.slice(2)] })).toBe(`${model}: labels[1] (from card-file ${cardFile}) is only spaces ("  "): every label names an output`);
  });

  it("a repeated label is refused for a regression or multilabel model (outputs read by name), kept for a classifier (Coral's two \"crane\"s)", async () => {
    const twice = [...DIGITS.slice(0, 9), '3'];
    expect(await refusal({ task: 'regression', labels: twice })).toBe(
      `${model}: labels[3] and labels[9] (from card-file ${cardFile}) are both "3": a regression model's outputs are read by their labels' names, so no two may be the same`,
    );
    expect(await refusal({ task: 'multilabel', labels: twice })).toBe(
      `${model}: labels[3] and labels[9] (from card-file ${cardFile}) are both "3": a multilabel model's outputs are read by their labels' names, so no two may be the same`,
    );
    writeFileSync(cardFile, JSON.stringify({ labels: twice }));
    expect((await describeModel(model)).card.labels[9]).toBe('3');
  });

  it('a label that is not a string, or labels that are not a list, are refused by the schema with the file', async () => {
    expect(await refusal({ labels: [...DIGITS.slice(0, 9), 9] })).toBe(`${cardFile}: labels[9]: expected string but received 9`);
    expect(await refusal({ labels: 10 })).toBe(`${cardFile}: labels: expected Array but received 10`);
  });

  it('flags go through the same rule (a regression model described by its card file, labels from --labels)', async () => {
    writeFileSync(cardFile, JSON.stringify({ task: 'regression' }));
    const labels = path.join(dir, 'names.json');
    writeFileSync(labels, JSON.stringify(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'a']));
    const r = await runCli(['classify', shared('camera', 'winml_mnist_28.png'), '--model', model, '--labels', labels]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`edgetune classify: ${model}: labels[0] and labels[9] (from flags) are both "a": a regression model's outputs are read by their labels' names, so no two may be the same\n`);
  });
});

describe('labels in the embedded edgetune.model metadata', () => {
  let bytes: Uint8Array;
  let preprocess: PreprocessSpec;
  beforeAll(async () => {
    const d = await describeModel(shared('models', 'mnist_winml.onnx'));
    bytes = d.bytes;
    preprocess = d.card.preprocess;
  });
  /** mnist_winml.onnx carrying `info` as its edgetune.model entry. */
  const embedding = (info: Record<string, unknown>): Uint8Array => {
    const m = decodeModel(bytes);
    m.metadataProps = [...m.metadataProps.filter((p) => p.key !== METADATA_KEY), { key: METADATA_KEY, value: JSON.stringify({ version: 1, preprocess, outputKind: 'auto', ...info }) }];
    return encodeModel(m);
  };
  const refusal = (info: Record<string, unknown>): string => {
    try {
      cardFromBytes(embedding(info), { id: 'digits.onnx' });
      return 'described';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('refuses a count, an empty label, a repeated regression label and a non-string label, naming the model', () => {
    expect(refusal({ labels: DIGITS })).toBe('described');
    expect(refusal({ labels: DIGITS.slice(0, 7) })).toBe('digits.onnx: 7 labels (from embedded) for 10 outputs: a label list has one name per output, or one fewer when output 0 is a background class');
    expect(refusal({ labels: ['', ...DIGITS.slice(1)] })).toBe('digits.onnx: labels[0] (from embedded) is empty: every label names an output');
    expect(refusal({ task: 'regression', labels: [...DIGITS.slice(0, 9), '0'] })).toBe(
      `digits.onnx: labels[0] and labels[9] (from embedded) are both "0": a regression model's outputs are read by their labels' names, so no two may be the same`,
    );
    expect(refusal({ labels: [...DIGITS.slice(0, 9), null] })).toBe('digits.onnx: edgetune.model: labels[9]: expected string but received null');
  });
});
