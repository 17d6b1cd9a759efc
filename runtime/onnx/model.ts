// ONNX model bytes ⇄ plain TypeScript objects (the types of runtime/onnx/ir.ts). decodeModel() checks
// the bytes really are an ONNX ModelProto this schema fully understands (so encodeModel() never
// silently drops a field), then turns the protobufjs messages into plain objects: repeated fields are
// always arrays, optional fields are present only when the file had them (proto2 presence, so a round
// trip reproduces the file), bytes are Uint8Array, int64 values are `number` or, where they can exceed
// 2^53, `bigint` (see BIGINT_FIELDS). Browser-safe: no Node APIs.

import protobuf from 'protobufjs';
import { EdgetuneError } from '../core/errors.js';
import { BIGINT_FIELDS, MAX_IR_VERSION, onnxType } from './schema.js';
import type { OnnxModel } from './ir.js';

/** The IR types, from ir.ts: importers of model.ts keep finding them here. */
export type {
  StringStringEntryProto,
  IntIntListEntryProto,
  OperatorSetIdProto,
  TensorAnnotation,
  DeviceConfigurationProto,
  SimpleShardedDimProto,
  ShardedDimProto,
  ShardingSpecProto,
  NodeDeviceConfigurationProto,
  TensorSegment,
  TensorProto,
  SparseTensorProto,
  TensorShapeDimension,
  TensorShapeProto,
  TypeProto,
  ValueInfoProto,
  AttributeProto,
  NodeProto,
  GraphProto,
  FunctionProto,
  TrainingInfoProto,
  OnnxModel,
} from './ir.js';

// ---------------------------------------------------------------------------------------------------
// Wire-level check: every field known, every wire type right, every length inside the data

const VARINT_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool']);
const FIXED32_TYPES = new Set(['float', 'fixed32', 'sfixed32']);
const FIXED64_TYPES = new Set(['double', 'fixed64', 'sfixed64']);

class WireError extends Error {
  constructor(
    readonly where: number,
    readonly what: string,
  ) {
    super(what);
  }
}

class UnknownField extends Error {
  constructor(
    readonly typeName: string,
    readonly fieldNo: number,
    readonly where: number,
  ) {
    super(`unknown field ${fieldNo} in ${typeName}`);
  }
}

function expectedWireType(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Type) return 2;
  if (field.resolvedType instanceof protobuf.Enum || VARINT_TYPES.has(field.type)) return 0;
  if (FIXED32_TYPES.has(field.type)) return 5;
  if (FIXED64_TYPES.has(field.type)) return 1;
  return 2; // string, bytes
}

function readTag(r: protobuf.Reader, end: number): { no: number; wt: number; at: number } {
  const at = r.pos;
  const tag = r.uint32();
  if (r.pos > end) throw new WireError(at, 'truncated field tag');
  const no = tag >>> 3;
  const wt = tag & 7;
  if (no === 0) throw new WireError(at, 'field number 0');
  if (wt !== 0 && wt !== 1 && wt !== 2 && wt !== 5) throw new WireError(at, `invalid wire type ${wt}`);
  return { no, wt, at };
}

function skip(r: protobuf.Reader, wt: number, end: number): void {
  const at = r.pos;
  if (wt === 2) {
    const len = r.uint32();
    if (r.pos + len > end) throw new WireError(at, 'length past the end of the data');
    r.pos += len;
  } else {
    r.skipType(wt);
  }
  if (r.pos > end) throw new WireError(at, 'field past the end of the data');
}

/** Walk a message's fields (recursing into sub-messages), refusing unknown fields and bad wire types. */
function scanMessage(type: protobuf.Type, r: protobuf.Reader, end: number): void {
  while (r.pos < end) {
    const { no, wt, at } = readTag(r, end);
    const field = type.fieldsById[no];
    if (!field) {
      skip(r, wt, end);
      throw new UnknownField(qualified(type), no, at);
    }
    const expected = expectedWireType(field);
    if (wt !== expected && !(wt === 2 && field.repeated && expected !== 2)) {
      throw new WireError(at, `wrong wire type ${wt} for ${qualified(type)}.${field.name}`);
    }
    if (wt === 2 && field.resolvedType instanceof protobuf.Type) {
      const lenAt = r.pos;
      const len = r.uint32();
      const subEnd = r.pos + len;
      if (subEnd > end) throw new WireError(lenAt, 'length past the end of the data');
      scanMessage(field.resolvedType, r, subEnd);
    } else {
      skip(r, wt, end);
    }
  }
  if (r.pos !== end) throw new WireError(r.pos, 'message overruns its length');
}

function qualified(type: protobuf.Type): string {
  return type.fullName.replace(/^\.onnx\./, '');
}

function notOnnx(detail: string, cause?: unknown): EdgetuneError {
  return new EdgetuneError('EMODEL', `Not an ONNX model: ${detail}`, { cause });
}

