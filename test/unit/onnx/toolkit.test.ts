// The ONNX graph toolkit (runtime/onnx) on the real shared models: lossless decode/encode (checked by
// bytes and by bit-identical onnxruntime outputs), tensor data in every storage form (raw_data,
// float_data, int32_data, int64_data, float16), metadata_props, intermediate outputs, pruning,
// topological sort, attribute/opset helpers, and refusal of bytes that are not ONNX.

import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs/minimal.js';
import { shared } from '../../helpers.js';
import { readMetadataProps } from '../../../runtime/core/metadata.js';
import { EdgetuneError } from '../../../runtime/core/errors.js';
import {
  DataType,
  MAX_IR_VERSION,
  addGraphOutput,
  cloneModel,
  consumerMap,
  decodeModel,
  encodeModel,
  findConsumers,
  findProducer,
  findValueInfo,
  getFloatAttribute,
  getFloatsAttribute,
  getInitializer,
  getIntAttribute,
  getIntsAttribute,
  getMetadata,
  getMetadataValue,
  getOpsetVersion,
  getStringAttribute,
  getTensorAttribute,
  isTopologicallySorted,
  makeNode,
  makeTensor,
  nameGenerator,
  producerMap,
  pruneGraph,
  readFloat16Bits,
  readFloat32,
  readInt32,
  readInt64,
  readInt8,
  readRaw,
  readTensor,
  readUint8,
  removeAttribute,
  removeGraphOutput,
  removeInitializer,
  removeNodes,
  requireInitializer,
  setFloatAttribute,
  setFloatsAttribute,
  setInitializer,
  setIntAttribute,
  setIntsAttribute,
  setMetadataValue,
  setOpsetVersion,
  setStringAttribute,
  setTensorAttribute,
  tensorForm,
  tensorTypeOf,
  topologicalSort,
  writeFloat32,
  writeInt64,
  writeInt8,
  writeRaw,
  writeTensor,
  type OnnxModel,
  type TensorProto,
} from '../../../runtime/onnx/index.js';

const MODELS_DIR = shared('models');
const EXPECTED_MODELS = [
  'SqueezeNet_fp16.onnx',
  'mnist_winml.onnx',
  'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx',
  'mobilenetv2-12-int8.onnx',
  'squeezenet1.1_fp32_from_winml_fp16.onnx',
];
const MODEL_FILES = readdirSync(MODELS_DIR)
  .filter((f) => f.endsWith('.onnx'))
  .sort();
/** Files whose writer deviates from the official encoding; re-encoding them is canonical, not byte-equal. */
const NON_CANONICAL: Record<string, string> = {
  'squeezenet1.1_fp32_from_winml_fp16.onnx': 'its writer packed AttributeProto.ints, which onnx.proto declares unpacked',
};

const fileBytes = new Map<string, Uint8Array>();
function bytesOf(file: string): Uint8Array {
  let b = fileBytes.get(file);
  if (!b) {
    b = new Uint8Array(readFileSync(shared('models', file)));
    fileBytes.set(file, b);
  }
  return b;
}
const load = (file: string): OnnxModel => decodeModel(bytesOf(file));

// ---------------------------------------------------------------------------------------------------
// onnxruntime helpers: one thread, deterministic inputs, outputs compared bit for bit

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };

/** Same values every run: a smooth pattern in roughly [-2, 2], float16 as half bits. */
function deterministicFeeds(model: OnnxModel): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of model.graph.input) {
    const name = input.name!;
    if (getInitializer(model.graph, name)) continue;
    const info = tensorTypeOf(model.graph, name)!;
    const dims = info.shape!.map((d) => (typeof d === 'number' ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.37) * 2 + Math.cos(i * 0.011)));
    if (info.elemType === DataType.FLOAT16) {
      const half = new Uint16Array(n);
      const t = makeTensor('x', DataType.FLOAT16, [n], values);
      half.set(readFloat16Bits(t));
      feeds[name] = new ort.Tensor('float16', half, dims);
    } else {
      expect(info.elemType).toBe(DataType.FLOAT);
      feeds[name] = new ort.Tensor('float32', values, dims);
    }
  }
  return feeds;
}

interface RunResult {
  [name: string]: { type: string; dims: readonly number[]; bytes: Uint8Array };
}

async function runModel(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, fetches?: string[]): Promise<RunResult> {
  const session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  try {
    const out = fetches ? await session.run(feeds, fetches) : await session.run(feeds);
    const result: RunResult = {};
    for (const [name, t] of Object.entries(out)) {
      const data = t.data as Float32Array;
      result[name] = { type: t.type, dims: [...t.dims], bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() };
    }
    return result;
  } finally {
    await session.release();
  }
}

