// Quantization sensitivity (Node): which quantized tensors cost the most accuracy, the question
// `--exclude` needs answered and the one ONNX Runtime's qdq_loss_debug and Polygraphy answer for
// Python users. From the finished QDQ model, variants are built that keep exactly one part
// quantized: one layer's int8 weights (every activation float), or one activation's Q→DQ (every
// weight float). Each variant runs on calibration images against the float model, unfused (graph
// optimizations off: plain fake quantization, so ONNX Runtime cannot fold a float Conv between a DQ
// and a Q into an int8 kernel of its own), and scores mean KL(p_float ‖ p_variant) and top-1
// agreement. The whole model, weights only and activations only are scored the same way.
//
// A layer kept quantized keeps its int32 bias too, corrections included (they compensate the whole
// int8 model's mean shift, so a layer alone can score slightly worse than its rounding alone would).
// Bypassing an activation's Q→DQ must keep the Relu/Clip the rewrite folded into that quantizer's
// clamp: the float model's clamp node is put back in its place.

import { EdgetuneError } from '../runtime/core/errors.js';
import { checkOptionKeys, type AssertNever } from '../runtime/core/options.js';
import { getInitializer, nameGenerator, producerMap, pruneGraph, setInitializer } from '../runtime/onnx/graph.js';
import { cloneModel, type NodeProto, type OnnxModel } from '../runtime/onnx/model.js';
import { klDivergence, toProbabilities, type PostprocessSpec } from '../runtime/classify/postprocess.js';
import type { SessionOptions } from '../runtime/session/session.js';
import { asFloat32, type TensorData } from '../runtime/core/tensor.js';
import { argmax } from '../runtime/train/metrics.js';
import { quantizedLayers, unfoldedClamp } from './layers.js';
import { withTaps } from './taps.js';

/** Calibration images the sensitivity analysis runs on by default. */
export const DEFAULT_SENSITIVITY_IMAGES = 32;

export interface SensitivityScore {
  /** Mean KL(p_float ‖ p_quantized) over the images. */
  meanKL: number;
  /** Share of images whose top-1 class matches the float model's. */
  agreementTop1: number;
}

export interface SensitivityEntry extends SensitivityScore {
  /** `weights`: one layer's int8 weights alone; `activation`: one tensor's Q→DQ alone. */
  kind: 'weights' | 'activation';
  /** The layer's node name (its output name when unnamed) or the activation tensor's name. */
  name: string;
  /** Operator type of the layer, or of the node producing the activation in the float model. */
  op: string;
}

export interface SensitivityReport {
  images: number;
  /** The int8 model as written, scored unfused on the same images. */
  full: SensitivityScore;
  /** Every layer's weights int8, every activation float. */
  weightsOnly: SensitivityScore;
  /** Every activation quantized, every weight float. */
  activationsOnly: SensitivityScore;
  /** One entry per quantized layer and per quantized activation, the costliest first. */
  entries: SensitivityEntry[];
}

export interface SensitivityOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  post: Pick<PostprocessSpec, 'kind'>;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Every key of SensitivityOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const SENSITIVITY_OPTION_KEYS = ['providers', 'threads', 'onWarning', 'post', 'signal', 'onProgress'] as const satisfies readonly (keyof SensitivityOptions)[];
/** `never` while SENSITIVITY_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedSensitivityOption = AssertNever<Exclude<keyof SensitivityOptions, (typeof SENSITIVITY_OPTION_KEYS)[number]>>;

/** The quantized parts of a QDQ model (findParts): its layers and its activation quantizers. */
export interface Parts {
  floatProducer: Map<string, NodeProto>;
  /** Quantized layers by name: float weight/bias names to restore. */
  layers: Map<string, { quant: NodeProto; op: string; floatWeights: string; floatBias?: string }>;
  /** Activation tensor → its DequantizeLinear outputs (symmetric layout has several). */
  activations: Map<string, { dequantized: string[]; op: string }>;
}

/** The quantized layers (by report name) and activation quantizers of `qmodel`, against its float model. */
export function findParts(floatModel: OnnxModel, qmodel: OnnxModel): Parts {
  const layers: Parts['layers'] = new Map();
  for (const l of quantizedLayers(floatModel, qmodel)) {
    layers.set(l.float.name || l.float.output[0]!, { quant: l.quant, op: l.float.opType ?? '?', floatWeights: l.float.input[1]!, ...(l.float.input[2] ? { floatBias: l.float.input[2] } : {}) });
  }
  const floatProducer = producerMap(floatModel.graph);
  const producer = producerMap(qmodel.graph);
  const activations: Parts['activations'] = new Map();
  for (const d of qmodel.graph.node) {
    if (d.opType !== 'DequantizeLinear') continue;
    const q = producer.get(d.input[0]!);
    if (q?.opType !== 'QuantizeLinear') continue;
    const t = q.input[0]!;
    const made = floatProducer.get(t);
    // A folded clamp reads as "Conv+Clip": the tensor is the layer's clamped output.
    const before = made && (made.opType === 'Relu' || made.opType === 'Clip') ? floatProducer.get(made.input[0]!) : undefined;
    const op = made ? (before ? `${before.opType}+${made.opType}` : made.opType!) : 'input';
    const entry = activations.get(t) ?? { dequantized: [], op };
    entry.dequantized.push(d.output[0]!);
    activations.set(t, entry);
  }
  return { floatProducer, layers, activations };
}

/**
 * A copy of `qmodel` in which only `keepLayers`' weights and `keepActivations`' Q→DQ stay quantized:
 * other layers read the float model's weights and bias, other activations are read unquantized
 * (through the float model's Relu/Clip where the rewrite folded one into the quantizer).
 */