/** Top-level pass: the bytes must parse as a ModelProto with an ir_version this schema covers. */
function checkModelBytes(bytes: Uint8Array): void {
  if (bytes.length === 0) throw notOnnx('the data is empty (0 bytes)');
  const modelType = onnxType('ModelProto');
  const r = protobuf.Reader.create(bytes);
  let irVersion: number | undefined;
  let unknown: UnknownField | undefined;
  let hasGraph = false;
  try {
    while (r.pos < r.len) {
      const { no, wt, at } = readTag(r, r.len);
      const field = modelType.fieldsById[no];
      if (field && wt !== expectedWireType(field) && !(wt === 2 && field.repeated)) {
        throw new WireError(at, `wrong wire type ${wt} for ModelProto.${field.name}`);
      }
      if (no === 1) {
        const v = r.int64();
        irVersion = typeof v === 'number' ? v : longToNumber(v as protobuf.Long, false);
        continue;
      }
      if (no === 7) hasGraph = true;
      if (!field) unknown ??= new UnknownField('ModelProto', no, at);
      skip(r, wt, r.len);
    }
  } catch (err) {
    if (err instanceof WireError) throw notOnnx(`the data is not a protobuf ModelProto (${err.what} at byte ${err.where})`);
    throw notOnnx(`the data is not a protobuf ModelProto (${messageText(err)})`, err);
  }
  if (irVersion === undefined) throw notOnnx('no ir_version field');
  if (!Number.isSafeInteger(irVersion) || irVersion < 1) throw notOnnx(`ir_version ${irVersion} is not a valid IR version`);
  if (irVersion > MAX_IR_VERSION) {
    throw new EdgetuneError('EMODEL', `IR version ${irVersion} is newer than edgetune's ONNX schema (max ${MAX_IR_VERSION})`);
  }
  if (unknown) throw notOnnx(`unknown ModelProto field ${unknown.fieldNo} at byte ${unknown.where}`);
  if (!hasGraph) throw notOnnx('no graph field');
  try {
    scanMessage(modelType, protobuf.Reader.create(bytes), bytes.length);
  } catch (err) {
    if (err instanceof UnknownField) {
      throw new EdgetuneError(
        'EMODEL',
        `ONNX model has a field edgetune's schema does not know (${err.typeName} field ${err.fieldNo} at byte ${err.where}); refusing to load it rather than drop it`,
      );
    }
    if (err instanceof WireError) throw notOnnx(`malformed protobuf (${err.what} at byte ${err.where})`);
    throw notOnnx(`malformed protobuf (${messageText(err)})`, err);
  }
}

function messageText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------------
// int64 conversion (protobufjs gives Long objects, or numbers where no Long class is available)

function longToNumber(v: protobuf.Long, unsigned: boolean): number {
  const hi = unsigned ? v.high >>> 0 : v.high | 0;
  return hi * 4294967296 + (v.low >>> 0);
}

function longToBigInt(v: protobuf.Long | number, unsigned: boolean): bigint {
  if (typeof v === 'number') return BigInt(v);
  const hi = unsigned ? BigInt(v.high >>> 0) : BigInt(v.high | 0);
  return (hi << 32n) | BigInt(v.low >>> 0);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function bigIntToLongBits(v: bigint, unsigned: boolean, where: string): { low: number; high: number; unsigned: boolean } {
  if (unsigned ? v < 0n || v > UINT64_MAX : v < INT64_MIN || v > INT64_MAX) {
    throw new EdgetuneError('EARG', `${where}: ${v} does not fit in ${unsigned ? 'uint64' : 'int64'}`);
  }
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned };
}

// ---------------------------------------------------------------------------------------------------
// protobufjs message → plain object

interface FieldPlan {
  name: string;
  repeated: boolean;
  sub?: protobuf.Type;
  long?: 'number' | 'bigint';
  unsigned: boolean;
  bytes: boolean;
  key: string;
}

const plans = new Map<protobuf.Type, FieldPlan[]>();

function planOf(type: protobuf.Type): FieldPlan[] {
  let plan = plans.get(type);
  if (!plan) {
    plan = type.fieldsArray.map((f) => {
      const key = `onnx.${qualified(type)}.${f.name}`;
      const isLong = ['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64'].includes(f.type);
      return {
        name: f.name,
        repeated: f.repeated,
        sub: f.resolvedType instanceof protobuf.Type ? f.resolvedType : undefined,
        long: isLong ? (BIGINT_FIELDS.has(key) ? 'bigint' : 'number') : undefined,
        unsigned: f.type === 'uint64' || f.type === 'fixed64',
        bytes: f.type === 'bytes',
        key,
      } satisfies FieldPlan;
    });
    plans.set(type, plan);
  }
  return plan;
}

