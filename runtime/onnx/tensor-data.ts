// Tensor data in and out of TensorProto: raw_data little-endian or the typed *_data fields, float16 /
// bfloat16 widened exactly. int64 data is BigInt64Array; float16 is carried as raw IEEE half bits in a
// Uint16Array (readFloat32/writeFloat32 convert). Browser-safe.

import { EdgetuneError } from '../core/errors.js';
import { fromHalf, toHalf } from '../core/tensor.js';
import type {
  TensorProto,
} from './model.js';
import { DataType, dataTypeBits, dataTypeName } from './dtypes.js';

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
