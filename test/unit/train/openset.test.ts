// Open-set "unknown" on real photos: a 3-flower head (daisy, sunflowers, tulips of tf_flowers-dev) on
// mobilenetv2-int8 with the Mahalanobis calibration (runtime/train/openset.ts), exported to ONNX and
// run in a BARE onnxruntime-node session: its `unknown_score` output equals the in-process score,
// tells cats/dogs from the known flowers far better than max-softmax, keeps the known val flowers at
// the model's own threshold, and the card carries the calibration.

import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Embedder, loadBackbone, type Backbone } from '../../../runtime/train/node/embed.js';
import { EMBEDDING_OUTPUT, exportClassifierModel, findCut, PROBABILITIES_OUTPUT, UNKNOWN_OUTPUT } from '../../../runtime/train/export.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { parseModelInfo, readMetadataProps } from '../../../runtime/core/metadata.js';
import { toTensor } from '../../../runtime/image/preprocess.js';
import { headLogits, trainHeadSync, type FeatureSet } from '../../../runtime/train/index.js';
import { fitLayered, fitOpenSet, layeredScores, type LayerFeatures, mahalanobisScores } from '../../../runtime/train/openset.js';
import { auroc, expectedCalibrationError, fitTemperature, keptShare, maxSoftmaxScores, quantile, temperedSoftmax } from '../../../runtime/train/openset-scores.js';
import { finetuneConfig, stratifiedSplit } from '../../../runtime/train/finetune.js';
import { shared } from '../../helpers.js';

const flowers = shared('datasets', 'tf_flowers-dev');
const pets = shared('datasets', 'cats_dogs-dev');
const KNOWN = ['daisy', 'sunflowers', 'tulips'];
const list = (root: string, split: string, classes: readonly string[]) =>
  classes.flatMap((c, label) => readdirSync(path.join(root, split, c)).sort().map((f) => ({ file: path.join(root, split, c, f), label })));