function plainBytes(v: Uint8Array): Uint8Array {
  return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function fromLong(p: FieldPlan, v: protobuf.Long | number): number | bigint {
  if (p.long === 'bigint') return longToBigInt(v, p.unsigned);
  const n = typeof v === 'number' ? v : longToNumber(v, p.unsigned);
  if (!Number.isSafeInteger(n)) throw new EdgetuneError('EMODEL', `ONNX model value out of range: ${p.key} = ${longToBigInt(v, p.unsigned)} (beyond 2^53)`);
  return n;
}

function toPlain(type: protobuf.Type, msg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of planOf(type)) {
    const has = Object.hasOwn(msg, p.name);
    if (p.repeated) {
      const arr = has ? (msg[p.name] as unknown[]) : [];
      if (p.sub) out[p.name] = arr.map((m) => toPlain(p.sub!, m as Record<string, unknown>));
      else if (p.long) out[p.name] = arr.map((v) => fromLong(p, v as protobuf.Long));
      else if (p.bytes) out[p.name] = arr.map((v) => plainBytes(v as Uint8Array));
      else out[p.name] = arr.slice();
    } else if (has && msg[p.name] != null) {
      const v = msg[p.name];
      if (p.sub) out[p.name] = toPlain(p.sub, v as Record<string, unknown>);
      else if (p.long) out[p.name] = fromLong(p, v as protobuf.Long);
      else if (p.bytes) out[p.name] = plainBytes(v as Uint8Array);
      else out[p.name] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// plain object → protobufjs-encodable object (bigint → Long bits, checks on the way)

function checkedLong(p: FieldPlan, v: unknown, where: string): unknown {
  if (typeof v === 'bigint') return bigIntToLongBits(v, p.unsigned, where);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new EdgetuneError('EARG', `${where}: expected an integer but received ${v}`);
    if (p.unsigned && v < 0) throw new EdgetuneError('EARG', `${where}: expected an unsigned integer but received ${v}`);
    if (!Number.isSafeInteger(v)) return bigIntToLongBits(BigInt(v), p.unsigned, where);
    return v;
  }
  throw new EdgetuneError('EARG', `${where}: expected an integer (number or bigint) but received ${typeof v}`);
}

function toEncodable(type: protobuf.Type, obj: unknown, where: string): Record<string, unknown> {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new EdgetuneError('EARG', `${where}: expected a ${qualified(type)} object`);
  }
  const src = obj as Record<string, unknown>;
  const plan = planOf(type);
  for (const k of Object.keys(src)) {
    if (src[k] !== undefined && !type.fields[k]) {
      throw new EdgetuneError('EARG', `${where}: ${qualified(type)} has no field "${k}"`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const p of plan) {
    const v = src[p.name];
    if (v === undefined || v === null) continue;
    const at = `${where}.${p.name}`;
    if (p.repeated) {
      if (!Array.isArray(v)) throw new EdgetuneError('EARG', `${at}: expected an array`);
      if (v.length === 0) continue;
      if (p.sub) out[p.name] = v.map((m, i) => toEncodable(p.sub!, m, `${at}[${i}]`));
      else if (p.long) out[p.name] = v.map((x, i) => checkedLong(p, x, `${at}[${i}]`));
      else out[p.name] = v;
    } else if (p.sub) {
      out[p.name] = toEncodable(p.sub, v, at);
    } else if (p.long) {
      out[p.name] = checkedLong(p, v, at);
    } else {
      out[p.name] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Public API

/**
 * Decode ONNX model bytes. Throws EdgetuneError('EMODEL') for bytes that are not an ONNX model, for an
 * IR version newer than the schema (MAX_IR_VERSION), and for fields the schema does not know. The
 * result owns its memory (the input is copied once; `rawData` arrays are views into that copy).
 */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  if (!(bytes instanceof Uint8Array)) throw new EdgetuneError('EARG', 'decodeModel expects a Uint8Array');
  const own = new Uint8Array(bytes.byteLength);
  own.set(bytes);
  checkModelBytes(own);
  const type = onnxType('ModelProto');
  let msg: protobuf.Message;
  try {
    msg = type.decode(own);
  } catch (err) {
    throw notOnnx(`malformed protobuf (${messageText(err)})`, err);
  }
  return toPlain(type, msg as unknown as Record<string, unknown>) as unknown as OnnxModel;
}

/** Encode a model to ONNX bytes (fields in field-number order, as the official writers do). */
export function encodeModel(model: OnnxModel): Uint8Array {
  if (!model || typeof model !== 'object') throw new EdgetuneError('EARG', 'encodeModel expects an OnnxModel object');
  if (!Number.isSafeInteger(model.irVersion) || model.irVersion < 1 || model.irVersion > MAX_IR_VERSION) {
    throw new EdgetuneError('EARG', `model.irVersion must be an integer from 1 to ${MAX_IR_VERSION} but is ${String(model.irVersion)}`);
  }
  if (!model.graph) throw new EdgetuneError('EARG', 'model.graph is missing');
  const type = onnxType('ModelProto');
  const out = type.encode(toEncodable(type, model, 'model')).finish();
  return out.constructor === Uint8Array ? out : new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** A deep copy of a model (via encode + decode). */
export function cloneModel(model: OnnxModel): OnnxModel {
  return decodeModel(encodeModel(model));
}
