// TensorFlow.js layers model (model.json topology + weights, e.g. a Teachable Machine image export)
// → ONNX. Walks Sequential and functional (Model) configs, nested to any depth, and writes an NCHW
// float graph (kernels transposed once, here), with a card of what the files say (its model-card
// layer: input size, labels from metadata.json, softmax output, the pooled embedding). Browser-safe
// (no Node APIs).

import { EdgetuneError } from '../../core/errors.js';
import { decideLabels } from '../../core/labels.js';
import { DataType } from '../graph.js';
import {
  GraphBuilder,
  NCHW_TO_NHWC,
  TEACHABLE_MACHINE_PREPROCESS,
  convPads,
  emitActivation,
  floatInput,
  importedSpec,
  nhwcAxisToNchw,
  transposeData,
  windowOut,
  type ActivationKind,
  type ImportResult,
  type ImportedModelCard,
  type Value,
} from './common.js';
import { decodeTfjsWeights, type TfjsWeight, type TfjsWeightGroup } from './tfjs-weights.js';

/** A Keras layer config as tfjs writes it. */
export interface TfjsLayer {
  class_name: string;
  name?: string;
  config: Record<string, unknown> & { name?: string; layers?: TfjsLayer[] };
  /** Functional models: per call, the inputs as [layerName, nodeIndex, tensorIndex, kwargs]. */
  inbound_nodes?: [string, number, number, unknown?][][];
}

