// The Open Inference Protocol both ways, on the real models and photos in ../shared: `serveModels`
// (edgetune serve) on an ephemeral loopback port and the remote session (`--model http://…/v2/models/x`)
// talking to it. Served outputs equal a bare onnxruntime session's bit for bit (JSON and binary);
// remote top-1 equals local top-1 on every camera photo; every body that crosses the wire is checked
// against the protocol's OpenAPI (../shared/specs/open-inference-protocol/open_inference_rest.yaml,
// with Triton's binary extension allowed) and the config against Triton's model_config.proto; Triton's
// binary-data example is reproduced; bad requests get the protocol's error and the service keeps serving.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Ajv from 'ajv';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadClassifier, type Classifier } from '../../../runtime/classify/classifier.js';
import { toTensor } from '../../../runtime/image/preprocess.js';
import { fromHalf, type TensorData, type TensorType } from '../../../runtime/core/tensor.js';
import { parseModelInfo } from '../../../runtime/core/metadata.js';
import { describeModel } from '../../../models/describe.js';
import { exportTritonRepository, TRITON_CARD_PARAMETER, TRITON_SHA256_PARAMETER } from '../../../runtime/fleet/triton.js';
import { serveModels, type ModelServer } from '../../../runtime/serve/server.js';
import { connectRemoteModel, decodeResponse, parseModelUrl } from '../../../runtime/serve/client.js';
import { HEADER_LENGTH, OipError, bytesOf, elementsOf, joinBody, modelName, readBytesElements, splitBody, tensorBytes, tensorFromJson } from '../../../runtime/serve/oip.js';
import { refusedPort, shared, tempDir } from '../../helpers.js';

process.env.EDGETUNE_MODEL_PATH = shared('models');
process.env.EDGETUNE_OFFLINE = '1';

// Four registry models that cover the protocol's cases: a dynamic batch (int8 MobileNetV2), a fixed
// [1,3,224,224] input with a [1,1000,1,1] output (SqueezeNet), FP16 tensors, and a background class at
// output 0 (MobileNetV1, label offset 1).
const MODELS = ['mobilenetv2-int8', 'squeezenet1.1', 'squeezenet1.1-fp16', 'mobilenetv1-0.25-128'];
const cameraDir = shared('camera');
const PHOTOS = readdirSync(cameraDir)
  .filter((f) => /\.(jpe?g|png)$/i.test(f))
  .sort()
  .map((f) => path.join(cameraDir, f));

// ---- the spec: the OpenAPI components, compiled by ajv; Triton's binary extension allowed --------
const spec = parseYaml(readFileSync(shared('specs', 'open-inference-protocol', 'open_inference_rest.yaml'), 'utf8')) as { components: { schemas: Record<string, Record<string, unknown>> } };
// extension_binary_data.md: an input or output whose bytes follow the JSON carries
// parameters.binary_data_size instead of "data"; everything else as the spec says.
const schemas = structuredClone(spec.components.schemas);
for (const k of ['request_input', 'response_output']) {
  const s = schemas[k]!;
  s.required = (s.required as string[]).filter((r) => r !== 'data');
  s.anyOf = [{ required: ['data'] }, { required: ['parameters'], properties: { parameters: { type: 'object', required: ['binary_data_size'], properties: { binary_data_size: { type: 'integer', minimum: 0 } } } } }];
}
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema({ $id: 'oip', components: { schemas } });
ajv.addSchema({ $id: 'oip-strict', components: spec.components });
function validate(component: string, body: unknown, strictSpec = false): void {
  const check = ajv.getSchema(`${strictSpec ? 'oip-strict' : 'oip'}#/components/schemas/${component}`)!;
  if (!check(body)) throw new Error(`${component}: ${ajv.errorsText(check.errors)} in ${JSON.stringify(body).slice(0, 300)}`);
}

// ---- every request the client sends and every answer it gets, for validation ---------------------
const traffic: { url: string; method: string; request?: Uint8Array; requestHeaderLength?: string; status: number; response: Uint8Array; responseHeaderLength?: string }[] = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
  const res = await realFetch(input, init);
  const body = new Uint8Array(await res.clone().arrayBuffer());
  const h = (init?.headers ?? {}) as Record<string, string>;
  traffic.push({
    url: String(input),
    method: init?.method ?? 'GET',
    ...(init?.body ? { request: init.body as Uint8Array } : {}),
    requestHeaderLength: h[HEADER_LENGTH],
    status: res.status,
    response: body,
    responseHeaderLength: res.headers.get(HEADER_LENGTH) ?? undefined,
  });
  return res;
};

let server: ModelServer;
const local = new Map<string, Classifier>();
const bare = new Map<string, ort.InferenceSession>();
const url = (p: string) => new URL(p, server.url).href;

beforeAll(async () => {
  server = await serveModels(MODELS, { port: 0, threads: 1, providers: ['cpu'] });
  for (const m of MODELS) {
    const clf = await loadClassifier(m, { threads: 1, providers: ['cpu'] });
    local.set(m, clf);
    bare.set(m, await ort.InferenceSession.create(clf.modelPath, { intraOpNumThreads: 1, executionProviders: ['cpu'] }));
  }
});

