// Fine-tuning the last MobileNetV2 block (`--unfreeze 1`: the final 1×1 conv 320→1280 + ReLU6) and a
// linear head on beans-dev (3 classes; 40 train / 20 val photos per class, 384 px), through ONNX
// training graphs run by onnxruntime-node. Cut activations are computed once per image by the frozen
// part. Compares with head-only training from the same initial head, measures the training graph's
// time against a bare forward run of the tail on the same batches, and checks that the exported
// backbone (tuned tail written back) predicts what the in-process eval graph does.

import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../../runtime/onnx/model.js';
import type { TensorData } from '../../../runtime/core/tensor.js';
import { headLogits } from '../../../runtime/train/index.js';
import { buildTrainingGraph } from '../../../runtime/train/graph/autodiff.js';
import { cutModel, resolveCut } from '../../../runtime/train/graph/cut.js';
import { crossEntropy, evaluateTail, exportTail, trainTail, type TailEpochStats } from '../../../runtime/train/graph/tail-trainer.js';
import { ortFactory, ortSession } from './grad-helpers.js';
import { EMBEDDING, listSplit, loadBackbone, preprocess, runBatched } from './mnv2-helpers.js';

const PER_CLASS_TRAIN = Number(process.env.BEANS_TRAIN_PER_CLASS ?? 40);
const PER_CLASS_VAL = Number(process.env.BEANS_VAL_PER_CLASS ?? 20);
const EPOCHS = Number(process.env.BEANS_EPOCHS ?? 6);
const BATCH = 16;
/** Blocks to unfreeze (1 = the final 1×1 conv; 2 adds the last inverted-residual block, with its depthwise conv). */
const UNFREEZE = Number(process.env.BEANS_UNFREEZE ?? 1);

const fmt = (h: TailEpochStats[]) => h.map((e) => `  ${e.epoch}: train ${e.trainLoss.toFixed(3)} (${e.trainAccuracy.toFixed(2)}) val ${e.valLoss!.toFixed(3)} acc ${e.valAccuracy!.toFixed(3)} ${e.ms.toFixed(0)} ms (train runs ${e.runMs.toFixed(0)}, val ${e.valMs!.toFixed(0)})`).join('\n');

