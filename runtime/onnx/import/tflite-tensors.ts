// Tensor-level helpers of the TFLite importer: which tensors are quantized activations, their ONNX
// element types, constant data as typed arrays (float16 widened, sizes checked against the shape),
// fused-activation codes, and NHWC → NCHW shapes. Browser-safe.

import { EdgetuneError } from '../../core/errors.js';
import { DataType, float16ToNumber } from '../graph.js';
import { NHWC_TO_NCHW, permute, type ActivationKind } from './common.js';
import { Activation, TensorType, tensorTypeName, type TfliteTensor } from './tflite-schema.js';

/** A uint8/int8 tensor with scales: a quantized activation or weight. */
export function isQuantized(t: TfliteTensor): boolean {
  return t.quantization !== undefined && (t.type === TensorType.UINT8 || t.type === TensorType.INT8);
}

/** Activations (inputs and operator outputs) must be float32 or uint8/int8 with quantization parameters. */
export function checkActivation(t: TfliteTensor): void {
  if (t.type === TensorType.FLOAT32 || isQuantized(t)) return;
  throw new EdgetuneError(
    'EMODEL',
    `TFLite tensor ${t.index} "${t.name}" is ${tensorTypeName(t.type)}${t.quantization ? ' (quantized)' : ''}: only float32 and uint8/int8-quantized activations are supported`,
  );
}

/** The ONNX element type of a quantized (or int32 bias) tensor. */
export function onnxQuantType(t: TfliteTensor): number {
  if (t.type === TensorType.UINT8) return DataType.UINT8;
  if (t.type === TensorType.INT8) return DataType.INT8;
  if (t.type === TensorType.INT32) return DataType.INT32;
  throw new EdgetuneError('EMODEL', `TFLite tensor "${t.name}": cannot quantize to ${tensorTypeName(t.type)}`);
}

/** fused_activation_function codes as activations. */
export const FUSED: Record<number, ActivationKind> = {
  [Activation.NONE]: 'linear',
  [Activation.RELU]: 'relu',
  [Activation.RELU_N1_TO_1]: 'relu_n1_to_1',
  [Activation.RELU6]: 'relu6',
  [Activation.TANH]: 'tanh',
};

const ELEMENT_BYTES: Record<number, number> = { [TensorType.FLOAT32]: 4, [TensorType.FLOAT16]: 2, [TensorType.INT8]: 1, [TensorType.UINT8]: 1, [TensorType.INT32]: 4, [TensorType.INT64]: 8 };

/**
 * A constant's little-endian bytes as a typed array (copied, so aligned): float32 (float16 widened),
 * int8, uint8 or int32 (int64 narrowed). Throws EdgetuneError('EMODEL') when the byte count does not
 * match the shape, or for other types.
 */
export function constData(t: TfliteTensor): Float32Array | Int8Array | Uint8Array | Int32Array {
  const want = t.shape.reduce((a, d) => a * d, 1) * (ELEMENT_BYTES[t.type] ?? 0);
  if (ELEMENT_BYTES[t.type] !== undefined && t.data!.length !== want) {
    throw new EdgetuneError('EMODEL', `Corrupt TFLite file: tensor ${t.index} "${t.name}" has ${t.data!.length} bytes of data, but ${tensorTypeName(t.type)} [${t.shape.join(',')}] needs ${want}`);
  }
  const d = t.data!.slice();
  switch (t.type) {
    case TensorType.FLOAT32:
      return new Float32Array(d.buffer, 0, d.length / 4);
    case TensorType.FLOAT16: {
      const bits = new Uint16Array(d.buffer, 0, d.length / 2);
      return Float32Array.from(bits, (b) => float16ToNumber(b));
    }
    case TensorType.INT8:
      return new Int8Array(d.buffer);
    case TensorType.UINT8:
      return d;
    case TensorType.INT32:
      return new Int32Array(d.buffer, 0, d.length / 4);
    case TensorType.INT64:
      return Int32Array.from(new BigInt64Array(d.buffer, 0, d.length / 8), (v) => Number(v));
    default:
      throw new EdgetuneError('EMODEL', `TFLite tensor "${t.name}": constant of type ${tensorTypeName(t.type)} is not supported`);
  }
}

/** A TFLite shape in the ONNX graph's layout: rank 4 NHWC → NCHW, others unchanged. */
export function onnxShape(shape: readonly number[]): number[] {
  return shape.length === 4 ? permute(shape, NHWC_TO_NCHW) : [...shape];
}
