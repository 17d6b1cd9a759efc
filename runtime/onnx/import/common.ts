// Shared pieces of the TFLite and tfjs importers: a small ONNX graph builder (unique names,
// initializers, nodes), NHWC→NCHW layout helpers (data transposition, axis mapping), TensorFlow SAME
// padding made explicit, activations as ONNX nodes, label-file parsing, the preprocess spec of an
// NCHW float input, and the card type the importers return (a model-card layer plus what is
// importer-specific). Browser-safe (no Node APIs, no onnxruntime).

import { EdgetuneError } from '../../core/errors.js';
import { DataType, makeNode, makeTensor, makeTensorType, makeValueInfo, setFloatAttribute, setIntAttribute, setIntsAttribute, type TensorInput } from '../graph.js';
import type { CardLayer, OutputKind } from '../../core/model-card.js';
import type { PreprocessSpec } from '../../core/preprocess-spec.js';
import type { NodeProto, OnnxModel, TensorProto, ValueInfoProto } from '../model.js';

/** ONNX opset the importers write: 13 is the first with per-channel (axis) Quantize/DequantizeLinear. */
export const IMPORT_OPSET = 13;

/**
 * The pixel normalisation an importer decides: these `PreprocessSpec` fields (defined once in
 * core/preprocess-spec.ts), without the geometry, layout and dtype the converted graph fixes
 * (`importedSpec` adds them).
 */
export type PixelNormalisation = Pick<PreprocessSpec, 'colorOrder' | 'range' | 'mean' | 'std' | 'resize' | 'crop'>;

/**
 * The model-card layer of a converted model (core/model-card.ts `CardLayer`), complete: the input and
 * output names, the full preprocess spec (float32 NCHW `[1, channels, height, width]`), the label
 * offset and the output kind are always set; labels when the caller or the file gave them; embedding
 * when the graph has a pooled feature tensor.
 */
export type ImportedCardLayer = CardLayer & { inputName: string; outputName: string; preprocess: PreprocessSpec; labelOffset: number; outputKind: OutputKind };

/**
 * What an importer says about a converted model: the card fields once, as `layer` (what becomes the
 * `edgetune.model` metadata), and beside it only what is about the source file and the conversion.
 */
export interface ImportedModelCard {
  source: 'tflite' | 'tfjs';
  /**
   * The card fields. `outputKind`: 'probabilities' when the graph ends in softmax/logistic, else
   * 'logits'; an embedding extractor (`output.extractor`) has no class scores and gets 'auto' (its
   * rows are left alone unless asked to classify). `embedding`: the pooled features before the final
   * dense layer(s), or for an extractor the output itself.
   */
  layer: ImportedCardLayer;
  /** The source file's own input (NHWC, or NCHW for a TFLite file that transposes its input to NHWC), with its quantization when it has one. */
  sourceInput: { name: string; shape: number[]; layout: 'NHWC' | 'NCHW'; dtype: string; quantization?: { scale: number; zeroPoint: number } };
  /** Where `layer.preprocess`'s normalisation comes from: the input's quantization, Teachable Machine's convention, or a default guess. */
  preprocessSource: 'input-quantization' | 'teachable-machine' | 'assumed';
  /** The converted output (`layer.outputName`): its dims, and whether it is a feature extractor's embedding rather than class scores. */
  output: { dims: number[]; extractor: boolean };
  /** The weights' type: int8 when the converted graph is int8 by the one rule (runtime/onnx/quantized.ts). */
  precision: 'fp32' | 'fp16' | 'int8';
  /**
   * What the converted graph computes in: 'int8' when it quantizes activations (a full-integer TFLite
   * model: QDQ pairs onnxruntime runs as QLinearConv…), 'float' otherwise, int8 precision included (a
   * TFLite dynamic-range "hybrid" model: int8 weights dequantized at run time, float activations).
   */
  activations: 'float' | 'int8';
  /** Things worth knowing (assumptions made, quirks of the file). */
  notes: string[];
}

/** An importer's result: the ONNX model (decoded form; `encodeModel` gives bytes) and its card. */
export interface ImportResult {
  model: OnnxModel;
  card: ImportedModelCard;
}

/** A value in the ONNX graph being built: its name and ONNX shape (rank-4 values are NCHW). */
export interface Value {
  name: string;
  shape: number[];
}

