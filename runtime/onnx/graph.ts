// Helpers over decoded ONNX graphs (plain objects from model.ts): tensor data in and out of
// TensorProto (raw_data little-endian or the typed *_data fields, float16/bfloat16 widened), initializer
// lookup, producers/consumers, topological order, unique names, node attributes, opsets, model
// metadata_props, graph outputs, node removal with pruning, and value_info lookup.
// Conventions: int64 tensor data is BigInt64Array; float16 is carried as raw IEEE half bits in a
// Uint16Array (readFloat32/writeFloat32 convert). Browser-safe: no Node APIs.

import { EdgetuneError } from '../core/errors.js';
import { fromHalf, toHalf } from '../core/tensor.js';
import type {
  AttributeProto,
  GraphProto,
  NodeProto,
  OnnxModel,
  SparseTensorProto,
  StringStringEntryProto,
  TensorProto,
  TypeProto,
  ValueInfoProto,
} from './model.js';

// ---------------------------------------------------------------------------------------------------
// Data types

export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
  UINT2: 25,
  INT2: 26,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;
export type AttributeType = (typeof AttributeType)[keyof typeof AttributeType];

const DATA_TYPE_NAMES = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k])) as Record<number, string>;
const ATTRIBUTE_TYPE_NAMES = Object.fromEntries(Object.entries(AttributeType).map(([k, v]) => [v, k])) as Record<number, string>;

/** `FLOAT`, `INT8`, … (or `DataType(99)` for values this schema does not name). */
export function dataTypeName(dataType: number | undefined): string {
  return DATA_TYPE_NAMES[dataType ?? 0] ?? `DataType(${dataType})`;
}

/** Bits per element on the wire (raw_data); 0 for STRING and UNDEFINED. */
export function dataTypeBits(dataType: number): number {
  switch (dataType) {
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
    case DataType.FLOAT8E8M0:
      return 8;
    case DataType.UINT16:
    case DataType.INT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 16;
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 32;
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.DOUBLE:
    case DataType.COMPLEX64:
      return 64;
    case DataType.COMPLEX128:
      return 128;
    case DataType.UINT4:
    case DataType.INT4:
    case DataType.FLOAT4E2M1:
      return 4;
    case DataType.UINT2:
    case DataType.INT2:
      return 2;
    default:
      return 0;
  }
}

// ---------------------------------------------------------------------------------------------------
// Tensor data

/** The values of a tensor in its own element type (float16/bfloat16 as bits, sub-byte types as packed bytes). */
export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** How a tensor stores its data: little-endian `raw_data`, or the typed `*_data` field. */
export type TensorForm = 'raw' | 'typed';