const referenceRuns = new Map<string, Promise<RunResult>>();
/** Outputs of the untouched file (cached: several tests compare against them). */
function reference(file: string): Promise<RunResult> {
  let r = referenceRuns.get(file);
  if (!r) {
    r = runModel(bytesOf(file), deterministicFeeds(load(file)));
    referenceRuns.set(file, r);
  }
  return r;
}

function expectSameOutputs(actual: RunResult, expected: RunResult): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, e] of Object.entries(expected)) {
    const a = actual[name]!;
    expect(a.type, name).toBe(e.type);
    expect(a.dims, name).toEqual(e.dims);
    expect(Buffer.compare(Buffer.from(a.bytes), Buffer.from(e.bytes)), `${name} differs bitwise`).toBe(0);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

/** Deep equality that is fast on large models (vitest's toEqual walks typed arrays element by element). */
function sameValue(a: unknown, b: unknown, path = 'model'): string | undefined {
  if (a === b) return undefined;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    if (a.constructor !== b.constructor) return `${path}: ${a.constructor.name} vs ${b.constructor.name}`;
    const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return bytesEqual(ua, ub) ? undefined : `${path}: bytes differ`;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: length ${a.length} vs ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = sameValue(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.join() !== kb.join()) return `${path}: keys ${ka.join()} vs ${kb.join()}`;
    for (const k of ka) {
      const d = sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  if (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b)) return undefined;
  return `${path}: ${String(a)} vs ${String(b)}`;
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function errorOf(fn: () => unknown): EdgetuneError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgetuneError);
    return err as EdgetuneError;
  }
  throw new Error('expected an error');
}

// ---------------------------------------------------------------------------------------------------

describe('shared models', () => {
  it('has every model MODELS.md lists', () => {
    for (const f of EXPECTED_MODELS) expect(() => shared('models', f)).not.toThrow();
    expect(MODEL_FILES).toEqual(expect.arrayContaining(EXPECTED_MODELS));
  });
});

describe.each(MODEL_FILES)('round trip of %s', (file) => {
  it('decode → encode → decode keeps nodes, initializers, opsets and IR version', () => {
    const original = bytesOf(file);
    const model = decodeModel(original);
    const encoded = encodeModel(model);
    const again = decodeModel(encoded);
    expect(again.graph.node.length).toBe(model.graph.node.length);
    expect(again.graph.initializer.length).toBe(model.graph.initializer.length);
    expect(again.opsetImport).toEqual(model.opsetImport);
    expect(again.irVersion).toBe(model.irVersion);
    expect(sameValue(again, model)).toBeUndefined();
    // re-encoding is a fixed point, and reproduces files from canonical writers byte for byte
    expect(bytesEqual(encodeModel(again), encoded)).toBe(true);
    if (NON_CANONICAL[file]) expect(bytesEqual(encoded, original), NON_CANONICAL[file]).toBe(false);
    else expect(bytesEqual(encoded, original), `${file} re-encodes byte for byte`).toBe(true);
  });

  it('re-encoded model gives bit-identical onnxruntime outputs', async () => {
    const model = load(file);
    const out = await runModel(encodeModel(model), deterministicFeeds(model));
    expectSameOutputs(out, await reference(file));
  });
});

describe('model facts', () => {
  it('reads what the shared models are', () => {
    const v2 = load('mobilenetv2-12-int8.onnx');
    expect(v2.irVersion).toBe(7);
    expect(getOpsetVersion(v2)).toBe(12);
    expect(getOpsetVersion(v2, 'ai.onnx')).toBe(12);
    expect(getOpsetVersion(v2, 'com.microsoft')).toBe(1);
    const gap = v2.graph.node.find((n) => n.opType === 'QLinearGlobalAveragePool')!;
    expect(gap.domain).toBe('com.microsoft');
    expect(gap.output).toEqual(['464_quantized']);
    const matmul = v2.graph.node.filter((n) => n.opType === 'QLinearMatMul').at(-1)!;
    expect(matmul.input.slice(0, 3)).toEqual(['472_quantized', '464_scale', '464_zero_point']);
    expect(findProducer(v2.graph, '472_quantized')!.input[0]).toBe('464_quantized'); // a Reshape (flatten) between them
    expect(readFloat32(requireInitializer(v2.graph, '464_scale'))[0]).toBe(Math.fround(0.019110053777694702));
    expect(Array.from(readUint8(requireInitializer(v2.graph, '464_zero_point')))).toEqual([0]);

    const sq = load('squeezenet1.1_fp32_from_winml_fp16.onnx');
    expect(findProducer(sq.graph, 'fire9/concat_1')!.opType).toBe('Concat');
    expect(findConsumers(sq.graph, 'fire9/concat_1').map((n) => n.opType)).toEqual(['Dropout']);
    expect(sq.irVersion).toBe(3);
    expect(getOpsetVersion(sq)).toBe(7);
  });
});

