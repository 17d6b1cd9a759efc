// Gradient checks of every operator rule of the training-graph builder against central differences
// of the loss (float32, eps 1e-2), on tiny random graphs run by onnxruntime-node. Each case checks
// a sample of entries of every trainable weight and of the input gradient (which exercises dX).

import { describe, expect, it } from 'vitest';
import { DataType, makeNode, makeTensor, setIntAttribute, setIntsAttribute, setStringAttribute } from '../../../runtime/onnx/graph.js';
import type { NodeProto, TensorProto } from '../../../runtime/onnx/model.js';
import { buildTrainingGraph, type TrainingGraphOptions } from '../../../runtime/train/graph/autodiff.js';
import { createRng } from '../../../runtime/core/rng.js';
import { conv, gradCheck, poolNode, randn, tinyTail, weight, type PoolAttrs } from './grad-helpers.js';

const TOL = 2e-2; // max relative error over sampled entries (measured max ≈ 1e-3 … 1e-2: 9.75e-3 for the stride-2 5×5 depthwise case)
const N = 3;

async function check(
  name: string,
  build: (rng: ReturnType<typeof createRng>) => { nodes: NodeProto[]; inits: TensorProto[]; x: number[]; d: number; trainable?: string[] },
  extra: Partial<TrainingGraphOptions> & { classes?: number; soft?: boolean; hidden?: number } = {},
) {
  const rng = createRng(11, name);
  const { nodes, inits, x, d, trainable } = build(rng);
  const K = extra.classes ?? 3;
  const layers = extra.hidden ? [{ in: d, out: extra.hidden }, { in: extra.hidden, out: K }] : [{ in: d, out: K }];
  const head: Record<string, Float32Array> = {};
  layers.forEach((l, i) => {
    head[`head.${i}.weight`] = randn(rng, l.in * l.out, 0.5);
    head[`head.${i}.bias`] = randn(rng, l.out, 0.1);
  });
  const tail = tinyTail(nodes, inits, x, [d]);
  const xs = randn(rng, N * x.reduce((a, b) => a * b, 1));
  const labels = BigInt64Array.from({ length: N }, (_, i) => BigInt(i % K));
  let targets: Float32Array | undefined;
  if (extra.soft) {
    targets = new Float32Array(N * K);
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += targets[i * K + k] = rng.next() + 0.1;
      for (let k = 0; k < K; k++) targets[i * K + k]! /= s;
    }
  }
  const masks: Record<string, Float32Array> = {};
  const drops = typeof extra.dropout === 'number' ? layers.map((_, l) => (l === layers.length - 1 ? (extra.dropout as number) : 0)) : layers.map((_, l) => (extra.dropout as number[] | undefined)?.[l] ?? 0);
  drops.forEach((p, l) => {
    if (p > 0) masks[`mask.${l}`] = Float32Array.from({ length: N * layers[l]!.in }, () => (rng.chance(p) ? 0 : 1 / (1 - p)));
  });
  const r = await gradCheck(
    tail,
    { head: layers, trainable, inputGradient: true, targets: extra.soft ? 'probs' : 'labels', ...extra },
    { x: xs, labels: extra.soft ? undefined : labels, targets, masks, head },
    { batch: N, samples: 6, eps: 1e-2 },
  );
  console.log(name, 'loss', r.loss.toFixed(4), 'max rel', r.maxRel.toExponential(2), 'kinks', r.kinks, '/', r.checked + r.kinks, Object.entries(r.perWeight).map(([k, v]) => `${k}:${v.maxRel.toExponential(1)}`).join(' '));
  expect(Number.isFinite(r.loss)).toBe(true);
  expect(r.maxRel).toBeLessThan(TOL);
  expect(r.kinks).toBeLessThanOrEqual(Math.ceil(r.checked / 4));
  return r;
}

const gapFlatten = (x: string): NodeProto[] => [makeNode('GlobalAveragePool', [x], ['pooled']), makeNode('Flatten', ['pooled'], ['emb'])];