/** The parsed model.json of a tfjs layers model. */
export interface TfjsModelJson {
  /** `{class_name, config}`, or Keras' `{model_config: {class_name, config}}`. */
  modelTopology: TfjsLayer | { model_config: TfjsLayer };
  weightsManifest: TfjsWeightGroup[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
}

/** Teachable Machine's metadata.json (only the fields used here). */
export interface TfjsMetadata {
  labels?: string[];
  tmVersion?: string;
  packageName?: string;
  modelName?: string;
  imageSize?: number;
}

export interface TfjsImportOptions {
  /** metadata.json of a Teachable Machine export: labels, and the hint for its preprocessing. */
  metadata?: TfjsMetadata;
  /** Labels (override metadata.labels). */
  labels?: readonly string[];
  /** Graph name (default: the top-level model's name). */
  name?: string;
}

/**
 * Convert a tfjs layers model to ONNX. `weights`: the shard files by the path the manifest names
 * ("weights.bin"), as a Map or record. The ONNX input is float32 NCHW `[1, C, H, W]` from the first
 * layer's batch_input_shape `[null, H, W, C]`; rank-4 values are NCHW inside; the output is the last
 * layer's. Only channels_last models are supported.
 * Errors: EdgetuneError 'EINPUT' for missing/short weight files (see decodeTfjsWeights);
 * 'EMODEL' for an unsupported layer or option, naming the layer, its class and its index (0-based
 * position among the leaf layers in execution order, nested models flattened).
 */
export function importTfjsLayers(modelJson: TfjsModelJson, weights: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>, options: TfjsImportOptions = {}): ImportResult {
  const top = 'model_config' in modelJson.modelTopology ? modelJson.modelTopology.model_config : modelJson.modelTopology;
  if (!top || typeof top.class_name !== 'string') throw new EdgetuneError('EMODEL', 'model.json has no modelTopology with a class_name (not a tfjs layers model?)');
  const w = decodeTfjsWeights(modelJson.weightsManifest ?? [], weights);
  const conv = new TfjsConverter(w);
  const inputShape = findInputShape(top);
  if (!inputShape || inputShape.length !== 4) {
    // Teachable Machine's pose and audio projects export tfjs layers models too: their input is PoseNet
    // keypoints or a spectrogram, and metadata.json names the package
    const pkg = options.metadata?.packageName;
    const project = typeof pkg === 'string' && pkg.startsWith('@teachablemachine/') && pkg !== '@teachablemachine/image' ? pkg : undefined;
    throw new EdgetuneError(
      'EMODEL',
      project
        ? `model.json is a Teachable Machine ${project.slice('@teachablemachine/'.length)} model (${project}, input ${JSON.stringify(inputShape)}): it classifies ${project === '@teachablemachine/pose' ? 'PoseNet keypoints' : 'what that project records'}, not images; edgetune imports Teachable Machine's Image Project exports`
        : `model.json: expected an image input [null, H, W, C], found ${JSON.stringify(inputShape)}`,
    );
  }
  const [, h, wd, c] = inputShape as [null, number, number, number];
  const fixed = (d: unknown) => typeof d === 'number' && Number.isInteger(d) && d > 0;
  if (!fixed(h) || !fixed(wd) || !(c === 1 || c === 3)) {
    // a dynamic size would leave the card without an input size, and every layer's shape unknown
    throw new EdgetuneError(
      'EMODEL',
      `the input is ${JSON.stringify(inputShape)}: edgetune imports image models with a fixed height, width and 1 or 3 channels ([null, H, W, C]); re-export the model with a fixed input size (Teachable Machine exports [null, 224, 224, 3])`,
    );
  }
  const inName = conv.b.unique('input');
  const input: Value = { name: inName, shape: [1, c, h, wd] };
  const out = conv.layer(top, [input], 'model');
  if (out.length !== 1) throw new EdgetuneError('EMODEL', `model.json: expected one output, found ${out.length}`);
  const output = out[0]!;
  const name = options.name ?? (top.config.name as string | undefined) ?? 'tfjs';
  const model = conv.b.finish([floatInput(inName, input.shape)], [floatInput(output.name, output.shape)], {
    graphName: name,
    producer: 'edgetune-import-tfjs',
    docString: `Converted from a TensorFlow.js layers model${modelJson.generatedBy ? ` (${modelJson.generatedBy})` : ''}`,
  });
  const md = options.metadata;
  const tm = md?.tmVersion !== undefined || (md?.packageName ?? '').includes('teachablemachine');
  const classes = output.shape[output.shape.length - 1]!;
  const card: ImportedModelCard = {
    source: 'tfjs',
    layer: {
      inputName: inName,
      outputName: output.name,
      preprocess: importedSpec(input.shape, TEACHABLE_MACHINE_PREPROCESS),
      labelOffset: 0,
      outputKind: conv.probabilities.has(output.name) ? 'probabilities' : 'logits',
    },
    sourceInput: { name: findInputName(top) ?? 'input', shape: [1, h, wd, c], layout: 'NHWC', dtype: 'float32' },
    preprocessSource: tm ? 'teachable-machine' : 'assumed',
    output: { dims: output.shape, extractor: false },
    precision: 'fp32',
    activations: 'float',
    notes: tm ? [`Teachable Machine export (tmVersion ${md!.tmVersion ?? '?'}): centre square crop, x/127.5 − 1`] : ['preprocessing assumed to be x/127.5 − 1 (Keras MobileNet); the files do not say'],
  };
  if (conv.pooled) {
    card.layer.embedding = { tensor: conv.pooled.name, dims: conv.pooled.shape[1]!, pool: 'none', note: 'pooled features before the final dense layer(s)' };
  }
  const quantized = [...new Set((modelJson.weightsManifest ?? []).flatMap((g) => g.weights.map((w) => w.quantization?.dtype).filter((d) => d !== undefined)))];
  if (quantized.length > 0) card.notes.push(`weights stored ${quantized.join('/')}-quantized in the manifest, dequantized to float32`);
  const labels = options.labels ?? md?.labels;
  if (labels) {
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) {
      throw new EdgetuneError('EINPUT', `metadata.json: labels: expected an array of strings (one per class) but received ${Array.isArray(labels) ? 'an array with a non-string' : typeof labels}`);
    }
    const d = decideLabels({ labels, labelsFrom: options.labels ? 'the given labels' : 'metadata.json', outputs: classes, model: '' });
    card.layer.labels = d.labels;
    card.layer.labelOffset = d.labelOffset;
  }
  return { model, card };
}