export interface WriteOptions {
  /** New shape; by default the tensor keeps its dims and the data must have as many elements. */
  dims?: readonly number[];
  /** Storage form; by default the form the tensor already uses (raw for a tensor without data). */
  form?: TensorForm;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function tensorLabel(t: TensorProto): string {
  return t.name ? `tensor "${t.name}"` : 'tensor';
}

/** Number of elements: the product of dims (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function byteLengthOf(dataType: number, count: number): number {
  return Math.ceil((count * dataTypeBits(dataType)) / 8);
}

/** Swap to/from little-endian in place when the host is big-endian. */
function fixEndian(bytes: Uint8Array, width: number): Uint8Array {
  if (LITTLE_ENDIAN || width <= 1) return bytes;
  for (let i = 0; i + width <= bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  return bytes;
}

function copyBytes(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  out.set(src);
  return out;
}

function storageOf(t: TensorProto): 'raw' | 'float' | 'int32' | 'int64' | 'double' | 'uint64' | 'string' | 'none' {
  if (t.rawData !== undefined) return 'raw';
  if (t.floatData.length) return 'float';
  if (t.int32Data.length) return 'int32';
  if (t.int64Data.length) return 'int64';
  if (t.doubleData.length) return 'double';
  if (t.uint64Data.length) return 'uint64';
  if (t.stringData.length) return 'string';
  return 'none';
}

/** The storage form a tensor uses now ('raw' when it has no data yet). */
export function tensorForm(t: TensorProto): TensorForm {
  const s = storageOf(t);
  return s === 'raw' || s === 'none' || s === 'string' ? 'raw' : 'typed';
}

function checkReadable(t: TensorProto): number {
  if (t.dataLocation === 1 || t.externalData.length) {
    const loc = t.externalData.find((e) => e.key === 'location')?.value;
    throw new EdgetuneError('EMODEL', `${tensorLabel(t)} keeps its data in an external file${loc ? ` (${loc})` : ''}, which edgetune does not read`);
  }
  if (t.segment) throw new EdgetuneError('EMODEL', `${tensorLabel(t)} is a segment of a larger tensor, which edgetune does not read`);
  const dt = t.dataType ?? 0;
  if (dt === DataType.STRING || dataTypeBits(dt) === 0) {
    throw new EdgetuneError('EMODEL', `${tensorLabel(t)} has data type ${dataTypeName(dt)}, which has no numeric data`);
  }
  return dt;
}

/**
 * The tensor's elements as little-endian bytes (a fresh copy), whichever field stores them: what
 * raw_data would hold.
 */
export function readRaw(t: TensorProto): Uint8Array {
  const dt = checkReadable(t);
  const count = elementCount(t.dims);
  const want = byteLengthOf(dt, count);
  const bits = dataTypeBits(dt);
  const storage = storageOf(t);
  let out: Uint8Array;
  switch (storage) {
    case 'raw':
      out = copyBytes(t.rawData!);
      break;
    case 'none':
      out = new Uint8Array(0);
      break;
    case 'float':
      out = new Uint8Array(Float32Array.from(t.floatData).buffer);
      fixEndian(out, 4);
      break;
    case 'double':
      out = new Uint8Array(Float64Array.from(t.doubleData).buffer);
      fixEndian(out, 8);
      break;
    case 'int64':
      out = new Uint8Array(BigInt64Array.from(t.int64Data).buffer);
      fixEndian(out, 8);
      break;
    case 'uint64':
      if (dt === DataType.UINT32) out = new Uint8Array(Uint32Array.from(t.uint64Data, (v) => Number(v)).buffer);
      else out = new Uint8Array(BigUint64Array.from(t.uint64Data).buffer);
      fixEndian(out, dt === DataType.UINT32 ? 4 : 8);
      break;
    case 'int32': {
      const v = t.int32Data;
      if (bits === 32) out = new Uint8Array(Int32Array.from(v).buffer);
      else if (bits === 16) out = new Uint8Array(Uint16Array.from(v).buffer);
      else out = Uint8Array.from(v, (x) => x & 0xff); // 8-bit types, and sub-byte types one packed byte per value
      fixEndian(out, bits >= 16 ? bits / 8 : 1);
      break;
    }
    default:
      throw new EdgetuneError('EMODEL', `${tensorLabel(t)} stores strings`);
  }
  if (out.length !== want) {
    throw new EdgetuneError(
      'EMODEL',
      `${tensorLabel(t)} holds ${out.length} bytes of ${dataTypeName(dt)} data but its dims [${t.dims.join(',')}] need ${want}`,
    );
  }
  return out;
}

function viewAs(dt: number, bytes: Uint8Array): TensorValues {
  const buf = bytes.buffer.byteLength === bytes.length && bytes.byteOffset === 0 ? bytes.buffer : copyBytes(bytes).buffer;
  switch (dt) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return new Float32Array(fixEndian(new Uint8Array(buf), 4).buffer);
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return new Float64Array(fixEndian(new Uint8Array(buf), 8).buffer);
    case DataType.INT8:
      return new Int8Array(buf);
    case DataType.INT16:
      return new Int16Array(fixEndian(new Uint8Array(buf), 2).buffer);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return new Uint16Array(fixEndian(new Uint8Array(buf), 2).buffer);
    case DataType.INT32:
      return new Int32Array(fixEndian(new Uint8Array(buf), 4).buffer);
    case DataType.UINT32:
      return new Uint32Array(fixEndian(new Uint8Array(buf), 4).buffer);
    case DataType.INT64:
      return new BigInt64Array(fixEndian(new Uint8Array(buf), 8).buffer);
    case DataType.UINT64:
      return new BigUint64Array(fixEndian(new Uint8Array(buf), 8).buffer);
    default:
      return new Uint8Array(buf); // UINT8, BOOL, float8, packed 4-/2-bit
  }
}

/** The tensor's values in its own element type (a fresh array; float16/bfloat16 as raw bits). */
export function readTensor(t: TensorProto): TensorValues {
  return viewAs(t.dataType ?? 0, readRaw(t));
}

function wrongType(t: TensorProto, want: string): EdgetuneError {
  return new EdgetuneError('EARG', `${tensorLabel(t)} is ${dataTypeName(t.dataType)}, not ${want}`);
}

/** FLOAT as is; FLOAT16, BFLOAT16 widened exactly; DOUBLE rounded. */
export function readFloat32(t: TensorProto): Float32Array {
  const v = readTensor(t);
  switch (t.dataType) {
    case DataType.FLOAT:
      return v as Float32Array;
    case DataType.FLOAT16:
      return Float32Array.from(v as Uint16Array, fromHalf);
    case DataType.BFLOAT16: {
      const out = new Uint32Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = (v as Uint16Array)[i]! << 16;
      return new Float32Array(out.buffer);
    }
    case DataType.DOUBLE:
      return Float32Array.from(v as Float64Array);
    default:
      throw wrongType(t, 'a FLOAT, FLOAT16, BFLOAT16 or DOUBLE tensor');
  }
}

/** FLOAT16 data as raw IEEE half bits. */
export function readFloat16Bits(t: TensorProto): Uint16Array {
  if (t.dataType !== DataType.FLOAT16) throw wrongType(t, 'FLOAT16');
  return readTensor(t) as Uint16Array;
}

export function readInt8(t: TensorProto): Int8Array {
  if (t.dataType !== DataType.INT8) throw wrongType(t, 'INT8');
  return readTensor(t) as Int8Array;
}

/** UINT8 (or BOOL, as 0/1). */
export function readUint8(t: TensorProto): Uint8Array {
  if (t.dataType !== DataType.UINT8 && t.dataType !== DataType.BOOL) throw wrongType(t, 'UINT8');
  return readTensor(t) as Uint8Array;
}

const INT32_WIDENABLE: ReadonlySet<number> = new Set([DataType.INT32, DataType.INT16, DataType.UINT16, DataType.INT8, DataType.UINT8, DataType.BOOL]);

/** INT32, or a narrower integer type (INT8, UINT8, INT16, UINT16, BOOL) widened. */
export function readInt32(t: TensorProto): Int32Array {
  if (!INT32_WIDENABLE.has(t.dataType ?? 0)) throw wrongType(t, 'an INT32 (or narrower integer) tensor');
  const v = readTensor(t);
  return v instanceof Int32Array ? v : Int32Array.from(v as Int8Array);
}

/** INT64 exactly, or a narrower integer type (INT32, UINT32, INT16, UINT16, INT8, UINT8, BOOL) widened. */
export function readInt64(t: TensorProto): BigInt64Array {
  const dt = t.dataType ?? 0;
  if (dt !== DataType.INT64 && dt !== DataType.UINT32 && !INT32_WIDENABLE.has(dt)) {
    throw wrongType(t, 'an INT64 (or narrower integer) tensor');
  }
  const v = readTensor(t);
  return v instanceof BigInt64Array ? v : BigInt64Array.from(v as Int32Array, (x) => BigInt(x));
}

// -- writing

const INT_RANGES: Record<number, [number, number]> = {
  [DataType.INT8]: [-128, 127],
  [DataType.UINT8]: [0, 255],
  [DataType.INT16]: [-32768, 32767],
  [DataType.UINT16]: [0, 65535],
  [DataType.INT32]: [-2147483648, 2147483647],
  [DataType.UINT32]: [0, 4294967295],
};

/** Input values for a tensor; for FLOAT16/BFLOAT16 a Uint16Array means raw bits, anything else values. */
export type TensorInput = TensorValues | readonly number[] | readonly bigint[];

function bf16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40; // NaN stays NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

function toLittleEndianBytes(t: TensorProto, dt: number, values: TensorInput): Uint8Array {
  const bits = dataTypeBits(dt);
  const label = tensorLabel(t);
  const asNumbers = (): ArrayLike<number> => {
    if (values instanceof BigInt64Array || values instanceof BigUint64Array || typeof values[0] === 'bigint') {
      return Array.from(values as ArrayLike<bigint>, (v) => Number(v));
    }
    return values as ArrayLike<number>;
  };
  switch (dt) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return fixEndian(new Uint8Array(Float32Array.from(asNumbers()).buffer), 4);
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return fixEndian(new Uint8Array(Float64Array.from(asNumbers()).buffer), 8);
    case DataType.FLOAT16:
      if (values instanceof Uint16Array) return fixEndian(copyBytes(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)), 2);
      return fixEndian(new Uint8Array(Uint16Array.from(asNumbers(), toHalf).buffer), 2);
    case DataType.BFLOAT16:
      if (values instanceof Uint16Array) return fixEndian(copyBytes(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)), 2);
      return fixEndian(new Uint8Array(Uint16Array.from(asNumbers(), bf16Bits).buffer), 2);
    case DataType.BOOL:
      return Uint8Array.from(asNumbers(), (v) => (v ? 1 : 0));
    case DataType.INT64:
    case DataType.UINT64: {
      const unsigned = dt === DataType.UINT64;
      const out = unsigned ? new BigUint64Array(values.length) : new BigInt64Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        let b: bigint;
        if (typeof v === 'bigint') b = v;
        else if (Number.isSafeInteger(v)) b = BigInt(v);
        else throw new EdgetuneError('EARG', `${label}: element ${i} (${v}) is not a safe integer; pass bigints for ${dataTypeName(dt)}`);
        if (unsigned ? b < 0n || b >= 2n ** 64n : b < -(2n ** 63n) || b >= 2n ** 63n) {
          throw new EdgetuneError('EARG', `${label}: element ${i} (${b}) does not fit in ${dataTypeName(dt)}`);
        }
        out[i] = b;
      }
      return fixEndian(new Uint8Array(out.buffer), 8);
    }
    default: {
      const range = INT_RANGES[dt];
      if (range) {
        const nums = asNumbers();
        const exact =
          (dt === DataType.INT8 && values instanceof Int8Array) ||
          (dt === DataType.UINT8 && values instanceof Uint8Array) ||
          (dt === DataType.INT16 && values instanceof Int16Array) ||
          (dt === DataType.UINT16 && values instanceof Uint16Array) ||
          (dt === DataType.INT32 && values instanceof Int32Array) ||
          (dt === DataType.UINT32 && values instanceof Uint32Array);
        if (!exact) {
          for (let i = 0; i < nums.length; i++) {
            const v = nums[i]!;
            if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
              throw new EdgetuneError('EARG', `${label}: element ${i} (${v}) does not fit in ${dataTypeName(dt)}`);
            }
          }
        }
        let typed: Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
        if (dt === DataType.INT8) typed = Int8Array.from(nums);
        else if (dt === DataType.UINT8) typed = Uint8Array.from(nums);
        else if (dt === DataType.INT16) typed = Int16Array.from(nums);
        else if (dt === DataType.UINT16) typed = Uint16Array.from(nums);
        else if (dt === DataType.INT32) typed = Int32Array.from(nums);
        else typed = Uint32Array.from(nums);
        return fixEndian(new Uint8Array(typed.buffer), bits / 8);
      }
      if (bits > 0 && values instanceof Uint8Array) return copyBytes(values); // float8, packed 4-/2-bit
      throw new EdgetuneError('EARG', `${label}: cannot write ${dataTypeName(dt)} values (pass the packed bytes as a Uint8Array)`);
    }
  }
}

