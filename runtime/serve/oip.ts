// The Open Inference Protocol (KServe v2 / Triton HTTP), the wire format both ways: request and
// response objects (valibot schemas of the spec's `inference_request` / `inference_response`
// components), JSON tensor data, Triton's binary tensor data extension (tensor bytes after the JSON
// header, whose length travels in `Inference-Header-Content-Length`) and its classification extension
// (`outputs: [{name, parameters: {classification: k}}]` → BYTES "value:index:label"). No Node built-ins
// and no I/O: the server routes (runtime/serve/routes.ts) and the client session
// (runtime/serve/client.ts) both build on it.
// Specs: kserve/open-inference-protocol `specification/protocol/` (open_inference_rest.yaml,
// inference_rest.md); triton-inference-server/server `docs/protocol/extension_binary_data.md`,
// `extension_classification.md`, `extension_model_configuration.md`.

import * as v from 'valibot';
import { EdgetuneError } from '../core/errors.js';
import { fromHalf, sizeOf, toHalf, type TensorData, type TensorType } from '../core/tensor.js';
import { describeIssues } from '../core/schema.js';
import { topIndices } from '../classify/postprocess.js';

/** The header Triton's binary extension uses to give the length of the JSON part of a body. */
export const HEADER_LENGTH = 'inference-header-content-length';

/**
 * A model's name on the wire (`/v2/models/<name>`) and in a Triton repository (`edgetune export
 * --format triton`): the registry id when there is one, else the file's base name without its
 * `.onnx` / `.ort` / `.tflite` extension (`/opt/m/ants-bees.onnx` → `ants-bees`; a tfjs `model.json`
 * takes its folder's name: `tm/twins/model.json` → `twins`; an entry of a Triton repository its entry's:
 * `repo/flowers/3/model.onnx` → `flowers`), with characters other than letters,
 * digits, `_`, `.` and `-` as `_` and no leading `.` or `-`. Empty when nothing is left.
 */
export function modelName(file: string, registryId?: string): string {
  const parts = file.replace(/[\\/]+$/, '').split(/[\\/]/);
  const n = parts.length;
  // an entry of a Triton repository, <repo>/<name>/<version>/model.onnx, is served as <name>, as Triton
  // serves it (every entry's file is model.onnx: they were all "model", two of them refused as one name)
  const triton = n >= 3 && parts[n - 1] === 'model.onnx' && /^[1-9]\d*$/.test(parts[n - 2]!) && parts[n - 3] ? parts[n - 3] : undefined;
  const base = registryId ?? triton ?? (/\.json$/i.test(parts[n - 1] ?? '') && n > 1 ? parts[n - 2]! : (parts[n - 1] ?? file).replace(/\.(onnx|ort|tflite)$/i, ''));
  return base.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[.-]+/, '');
}

/** OIP tensor data types (inference_rest.md "Tensor Data Types") and their element size in bytes (BYTES: variable). */
export const DATATYPE_BYTES = { BOOL: 1, UINT8: 1, UINT16: 2, UINT32: 4, UINT64: 8, INT8: 1, INT16: 2, INT32: 4, INT64: 8, FP16: 2, FP32: 4, FP64: 8, BYTES: 0 } as const;
export type Datatype = keyof typeof DATATYPE_BYTES;

const TO_DATATYPE: Record<TensorType, Datatype> = { float32: 'FP32', float16: 'FP16', uint8: 'UINT8', int8: 'INT8', int32: 'INT32', int64: 'INT64', bool: 'BOOL' };

/** An onnxruntime element type (`float32`, …) → its OIP datatype; undefined for types edgetune tensors do not carry. */
export function datatypeOf(type: string): Datatype | undefined {
  return TO_DATATYPE[type as TensorType];
}

/** An OIP datatype → the edgetune tensor type, or undefined (UINT16, FP64, BYTES, …). */
export function tensorTypeOf(datatype: string): TensorType | undefined {
  return (Object.keys(TO_DATATYPE) as TensorType[]).find((t) => TO_DATATYPE[t] === datatype);
}

/** A protocol error: the HTTP status and the `{"error": message}` body to answer with. */
export class OipError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'OipError';
  }
}