export function partiallyQuantized(floatModel: OnnxModel, qmodel: OnnxModel, keepLayers: ReadonlySet<string>, keepActivations: ReadonlySet<string>, parts: Parts = findParts(floatModel, qmodel)): OnnxModel {
  const m = cloneModel(qmodel);
  const g = m.graph;
  const names = nameGenerator(m);
  const floatProducer = parts.floatProducer;
  const producer = producerMap(g);
  const byOutput = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output) byOutput.set(o, n);
  const restore = (name: string) => {
    if (getInitializer(g, name)) return;
    const t = getInitializer(floatModel.graph, name);
    if (!t) throw new EdgetuneError('EMODEL', `float initializer "${name}" not found`);
    setInitializer(g, { ...t });
  };
  // The clone's nodes are new objects: find each layer by its (unchanged) output name.
  for (const [name, l] of parts.layers) {
    if (keepLayers.has(name)) continue;
    const n = byOutput.get(l.quant.output[0]!)!;
    restore(l.floatWeights);
    n.input[1] = l.floatWeights;
    if (l.floatBias && n.input[2]) {
      restore(l.floatBias);
      n.input[2] = l.floatBias;
    }
  }
  const swaps = new Map<string, string>();
  const added: NodeProto[] = [];
  for (const [t, a] of parts.activations) {
    if (keepActivations.has(t)) continue;
    let plain = t;
    // Folded: the producer now writes the clamp's output name; the clamp is re-applied after it.
    const unfolded = unfoldedClamp(floatModel, g, t, names.next(`${t}_unquantized`), names.next(`${t}_unfolded`), { float: floatProducer, quant: producer });
    if (unfolded) {
      added.push(unfolded);
      plain = unfolded.output[0]!;
    }
    for (const d of a.dequantized) swaps.set(d, plain);
  }
  for (const n of g.node) n.input = n.input.map((x) => swaps.get(x) ?? x);
  for (const o of g.output) if (o.name && swaps.has(o.name)) throw new EdgetuneError('EMODEL', `graph output "${o.name}" is a dequantized tensor`);
  g.node.push(...added);
  pruneGraph(g);
  return m;
}

/** The model's output as probabilities on each input (unfused: graph optimizations off, plain fake quantization). */
export async function outputsOf(model: OnnxModel, inputName: string, outputName: string, inputs: readonly TensorData[], post: SensitivityOptions['post'], o: SensitivityOptions, unfused: boolean): Promise<Float32Array[]> {
  const taps = withTaps(model, inputName, [outputName], {
    providers: o.providers,
    threads: o.threads,
    onWarning: o.onWarning,
    graphOptimizationLevel: unfused ? 'disabled' : 'all',
    signal: o.signal,
    what: 'sensitivity run',
  });
  const out: Float32Array[] = [];
  for await (const { values } of taps.run(inputs, (x) => x)) out.push(toProbabilities(asFloat32(values.get(outputName)!).slice(), post.kind));
  return out;
}

/** Mean KL(p ‖ q) and top-1 agreement of two sets of probability rows. */
export function score(ref: readonly Float32Array[], got: readonly Float32Array[]): SensitivityScore {
  let kl = 0;
  let agree = 0;
  for (let i = 0; i < ref.length; i++) {
    if (argmax(ref[i]!) === argmax(got[i]!)) agree++;
    kl += klDivergence(ref[i]!, got[i]!);
  }
  return { meanKL: kl / ref.length, agreementTop1: agree / ref.length };
}

/**
 * Score every quantized layer and activation of `qmodel` alone (see the file comment). Errors: EARG for
 * no input, or an option it does not take (`quantizationSensitivity: unknown option "onprogress" (options: …)`).
 */
export async function quantizationSensitivity(floatModel: OnnxModel, qmodel: OnnxModel, inputName: string, outputName: string, inputs: readonly TensorData[], o: SensitivityOptions): Promise<SensitivityReport> {
  checkOptionKeys('quantizationSensitivity', o, SENSITIVITY_OPTION_KEYS);
  if (inputs.length === 0) throw new EdgetuneError('EARG', 'sensitivity analysis needs at least one calibration image');
  const parts = findParts(floatModel, qmodel);
  const none = new Set<string>();
  const allLayers = new Set(parts.layers.keys());
  const allActs = new Set(parts.activations.keys());
  const total = 4 + parts.layers.size + parts.activations.size;
  let done = 0;
  const tick = () => o.onProgress?.(++done, total);
  o.onProgress?.(0, total); // the stage begins
  const ref = await outputsOf(floatModel, inputName, outputName, inputs, o.post, o, false);
  tick();
  const run = async (layers: ReadonlySet<string>, acts: ReadonlySet<string>) => {
    const s = score(ref, await outputsOf(partiallyQuantized(floatModel, qmodel, layers, acts, parts), inputName, outputName, inputs, o.post, o, true));
    tick();
    return s;
  };
  const full = await run(allLayers, allActs);
  const weightsOnly = await run(allLayers, none);
  const activationsOnly = await run(none, allActs);
  const entries: SensitivityEntry[] = [];
  for (const [name, l] of parts.layers) entries.push({ kind: 'weights', name, op: l.op, ...(await run(new Set([name]), none)) });
  for (const [t, a] of parts.activations) entries.push({ kind: 'activation', name: t, op: a.op, ...(await run(none, new Set([t]))) });
  entries.sort((a, b) => b.meanKL - a.meanKL);
  return { images: inputs.length, full, weightsOnly, activationsOnly, entries };
}