function clearData(t: TensorProto): void {
  delete t.rawData;
  t.floatData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.doubleData = [];
  t.uint64Data = [];
  t.stringData = [];
  t.externalData = [];
  delete t.dataLocation;
  delete t.segment;
}

function storeBytes(t: TensorProto, dt: number, bytes: Uint8Array, form: TensorForm): void {
  clearData(t);
  if (form === 'raw') {
    t.rawData = bytes;
    return;
  }
  const v = viewAs(dt, bytes);
  switch (dt) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      t.floatData = Array.from(v as Float32Array);
      break;
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      t.doubleData = Array.from(v as Float64Array);
      break;
    case DataType.INT64:
      t.int64Data = Array.from(v as BigInt64Array);
      break;
    case DataType.UINT64:
      t.uint64Data = Array.from(v as BigUint64Array);
      break;
    case DataType.UINT32:
      t.uint64Data = Array.from(v as Uint32Array, (x) => BigInt(x));
      break;
    default:
      t.int32Data = Array.from(v as Int32Array); // 8/16/32-bit ints, bool, float16 bits, float8 and packed sub-byte bytes
  }
}

/**
 * Replace a tensor's data with `values` in the tensor's own data type (see TensorInput), as raw_data or
 * the typed field (`options.form`, default: the form it uses now). External data and segments are dropped.
 */
