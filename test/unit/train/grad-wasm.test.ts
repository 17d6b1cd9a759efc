// The same training graph in onnxruntime-web's WebAssembly build (the browser path) and in
// onnxruntime-node (native CPU): every operator the builder emits must exist there and agree.

import * as ortWeb from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { DataType, makeNode, makeTensor } from '../../../runtime/onnx/graph.js';
import { encodeModel } from '../../../runtime/onnx/model.js';
import type { TensorData } from '../../../runtime/core/tensor.js';
import { buildTrainingGraph } from '../../../runtime/train/graph/autodiff.js';
import { createRng } from '../../../runtime/core/rng.js';
import { conv, ortSession, randn, tinyTail, weight } from './grad-helpers.js';

describe('training graph on onnxruntime-web (wasm)', () => {
  it('gives the native CPU results', async () => {
    const rng = createRng(21, 'wasm');
    const tail = tinyTail(
      [
        conv('x', 'W1', 'B1', 'a', { k: 1 }),
        makeNode('Clip', ['a', 'lo', 'hi'], ['a6']),
        conv('a6', 'W2', 'B2', 'b', { k: 3, strides: [2, 2], pads: [1, 1, 1, 1], group: 8 }),
        makeNode('Relu', ['b'], ['br']),
        conv('br', 'W3', undefined, 'c', { k: 3, pads: [1, 1, 1, 1], group: 2 }),
        conv('x2', 'W4', undefined, 'd', { k: 1 }),
        makeNode('Add', ['c', 'd'], ['e']),
        makeNode('GlobalAveragePool', ['e'], ['p']),
        makeNode('Flatten', ['p'], ['emb']),
      ],
      [weight(rng, 'W1', [8, 4, 1, 1]), weight(rng, 'B1', [8], 0.1), makeTensor('lo', DataType.FLOAT, [], [0]), makeTensor('hi', DataType.FLOAT, [], [6]), weight(rng, 'W2', [8, 1, 3, 3]), weight(rng, 'B2', [8], 0.1), weight(rng, 'W3', [6, 4, 3, 3], 0.3), weight(rng, 'W4', [6, 4, 1, 1])],
      [4, 8, 8],
      [6],
    );
    // x2: the input subsampled by a stride-2 1×1 conv path, so the residual Add has matching shapes
    tail.graph.node.splice(5, 0, conv('x', 'S', undefined, 'x2', { k: 1, strides: [2, 2] }));
    tail.graph.initializer.push(weight(rng, 'S', [4, 4, 1, 1]));
    const g = buildTrainingGraph(tail, { head: [{ in: 6, out: 5 }, { in: 5, out: 3 }], dropout: 0.3, inputGradient: true });
    const N = 4;
    const feeds: Record<string, TensorData> = {
      x: { type: 'float32', data: randn(rng, N * 4 * 64), dims: [N, 4, 8, 8] },
      labels: { type: 'int64', data: BigInt64Array.from([0n, 1n, 2n, 1n]), dims: [N] },
      'mask.1': { type: 'float32', data: Float32Array.from({ length: N * 5 }, () => (rng.chance(0.3) ? 0 : 1 / 0.7)), dims: [N, 5] },
    };
    for (const w of g.tailWeights) {
      const t = tail.graph.initializer.find((i) => i.name === w.name)!;
      feeds[w.name] = { type: 'float32', data: new Float32Array(t.rawData!.slice().buffer), dims: w.dims };
    }
    for (const w of g.headWeights) feeds[w.name] = { type: 'float32', data: randn(rng, w.dims.reduce((a, b) => a * b, 1), 0.5), dims: w.dims };
    const native = await (await ortSession(g.model)).run(feeds);

    ortWeb.env.wasm.numThreads = 1;
    ortWeb.env.logLevel = 'error';
    const ws = await ortWeb.InferenceSession.create(encodeModel(g.model), { executionProviders: ['wasm'] });
    const wf: Record<string, ortWeb.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) wf[k] = new ortWeb.Tensor(v.type as 'float32', v.data as Float32Array, v.dims as number[]);
    const web = await ws.run(wf);
    expect(Object.keys(web).sort()).toEqual(Object.keys(native).sort());
    let worst = 0;
    for (const [k, v] of Object.entries(native)) {
      const a = v.data as Float32Array;
      const b = web[k]!.data as Float32Array;
      const scale = Math.max(1e-3, ...Array.from(a, Math.abs));
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
    }
    console.log('wasm vs native: outputs', Object.keys(native).length, 'worst |Δ|/max|x|', worst.toExponential(2));
    expect(worst).toBeLessThan(1e-4);
    await ws.release();
  });
});