describe('open-set calibration on real photos', () => {
  let bb: Backbone;
  let e: Embedder;
  let train: FeatureSet;
  let val: FeatureSet;
  let test: FeatureSet;
  let far: Float32Array;
  const farFiles = list(pets, 'val', ['cats', 'dogs']);
  const testFiles = list(flowers, 'val', KNOWN);
  beforeAll(async () => {
    bb = await loadBackbone('mobilenetv2-int8');
    e = await Embedder.open(bb);
    const all = list(flowers, 'train', KNOWN);
    const split = stratifiedSplit(all, 3, 0.2, 42);
    const set = async (items: { file: string; label: number }[]): Promise<FeatureSet> => {
      const r = await e.embed(items.map((i) => i.file));
      return { features: r.features, labels: Int32Array.from(items.map((i) => i.label)), dims: r.dims, classes: 3 };
    };
    train = await set(split.train);
    val = await set(split.val);
    test = await set(testFiles);
    far = (await e.embed(farFiles.map((i) => i.file))).features;
  }, 300_000);
  afterAll(() => e?.dispose());

  it('says unknown for cats and dogs, in the exported graph as in process', async () => {
    const head = trainHeadSync(train, val, finetuneConfig('linear')).head;
    const { detector, calibration } = fitOpenSet(train, val, headLogits(head, val.features));
    expect(calibration).toMatchObject({ method: 'mahalanobis', threshold: 1, target: 0.95, fittedOn: 'validation' });
    const st = mahalanobisScores(detector, test.features);
    const sf = mahalanobisScores(detector, far);
    // bench:unknown, split daisy+sunflowers+tulips (4 views): far AUROC 1.000 (max-softmax 0.924); here 1 view
    expect(auroc(st, sf)).toBeGreaterThan(0.97);
    const baseline = auroc(maxSoftmaxScores(headLogits(head, test.features), 3), maxSoftmaxScores(headLogits(head, far), 3));
    expect(auroc(st, sf)).toBeGreaterThan(baseline + 0.03);
    // the model's own threshold keeps the known val flowers (bench: 0.95 of them) and rejects the pets (bench: 1.00)
    expect(keptShare(st, detector.threshold)).toBeGreaterThan(0.85);
    expect(1 - keptShare(sf, detector.threshold)).toBeGreaterThan(0.8);

    const bytes = exportClassifierModel(e.graph, bb.cut, head, KNOWN, bb.spec, { base: bb.id }, { detector, calibration });
    const info = parseModelInfo(readMetadataProps(bytes))!;
    expect(info.openSet).toMatchObject({ method: 'mahalanobis', output: UNKNOWN_OUTPUT, threshold: 1, temperature: calibration.temperature });
    const s = await ort.InferenceSession.create(bytes);
    const imgs = await Promise.all([...testFiles.slice(0, 6), ...farFiles.slice(0, 6)].map((f) => decodeImage(f.file, bb.spec)));
    const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', toTensor(imgs, bb.spec).data as Float32Array, [12, 3, 224, 224]) });
    const graphScore = out[UNKNOWN_OUTPUT]!.data as Float32Array;
    const want = [...st.slice(0, 6), ...sf.slice(0, 6)].map((x) => x / detector.threshold);
    // float32 graph vs float64 in process: relative difference under 1e-3
    graphScore.forEach((g, i) => expect(Math.abs(g - want[i]!) / Math.max(1e-6, want[i]!)).toBeLessThan(1e-3));
    // the probabilities are tempered: softmax(logits / T)
    const probs = out[PROBABILITIES_OUTPUT]!.data as Float32Array;
    const ref = temperedSoftmax(headLogits(head, test.features.subarray(0, 6 * test.dims)), 3, calibration.temperature);
    for (let i = 0; i < 18; i++) expect(probs[i]).toBeCloseTo(ref[i]!, 3);
    await s.release();
  }, 300_000);

  it('temperature scaling does not raise the validation NLL and the threshold is the target quantile', () => {
    const head = trainHeadSync(train, val, finetuneConfig('linear')).head;
    const lv = headLogits(head, val.features);
    const T = fitTemperature(lv, val.labels, 3);
    const e1 = expectedCalibrationError(temperedSoftmax(lv, 3, 1), val.labels, 3);
    const eT = expectedCalibrationError(temperedSoftmax(lv, 3, T), val.labels, 3);
    // bench:unknown: ECE 0.048 → 0.031 on this split's test photos; on validation it must not get much worse
    expect(eT).toBeLessThan(e1 + 0.02);
    const { detector } = fitOpenSet(train, val, lv);
    expect(detector.threshold).toBeCloseTo(quantile(mahalanobisScores(detector, val.features), 0.95), 6);
    expect(() => fitOpenSet(train, val, lv, { target: 0.2 })).toThrow('open-set target must be between 0.5 and 1 (share of known images kept), got 0.2');
  });

  it('a multi-layer score (blocks 15-16 + embedding) runs in the exported graph as in process and separates other flowers better than max-softmax', async () => {
    const head = trainHeadSync(train, val, finetuneConfig('linear')).head;
    const all = list(flowers, 'train', KNOWN);
    const split = stratifiedSplit(all, 3, 0.2, 42);
    const nearFiles = list(flowers, 'val', ['dandelion', 'roses']);
    const layers: LayerFeatures[] = [{ tensor: EMBEDDING_OUTPUT, train, val }];
    const tests: Float32Array[] = [test.features];
    const nears: Float32Array[] = [(await e.embed(nearFiles.map((i) => i.file))).features];
    const fars: Float32Array[] = [far];
    for (const tap of ['603_quantized', '612_quantized']) {
      const te = await Embedder.open({ ...bb, cut: findCut(bb.model, tap), key: `${bb.key}|open-set tap ${tap}` });
      const rows = async (items: { file: string; label: number }[]) => (await te.embed(items.map((i) => i.file))).features;
      const [tr, va] = [await rows(split.train), await rows(split.val)];
      layers.push({ tensor: tap, train: { ...train, features: tr, dims: tr.length / train.labels.length }, val: { ...val, features: va, dims: va.length / val.labels.length } });
      tests.push(await rows(testFiles));
      nears.push(await rows(nearFiles));
      fars.push(await rows(farFiles));
      await te.dispose();
    }
    const det = fitLayered(layers);
    expect(det.layers.map((l) => [l.tensor, l.detector.dims, l.detector.covariance])).toEqual([[EMBEDDING_OUTPUT, 1280, 'per-class'], ['603_quantized', 960, 'per-class'], ['612_quantized', 960, 'per-class']]);
    const [st, sn, sf] = [layeredScores(det, tests), layeredScores(det, nears), layeredScores(det, fars)];
    // bench:unknown on this split (4 views): near AUROC 0.842 (max-softmax 0.740), far 0.995, known kept 0.967, far rejected 0.992
    const lt = headLogits(head, test.features);
    const baseline = auroc(maxSoftmaxScores(lt, 3), maxSoftmaxScores(headLogits(head, nears[0]!), 3));
    expect(auroc(st, sn)).toBeGreaterThan(baseline + 0.03);
    expect(auroc(st, sf)).toBeGreaterThan(0.97);
    expect(keptShare(st, 1)).toBeGreaterThan(0.85);
    expect(1 - keptShare(sf, 1)).toBeGreaterThan(0.8);

    const calibration = fitOpenSet(train, val, headLogits(head, val.features)).calibration;
    const bytes = exportClassifierModel(e.graph, bb.cut, head, KNOWN, bb.spec, { base: bb.id }, { detector: det, calibration });
    expect(parseModelInfo(readMetadataProps(bytes))!.openSet).toMatchObject({ covariance: 'per-class', layers: [EMBEDDING_OUTPUT, '603_quantized', '612_quantized'], threshold: 1 });
    const s = await ort.InferenceSession.create(bytes);
    const imgs = await Promise.all([...testFiles.slice(0, 4), ...nearFiles.slice(0, 4), ...farFiles.slice(0, 4)].map((f) => decodeImage(f.file, bb.spec)));
    const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', toTensor(imgs, bb.spec).data as Float32Array, [12, 3, 224, 224]) });
    const graphScore = out[UNKNOWN_OUTPUT]!.data as Float32Array;
    const want = [...st.slice(0, 4), ...sn.slice(0, 4), ...sf.slice(0, 4)];
    // float32 graph vs float64 in process, through exp(): relative difference under 1e-3
    graphScore.forEach((g, i) => expect(Math.abs(g - want[i]!) / Math.max(1e-6, want[i]!)).toBeLessThan(1e-3));
    await s.release();
  }, 300_000);

  it('a layered fit names what is missing', () => {
    expect(() => fitLayered([])).toThrow('a layered open-set fit needs at least one layer');
    const noVal = { ...val, features: new Float32Array(0), labels: new Int32Array(0) };
    expect(() => fitLayered([{ tensor: EMBEDDING_OUTPUT, train, val: noVal }])).toThrow('a layered open-set fit needs at least 10 validation rows (each layer is standardised on them), got 0');
    // one validation row has no spread to standardise by (every score was 0 or infinite): refused too
    const one = { ...val, features: val.features.subarray(0, val.dims), labels: val.labels.subarray(0, 1) };
    expect(() => fitLayered([{ tensor: EMBEDDING_OUTPUT, train, val: one }])).toThrow('a layered open-set fit needs at least 10 validation rows (each layer is standardised on them), got 1');
    const short = { ...val, features: val.features.subarray(0, val.dims), labels: val.labels.subarray(0, 1) };
    expect(() => fitLayered([{ tensor: EMBEDDING_OUTPUT, train, val }, { tensor: 'x', train, val: short }])).toThrow(`layer x: 1 validation rows, the first layer has ${val.labels.length}`);
    const det = fitLayered([{ tensor: EMBEDDING_OUTPUT, train, val }]);
    expect(() => layeredScores(det, [])).toThrow('layered open-set scores: 0 feature sets for 1 layers');
    // one layer: the validation scores' own target quantile is the threshold, so 1 keeps that share
    expect(keptShare(layeredScores(det, [val.features]), 1)).toBeCloseTo(keptShare(mahalanobisScores(det.layers[0]!.detector, val.features), det.layers[0]!.detector.threshold), 6);
  });
});