describe(`beans-dev: unfreeze ${UNFREEZE} (last block${UNFREEZE > 1 ? 's' : ''} + head)`, () => {
  it('trains tail + head, beats its start, exports consistently', async () => {
    const t0 = performance.now();
    const model = loadBackbone();
    const cutName = resolveCut(model, EMBEDDING, UNFREEZE);
    const cut = cutModel(model, cutName, EMBEDDING);
    const per = cut.cutShape.slice(1) as number[];
    const tr = listSplit('train', PER_CLASS_TRAIN);
    const va = listSplit('val', PER_CLASS_VAL);
    const frozenBytes = encodeModel(cut.frozen);
    const acts = async (files: string[]) => runBatched(frozenBytes, 'input', cut.cut, await preprocess(files), [3, 224, 224]);
    const train = { x: await acts(tr.files), labels: tr.labels };
    const val = { x: await acts(va.files), labels: va.labels };
    const tPrep = performance.now() - t0;
    const K = tr.classes.length;

    const cfg = { epochs: EPOCHS, batchSize: BATCH, optimizer: 'adam' as const, lrHead: 3e-3, lrBackbone: 1e-4, weightDecay: 1e-4, seed: 1 };
    const tail = await trainTail({ tail: cut.tail, classes: K, train, val, createSession: ortFactory }, cfg);
    const headOnly = await trainTail({ tail: cut.tail, classes: K, train, val, createSession: ortFactory }, { ...cfg, trainBackbone: false });

    // overhead: one pass over the training batches, alternating a bare forward run of the tail (weights
    // as initializers, what inference does) and a training-graph run on the same batch, so the load of
    // a shared machine hits both alike
    const fwd = await ortSession(cut.tail, 2);
    const tg = buildTrainingGraph(cut.tail, { head: tail.head.layers });
    const ts = await ortSession(tg.model, 2);
    const size = per.reduce((a, b) => a * b, 1);
    const n = tr.labels.length;
    const tw = new Map<string, Float32Array>(Object.entries(tail.tailWeights));
    tail.head.layers.forEach((l, i) => tw.set(`head.${i}.weight`, l.weight).set(`head.${i}.bias`, l.bias));
    let bare = 0;
    let runMs = 0;
    for (let rep = 0; rep < 2; rep++) {
      // rep 0 warms both sessions up on the first batch; rep 1 is measured
      for (let s = 0; s < (rep ? n : 1); s += BATCH) {
        const b = Math.min(BATCH, n - s);
        const xb = train.x.slice(s * size, (s + b) * size);
        const feeds: Record<string, TensorData> = { [cut.cut]: { type: 'float32', data: xb, dims: [b, ...per] }, labels: { type: 'int64', data: BigInt64Array.from({ length: b }, (_, i) => BigInt(train.labels[s + i]!)), dims: [b] } };
        for (const w of [...tg.tailWeights, ...tg.headWeights]) feeds[w.name] = { type: 'float32', data: tw.get(w.name)!, dims: w.dims };
        const t1 = performance.now();
        await fwd.run({ [cut.cut]: feeds[cut.cut]! });
        const t2 = performance.now();
        await ts.run(feeds);
        const t3 = performance.now();
        if (rep) {
          bare += t2 - t1;
          runMs += t3 - t2;
        }
      }
    }
    await fwd.dispose();
    await ts.dispose();
    const headRunMs = headOnly.history.reduce((a, h) => a + h.runMs, 0) / headOnly.history.length;
    const tailRunMs = tail.history.reduce((a, h) => a + h.runMs, 0) / tail.history.length;

    // exported backbone (tuned tail written back) vs the in-process eval graph, on 12 val images
    const exported = exportTail(model, tail.tailWeights);
    const sub = [0, 1, 2, 3, 20, 21, 22, 23, 40, 41, 42, 43].filter((i) => i < va.files.length);
    const feats = await runBatched(encodeModel(exported), 'input', EMBEDDING, await preprocess(sub.map((i) => va.files[i]!)), [3, 224, 224]);
    const viaExport = headLogits(tail.head, feats, sub.length);
    const evalGraph = buildTrainingGraph(cut.tail, { head: tail.head.layers, mode: 'eval' });
    const es = await ortSession(evalGraph.model, 2);
    const weights = new Map<string, Float32Array>(Object.entries(tail.tailWeights));
    tail.head.layers.forEach((l, i) => weights.set(`head.${i}.weight`, l.weight).set(`head.${i}.bias`, l.bias));
    const subData = { x: new Float32Array(sub.length * size), labels: Int32Array.from(sub, (i) => va.labels[i]!) };
    sub.forEach((i, r) => subData.x.set(val.x.subarray(i * size, (i + 1) * size), r * size));
    const inProcess = await evaluateTail(es, evalGraph, subData, weights);
    let maxDiff = 0;
    for (let i = 0; i < inProcess.length; i++) maxDiff = Math.max(maxDiff, Math.abs(inProcess[i]! - viaExport[i]!));
    const bestTail = tail.history[tail.bestEpoch - 1]!;
    const bestHead = headOnly.history[headOnly.bestEpoch - 1]!;

    console.log(
      [
        `cut at "${cut.cut}" [${cut.cutShape}], tail ${cut.tail.graph.node.length} nodes; ${n} train / ${va.labels.length} val; preprocessing + frozen part ${tPrep.toFixed(0)} ms`,
        `tail + head (lr backbone ${cfg.lrBackbone}, head ${cfg.lrHead}):`,
        fmt(tail.history),
        `head only:`,
        fmt(headOnly.history),
        `best val: tail ${bestTail.valLoss!.toFixed(3)} / acc ${bestTail.valAccuracy!.toFixed(3)} (epoch ${tail.bestEpoch}); head-only ${bestHead.valLoss!.toFixed(3)} / acc ${bestHead.valAccuracy!.toFixed(3)} (epoch ${headOnly.bestEpoch})`,
        `one pass over the training batches, interleaved: training graph ${runMs.toFixed(0)} ms vs bare tail forward ${bare.toFixed(0)} ms: overhead ×${(runMs / bare).toFixed(2)} (mean training-graph time per epoch while training: tail ${tailRunMs.toFixed(0)} ms, head-only ${headRunMs.toFixed(0)} ms)`,
        `export vs in-process logits: max |Δ| ${maxDiff.toExponential(2)}; total ${(performance.now() - t0).toFixed(0)} ms`,
      ].join('\n'),
    );
    expect(Math.min(...tail.history.map((h) => h.valLoss!))).toBeLessThan(tail.history[0]!.valLoss!);
    expect(bestTail.valAccuracy!).toBeGreaterThan(0.6);
    expect(maxDiff).toBeLessThan(1e-3);
    expect(crossEntropy(inProcess, subData.labels, K).loss).toBeLessThan(1.2);
  });
});
