// JSON contracts checked by their valibot schemas: the real registry.json, the metadata a real export
// embeds, a real model card and kiosk config, a head read back from a real model and a calibration
// cache built from a real image all pass; broken copies of each fail with the exact message naming
// the source and the failing path.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCache, type CalibrationCache } from '../../../calibration/collect.js';
import { RangeCollector } from '../../../calibration/ranges.js';
import { describeModel } from '../../../models/describe.js';
import { Registry } from '../../../models/registry.js';
import { cardFromBytes } from '../../../runtime/classify/describe.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import { METADATA_KEY, parseModelInfo, readMetadataProps } from '../../../runtime/core/metadata.js';
import { ModelCardSchema, parseCardLayer } from '../../../runtime/core/model-card.js';
import { parseContract } from '../../../runtime/core/schema.js';
import { decodeImage } from '../../../runtime/image/decode.js';
import { DEFAULT_SPEC, toTensor } from '../../../runtime/image/preprocess.js';
import { parseKioskConfig } from '../../../runtime/kiosk/config.js';
import { kioskConfig } from '../../../runtime/kiosk/server.js';
import { decodeModel, encodeModel } from '../../../runtime/onnx/model.js';
import { exportClassifierModel, headFromModel } from '../../../runtime/train/export.js';
import { headFromJSON, headToJSON, prototypeHead, type HeadJSON } from '../../../runtime/train/index.js';
import { Embedder, loadBackbone } from '../../../runtime/train/node/embed.js';
import { repoRoot, shared, tempDir } from '../../helpers.js';

/** The error `fn` throws (fails the test when it throws none, or not an EdgetuneError). */
function thrown(fn: () => unknown): EdgetuneError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgetuneError);
    return err as EdgetuneError;
  }
  throw new Error('expected an error, none was thrown');
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('registry.json', () => {
  const real = JSON.parse(readFileSync(path.join(repoRoot, 'models', 'registry.json'), 'utf8')) as { models: Record<string, unknown>[]; labelSets: Record<string, unknown> };

  it('the real registry passes, every entry kept', () => {
    const reg = new Registry(real);
    expect(reg.models.map((m) => m.id)).toEqual(real.models.map((m) => m.id));
    expect(reg.require('mobilenetv2-int8').input.layout).toBe('NCHW');
  });

  it('names the entry and field that break the contract', () => {
    const bad = (edit: (r: typeof real) => void) => {
      const r = clone(real);
      edit(r);
      return thrown(() => new Registry(r));
    };
    const layout = bad((r) => ((r.models[3]!.input as { layout: string }).layout = 'CHW'));
    expect(layout.message).toBe('registry.json: models[3].input.layout: expected "NCHW" | "NHWC" but received "CHW"');
    expect(layout.code).toBe('EMODEL');
    expect(bad((r) => delete r.models[0]!.file).message).toBe('registry.json: models[0].file: required but missing');
    // a misspelt key is two problems: the unknown key and the missing one
    expect(
      bad((r) => {
        r.models[1]!.labelOfset = r.models[1]!.labelOffset;
        delete r.models[1]!.labelOffset;
      }).message,
    ).toBe('registry.json: models[1].labelOffset: required but missing\nregistry.json: models[1].labelOfset: unknown key (not part of this contract)');
    expect(bad((r) => (r.models[0]!.sha256 = 'abc')).message).toBe('registry.json: models[0].sha256: expected 64 lowercase hex digits but received "abc"');
    // labels is a label-set name or the labels: the array member's own problem is reported
    expect(bad((r) => (r.models[4]!.labels = ['zero', 7])).message).toBe('registry.json: models[4].labels[1]: expected string but received 7');
    expect(bad((r) => ((r.models[2]!.input as { shape: number[] }).shape = [3, 224, 224])).message).toBe(
      'registry.json: models[2].input.shape: expected 4 dimensions but received 3',
    );
    expect(bad((r) => (r.models[2]!.labels = 'coco')).message).toBe('registry.json: models[2].labels: expected a label set ("imagenet" | "digits") but received "coco"');
    expect(bad((r) => (r.models[5]!.id = r.models[0]!.id)).message).toBe('registry.json: models[5].id: a second entry with id "mobilenetv2-int8"');
    // at most five problems are listed
    const many = bad((r) => r.models.forEach((m) => ((m.input as { layout: string }).layout = 'CHW'))).message.split('\n');
    expect(many).toHaveLength(6);
    expect(many[5]).toBe(`registry.json: … and ${real.models.length - 5} more`);
    expect(bad((r) => ((r.labelSets.digits as { count: number }).count = 11)).message).toBe('registry.json: labelSets.digits: needs "labels" (as many as "count") or a label "file"');
  });
});