/** Name of the first InputLayer found depth-first (Keras' "input_1"…). */
function findInputName(l: TfjsLayer): string | undefined {
  if (l.class_name === 'InputLayer') return l.config.name ?? l.name;
  for (const sub of layersOf(l)) {
    const n = findInputName(sub);
    if (n) return n;
  }
  return undefined;
}

/** batch_input_shape of the first layer found depth-first. */
function findInputShape(l: TfjsLayer): (number | null)[] | undefined {
  const own = l.config.batch_input_shape as (number | null)[] | undefined;
  if (own) return own;
  for (const sub of layersOf(l)) {
    const s = findInputShape(sub);
    if (s) return s;
  }
  return undefined;
}

function layersOf(l: TfjsLayer): TfjsLayer[] {
  if (Array.isArray(l.config.layers)) return l.config.layers;
  if (Array.isArray(l.config)) return l.config as unknown as TfjsLayer[]; // Keras 1 Sequential: config is the layer list
  return [];
}

const pair = (v: unknown, what: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number') return [v[0], v[1]];
  throw new EdgetuneError('EMODEL', `expected a number or a pair for ${what}, found ${JSON.stringify(v)}`);
};

const ACTIVATIONS: Record<string, ActivationKind> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  softmax: 'softmax',
  elu: 'elu',
  selu: 'selu',
  softplus: 'softplus',
  hard_sigmoid: 'hard_sigmoid',
  hardSigmoid: 'hard_sigmoid',
  swish: 'swish',
};

class TfjsConverter {
  readonly b = new GraphBuilder();
  /** Values produced by softmax/sigmoid (for the card's output kind). */
  readonly probabilities = new Set<string>();
  /** The last global-pooling output (the embedding). */
  pooled: Value | undefined;
  private index = 0;

  constructor(private readonly weights: Map<string, TfjsWeight>) {}

  private error(l: TfjsLayer, index: number, why: string): EdgetuneError {
    return new EdgetuneError('EMODEL', `Unsupported tfjs layer ${l.class_name} "${l.config.name ?? l.name ?? '?'}" (layer ${index}): ${why}`);
  }

  /** Weight `${layer}/${suffix}` (or one whose name ends so, for prefixed manifests). */
  private weight(layer: string, suffix: string, required = true): TfjsWeight | undefined {
    const key = `${layer}/${suffix}`;
    let w = this.weights.get(key);
    if (!w) for (const [k, v] of this.weights) if (k.endsWith(`/${key}`)) w = v;
    if (!w && required) throw new EdgetuneError('EMODEL', `tfjs weight "${key}" is not in the weight manifest`, { subject: key });
    return w;
  }

  /** Apply a layer (or a nested model) to its inputs; returns its outputs. */
  layer(l: TfjsLayer, inputs: Value[], path: string): Value[] {
    const cls = l.class_name;
    if (cls === 'Sequential') {
      let x = inputs;
      for (const sub of layersOf(l)) x = this.layer(sub, x, `${path}/${sub.config.name ?? ''}`);
      return x;
    }
    if (cls === 'Model' || cls === 'Functional') return this.functional(l, inputs, path);
    const index = this.index++;
    return [this.simple(l, inputs, index)];
  }

