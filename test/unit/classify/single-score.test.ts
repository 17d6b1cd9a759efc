// A classifier with one output value per image (a binary classifier's logit, as
// kamranakamal/Skin-Cancer-Classifier's model.onnx: … → Gemm → output [batch_size, 1]) was read as one
// class: the softmax of one value is 1, so every image printed "0 (100.0%)". It is now refused with how
// to describe it; described as a one-label multilabel model (a card file), its logit gets a sigmoid,
// not a softmax across labels (which also gave 100% whatever the image).

import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { shared, tempDir } from '../../helpers.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { DataType, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntAttribute } from '../../../runtime/onnx/graph.js';
import { encodeModel } from '../../../runtime/onnx/model.js';
import { loadClassifier } from '../../../runtime/classify/classifier.js';
import { toProbabilities } from '../../../runtime/classify/postprocess.js';

/**
 * input [1,3,8,8] → GlobalAveragePool → Flatten → Gemm (zero weights, bias `bias`) → output [1,1]: the
 * logit is `bias` for every image. `sigmoid`: a Sigmoid node after the Gemm makes `output` sigmoid(bias).
 */
function oneLogitModel(bias: number, sigmoid = false): Uint8Array {
  const gemm = makeNode('Gemm', ['flat', 'w', 'b'], [sigmoid ? 'logit' : 'output'], { name: 'classifier' });
  setIntAttribute(gemm, 'transB', 1);
  return encodeModel(
    makeModel(
      {
        node: [
          makeNode('GlobalAveragePool', ['input'], ['pooled'], { name: 'pool' }),
          makeNode('Flatten', ['pooled'], ['flat'], { name: 'flatten' }),
          gemm,
          ...(sigmoid ? [makeNode('Sigmoid', ['logit'], ['output'], { name: 'sigmoid' })] : []),
        ],
        name: 'one-logit',
        initializer: [makeTensor('w', DataType.FLOAT, [1, 3], [0, 0, 0]), makeTensor('b', DataType.FLOAT, [1], [bias])],
        input: [makeValueInfo('input', makeTensorType(DataType.FLOAT, [1, 3, 8, 8]))],
        output: [makeValueInfo('output', makeTensorType(DataType.FLOAT, [1, 1]))],
      },
      { opset: 13 },
    ),
  );
}

