// TFLite flatbuffer → plain objects: a minimal, bounds-checked reader for the tables the converter
// needs (Model, SubGraph, Tensor, Buffer, Operator, OperatorCode, QuantizationParameters and the
// builtin option tables). Browser-safe (no Node APIs).
//
// How it was made: written by hand on `flatbuffers.ByteBuffer` (npm `flatbuffers`, no flatc), with
// the vtable field ids of TensorFlow's `tensorflow/lite/schema/schema.fbs`, schema version 3
// (file_identifier "TFL3"), including the later additions OperatorCode.builtin_code (int32, next to
// the int8 deprecated_builtin_code) and Buffer.offset/size (data outside the flatbuffer, for large
// models). A field's vtable slot is 4 + 2·id; a union takes two ids (type, then value).
// Every offset is checked against the file size, so a truncated or corrupt file gives an
// EdgetuneError('EMODEL') naming the problem instead of a RangeError or garbage.

import { ByteBuffer } from 'flatbuffers';
import { EdgetuneError } from '../../core/errors.js';
import { placeholderKind } from '../../core/text.js';

/** TFLite TensorType values (schema.fbs `enum TensorType`). */
export const TensorType = {
  FLOAT32: 0,
  FLOAT16: 1,
  INT32: 2,
  UINT8: 3,
  INT64: 4,
  STRING: 5,
  BOOL: 6,
  INT16: 7,
  COMPLEX64: 8,
  INT8: 9,
  FLOAT64: 10,
} as const;

const TENSOR_TYPE_NAMES = Object.fromEntries(Object.entries(TensorType).map(([k, v]) => [v, k])) as Record<number, string>;
export function tensorTypeName(t: number): string {
  return TENSOR_TYPE_NAMES[t] ?? `TensorType(${t})`;
}

/** The builtin operators the converter knows by name (schema.fbs `enum BuiltinOperator`). */
export const BuiltinOperator = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONCATENATION: 2,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEQUANTIZE: 6,
  FULLY_CONNECTED: 9,
  L2_NORMALIZATION: 11,
  LOGISTIC: 14,
  MAX_POOL_2D: 17,
  MUL: 18,
  RELU: 19,
  RELU6: 21,
  RESHAPE: 22,
  SOFTMAX: 25,
  CUSTOM: 32,
  PAD: 34,
  TRANSPOSE: 39,
  MEAN: 40,
  SUB: 41,
  SQUEEZE: 43,
  STRIDED_SLICE: 45,
  SLICE: 65,
  QUANTIZE: 114,
  HARD_SWISH: 117,
} as const;

/** Names of builtin codes 0…122, in order (schema.fbs; later codes are named BUILTIN_<code>). */
const OP_NAMES = (
  'ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP ' +
  'FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION ' +
  'LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR ' +
  'RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM CALL ' +
  'CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE ' +
  'MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP ' +
  'TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ' +
  'ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL ' +
  'SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL ' +
  'NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN ' +
  'FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT ' +
  'UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD ' +
  'RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE ' +
  'CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU ' +
  'REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE ' +
  'NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND'
).split(' ');
/** `CONV_2D`, … or `BUILTIN_<code>` for codes past the names this file carries. */
export function builtinName(code: number): string {
  return OP_NAMES[code] ?? `BUILTIN_${code}`;
}

export interface TfliteQuantization {
  scale: number[];
  zeroPoint: number[];
  /** The axis the per-channel scales run along (0 for per-tensor). */
  quantizedDimension: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  /** A TensorType value. */
  type: number;
  buffer: number;
  /** Present when the tensor has scales. */
  quantization?: TfliteQuantization;
  /** Constant data (little-endian), when the tensor's buffer holds any. */
  data?: Uint8Array;
}

/** A builtin options table, read field by field (ids from schema.fbs). */
export interface OptionsTable {
  int(id: number, dflt?: number): number;
  /** A byte-sized field (enums such as padding and fused_activation_function). */
  int8(id: number, dflt?: number): number;
  float(id: number, dflt?: number): number;
  bool(id: number, dflt?: boolean): boolean;
  ints(id: number): number[];
}

export interface TfliteOperator {
  index: number;
  /** max(deprecated_builtin_code, builtin_code) of its OperatorCode. */
  builtinCode: number;
  customCode?: string;
  /** Tensor indices; -1 marks an absent optional input. */
  inputs: number[];
  outputs: number[];
  options?: OptionsTable;
}

