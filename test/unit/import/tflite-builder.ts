// Test helper: write small .tflite files with the flatbuffers Builder (field ids from schema.fbs), so
// the importer can be checked on operators and options the real models do not use, against LiteRT.js.

import * as flatbuffers from 'flatbuffers';

export interface BuildTensor {
  name: string;
  shape: number[];
  /** TFLite TensorType (0 FLOAT32, 1 FLOAT16, 2 INT32, 3 UINT8, 9 INT8); default 0. */
  type?: number;
  /** Constant data (little-endian bytes). */
  data?: Uint8Array;
  quantization?: { scale: number[]; zeroPoint: number[]; dim?: number };
}

/** An options table field: [field id, kind, value]. */
export type OptionField = [number, 'i8' | 'i32' | 'f32' | 'bool', number] | [number, 'ints', number[]];

export interface BuildOperator {
  /** Builtin operator code (OperatorCode.builtin_code, int32 slot 3). */
  code: number;
  /** OperatorCode.deprecated_builtin_code (int8 slot 0); default min(code, 127), as TFLite writers set it. */
  deprecatedCode?: number;
  inputs: number[];
  outputs: number[];
  /** OperatorCode.custom_code (string slot 1), for code 32 (CUSTOM). */
  customCode?: string;
  /** BuiltinOptions union type (1 Conv2DOptions, 2 DepthwiseConv2DOptions, 5 Pool2DOptions, …) and its fields. */
  options?: { type: number; fields: OptionField[] };
}

export function buildTflite(tensors: BuildTensor[], operators: BuildOperator[], inputs: number[], outputs: number[]): Uint8Array {
  const b = new flatbuffers.Builder(4096);
  const ints = (xs: number[]) => {
    b.startVector(4, xs.length, 4);
    for (let i = xs.length - 1; i >= 0; i--) b.addInt32(xs[i]!);
    return b.endVector();
  };
  const offsets = (xs: number[]) => {
    b.startVector(4, xs.length, 4);
    for (let i = xs.length - 1; i >= 0; i--) b.addOffset(xs[i]!);
    return b.endVector();
  };
  // buffers: 0 is the empty sentinel, then one per constant tensor
  const bufferData: Uint8Array[] = [];
  const tensorBuffer = tensors.map((t) => (t.data ? bufferData.push(t.data) : 0));
  const tensorOffsets = tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = ints(t.shape);
    let quant = 0;
    if (t.quantization) {
      const scale = (() => {
        b.startVector(4, t.quantization.scale.length, 4);
        for (let k = t.quantization.scale.length - 1; k >= 0; k--) b.addFloat32(t.quantization.scale[k]!);
        return b.endVector();
      })();
      const zp = (() => {
        b.startVector(8, t.quantization.zeroPoint.length, 8);
        for (let k = t.quantization.zeroPoint.length - 1; k >= 0; k--) b.addInt64(BigInt(t.quantization.zeroPoint[k]!));
        return b.endVector();
      })();
      b.startObject(7);
      b.addFieldOffset(2, scale, 0);
      b.addFieldOffset(3, zp, 0);
      b.addFieldInt32(6, t.quantization.dim ?? 0, 0);
      quant = b.endObject();
    }
    b.startObject(5);
    b.addFieldOffset(0, shape, 0);
    b.addFieldInt8(1, t.type ?? 0, 0);
    b.addFieldInt32(2, tensorBuffer[i]!, 0);
    b.addFieldOffset(3, name, 0);
    if (quant) b.addFieldOffset(4, quant, 0);
    return b.endObject();
  });
  const codes: [number, number, string | undefined][] = [];
  const opOffsets = operators.map((op) => {
    const deprecated = op.deprecatedCode ?? Math.min(op.code, 127);
    let opcode = codes.findIndex(([c, d, custom]) => c === op.code && d === deprecated && custom === op.customCode);
    if (opcode < 0) opcode = codes.push([op.code, deprecated, op.customCode]) - 1;
    let options = 0;
    if (op.options) {
      const vecs = new Map<number, number>();
      for (const f of op.options.fields) if (f[1] === 'ints') vecs.set(f[0], ints(f[2] as number[]));
      b.startObject(Math.max(...op.options.fields.map((f) => f[0])) + 1);
      for (const [id, kind, v] of op.options.fields) {
        if (kind === 'ints') b.addFieldOffset(id, vecs.get(id)!, 0);
        else if (kind === 'i8' || kind === 'bool') b.addFieldInt8(id, v as number, null);
        else if (kind === 'i32') b.addFieldInt32(id, v as number, null);
        else b.addFieldFloat32(id, v as number, null);
      }
      options = b.endObject();
    }
    const ins = ints(op.inputs);
    const outs = ints(op.outputs);
    b.startObject(5);
    b.addFieldInt32(0, opcode, null);
    b.addFieldOffset(1, ins, 0);
    b.addFieldOffset(2, outs, 0);
    if (op.options) {
      b.addFieldInt8(3, op.options.type, 0);
      b.addFieldOffset(4, options, 0);
    }
    return b.endObject();
  });
  const tensorVec = offsets(tensorOffsets);
  const opVec = offsets(opOffsets);
  const sgIn = ints(inputs);
  const sgOut = ints(outputs);
  const sgName = b.createString('main');
  b.startObject(5);
  b.addFieldOffset(0, tensorVec, 0);
  b.addFieldOffset(1, sgIn, 0);
  b.addFieldOffset(2, sgOut, 0);
  b.addFieldOffset(3, opVec, 0);
  b.addFieldOffset(4, sgName, 0);
  const subgraphs = offsets([b.endObject()]);
  const codeOffsets = codes.map(([c, deprecated, custom]) => {
    const customName = custom === undefined ? 0 : b.createString(custom);
    b.startObject(4);
    b.addFieldInt8(0, deprecated, 0);
    if (customName) b.addFieldOffset(1, customName, 0);
    b.addFieldInt32(2, 1, null);
    b.addFieldInt32(3, c, 0);
    return b.endObject();
  });
  const codeVec = offsets(codeOffsets);
  const bufferOffsets = [0, ...bufferData.map((_, i) => i + 1)].map((k) => {
    let data = 0;
    if (k > 0) {
      const d = bufferData[k - 1]!;
      b.startVector(1, d.length, 16);
      for (let i = d.length - 1; i >= 0; i--) b.addInt8(d[i]!);
      data = b.endVector();
    }
    b.startObject(1);
    if (data) b.addFieldOffset(0, data, 0);
    return b.endObject();
  });
  const bufferVec = offsets(bufferOffsets);
  const desc = b.createString('edgetune test model');
  b.startObject(5);
  b.addFieldInt32(0, 3, null);
  b.addFieldOffset(1, codeVec, 0);
  b.addFieldOffset(2, subgraphs, 0);
  b.addFieldOffset(3, desc, 0);
  b.addFieldOffset(4, bufferVec, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array().slice();
}

export const f32 = (xs: ArrayLike<number>) => new Uint8Array(Float32Array.from(xs).buffer);
export const i32 = (xs: ArrayLike<number>) => new Uint8Array(Int32Array.from(xs).buffer);
