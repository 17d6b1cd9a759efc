// The card of a converted TFLite file, its model-card layer and what is TFLite-specific: input and
// preprocessing (from the input's quantization when it has one), output kind (probabilities when the
// graph ends in softmax/logistic; 'auto' for a feature extractor), the embedding tensor (pooled
// features before the final dense layers, or the output of a feature extractor), and labels: the
// caller's, or a labels file packed into the .tflite as a TFLite-metadata "associated file" (a zip
// appended to the flatbuffer; stored entries are read here). Browser-safe.

import {
  TEACHABLE_MACHINE_PREPROCESS,
  importedSpec,
  type PixelNormalisation,
  preprocessFromQuantization,
  type ImportedModelCard,
  type Value,
} from './common.js';
import type { OutputKind } from '../../core/model-card.js';
import { decideLabels, parseLabels } from '../../core/labels.js';
import { EdgetuneError } from '../../core/errors.js';
import { utf8Text } from '../../core/text.js';
import { BuiltinOperator as Op, TensorType, tensorTypeName, type TfliteOperator, type TfliteSubgraph, type TfliteTensor } from './tflite-schema.js';

/** What the conversion learnt that the card reports. */
export interface ConversionSummary {
  inputName: string;
  /** The ONNX graph input's shape, NCHW `[1, C, H, W]`. */
  inputShape: number[];
  /** The source file's input layout: NHWC, or NCHW transposed to NHWC inside the file. */
  inputLayout: 'NHWC' | 'NCHW';
  /** ONNX value (float, NCHW for rank 4) of each TFLite tensor index. */
  values: ReadonlyMap<number, Value>;
  quantizedWeights: boolean;
  halfWeights: boolean;
  /** Whether the converted graph quantizes activations (`quantizesActivations`, runtime/onnx/quantized.ts). */
  quantizedActivations: boolean;
}

/**
 * Operators looked through when finding producers: those that keep the values (reshape, re-quantize)
 * and L2_NORMALIZATION (Coral's l2norm models normalise the pooled features before the classifier, for
 * weight imprinting: the embedding is still the pooling's output).
 */
const PASS_THROUGH = new Set<number>([Op.RESHAPE, Op.SQUEEZE, Op.QUANTIZE, Op.DEQUANTIZE, Op.L2_NORMALIZATION]);

function isQuantized(t: TfliteTensor): boolean {
  return t.quantization !== undefined && (t.type === TensorType.UINT8 || t.type === TensorType.INT8);
}

/**
 * Files appended to a .tflite as a zip (how TFLite metadata packs labels): name → bytes, for entries
 * stored uncompressed (the metadata writer stores them so). Empty when there is no zip; never throws.
 */
export function readAssociatedFiles(bytes: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (p: number) => (p >= 0 && p + 4 <= bytes.length ? dv.getUint32(p, true) : -1);
  const u16 = (p: number) => (p >= 0 && p + 2 <= bytes.length ? dv.getUint16(p, true) : -1);
  // end of central directory: 22 bytes + a comment of up to 65535
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 65535); p--) {
    if (u32(p) === 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) return files;
  const entries = u16(eocd + 10);
  const cdSize = u32(eocd + 12);
  const cdOffset = u32(eocd + 16);
  // offsets are relative to the zip's start, which may follow the flatbuffer
  const shift = eocd - cdSize - cdOffset;
  let p = cdOffset + shift;
  for (let e = 0; e < entries; e++) {
    if (u32(p) !== 0x02014b50) break;
    const method = u16(p + 10);
    const size = u32(p + 20);
    const nameLen = u16(p + 28);
    const next = p + 46 + nameLen + u16(p + 30) + u16(p + 32);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    const local = u32(p + 42) + shift;
    if (method === 0 && u32(local) === 0x04034b50) {
      const start = local + 30 + u16(local + 26) + u16(local + 28);
      if (start + size <= bytes.length) files.set(name, bytes.subarray(start, start + size));
    }
    p = next;
  }
  return files;
}