describe('embedded edgetune.model metadata, head JSON (a real export: squeezenet1.1 + prototype head on 4 hymenoptera photos)', () => {
  let bytes: Uint8Array;
  let info: Record<string, unknown>;
  /** The exported model with its edgetune.model entry replaced. */
  const withInfo = (value: string): Uint8Array => {
    const m = decodeModel(bytes);
    m.metadataProps = m.metadataProps.map((p) => (p.key === METADATA_KEY ? { key: p.key, value } : p));
    return encodeModel(m);
  };
  beforeAll(async () => {
    const bb = await loadBackbone('squeezenet1.1');
    const hym = shared('datasets', 'hymenoptera', 'train');
    const photos = ['ants', 'bees'].flatMap((c) => [0, 1].map((i) => path.join(hym, c, readdirSync(path.join(hym, c)).sort()[i]!)));
    const e = await Embedder.open(bb);
    const r = await e.embed(photos, { cache: null });
    await e.dispose();
    const head = prototypeHead({ features: r.features, labels: Int32Array.from([0, 0, 1, 1]), dims: r.dims, classes: 2 });
    bytes = exportClassifierModel(bb.model, bb.cut, head, ['ants', 'bees'], bb.spec, { base: 'squeezenet1.1' });
    info = JSON.parse(readMetadataProps(bytes)[METADATA_KEY]!) as Record<string, unknown>;
  });

  it('the real export passes: parseModelInfo, the card and headFromModel read it', () => {
    const got = parseModelInfo(readMetadataProps(bytes), 'ants.onnx')!;
    expect(got.labels).toEqual(['ants', 'bees']);
    expect(got.preprocess).toEqual({ ...(info.preprocess as object) });
    expect(cardFromBytes(bytes, { id: 'ants.onnx' }).card.sources.labels).toBe('embedded');
    expect(headFromModel(bytes, 'ants.onnx').info.outputName).toBe('probabilities');
    // a model with no edgetune.model is simply not described
    expect(parseModelInfo({}, 'plain.onnx')).toBeUndefined();
  });

  it('a broken entry is an error naming the model, the key and the path', () => {
    const bad = (edit: (i: Record<string, unknown>) => void): string => {
      const i = clone(info);
      edit(i);
      return thrown(() => parseModelInfo({ [METADATA_KEY]: JSON.stringify(i) }, 'ants.onnx')).message;
    };
    expect(bad((i) => (i.labels = ['ants', 3]))).toBe('ants.onnx: edgetune.model: labels[1]: expected string but received 3');
    expect(bad((i) => (i.version = 2))).toBe('ants.onnx: edgetune.model: version: expected 1 but received 2');
    expect(bad((i) => ((i.preprocess as { layout: string }).layout = 'CHW'))).toBe('ants.onnx: edgetune.model: preprocess.layout: expected "NCHW" | "NHWC" but received "CHW"');
    expect(bad((i) => ((i.preprocess as { crop: number }).crop = 0))).toBe('ants.onnx: edgetune.model: preprocess.crop: expected >0 but received 0');
    expect(bad((i) => delete i.preprocess)).toBe('ants.onnx: edgetune.model: preprocess: required but missing');
    const notJson = thrown(() => parseModelInfo({ [METADATA_KEY]: '{"version":1,' }, 'ants.onnx'));
    expect(notJson.message).toMatch(/^ants\.onnx: edgetune\.model: not valid JSON \(/);
    expect(notJson.code).toBe('EMODEL');
    // loading such a model says so (it is not silently treated as undescribed)
    expect(thrown(() => cardFromBytes(withInfo('{"version":1,"labels":"ants"}'), { id: 'ants.onnx' })).message).toBe(
      'ants.onnx: edgetune.model: labels: expected Array but received "ants"\nants.onnx: edgetune.model: preprocess: required but missing\nants.onnx: edgetune.model: outputKind: required but missing',
    );
    const logits = clone(info);
    logits.outputKind = 'logits';
    expect(thrown(() => headFromModel(withInfo(JSON.stringify(logits)), 'ants.onnx')).message).toBe(
      'ants.onnx: edgetune.model: outputKind: expected "probabilities" but received "logits"',
    );
  });

  it('head JSON: the real head round-trips; wrong sizes, chaining and format are named', () => {
    const real = headFromModel(bytes).head;
    const json = clone(headToJSON(real));
    const back = headFromJSON(json, 'head.json');
    expect(back.layers[0]!.weight).toEqual(real.layers[0]!.weight);
    const bad = (edit: (h: HeadJSON) => void): string => {
      const h = clone(json);
      edit(h);
      return thrown(() => headFromJSON(h, 'head.json')).message;
    };
    expect(bad((h) => h.layers[0]!.weight.pop())).toBe('head.json: layers[0]: expected 2×512 weights and 2 biases but received 1023 and 2');
    expect(bad((h) => (h.classes = 3))).toBe('head.json: layers 512→2 do not lead from 512 dims to 3 classes');
    expect(bad((h) => ((h as { format: string }).format = 'keras'))).toBe('head.json: format: expected "edgetune.head" but received "keras"');
    expect(bad((h) => (h.layers = []))).toBe('head.json: layers: expected at least one layer but received 0');
  });
});

describe('model card and /api/config (mobilenetv2-int8)', () => {
  it('the real card and kiosk config pass, through JSON', async () => {
    const d = await describeModel('mobilenetv2-int8');
    expect(parseContract(ModelCardSchema, clone(d.card), 'card')).toEqual(d.card);
    const { config } = await kioskConfig('mobilenetv2-int8', 3, 'wasm');
    expect(parseKioskConfig(clone(config))).toEqual(config);
    const bad = clone(config);
    bad.topK = 0;
    (bad.model.preprocess as { dtype: string }).dtype = 'int8';
    bad.model.sources['preprocess.mean'] = 'guess' as never;
    expect(thrown(() => parseKioskConfig(bad)).message).toBe(
      '/api/config: model.preprocess.dtype: expected "float32" | "float16" but received "int8"\n' +
        '/api/config: model.sources["preprocess.mean"]: expected "flags" | "card-file" | "embedded" | "registry" | "graph" | "assumed" but received "guess"\n' +
        '/api/config: topK: expected >=1 but received 0',
    );
  });

  it('a card file layer is strict: wrong types and misspelt keys are named', () => {
    expect(parseCardLayer({ labels: ['cat', 'dog'], preprocess: { mean: [0, 0, 0] } }, 'm.card.json')).toEqual({ labels: ['cat', 'dog'], preprocess: { mean: [0, 0, 0] } });
    expect(thrown(() => parseCardLayer({ labels: 'cat' }, 'm.card.json')).message).toBe('m.card.json: labels: expected Array but received "cat"');
    expect(thrown(() => parseCardLayer({ preprocess: { mean: [0.5, 'a', 0.5] } }, 'm.card.json')).message).toBe('m.card.json: preprocess.mean[1]: expected number but received "a"');
    expect(thrown(() => parseCardLayer({ outputKnd: 'logits' }, 'm.card.json')).message).toBe('m.card.json: outputKnd: unknown key (not part of this contract)');
    // nested too (a card's preprocess.maen used to be dropped: the model was fed the assumed mean)
    expect(thrown(() => parseCardLayer({ preprocess: { maen: [0.5, 0.5, 0.5] } }, 'm.card.json')).message).toBe('m.card.json: preprocess.maen: unknown key (not part of this contract)');
    const openSet = { method: 'mahalanobis', output: 'unknown_score', threshold: 1, temperature: 1, target: 0.95 };
    expect(parseCardLayer({ openSet }, 'm.card.json')).toEqual({ openSet });
    expect(thrown(() => parseCardLayer({ openSet: { ...openSet, treshold: 2 } }, 'm.card.json')).message).toBe('m.card.json: openSet.treshold: unknown key (not part of this contract)');
    expect(thrown(() => parseCardLayer('cat', 'm.card.json')).message).toBe('m.card.json: expected Object but received "cat"');
    expect(thrown(() => parseCardLayer([], 'm.card.json')).message).toBe('m.card.json: expected Object but received Array');
  });
});

describe('calibration cache', () => {
  const dir = tempDir('edgetune-schemas-');
  // histograms of a real preprocessed photo, as quantize writes them
  const collector = new RangeCollector();
  let cache: CalibrationCache;
  beforeAll(async () => {
    const img = await decodeImage(shared('camera', 'winml_dog.jpg'), DEFAULT_SPEC);
    collector.add(toTensor([img], DEFAULT_SPEC).data as Float32Array);
    cache = {
      version: 1,
      modelSha256: 'f'.repeat(64),
      model: 'squeezenet1.1',
      calibration: { folder: 'camera', count: 1, seed: 1, images: 1, skipped: [] },
      method: 'minmax',
      ranges: { 'data/0:0': { min: collector.min, max: collector.max } },
      histograms: { 'data/0:0': collector.state() },
    };
  });
  const write = (c: unknown): string => {
    const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(f, JSON.stringify(c));
    return f;
  };
  const rejects = async (c: unknown): Promise<string> => {
    const f = write(c);
    const err = await readCache(f, 'f'.repeat(64), ['data/0:0']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EdgetuneError);
    return (err as Error).message.replaceAll(f, '<file>');
  };

  it('a real cache is read back into the same histogram', async () => {
    const hit = await readCache(write(cache), 'f'.repeat(64), ['data/0:0']);
    expect(hit!.collectors.get('data/0:0')!.state()).toEqual(collector.state());
    // another model's cache is a miss, not an error
    expect(await readCache(write(cache), '0'.repeat(64), ['data/0:0'])).toBeUndefined();
  });

  it('names the file and the broken field', async () => {
    const bad = (edit: (c: CalibrationCache) => void) => {
      const c = clone(cache);
      edit(c);
      return rejects(c);
    };
    expect(await bad((c) => ((c as { version: number }).version = 2))).toBe('<file>: version: expected 1 but received 2');
    expect(await bad((c) => ((c as { method: string }).method = 'kl'))).toBe('<file>: method: expected "minmax" | "percentile" | "entropy" | "mse" but received "kl"');
    expect(await bad((c) => c.histograms['data/0:0']!.bins.pop())).toBe('<file>: histograms["data/0:0"].bins: expected [bin index, count] pairs (an even length)');
    expect(await bad((c) => (c.histograms['data/0:0']!.count = -1))).toBe('<file>: histograms["data/0:0"].count: expected >=0 but received -1');
    expect(await rejects('not a cache')).toBe('<file>: expected Object but received "not a cache"');
  });
});
