// TFLite flatbuffer → ONNX. Walks the main subgraph's operators in order and writes an NCHW float
// graph (weights transposed once, here); quantized tensors (uint8 per-tensor as in Coral models, int8
// per-channel as in Teachable Machine's model.tflite) become QDQ around float ops (opset 13: per-channel
// DequantizeLinear with an axis; int32 biases at input_scale × weight_scale; int8 activations written
// as uint8 with zero point + 128, the same values), which onnxruntime's CPU provider fuses into integer
// kernels (QLinearConv, QLinearAdd, QGemm…). The card (tflite-card.ts) says what the file says about
// input, output, labels and embedding. Browser-safe (no Node APIs, no onnxruntime).

import { EdgetuneError } from '../../core/errors.js';
import { DataType } from '../graph.js';
import {
  GraphBuilder,
  NCHW_TO_NHWC,
  NHWC_TO_NCHW,
  activationRange,
  convPads,
  emitActivation,
  floatInput,
  nhwcAxisToNchw,
  permute,
  transposeData,
  type ActivationKind,
  type ImportResult,
  type Value,
} from './common.js';
import { quantizesActivations } from '../quantized.js';
import { readAssociatedFiles, tfliteCard, type ConversionSummary } from './tflite-card.js';
import { FUSED, checkActivation, constData, isQuantized, onnxQuantType, onnxShape } from './tflite-tensors.js';
import {
  ArithmeticOptions,
  BuiltinOperator as Op,
  ConcatenationOptions,
  Conv2DOptions,
  DepthwiseConv2DOptions,
  FullyConnectedOptions,
  Padding,
  Pool2DOptions,
  ReducerOptions,
  SoftmaxOptions,
  StridedSliceOptions,
  TensorType,
  builtinName,
  parseTflite,
  tensorTypeName,
  type TfliteOperator,
  type TfliteSubgraph,
  type TfliteTensor,
} from './tflite-schema.js';

export interface TfliteImportOptions {
  /** Labels: the text of a labels file (`i NAME` lines or one name per line) or the names themselves. */
  labels?: string | readonly string[];
  /** Graph name in the ONNX file (default: the subgraph's name, or "tflite"). */
  name?: string;
}

/**
 * Convert a .tflite model (its bytes) to ONNX, with a card of what the file says.
 *
 * - Input: the ONNX model takes float32 NCHW `[1, C, H, W]` (the file's NHWC input transposed). For
 *   a quantized input the float is the *dequantized* value ((x − zp)·scale, e.g. (x − 128)/128 for
 *   Coral); a QuantizeLinear with the file's parameters follows, so integer pixels reproduce exactly.
 * - Output: float (quantized outputs dequantized); rank-4 outputs are NCHW.
 * - Only the first subgraph is converted; batch is the file's (1).
 * Errors (EdgetuneError 'EMODEL'): corrupt file (see parseTflite); an unsupported operator, named
 * with its index and the tensor it produces; tensor types the converter cannot read.
 */
export function importTflite(bytes: Uint8Array, options: TfliteImportOptions = {}): ImportResult {
  const file = parseTflite(bytes);
  const sg = file.subgraphs[0]!;
  if (sg.inputs.length === 0 || sg.outputs.length === 0) {
    throw new EdgetuneError('EMODEL', `TFLite model: the main subgraph has ${sg.inputs.length} inputs and ${sg.outputs.length} outputs; an image model needs at least one of each`);
  }
  const conv = new TfliteConverter(sg, imageInputLayout(sg));
  const model = conv.run(options.name ?? (sg.name || 'tflite'), file.description);
  const card = tfliteCard(sg, { ...conv.summary(), quantizedActivations: quantizesActivations(model.graph) }, { labels: options.labels, associatedFiles: readAssociatedFiles(bytes) });
  return { model, card };
}

/** The permutation of a TRANSPOSE operator (its constant second input), or undefined when computed at run time. */
function transposePerm(sg: TfliteSubgraph, op: TfliteOperator): number[] | undefined {
  const t = sg.tensors[op.inputs[1]!];
  return t?.data ? Array.from(constData(t)) : undefined;
}