export function writeTensor(t: TensorProto, values: TensorInput, options: WriteOptions = {}): TensorProto {
  const dt = t.dataType ?? 0;
  if (dt === DataType.STRING || dataTypeBits(dt) === 0) throw new EdgetuneError('EARG', `${tensorLabel(t)}: cannot write ${dataTypeName(dt)} data`);
  const dims = options.dims ? [...options.dims] : t.dims;
  const count = elementCount(dims);
  const packed = dataTypeBits(dt) < 8;
  const expected = packed ? byteLengthOf(dt, count) : count;
  if (values.length !== expected) {
    throw new EdgetuneError(
      'EARG',
      `${tensorLabel(t)}: ${values.length} ${packed ? 'bytes' : 'values'} given for dims [${dims.join(',')}], which need ${expected}`,
    );
  }
  const form = options.form ?? tensorForm(t);
  const bytes = toLittleEndianBytes(t, dt, values);
  t.dims = dims;
  storeBytes(t, dt, bytes, form);
  return t;
}

/** Write float values to a FLOAT, FLOAT16 or BFLOAT16 (rounded to nearest even) or DOUBLE tensor. */
export function writeFloat32(t: TensorProto, values: Float32Array | readonly number[], options?: WriteOptions): TensorProto {
  const dt = t.dataType;
  if (dt !== DataType.FLOAT && dt !== DataType.FLOAT16 && dt !== DataType.BFLOAT16 && dt !== DataType.DOUBLE) {
    throw wrongType(t, 'a FLOAT, FLOAT16, BFLOAT16 or DOUBLE tensor');
  }
  return writeTensor(t, values instanceof Float32Array ? values : Float32Array.from(values), options);
}

/** Write raw IEEE half bits to a FLOAT16 tensor. */
export function writeFloat16Bits(t: TensorProto, bits: Uint16Array, options?: WriteOptions): TensorProto {
  if (t.dataType !== DataType.FLOAT16) throw wrongType(t, 'FLOAT16');
  return writeTensor(t, bits, options);
}

export function writeInt8(t: TensorProto, values: Int8Array | readonly number[], options?: WriteOptions): TensorProto {
  if (t.dataType !== DataType.INT8) throw wrongType(t, 'INT8');
  return writeTensor(t, values, options);
}

export function writeUint8(t: TensorProto, values: Uint8Array | readonly number[], options?: WriteOptions): TensorProto {
  if (t.dataType !== DataType.UINT8 && t.dataType !== DataType.BOOL) throw wrongType(t, 'UINT8');
  return writeTensor(t, values, options);
}

export function writeInt32(t: TensorProto, values: Int32Array | readonly number[], options?: WriteOptions): TensorProto {
  if (t.dataType !== DataType.INT32) throw wrongType(t, 'INT32');
  return writeTensor(t, values, options);
}

/** Write INT64 values (bigints, or numbers that are safe integers). */
export function writeInt64(t: TensorProto, values: BigInt64Array | readonly bigint[] | readonly number[], options?: WriteOptions): TensorProto {
  if (t.dataType !== DataType.INT64) throw wrongType(t, 'INT64');
  return writeTensor(t, values, options);
}

/** Replace a tensor's data with little-endian element bytes (what raw_data holds), in the given form. */
export function writeRaw(t: TensorProto, bytes: Uint8Array, options: WriteOptions = {}): TensorProto {
  const dt = t.dataType ?? 0;
  if (dt === DataType.STRING || dataTypeBits(dt) === 0) throw new EdgetuneError('EARG', `${tensorLabel(t)}: cannot write ${dataTypeName(dt)} data`);
  const dims = options.dims ? [...options.dims] : t.dims;
  const want = byteLengthOf(dt, elementCount(dims));
  if (bytes.length !== want) {
    throw new EdgetuneError('EARG', `${tensorLabel(t)}: ${bytes.length} bytes given for ${dataTypeName(dt)} dims [${dims.join(',')}], which need ${want}`);
  }
  const form = options.form ?? tensorForm(t);
  t.dims = dims;
  storeBytes(t, dt, copyBytes(bytes), form);
  return t;
}

/** A new tensor (stored as raw_data unless `form` is 'typed'). */
export function makeTensor(name: string, dataType: number, dims: readonly number[], values: TensorInput, form: TensorForm = 'raw'): TensorProto {
  const t = emptyTensor(name, dataType, dims);
  return writeTensor(t, values, { form });
}

function emptyTensor(name: string, dataType: number, dims: readonly number[]): TensorProto {
  return {
    dims: [...dims],
    dataType,
    floatData: [],
    int32Data: [],
    stringData: [],
    int64Data: [],
    name,
    doubleData: [],
    uint64Data: [],
    externalData: [],
    metadataProps: [],
  };
}

/** IEEE half bits → number; number → half bits (round to nearest even). */
export { fromHalf as float16ToNumber, toHalf as numberToFloat16 };

// ---------------------------------------------------------------------------------------------------
// Initializers

export function getInitializer(graph: GraphProto, name: string): TensorProto | undefined {
  return graph.initializer.find((t) => t.name === name);
}

/** The initializer, or an EMODEL error naming the missing tensor. */
export function requireInitializer(graph: GraphProto, name: string): TensorProto {
  const t = getInitializer(graph, name);
  if (!t) throw new EdgetuneError('EMODEL', `initializer "${name}" not found in graph${graph.name ? ` "${graph.name}"` : ''}`);
  return t;
}

/** Add an initializer, or replace the one with the same name (in place, keeping its position). */
export function setInitializer(graph: GraphProto, tensor: TensorProto): TensorProto {
  if (!tensor.name) throw new EdgetuneError('EARG', 'an initializer needs a name');
  const i = graph.initializer.findIndex((t) => t.name === tensor.name);
  if (i >= 0) graph.initializer[i] = tensor;
  else graph.initializer.push(tensor);
  return tensor;
}

/** Remove an initializer (and the graph input that merely declares it, as IR < 4 models have). */
export function removeInitializer(graph: GraphProto, name: string): boolean {
  const before = graph.initializer.length;
  graph.initializer = graph.initializer.filter((t) => t.name !== name);
  if (graph.initializer.length === before) return false;
  graph.input = graph.input.filter((v) => v.name !== name);
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Producers, consumers, subgraph references

function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    for (const g of a.graphs) out.push(g);
  }
  return out;
}