const ParameterValue = v.union([v.string(), v.number(), v.boolean()]);
/** `$parameters`: string → string | number | boolean. */
export const ParametersSchema = v.record(v.string(), ParameterValue);
const Shape = v.array(v.pipe(v.number(), v.integer(), v.minValue(0)));
// the array through an interface: the alias form `Nested[]` inside its own union made a user's tsc (skipLibCheck
// false, its default) fail on our .d.ts with "Type instantiation is excessively deep and possibly infinite" (TS2589)
type Nested = number | string | boolean | NestedArray;
interface NestedArray extends Array<Nested> {}
/**
 * `$tensor_data`: an array (nested or flat). Its elements are checked where they are read
 * (tensorFromJson: kind and count, naming the element), not here, and the array is not copied: a
 * union per element took longer than JSON.parse on a 150528-element image.
 */
const TensorDataSchema = v.custom<Nested[]>((x) => Array.isArray(x), "expected Array");

/** `$request_input`; `data` may be absent when `parameters.binary_data_size` says the bytes follow the JSON (Triton). */
export const RequestInputSchema = v.object({
  name: v.string(),
  shape: Shape,
  datatype: v.string(),
  parameters: v.optional(ParametersSchema),
  data: v.optional(TensorDataSchema),
});
/** `$request_output`: `parameters.binary_data` (Triton binary extension), `parameters.classification` (top-k). */
export const RequestOutputSchema = v.object({ name: v.string(), parameters: v.optional(ParametersSchema) });
/** `$inference_request`. */
export const InferRequestSchema = v.object({
  id: v.optional(v.string()),
  parameters: v.optional(ParametersSchema),
  inputs: v.array(RequestInputSchema),
  outputs: v.optional(v.array(RequestOutputSchema)),
});
export type InferRequest = v.InferOutput<typeof InferRequestSchema>;
export type RequestInput = v.InferOutput<typeof RequestInputSchema>;

/** `$response_output`; `data` absent for a binary output (Triton). */
export const ResponseOutputSchema = v.object({
  name: v.string(),
  shape: Shape,
  datatype: v.string(),
  parameters: v.optional(ParametersSchema),
  data: v.optional(TensorDataSchema),
});
/** `$inference_response`; `model_name` is read as optional (Triton's own documented examples leave it out). */
export const InferResponseSchema = v.object({
  model_name: v.optional(v.string()),
  model_version: v.optional(v.string()),
  id: v.optional(v.string()),
  parameters: v.optional(ParametersSchema),
  outputs: v.array(ResponseOutputSchema),
});
export type InferResponse = v.InferOutput<typeof InferResponseSchema>;
export type ResponseOutput = v.InferOutput<typeof ResponseOutputSchema>;

/** `$metadata_tensor`: shape with -1 for variable-size dimensions. */
export interface MetadataTensor {
  name: string;
  datatype: string;
  shape: number[];
}
export const MetadataTensorSchema = v.object({ name: v.string(), datatype: v.string(), shape: v.array(v.pipe(v.number(), v.integer())) });
/** `$metadata_model_response`. */
export const ModelMetadataSchema = v.object({
  name: v.string(),
  versions: v.optional(v.array(v.string())),
  platform: v.string(),
  inputs: v.optional(v.array(MetadataTensorSchema), []),
  outputs: v.optional(v.array(MetadataTensorSchema), []),
});
export type ModelMetadata = v.InferOutput<typeof ModelMetadataSchema>;

/** Check parsed JSON against a schema; an OipError 400 naming the path of each problem otherwise. */
export function checkBody<S extends v.GenericSchema>(schema: S, json: unknown, what: string): v.InferOutput<S> {
  const r = v.safeParse(schema, json);
  if (r.success && !Array.isArray(json)) return r.output;
  const lines = r.success ? ['expected Object but received Array'] : describeIssues(r.issues).slice(0, 3);
  throw new OipError(400, `${what}: ${lines.join('; ')}`);
}

/**
 * A body → its JSON part and the binary tensor bytes after it. `headerLength` is the
 * Inference-Header-Content-Length value (undefined: the whole body is JSON; 0: no JSON, a raw binary
 * request, `json` undefined). Errors: OipError 400 for a length outside the body, or JSON that does
 * not parse.
 */
