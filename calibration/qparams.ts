// Quantization parameters (browser-safe maths): activation scale/zero-point from a calibrated range,
// int8 symmetric weights per channel or per tensor, and int32 biases whose scale is exactly
// fround(input scale × weight scale[c]) with no zero point. Zero and near-zero weight channels are
// handled explicitly (ORT #11415): a channel's scale never drops below what keeps its quantized bias
// inside int32, nor below a tiny floor that keeps the bias scale a normal float32.

export type QuantType = 'uint8' | 'int8';

export interface QParams {
  type: QuantType;
  /** float32 value. */
  scale: number;
  zeroPoint: number;
}

/** Round half to even, as ONNX QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Activation parameters: uint8 asymmetric over [min(lo,0), max(hi,0)] (zero exactly representable),
 * or int8 symmetric (zero point 0, scale = max|x| / 127, TensorRT's convention).
 */
export function activationParams(range: { min: number; max: number }, symmetric: boolean): QParams {
  if (symmetric) {
    const t = Math.max(Math.abs(range.min), Math.abs(range.max));
    return { type: 'int8', scale: t > 0 ? Math.fround(t / 127) : 1, zeroPoint: 0 };
  }
  const lo = Math.min(range.min, 0);
  const hi = Math.max(range.max, 0);
  if (!(hi - lo > 0)) return { type: 'uint8', scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / 255);
  const zeroPoint = Math.min(255, Math.max(0, roundHalfEven(-lo / scale)));
  return { type: 'uint8', scale, zeroPoint };
}

/** Dequantized value of x after a QuantizeLinear/DequantizeLinear round trip. */
export function fakeQuant(x: number, q: QParams): number {
  const [lo, hi] = q.type === 'uint8' ? [0, 255] : [-128, 127];
  const v = Math.min(hi, Math.max(lo, roundHalfEven(x / q.scale) + q.zeroPoint));
  return (v - q.zeroPoint) * q.scale;
}

export const INT32_MAX = 2147483647;
/** Smallest weight scale used: keeps scale products normal float32 numbers. */
export const MIN_WEIGHT_SCALE = 1e-12;

export interface QuantizedWeights {
  data: Int8Array;
  /** One scale per channel (length 1 for per-tensor). */
  scales: Float32Array;
  /** Channels whose scale was raised above max|w|/127 (all-zero, near-zero, or to fit the bias in int32). */
  adjusted: number[];
}

/**
 * int8 symmetric weights in [-127, 127]. `axis` is the channel axis (0 for Conv's output channels);
 * `perChannel` false gives one scale. When `bias` and `inputScale` are given, each channel's scale is
 * raised where needed so that round(bias[c] / (inputScale × scale[c])) fits int32.
 */
export function quantizeWeights(
  w: Float32Array,
  dims: readonly number[],
  axis: number,
  perChannel: boolean,
  bias?: Float32Array,
  inputScale?: number,
): QuantizedWeights {
  const channels = perChannel ? dims[axis]! : 1;
  let inner = 1;
  for (let d = axis + 1; d < dims.length; d++) inner *= dims[d]!;
  const chDim = dims[axis]!;
  const chanOf = (i: number) => (perChannel ? Math.floor(i / inner) % chDim : 0);
  const absmax = new Float64Array(channels);
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i]!);
    const c = chanOf(i);
    if (a > absmax[c]!) absmax[c] = a;
  }
  const scales = new Float32Array(channels);
  const adjusted: number[] = [];
  for (let c = 0; c < channels; c++) {
    let s = absmax[c]! / 127;
    let raised = false;
    if (s < MIN_WEIGHT_SCALE) {
      s = MIN_WEIGHT_SCALE;
      raised = true;
    }
    if (bias && inputScale) {
      // Per-tensor: the largest bias decides; per-channel: the channel's own.
      let b = 0;
      if (perChannel) b = Math.abs(bias[c] ?? 0);
      else for (const v of bias) b = Math.max(b, Math.abs(v));
      const need = b / (inputScale * (INT32_MAX - 1));
      if (need > s) {
        s = need * (1 + 1e-6);
        raised = true;
      }
    }
    scales[c] = Math.fround(s);
    if (raised) adjusted.push(c);
  }
  const data = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const v = roundHalfEven(w[i]! / scales[chanOf(i)]!);
    data[i] = v > 127 ? 127 : v < -127 ? -127 : v;
  }
  return { data, scales, adjusted };
}

/** int32 bias with scale fround(inputScale × weightScale[c]) per channel. */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): { data: Int32Array; scales: Float32Array } {
  const scales = new Float32Array(bias.length);
  const data = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const s = Math.fround(inputScale * weightScales[weightScales.length === 1 ? 0 : c]!);
    scales[c] = s;
    const v = roundHalfEven(bias[c]! / s);
    data[c] = Math.max(-INT32_MAX, Math.min(INT32_MAX, v));
  }
  return { data, scales };
}