export interface TfliteSubgraph {
  name: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
}

export interface TfliteModel {
  /** Schema version of the file (3 for every current file). */
  version: number;
  description: string;
  subgraphs: TfliteSubgraph[];
  /** Names of the metadata entries (e.g. TFLITE_METADATA, min_runtime_version). */
  metadataNames: string[];
}

// Option table field ids (schema.fbs).
export const Conv2DOptions = { padding: 0, strideW: 1, strideH: 2, activation: 3, dilationW: 4, dilationH: 5 } as const;
export const DepthwiseConv2DOptions = { padding: 0, strideW: 1, strideH: 2, depthMultiplier: 3, activation: 4, dilationW: 5, dilationH: 6 } as const;
export const Pool2DOptions = { padding: 0, strideW: 1, strideH: 2, filterW: 3, filterH: 4, activation: 5 } as const;
export const FullyConnectedOptions = { activation: 0, weightsFormat: 1, keepNumDims: 2 } as const;
export const SoftmaxOptions = { beta: 0 } as const;
export const ConcatenationOptions = { axis: 0, activation: 1 } as const;
/** AddOptions, SubOptions, MulOptions: fused_activation_function is field 0. */
export const ArithmeticOptions = { activation: 0 } as const;
export const ReshapeOptions = { newShape: 0 } as const;
export const SqueezeOptions = { squeezeDims: 0 } as const;
export const ReducerOptions = { keepDims: 0 } as const;
/** StridedSliceOptions (schema.fbs): masks are bit sets over the input's axes; `offset`: end is relative to begin. */
export const StridedSliceOptions = { beginMask: 0, endMask: 1, ellipsisMask: 2, newAxisMask: 3, shrinkAxisMask: 4, offset: 5 } as const;

/** schema.fbs `enum Padding`. */
export const Padding = { SAME: 0, VALID: 1 } as const;
/** schema.fbs `enum ActivationFunctionType`. */
export const Activation = { NONE: 0, RELU: 1, RELU_N1_TO_1: 2, RELU6: 3, TANH: 4, SIGN_BIT: 5 } as const;

/** Field names by table (schema.fbs order = field id), for error messages. */
const FIELDS: Record<string, string[]> = {
  Model: ['version', 'operator_codes', 'subgraphs', 'description', 'buffers', 'metadata_buffer', 'metadata', 'signature_defs'],
  OperatorCode: ['deprecated_builtin_code', 'custom_code', 'version', 'builtin_code'],
  SubGraph: ['tensors', 'inputs', 'outputs', 'operators', 'name'],
  Tensor: ['shape', 'type', 'buffer', 'name', 'quantization', 'is_variable', 'sparsity', 'shape_signature'],
  QuantizationParameters: ['min', 'max', 'scale', 'zero_point', 'details_type', 'details', 'quantized_dimension'],
  Operator: ['opcode_index', 'inputs', 'outputs', 'builtin_options_type', 'builtin_options', 'custom_options'],
  Buffer: ['data', 'offset', 'size'],
  Metadata: ['name', 'buffer'],
};

function corrupt(what: string): EdgetuneError {
  return new EdgetuneError('EMODEL', `Corrupt TFLite file: ${what}`);
}

/** Bounds-checked access to tables and vectors of one flatbuffer. */
class Reader {
  readonly size: number;
  constructor(readonly bb: ByteBuffer) {
    this.size = bb.capacity();
  }
  check(pos: number, len: number, what: string): void {
    if (!(pos >= 0 && len >= 0 && pos + len <= this.size)) {
      throw corrupt(`${what} at byte ${pos} (+${len}) lies outside the ${this.size}-byte file`);
    }
  }
  table(pos: number, what: string): Table {
    this.check(pos, 4, what);
    const vtable = pos - this.bb.readInt32(pos);
    this.check(vtable, 4, `${what} vtable`);
    const vlen = this.bb.readUint16(vtable);
    this.check(vtable, vlen, `${what} vtable`);
    return new Table(this, pos, vtable, vlen, what);
  }
}