afterAll(async () => {
  globalThis.fetch = realFetch;
  await server?.close();
  for (const c of local.values()) await c.dispose();
  for (const s of bare.values()) await s.release();
});

/** One photo preprocessed by the local classifier: the model's input tensor. */
async function inputOf(m: string, photo: string): Promise<TensorData> {
  const clf = local.get(m)!;
  return toTensor([await clf.decode(photo)], clf.spec);
}

async function bareRun(m: string, t: TensorData): Promise<ort.Tensor> {
  const clf = local.get(m)!;
  const s = bare.get(m)!;
  const out = await s.run({ [clf.inputName]: new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims as number[]) });
  return out[clf.outputName]!;
}

const DT: Record<string, string> = { float32: 'FP32', float16: 'FP16' };

async function post(name: string, body: Uint8Array | string, headers: Record<string, string> = {}): Promise<Response> {
  return realFetch(url(`/v2/models/${name}/infer`), { method: 'POST', body: body as BodyInit, headers });
}

/** POST a JSON header and binary tensor parts (Triton's binary extension). */
function postBinary(name: string, header: unknown, parts: Uint8Array[]): Promise<Response> {
  const { body, headerLength } = joinBody(header, parts);
  return post(name, body, { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) });
}

describe('Open Inference Protocol: edgetune serve', () => {
  it('names models by the shared rule', () => {
    expect(server.names).toEqual(MODELS);
    expect(modelName('/opt/models/ants-bees.onnx')).toBe('ants-bees');
    expect(modelName('teachable/twins/model.json')).toBe('twins');
    expect(modelName('/tmp/my model (2).onnx')).toBe('my_model__2_');
    expect(modelName('/work/shared/models/mobilenetv2-12-int8.onnx', 'mobilenetv2-int8')).toBe('mobilenetv2-int8');
    // an entry of a Triton repository is its entry's name, as Triton serves it (every entry's file is model.onnx)
    expect(modelName('/srv/model_repository/flowers/3/model.onnx')).toBe('flowers');
    expect(modelName('/srv/exp/v3/model.onnx')).toBe('model');
    expect(parseModelUrl('http://127.0.0.1:8000/v2/models/squeezenet1.1/versions/1')).toEqual({ base: 'http://127.0.0.1:8000/v2/models/squeezenet1.1/versions/1', name: 'squeezenet1.1', version: '1' });
    expect(() => parseModelUrl('http://127.0.0.1:8000/models/x')).toThrow('http://127.0.0.1:8000/models/x: expected a model URL like http://host:8000/v2/models/<name>[/versions/<v>]');
  });

  it('answers server metadata, health and model metadata as the spec says', async () => {
    const meta = await (await realFetch(url('/v2'))).json();
    validate('metadata_server_response', meta, true);
    expect(meta.extensions).toEqual(['binary_tensor_data', 'classification', 'model_configuration']);
    expect((await realFetch(url('/v2/health/live'))).status).toBe(200);
    const ready = await realFetch(url('/v2/health/ready'));
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);
    for (const m of MODELS) {
      const r = await (await realFetch(url(`/v2/models/${m}`))).json();
      validate('metadata_model_response', r, true);
      const clf = local.get(m)!;
      expect(r.inputs).toEqual([{ name: clf.inputName, datatype: DT[clf.spec.dtype], shape: m === 'mobilenetv2-int8' ? [-1, 3, 224, 224] : [1, 3, clf.spec.height, clf.spec.width] }]);
      expect((await realFetch(url(`/v2/models/${m}/versions/1`))).status).toBe(200);
      expect(await (await realFetch(url(`/v2/models/${m}/ready`))).json()).toEqual({ name: m, ready: true });
    }
    const v2 = await realFetch(url('/v2/models/squeezenet1.1/versions/2'));
    expect([v2.status, await v2.json()]).toEqual([404, { error: 'model "squeezenet1.1" has no version "2" (versions: "1")' }]);
  });

  it('serves Triton model configuration JSON that model_config.proto accepts, with the card to preprocess', async () => {
    // Field names as the .proto spells them (Triton's JSON uses them: max_batch_size, data_type, …).
    const root = await new protobuf.Root().load(shared('specs', 'triton', 'model_config.proto'), { keepCase: true });
    const ModelConfig = root.lookupType('inference.ModelConfig');
    /** Every key of `json` must be a field of `type` (proto3 JSON: json name or field name), recursively. */
    const known = (type: protobuf.Type, json: Record<string, unknown>, where: string) => {
      for (const [k, v] of Object.entries(json)) {
        const f = type.fields[k] ?? Object.values(type.fields).find((x) => x.options?.json_name === k);
        expect(f, `${where}.${k} is not a field of ${type.fullName}`).toBeDefined();
        f!.resolve();
        const sub = f!.resolvedType;
        if (sub instanceof protobuf.Type && v && typeof v === 'object') {
          if (f!.map) for (const [mk, mv] of Object.entries(v)) known(sub, mv as Record<string, unknown>, `${where}.${k}[${mk}]`);
          else for (const [i, item] of (Array.isArray(v) ? v : [v]).entries()) known(sub, item as Record<string, unknown>, `${where}.${k}[${i}]`);
        }
      }
    };
    for (const m of MODELS) {
      const config = await (await realFetch(url(`/v2/models/${m}/config`))).json();
      known(ModelConfig, config, m);
      const msg = ModelConfig.fromObject(config);
      expect(ModelConfig.verify(msg)).toBeNull();
      const back = ModelConfig.toObject(msg, { enums: String, longs: String }) as { name: string; platform: string; max_batch_size?: number; input: { dims: string[]; data_type: string }[]; output: { label_filename?: string }[] };
      expect([back.name, back.platform]).toEqual([m, 'onnxruntime_onnx']);
      const clf = local.get(m)!;
      // max_batch_size > 0 only when every input and output has a dynamic first dimension (then dims leave it out).
      // 8: the default max_batch_size of `edgetune export --format triton` (DEFAULT_MAX_BATCH_SIZE), and the format on a 3-dim image input.
      if (m === 'mobilenetv2-int8') expect([back.max_batch_size, back.input[0]!.dims, (back.input[0] as { format?: string }).format]).toEqual([8, ['3', '224', '224'], 'FORMAT_NCHW']);
      else expect([back.max_batch_size ?? 0, back.input[0]!.dims]).toEqual([0, ['1', '3', String(clf.spec.height), String(clf.spec.width)]]);
      expect(back.input[0]!.data_type).toBe(`TYPE_${DT[clf.spec.dtype]}`);
      expect(back.output[0]!.label_filename).toBe('labels.txt');
      // The card as `edgetune export --format triton` writes it (EmbeddedModelInfo), and the file's sha256.
      const info = parseModelInfo({ [TRITON_CARD_PARAMETER]: config.parameters[TRITON_CARD_PARAMETER].string_value }, 'config')!;
      expect(info).toMatchObject({ labels: clf.card.labels, outputKind: clf.card.outputKind, outputName: clf.card.outputName, preprocess: clf.card.preprocess });
      expect(info.labelOffset ?? 0).toBe(clf.card.labelOffset);
      expect(config.parameters[TRITON_SHA256_PARAMETER].string_value).toBe(createHash('sha256').update(readFileSync(clf.modelPath)).digest('hex'));
    }
  });

  it('serves as /config what `edgetune export --format triton` writes as config.pbtxt, under the same name', async () => {
    const root = await new protobuf.Root().load(shared('specs', 'triton', 'model_config.proto'), { keepCase: true });
    const ModelConfig = root.lookupType('inference.ModelConfig');
    const repo = tempDir('edgetune-oip-repo-');
    for (const m of ['mobilenetv2-int8', 'mobilenetv1-0.25-128']) {
      const r = await exportTritonRepository(m, { out: repo });
      expect(r.name).toBe(m);
      // config.pbtxt → binary by Debian's protoc against Triton's .proto; our JSON → binary by protobufjs.
      const pb = spawnSync('protoc', [`--proto_path=${shared('specs', 'triton')}`, '--encode=inference.ModelConfig', 'model_config.proto'], { input: readFileSync(path.join(repo, m, 'config.pbtxt')) });
      expect(pb.status, String(pb.stderr)).toBe(0);
      const served = await (await realFetch(url(`/v2/models/${m}/config`))).json();
      const exported = ModelConfig.toObject(ModelConfig.decode(pb.stdout), { enums: String, longs: String, defaults: true }) as Record<string, unknown>;
      const ours = ModelConfig.toObject(ModelConfig.decode(ModelConfig.encode(ModelConfig.fromObject(served)).finish()), { enums: String, longs: String, defaults: true }) as Record<string, unknown>;
      for (const k of ['name', 'platform', 'max_batch_size', 'input', 'output']) expect([m, k, ours[k]]).toEqual([m, k, exported[k]]);
      const card = (o: Record<string, unknown>) => parseModelInfo({ [TRITON_CARD_PARAMETER]: (o.parameters as Record<string, { string_value: string }>)[TRITON_CARD_PARAMETER]!.string_value }, m)!;
      const { provenance: _a, ...servedCard } = card(ours);
      const { provenance: _b, ...exportedCard } = card(exported);
      expect(servedCard).toEqual(exportedCard);
    }
  });

  it('serves the same output as a bare onnxruntime session, as JSON and as binary tensors', async () => {
    const photo = path.join(cameraDir, 'winml_dog.jpg');
    for (const m of MODELS) {
      const clf = local.get(m)!;
      const t = await inputOf(m, photo);
      const want = await bareRun(m, t);
      const dt = DT[t.type]!;
      // JSON tensors (FP16 as numbers, which the server narrows back to the same half bits).
      const data = t.type === 'float16' ? Array.from(t.data as Uint16Array, fromHalf) : Array.from(t.data as Float32Array);
      const jsonReq = { id: `json-${m}`, inputs: [{ name: clf.inputName, shape: [...t.dims], datatype: dt, data }] };
      validate('inference_request', jsonReq, true);
      const r1 = await post(m, JSON.stringify(jsonReq), { 'content-type': 'application/json' });
      expect(r1.status).toBe(200);
      const j = await r1.json();
      validate('inference_response', j, true);
      expect(j).toMatchObject({ model_name: m, model_version: '1', id: `json-${m}` });
      expect(j.outputs[0]).toMatchObject({ name: clf.outputName, datatype: dt, shape: want.dims });
      const got = decodeResponse(new TextEncoder().encode(JSON.stringify(j)), undefined, 'json')[clf.outputName]!;
      expect(Buffer.from(tensorBytes(got)).equals(Buffer.from((want.data as Float32Array).buffer, (want.data as Float32Array).byteOffset, (want.data as Float32Array).byteLength))).toBe(true);
      // Binary tensors both ways.
      const header = { inputs: [{ name: clf.inputName, shape: [...t.dims], datatype: dt, parameters: { binary_data_size: t.data.byteLength } }], outputs: [{ name: clf.outputName, parameters: { binary_data: true } }] };
      validate('inference_request', header);
      const { body, headerLength } = joinBody(header, [tensorBytes(t)]);
      const r2 = await post(m, body, { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) });
      expect(r2.status).toBe(200);
      expect(r2.headers.get('content-type')).toBe('application/octet-stream');
      const raw = new Uint8Array(await r2.arrayBuffer());
      const hl = r2.headers.get(HEADER_LENGTH)!;
      const { json, binary } = splitBody(raw, hl);
      validate('inference_response', json);
      expect((json as { outputs: { parameters: { binary_data_size: number } }[] }).outputs[0]!.parameters.binary_data_size).toBe(want.data.byteLength);
      expect(Buffer.from(binary).equals(Buffer.from((want.data as Float32Array).buffer, (want.data as Float32Array).byteOffset, want.data.byteLength))).toBe(true);
    }
  });

  it('answers a raw binary request (Inference-Header-Content-Length: 0) with binary outputs', async () => {
    for (const m of ['mobilenetv2-int8', 'squeezenet1.1']) {
      const t = await inputOf(m, path.join(cameraDir, 'winml_hummingbird.jpg'));
      const want = await bareRun(m, t);
      const r = await post(m, tensorBytes(t), { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: '0' });
      expect(r.status).toBe(200);
      const { json, binary } = splitBody(new Uint8Array(await r.arrayBuffer()), r.headers.get(HEADER_LENGTH)!);
      validate('inference_response', json);
      // A batching model takes the body as batch 1 (the extension's rule).
      expect((json as { outputs: { shape: number[] }[] }).outputs[0]!.shape).toEqual(want.dims);
      expect(Buffer.from(binary).equals(Buffer.from((want.data as Float32Array).buffer, (want.data as Float32Array).byteOffset, want.data.byteLength))).toBe(true);
    }
    const bad = await post('squeezenet1.1', new Uint8Array(100), { [HEADER_LENGTH]: '0' });
    expect([bad.status, (await bad.json()).error]).toEqual([400, 'input "data_0": 100 bytes of raw binary data do not fill [1,3,224,224] of FP32']);
  });

  it('answers the classification extension as "value:index:label", background class included', async () => {
    const photos = [path.join(cameraDir, 'winml_dog.jpg'), path.join(cameraDir, 'winml_hummingbird.jpg')];
    for (const m of ['mobilenetv2-int8', 'mobilenetv1-0.25-128']) {
      const clf = local.get(m)!;
      const imgs = await Promise.all(photos.map((p) => clf.decode(p)));
      // MobileNetV2 batches: both photos in one request → [2, 3]; MobileNetV1 is fixed at batch 1.
      const groups = m === 'mobilenetv2-int8' ? [imgs] : imgs.map((i) => [i]);
      const items: string[] = [];
      for (const g of groups) {
        const t = toTensor(g, clf.spec);
        const req = { inputs: [{ name: clf.inputName, shape: [...t.dims], datatype: 'FP32', data: Array.from(t.data as Float32Array) }], outputs: [{ name: clf.outputName, parameters: { classification: 3 } }] };
        const r = await (await post(m, JSON.stringify(req))).json();
        validate('inference_response', r, true);
        expect(r.outputs[0]).toMatchObject({ datatype: 'BYTES', shape: m === 'mobilenetv2-int8' ? [2, 3] : [3] });
        items.push(...r.outputs[0].data);
      }
      const want = await clf.classifyImages(imgs, 3);
      for (let i = 0; i < photos.length; i++) {
        const row = items.slice(i * 3, i * 3 + 3).map((s) => s.split(':'));
        // Output index = class index + label offset (MobileNetV1: output 0 is "background").
        expect(row.map((x) => [Number(x[1]), x[2]])).toEqual(want[i]!.map((p) => [p.index + clf.card.labelOffset, p.label]));
      }
      expect(items[0]).toMatch(/^-?\d+(\.\d+)?(e-?\d+)?:\d+:Golden Retriever$/);
      // The same strings as binary BYTES elements (4-byte little-endian length, then the UTF-8 bytes).
      const t = toTensor([imgs[0]!], clf.spec);
      const r = await postBinary(m, { inputs: [{ name: clf.inputName, shape: [...t.dims], datatype: 'FP32', parameters: { binary_data_size: t.data.byteLength } }], outputs: [{ name: clf.outputName, parameters: { classification: 3, binary_data: true } }] }, [tensorBytes(t)]);
      const { json, binary } = splitBody(new Uint8Array(await r.arrayBuffer()), r.headers.get(HEADER_LENGTH)!);
      validate('inference_response', json);
      expect(readBytesElements(binary)).toEqual(items.slice(0, 3));
    }
  });

  it('reproduces Triton\'s documented binary tensor example byte for byte', () => {
    const doc = readFileSync(shared('specs', 'triton', 'protocol', 'extension_binary_data.md'), 'utf8');
    // The first example: a request whose JSON is followed by 16 bytes (UINT32 [2,2]) and 3 bytes (BOOL [3]).
    const blocks = [...doc.matchAll(/```\n([\s\S]*?)```/g)].map((b) => b[1]!);
    const reqText = /\n(\{[\s\S]*\n\})\n<16 bytes/.exec(blocks[0]!)![1]!;
    const resText = /\n(\{[\s\S]*\n\})\n<24 bytes/.exec(blocks[1]!)![1]!;
    const input0 = bytesOf('UINT32', [1, 2, 3, 4]);
    const input1 = bytesOf('BOOL', [true, false, true]);
    expect([...input0]).toEqual([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]);
    expect([...input1]).toEqual([1, 0, 1]);
    // The body as the document lays it out: the JSON text exactly, then the tensors in input order.
    const docBody = Buffer.concat([Buffer.from(reqText), input0, input1]);
    const xx = Buffer.byteLength(reqText);
    expect(docBody.byteLength).toBe(xx + 19); // "Content-Length: <xx+19>"
    const { json, binary } = splitBody(docBody, String(xx));
    validate('inference_request', json);
    const inputs = (json as { inputs: { name: string; datatype: string; parameters: { binary_data_size: number } }[] }).inputs;
    expect(inputs.map((i) => i.parameters.binary_data_size)).toEqual([16, 3]);
    expect([...elementsOf('UINT32', binary.subarray(0, 16))]).toEqual([1, 2, 3, 4]);
    expect([...elementsOf('BOOL', binary.subarray(16, 19))]).toEqual([1, 0, 1]);
    // Our encoder lays out the same parts: the header, its length in Inference-Header-Content-Length,
    // then the same 19 bytes.
    const ours = joinBody(json, [input0, input1]);
    expect(ours.body.byteLength).toBe(ours.headerLength + 19);
    expect(Buffer.from(ours.body.subarray(ours.headerLength)).equals(binary)).toBe(true);
    expect(JSON.parse(Buffer.from(ours.body.subarray(0, ours.headerLength)).toString())).toEqual(JSON.parse(reqText));
    // The documented response: JSON then 24 bytes of FP32 [3,2], read by the client.
    const out = bytesOf('FP32', [1, 1.5, 2, 2.5, 3, 3.5]);
    const resBody = Buffer.concat([Buffer.from(resText), out]);
    expect(resBody.byteLength).toBe(Buffer.byteLength(resText) + 24); // "Content-Length: <yy+24>"
    const { json: resJson } = splitBody(resBody, String(Buffer.byteLength(resText)));
    // The document's response omits model_name, which the OpenAPI requires: check its outputs.
    for (const o of (resJson as { outputs: unknown[] }).outputs) validate('response_output', o);
    const t = decodeResponse(resBody, String(Buffer.byteLength(resText)), 'doc')['output0']!;
    expect([t.type, t.dims, [...(t.data as Float32Array)]]).toEqual(['float32', [3, 2], [1, 1.5, 2, 2.5, 3, 3.5]]);
  });

  it('refuses JSON numbers a datatype cannot hold instead of wrapping them or making them infinite', () => {
    // before: UINT8 300 became 44, INT8 200 became -56, INT32 1.5 became 1, without a word
    const cases: [TensorType, number[], string][] = [
      ['uint8', [0, 300], 'input "x": data[1] is 300, not an integer in 0..255 (datatype UINT8)'],
      ['uint8', [-1, 0], 'input "x": data[0] is -1, not an integer in 0..255 (datatype UINT8)'],
      ['int8', [200, 0], 'input "x": data[0] is 200, not an integer in -128..127 (datatype INT8)'],
      ['int32', [1, 1.5], 'input "x": data[1] is 1.5, not an integer in -2147483648..2147483647 (datatype INT32)'],
      ['int64', [2 ** 60, 0], `input "x": data[0] is ${2 ** 60}, not an integer in ${Number.MIN_SAFE_INTEGER}..${Number.MAX_SAFE_INTEGER} (datatype INT64)`],
    ];
    // and floats a float datatype cannot hold (Float32Array.from([1e39]) is [Infinity])
    cases.push(['float32', [1, -1e39], 'input "x": data[1] is -1e+39, beyond FP32\'s largest value 3.4028234663852886e+38'], ['float16', [65520, 0], 'input "x": data[0] is 65520, beyond FP16\'s largest value 65504']);
    for (const [type, data, message] of cases) {
      expect(() => tensorFromJson('x', type, [2], data)).toThrow(new OipError(400, message));
    }
    // the ends of each range are taken as they are
    expect(Array.from(tensorFromJson('x', 'uint8', [2], [0, 255]).data as Uint8Array)).toEqual([0, 255]);
    expect(Array.from(tensorFromJson('x', 'int8', [2], [-128, 127]).data as Int8Array)).toEqual([-128, 127]);
    expect(Array.from(tensorFromJson('x', 'float32', [2], [1.5, -3.4e38]).data as Float32Array)).toEqual([1.5, Math.fround(-3.4e38)]);
    expect(Array.from(tensorFromJson('x', 'float16', [2], [65519, -1]).data as Uint16Array, fromHalf)).toEqual([65504, -1]);
  });

  it('answers bad requests with the protocol error and status, and keeps serving', async () => {
    const m = 'squeezenet1.1';
    const clf = local.get(m)!;
    const t = await inputOf(m, path.join(cameraDir, 'winml_cat.jpg'));
    const good = () => JSON.stringify({ inputs: [{ name: clf.inputName, shape: [1, 3, 224, 224], datatype: 'FP32', data: Array.from(t.data as Float32Array) }] });
    // Failed requests to squeezenet1.1 counted so far (earlier tests send some too).
    const count400 = (text: string) => Number(/^edgetune_infer_requests_total\{model="squeezenet1\.1",status="400"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    const before = count400(await (await realFetch(url('/metrics'))).text());
    const cases: [string, Promise<Response>, number, string][] = [
      ['not JSON', post(m, '{"inputs": [', { 'content-type': 'application/json' }), 400, 'request body is not JSON (Unexpected end of JSON input)'],
      ['no inputs', post(m, '{"id": "1"}'), 400, 'inference request: inputs: required but missing'],
      ['wrong name', post(m, good().replace(`"${clf.inputName}"`, '"image"')), 400, 'unknown input "image": the model\'s inputs are "data_0"'],
      ['wrong dtype', post(m, good().replace('"FP32"', '"FP64"')), 400, 'input "data_0": datatype FP64 does not match the model\'s FP32'],
      ['wrong shape', post(m, good().replace('[1,3,224,224]', '[1,3,224,225]')), 400, 'input "data_0": shape [1,3,224,225] does not match the model\'s [1,3,224,224] (-1: any size)'],
      ['wrong count', post(m, JSON.stringify({ inputs: [{ name: 'data_0', shape: [1, 3, 224, 224], datatype: 'FP32', data: [1, 2, 3] }] })), 400, 'input "data_0": 3 data elements for shape [1,3,224,224] (expected 150528)'],
      ['string data', post(m, JSON.stringify({ inputs: [{ name: 'data_0', shape: [1, 3, 224, 224], datatype: 'FP32', data: ['x', ...Array.from(t.data as Float32Array).slice(1)] }] })), 400, 'input "data_0": data[0] is "x", not a finite number (datatype FP32)'],
      ['unknown output', post(m, good().replace(/}$/, ',"outputs":[{"name":"prob"}]}')), 400, 'unknown output "prob": the model\'s outputs are "softmaxout_1"'],
      ['bad classification', post(m, good().replace(/}$/, ',"outputs":[{"name":"softmaxout_1","parameters":{"classification":0}}]}')), 400, 'output "softmaxout_1": parameter "classification" must be a positive integer but is 0'],
      ['short binary', post(m, joinBody({ inputs: [{ name: 'data_0', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: 602112 } }] }, [new Uint8Array(100)]).body, { [HEADER_LENGTH]: String(joinBody({ inputs: [{ name: 'data_0', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: 602112 } }] }, []).headerLength) }), 400, 'input "data_0": binary_data_size 602112 runs past the 100 bytes after the JSON header'],
      ['bad header length', post(m, good(), { [HEADER_LENGTH]: '99999999' }), 400, 'Inference-Header-Content-Length "99999999" is not a length within the 1052484 bytes body'.replace('1052484 bytes', `${Buffer.byteLength(good())}-byte`)],
      ['batch over max_batch_size', postBinary('mobilenetv2-int8', { inputs: [{ name: 'input', shape: [9, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: 9 * 602112 } }] }, [new Uint8Array(9 * 602112)]), 400, 'input "input": batch of 9 is over the model\'s max_batch_size 8'],
      ['unknown model', post('resnet50', good()), 404, 'unknown model "resnet50": this server serves "mobilenetv2-int8", "squeezenet1.1", "squeezenet1.1-fp16", "mobilenetv1-0.25-128"'],
      ['GET infer', realFetch(url(`/v2/models/${m}/infer`)), 405, `method GET not allowed on /v2/models/${m}/infer (POST)`],
      // the message names the methods the Allow header gives
      ['DELETE metadata', realFetch(url(`/v2/models/${m}`), { method: 'DELETE' }), 405, `method DELETE not allowed on /v2/models/${m} (GET, HEAD)`],
      ['no route', realFetch(url('/v2/repository/index')), 404, 'no such endpoint: /v2/repository/index'],
    ];
    for (const [what, res, status, message] of cases) {
      const r = await res;
      const body = await r.json();
      validate('inference_error_response', body, true);
      expect([what, r.status, body.error]).toEqual([what, status, message]);
    }
    // Still serving, and the failures are counted per model and status in /metrics.
    const ok = await post(m, good());
    expect(ok.status).toBe(200);
    const metrics = await (await realFetch(url('/metrics'))).text();
    expect(count400(metrics) - before).toBe(11);
    expect(metrics).not.toContain('resnet50');
    expect(metrics).toMatch(/^edgetune_infer_latency_seconds_count\{model="squeezenet1\.1",stage="run"\} \d+$/m);
    // Debian's promtool (the prometheus package) accepts the exposition.
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    expect([lint.status, lint.stdout + lint.stderr]).toEqual([0, '']);
  });

  it('refuses a body over the limit with 413 and keeps serving; checks the Host header', async () => {
    const small = await serveModels(['mnist'], { port: 0, threads: 1, providers: ['cpu'], maxBodyBytes: 64 * 1024 });
    try {
      const u = new URL('/v2/models/mnist/infer', small.url).href;
      const big = await realFetch(u, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0.123456789) }], pad: 'x'.repeat(70 * 1024) }) });
      const e = await big.json();
      validate('inference_error_response', e, true);
      expect([big.status, e.error]).toEqual([413, 'request body over the limit of 65536 bytes']);
      const ok = await realFetch(u, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0) }] }) });
      expect(ok.status).toBe(200);
      // DNS rebinding protection applies to the protocol's routes too.
      const evil = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: small.port, path: '/v2/health/ready', headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(evil).toBe(421);
    } finally {
      await small.close();
    }
  });
});