export function splitBody(body: Uint8Array, headerLength: string | number | undefined, what = 'request'): { json: unknown; binary: Uint8Array } {
  let n = body.byteLength;
  if (headerLength !== undefined) {
    n = Number(headerLength);
    if (!Number.isInteger(n) || n < 0 || n > body.byteLength) {
      throw new OipError(400, `Inference-Header-Content-Length ${JSON.stringify(String(headerLength))} is not a length within the ${body.byteLength}-byte body`);
    }
  }
  // A raw binary request (extension_binary_data.md): no JSON header, the body is the one input's bytes.
  if (n === 0 && headerLength !== undefined) return { json: undefined, binary: body };
  const text = new TextDecoder().decode(body.subarray(0, n));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    // JSON followed by bytes, and no header saying where the JSON ends: binary tensors sent without it
    const after = headerLength === undefined && /after JSON at position \d+/.test(reason);
    const hint = after ? `; binary tensor data after the JSON needs an Inference-Header-Content-Length header giving the JSON's length in bytes` : '';
    throw new OipError(400, `${what} body is not JSON (${reason})${hint}`);
  }
  return { json, binary: body.subarray(n) };
}

/** Concatenate a JSON header and binary tensor parts: the body, and the header length to send. */
export function joinBody(header: unknown, parts: readonly Uint8Array[]): { body: Uint8Array; headerLength: number } {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(head.byteLength + parts.reduce((a, p) => a + p.byteLength, 0));
  out.set(head, 0);
  let o = head.byteLength;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return { body: out, headerLength: head.byteLength };
}

/** Little-endian bytes of a tensor (row major, no padding; BOOL one byte each), as the binary extension sends them. */
export function tensorBytes(t: TensorData): Uint8Array {
  const d = t.data;
  // Typed arrays are in the platform's order; every platform edgetune runs on is little-endian.
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
}

/** BYTES elements as the binary extension sends them: each a 4-byte little-endian length, then its bytes. */
export function bytesElements(items: readonly string[]): Uint8Array {
  const enc = items.map((s) => new TextEncoder().encode(s));
  const out = new Uint8Array(enc.reduce((a, e) => a + 4 + e.byteLength, 0));
  const view = new DataView(out.buffer);
  let o = 0;
  for (const e of enc) {
    view.setUint32(o, e.byteLength, true);
    out.set(e, o + 4);
    o += 4 + e.byteLength;
  }
  return out;
}

/** The inverse of bytesElements. Errors: OipError 400 when a length runs past the data. */
export function readBytesElements(b: Uint8Array): string[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: string[] = [];
  for (let o = 0; o < b.byteLength; ) {
    if (o + 4 > b.byteLength) throw new OipError(400, 'BYTES tensor data ends inside an element length');
    const n = view.getUint32(o, true);
    if (o + 4 + n > b.byteLength) throw new OipError(400, 'BYTES tensor element runs past the data');
    out.push(new TextDecoder().decode(b.subarray(o + 4, o + 4 + n)));
    o += 4 + n;
  }
  return out;
}

type Elements = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | BigUint64Array | BigInt64Array | Float32Array | Float64Array;

/**
 * Binary-extension bytes of any fixed-size datatype → its elements (FP16 as raw half bits in a
 * Uint16Array, BOOL as 0/1 bytes). Errors: OipError 400 for BYTES or a byte count that is not a
 * whole number of elements.
 */
export function elementsOf(datatype: string, bytes: Uint8Array): Elements {
  const size = DATATYPE_BYTES[datatype as Datatype];
  if (!size) throw new OipError(400, `datatype ${datatype} has no fixed element size`);
  if (bytes.byteLength % size) throw new OipError(400, `${bytes.byteLength} bytes is not a whole number of ${datatype} elements`);
  const buf = new Uint8Array(bytes).buffer;
  const views: Record<Exclude<Datatype, 'BYTES'>, new (b: ArrayBuffer) => Elements> = {
    BOOL: Uint8Array, UINT8: Uint8Array, INT8: Int8Array, UINT16: Uint16Array, INT16: Int16Array, FP16: Uint16Array,
    UINT32: Uint32Array, INT32: Int32Array, FP32: Float32Array, UINT64: BigUint64Array, INT64: BigInt64Array, FP64: Float64Array,
  };
  return new views[datatype as Exclude<Datatype, 'BYTES'>](buf);
}