  private functional(l: TfjsLayer, inputs: Value[], path: string): Value[] {
    const cfg = l.config as { layers: TfjsLayer[]; input_layers: [string, number, number][]; output_layers: [string, number, number][] };
    const values = new Map<string, Value>();
    const key = (name: string, node: number, tensor: number) => `${name}:${node}:${tensor}`;
    cfg.input_layers.forEach(([name, node, tensor], i) => {
      if (!inputs[i]) throw new EdgetuneError('EMODEL', `model "${l.config.name}" wants input ${name}, but got ${inputs.length} inputs`);
      values.set(key(name, node, tensor), inputs[i]);
    });
    for (const sub of cfg.layers) {
      const name = sub.config.name ?? sub.name ?? '';
      if (sub.class_name === 'InputLayer') continue;
      (sub.inbound_nodes ?? []).forEach((call, nodeIndex) => {
        if (!Array.isArray(call) || !call.every((c) => Array.isArray(c) && typeof c[0] === 'string')) {
          throw new EdgetuneError('EMODEL', `model "${l.config.name}": layer "${name}" has inbound_nodes in a form this importer does not read (Keras 3 model.json?); expected [[layerName, nodeIndex, tensorIndex, kwargs], …]`);
        }
        const ins = call.map(([n, node, tensor]) => {
          const v = values.get(key(n, node, tensor));
          if (!v) throw new EdgetuneError('EMODEL', `model "${l.config.name}": layer "${name}" reads "${n}" before it is computed`);
          return v;
        });
        this.layer(sub, ins, `${path}/${name}`).forEach((v, t) => values.set(key(name, nodeIndex, t), v));
      });
    }
    return cfg.output_layers.map(([name, node, tensor]) => {
      const v = values.get(key(name, node, tensor));
      if (!v) throw new EdgetuneError('EMODEL', `model "${l.config.name}": output "${name}" is never computed`);
      return v;
    });
  }

  private activation(l: TfjsLayer, index: number, x: Value, name: string, kindName: unknown): Value {
    const kind = ACTIVATIONS[String(kindName ?? 'linear')];
    if (!kind) throw this.error(l, index, `activation "${String(kindName)}"`);
    if (kind === 'linear') return x;
    const out = this.b.unique(name);
    emitActivation(this.b, kind, x.name, out, x.shape.length === 4 ? 1 : -1);
    if (kind === 'softmax' || kind === 'sigmoid') this.probabilities.add(out);
    return { name: out, shape: x.shape };
  }