/** The pixel scalings a float input's calibrated range is compared with: pixel x (0…255) fed as x/255, x/127.5 − 1, or x. */
const FLOAT_INPUT_RULES: { rule: string; lo: number; hi: number; mean: number; std: number }[] = [
  { rule: 'x/255 (pixels in [0, 1])', lo: 0, hi: 1, mean: 0, std: 255 },
  { rule: 'x/127.5 − 1 (pixels in [−1, 1])', lo: -1, hi: 1, mean: 127.5, std: 127.5 },
  { rule: 'x (pixels in [0, 255])', lo: 0, hi: 255, mean: 0, std: 1 },
];

/**
 * A float input that every reader quantizes at once (a full-integer model converted with float I/O,
 * TFLiteConverter's default) carries its calibrated range in the QUANTIZE output's parameters:
 * [(qmin − zp)·s, (qmax − zp)·s]. When that range is one of FLOAT_INPUT_RULES' within 5% of its width
 * (calibration on real images spans nearly the whole range), the preprocessing is read from it;
 * undefined otherwise (the caller assumes x/127.5 − 1).
 */
function floatInputRange(sg: TfliteSubgraph): { lo: number; hi: number; rule: string; norm: PixelNormalisation } | undefined {
  const i = sg.inputs[0]!;
  if (sg.tensors[i]?.type !== TensorType.FLOAT32) return undefined;
  const readers = sg.operators.filter((op) => op.inputs.includes(i));
  if (readers.length === 0 || !readers.every((op) => op.builtinCode === Op.QUANTIZE)) return undefined;
  const q = sg.tensors[readers[0]!.outputs[0]!];
  if (!q || !isQuantized(q) || q.quantization!.scale.length !== 1) return undefined;
  const [qmin, qmax] = q.type === TensorType.UINT8 ? [0, 255] : [-128, 127];
  const s = q.quantization!.scale[0]!;
  const zp = q.quantization!.zeroPoint[0] ?? 0;
  const lo = (qmin - zp) * s;
  const hi = (qmax - zp) * s;
  const match = FLOAT_INPUT_RULES.find((r) => Math.abs(lo - r.lo) + Math.abs(hi - r.hi) <= 0.05 * (r.hi - r.lo));
  if (!match) return undefined;
  const norm: PixelNormalisation = { colorOrder: 'RGB', range: [0, 255], mean: [match.mean, match.mean, match.mean], std: [match.std, match.std, match.std], resize: 'cover', crop: 1 };
  return { lo, hi, rule: match.rule, norm };
}

/**
 * The card of a converted subgraph. `labels`: the caller's labels file text or names (they win);
 * otherwise a .txt associated file with as many lines as the output has classes (or one fewer).
 */
