// `quantize --sensitivity` and `--keep-float` score each layer by the KL of the model's softmax class
// scores (calibration/sensitivity.ts). For a regression model that was 0 for every layer (a softmax of
// one value is 1) and for a multilabel model a softmax across independent sigmoids: both now refuse,
// naming the option and the task, before calibrating (CLI exit 2; the library throws EARG).

import { describe, it, expect } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, shared, tempDir } from '../../helpers.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { quantizeModel, type QuantizeOptions } from '../../../calibration/index.js';
import { DataType, makeModel, makeNode, makeTensor, makeTensorType, makeValueInfo, setIntAttribute } from '../../../runtime/onnx/graph.js';
import { encodeModel } from '../../../runtime/onnx/model.js';

/** input [1,3,8,8] → GlobalAveragePool → Flatten → Gemm → output [1,2]: a tiny head with two outputs. */
function twoOutputModel(): Uint8Array {
  const gemm = makeNode('Gemm', ['flat', 'w', 'b'], ['output'], { name: 'head' });
  setIntAttribute(gemm, 'transB', 1);
  return encodeModel(
    makeModel(
      {
        node: [makeNode('GlobalAveragePool', ['input'], ['pooled'], { name: 'pool' }), makeNode('Flatten', ['pooled'], ['flat'], { name: 'flatten' }), gemm],
        initializer: [makeTensor('w', DataType.FLOAT, [2, 3], [1, -1, 0.5, 0.2, 0.8, -0.3]), makeTensor('b', DataType.FLOAT, [2], [0.1, -0.1])],
        input: [makeValueInfo('input', makeTensorType(DataType.FLOAT, [1, 3, 8, 8]))],
        output: [makeValueInfo('output', makeTensorType(DataType.FLOAT, [1, 2]))],
      },
      { opset: 13 },
    ),
  );
}

describe('sensitivity scoring needs class scores', () => {
  const dir = tempDir('edgetune-sens-task-');
  const calib = shared('datasets', 'flowers5-small', 'train');
  const modelOf = (task: string) => {
    const file = path.join(dir, `${task}.onnx`);
    writeFileSync(file, twoOutputModel());
    writeFileSync(path.join(dir, `${task}.card.json`), JSON.stringify({ task, labels: ['a', 'b'] }));
    return file;
  };

  it('the library refuses sensitivityImages and keepFloat (N and auto) for regression and multilabel models', async () => {
    for (const task of ['regression', 'multilabel']) {
      const model = modelOf(task);
      const base: QuantizeOptions = { model, out: path.join(dir, `${task}.int8.onnx`), calib, calibCount: 4, threads: 1, allowAssumed: true };
      for (const [extra, flag] of [
        [{ sensitivityImages: 4 }, '--sensitivity'],
        [{ keepFloat: 1 }, '--keep-float'],
        [{ keepFloat: 'auto' }, '--keep-float'],
      ] as const) {
        const err = await quantizeModel({ ...base, ...extra }).then(() => undefined, (e: unknown) => e);
        expect(err, `${task} ${JSON.stringify(extra)}`).toBeInstanceOf(EdgetuneError);
        expect((err as EdgetuneError).code).toBe('EARG');
        expect((err as EdgetuneError).message).toBe(
          `${flag} is for classifiers: it scores layers by the KL of their softmax class scores, which means nothing for ${model}, a ${task} model; quantize it without ${flag}`,
        );
        expect(existsSync(path.join(dir, `${task}.int8.onnx`))).toBe(false);
      }
    }
  });

  it('the CLI exits 2 naming the flag and the task; the same model quantizes without it', async () => {
    const model = modelOf('regression');
    const out = path.join(dir, 'cli.int8.onnx');
    const args = ['quantize', '--model', model, '--calib', calib, '--calib-count', '4', '--allow-assumed', '--out', out];
    for (const flag of [['--sensitivity'], ['--keep-float', '1']]) {
      const r = await runCli([...args, ...flag]);
      expect(r.code, r.stderr).toBe(2);
      // (after --allow-assumed's warning of what it assumed)
      expect(r.stderr).toContain(
        `\nedgetune quantize: ${flag[0]} is for classifiers: it scores layers by the KL of their softmax class scores, which means nothing for ${model}, a regression model; quantize it without ${flag[0]}\n`,
      );
    }
    const ok = await runCli(args);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  }, 120_000);
});