/** Names a subgraph reads from enclosing scopes (used but not defined inside it). */
function outerReferences(graph: GraphProto): Set<string> {
  const defined = new Set<string>();
  for (const v of graph.input) if (v.name) defined.add(v.name);
  for (const t of graph.initializer) if (t.name) defined.add(t.name);
  for (const s of graph.sparseInitializer) if (s.values?.name) defined.add(s.values.name);
  for (const n of graph.node) for (const o of n.output) if (o) defined.add(o);
  const refs = new Set<string>();
  for (const n of graph.node) for (const name of nodeReads(n)) if (!defined.has(name)) refs.add(name);
  for (const v of graph.output) if (v.name && !defined.has(v.name)) refs.add(v.name);
  return refs;
}

/** Every value a node reads: its inputs plus names its subgraphs take from outer scopes. */
export function nodeReads(node: NodeProto): string[] {
  const names = node.input.filter((n) => n !== '');
  for (const g of subgraphsOf(node)) for (const r of outerReferences(g)) names.push(r);
  return names;
}

/** value name → the node producing it. */
export function producerMap(graph: GraphProto): Map<string, NodeProto> {
  const m = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) m.set(o, n);
  return m;
}

/** value name → the nodes reading it (inputs, or implicitly from a subgraph), in graph order. */
export function consumerMap(graph: GraphProto): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const name of new Set(nodeReads(n))) {
      const list = m.get(name);
      if (list) list.push(n);
      else m.set(name, [n]);
    }
  }
  return m;
}

export function findProducer(graph: GraphProto, value: string): NodeProto | undefined {
  return graph.node.find((n) => n.output.includes(value));
}

export function findConsumers(graph: GraphProto, value: string): NodeProto[] {
  return graph.node.filter((n) => nodeReads(n).includes(value));
}

/** A node by name. */
export function findNode(graph: GraphProto, name: string): NodeProto | undefined {
  return graph.node.find((n) => n.name === name);
}

// ---------------------------------------------------------------------------------------------------
// Topological order

function describeNode(n: NodeProto): string {
  return `${n.opType ?? '?'} node${n.name ? ` "${n.name}"` : ''}`;
}

/**
 * Nodes in a valid order, as close to the given one as possible (stable depth-first; an already sorted
 * list comes back unchanged). Throws EMODEL on a cycle.
 */
function sortedNodes(graph: GraphProto): NodeProto[] {
  const producers = producerMap(graph);
  const state = new Map<NodeProto, 1 | 2>(); // 1 visiting, 2 done
  const out: NodeProto[] = [];
  for (const root of graph.node) {
    if (state.get(root) === 2) continue;
    const stack: { node: NodeProto; deps: NodeProto[]; i: number }[] = [];
    const push = (node: NodeProto) => {
      state.set(node, 1);
      const deps: NodeProto[] = [];
      for (const name of nodeReads(node)) {
        const p = producers.get(name);
        if (p && p !== node) deps.push(p);
      }
      stack.push({ node, deps, i: 0 });
    };
    push(root);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.i < top.deps.length) {
        const dep = top.deps[top.i++]!;
        const s = state.get(dep);
        if (s === 1) throw new EdgetuneError('EMODEL', `graph has a cycle through ${describeNode(dep)}`);
        if (s !== 2) push(dep);
      } else {
        stack.pop();
        state.set(top.node, 2);
        out.push(top.node);
      }
    }
  }
  return out;
}

/** Reorder graph.node (and subgraphs' nodes) topologically, in place; stable for sorted lists. */
export function topologicalSort(graph: GraphProto): void {
  graph.node = sortedNodes(graph);
  for (const n of graph.node) for (const g of subgraphsOf(n)) topologicalSort(g);
}