describe('gradients vs finite differences', () => {
  it('Conv stride 1, no padding, with bias', () =>
    check('conv-s1', (rng) => ({
      nodes: [conv('x', 'W', 'B', 'y', { k: 3 }), ...gapFlatten('y')],
      inits: [weight(rng, 'W', [5, 4, 3, 3]), weight(rng, 'B', [5], 0.1)],
      x: [4, 6, 6],
      d: 5,
    })));

  it('Conv stride 2 padded, odd and even sizes (output_padding 0 and 1)', async () => {
    for (const h of [7, 8]) {
      await check(`conv-s2-h${h}`, (rng) => ({
        nodes: [conv('x', 'W', 'B', 'y', { k: 3, strides: [2, 2], pads: [1, 1, 1, 1] }), ...gapFlatten('y')],
        inits: [weight(rng, 'W', [4, 3, 3, 3]), weight(rng, 'B', [4], 0.1)],
        x: [3, h, h],
        d: 4,
      }));
    }
  });

  it('depthwise Conv (group = channels), stride 1 and 2', async () => {
    for (const s of [1, 2]) {
      await check(`dw-s${s}`, (rng) => ({
        nodes: [conv('x', 'W', 'B', 'y', { k: 3, strides: [s, s], pads: [1, 1, 1, 1], group: 6 }), ...gapFlatten('y')],
        inits: [weight(rng, 'W', [6, 1, 3, 3]), weight(rng, 'B', [6], 0.1)],
        x: [6, 7, 7],
        d: 6,
      }));
    }
  });

  it('depthwise Conv stride 2: even and odd sizes, TF-style asymmetric pads, a 5×5 kernel (input gradient through ConvTranspose)', async () => {
    // output_padding 1 (h 8, pads 1/1), 0 (h 7), "SAME" for stride 2 on an even input (pads 0/1), and
    // a window that ends in the padding (h 5, pads 0/2), and k 5 pads 2
    const cases: { h: number; k: number; pads: number[] }[] = [
      { h: 8, k: 3, pads: [1, 1, 1, 1] },
      { h: 7, k: 3, pads: [1, 1, 1, 1] },
      { h: 8, k: 3, pads: [0, 0, 1, 1] },
      { h: 5, k: 3, pads: [0, 0, 2, 2] },
      { h: 9, k: 5, pads: [2, 2, 2, 2] },
    ];
    for (const { h, k, pads } of cases) {
      await check(`dw-s2-h${h}-k${k}-p${pads.join('')}`, (rng) => ({
        nodes: [conv('x', 'W', 'B', 'y', { k, strides: [2, 2], pads, group: 5 }), ...gapFlatten('y')],
        inits: [weight(rng, 'W', [5, 1, k, k]), weight(rng, 'B', [5], 0.1)],
        x: [5, h, h],
        d: 5,
      }));
    }
  });

  it('grouped Conv (group 2), asymmetric padding', () =>
    check('grouped', (rng) => ({
      nodes: [conv('x', 'W', undefined, 'y', { k: 3, strides: [2, 1], pads: [0, 1, 1, 0], group: 2 }), ...gapFlatten('y')],
      inits: [weight(rng, 'W', [4, 3, 3, 3])],
      x: [6, 6, 5],
      d: 4,
    })));

  it('Relu and Clip (ReLU6, min/max inputs) between convs', () =>
    check('relu-clip', (rng) => ({
      nodes: [
        conv('x', 'W1', 'B1', 'a', { k: 1 }),
        makeNode('Relu', ['a'], ['r']),
        conv('r', 'W2', 'B2', 'b', { k: 3, pads: [1, 1, 1, 1] }),
        makeNode('Clip', ['b', 'lo', 'hi'], ['c']),
        ...gapFlatten('c'),
      ],
      inits: [weight(rng, 'W1', [5, 4, 1, 1]), weight(rng, 'B1', [5], 0.2), weight(rng, 'W2', [5, 5, 3, 3], 0.4), weight(rng, 'B2', [5], 0.2), makeTensor('lo', DataType.FLOAT, [], [0]), makeTensor('hi', DataType.FLOAT, [], [1.5])],
      x: [4, 2, 2], // few ReLU/Clip positions: few kinks within the finite-difference step
      d: 5,
    })));

  it('Add: residual (same shape) and broadcast bias [1,C,1,1] (trainable)', () =>
    check('add', (rng) => ({
      nodes: [
        conv('x', 'W1', 'B1', 'a', { k: 1 }),
        makeNode('Relu', ['a'], ['r']),
        conv('r', 'W2', undefined, 'b', { k: 3, pads: [1, 1, 1, 1], group: 4 }),
        makeNode('Add', ['a', 'b'], ['res']),
        makeNode('Add', ['res', 'bias'], ['y']),
        ...gapFlatten('y'),
      ],
      inits: [weight(rng, 'W1', [4, 3, 1, 1]), weight(rng, 'B1', [4], 0.2), weight(rng, 'W2', [4, 1, 3, 3]), weight(rng, 'bias', [1, 4, 1, 1], 0.3)],
      x: [3, 5, 5],
      d: 4,
      trainable: ['W1', 'B1', 'W2', 'bias'],
    })));

  it('Reshape, MatMul and Gemm (transB, alpha, beta) inside the tail', () =>
    check('dense', (rng) => {
      const gemm = makeNode('Gemm', ['h', 'G', 'gb'], ['emb']);
      gemm.attribute.push({ name: 'transB', type: 2, i: 1n, floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [], sparseTensors: [] });
      gemm.attribute.push({ name: 'alpha', type: 1, f: 0.7, floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [], sparseTensors: [] });
      gemm.attribute.push({ name: 'beta', type: 1, f: 1.5, floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [], sparseTensors: [] });
      return {
        nodes: [conv('x', 'W', 'B', 'a', { k: 1 }), makeNode('Reshape', ['a', 'shape'], ['flat']), makeNode('MatMul', ['flat', 'M'], ['h0']), makeNode('Relu', ['h0'], ['h']), gemm],
        inits: [weight(rng, 'W', [2, 3, 1, 1]), weight(rng, 'B', [2], 0.1), makeTensor('shape', DataType.INT64, [2], [0n, -1n]), weight(rng, 'M', [8, 6], 0.4), weight(rng, 'G', [5, 6], 0.4), weight(rng, 'gb', [5], 0.1)],
        x: [3, 2, 2],
        d: 5,
      };
    }));

  const simple = (rng: ReturnType<typeof createRng>) => ({
    nodes: [conv('x', 'W', 'B', 'y', { k: 1 }), ...gapFlatten('y')],
    inits: [weight(rng, 'W', [6, 4, 1, 1]), weight(rng, 'B', [6], 0.1)],
    x: [4, 3, 3],
    d: 6,
  });

  it('two-layer head (Gemm, Relu, Gemm) with a dropout mask; without the Relu; dropout on every layer', async () => {
    await check('head-mlp-dropout', simple, { hidden: 5, dropout: 0.4 });
    await check('head-linear-linear', simple, { hidden: 5, headActivation: 'none' });
    await check('head-dropout-all', simple, { hidden: 5, dropout: [0.3, 0.5] });
  });

  it('cross-entropy: soft targets, class weights, label smoothing, 4 classes', async () => {
    await check('ce-soft', simple, { soft: true, classes: 4 });
    await check('ce-weighted', simple, { classWeights: [0.5, 2, 1, 1.5], classes: 4 });
    await check('ce-smooth', simple, { labelSmoothing: 0.1, classWeights: [1, 3, 0.5] });
  });

  it('an opset-12 tail is upgraded (Clip stays an input form, Dropout becomes identity)', () =>
    check('opset12', (rng) => ({
      nodes: [conv('x', 'W', 'B', 'a', { k: 3, pads: [1, 1, 1, 1] }), makeNode('Clip', ['a', 'lo', 'hi'], ['c']), makeNode('Dropout', ['c'], ['dr']), ...gapFlatten('dr')],
      inits: [weight(rng, 'W', [4, 2, 3, 3]), weight(rng, 'B', [4], 0.1), makeTensor('lo', DataType.FLOAT, [], [0]), makeTensor('hi', DataType.FLOAT, [], [6])],
      x: [2, 4, 4],
      d: 4,
    })));

  it('names the batch N whatever the tail calls it; refuses dynamic spatial sizes and unknown operators', () => {
    const rng = createRng(1, 'names');
    const t = simple(rng);
    const tail = tinyTail(t.nodes, t.inits, t.x, [t.d]);
    tail.graph.input[0]!.type!.tensorType!.shape!.dim[0] = { dimParam: 'batch_size' };
    const g = buildTrainingGraph(tail, { head: [{ in: 6, out: 3 }], dropout: 0.5 });
    expect(g.inputShape).toEqual(['N', 4, 3, 3]);
    expect(g.masks.map((m) => m.name)).toEqual(['mask.0']);
    tail.graph.input[0]!.type!.tensorType!.shape!.dim[2] = { dimParam: 'H' };
    expect(() => buildTrainingGraph(tail, { head: [{ in: 6, out: 3 }] })).toThrow(/static shape/);
    const odd = tinyTail([makeNode('Sigmoid', ['x'], ['s']), makeNode('Softsign', ['s'], ['s2']), ...gapFlatten('s2')], [], [2, 2, 2], [2]);
    expect(() => buildTrainingGraph(odd, { head: [{ in: 2, out: 2 }] })).toThrow(/Softsign/);
  });
});