/** Collects nodes and initializers with unique names; `finish()` wraps them in an OnnxModel. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();

  /** `base`, or `base_1`, `base_2`… if taken. */
  unique(base: string): string {
    let name = base || 'value';
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /** A new initializer; returns its (unique) name. */
  constant(base: string, dataType: number, dims: readonly number[], values: TensorInput): string {
    const name = this.unique(base);
    this.initializers.push(makeTensor(name, dataType, dims, values));
    return name;
  }

  floats(base: string, values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    return this.constant(base, DataType.FLOAT, dims, values instanceof Float32Array ? values : Float32Array.from(values));
  }

  int64s(base: string, values: readonly number[]): string {
    return this.constant(base, DataType.INT64, [values.length], values.map((v) => BigInt(v)));
  }

  /** Add a node; attributes are ints (number[]), int (number, integer), or float (`{ f: x }`). */
  node(op: string, inputs: readonly string[], outputs: readonly string[], attrs: Record<string, number | number[] | { f: number }> = {}): NodeProto {
    const n = makeNode(op, inputs, outputs, { name: this.unique(`${op}_${outputs[0] ?? ''}`) });
    for (const [k, v] of Object.entries(attrs)) {
      if (Array.isArray(v)) setIntsAttribute(n, k, v);
      else if (typeof v === 'number') setIntAttribute(n, k, v);
      else setFloatAttribute(n, k, v.f);
    }
    this.nodes.push(n);
    return n;
  }

  /** One-output node with a fresh name derived from `base`; returns the output name. */
  op(op: string, inputs: readonly string[], base: string, attrs?: Record<string, number | number[] | { f: number }>): string {
    const out = this.unique(base);
    this.node(op, inputs, [out], attrs);
    return out;
  }

  finish(inputs: ValueInfoProto[], outputs: ValueInfoProto[], options: { graphName: string; producer: string; docString?: string }): OnnxModel {
    const model: OnnxModel = {
      irVersion: 8,
      producerName: options.producer,
      graph: {
        node: this.nodes,
        name: options.graphName,
        initializer: this.initializers,
        input: inputs,
        output: outputs,
        valueInfo: [],
        quantizationAnnotation: [],
        sparseInitializer: [],
        metadataProps: [],
      },
      opsetImport: [{ domain: '', version: IMPORT_OPSET }],
      metadataProps: [],
      trainingInfo: [],
      functions: [],
      configuration: [],
    };
    if (options.docString) model.docString = options.docString;
    return model;
  }
}

/** A float32 graph input/output declaration of a static shape. */
export function floatInput(name: string, shape: readonly number[]): ValueInfoProto {
  return makeValueInfo(name, makeTensorType(DataType.FLOAT, shape));
}

// ---------------------------------------------------------------------------------------------------
// Layout

/** NHWC → NCHW permutation (ONNX dim i is NHWC dim NHWC_TO_NCHW[i]). */
export const NHWC_TO_NCHW = [0, 3, 1, 2] as const;
/** NCHW → NHWC permutation. */
export const NCHW_TO_NHWC = [0, 2, 3, 1] as const;

/** Shape permuted: out[i] = shape[perm[i]]. */
export function permute<T>(shape: readonly T[], perm: readonly number[]): T[] {
  return perm.map((p) => shape[p]!);
}

/** A rank-4 NHWC axis (negative counts from the end) as the NCHW axis. */
export function nhwcAxisToNchw(axis: number): number {
  const a = axis < 0 ? axis + 4 : axis;
  return NHWC_TO_NCHW.indexOf(a as 0 | 1 | 2 | 3);
}

type Elements = Float32Array | Int8Array | Uint8Array | Int32Array;