/** Whether every node comes after the producers of everything it reads (subgraphs included). */
export function isTopologicallySorted(graph: GraphProto): boolean {
  const producers = producerMap(graph);
  const seen = new Set<NodeProto>();
  for (const n of graph.node) {
    for (const name of nodeReads(n)) {
      const p = producers.get(name);
      if (p && p !== n && !seen.has(p)) return false;
    }
    seen.add(n);
    for (const g of subgraphsOf(n)) if (!isTopologicallySorted(g)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Unique names

export interface NameGenerator {
  /** `base` if unused, else `base_1`, `base_2`, …; the name returned is reserved. */
  next(base: string): string;
  reserve(name: string): void;
  has(name: string): boolean;
}

function collectNames(graph: GraphProto, into: Set<string>): void {
  if (graph.name) into.add(graph.name);
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) if (v.name) into.add(v.name);
  for (const t of graph.initializer) if (t.name) into.add(t.name);
  for (const s of graph.sparseInitializer) if (s.values?.name) into.add(s.values.name);
  for (const n of graph.node) {
    if (n.name) into.add(n.name);
    for (const x of n.input) if (x) into.add(x);
    for (const x of n.output) if (x) into.add(x);
    for (const g of subgraphsOf(n)) collectNames(g, into);
  }
}

/** Fresh names that collide with no node, value, initializer or graph name in the model or graph. */
export function nameGenerator(scope: OnnxModel | GraphProto): NameGenerator {
  const used = new Set<string>();
  if ('graph' in scope && 'irVersion' in scope) {
    collectNames(scope.graph, used);
    for (const f of scope.functions) {
      for (const n of f.node) {
        if (n.name) used.add(n.name);
        for (const x of [...n.input, ...n.output]) if (x) used.add(x);
      }
    }
  } else {
    collectNames(scope as GraphProto, used);
  }
  return {
    next(base: string): string {
      let name = base;
      for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
      used.add(name);
      return name;
    },
    reserve(name: string): void {
      used.add(name);
    },
    has(name: string): boolean {
      return used.has(name);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Nodes and attributes

/** A new node (attributes are added with the set*Attribute helpers). */
export function makeNode(opType: string, inputs: readonly string[], outputs: readonly string[], options: { name?: string; domain?: string } = {}): NodeProto {
  const node: NodeProto = { input: [...inputs], output: [...outputs], opType, attribute: [], metadataProps: [], deviceConfigurations: [] };
  if (options.name !== undefined) node.name = options.name;
  if (options.domain !== undefined && options.domain !== '') node.domain = options.domain;
  return node;
}

export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** The attribute's type: its `type` field, or (IR 1 files without one) the value field present. */
export function attributeKind(a: AttributeProto): AttributeType {
  if (a.type) return a.type as AttributeType;
  if (a.f !== undefined) return AttributeType.FLOAT;
  if (a.i !== undefined) return AttributeType.INT;
  if (a.s !== undefined) return AttributeType.STRING;
  if (a.t) return AttributeType.TENSOR;
  if (a.g) return AttributeType.GRAPH;
  if (a.sparseTensor) return AttributeType.SPARSE_TENSOR;
  if (a.tp) return AttributeType.TYPE_PROTO;
  if (a.floats.length) return AttributeType.FLOATS;
  if (a.ints.length) return AttributeType.INTS;
  if (a.strings.length) return AttributeType.STRINGS;
  if (a.tensors.length) return AttributeType.TENSORS;
  if (a.graphs.length) return AttributeType.GRAPHS;
  if (a.sparseTensors.length) return AttributeType.SPARSE_TENSORS;
  if (a.typeProtos.length) return AttributeType.TYPE_PROTOS;
  return AttributeType.UNDEFINED;
}

function typedAttribute(node: NodeProto, name: string, kind: AttributeType): AttributeProto | undefined {
  const a = getAttribute(node, name);
  if (!a) return undefined;
  const k = attributeKind(a);
  if (k !== kind) {
    throw new EdgetuneError(
      'EMODEL',
      `attribute "${name}" of ${describeNode(node)} is ${ATTRIBUTE_TYPE_NAMES[k] ?? k}, not ${ATTRIBUTE_TYPE_NAMES[kind]}`,
    );
  }
  return a;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** INT attribute as a number (values beyond 2^53, e.g. INT64_MAX, are approximated; `.i` is exact). */
export function getIntAttribute(node: NodeProto, name: string): number | undefined {
  const a = typedAttribute(node, name, AttributeType.INT);
  return a ? Number(a.i ?? 0n) : undefined;
}

export function getIntsAttribute(node: NodeProto, name: string): number[] | undefined {
  const a = typedAttribute(node, name, AttributeType.INTS);
  return a ? a.ints.map((v) => Number(v)) : undefined;
}

export function getFloatAttribute(node: NodeProto, name: string): number | undefined {
  const a = typedAttribute(node, name, AttributeType.FLOAT);
  return a ? (a.f ?? 0) : undefined;
}

export function getFloatsAttribute(node: NodeProto, name: string): number[] | undefined {
  return typedAttribute(node, name, AttributeType.FLOATS)?.floats.slice();
}

/** STRING attribute decoded as UTF-8. */
export function getStringAttribute(node: NodeProto, name: string): string | undefined {
  const a = typedAttribute(node, name, AttributeType.STRING);
  return a ? utf8Decoder.decode(a.s ?? new Uint8Array(0)) : undefined;
}

export function getStringsAttribute(node: NodeProto, name: string): string[] | undefined {
  return typedAttribute(node, name, AttributeType.STRINGS)?.strings.map((s) => utf8Decoder.decode(s));
}

export function getTensorAttribute(node: NodeProto, name: string): TensorProto | undefined {
  return typedAttribute(node, name, AttributeType.TENSOR)?.t;
}

export function getGraphAttribute(node: NodeProto, name: string): GraphProto | undefined {
  return typedAttribute(node, name, AttributeType.GRAPH)?.g;
}

function emptyAttribute(name: string, type: AttributeType, docString?: string): AttributeProto {
  const a: AttributeProto = {
    name,
    type,
    floats: [],
    ints: [],
    strings: [],
    tensors: [],
    graphs: [],
    typeProtos: [],
    sparseTensors: [],
  };
  if (docString !== undefined) a.docString = docString;
  return a;
}

function putAttribute(node: NodeProto, a: AttributeProto): AttributeProto {
  const i = node.attribute.findIndex((x) => x.name === a.name);
  if (i >= 0) {
    const old = node.attribute[i]!;
    if (old.docString !== undefined && a.docString === undefined) a.docString = old.docString;
    node.attribute[i] = a;
  } else {
    node.attribute.push(a);
  }
  return a;
}

function toInt64(v: number | bigint, what: string): bigint {
  if (typeof v === 'bigint') {
    if (v < -(2n ** 63n) || v >= 2n ** 63n) throw new EdgetuneError('EARG', `${what}: ${v} does not fit in int64`);
    return v;
  }
  if (!Number.isSafeInteger(v)) throw new EdgetuneError('EARG', `${what}: expected an integer (a bigint beyond 2^53) but received ${v}`);
  return BigInt(v);
}

function checkFloat(v: number, what: string): number {
  if (typeof v !== 'number') throw new EdgetuneError('EARG', `${what}: expected a number but received ${typeof v}`);
  return Math.fround(v);
}

export function setIntAttribute(node: NodeProto, name: string, value: number | bigint): AttributeProto {
  const a = emptyAttribute(name, AttributeType.INT);
  a.i = toInt64(value, `attribute ${name}`);
  return putAttribute(node, a);
}

export function setIntsAttribute(node: NodeProto, name: string, values: readonly (number | bigint)[]): AttributeProto {
  const a = emptyAttribute(name, AttributeType.INTS);
  a.ints = values.map((v, i) => toInt64(v, `attribute ${name}[${i}]`));
  return putAttribute(node, a);
}

/** FLOAT attribute (stored as float32, so the value is rounded with Math.fround). */
export function setFloatAttribute(node: NodeProto, name: string, value: number): AttributeProto {
  const a = emptyAttribute(name, AttributeType.FLOAT);
  a.f = checkFloat(value, `attribute ${name}`);
  return putAttribute(node, a);
}

export function setFloatsAttribute(node: NodeProto, name: string, values: readonly number[]): AttributeProto {
  const a = emptyAttribute(name, AttributeType.FLOATS);
  a.floats = values.map((v, i) => checkFloat(v, `attribute ${name}[${i}]`));
  return putAttribute(node, a);
}

export function setStringAttribute(node: NodeProto, name: string, value: string | Uint8Array): AttributeProto {
  const a = emptyAttribute(name, AttributeType.STRING);
  a.s = typeof value === 'string' ? utf8Encoder.encode(value) : value;
  return putAttribute(node, a);
}

export function setStringsAttribute(node: NodeProto, name: string, values: readonly (string | Uint8Array)[]): AttributeProto {
  const a = emptyAttribute(name, AttributeType.STRINGS);
  a.strings = values.map((v) => (typeof v === 'string' ? utf8Encoder.encode(v) : v));
  return putAttribute(node, a);
}

export function setTensorAttribute(node: NodeProto, name: string, tensor: TensorProto): AttributeProto {
  const a = emptyAttribute(name, AttributeType.TENSOR);
  a.t = tensor;
  return putAttribute(node, a);
}

export function setGraphAttribute(node: NodeProto, name: string, graph: GraphProto): AttributeProto {
  const a = emptyAttribute(name, AttributeType.GRAPH);
  a.g = graph;
  return putAttribute(node, a);
}

export function removeAttribute(node: NodeProto, name: string): boolean {
  const before = node.attribute.length;
  node.attribute = node.attribute.filter((a) => a.name !== name);
  return node.attribute.length !== before;
}

// ---------------------------------------------------------------------------------------------------
// Opsets

function isDefaultDomain(domain: string | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

function sameDomain(a: string | undefined, b: string | undefined): boolean {
  return isDefaultDomain(a) ? isDefaultDomain(b) : a === b;
}

/** The imported opset version of a domain ('' — the default, same as 'ai.onnx'); undefined if not imported. */
export function getOpsetVersion(model: OnnxModel, domain = ''): number | undefined {
  return model.opsetImport.find((o) => sameDomain(o.domain, domain))?.version;
}

/** Import `domain` at `version` (replacing the current import of that domain). */
export function setOpsetVersion(model: OnnxModel, version: number, domain = ''): void {
  if (!Number.isSafeInteger(version) || version < 1) throw new EdgetuneError('EARG', `Expected positive integer for opset version but received ${version}`);
  const entry = model.opsetImport.find((o) => sameDomain(o.domain, domain));
  if (entry) entry.version = version;
  else model.opsetImport.push(isDefaultDomain(domain) ? { domain: '', version } : { domain, version });
}

// ---------------------------------------------------------------------------------------------------
// metadata_props

/** Model metadata_props as a record (a later duplicate key wins, as ONNX Runtime reads them). */
export function getMetadata(model: OnnxModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of model.metadataProps) out[e.key ?? ''] = e.value ?? '';
  return out;
}

export function getMetadataValue(model: OnnxModel, key: string): string | undefined {
  let value: string | undefined;
  for (const e of model.metadataProps) if ((e.key ?? '') === key) value = e.value ?? '';
  return value;
}

/**
 * Set one metadata_props entry (in place of the first entry with that key; later duplicates are
 * removed), or with `undefined` remove every entry with that key.
 */
export function setMetadataValue(model: OnnxModel, key: string, value: string | undefined): void {
  if (typeof key !== 'string') throw new EdgetuneError('EARG', 'metadata key must be a string');
  if (value !== undefined && typeof value !== 'string') throw new EdgetuneError('EARG', `metadata value for ${key} must be a string`);
  const out: StringStringEntryProto[] = [];
  let placed = false;
  for (const e of model.metadataProps) {
    if ((e.key ?? '') !== key) out.push(e);
    else if (!placed && value !== undefined) {
      out.push({ key, value });
      placed = true;
    }
  }
  if (!placed && value !== undefined) out.push({ key, value });
  model.metadataProps = out;
}

// ---------------------------------------------------------------------------------------------------
// Value info, types, graph outputs

/** The ValueInfoProto describing a value: from value_info, graph inputs or graph outputs. */
export function findValueInfo(graph: GraphProto, name: string): ValueInfoProto | undefined {
  return graph.valueInfo.find((v) => v.name === name) ?? graph.input.find((v) => v.name === name) ?? graph.output.find((v) => v.name === name);
}

/** A tensor TypeProto; shape entries are sizes, symbolic names, or null for unknown. */
export function makeTensorType(elemType: number, shape?: readonly (number | string | null)[]): TypeProto {
  const tensorType: NonNullable<TypeProto['tensorType']> = { elemType };
  if (shape) {
    tensorType.shape = {
      dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return { tensorType };
}

export function makeValueInfo(name: string, type?: TypeProto): ValueInfoProto {
  const v: ValueInfoProto = { name, metadataProps: [] };
  if (type) v.type = type;
  return v;
}

/** ONNX Runtime's tensor type names by ONNX element type (what a session's metadata reports). */
const RUNTIME_TYPE_NAMES: Record<number, string> = {
  [DataType.FLOAT]: 'float32',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.STRING]: 'string',
  [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
  [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64',
};

export interface SignatureEntry {
  name: string;
  /** 'float32', 'float16', 'int64', … as ONNX Runtime names them; 'unknown' for non-tensors. */
  type: string;
  /** Sizes and symbolic names; '?' for a dimension the file leaves unnamed. */
  shape: (number | string)[];
}

/**
 * The graph's inputs (initializers listed as inputs, as IR < 4 files do, left out) and outputs as a
 * session lists them, read from the file without opening one.
 */
export function graphSignature(graph: GraphProto): { inputs: SignatureEntry[]; outputs: SignatureEntry[] } {
  const inits = new Set(graph.initializer.map((t) => t.name));
  const entry = (v: ValueInfoProto): SignatureEntry => {
    const tt = v.type?.tensorType;
    return {
      name: v.name ?? '',
      type: tt?.elemType ? (RUNTIME_TYPE_NAMES[tt.elemType] ?? dataTypeName(tt.elemType).toLowerCase()) : 'unknown',
      shape: (tt?.shape?.dim ?? []).map((d) => (typeof d.dimValue === 'number' ? d.dimValue : (d.dimParam ?? '?'))),
    };
  };
  return { inputs: graph.input.filter((v) => !inits.has(v.name)).map(entry), outputs: graph.output.map(entry) };
}

export interface TensorTypeInfo {
  elemType: number;
  /** undefined when the rank is unknown; entries are sizes, symbolic names or null. */
  shape?: (number | string | null)[];
}

/** Element type and shape of a value, from value_info/inputs/outputs or an initializer. */
export function tensorTypeOf(graph: GraphProto, name: string): TensorTypeInfo | undefined {
  const tt = findValueInfo(graph, name)?.type?.tensorType;
  if (tt?.elemType) {
    return { elemType: tt.elemType, shape: tt.shape?.dim.map((d) => d.dimValue ?? d.dimParam ?? null) };
  }
  const init = getInitializer(graph, name);
  if (init?.dataType) return { elemType: init.dataType, shape: [...init.dims] };
  return undefined;
}

/**
 * Expose a value (typically an intermediate tensor) as a graph output. Its type comes from `type`, else
 * from what the graph knows (value_info, inputs, initializers); with neither, the output is added
 * without a type and ONNX Runtime infers it. Returns the output entry (the existing one if already an output).
 */
export function addGraphOutput(graph: GraphProto, name: string, type?: TypeProto): ValueInfoProto {
  const existing = graph.output.find((v) => v.name === name);
  if (existing) return existing;
  const produced = graph.node.some((n) => n.output.includes(name));
  const known = produced || graph.input.some((v) => v.name === name) || graph.initializer.some((t) => t.name === name);
  if (!known) throw new EdgetuneError('EARG', `no value named "${name}" in graph${graph.name ? ` "${graph.name}"` : ''}`);
  let resolved = type;
  if (!resolved) {
    const info = findValueInfo(graph, name);
    if (info?.type) resolved = structuredClone(info.type);
    else {
      const init = getInitializer(graph, name);
      if (init?.dataType) resolved = makeTensorType(init.dataType, init.dims);
    }
  }
  const out = makeValueInfo(name, resolved);
  graph.output.push(out);
  return out;
}

/** Remove a graph output by name (the value itself stays). */
export function removeGraphOutput(graph: GraphProto, name: string): boolean {
  const before = graph.output.length;
  graph.output = graph.output.filter((v) => v.name !== name);
  return graph.output.length !== before;
}

// ---------------------------------------------------------------------------------------------------
// Removing nodes, pruning

/** Remove nodes (given, or matching a predicate). Returns how many were removed. */
export function removeNodes(graph: GraphProto, which: NodeProto | readonly NodeProto[] | ((node: NodeProto) => boolean)): number {
  const before = graph.node.length;
  if (typeof which === 'function') graph.node = graph.node.filter((n) => !which(n));
  else {
    const drop = new Set(Array.isArray(which) ? which : [which as NodeProto]);
    graph.node = graph.node.filter((n) => !drop.has(n));
  }
  return before - graph.node.length;
}

export interface PruneResult {
  nodes: number;
  initializers: number;
  inputs: number;
  valueInfo: number;
}

/**
 * Dead-code elimination from the graph outputs: drop nodes whose outputs nothing needs, then
 * initializers (with the graph inputs that only declare them), value_info entries and quantization
 * annotations of values that no longer exist. Real graph inputs stay unless `removeUnusedInputs`.
 */
export function pruneGraph(graph: GraphProto, options: { removeUnusedInputs?: boolean } = {}): PruneResult {
  const producers = producerMap(graph);
  const live = new Set<string>();
  const liveNodes = new Set<NodeProto>();
  const work: string[] = [];
  for (const o of graph.output) if (o.name) work.push(o.name);
  while (work.length) {
    const name = work.pop()!;
    if (live.has(name)) continue;
    live.add(name);
    const p = producers.get(name);
    if (p && !liveNodes.has(p)) {
      liveNodes.add(p);
      for (const r of nodeReads(p)) if (!live.has(r)) work.push(r);
    }
  }
  const result: PruneResult = { nodes: 0, initializers: 0, inputs: 0, valueInfo: 0 };
  result.nodes = removeNodes(graph, (n) => !liveNodes.has(n));

  const initNames = new Set(graph.initializer.map((t) => t.name ?? ''));
  const keptInit = graph.initializer.filter((t) => live.has(t.name ?? ''));
  result.initializers = graph.initializer.length - keptInit.length;
  graph.initializer = keptInit;
  const keptSparse = graph.sparseInitializer.filter((s: SparseTensorProto) => live.has(s.values?.name ?? ''));
  result.initializers += graph.sparseInitializer.length - keptSparse.length;
  graph.sparseInitializer = keptSparse;

  const keptInputs = graph.input.filter((v) => {
    const name = v.name ?? '';
    if (live.has(name)) return true;
    if (initNames.has(name)) return false; // declared an initializer that is gone
    return !options.removeUnusedInputs;
  });
  result.inputs = graph.input.length - keptInputs.length;
  graph.input = keptInputs;

  const exists = new Set<string>(graph.input.map((v) => v.name ?? ''));
  for (const t of graph.initializer) exists.add(t.name ?? '');
  for (const n of graph.node) for (const o of n.output) exists.add(o);
  const keptInfo = graph.valueInfo.filter((v) => exists.has(v.name ?? ''));
  result.valueInfo = graph.valueInfo.length - keptInfo.length;
  graph.valueInfo = keptInfo;
  graph.quantizationAnnotation = graph.quantizationAnnotation.filter((a) => exists.has(a.tensorName ?? ''));
  return result;
}