// Pooling, concatenation, padding and transposition (SqueezeNet's fire modules and max pools, MobileNetV1's
// average pool, the Teachable Machine imports' ZeroPadding2D): every case puts a trainable conv before the
// operator, so its dX reaches a weight gradient and the input gradient. Measured max relative error 5.2e-3
// (AveragePool with pads 1) against TOL 2e-2.
describe('gradients vs finite differences: pooling, Concat, Pad, Transpose', () => {
  const pool = (op: 'MaxPool' | 'AveragePool', x: string, y: string, a: PoolAttrs): NodeProto => poolNode(op, x, y, a, `${op}_${y}`);

  it('Concat: a SqueezeNet fire module (squeeze 1×1, expand 1×1 and 3×3 branches concatenated on channels)', () =>
    check('fire', (rng) => {
      const cat = makeNode('Concat', ['r1', 'r3'], ['cat']);
      setIntAttribute(cat, 'axis', 1);
      return {
        nodes: [
          conv('x', 'Ws', 'Bs', 's', { k: 1 }),
          makeNode('Relu', ['s'], ['sr']),
          conv('sr', 'W1', 'B1', 'e1', { k: 1 }),
          makeNode('Relu', ['e1'], ['r1']),
          conv('sr', 'W3', 'B3', 'e3', { k: 3, pads: [1, 1, 1, 1] }),
          makeNode('Relu', ['e3'], ['r3']),
          cat,
          ...gapFlatten('cat'),
        ],
        inits: [weight(rng, 'Ws', [3, 4, 1, 1]), weight(rng, 'Bs', [3], 0.3), weight(rng, 'W1', [4, 3, 1, 1]), weight(rng, 'B1', [4], 0.3), weight(rng, 'W3', [2, 3, 3, 3], 0.4), weight(rng, 'B3', [2], 0.3)],
        x: [4, 3, 3], // few ReLU positions: few kinks within the finite-difference step
        d: 6,
      };
    }));

  // (no case where ceil_mode drops a window that would start in the end padding: onnxruntime's kernel drops it, its
  // graph shape inference does not, so such a training graph does not load)
  it('MaxPool: overlapping 3×3/2 (SqueezeNet), ceil_mode with pads and with a partial last window, dilations, SAME_UPPER', async () => {
    const cases: { h: number; a: Parameters<typeof pool>[3] }[] = [
      { h: 7, a: { k: [3, 3], s: [2, 2] } },
      { h: 8, a: { k: [3, 3], s: [2, 2], pads: [1, 1, 1, 1], ceil: true } },
      { h: 5, a: { k: [2, 2], s: [2, 2], ceil: true } },
      { h: 7, a: { k: [2, 3], dil: [2, 1] } },
      { h: 6, a: { k: [3, 3], s: [2, 2], auto: 'SAME_UPPER' } },
    ];
    for (const { h, a } of cases) {
      await check(`maxpool-h${h}-${JSON.stringify(a)}`, (rng) => ({
        nodes: [conv('x', 'W', 'B', 'y', { k: 3, pads: [1, 1, 1, 1] }), pool('MaxPool', 'y', 'p', a), ...gapFlatten('p')],
        inits: [weight(rng, 'W', [4, 3, 3, 3]), weight(rng, 'B', [4], 0.1)],
        x: [3, h, h],
        d: 4,
      }));
    }
  });

  it('AveragePool: 4×4/2 VALID (MobileNetV1), pads without and with count_include_pad, ceil_mode, SAME_LOWER', async () => {
    // d: 2 channels × the pooled size (ceil_mode case: 4 × 5, its last column's window half outside the input)
    const cases: { h: number; d: number; a: Parameters<typeof pool>[3] }[] = [
      { h: 4, d: 2, a: { k: [4, 4], s: [2, 2], auto: 'VALID' } },
      { h: 7, d: 32, a: { k: [3, 3], s: [2, 2], pads: [1, 1, 1, 1] } },
      { h: 7, d: 32, a: { k: [3, 3], s: [2, 2], pads: [1, 0, 1, 2], includePad: true } },
      { h: 8, d: 40, a: { k: [3, 2], s: [2, 2], pads: [0, 1, 1, 0], ceil: true } },
      { h: 8, d: 40, a: { k: [3, 2], s: [2, 2], pads: [0, 1, 1, 0], ceil: true, includePad: true } },
      { h: 7, d: 32, a: { k: [3, 3], s: [2, 2], auto: 'SAME_LOWER' } },
    ];
    for (const { h, d, a } of cases) {
      await check(`avgpool-h${h}-${JSON.stringify(a)}`, (rng) => ({
        nodes: [conv('x', 'W', 'B', 'y', { k: 3, pads: [1, 1, 1, 1] }), pool('AveragePool', 'y', 'p', a), makeNode('Flatten', ['p'], ['emb'])],
        inits: [weight(rng, 'W', [2, 3, 3, 3]), weight(rng, 'B', [2], 0.1)],
        x: [3, h, h],
        d,
      }));
    }
  });

  it('Pad (constant): TF-style ZeroPadding2D before a stride-2 conv, and negative pads that crop', async () => {
    for (const pads of [
      [0, 0, 0, 0, 0, 0, 1, 1],
      [0, 0, 1, -1, 0, 0, -1, 2],
    ]) {
      await check(`pad-${pads.join('')}`, (rng) => ({
        nodes: [conv('x', 'W1', 'B1', 'a', { k: 1 }), makeNode('Pad', ['a', 'pads'], ['p']), conv('p', 'W2', 'B2', 'b', { k: 3, strides: [2, 2] }), ...gapFlatten('b')],
        inits: [weight(rng, 'W1', [3, 3, 1, 1]), weight(rng, 'B1', [3], 0.1), makeTensor('pads', DataType.INT64, [8], pads.map(BigInt)), weight(rng, 'W2', [4, 3, 3, 3]), weight(rng, 'B2', [4], 0.1)],
        x: [3, 6, 6],
        d: 4,
      }));
    }
  });

  it('Transpose to NHWC, then Flatten (the inverse permutation)', () =>
    check('transpose', (rng) => {
      const t = makeNode('Transpose', ['y'], ['t']);
      setIntsAttribute(t, 'perm', [0, 2, 3, 1]);
      return {
        nodes: [conv('x', 'W', 'B', 'y', { k: 3, strides: [2, 2] }), t, makeNode('Flatten', ['t'], ['emb'])],
        inits: [weight(rng, 'W', [3, 2, 3, 3]), weight(rng, 'B', [3], 0.1)],
        x: [2, 5, 7],
        d: 3 * 2 * 3,
      };
    }));

  it('a Pad in reflect mode has no gradient: the error names the node', () => {
    const p = makeNode('Pad', ['y', 'pads'], ['p'], { name: 'reflect_pad' });
    setStringAttribute(p, 'mode', 'reflect');
    const tail = tinyTail([conv('x', 'W', undefined, 'y', { k: 1 }), p, ...gapFlatten('p')], [weight(createRng(1, 'r'), 'W', [2, 2, 1, 1]), makeTensor('pads', DataType.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1].map(BigInt))], [2, 4, 4], [2]);
    expect(() => buildTrainingGraph(tail, { head: [{ in: 2, out: 2 }] })).toThrow('no gradient for the Pad node "reflect_pad": Pad mode reflect (only constant padding has a gradient here)');
  });
});