/**
 * The layout of the main input, checked to be an image: TFLite's own NHWC `[1, H, W, C]`, or NCHW
 * `[1, C, H, W]` when every operator reading it is a TRANSPOSE to NHWC (perm 0,2,3,1), as PyTorch →
 * TFLite converters write; C is 1 (grayscale) or 3 (colour). An input of another rank, or of more
 * than 4 channels (audio features, a vector, a 1024-channel feature map), is no image model:
 * EdgetuneError('EMODEL') naming the input and its shape. (2 or 4 channels convert; what feeds them
 * then says the channel count does not fit the card.)
 */
function imageInputLayout(sg: TfliteSubgraph): 'NHWC' | 'NCHW' {
  const i = sg.inputs[0]!;
  const t = sg.tensors[i];
  if (!t) throw new EdgetuneError('EMODEL', `Corrupt TFLite file: a required tensor is absent (index ${i})`);
  const s = t.shape;
  const image = (c: number | undefined) => c !== undefined && c >= 1 && c <= 4;
  if (s.length === 4 && s[1]! > 0 && s[2]! > 0 && s[3]! > 0) {
    const readers = sg.operators.filter((op) => op.inputs.includes(i));
    const toNhwc = readers.length > 0 && readers.every((op) => op.builtinCode === Op.TRANSPOSE && transposePerm(sg, op)?.join(',') === '0,2,3,1');
    if (toNhwc && image(s[1])) return 'NCHW';
    if (!toNhwc && image(s[3])) return 'NHWC';
  }
  throw new EdgetuneError(
    'EMODEL',
    `the input "${t.name}" is ${tensorTypeName(t.type)} [${s.join(',')}]: not an image; edgetune imports image models, whose input is [1, height, width, channels] (NHWC) with 1 or 3 channels`,
  );
}

/**
 * Custom operators that hold a graph compiled for an accelerator (its weights in the accelerator's own
 * format, not TFLite tensors): what the file is, and which file to use instead.
 */
const COMPILED_FOR: Record<string, string> = {
  'edgetpu-custom-op':
    'the model is compiled for the Coral Edge TPU (the operator holds the compiled graph, which only an Edge TPU runs); import the CPU .tflite it was compiled from (Coral publishes each model without the _edgetpu suffix too; Teachable Machine: the "Tensorflow Lite" export, Quantized or Floating point)',
  'ethos-u': 'the model is compiled by Vela for an Arm Ethos-U NPU (the operator holds the compiled graph); import the .tflite given to Vela',
};

class TfliteConverter {
  readonly b = new GraphBuilder();
  private readonly values = new Map<number, Value>();
  private quantizedWeights = false;
  private halfWeights = false;
  private inputName = '';

  /** The shape of the ONNX graph input (NCHW `[1, C, H, W]`). */
  private inputShape: number[] = [];

  /** `inputLayout`: NCHW when the file's input is NCHW and transposed to NHWC inside (imageInputLayout). */
  constructor(
    readonly sg: TfliteSubgraph,
    private readonly inputLayout: 'NHWC' | 'NCHW' = 'NHWC',
  ) {}

  /** Constants computed at conversion time (DEQUANTIZE of constant weights), by tensor index. */
  private readonly folded = new Map<number, TfliteTensor>();

  private t(i: number): TfliteTensor {
    const t = this.folded.get(i) ?? this.sg.tensors[i];
    if (!t) throw new EdgetuneError('EMODEL', `Corrupt TFLite file: a required tensor is absent (index ${i})`);
    return t;
  }

  /** DEQUANTIZE of a constant (float16 or quantized weights): the float32 constant, folded now. */
  private foldDequantize(src: TfliteTensor, out: number): void {
    const values = constData(src);
    const f = values instanceof Float32Array ? values : Float32Array.from(values);
    const q = src.quantization;
    if (q && !(values instanceof Float32Array)) {
      const axis = q.quantizedDimension;
      const inner = src.shape.slice(axis + 1).reduce((a, d) => a * d, 1);
      const channels = q.scale.length > 1 ? src.shape[axis]! : 1;
      for (let i = 0; i < f.length; i++) {
        const c = channels > 1 ? Math.floor(i / inner) % channels : 0;
        f[i] = (f[i]! - (q.zeroPoint[c] ?? q.zeroPoint[0] ?? 0)) * q.scale[c]!;
      }
    }
    const t = this.sg.tensors[out]!;
    this.folded.set(out, { index: t.index, name: t.name, shape: t.shape, type: TensorType.FLOAT32, buffer: 0, data: new Uint8Array(f.buffer) });
  }

