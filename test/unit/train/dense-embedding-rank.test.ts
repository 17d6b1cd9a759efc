// A Keras classifier exported by tf2onnx (Anas436/Brain-Tumor-Detection's model.onnx: NHWC input,
// Flatten as Reshape, dense layers as MatMul + Add with Keras BatchNormalization as Mul + Add between
// them) has no value_info. The embedding found from the graph (the last MatMul's input) had no known
// rank, so it was taken for a feature map and given a GlobalAveragePool: `finetune --model` failed
// with onnxruntime's "GlobalAveragePool … Input dimension cannot be less than 3". Its rank is now
// read from the nodes that make it (Reshape to a constant shape, MatMul by a matrix, element-wise ops).

import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { shared, tempDir } from '../../helpers.js';
import { findCut } from '../../../runtime/train/export.js';
import { finetune } from '../../../runtime/train/node/finetune.js';
import { DataType, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntAttribute, setIntsAttribute } from '../../../runtime/onnx/graph.js';
import { encodeModel, type OnnxModel } from '../../../runtime/onnx/model.js';

/** tf2onnx's shape of a small Keras CNN: NHWC [1,16,16,3] → Transpose → Conv → Relu → MaxPool → Reshape [-1, 256] → MatMul+Add → Relu → BN (Mul, Add) → MatMul+Add → Softmax. */
function kerasLikeModel(): OnnxModel {
  const r = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * 0.2);
  const tr = makeNode('Transpose', ['input_layer'], ['nchw'], { name: 'transpose' });
  setIntsAttribute(tr, 'perm', [0, 3, 1, 2]);
  const conv = makeNode('Conv', ['nchw', 'cw', 'cb'], ['conv'], { name: 'conv' });
  setIntsAttribute(conv, 'pads', [1, 1, 1, 1]);
  const pool = makeNode('MaxPool', ['relu0'], ['pooled'], { name: 'maxpool' });
  setIntsAttribute(pool, 'kernel_shape', [4, 4]);
  setIntsAttribute(pool, 'strides', [4, 4]);
  const softmax = makeNode('Softmax', ['logits'], ['Identity:0'], { name: 'softmax' });
  setIntAttribute(softmax, 'axis', -1);
  return makeModel(
    {
      node: [
        tr,
        conv,
        makeNode('Relu', ['conv'], ['relu0'], { name: 'relu0' }),
        pool,
        makeNode('Reshape', ['pooled', 'flat_shape'], ['flat'], { name: 'flatten/Reshape' }),
        makeNode('MatMul', ['flat', 'w1'], ['mm1'], { name: 'dense_1/MatMul' }),
        makeNode('Add', ['mm1', 'b1'], ['d1'], { name: 'dense_1/BiasAdd' }),
        makeNode('Relu', ['d1'], ['r1'], { name: 'dense_1/Relu' }),
        makeNode('Mul', ['r1', 'gamma'], ['bn_mul'], { name: 'batchnorm/mul_1' }),
        makeNode('Add', ['bn_mul', 'beta'], ['bn'], { name: 'batchnorm/add_1' }),
        makeNode('MatMul', ['bn', 'w2'], ['mm2'], { name: 'dense_2/MatMul' }),
        makeNode('Add', ['mm2', 'b2'], ['logits'], { name: 'dense_2/BiasAdd' }),
        softmax,
      ],
      name: 'keras-like',
      initializer: [
        makeTensor('cw', DataType.FLOAT, [16, 3, 3, 3], r(432, 1)),
        makeTensor('cb', DataType.FLOAT, [16], r(16, 2)),
        makeTensor('flat_shape', DataType.INT64, [2], [-1n, 256n]),
        makeTensor('w1', DataType.FLOAT, [256, 12], r(3072, 3)),
        makeTensor('b1', DataType.FLOAT, [12], r(12, 4)),
        makeTensor('gamma', DataType.FLOAT, [12], Float32Array.from({ length: 12 }, () => 1.5)),
        makeTensor('beta', DataType.FLOAT, [12], r(12, 5)),
        makeTensor('w2', DataType.FLOAT, [12, 2], r(24, 6)),
        makeTensor('b2', DataType.FLOAT, [2], [0, 0]),
      ],
      input: [makeValueInfo('input_layer', makeTensorType(DataType.FLOAT, ['unk__53', 16, 16, 3]))],
      output: [makeValueInfo('Identity:0', makeTensorType(DataType.FLOAT, ['unk__53', 2]))],
    },
    { opset: 15 },
  );
}

describe('the embedding of a tf2onnx dense head (no value_info)', () => {
  it('is found as the last MatMul input, already pooled (rank 2): no GlobalAveragePool', () => {
    const cut = findCut(kerasLikeModel());
    expect(cut).toMatchObject({ tensor: 'bn', pool: false });
  });

  it('finetune --model on it trains and writes a model', async () => {
    const dir = tempDir('edgetune-dense-rank-');
    const model = path.join(dir, 'keras-like.onnx');
    writeFileSync(model, encodeModel(kerasLikeModel()));
    const out = path.join(dir, 'tuned.onnx');
    const report = await finetune(shared('datasets', 'flowers5-small', 'train'), {
      model,
      out,
      views: 1,
      augment: 'none',
      epochs: 2,
      card: { preprocess: { colorOrder: 'RGB', range: [0, 1], mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 1 }, outputKind: 'probabilities' },
    });
    expect(report.labels).toEqual(['daisy', 'dandelion', 'rose', 'sunflower', 'tulip']);
    expect(report.model).toBe(out);
  });
});