class Table implements OptionsTable {
  constructor(
    readonly r: Reader,
    readonly pos: number,
    readonly vtable: number,
    readonly vlen: number,
    readonly what: string,
  ) {}
  private fieldName(id: number): string {
    const kind = /(\w+)(?: \d+)?$/.exec(this.what)?.[1] ?? '';
    return FIELDS[kind]?.[id] ?? `field ${id}`;
  }
  /** Absolute position of field `id`, or 0 when absent. */
  private field(id: number, size: number): number {
    const slot = 4 + 2 * id;
    if (slot + 2 > this.vlen) return 0;
    const off = this.r.bb.readUint16(this.vtable + slot);
    if (off === 0) return 0;
    this.r.check(this.pos + off, size, `${this.what} ${this.fieldName(id)}`);
    return this.pos + off;
  }
  int(id: number, dflt = 0): number {
    const p = this.field(id, 4);
    return p ? this.r.bb.readInt32(p) : dflt;
  }
  uint(id: number, dflt = 0): number {
    const p = this.field(id, 4);
    return p ? this.r.bb.readUint32(p) : dflt;
  }
  int8(id: number, dflt = 0): number {
    const p = this.field(id, 1);
    return p ? this.r.bb.readInt8(p) : dflt;
  }
  uint64(id: number): bigint {
    const p = this.field(id, 8);
    return p ? this.r.bb.readUint64(p) : 0n;
  }
  float(id: number, dflt = 0): number {
    const p = this.field(id, 4);
    return p ? this.r.bb.readFloat32(p) : dflt;
  }
  bool(id: number, dflt = false): boolean {
    const p = this.field(id, 1);
    return p ? this.r.bb.readUint8(p) !== 0 : dflt;
  }
  private ref(id: number): number {
    const p = this.field(id, 4);
    return p ? p + this.r.bb.readUint32(p) : 0;
  }
  /** [start, length] of a vector field with `elem`-byte elements, or undefined. */
  vector(id: number, elem: number): [number, number] | undefined {
    const v = this.ref(id);
    if (!v) return undefined;
    this.r.check(v, 4, `${this.what} ${this.fieldName(id)}`);
    const n = this.r.bb.readUint32(v);
    this.r.check(v + 4, n * elem, `${this.what} ${this.fieldName(id)} (${n} elements)`);
    return [v + 4, n];
  }
  ints(id: number): number[] {
    const v = this.vector(id, 4);
    if (!v) return [];
    const out = new Array<number>(v[1]);
    for (let i = 0; i < v[1]; i++) out[i] = this.r.bb.readInt32(v[0] + 4 * i);
    return out;
  }
  floats(id: number): number[] {
    const v = this.vector(id, 4);
    if (!v) return [];
    const out = new Array<number>(v[1]);
    for (let i = 0; i < v[1]; i++) out[i] = this.r.bb.readFloat32(v[0] + 4 * i);
    return out;
  }
  longs(id: number): number[] {
    const v = this.vector(id, 8);
    if (!v) return [];
    const out = new Array<number>(v[1]);
    for (let i = 0; i < v[1]; i++) out[i] = Number(this.r.bb.readInt64(v[0] + 8 * i));
    return out;
  }
  bytes(id: number): Uint8Array | undefined {
    const v = this.vector(id, 1);
    return v ? this.r.bb.bytes().subarray(v[0], v[0] + v[1]) : undefined;
  }
  string(id: number): string | undefined {
    const b = this.bytes(id);
    return b ? new TextDecoder().decode(b) : undefined;
  }
  table(id: number, what: string): Table | undefined {
    const t = this.ref(id);
    return t ? this.r.table(t, what) : undefined;
  }
  tables(id: number, what: string): Table[] {
    const v = this.vector(id, 4);
    if (!v) return [];
    const out: Table[] = [];
    for (let i = 0; i < v[1]; i++) {
      const p = v[0] + 4 * i;
      out.push(this.r.table(p + this.r.bb.readUint32(p), `${what} ${i}`));
    }
    return out;
  }
}

/**
 * Parse a .tflite file. Constant tensor data are views into `bytes` (not copies).
 * Errors (EdgetuneError 'EMODEL', "Corrupt TFLite file: …"): the file is shorter than a flatbuffer
 * header, lacks the "TFL3" identifier, has offsets outside the file, a tensor naming a buffer that
 * does not exist, an operator naming a missing operator code or tensor, or no subgraph.
 */