describe('Open Inference Protocol: a served model as a session', () => {
  it('gives the same top-1 as the local model on every camera photo (binary and JSON tensors, batched)', async () => {
    traffic.length = 0;
    for (const m of MODELS) {
      for (const binary of [true, false]) {
        const remote = await loadClassifier(url(`/v2/models/${m}`), { topK: 3, remote: { binary } });
        expect([remote.provider, remote.id, remote.card.labels, remote.card.preprocess]).toEqual(['remote', m, local.get(m)!.card.labels, local.get(m)!.card.preprocess]);
        const before = server.stats.requests.get(m)?.get(200) ?? 0;
        const got = [];
        for await (const r of remote.classifyFiles(PHOTOS, { batch: 4 })) got.push(r);
        const want = [];
        for await (const r of local.get(m)!.classifyFiles(PHOTOS, { batch: 4, topK: 3 })) want.push(r);
        expect(got.map((r) => [r.file, r.top?.[0]?.index, r.top?.[0]?.label])).toEqual(want.map((r) => [r.file, r.top?.[0]?.index, r.top?.[0]?.label]));
        // Same bits on both sides: the same scores.
        expect(got.map((r) => r.top?.map((p) => p.score))).toEqual(want.map((r) => r.top?.map((p) => p.score)));
        // --batch 4 on a dynamic-batch model is ceil(8/4) = 2 requests; fixed-batch models send one per photo.
        const sent = (server.stats.requests.get(m)?.get(200) ?? 0) - before;
        expect(sent).toBe(m === 'mobilenetv2-int8' ? Math.ceil(PHOTOS.length / 4) : PHOTOS.length);
        await remote.dispose();
      }
    }
    expect(PHOTOS.length).toBe(8);
    // Every request the client sent and every answer it read, against the spec.
    const infers = traffic.filter((x) => x.url.endsWith('/infer'));
    expect(infers.length).toBeGreaterThan(0);
    for (const x of infers) {
      const req = splitBody(x.request!, x.requestHeaderLength);
      validate('inference_request', req.json);
      const res = splitBody(x.response, x.responseHeaderLength);
      validate('inference_response', res.json);
      if (x.requestHeaderLength === undefined) validate('inference_request', req.json, true);
    }
    for (const x of traffic.filter((y) => /\/v2\/models\/[^/]+$/.test(y.url))) validate('metadata_model_response', JSON.parse(Buffer.from(x.response).toString()), true);
  });

  it('uses a server without edgetune\'s card: an unbatched Triton-style input, assumed ImageNet preprocessing', async () => {
    // A KServe-style server for a model put in Triton by other means: metadata [3,224,224] (Triton's
    // max_batch_size 0 with dims that leave the batch out), no /config, JSON tensors only. It answers
    // with SqueezeNet's real output for the tensor it gets (from our server), so the labels are real.
    const seen: { shape: number[]; datatype: string }[] = [];
    const stub = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const reply = (status: number, obj: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(obj));
        };
        if (req.url === '/v2/models/densenet_like') return reply(200, { name: 'densenet_like', platform: 'onnxruntime_onnx', inputs: [{ name: 'data_0', datatype: 'FP32', shape: [3, 224, 224] }], outputs: [{ name: 'softmaxout_1', datatype: 'FP32', shape: [1000] }] });
        if (req.url === '/v2/models/densenet_like/infer') {
          const body = JSON.parse(Buffer.concat(chunks).toString());
          validate('inference_request', body, true);
          seen.push({ shape: body.inputs[0].shape, datatype: body.inputs[0].datatype });
          const fwd = await realFetch(url('/v2/models/squeezenet1.1/infer'), { method: 'POST', body: JSON.stringify({ inputs: [{ ...body.inputs[0], shape: [1, 3, 224, 224] }] }) });
          const out = (await fwd.json()).outputs[0];
          return reply(200, { model_name: 'densenet_like', outputs: [{ ...out, shape: [1000] }] });
        }
        reply(404, { error: `no such endpoint: ${req.url}` });
      });
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', () => r()));
    const port = (stub.address() as AddressInfo).port;
    try {
      // SqueezeNet's own preprocessing (BGR, Caffe mean), given as the card flags would give it.
      const sq = local.get('squeezenet1.1')!;
      const remote = await loadClassifier(`http://127.0.0.1:${port}/v2/models/densenet_like`, { remote: { binary: false }, overrides: { preprocess: { colorOrder: sq.spec.colorOrder, range: sq.spec.range, mean: sq.spec.mean, std: sq.spec.std }, outputKind: 'probabilities' } });
      expect(remote.card.labels).toEqual(sq.card.labels);
      expect(remote.assumptions).toContain('ImageNet labels');
      const photo = path.join(cameraDir, 'winml_dog.jpg');
      const [got, want] = [await remote.classify(photo), await sq.classify(photo)];
      expect(got.top).toEqual(want.top);
      expect(got.top[0]!.label).toBe('Golden Retriever');
      expect(seen).toEqual([{ shape: [3, 224, 224], datatype: 'FP32' }]);
      await remote.dispose();
    } finally {
      stub.closeAllConnections();
      await new Promise<void>((r) => stub.close(() => r()));
    }
  });

  it('says clearly when the server is not there, does not answer, or refuses', async () => {
    // Nothing listens there.
    const deadPort = await refusedPort();
    await expect(connectRemoteModel(`http://127.0.0.1:${deadPort}/v2/models/x`, { retries: 1 })).rejects.toThrow(`GET http://127.0.0.1:${deadPort}/v2/models/x: cannot connect: ECONNREFUSED (2 tries)`);

    // A server that accepts and never answers, and one that is busy (503) then answers.
    let seen = 0;
    const stub: Server = createServer((req, res) => {
      seen++;
      if (req.url!.startsWith('/v2/models/silent')) return; // never answers
      if (req.url!.startsWith('/v2/models/brokencfg')) {
        // Metadata fine, configuration failing: an error, never a silently assumed card.
        res.writeHead(req.url!.endsWith('/config') ? 500 : 200, { 'content-type': 'application/json' });
        return res.end(req.url!.endsWith('/config') ? '{"error":"config store unreachable"}' : JSON.stringify({ name: 'brokencfg', platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 224, 224] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1000] }] }));
      }
      if (seen === 1) {
        res.writeHead(503, { 'content-type': 'application/json' });
        return res.end('{"error":"model is loading"}');
      }
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":"no such model"}');
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', () => r()));
    const port = (stub.address() as AddressInfo).port;
    try {
      await expect(connectRemoteModel(`http://127.0.0.1:${port}/v2/models/silent`, { timeoutMs: 300, retries: 1 })).rejects.toThrow(`GET http://127.0.0.1:${port}/v2/models/silent: no answer within 0.3 s (2 tries)`);
      await expect(connectRemoteModel(`http://127.0.0.1:${port}/v2/models/brokencfg`, { retries: 0 })).rejects.toThrow(`GET http://127.0.0.1:${port}/v2/models/brokencfg/config: server answered 500: config store unreachable`);
      seen = 0;
      // 503 is retried; the 400 after it is the server's answer, not retried.
      await expect(connectRemoteModel(`http://127.0.0.1:${port}/v2/models/busy`, { retries: 3 })).rejects.toThrow(`GET http://127.0.0.1:${port}/v2/models/busy: server answered 400: no such model`);
      expect(seen).toBe(2);
    } finally {
      stub.closeAllConnections();
      await new Promise<void>((r) => stub.close(() => r()));
    }
    // Commands that need the model file (quantize, finetune, inspect, export) say so.
    await expect(describeModel(url('/v2/models/squeezenet1.1'))).rejects.toThrow(`${url('/v2/models/squeezenet1.1')}: a served model's URL works where a classifier runs it (classify, eval, watch, loadClassifier); this needs the model file`);
    // An unknown model on a real server: its error, with the URL.
    await expect(loadClassifier(url('/v2/models/resnet50'))).rejects.toThrow(`GET ${url('/v2/models/resnet50')}: server answered 404: unknown model "resnet50"`);
  });
});