  /** A readable, unique base name: TFLite joins fused names with ';', keep the first. */
  private baseName(t: TfliteTensor): string {
    return t.name.split(';')[0] || `tensor_${t.index}`;
  }

  run(graphName: string, description: string) {
    const inputs = this.sg.inputs.map((i) => this.graphInput(i));
    for (const op of this.sg.operators) this.convert(op);
    const outputs = this.sg.outputs.map((i) => {
      const v = this.value(i);
      return floatInput(v.name, v.shape);
    });
    return this.b.finish(inputs, outputs, { graphName, producer: 'edgetune-import-tflite', docString: description ? `Converted from TFLite (${description})` : 'Converted from TFLite' });
  }

  private graphInput(i: number) {
    const t = this.t(i);
    checkActivation(t);
    const shape = onnxShape(t.shape);
    const name = this.b.unique(this.baseName(t));
    this.inputName = name;
    // an NCHW input is the graph input as it is; inside, the converter's convention (every rank-4
    // TFLite tensor held NHWC→NCHW-permuted) is restored by a Transpose, which the file's own
    // TRANSPOSE to NHWC then cancels (onnxruntime removes the pair)
    const declared = this.inputLayout === 'NCHW' ? [...t.shape] : shape;
    this.inputShape = declared;
    let v = isQuantized(t) ? this.qdq(name, t, `${name}_quantized`, `${name}_dequantized`).dq : name;
    if (this.inputLayout === 'NCHW') v = this.b.op('Transpose', [v], `${name}_as_nhwc_tensor`, { perm: [...NHWC_TO_NCHW] });
    this.values.set(i, { name: v, shape });
    return floatInput(name, declared);
  }

  // ---- quantization helpers ----

  /** Scale and zero-point initializers of `t` (scalars, or vectors along `axis` when per-channel). */
  private qparams(t: TfliteTensor, base: string): { scale: string; zp: string; axis?: number } {
    const q = t.quantization!;
    const n = q.scale.length;
    const dims = n > 1 ? [n] : [];
    const scale = this.b.floats(`${base}_scale`, q.scale, dims);
    const zps = q.zeroPoint.length === n ? q.zeroPoint : new Array<number>(n).fill(q.zeroPoint[0] ?? 0);
    const zp = this.b.constant(`${base}_zero_point`, onnxQuantType(t), dims, zps);
    if (n <= 1) return { scale, zp };
    const rank = t.shape.length;
    // per-channel axis, moved to its NCHW place for rank-4 activations (weights pass their own axis)
    return { scale, zp, axis: rank === 4 ? nhwcAxisToNchw(q.quantizedDimension) : q.quantizedDimension };
  }

  /**
   * QuantizeLinear then DequantizeLinear of an activation with the tensor's parameters: the value the
   * TFLite kernels see. int8 activations are written as uint8 with zero point + 128 — the same
   * integers shifted, so the same real values — because onnxruntime fuses uint8-activation QDQ
   * groups (QLinearConv, QLinearAdd…) everywhere but not all int8 ones (measured on Teachable
   * Machine's int8 model: with int8 activations 15 of 52 convolutions and the 10 residual Adds
   * stayed float). Weights keep their int8 type (u8s8, onnxruntime's usual format).
   */
  private qdq(input: string, t: TfliteTensor, qBase: string, dqBase: string): { q: string; dq: string } {
    const q = t.quantization!;
    const shift = t.type === TensorType.INT8 ? 128 : 0;
    const scale = this.b.floats(`${qBase}_scale`, [q.scale[0]!], []);
    const zp = this.b.constant(`${qBase}_zero_point`, DataType.UINT8, [], [(q.zeroPoint[0] ?? 0) + shift]);
    const qName = this.b.op('QuantizeLinear', [input, scale, zp], qBase);
    return { q: qName, dq: this.b.op('DequantizeLinear', [qName, scale, zp], dqBase) };
  }

  private dequantize(input: string, t: TfliteTensor, base: string, axis?: number): string {
    const p = this.qparams(t, base);
    const a = axis ?? p.axis;
    return this.b.op('DequantizeLinear', [input, p.scale, p.zp], base, a === undefined || t.quantization!.scale.length <= 1 ? {} : { axis: a });
  }