describe('metadata_props', () => {
  it('writes, reads back through a round trip, and onnxruntime still loads the model', async () => {
    const file = 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx';
    const model = load(file);
    expect(getMetadata(model)).toEqual({});
    const info = JSON.stringify({ version: 1, labels: ['background', 'tench'], note: 'ünïcode ✓' });
    setMetadataValue(model, 'edgetune.model', info);
    setMetadataValue(model, 'author', 'first');
    setMetadataValue(model, 'author', 'second'); // replaces, no duplicate
    setMetadataValue(model, 'scratch', 'x');
    setMetadataValue(model, 'scratch', undefined); // removes
    const bytes = encodeModel(model);
    const back = decodeModel(bytes);
    expect(getMetadata(back)).toEqual({ 'edgetune.model': info, author: 'second' });
    expect(getMetadataValue(back, 'edgetune.model')).toBe(info);
    expect(back.metadataProps).toHaveLength(2);
    expect(readMetadataProps(bytes)).toEqual({ 'edgetune.model': info, author: 'second' }); // the runtime's cheap reader agrees
    expectSameOutputs(await runModel(bytes, deterministicFeeds(back)), await reference(file));
  });

  it('keeps metadata a model already has', () => {
    const mnist = load('mnist_winml.onnx');
    expect(getMetadata(mnist)).toEqual({
      'Image.BitmapPixelFormat': 'Gray8',
      'Image.ColorSpaceGamma': 'SRGB',
      'Image.NominalPixelRange': 'NominalRange_0_255',
    });
    setMetadataValue(mnist, 'edgetune.model', '{}');
    expect(Object.keys(getMetadata(decodeModel(encodeModel(mnist))))).toHaveLength(4);
  });
});

