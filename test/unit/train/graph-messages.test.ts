// Training-graph messages name what the user can act on: a backbone with no trainable block before
// its embedding says there is nothing to unfreeze (not "between 1 and 0"), an out-of-range count says
// how many blocks there are, and an operator with no gradient is named by its output when unnamed
// (not `MaxPool ""`), with the operators training graphs do differentiate.

import { describe, expect, it } from 'vitest';
import { DataType, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntsAttribute, setStringAttribute } from '../../../runtime/onnx/graph.js';
import { buildTrainingGraph } from '../../../runtime/train/graph/autodiff.js';
import { resolveCut } from '../../../runtime/train/graph/cut.js';
import { planUnfreeze } from '../../../runtime/train/finetune-tail.js';
import { loadBackbone, EMBEDDING } from './mnv2-helpers.js';
import { createRng } from '../../../runtime/core/rng.js';
import { conv, tinyTail, weight } from './grad-helpers.js';

describe('unfreeze and training-graph messages', () => {
  it('a backbone with no weighted block before its embedding: nothing to unfreeze', () => {
    // input → GlobalAveragePool → Flatten (the embedding): no weights on the way
    const m = makeModel(
      {
        name: 'pool-only',
        node: [makeNode('GlobalAveragePool', ['x'], ['p'], { name: 'gap' }), makeNode('Flatten', ['p'], ['emb'], { name: 'flat' })],
        initializer: [],
        input: [makeValueInfo('x', makeTensorType(DataType.FLOAT, [1, 3, 8, 8]))],
        output: [makeValueInfo('emb', makeTensorType(DataType.FLOAT, [1, 3]))],
      },
      { opset: 13 },
    );
    expect(() => resolveCut(m, 'emb', 1)).toThrow('--unfreeze 1: the backbone has no block with trainable weights before its embedding "emb", so there is nothing to unfreeze; train the head alone (without --unfreeze)');
    // 'all' says 'all' (it was turned into 1 before the cut was resolved)
    expect(() => resolveCut(m, 'emb', 'all')).toThrow('--unfreeze all: the backbone has no block with trainable weights before its embedding "emb", so there is nothing to unfreeze; train the head alone (without --unfreeze)');
  });

  it('a count past the blocks says how many there are (MobileNetV2 fp32: 18 block boundaries, measured by tailBlocks)', () => {
    expect(() => resolveCut(loadBackbone(), EMBEDDING, 999)).toThrow(`Expected an integer between 1 and 18 for unfreeze but received 999: the backbone has 18 blocks with trainable weights before its embedding "${EMBEDDING}"`);
  });

  it('an unnamed LpPool (no shape rule) in the tail is named by its output', () => {
    const pool = makeNode('LpPool', ['c'], ['pooled'], { name: '' });
    setIntsAttribute(pool, 'kernel_shape', [2, 2]);
    const tail = tinyTail(
      [conv('x', 'w', undefined, 'c', { k: 1 }), pool, makeNode('GlobalAveragePool', ['pooled'], ['g'], { name: 'gap' }), makeNode('Flatten', ['g'], ['emb'], { name: 'flat' })],
      [weight(createRng(1), 'w', [2, 2, 1, 1])],
      [2, 4, 4],
      [2],
    );
    let message = '';
    try {
      buildTrainingGraph(tail, { head: [{ in: 2, out: 2 }] });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^shape of the LpPool node \(unnamed, output "pooled"\): training graphs cannot train through LpPool; unfreeze fewer blocks so the trained tail starts after it$/);
    expect(message).not.toContain('""');
  });

  it('an unnamed GlobalMaxPool (shaped, no gradient) is named by its output, with the operators that can be trained through', () => {
    const tail = tinyTail(
      [conv('x', 'w', undefined, 'c', { k: 1 }), makeNode('GlobalMaxPool', ['c'], ['g'], { name: '' }), makeNode('Flatten', ['g'], ['emb'], { name: 'flat' })],
      [weight(createRng(1), 'w', [2, 2, 1, 1])],
      [2, 4, 4],
      [2],
    );
    expect(() => buildTrainingGraph(tail, { head: [{ in: 2, out: 2 }] })).toThrow(
      'cannot train through the GlobalMaxPool node (unnamed, output "g"): training graphs have no gradient for GlobalMaxPool (they differentiate Add, AveragePool, Clip, Concat, Conv, Dropout, Flatten, Gemm, GlobalAveragePool, Identity, MatMul, MaxPool, Mul, Pad, Relu, Reshape, Squeeze, Sub, Transpose, Unsqueeze); unfreeze fewer blocks so the trained tail starts after it',
    );
  });

  it("a frozen block the biases (BitFit) would train through without a gradient is refused at planning, naming the node and --unfreeze-biases", () => {
    // x → conv a → Relu → Pad (reflect) → conv b (linear: block 2 ends here) → conv c → Relu → pooled embedding
    const rng = createRng(2, 'bitfit-pad');
    const pad = makeNode('Pad', ['ar', 'pads'], ['p'], { name: 'reflect_pad' });
    setStringAttribute(pad, 'mode', 'reflect');
    const m = makeModel(
      {
        name: 'reflect',
        node: [conv('x', 'wa', 'ba', 'a', { k: 1 }), makeNode('Relu', ['a'], ['ar']), pad, conv('p', 'wb', 'bb', 'b', { k: 3 }), conv('b', 'wc', 'bc', 'c', { k: 1 }), makeNode('Relu', ['c'], ['r']), makeNode('GlobalAveragePool', ['r'], ['g']), makeNode('Flatten', ['g'], ['emb'])],
        initializer: [weight(rng, 'wa', [2, 2, 1, 1]), weight(rng, 'ba', [2]), makeTensor('pads', DataType.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1].map(BigInt)), weight(rng, 'wb', [2, 2, 3, 3]), weight(rng, 'bb', [2]), weight(rng, 'wc', [3, 2, 1, 1]), weight(rng, 'bc', [3])],
        input: [makeValueInfo('x', makeTensorType(DataType.FLOAT, [1, 2, 6, 6]))],
        output: [makeValueInfo('emb', makeTensorType(DataType.FLOAT, [1, 3]))],
      },
      { opset: 13 },
    );
    expect(planUnfreeze(m, 'emb', 1, 'reflect').cut.cut).toBe('b');
    expect(() => planUnfreeze(m, 'emb', 1, 'reflect', undefined, 'all')).toThrow(
      '--unfreeze-biases all: no gradient for the Pad node "reflect_pad": Pad mode reflect (only constant padding has a gradient here); train the biases of fewer frozen blocks (--unfreeze-biases K) or none (--unfreeze-biases none)',
    );
  });
});