export function tfliteCard(
  sg: TfliteSubgraph,
  conv: ConversionSummary,
  options: { labels?: string | readonly string[]; associatedFiles?: ReadonlyMap<string, Uint8Array> },
): ImportedModelCard {
  const producers = new Map<number, TfliteOperator>();
  for (const op of sg.operators) for (const o of op.outputs) producers.set(o, op);
  const producerThrough = (i: number) => {
    let op = producers.get(i);
    while (op && PASS_THROUGH.has(op.builtinCode)) op = producers.get(op.inputs[0]!);
    return op;
  };
  const inT = sg.tensors[sg.inputs[0]!]!;
  const outI = sg.outputs[0]!;
  const outT = sg.tensors[outI]!;
  const out = conv.values.get(outI)!;
  const notes: string[] = [];
  const last = producerThrough(outI);
  const classes = outT.shape[outT.shape.length - 1] ?? 0;
  const isPool = (op: TfliteOperator | undefined) => op !== undefined && (op.builtinCode === Op.MEAN || op.builtinCode === Op.AVERAGE_POOL_2D);
  const scores: OutputKind = last && (last.builtinCode === Op.SOFTMAX || last.builtinCode === Op.LOGISTIC) ? 'probabilities' : 'logits';
  let extractor = false;
  // embedding: from the last dense layer (FULLY_CONNECTED, or a 1×1 CONV_2D on a 1×1 map as in
  // TF-slim MobileNets) back through dense layers and reshapes to the pooling
  let embedding: number | undefined;
  if (isPool(last)) {
    embedding = outI;
    extractor = true;
  } else {
    const dense = (op: TfliteOperator) =>
      op.builtinCode === Op.FULLY_CONNECTED || (op.builtinCode === Op.CONV_2D && sg.tensors[op.inputs[0]!]!.shape[1] === 1 && sg.tensors[op.inputs[0]!]!.shape[2] === 1);
    const denseOps = sg.operators.filter(dense);
    let op: TfliteOperator | undefined = denseOps[denseOps.length - 1];
    while (op) {
      const p = producerThrough(op.inputs[0]!);
      if (isPool(p)) {
        embedding = p!.outputs[0]!;
        break;
      }
      op = p && dense(p) ? p : undefined;
    }
  }
  const inputShape = conv.inputShape;
  const quantization = isQuantized(inT) ? { scale: inT.quantization!.scale[0]!, zeroPoint: inT.quantization!.zeroPoint[0] ?? 0 } : undefined;
  const calibrated = quantization ? undefined : floatInputRange(sg);
  if (calibrated) notes.push(`float input quantized at once: its calibrated range [${calibrated.lo.toFixed(3)}, ${calibrated.hi.toFixed(3)}] is that of ${calibrated.rule}`);
  else if (!quantization) notes.push('float input: preprocessing assumed to be x/127.5 − 1 (Teachable Machine / Keras MobileNet); the file does not say');
  const card: ImportedModelCard = {
    source: 'tflite',
    layer: {
      inputName: conv.inputName,
      outputName: out.name,
      preprocess: importedSpec(
        inputShape,
        quantization ? preprocessFromQuantization(quantization.scale, quantization.zeroPoint, inT.type === TensorType.INT8) : (calibrated?.norm ?? TEACHABLE_MACHINE_PREPROCESS),
      ),
      labelOffset: 0,
      // a feature extractor has no class scores: 'auto' leaves its rows alone unless asked to classify
      outputKind: extractor ? 'auto' : scores,
    },
    sourceInput: { name: inT.name, shape: [...inT.shape], layout: conv.inputLayout, dtype: tensorTypeName(inT.type).toLowerCase(), ...(quantization ? { quantization } : {}) },
    preprocessSource: quantization || calibrated ? 'input-quantization' : 'assumed',
    output: { dims: out.shape, extractor },
    precision: conv.quantizedWeights ? 'int8' : conv.halfWeights ? 'fp16' : 'fp32',
    activations: conv.quantizedActivations ? 'int8' : 'float',
    notes,
  };
  if (embedding !== undefined) {
    const v = conv.values.get(embedding)!;
    const dims = v.shape.slice(1).reduce((a, d) => a * d, 1);
    card.layer.embedding = { tensor: v.name, dims, pool: 'none', note: extractor ? 'the output itself (a feature extractor)' : 'pooled features before the final dense layer(s)' };
  }
  let list: string[] | undefined;
  let from = 'the given labels';
  if (options.labels !== undefined) list = typeof options.labels === 'string' ? parseLabels(options.labels, from) : [...options.labels];
  else if (!extractor) {
    for (const [name, data] of options.associatedFiles ?? []) {
      if (!name.toLowerCase().endsWith('.txt')) continue;
      let lines: string[];
      try {
        // decoded leniently to count its lines: a packed file that is not text (nor a label list) is skipped
        lines = parseLabels(new TextDecoder('utf-8').decode(data), name);
      } catch (err) {
        // an associated text file that is not a label list (parseLabels' EINPUT); anything else is a fault
        if (err instanceof EdgetuneError && err.code === 'EINPUT') continue;
        throw err;
      }
      if (lines.length === classes || lines.length === classes - 1) {
        // the labels: a corrupt one (not UTF-8) is refused, never read as labels of U+FFFD
        list = parseLabels(utf8Text(data, { what: `associated file ${name}`, code: 'EMODEL' }), name);
        from = `the associated file ${name}`;
        notes.push(`labels from the file's associated file ${name}`);
        break;
      }
    }
  }
  if (list && extractor) card.layer.labels = list;
  else if (list) {
    // the label rule (runtime/core/labels.ts): a count that fits neither way is refused here
    const d = decideLabels({ labels: list, labelsFrom: from, outputs: classes, model: '' });
    card.layer.labels = d.labels;
    card.layer.labelOffset = d.labelOffset;
  }
  return card;
}