describe('initializers', () => {
  it('raw_data float32: get/set round trip, and float_data form gives identical outputs', async () => {
    const file = 'squeezenet1.1_fp32_from_winml_fp16.onnx';
    const model = load(file);
    const w = requireInitializer(model.graph, 'conv10_w_0');
    expect(tensorForm(w)).toBe('raw');
    const values = readFloat32(w);
    expect(values.length).toBe(w.dims.reduce((a, b) => a * b, 1));
    const changed = Float32Array.from(values, (v, i) => (i % 7 === 0 ? -v : v));
    writeFloat32(w, changed);
    expect(tensorForm(w)).toBe('raw');
    const back = decodeModel(encodeModel(model));
    expect(sameValue(readFloat32(requireInitializer(back.graph, 'conv10_w_0')), changed)).toBeUndefined();
    const changedOut = await runModel(encodeModel(back), deterministicFeeds(back)); // the comparison can fail
    expect(bytesEqual(changedOut.softmaxout_1!.bytes, (await reference(file)).softmaxout_1!.bytes)).toBe(false);

    // every float initializer moved to float_data: same outputs, bit for bit
    const typed = load(file);
    for (const t of typed.graph.initializer) writeFloat32(t, readFloat32(t), { form: 'typed' });
    const typedBytes = encodeModel(typed);
    const reread = decodeModel(typedBytes);
    for (const t of reread.graph.initializer) {
      expect(t.rawData).toBeUndefined();
      expect(t.floatData.length).toBe(t.dims.reduce((a, b) => a * b, 1));
    }
    expect(sameValue(readFloat32(requireInitializer(reread.graph, 'conv1_w_0')), readFloat32(requireInitializer(load(file).graph, 'conv1_w_0')))).toBeUndefined();
    expectSameOutputs(await runModel(typedBytes, deterministicFeeds(reread)), await reference(file));
  });

  it('float_data and int64_data (MNIST) to raw_data gives identical outputs', async () => {
    const file = 'mnist_winml.onnx';
    const model = load(file);
    const shape = requireInitializer(model.graph, 'Pooling160_Output_0_reshape0_shape');
    expect(tensorForm(shape)).toBe('typed');
    expect(shape.int64Data.every((v) => typeof v === 'bigint')).toBe(true);
    const dims = readInt64(shape);
    expect(dims).toBeInstanceOf(BigInt64Array);
    expect(Array.from(dims)).toEqual([1n, 256n]);
    for (const t of model.graph.initializer) {
      expect(tensorForm(t)).toBe('typed');
      if (t.dataType === DataType.INT64) writeInt64(t, readInt64(t), { form: 'raw' });
      else writeFloat32(t, readFloat32(t), { form: 'raw' });
      expect(t.rawData).toBeDefined();
    }
    const bytes = encodeModel(model);
    expect(Array.from(readInt64(requireInitializer(decodeModel(bytes).graph, 'Pooling160_Output_0_reshape0_shape')))).toEqual([1n, 256n]);
    expectSameOutputs(await runModel(bytes, deterministicFeeds(model)), await reference(file));
  });

  it('int64 data is exact beyond 2^53 and in both forms', () => {
    const big = [9223372036854775807n, -9223372036854775808n, 9007199254740993n, -1n];
    for (const form of ['raw', 'typed'] as const) {
      const t = makeTensor('big', DataType.INT64, [4], big, form);
      const back = decodeModel(encodeModel(withInitializer(t)));
      expect(Array.from(readInt64(requireInitializer(back.graph, 'big')))).toEqual(big);
    }
    expect(() => makeTensor('bad', DataType.INT64, [1], [2 ** 60])).toThrow(/not a safe integer/);
  });

  it('float16: exact widening to float32 and back, raw and int32_data forms', async () => {
    const half = load('SqueezeNet_fp16.onnx');
    const full = load('squeezenet1.1_fp32_from_winml_fp16.onnx');
    for (const t of half.graph.initializer) {
      expect(t.dataType).toBe(DataType.FLOAT16);
      const f32 = requireInitializer(full.graph, t.name!);
      const widened = readFloat32(t);
      expect(bytesEqual(new Uint8Array(widened.buffer), new Uint8Array(readFloat32(f32).buffer)), t.name).toBe(true);
      const bits = readFloat16Bits(t);
      const copy = makeTensor('c', DataType.FLOAT16, t.dims, readFloat32(f32)); // float32 → half rounding
      expect(sameValue(readFloat16Bits(copy), bits, t.name)).toBeUndefined();
      expect(bytesEqual(readRaw(copy), t.rawData!)).toBe(true);
      writeTensor(t, bits, { form: 'typed' }); // float16 bits in int32_data
    }
    const bytes = encodeModel(half);
    const back = decodeModel(bytes);
    expect(back.graph.initializer.every((t) => t.rawData === undefined && t.int32Data.length > 0)).toBe(true);
    expectSameOutputs(await runModel(bytes, deterministicFeeds(back)), await reference('SqueezeNet_fp16.onnx'));
  });

  it('int8 / uint8 / int32 (MobileNetV2 int8) in the other form gives identical outputs', async () => {
    const file = 'mobilenetv2-12-int8.onnx';
    const model = load(file);
    const counts: Record<string, number> = {};
    for (const t of model.graph.initializer) {
      const dt = t.dataType!;
      if (dt !== DataType.INT8 && dt !== DataType.UINT8 && dt !== DataType.INT32) continue;
      const before = readTensor(t);
      const flipped = tensorForm(t) === 'raw' ? 'typed' : 'raw';
      if (dt === DataType.INT8) writeInt8(t, readInt8(t), { form: flipped });
      else if (dt === DataType.UINT8) writeRaw(t, readRaw(t), { form: flipped });
      else writeTensor(t, readInt32(t), { form: flipped });
      expect(tensorForm(t)).toBe(flipped);
      expect(sameValue(readTensor(t), before, t.name)).toBeUndefined();
      const key = `${dt}:${flipped}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    expect(Object.keys(counts).length).toBeGreaterThanOrEqual(3);
    const bytes = encodeModel(model);
    expectSameOutputs(await runModel(bytes, deterministicFeeds(model)), await reference(file));
  });

  it('set / replace / remove initializers; wrong types and sizes are refused', () => {
    const model = load('mnist_winml.onnx');
    const g = model.graph;
    const n = g.initializer.length;
    setInitializer(g, makeTensor('extra', DataType.INT32, [3], [1, -2, 3]));
    expect(g.initializer.length).toBe(n + 1);
    setInitializer(g, makeTensor('extra', DataType.INT32, [2], new Int32Array([7, 8]), 'typed'));
    expect(g.initializer.length).toBe(n + 1);
    expect(Array.from(readInt32(requireInitializer(decodeModel(encodeModel(model)).graph, 'extra')))).toEqual([7, 8]);
    expect(removeInitializer(g, 'extra')).toBe(true);
    expect(removeInitializer(g, 'extra')).toBe(false);
    const w = requireInitializer(g, 'Parameter5');
    expect(() => readInt8(w)).toThrow('tensor "Parameter5" is FLOAT, not INT8');
    expect(() => writeFloat32(w, new Float32Array(3))).toThrow('tensor "Parameter5": 3 values given for dims [8,1,5,5], which need 200');
    expect(() => makeTensor('q', DataType.INT8, [2], [1, 200])).toThrow('tensor "q": element 1 (200) does not fit in INT8');
    expect(() => requireInitializer(g, 'nope')).toThrow('initializer "nope" not found');
  });
});

function withInitializer(t: TensorProto): OnnxModel {
  const model = load('mnist_winml.onnx');
  setInitializer(model.graph, t);
  return model;
}

describe('graph outputs and pruning', () => {
  it('exposes MobileNetV1 AvgPool (256 channels) as an output', async () => {
    const model = load('mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx');
    const name = 'MobilenetV1/Logits/AvgPool_1a/AvgPool';
    const out = addGraphOutput(model.graph, name);
    expect(out.type?.tensorType?.elemType).toBe(DataType.FLOAT); // typed from value_info
    expect(addGraphOutput(model.graph, name)).toBe(out);
    const result = await runModel(encodeModel(model), deterministicFeeds(model));
    expect(result[name]!.type).toBe('float32');
    expect(result[name]!.dims).toEqual([1, 256, 1, 1]);
    expect(() => addGraphOutput(model.graph, 'no/such/value')).toThrow('no value named "no/such/value"');

    // cut the graph at the pooled features: the head goes, the features are unchanged
    const full = result[name]!;
    removeGraphOutput(model.graph, 'MobilenetV1/Predictions/Reshape_1');
    const pruned = pruneGraph(model.graph);
    expect(pruned.nodes).toBe(4); // Conv 1x1, Transpose, Reshape, Softmax
    expect(pruned.initializers).toBe(3); // head weights, bias, reshape shape
    expect(model.graph.node.at(-1)!.output).toEqual([name]);
    expect(findValueInfo(model.graph, 'MobilenetV1/Logits/SpatialSqueeze')).toBeUndefined();
    const cut = await runModel(encodeModel(model), deterministicFeeds(model));
    expect(Object.keys(cut)).toEqual([name]);
    expect(bytesEqual(cut[name]!.bytes, full.bytes)).toBe(true);
  });

  it('exposes MobileNetV2-int8 pooled features (no value_info: type left to onnxruntime)', async () => {
    const model = load('mobilenetv2-12-int8.onnx');
    expect(model.graph.valueInfo).toHaveLength(0);
    const out = addGraphOutput(model.graph, '464_quantized');
    expect(out.type).toBeUndefined();
    const result = await runModel(encodeModel(model), deterministicFeeds(model));
    expect(result['464_quantized']!.type).toBe('uint8');
    expect(result['464_quantized']!.dims).toEqual([1, 1280, 1, 1]);
  });

  it('prunes initializers declared as IR 3 graph inputs along with them', () => {
    const model = load('squeezenet1.1_fp32_from_winml_fp16.onnx');
    expect(model.graph.input).toHaveLength(53);
    model.graph.output = [];
    addGraphOutput(model.graph, 'fire9/concat_1');
    const r = pruneGraph(model.graph);
    expect(r.nodes).toBe(5); // Dropout, conv10, Relu, GlobalAveragePool, Softmax
    expect(getInitializer(model.graph, 'conv10_w_0')).toBeUndefined();
    expect(model.graph.input.map((v) => v.name)).not.toContain('conv10_w_0');
    expect(model.graph.input.map((v) => v.name)).toContain('data_0');
    expect(removeNodes(model.graph, (n) => n.opType === 'Nothing')).toBe(0);
  });
});

describe('topological order', () => {
  it('sorting a shuffled node list restores a valid order (and ORT agrees)', async () => {
    const file = 'squeezenet1.1_fp32_from_winml_fp16.onnx';
    const model = load(file);
    const original = [...model.graph.node];
    topologicalSort(model.graph);
    expect(model.graph.node.every((n, i) => n === original[i])).toBe(true); // a sorted list stays as it is
    const rand = mulberry32(1234);
    const shuffled = [...original];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    model.graph.node = shuffled;
    expect(isTopologicallySorted(model.graph)).toBe(false);
    topologicalSort(model.graph);
    expect(isTopologicallySorted(model.graph)).toBe(true);
    expect(model.graph.node.length).toBe(original.length);
    expect(original.every((n) => model.graph.node.includes(n))).toBe(true);
    const producers = producerMap(model.graph);
    const pos = new Map(model.graph.node.map((n, i) => [n, i]));
    for (const [i, n] of model.graph.node.entries()) {
      for (const input of n.input) {
        const p = producers.get(input);
        if (p) expect(pos.get(p)!).toBeLessThan(i);
      }
    }
    expectSameOutputs(await runModel(encodeModel(model), deterministicFeeds(model)), await reference(file));
  });

  it('refuses a cycle', () => {
    const model = load('mnist_winml.onnx');
    const g = model.graph;
    g.node.push(makeNode('Identity', ['loop_b'], ['loop_a']), makeNode('Identity', ['loop_a'], ['loop_b']));
    expect(() => topologicalSort(g)).toThrow(/graph has a cycle through Identity node/);
  });
});

describe('names, attributes, opsets', () => {
  it('generates unique names and finds consumers', () => {
    const model = load('squeezenet1.1_fp32_from_winml_fp16.onnx');
    const names = nameGenerator(model);
    expect(names.next('fire9/concat_1')).toBe('fire9/concat_1_1');
    expect(names.next('fire9/concat_1')).toBe('fire9/concat_1_2');
    expect(names.next('brand_new')).toBe('brand_new');
    expect(names.has('conv10_w_0')).toBe(true);
    expect(consumerMap(model.graph).get('data_0')!.map((n) => n.opType)).toEqual(['Conv']);
  });

  it('gets and sets attributes of every kind, through a round trip', () => {
    const model = load('mnist_winml.onnx');
    const conv = model.graph.node.find((n) => n.opType === 'Conv')!;
    expect(getIntsAttribute(conv, 'kernel_shape')).toEqual([5, 5]);
    expect(getIntAttribute(conv, 'group')).toBe(1);
    expect(() => getIntAttribute(conv, 'kernel_shape')).toThrow('attribute "kernel_shape" of Conv node "Convolution28" is INTS, not INT');
    setIntAttribute(conv, 'my_int', 9223372036854775807n);
    setIntsAttribute(conv, 'my_ints', [1, -2, 3n]);
    setFloatAttribute(conv, 'my_float', 0.1);
    setFloatsAttribute(conv, 'my_floats', [0.5, -1.25]);
    setStringAttribute(conv, 'my_string', 'NOTSET ✓');
    setTensorAttribute(conv, 'my_tensor', makeTensor('', DataType.FLOAT, [2], [1.5, 2.5]));
    setIntAttribute(conv, 'group', 1); // replace in place
    const back = decodeModel(encodeModel(model)).graph.node.find((n) => n.name === conv.name)!;
    expect(back.attribute.find((a) => a.name === 'my_int')!.i).toBe(9223372036854775807n);
    expect(getIntsAttribute(back, 'my_ints')).toEqual([1, -2, 3]);
    expect(getFloatAttribute(back, 'my_float')).toBe(Math.fround(0.1));
    expect(getFloatsAttribute(back, 'my_floats')).toEqual([0.5, -1.25]);
    expect(getStringAttribute(back, 'my_string')).toBe('NOTSET ✓');
    expect(Array.from(readFloat32(getTensorAttribute(back, 'my_tensor')!))).toEqual([1.5, 2.5]);
    expect(back.attribute.filter((a) => a.name === 'group')).toHaveLength(1);
    expect(removeAttribute(back, 'my_int')).toBe(true);
    expect(getIntAttribute(back, 'my_int')).toBeUndefined();
  });

  it('reads and sets opsets', () => {
    const model = load('mnist_winml.onnx');
    expect(getOpsetVersion(model)).toBe(7);
    expect(getOpsetVersion(model, 'com.microsoft')).toBeUndefined();
    setOpsetVersion(model, 13);
    setOpsetVersion(model, 1, 'com.microsoft');
    const back = decodeModel(encodeModel(model));
    expect(back.opsetImport).toEqual([
      { domain: '', version: 13 },
      { domain: 'com.microsoft', version: 1 },
    ]);
  });

  it('cloneModel is a deep copy', () => {
    const model = load('mnist_winml.onnx');
    const copy = cloneModel(model);
    expect(sameValue(copy, model)).toBeUndefined();
    copy.graph.node.pop();
    expect(model.graph.node).toHaveLength(12);
    expect(sameValue(copy, model)).toBe('model.graph.node: length 11 vs 12');
  });
});

describe('fields no shared model uses', () => {
  it('survive encode → decode: functions, training info, sparse tensors, multi-device, exotic types', () => {
    const model = load('mnist_winml.onnx');
    model.irVersion = 11;
    model.producerVersion = '1.2.3';
    model.modelVersion = 42;
    model.configuration = [{ name: 'two-gpus', numDevices: 2, device: ['gpu0', 'gpu1'] }];
    const conv = model.graph.node[1]!;
    conv.overload = 'ov';
    conv.metadataProps = [{ key: 'k', value: 'v' }];
    conv.deviceConfigurations = [
      {
        configurationId: 'two-gpus',
        pipelineStage: 1,
        shardingSpec: [
          {
            tensorName: conv.input[0],
            device: [0, 1],
            indexToDeviceGroupMap: [{ key: 5, value: [0, 1] }],
            shardedDim: [{ axis: 0, simpleSharding: [{ dimParam: 'N', numShards: 2 }, { dimValue: 8, numShards: 4 }] }],
          },
        ],
      },
    ];
    const types = [
      { sequenceType: { elemType: { tensorType: { elemType: DataType.FLOAT } } } },
      { mapType: { keyType: DataType.INT64, valueType: { tensorType: { elemType: DataType.FLOAT } } } },
      { optionalType: { elemType: { tensorType: { elemType: DataType.INT32 } } }, denotation: 'TENSOR' },
      { sparseTensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 3, denotation: 'DATA_BATCH' }] } } },
      { opaqueType: { domain: 'x.y', name: 'Blob' } },
    ];
    conv.attribute.push({
      name: 'tps',
      type: 14,
      typeProtos: types,
      floats: [],
      ints: [],
      strings: [],
      tensors: [],
      graphs: [],
      sparseTensors: [],
    });
    const t = (name: string, dataType: number, dims: number[], extra: Partial<TensorProto>): TensorProto => {
      const tensor: TensorProto = { ...makeTensor(name, DataType.UINT8, [0], []), dataType, dims, ...extra };
      delete tensor.rawData;
      return tensor;
    };
    const values = t('sp_values', DataType.FLOAT, [2], { floatData: [1.5, -2] });
    const indices = t('sp_indices', DataType.INT64, [2], { int64Data: [1n, 7n] });
    model.graph.sparseInitializer = [{ values, indices, dims: [3, 3] }];
    const strings = t('strs', DataType.STRING, [2], { stringData: [new TextEncoder().encode('a'), new Uint8Array([0xff])] });
    const u64 = t('u64', DataType.UINT64, [1], { uint64Data: [18446744073709551615n], docString: 'max', metadataProps: [{ key: 'a', value: 'b' }] });
    const f64 = t('f64', DataType.DOUBLE, [1], { doubleData: [Math.PI] });
    const ext = t('ext', DataType.FLOAT, [4], { dataLocation: 1, externalData: [{ key: 'location', value: 'w.bin' }, { key: 'offset', value: '0' }] });
    const seg = t('seg', DataType.FLOAT, [2], { segment: { begin: 0, end: 2 }, floatData: [1, 2] });
    model.graph.initializer.push(strings, u64, f64, ext, seg);
    model.graph.quantizationAnnotation = [{ tensorName: 'Plus30_Output_0', quantParameterTensorNames: [{ key: 'SCALE_TENSOR', value: 's' }] }];
    model.graph.metadataProps = [{ key: 'graph', value: 'meta' }];
    model.graph.valueInfo[0]!.metadataProps = [{ key: 'vi', value: 'meta' }];
    const body = makeNode('Relu', ['x'], ['y'], { name: 'f_relu' });
    model.functions = [
      {
        name: 'MyRelu',
        domain: 'my.fns',
        overload: 'ov',
        input: ['x'],
        output: ['y'],
        attribute: ['alpha'],
        attributeProto: [],
        node: [body],
        opsetImport: [{ domain: '', version: 13 }],
        valueInfo: [],
        metadataProps: [],
        docString: 'fn',
      },
    ];
    model.trainingInfo = [
      {
        algorithm: { ...structuredClone(model.graph), node: [], initializer: [] },
        initializationBinding: [{ key: 'a', value: 'b' }],
        updateBinding: [{ key: 'c', value: 'd' }],
      },
    ];
    const bytes = encodeModel(model);
    const back = decodeModel(bytes);
    expect(sameValue(back, model)).toBeUndefined();
    expect(bytesEqual(encodeModel(back), bytes)).toBe(true);
    expect(back.graph.initializer.find((x) => x.name === 'u64')!.uint64Data).toEqual([18446744073709551615n]);
    expect(() => readFloat32(back.graph.initializer.find((x) => x.name === 'ext')!)).toThrow(
      'tensor "ext" keeps its data in an external file (w.bin), which edgetune does not read',
    );
  });
});

describe('refusing what is not an ONNX model', () => {
  const random = (seed: number) => {
    const r = mulberry32(seed);
    return Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256));
  };
  it.each([
    ['empty', new Uint8Array(0), 'Not an ONNX model: the data is empty (0 bytes)'],
    ['text', new TextEncoder().encode('This is a text file, not an ONNX model.\n'), 'Not an ONNX model: the data is not a protobuf ModelProto (invalid wire type 4 at byte 0)'],
    ['JSON', new TextEncoder().encode('{"labels": ["ant", "bee"]}\n'), 'Not an ONNX model: the data is not a protobuf ModelProto (invalid wire type 3 at byte 0)'],
    ['random bytes', random(42), 'Not an ONNX model: the data is not a protobuf ModelProto (invalid wire type 7 at byte 10)'],
    ['other random bytes', random(1), 'Not an ONNX model: the data is not a protobuf ModelProto (wrong wire type 0 for ModelProto.domain at byte 0)'],
  ])('%s', (_label, bytes, message) => {
    const err = errorOf(() => decodeModel(bytes));
    expect(err.code).toBe('EMODEL');
    expect(err.message).toBe(message);
  });

  it('a text file from disk', () => {
    const err = errorOf(() => decodeModel(new Uint8Array(readFileSync(shared('models', 'MODELS.md')))));
    expect(err.code).toBe('EMODEL');
    expect(err.message).toMatch(/^Not an ONNX model: /);
  });

  it('a truncated model', () => {
    const err = errorOf(() => decodeModel(bytesOf('mnist_winml.onnx').slice(0, 1000)));
    expect(err.message).toBe('Not an ONNX model: the data is not a protobuf ModelProto (length past the end of the data at byte 27)');
  });

  it('an IR version newer than the schema', () => {
    const bytes = bytesOf('mnist_winml.onnx').slice();
    expect(Array.from(bytes.subarray(0, 2))).toEqual([0x08, 3]); // ir_version 3
    bytes[1] = MAX_IR_VERSION + 1;
    const err = errorOf(() => decodeModel(bytes));
    expect(err.code).toBe('EMODEL');
    expect(err.message).toBe(`IR version ${MAX_IR_VERSION + 1} is newer than edgetune's ONNX schema (max ${MAX_IR_VERSION})`);
    const model = load('mnist_winml.onnx');
    model.irVersion = MAX_IR_VERSION + 1;
    expect(() => encodeModel(model)).toThrow(/irVersion must be an integer from 1 to 13/);
  });

  it('fields the schema does not know, rather than dropping them', () => {
    // ModelProto { ir_version: 8, graph: { name: "g", <field 99: varint 1> } }
    const graph = protobuf.Writer.create().uint32((2 << 3) | 2).string('g').uint32((99 << 3) | 0).uint32(1).finish();
    const bytes = protobuf.Writer.create().uint32(8).uint32(8).uint32((7 << 3) | 2).bytes(graph).finish();
    const err = errorOf(() => decodeModel(new Uint8Array(bytes)));
    expect(err.message).toBe(
      "ONNX model has a field edgetune's schema does not know (GraphProto field 99 at byte 7); refusing to load it rather than drop it",
    );
    const top = protobuf.Writer.create().uint32(8).uint32(8).uint32((7 << 3) | 2).bytes(new Uint8Array(0)).uint32(99 << 3).uint32(1).finish();
    expect(errorOf(() => decodeModel(new Uint8Array(top))).message).toBe('Not an ONNX model: unknown ModelProto field 99 at byte 4');
    const noGraph = protobuf.Writer.create().uint32(8).uint32(8).finish();
    expect(errorOf(() => decodeModel(new Uint8Array(noGraph))).message).toBe('Not an ONNX model: no graph field');
  });
});