  /**
   * Record the float value of output tensor `i`, computed by `produce(name)`. A quantized output is
   * then quantized with its parameters and dequantized again (the QDQ pair onnxruntime fuses).
   * `activation` is applied before quantization (and skipped when the quantized range already clamps).
   */
  private emit(i: number, produce: (out: string) => void, activation: ActivationKind = 'linear', axis = -1): Value {
    const t = this.t(i);
    checkActivation(t);
    const shape = onnxShape(t.shape);
    const base = this.baseName(t);
    const quant = isQuantized(t);
    let act = activation;
    if (quant && act !== 'linear') {
      const r = activationRange(act);
      const q = t.quantization!;
      const [qmin, qmax] = t.type === TensorType.UINT8 ? [0, 255] : [-128, 127];
      const lo = (qmin - q.zeroPoint[0]!) * q.scale[0]!;
      const hi = (qmax - q.zeroPoint[0]!) * q.scale[0]!;
      if (r && lo >= r[0] - 1e-6 && hi <= r[1] + 1e-6) act = 'linear';
    }
    const floatOut = quant ? this.b.unique(`${base}_float`) : this.b.unique(base);
    if (act === 'linear') produce(floatOut);
    else {
      const pre = this.b.unique(`${base}_preactivation`);
      produce(pre);
      emitActivation(this.b, act, pre, floatOut, axis);
    }
    let name = floatOut;
    if (quant) {
      name = this.qdq(floatOut, t, `${base}_quantized`, base).dq;
    }
    const v = { name, shape };
    this.values.set(i, v);
    return v;
  }

  /** The float value of tensor `i`: a converted activation, or a constant (dequantized, layout-converted). */
  private value(i: number, broadcastTo4 = false): Value {
    const have = this.values.get(i);
    if (have) return have;
    const t = this.t(i);
    if (!t.data) throw new EdgetuneError('EMODEL', `TFLite tensor ${i} "${t.name}" is read before any operator produces it`);
    let shape = [...t.shape];
    let data = constData(t);
    if (broadcastTo4 && shape.length < 4) shape = [...new Array<number>(4 - shape.length).fill(1), ...shape];
    let axis: number | undefined;
    if (shape.length === 4) {
      data = transposeData(data, shape, NHWC_TO_NCHW);
      if (t.quantization && t.quantization.scale.length > 1) axis = nhwcAxisToNchw(t.quantization.quantizedDimension + (4 - t.shape.length));
      shape = permute(shape, NHWC_TO_NCHW);
    }
    const base = this.baseName(t);
    let v: Value;
    if (isQuantized(t) || (t.type === TensorType.INT32 && t.quantization)) {
      const raw = this.b.constant(`${base}_quantized`, onnxQuantType(t), shape, data);
      v = { name: this.dequantize(raw, t, base, axis), shape };
    } else {
      const dt = data instanceof Float32Array ? DataType.FLOAT : data instanceof Int32Array ? DataType.INT32 : onnxQuantType(t);
      v = { name: this.b.constant(base, dt, shape, data), shape };
    }
    if (!broadcastTo4) this.values.set(i, v);
    return v;
  }

  /** A weight tensor transposed by `perm` (per-channel axis moved along), dequantized when quantized. */
  private weight(i: number, perm: readonly number[] | undefined): string {
    return this.weightOf(this.t(i), perm);
  }

  /**
   * The bias input of a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED, if any. An int32 bias of a
   * quantized op is dequantized at scale input_scale × weight_scale (per channel), the scale TFLite's
   * integer kernels use (and QLinearConv expects), whatever scale the file stores beside it.
   */
  private bias(op: TfliteOperator): string | undefined {
    const i = op.inputs[2];
    if (i === undefined || i < 0) return undefined;
    const t = this.t(i);
    const x = this.t(op.inputs[0]!);
    const w = this.t(op.inputs[1]!);
    if (t.type === TensorType.INT32 && t.data && isQuantized(x) && isQuantized(w)) {
      const ws = w.quantization!.scale;
      const n = ws.length > 1 ? t.shape[0]! : 1;
      const scale = Array.from({ length: n }, (_, c) => x.quantization!.scale[0]! * ws[ws.length > 1 ? c : 0]!);
      return this.weightOf({ ...t, quantization: { scale, zeroPoint: new Array<number>(n).fill(0), quantizedDimension: 0 } }, undefined);
    }
    return this.weightOf(t, undefined);
  }