  private simple(l: TfjsLayer, inputs: Value[], index: number): Value {
    const c = l.config;
    const name = String(c.name ?? l.name ?? `layer_${index}`);
    const x = inputs[0]!;
    if (c.data_format !== undefined && c.data_format !== 'channels_last') throw this.error(l, index, `data_format ${String(c.data_format)}`);
    const b = this.b;
    switch (l.class_name) {
      case 'InputLayer':
        return x;
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
      case 'AlphaDropout':
        return x; // identity at inference
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const dw = l.class_name === 'DepthwiseConv2D';
        if (x.shape.length !== 4) throw this.error(l, index, `input of rank ${x.shape.length}`);
        const [, cin, h, wd] = x.shape as [number, number, number, number];
        const [kh, kw] = pair(c.kernel_size, 'kernel_size');
        const [sh, sw] = pair(c.strides ?? 1, 'strides');
        const [dh, dwl] = pair(c.dilation_rate ?? 1, 'dilation_rate');
        if ((c.groups ?? 1) !== 1) throw this.error(l, index, `groups ${String(c.groups)}`);
        const padding = c.padding === 'same' ? 'same' : c.padding === 'valid' ? 'valid' : undefined;
        if (!padding) throw this.error(l, index, `padding ${String(c.padding)}`);
        const k = this.weight(name, dw ? 'depthwise_kernel' : 'kernel')!;
        let wData: Float32Array;
        let wShape: number[];
        if (dw) {
          // [KH, KW, C, M] → [C·M, 1, KH, KW]: output channel c·M + m, as TensorFlow orders them
          const m = k.shape[3]!;
          wData = transposeData(k.data as Float32Array, [kh, kw, cin * m], [2, 0, 1]);
          wShape = [cin * m, 1, kh, kw];
        } else {
          wData = transposeData(k.data as Float32Array, k.shape, [3, 2, 0, 1]); // [KH, KW, I, O] → [O, I, KH, KW]
          wShape = [k.shape[3]!, k.shape[2]!, kh, kw];
        }
        const ins = [x.name, b.constant(`${name}_weight`, DataType.FLOAT, wShape, wData)];
        if (c.use_bias !== false) ins.push(b.floats(`${name}_bias`, this.weight(name, 'bias')!.data as Float32Array));
        const pads = convPads(padding, h, wd, kh, kw, sh, sw, dh, dwl);
        const outC = wShape[0]!;
        const out = b.op('Conv', ins, c.activation && c.activation !== 'linear' ? `${name}_conv` : name, {
          kernel_shape: [kh, kw],
          strides: [sh, sw],
          dilations: [dh, dwl],
          pads,
          group: dw ? cin : 1,
        });
        const shape = [1, outC, windowOut(h, kh, sh, pads[0]!, pads[2]!, dh), windowOut(wd, kw, sw, pads[1]!, pads[3]!, dwl)];
        return this.activation(l, index, { name: out, shape }, name, c.activation);
      }
      case 'BatchNormalization': {
        const axis = Number(c.axis ?? -1);
        const rank = x.shape.length;
        if (!(axis === -1 || axis === rank - 1)) throw this.error(l, index, `axis ${axis}`);
        const mean = this.weight(name, 'moving_mean')!.data as Float32Array;
        const n = mean.length;
        const gamma = c.scale === false ? new Float32Array(n).fill(1) : (this.weight(name, 'gamma')!.data as Float32Array);
        const beta = c.center === false ? new Float32Array(n) : (this.weight(name, 'beta')!.data as Float32Array);
        const variance = this.weight(name, 'moving_variance')!.data as Float32Array;
        const out = b.op('BatchNormalization', [x.name, b.floats(`${name}_gamma`, gamma), b.floats(`${name}_beta`, beta), b.floats(`${name}_mean`, mean), b.floats(`${name}_variance`, variance)], name, {
          epsilon: { f: Number(c.epsilon ?? 1e-3) },
        });
        return { name: out, shape: x.shape };
      }
      case 'ReLU': {
        const max = c.max_value === null || c.max_value === undefined ? undefined : Number(c.max_value);
        const slope = Number(c.negative_slope ?? 0);
        if (Number(c.threshold ?? 0) !== 0) throw this.error(l, index, `threshold ${String(c.threshold)}`);
        if (slope !== 0 && max !== undefined) throw this.error(l, index, 'negative_slope together with max_value');
        if (slope !== 0) return { name: b.op('LeakyRelu', [x.name], name, { alpha: { f: slope } }), shape: x.shape };
        if (max === undefined) return { name: b.op('Relu', [x.name], name), shape: x.shape };
        return { name: b.op('Clip', [x.name, b.floats(`${name}_min`, [0], []), b.floats(`${name}_max`, [max], [])], name), shape: x.shape };
      }
      case 'LeakyReLU':
        return { name: b.op('LeakyRelu', [x.name], name, { alpha: { f: Number(c.alpha ?? 0.3) } }), shape: x.shape };
      case 'Activation':
        return this.activation(l, index, x, name, c.activation);
      case 'Softmax':
        return this.activation(l, index, x, name, 'softmax');
      case 'Add':
      case 'Multiply':
      case 'Subtract': {
        const op = l.class_name === 'Add' ? 'Add' : l.class_name === 'Multiply' ? 'Mul' : 'Sub';
        if (inputs.length < 2) throw this.error(l, index, `${inputs.length} inputs`);
        let acc = inputs[0]!.name;
        for (let i = 1; i < inputs.length; i++) acc = b.op(op, [acc, inputs[i]!.name], i === inputs.length - 1 ? name : `${name}_${i}`);
        return { name: acc, shape: x.shape };
      }
      case 'Concatenate': {
        const rank = x.shape.length;
        let axis = Number(c.axis ?? -1);
        if (axis < 0) axis += rank;
        const onnxAxis = rank === 4 ? nhwcAxisToNchw(axis) : axis;
        const shape = [...x.shape];
        shape[onnxAxis] = inputs.reduce((a, v) => a + v.shape[onnxAxis]!, 0);
        return { name: b.op('Concat', inputs.map((v) => v.name), name, { axis: onnxAxis }), shape };
      }
      case 'ZeroPadding2D': {
        const p = c.padding;
        let t: number, bo: number, le: number, r: number;
        if (typeof p === 'number') [t, bo, le, r] = [p, p, p, p];
        else if (Array.isArray(p) && typeof p[0] === 'number') [t, bo, le, r] = [p[0], p[0], p[1] as number, p[1] as number];
        else if (Array.isArray(p) && Array.isArray(p[0])) [[t, bo], [le, r]] = p as [[number, number], [number, number]];
        else throw this.error(l, index, `padding ${JSON.stringify(p)}`);
        const out = b.op('Pad', [x.name, b.int64s(`${name}_pads`, [0, 0, t, le, 0, 0, bo, r])], name);
        return { name: out, shape: [x.shape[0]!, x.shape[1]!, x.shape[2]! + t + bo, x.shape[3]! + le + r] };
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        const op = l.class_name === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool';
        const keep = c.keepdims === true;
        let v: Value;
        if (keep) v = { name: b.op(op, [x.name], name), shape: [x.shape[0]!, x.shape[1]!, 1, 1] };
        else {
          const g = b.op(op, [x.name], `${name}_pooled`);
          v = { name: b.op('Reshape', [g, b.int64s(`${name}_shape`, [0, -1])], name), shape: [x.shape[0]!, x.shape[1]!] };
        }
        this.pooled = v;
        return v;
      }
      case 'AveragePooling2D':
      case 'MaxPooling2D': {
        const [kh, kw] = pair(c.pool_size ?? 2, 'pool_size');
        const [sh, sw] = pair(c.strides ?? [kh, kw], 'strides');
        const [, ch, h, wd] = x.shape as [number, number, number, number];
        const pads = convPads(c.padding === 'same' ? 'same' : 'valid', h, wd, kh, kw, sh, sw);
        const out = b.op(l.class_name === 'AveragePooling2D' ? 'AveragePool' : 'MaxPool', [x.name], name, { kernel_shape: [kh, kw], strides: [sh, sw], pads });
        return { name: out, shape: [1, ch, windowOut(h, kh, sh, pads[0]!, pads[2]!), windowOut(wd, kw, sw, pads[1]!, pads[3]!)] };
      }
      case 'Flatten': {
        // Keras flattens NHWC: back to that order first (a no-op reorder when H = W = 1)
        let src = x.name;
        if (x.shape.length === 4 && !(x.shape[2] === 1 && x.shape[3] === 1)) src = b.op('Transpose', [x.name], `${name}_nhwc`, { perm: [...NCHW_TO_NHWC] });
        const n = x.shape.slice(1).reduce((a, d) => a * d, 1);
        return { name: b.op('Reshape', [src, b.int64s(`${name}_shape`, [0, -1])], name), shape: [x.shape[0]!, n] };
      }
      case 'Dense': {
        if (x.shape.length !== 2) throw this.error(l, index, `input of rank ${x.shape.length} (only [batch, features] is supported)`);
        const k = this.weight(name, 'kernel')!; // [in, out]
        if (!(k.shape[1]! > 0) || (c.units !== undefined && c.units !== k.shape[1])) {
          throw new EdgetuneError('EMODEL', `tfjs layer Dense "${name}" (layer ${index}) has ${c.units ?? k.shape[1]} units and a [${k.shape.join(', ')}] kernel: a Dense layer needs at least one unit, as many as its kernel's columns`);
        }
        const ins = [x.name, b.constant(`${name}_kernel`, DataType.FLOAT, k.shape, k.data as Float32Array)];
        if (c.use_bias !== false) ins.push(b.floats(`${name}_bias`, this.weight(name, 'bias')!.data as Float32Array));
        const act = c.activation && c.activation !== 'linear';
        const out = b.op('Gemm', ins, act ? `${name}_linear` : name);
        return this.activation(l, index, { name: out, shape: [x.shape[0]!, k.shape[1]!] }, name, c.activation);
      }
      default:
        throw this.error(l, index, 'no converter for this layer class');
    }
  }
}