/** Row-major data of `shape` transposed so that out dim i is input dim perm[i]. */
export function transposeData<T extends Elements>(data: T, shape: readonly number[], perm: readonly number[]): T {
  const rank = shape.length;
  const outShape = permute(shape, perm);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1]! * shape[i + 1]!;
  const strides = perm.map((p) => inStrides[p]!); // input stride of each output dim
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < data.length; o++) {
    out[o] = data[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      src += strides[d]!;
      if (idx[d]! < outShape[d]!) break;
      src -= strides[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * TensorFlow SAME padding for one spatial dim: output ceil(in/stride), the total padding split with
 * the extra pixel at the end (TF's convention; ONNX SAME_UPPER does the same but explicit pads are
 * what every runtime agrees on). Returns [begin, end].
 */
export function samePadding(inSize: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - inSize, 0);
  const begin = Math.floor(total / 2);
  return [begin, total - begin];
}

/** ONNX `pads` [top, left, bottom, right] for a 2-D window over an NHWC input of height h, width w. */
export function convPads(padding: 'same' | 'valid', h: number, w: number, kh: number, kw: number, sh: number, sw: number, dh = 1, dw = 1): number[] {
  if (padding === 'valid') return [0, 0, 0, 0];
  const [t, b] = samePadding(h, kh, sh, dh);
  const [l, r] = samePadding(w, kw, sw, dw);
  return [t, l, b, r];
}

/** Output size of a window op along one dim, given explicit pads. */
export function windowOut(inSize: number, kernel: number, stride: number, padBegin: number, padEnd: number, dilation = 1): number {
  return Math.floor((inSize + padBegin + padEnd - (kernel - 1) * dilation - 1) / stride) + 1;
}

// ---------------------------------------------------------------------------------------------------
// Activations

export type ActivationKind = 'linear' | 'relu' | 'relu6' | 'relu_n1_to_1' | 'sigmoid' | 'tanh' | 'softmax' | 'hard_swish' | 'hard_sigmoid' | 'elu' | 'selu' | 'softplus' | 'swish';

/** The [min, max] an activation clamps to (undefined when it does not simply clamp). */
export function activationRange(kind: ActivationKind): [number, number] | undefined {
  if (kind === 'relu') return [0, Infinity];
  if (kind === 'relu6') return [0, 6];
  if (kind === 'relu_n1_to_1') return [-1, 1];
  return undefined;
}

/**
 * Apply an activation to `input`, writing `out` (a name the caller reserved). `softmax` works on
 * `axis` (default the last). Throws EdgetuneError('EMODEL') for kinds ONNX has no node for here.
 */
export function emitActivation(b: GraphBuilder, kind: ActivationKind, input: string, out: string, axis = -1): void {
  switch (kind) {
    case 'linear':
      b.node('Identity', [input], [out]);
      return;
    case 'relu':
      b.node('Relu', [input], [out]);
      return;
    case 'relu6':
    case 'relu_n1_to_1': {
      const [lo, hi] = activationRange(kind)!;
      b.node('Clip', [input, b.floats(`${out}_min`, [lo], []), b.floats(`${out}_max`, [hi], [])], [out]);
      return;
    }
    case 'sigmoid':
      b.node('Sigmoid', [input], [out]);
      return;
    case 'tanh':
      b.node('Tanh', [input], [out]);
      return;
    case 'softmax':
      b.node('Softmax', [input], [out], { axis });
      return;
    case 'elu':
      b.node('Elu', [input], [out]);
      return;
    case 'selu':
      b.node('Selu', [input], [out]);
      return;
    case 'softplus':
      b.node('Softplus', [input], [out]);
      return;
    case 'hard_sigmoid':
      // Keras hard_sigmoid: clip(0.2x + 0.5, 0, 1)
      b.node('HardSigmoid', [input], [out], { alpha: { f: 0.2 }, beta: { f: 0.5 } });
      return;
    case 'hard_swish': {
      // x · relu6(x + 3) / 6 = x · HardSigmoid(α = 1/6, β = 1/2); HardSwish itself needs opset 14
      const hs = b.op('HardSigmoid', [input], `${out}_hardsigmoid`, { alpha: { f: 1 / 6 }, beta: { f: 0.5 } });
      b.node('Mul', [input, hs], [out]);
      return;
    }
    case 'swish': {
      const s = b.op('Sigmoid', [input], `${out}_sigmoid`);
      b.node('Mul', [input, s], [out]);
      return;
    }
    default:
      throw new EdgetuneError('EMODEL', `Unsupported activation "${String(kind)}"`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Preprocessing (labels: runtime/core/labels.ts)

/** Preprocessing of a uint8/int8-quantized image input: real = (q − zeroPoint) · scale, i.e. (x − zp)/(1/scale). */
export function preprocessFromQuantization(scale: number, zeroPoint: number, signed: boolean): PixelNormalisation {
  // an int8 input gets pixel − 128 as its integer value
  const zp = signed ? zeroPoint + 128 : zeroPoint;
  // 6 significant digits: a float32 scale of 1/255 gives 254.99998…, which means 255
  const std = Number((1 / scale).toPrecision(6));
  return { colorOrder: 'RGB', range: [0, 255], mean: [zp, zp, zp], std: [std, std, std], resize: 'cover', crop: 1 };
}

/** Teachable Machine's (and Keras MobileNet's) x/127.5 − 1 after a centre square crop. */
export const TEACHABLE_MACHINE_PREPROCESS: PixelNormalisation = {
  colorOrder: 'RGB',
  range: [0, 255],
  mean: [127.5, 127.5, 127.5],
  std: [127.5, 127.5, 127.5],
  resize: 'cover',
  crop: 1,
};

/**
 * The full preprocess spec of a converted model's float32 NCHW input `[1, C, H, W]` (`inputShape`,
 * pixels) normalised by `norm`: width W, height H, channels 1 when C is 1 (else 3), layout NCHW,
 * dtype float32. Arrays are copied (the spec does not share them with `norm`); a grayscale input
 * keeps one mean and one std (the first channel's: `norm`'s are the same for every channel).
 */
export function importedSpec(inputShape: readonly number[], norm: PixelNormalisation): PreprocessSpec {
  const [, c, h, w] = inputShape;
  const channels = c === 1 ? 1 : 3;
  return {
    width: w!,
    height: h!,
    channels,
    layout: 'NCHW',
    colorOrder: norm.colorOrder,
    range: [...norm.range],
    mean: norm.mean.slice(0, channels),
    std: norm.std.slice(0, channels),
    resize: norm.resize,
    crop: norm.crop,
    dtype: 'float32',
  };
}