/** Elements of any fixed-size datatype → binary-extension bytes (booleans as 1/0 bytes). */
export function bytesOf(datatype: string, values: ArrayLike<number | boolean | bigint>): Uint8Array {
  const size = DATATYPE_BYTES[datatype as Datatype];
  if (!size) throw new OipError(400, `datatype ${datatype} has no fixed element size`);
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    const o = i * size;
    switch (datatype) {
      case 'BOOL': case 'UINT8': view.setUint8(o, Number(x)); break;
      case 'INT8': view.setInt8(o, Number(x)); break;
      case 'UINT16': view.setUint16(o, Number(x), true); break;
      case 'INT16': view.setInt16(o, Number(x), true); break;
      case 'FP16': view.setUint16(o, toHalf(Number(x)), true); break;
      case 'UINT32': view.setUint32(o, Number(x), true); break;
      case 'INT32': view.setInt32(o, Number(x), true); break;
      case 'FP32': view.setFloat32(o, Number(x), true); break;
      case 'UINT64': view.setBigUint64(o, BigInt(x), true); break;
      case 'INT64': view.setBigInt64(o, BigInt(x), true); break;
      case 'FP64': view.setFloat64(o, Number(x), true); break;
    }
  }
  return out;
}

/** A tensor from binary-extension bytes. Errors: OipError 400 when the byte count does not fit the shape. */
export function tensorFromBytes(name: string, type: TensorType, dims: readonly number[], bytes: Uint8Array): TensorData {
  const size = DATATYPE_BYTES[TO_DATATYPE[type]];
  const n = sizeOf(dims);
  if (bytes.byteLength !== n * size) {
    throw new OipError(400, `input "${name}": ${bytes.byteLength} bytes of binary data for shape [${dims.join(',')}] of ${TO_DATATYPE[type]} (expected ${n * size})`);
  }
  // A copy on its own buffer (a Node Buffer's slice() is a view of a shared pool).
  const buf = new Uint8Array(bytes).buffer;
  const data =
    type === 'float32' ? new Float32Array(buf) : type === 'float16' ? new Uint16Array(buf) : type === 'int8' ? new Int8Array(buf) : type === 'int32' ? new Int32Array(buf) : type === 'int64' ? new BigInt64Array(buf) : new Uint8Array(buf);
  return { type, data, dims: [...dims] };
}

/**
 * Nested `data` → its elements in row-major order. With an explicit stack: a recursion ran out of
 * call stack (500 "Maximum call stack size exceeded") on a body nested 200,000 arrays deep.
 */
function flatten(data: readonly Nested[]): Nested[] {
  const out: Nested[] = [];
  const stack: { arr: readonly Nested[]; i: number }[] = [{ arr: data, i: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.arr.length) {
      stack.pop();
      continue;
    }
    const x = top.arr[top.i++]!;
    if (Array.isArray(x)) stack.push({ arr: x, i: 0 });
    else out.push(x);
  }
  return out;
}

/** The values each integer tensor type holds (int64: those a JSON number holds exactly). */
const INTEGER_RANGE: Partial<Record<TensorType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int32: [-2147483648, 2147483647],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Each float tensor type's largest finite value, and the magnitude from which a number rounds to infinity in it. */
const FLOAT_MAX: Partial<Record<TensorType, readonly [number, number]>> = { float32: [3.4028234663852886e38, 3.4028235677973366e38], float16: [65504, 65520] };

/**
 * A tensor from JSON `data` (nested or flat, row major). Errors: OipError 400 for a wrong count, an
 * element of the wrong kind, an integer type's element that is not an integer in its range, or a
 * float beyond its type's range (it would become infinite).
 */