  private weightOf(t: TfliteTensor, perm: readonly number[] | undefined): string {
    if (!t.data) throw new EdgetuneError('EMODEL', `TFLite weight tensor ${t.index} "${t.name}" has no constant data (weights computed at run time are not supported)`);
    let data = constData(t);
    let shape = [...t.shape];
    let axis = t.quantization?.quantizedDimension ?? 0;
    if (perm) {
      data = transposeData(data, shape, perm);
      shape = permute(shape, perm);
      axis = perm.indexOf(axis);
    }
    const base = this.baseName(t);
    if (t.type === TensorType.FLOAT16) this.halfWeights = true;
    if (isQuantized(t) || (t.type === TensorType.INT32 && t.quantization)) {
      if (t.type !== TensorType.INT32) this.quantizedWeights = true;
      const raw = this.b.constant(`${base}_quantized`, onnxQuantType(t), shape, data);
      return this.dequantize(raw, t, base, axis);
    }
    if (!(data instanceof Float32Array)) throw new EdgetuneError('EMODEL', `TFLite weight tensor "${t.name}" is ${tensorTypeName(t.type)} without quantization parameters`);
    return this.b.constant(base, DataType.FLOAT, shape, data);
  }

  /** Rank-4 NCHW value → NHWC order (so a flatten/reshape sees TFLite's element order); identity when H = W = 1. */
  private toNhwcOrder(v: Value): string {
    if (v.shape.length !== 4 || (v.shape[2] === 1 && v.shape[3] === 1)) return v.name;
    return this.b.op('Transpose', [v.name], `${v.name}_nhwc`, { perm: [...NCHW_TO_NHWC] });
  }

  /** Reshape `v` to TFLite shape `target` (NHWC for rank 4), writing `out` in ONNX layout. */
  private reshapeTo(v: Value, target: readonly number[], out: string): void {
    const src = this.toNhwcOrder(v);
    if (target.length === 4 && !(target[1] === 1 && target[2] === 1)) {
      const mid = this.b.op('Reshape', [src, this.b.int64s(`${out}_shape`, target)], `${out}_nhwc`);
      this.b.node('Transpose', [mid], [out], { perm: [...NHWC_TO_NCHW] });
    } else {
      this.b.node('Reshape', [src, this.b.int64s(`${out}_shape`, onnxShape(target))], [out]);
    }
  }

  private unsupported(op: TfliteOperator, why?: string): EdgetuneError {
    const name = op.builtinCode === Op.CUSTOM ? `CUSTOM(${op.customCode ?? '?'})` : builtinName(op.builtinCode);
    const out = op.outputs[0] !== undefined ? this.t(op.outputs[0]).name : '?';
    return new EdgetuneError('EMODEL', `Unsupported TFLite operator ${name} (operator ${op.index}, producing tensor "${out}")${why ? `: ${why}` : ''}`);
  }

  // ---- operators ----