describe('a model with one output value per image', () => {
  const dir = tempDir('edgetune-single-score-');
  const photo = shared('camera', 'winml_dog.jpg');

  it('is refused as a classifier, saying how to describe it', async () => {
    const file = path.join(dir, 'binary.onnx');
    writeFileSync(file, oneLogitModel(0.4));
    let err: unknown;
    try {
      await loadClassifier(file, { threads: 1, providers: ['cpu'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EdgetuneError);
    expect((err as EdgetuneError).code).toBe('EMODEL');
    expect((err as EdgetuneError).message).toBe(
      `${file}: output "output" holds one value per image, not one score per class (as classes, its softmax is 100% for every image): for a binary classifier with one sigmoid or logit output, describe it as a one-label multilabel model in a card file beside it (${path.join(dir, 'binary.card.json')}: {"task": "multilabel", "labels": ["<the positive class>"], "outputKind": "logits"}, or "probabilities" when the graph ends in a sigmoid); the value is then that class's probability`,
    );
  });

  it('described as one-label multilabel, its logit becomes sigmoid(logit), on a real photo', async () => {
    const file = path.join(dir, 'described.onnx');
    writeFileSync(file, oneLogitModel(0.4));
    writeFileSync(path.join(dir, 'described.card.json'), JSON.stringify({ task: 'multilabel', labels: ['malignant'], outputKind: 'logits' }));
    const clf = await loadClassifier(file, { threads: 1, providers: ['cpu'] });
    try {
      const r = await clf.classify(photo);
      // sigmoid(0.4) = 0.598688; the softmax of the one value was 1
      expect(r.top[0]!.score).toBeCloseTo(1 / (1 + Math.exp(-0.4)), 6);
      expect(r.reading).toMatchObject({ task: 'multilabel', labels: [{ label: 'malignant' }] });
    } finally {
      await clf.dispose();
    }
    const below = path.join(dir, 'below.onnx');
    writeFileSync(below, oneLogitModel(-2));
    // no outputKind: the graph does not end in Sigmoid, so a logit
    writeFileSync(path.join(dir, 'below.card.json'), JSON.stringify({ task: 'multilabel', labels: ['malignant'] }));
    const clf2 = await loadClassifier(below, { threads: 1, providers: ['cpu'] });
    try {
      const r = await clf2.classify(photo);
      // sigmoid(−2) = 0.119: no label applies
      expect(r.top[0]!.score).toBeCloseTo(1 / (1 + Math.exp(2)), 6);
      expect(r.reading).toMatchObject({ task: 'multilabel', labels: [] });
    } finally {
      await clf2.dispose();
    }
  });

  it('no outputKind: a logit of 0.4 (inside [0, 1]) still gets its sigmoid; a graph ending in Sigmoid is read as probabilities', async () => {
    const file = path.join(dir, 'in-range.onnx');
    writeFileSync(file, oneLogitModel(0.4));
    writeFileSync(path.join(dir, 'in-range.card.json'), JSON.stringify({ task: 'multilabel', labels: ['malignant'] }));
    const clf = await loadClassifier(file, { threads: 1, providers: ['cpu'] });
    try {
      expect(clf.card.outputKind).toBe('logits');
      const r = await clf.classify(photo);
      // sigmoid(0.4) = 0.598688: on; read as a probability it was 0.4 (off)
      expect(r.top[0]!.score).toBeCloseTo(1 / (1 + Math.exp(-0.4)), 6);
      expect(r.reading).toMatchObject({ task: 'multilabel', labels: [{ label: 'malignant' }] });
    } finally {
      await clf.dispose();
    }
    const ends = path.join(dir, 'ends-in-sigmoid.onnx');
    writeFileSync(ends, oneLogitModel(0.4, true));
    writeFileSync(path.join(dir, 'ends-in-sigmoid.card.json'), JSON.stringify({ task: 'multilabel', labels: ['malignant'] }));
    const clf2 = await loadClassifier(ends, { threads: 1, providers: ['cpu'] });
    try {
      expect(clf2.card.outputKind).toBe('probabilities');
      expect(clf2.card.sources.outputKind).toBe('graph');
      const r = await clf2.classify(photo);
      // the graph's own sigmoid(0.4), not a second sigmoid (0.645)
      expect(r.top[0]!.score).toBeCloseTo(1 / (1 + Math.exp(-0.4)), 6);
    } finally {
      await clf2.dispose();
    }
  });

  it('toProbabilities: multilabel logits (and auto) get an element-wise sigmoid, probabilities stay', () => {
    const row = Float32Array.from([0, 2, -2]);
    expect(Array.from(toProbabilities(row, 'logits', 'multilabel')).map((v) => v.toFixed(4))).toEqual(['0.5000', '0.8808', '0.1192']);
    expect(Array.from(toProbabilities(row, 'auto', 'multilabel')).map((v) => v.toFixed(4))).toEqual(['0.5000', '0.8808', '0.1192']);
    const p = Float32Array.from([0.2, 0.9, 0.7]);
    // auto no longer keeps a row because its values lie in [0, 1]
    expect(Array.from(toProbabilities(p, 'auto', 'multilabel')).map((v) => v.toFixed(4))).toEqual(['0.5498', '0.7109', '0.6682']);
    expect(toProbabilities(p, 'probabilities', 'multilabel')).toBe(p);
    // classification is unchanged: a softmax across classes
    expect(toProbabilities(row, 'logits').reduce((a, v) => a + v, 0)).toBeCloseTo(1, 6);
  });
});