export function tensorFromJson(name: string, type: TensorType, dims: readonly number[], data: readonly Nested[]): TensorData {
  const flat = flatten(data);
  const n = sizeOf(dims);
  if (flat.length !== n) throw new OipError(400, `input "${name}": ${flat.length} data elements for shape [${dims.join(',')}] (expected ${n})`);
  const bad = flat.findIndex((x) => (type === 'bool' ? typeof x !== 'boolean' : typeof x !== 'number' || !Number.isFinite(x)));
  if (bad >= 0) throw new OipError(400, `input "${name}": data[${bad}] is ${JSON.stringify(flat[bad])}, not ${type === 'bool' ? 'a boolean' : 'a finite number'} (datatype ${TO_DATATYPE[type]})`);
  const range = INTEGER_RANGE[type];
  if (range) {
    // Int8Array.from([200]) is [-56], Uint8Array.from([300]) is [44], Int32Array.from([1.5]) is [1]: refused, not wrapped
    const out = flat.findIndex((x) => !Number.isInteger(x) || (x as number) < range[0] || (x as number) > range[1]);
    if (out >= 0) throw new OipError(400, `input "${name}": data[${out}] is ${JSON.stringify(flat[out])}, not an integer in ${range[0]}..${range[1]} (datatype ${TO_DATATYPE[type]})`);
  }
  const max = FLOAT_MAX[type];
  if (max !== undefined) {
    // Float32Array.from([1e39]) is [Infinity]: a value the datatype cannot hold is refused, not made infinite
    const out = flat.findIndex((x) => Math.abs(x as number) >= max[1]);
    if (out >= 0) throw new OipError(400, `input "${name}": data[${out}] is ${JSON.stringify(flat[out])}, beyond ${TO_DATATYPE[type]}'s largest value ${max[0]}`);
  }
  const nums = flat as number[];
  const data_ =
    type === 'float32'
      ? Float32Array.from(nums)
      : type === 'float16'
        ? Uint16Array.from(nums, toHalf)
        : type === 'int64'
          ? BigInt64Array.from(nums, (x) => BigInt(Math.trunc(x)))
          : type === 'int32'
            ? Int32Array.from(nums)
            : type === 'int8'
              ? Int8Array.from(nums)
              : Uint8Array.from(flat as (number | boolean)[], (x) => Number(x));
  return { type, data: data_, dims: [...dims] };
}

/** Tensor elements as JSON values (float16 widened, int64 as numbers, bool as booleans). */
export function jsonData(t: TensorData): (number | boolean)[] {
  if (t.type === 'float16') return Array.from(t.data as Uint16Array, fromHalf);
  if (t.type === 'bool') return Array.from(t.data as Uint8Array, (x) => x !== 0);
  if (t.data instanceof BigInt64Array) return Array.from(t.data, (x) => Number(x));
  return Array.from(t.data as ArrayLike<number>);
}

/** The shortest decimal that reads back as the same float32 (3.3, not 3.299999952316284). */
export function shortFloat(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return String(s);
  }
  return String(f);
}

/**
 * Triton's classification extension on one output: the top `k` elements of each batch row (or of the
 * whole tensor when `batched` is false), each as "value:index[:label]", in a BYTES tensor of shape
 * [batch, k] ([k] unbatched). `labelOf(index)` names an output index (undefined: no label).
 */
export function classify(t: TensorData, k: number, batched: boolean, labelOf: (index: number) => string | undefined): { shape: number[]; items: string[] } {
  const values = t.type === 'float16' ? Array.from(t.data as Uint16Array, fromHalf) : t.data instanceof BigInt64Array ? Array.from(t.data, Number) : (t.data as ArrayLike<number>);
  const rows = batched && t.dims.length >= 2 ? t.dims[0]! : 1;
  const per = values.length / rows;
  const kk = Math.min(k, per);
  const items: string[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.prototype.slice.call(values, r * per, (r + 1) * per) as number[];
    for (const i of topIndices(row, kk)) {
      const label = labelOf(i);
      items.push(`${shortFloat(row[i]!)}:${i}${label !== undefined ? `:${label}` : ''}`);
    }
  }
  return { shape: batched && t.dims.length >= 2 ? [rows, kk] : [kk], items };
}

/** A signed integer parameter (classification count), or an OipError 400 naming it. */
export function countParameter(name: string, output: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new OipError(400, `output "${output}": parameter "${name}" must be a positive integer but is ${JSON.stringify(value)}`);
  }
  return value;
}

/** Whether a `binary_data` / `binary_data_output` parameter asks for binary (booleans; "true" strings tolerated). */
export function isTrue(x: unknown): boolean {
  return x === true || x === 'true';
}

/** Model metadata dims → an edgetune shape (-1 → a symbolic '?'). */
export function shapeFromMetadata(shape: readonly number[]): (number | string)[] {
  return shape.map((d) => (d < 0 ? '?' : d));
}

/** An edgetune shape → metadata dims (symbolic and unknown → -1). */
export function metadataShape(shape: readonly (number | string)[]): number[] {
  return shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
}

/** EdgetuneError code → HTTP status, for errors that reach the protocol layer from the library. */
export function statusOf(err: unknown): number {
  if (err instanceof OipError) return err.status;
  if (err instanceof EdgetuneError) return err.code === 'EARG' || err.code === 'EINPUT' ? 400 : 500;
  return 500;
}