  private convert(op: TfliteOperator): void {
    const o = op.options;
    const out = op.outputs[0]!;
    const fused = (id: number) => {
      const kind = FUSED[o?.int8(id) ?? 0];
      if (!kind) throw this.unsupported(op, `fused activation ${o?.int8(id)}`);
      return kind;
    };
    switch (op.builtinCode) {
      case Op.CONV_2D:
      case Op.DEPTHWISE_CONV_2D: {
        const dw = op.builtinCode === Op.DEPTHWISE_CONV_2D;
        const ids = dw ? DepthwiseConv2DOptions : Conv2DOptions;
        const x = this.value(op.inputs[0]!);
        const wt = this.t(op.inputs[1]!);
        const inShape = this.t(op.inputs[0]!).shape; // NHWC
        const [kh, kw] = [wt.shape[1]!, wt.shape[2]!];
        const [sh, sw] = [o?.int(ids.strideH, 1) ?? 1, o?.int(ids.strideW, 1) ?? 1];
        const [dh, dw_] = [o?.int(ids.dilationH, 1) ?? 1, o?.int(ids.dilationW, 1) ?? 1];
        const padding = (o?.int8(ids.padding) ?? Padding.SAME) === Padding.SAME ? 'same' : 'valid';
        // conv filter [O, KH, KW, I] → [O, I, KH, KW]; depthwise [1, KH, KW, C·M] → [C·M, 1, KH, KW]
        const w = this.weight(op.inputs[1]!, dw ? [3, 0, 1, 2] : [0, 3, 1, 2]);
        const inputs = [x.name, w];
        const bias = this.bias(op);
        if (bias) inputs.push(bias);
        const attrs = {
          kernel_shape: [kh, kw],
          strides: [sh, sw],
          dilations: [dh, dw_],
          pads: convPads(padding, inShape[1]!, inShape[2]!, kh, kw, sh, sw, dh, dw_),
          group: dw ? inShape[3]! : 1,
        };
        this.emit(out, (name) => this.b.node('Conv', inputs, [name], attrs), fused(ids.activation));
        return;
      }
      case Op.FULLY_CONNECTED: {
        const x = this.value(op.inputs[0]!);
        const wt = this.t(op.inputs[1]!);
        if ((o?.int8(FullyConnectedOptions.weightsFormat) ?? 0) !== 0) throw this.unsupported(op, 'shuffled weights format');
        const k = wt.shape[1]!;
        let a = x.name;
        if (x.shape.length !== 2) {
          a = this.b.op('Reshape', [this.toNhwcOrder(x), this.b.int64s(`${x.name}_flat_shape`, [-1, k])], `${x.name}_flat`);
        }
        const inputs = [a, this.weight(op.inputs[1]!, undefined)];
        const bias = this.bias(op);
        if (bias) inputs.push(bias);
        const target = this.t(out).shape;
        this.emit(
          out,
          (name) => {
            if (target.length === 2) this.b.node('Gemm', inputs, [name], { transB: 1 });
            else {
              const g = this.b.op('Gemm', inputs, `${name}_2d`, { transB: 1 });
              this.reshapeTo({ name: g, shape: [-1, wt.shape[0]!] }, target, name);
            }
          },
          fused(FullyConnectedOptions.activation),
        );
        return;
      }
      case Op.AVERAGE_POOL_2D:
      case Op.MAX_POOL_2D: {
        const x = this.value(op.inputs[0]!);
        const inShape = this.t(op.inputs[0]!).shape;
        const [kh, kw] = [o?.int(Pool2DOptions.filterH) ?? 1, o?.int(Pool2DOptions.filterW) ?? 1];
        const [sh, sw] = [o?.int(Pool2DOptions.strideH, 1) ?? 1, o?.int(Pool2DOptions.strideW, 1) ?? 1];
        const padding = (o?.int8(Pool2DOptions.padding) ?? Padding.SAME) === Padding.SAME ? 'same' : 'valid';
        const kind = op.builtinCode === Op.AVERAGE_POOL_2D ? 'AveragePool' : 'MaxPool';
        const attrs = { kernel_shape: [kh, kw], strides: [sh, sw], pads: convPads(padding, inShape[1]!, inShape[2]!, kh, kw, sh, sw) };
        this.emit(out, (name) => this.b.node(kind, [x.name], [name], attrs), fused(Pool2DOptions.activation));
        return;
      }
      case Op.MEAN: {
        const x = this.value(op.inputs[0]!);
        const axesT = this.t(op.inputs[1]!);
        if (!axesT.data) throw this.unsupported(op, 'axes computed at run time');
        const rank = this.t(op.inputs[0]!).shape.length;
        const axes = Array.from(constData(axesT)).map((a) => (a < 0 ? a + rank : a));
        const keep = o?.bool(ReducerOptions.keepDims) ?? false;
        const spatial = rank === 4 && axes.length === 2 && axes.includes(1) && axes.includes(2);
        this.emit(out, (name) => {
          if (spatial) {
            // global average pooling: NCHW [N,C,1,1], flattened to [N,C] unless keep_dims
            if (keep) this.b.node('GlobalAveragePool', [x.name], [name]);
            else {
              const g = this.b.op('GlobalAveragePool', [x.name], `${name}_pooled`);
              this.b.node('Reshape', [g, this.b.int64s(`${name}_shape`, onnxShape(this.t(out).shape))], [name]);
            }
          } else {
            const onnxAxes = rank === 4 ? axes.map((a) => nhwcAxisToNchw(a)) : axes;
            if (rank === 4 && !keep) {
              const r = this.b.op('ReduceMean', [this.toNhwcOrder(x)], `${name}_mean`, { axes, keepdims: 0 });
              this.b.node('Identity', [r], [name]);
            } else this.b.node('ReduceMean', [x.name], [name], { axes: onnxAxes, keepdims: keep ? 1 : 0 });
          }
        });
        return;
      }
      case Op.ADD:
      case Op.SUB:
      case Op.MUL: {
        const r0 = this.t(op.inputs[0]!).shape.length;
        const r1 = this.t(op.inputs[1]!).shape.length;
        const a = this.value(op.inputs[0]!, r1 === 4 && r0 < 4);
        const c = this.value(op.inputs[1]!, r0 === 4 && r1 < 4);
        if ((a.shape.length === 4) !== (c.shape.length === 4) && a.shape.length > 0 && c.shape.length > 0) {
          throw this.unsupported(op, 'broadcasting a rank-4 activation against a lower-rank activation');
        }
        const kind = op.builtinCode === Op.ADD ? 'Add' : op.builtinCode === Op.SUB ? 'Sub' : 'Mul';
        this.emit(out, (name) => this.b.node(kind, [a.name, c.name], [name]), fused(ArithmeticOptions.activation));
        return;
      }
      case Op.RESHAPE:
      case Op.SQUEEZE: {
        const x = this.value(op.inputs[0]!);
        this.emit(out, (name) => this.reshapeTo(x, this.t(out).shape, name));
        return;
      }
      case Op.PAD: {
        const x = this.value(op.inputs[0]!);
        const pt = this.t(op.inputs[1]!);
        if (!pt.data) throw this.unsupported(op, 'paddings computed at run time');
        const p = Array.from(constData(pt));
        const rank = p.length / 2;
        let begin = Array.from({ length: rank }, (_, d) => p[2 * d]!);
        let end = Array.from({ length: rank }, (_, d) => p[2 * d + 1]!);
        if (rank === 4) [begin, end] = [permute(begin, NHWC_TO_NCHW), permute(end, NHWC_TO_NCHW)];
        const pads = this.b.int64s(`${x.name}_pads`, [...begin, ...end]);
        this.emit(out, (name) => this.b.node('Pad', [x.name, pads], [name]));
        return;
      }
      case Op.CONCATENATION: {
        const xs = op.inputs.map((i) => this.value(i));
        const rank = this.t(out).shape.length;
        let axis = o?.int(ConcatenationOptions.axis) ?? 0;
        if (axis < 0) axis += rank;
        const onnxAxis = rank === 4 ? nhwcAxisToNchw(axis) : axis;
        this.emit(out, (name) => this.b.node('Concat', xs.map((v) => v.name), [name], { axis: onnxAxis }), fused(ConcatenationOptions.activation));
        return;
      }
      case Op.SOFTMAX: {
        const x = this.value(op.inputs[0]!);
        const beta = o?.float(SoftmaxOptions.beta, 1) ?? 1;
        const axis = x.shape.length === 4 ? 1 : -1;
        this.emit(out, (name) => {
          const src = beta === 1 ? x.name : this.b.op('Mul', [x.name, this.b.floats(`${name}_beta`, [beta], [])], `${name}_scaled`);
          this.b.node('Softmax', [src], [name], { axis });
        });
        return;
      }
      case Op.LOGISTIC:
      case Op.RELU:
      case Op.RELU6:
      case Op.HARD_SWISH: {
        const x = this.value(op.inputs[0]!);
        const kind: ActivationKind = op.builtinCode === Op.LOGISTIC ? 'sigmoid' : op.builtinCode === Op.RELU ? 'relu' : op.builtinCode === Op.RELU6 ? 'relu6' : 'hard_swish';
        this.emit(out, (name) => emitActivation(this.b, kind, x.name, name));
        return;
      }
      case Op.TRANSPOSE: {
        const x = this.value(op.inputs[0]!);
        const perm = transposePerm(this.sg, op);
        if (!perm) throw this.unsupported(op, 'permutation computed at run time');
        const rank = perm.length;
        // TFLite permutes its tensors; here rank-4 values are held NCHW (onnx = tflite permuted by
        // NHWC_TO_NCHW), so the ONNX permutation is NCHW→NHWC, then perm, then NHWC→NCHW
        const onnxPerm = rank === 4 ? NHWC_TO_NCHW.map((a) => NCHW_TO_NHWC[perm[a]!]!) : perm;
        this.emit(out, (name) => this.b.node('Transpose', [x.name], [name], { perm: onnxPerm }));
        return;
      }
      case Op.SLICE:
      case Op.STRIDED_SLICE: {
        // → ONNX Slice over every axis (rank-4 axes moved to their NCHW places). SLICE: begin, size
        // (−1: to the end); STRIDED_SLICE: begin, end, strides with begin/end masks (a set bit: from the
        // start / to the end of that axis) and `offset` (end = begin + end). Ellipsis, new-axis and
        // shrink-axis masks are refused (image classifiers crop with plain slices: Keras Cropping2D).
        const x = this.value(op.inputs[0]!);
        const rank = this.t(op.inputs[0]!).shape.length;
        const consts = op.inputs.slice(1).map((i) => this.t(i));
        if (consts.some((t) => !t.data)) throw this.unsupported(op, 'begin/end/size computed at run time');
        const [begin, second, third] = consts.map((t) => Array.from(constData(t)));
        const BIG = 2 ** 31 - 1;
        let starts = begin!.slice(0, rank);
        let ends: number[];
        let steps = new Array<number>(rank).fill(1);
        if (op.builtinCode === Op.SLICE) {
          ends = starts.map((b, d) => (second![d]! < 0 ? BIG : b + second![d]!));
        } else {
          const bits = (id: number) => o?.int(id) ?? 0;
          for (const [what, id] of [['ellipsis', StridedSliceOptions.ellipsisMask], ['new axis', StridedSliceOptions.newAxisMask], ['shrink axis', StridedSliceOptions.shrinkAxisMask]] as const) {
            if (bits(id) !== 0) throw this.unsupported(op, `${what} mask ${bits(id)}`);
          }
          steps = third!.slice(0, rank);
          const offset = o?.bool(StridedSliceOptions.offset) ?? false;
          ends = second!.slice(0, rank).map((e, d) => (offset ? starts[d]! + e : e));
          starts = starts.map((b, d) => ((bits(StridedSliceOptions.beginMask) >> d) & 1 ? (steps[d]! > 0 ? 0 : BIG) : b));
          ends = ends.map((e, d) => ((bits(StridedSliceOptions.endMask) >> d) & 1 ? (steps[d]! > 0 ? BIG : -BIG) : e));
        }
        const axes = Array.from({ length: rank }, (_, d) => (rank === 4 ? nhwcAxisToNchw(d) : d));
        const inputs = [x.name, this.b.int64s(`${x.name}_starts`, starts), this.b.int64s(`${x.name}_ends`, ends), this.b.int64s(`${x.name}_axes`, axes), this.b.int64s(`${x.name}_steps`, steps)];
        this.emit(out, (name) => this.b.node('Slice', inputs, [name]));
        return;
      }
      case Op.L2_NORMALIZATION: {
        // x / max(sqrt(Σx²), ε) along the last (channel) axis, ε = 1e-6 as TFLite's reference kernel
        const x = this.value(op.inputs[0]!);
        const axis = x.shape.length === 4 ? 1 : -1;
        this.emit(out, (name) => {
          const sq = this.b.op('ReduceSumSquare', [x.name], `${name}_sumsq`, { axes: [axis], keepdims: 1 });
          const norm = this.b.op('Sqrt', [sq], `${name}_norm`);
          const clamped = this.b.op('Max', [norm, this.b.floats(`${name}_epsilon`, [1e-6], [])], `${name}_norm_clamped`);
          this.b.node('Div', [x.name, clamped], [name]);
        }, fused(0));
        return;
      }
      case Op.QUANTIZE:
      case Op.DEQUANTIZE: {
        // the float value passes through; emit() adds the output's own Q/DQ when it is quantized
        const src = this.t(op.inputs[0]!);
        if (op.builtinCode === Op.DEQUANTIZE && src.data) {
          if (src.type === TensorType.FLOAT16) this.halfWeights = true;
          else this.quantizedWeights = true;
          this.foldDequantize(src, out);
          return;
        }
        const x = this.value(op.inputs[0]!);
        this.emit(out, (name) => this.b.node('Identity', [x.name], [name]));
        return;
      }
      default:
        throw this.unsupported(op, op.builtinCode === Op.CUSTOM ? COMPILED_FOR[op.customCode ?? ''] : undefined);
    }
  }

  /** What the card needs from the conversion (but what the finished graph says: `quantizedActivations`, read by importTflite). */
  summary(): Omit<ConversionSummary, 'quantizedActivations'> {
    return { inputName: this.inputName, inputShape: this.inputShape, inputLayout: this.inputLayout, values: this.values, quantizedWeights: this.quantizedWeights, halfWeights: this.halfWeights };
  }
}