export function parseTflite(bytes: Uint8Array): TfliteModel {
  try {
    return parse(bytes);
  } catch (err) {
    if (err instanceof EdgetuneError) throw err;
    // a read the checks did not foresee (a RangeError from the DataView): still a corrupt file
    throw new EdgetuneError('EMODEL', `Corrupt TFLite file: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function parse(bytes: Uint8Array): TfliteModel {
  if (bytes.length < 8) throw corrupt(`${bytes.length} bytes is too short for a flatbuffer`);
  const bb = new ByteBuffer(bytes);
  if (!bb.__has_identifier('TFL3')) {
    const instead = placeholderKind(bytes);
    if (instead) throw new EdgetuneError('EMODEL', instead);
    const id = new TextDecoder().decode(bytes.subarray(4, 8)).replace(/[^\x20-\x7e]/g, '?');
    throw corrupt(`file identifier is "${id}", not "TFL3" (not a TFLite model, or truncated at the start)`);
  }
  const r = new Reader(bb);
  const model = r.table(bb.readUint32(0), 'Model');
  // Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4, metadata_buffer 5, metadata 6
  const codes = model.tables(1, 'OperatorCode').map((c) => ({
    // OperatorCode: deprecated_builtin_code:byte 0, custom_code 1, version 2, builtin_code:int 3
    builtinCode: Math.max(c.int8(0), c.int(3)),
    customCode: c.string(1),
  }));
  const buffers = model.tables(4, 'Buffer').map((b, i): Uint8Array | undefined => {
    // Buffer: data 0, offset:ulong 1, size:ulong 2 (data outside the flatbuffer, relative to the file start)
    const offset = Number(b.uint64(1));
    if (offset > 1) {
      const size = Number(b.uint64(2));
      r.check(offset, size, `Buffer ${i} data`);
      return bytes.subarray(offset, offset + size);
    }
    return b.bytes(0);
  });
  const subgraphs = model.tables(2, 'SubGraph').map((sg, s): TfliteSubgraph => {
    // SubGraph: tensors 0, inputs 1, outputs 2, operators 3, name 4
    const tensors = sg.tables(0, `SubGraph ${s} Tensor`).map((t, index): TfliteTensor => {
      // Tensor: shape 0, type 1, buffer 2, name 3, quantization 4, is_variable 5, sparsity 6
      const buffer = t.uint(2);
      if (buffer >= buffers.length && buffer !== 0) {
        throw corrupt(`tensor ${index} names buffer ${buffer}, but the file has ${buffers.length} buffers`);
      }
      const tensor: TfliteTensor = { index, name: t.string(3) ?? `tensor_${index}`, shape: t.ints(0), type: t.int8(1), buffer };
      const data = buffers[buffer];
      if (data && data.length > 0) tensor.data = data;
      const q = t.table(4, `Tensor ${index} QuantizationParameters`);
      if (q) {
        // QuantizationParameters: min 0, max 1, scale 2, zero_point 3, details_type 4, details 5, quantized_dimension 6
        const scale = q.floats(2);
        if (scale.length > 0) tensor.quantization = { scale, zeroPoint: q.longs(3), quantizedDimension: q.int(6) };
      }
      return tensor;
    });
    const checkTensor = (i: number, what: string): number => {
      if (i < -1 || i >= tensors.length) throw corrupt(`${what} names tensor ${i}, but subgraph ${s} has ${tensors.length} tensors`);
      return i;
    };
    const operators = sg.tables(3, `SubGraph ${s} Operator`).map((o, index): TfliteOperator => {
      // Operator: opcode_index 0, inputs 1, outputs 2, builtin_options_type 3, builtin_options 4, custom_options 5
      const opcode = o.uint(0);
      const code = codes[opcode];
      if (!code) throw corrupt(`operator ${index} names operator code ${opcode}, but the file has ${codes.length}`);
      const op: TfliteOperator = {
        index,
        builtinCode: code.builtinCode,
        inputs: o.ints(1).map((i) => checkTensor(i, `operator ${index} input`)),
        outputs: o.ints(2).map((i) => checkTensor(i, `operator ${index} output`)),
      };
      if (code.customCode !== undefined) op.customCode = code.customCode;
      const options = o.table(4, `Operator ${index} options`);
      if (options) op.options = options;
      return op;
    });
    return {
      name: sg.string(4) ?? '',
      tensors,
      inputs: sg.ints(1).map((i) => checkTensor(i, 'subgraph input')),
      outputs: sg.ints(2).map((i) => checkTensor(i, 'subgraph output')),
      operators,
    };
  });
  if (subgraphs.length === 0) throw corrupt('the model has no subgraph');
  // Metadata: name 0, buffer 1
  const metadataNames = model.tables(6, 'Metadata').map((m) => m.string(0) ?? '');
  return { version: model.uint(0), description: model.string(3) ?? '', subgraphs, metadataNames };
}
