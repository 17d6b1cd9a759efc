// Mixed precision chosen by measured accuracy and measured speed (Node): which quantized layers to
// keep in float (quantizeModel's keepFloat: 'auto', `quantize --keep-float auto`).
//
// Accuracy: each quantized Conv/Gemm/MatMul is scored as `exclude` would leave it (float weights and
// bias, its activation input read unquantized; sensitivity.ts layersInFloat) with every other layer
// int8: the gain is the drop of the mean KL(p_float ‖ p_mixed) against the whole int8 model on
// calibration images (both unfused, as the sensitivity analysis runs). Scoring the input's
// quantization along with the weights matters: on MobileNetV2 the error is in the activations (the
// weight-only ranking of `keepFloat: N` chose layers that cost accuracy on held-out flowers).
//
// Speed: onnxruntime's profiler times every kernel of the float model and of the int8 model as this
// machine runs them (same providers and threads as the caller's sessions, graph optimizations on, one
// calibration image): a layer's saving from int8 is its float kernel time minus its int8 kernel time,
// less the Q/DQ a float layer inside an int8 model adds (its input dequantized, its output quantized:
// their elements times the per-element cost of the int8 model's own QuantizeLinear/DequantizeLinear).
//
// Choice: layers whose int8 kernel saves nothing (cost of float ≤ 0) and whose float version does not
// hurt are kept in float for free; then, by gain per millisecond of float cost, the best ratios while
// their summed cost stays within `latencyBudget` × the int8 model's kernel time and each gain is above
// `minGain` × the whole model's KL (noise on a few calibration images). Mixed precision as in HAWQ-V3
// (Yao et al. 2021, a latency-constrained bit allocation) with the leave-one-out sensitivity of
// ONNX Runtime's qdq_loss_debug, measured instead of modelled.

import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EdgetuneError } from '../runtime/core/errors.js';
import type { TensorData } from '../runtime/core/tensor.js';
import { consumerMap, producerMap } from '../runtime/onnx/graph.js';
import { encodeModel, type NodeProto, type OnnxModel } from '../runtime/onnx/model.js';
import type { PostprocessSpec } from '../runtime/classify/postprocess.js';
import { createSession, type SessionOptions } from '../runtime/session/session.js';
import { findParts, layersInFloat, outputsOf, score, type SensitivityScore } from './sensitivity.js';
import { withTaps } from './taps.js';

/** Share of the int8 model's kernel time the float layers may add by default (10%). */
export const DEFAULT_LATENCY_BUDGET = 0.1;
/** A layer's KL gain must exceed this share of the whole int8 model's KL to be kept float (noise floor). */
export const DEFAULT_MIN_GAIN = 0.02;
/** Profiled runs per model for the per-layer kernel times. */
const PROFILE_RUNS = 20;

export interface LayerPrecision {
  /** The layer's node name (its output name when unnamed), as in the sensitivity report. */
  name: string;
  op: string;
  /** Depthwise Conv (group = input channels > 1). */
  depthwise: boolean;
  /** The model with only this layer float, against the float model (mean KL, top-1 agreement). */
  alone: SensitivityScore;
  /** Mean KL removed by keeping this layer float (whole int8 model's KL − alone.meanKL). */
  klGain: number;
  /** Kernel time of the layer in the float model and in the int8 model, ms per image. */
  floatMs: number;
  int8Ms: number;
  /** Estimated latency a float version adds to the int8 model: floatMs + its Q/DQ − int8Ms (negative: int8 is slower). */
  costMs: number;
  /** Whether it is kept in float, and why: 'free' (int8 is not faster), 'ratio' (gain per ms within the budget). */
  kept: false | 'free' | 'ratio';
}

export interface PrecisionChoice {
  images: number;
  /** The whole int8 model against the float model on the scoring images (unfused). */
  full: SensitivityScore;
  /** Summed kernel time of the float and int8 models (ms per image, this machine, the caller's threads). */
  floatKernelMs: number;
  int8KernelMs: number;
  /** The budget in ms (latencyBudget × int8KernelMs) and what the kept layers are estimated to add. */
  budgetMs: number;
  addedMs: number;
  /** Every quantized layer, the kept ones first (in the order chosen), then by gain. */
  layers: LayerPrecision[];
}

export interface PrecisionOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  post: Pick<PostprocessSpec, 'kind'>;
  /** Share of the int8 model's kernel time kept-float layers may add. Default DEFAULT_LATENCY_BUDGET. */
  latencyBudget?: number;
  /** Noise floor of a layer's gain, as a share of the whole model's KL. Default DEFAULT_MIN_GAIN. */
  minGain?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Every name onnxruntime's profile can give a layer: its node name, its output, and the output of a Relu/Clip fused into it. */
function profileNames(floatModel: OnnxModel, layers: readonly { name: string; float: NodeProto }[]): Map<string, string> {
  const consumers = consumerMap(floatModel.graph);
  const out = new Map<string, string>();
  for (const l of layers) {
    const n = l.float;
    for (const k of [n.name, n.output[0]]) if (k) out.set(k, l.name);
    const cs = consumers.get(n.output[0]!) ?? [];
    if (cs.length === 1 && (cs[0]!.opType === 'Relu' || cs[0]!.opType === 'Clip')) out.set(cs[0]!.output[0]!, l.name);
  }
  return out;
}

interface KernelTimes {
  /** Layer name → ms per run. */
  layers: Map<string, number>;
  /** Op type → ms per run (every kernel). */
  byOp: Map<string, number>;
  /** Summed kernel ms per run. */
  totalMs: number;
}

/**
 * Kernel times per layer from an onnxruntime profile (Chrome trace JSON) of `runs` runs of `bytes` on
 * `input`: node names are matched after dropping the suffixes onnxruntime gives fused int8 nodes
 * (`_token_<k>`) and NCHWc float nodes (`_nchwc`).
 */
export async function kernelTimes(bytes: Uint8Array, inputName: string, input: TensorData, names: ReadonlyMap<string, string>, o: Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> & { runs?: number; signal?: AbortSignal }): Promise<KernelTimes> {
  const runs = o.runs ?? PROFILE_RUNS;
  const dir = await mkdtemp(path.join(tmpdir(), 'edgetune-profile-'));
  try {
    const prefix = path.join(dir, 'profile');
    const s = await createSession(bytes, { providers: o.providers ?? ['cpu'], threads: o.threads, onWarning: o.onWarning, enableProfiling: true, profileFilePrefix: prefix });
    let file: string | undefined;
    try {
      for (let i = 0; i < 3 + runs; i++) {
        o.signal?.throwIfAborted();
        await s.run({ [inputName]: input });
      }
      file = s.endProfiling();
    } finally {
      await s.dispose();
    }
    // onnxruntime-node does not always return the file name: it is the one file in the folder
    file ??= (await readdir(dir)).map((f) => path.join(dir, f))[0];
    if (!file) throw new EdgetuneError('EMODEL', 'onnxruntime wrote no profile');
    const events = JSON.parse(await readFile(file, 'utf8')) as { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }[];
    // the first 3 runs warm up: only the last `runs` count
    const perNode = new Map<string, number[]>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.args?.op_name || !e.name?.endsWith('_kernel_time')) continue;
      const key = `${e.args.op_name}\u0000${e.name.slice(0, -'_kernel_time'.length)}`;
      const list = perNode.get(key) ?? [];
      list.push(e.dur ?? 0);
      perNode.set(key, list);
    }
    const layers = new Map<string, number>();
    const byOp = new Map<string, number>();
    let total = 0;
    for (const [key, durs] of perNode) {
      const [op, node] = key.split('\u0000') as [string, string];
      const counted = durs.slice(-runs);
      const ms = counted.reduce((a, b) => a + b, 0) / counted.length / 1000;
      total += ms;
      byOp.set(op, (byOp.get(op) ?? 0) + ms);
      const layer = names.get(node.replace(/(_token_\d+|_nchwc)$/, ''));
      if (layer !== undefined) layers.set(layer, (layers.get(layer) ?? 0) + ms);
    }
    return { layers, byOp, totalMs: total };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function isDepthwise(n: NodeProto): boolean {
  if (n.opType !== 'Conv') return false;
  const g = Number(n.attribute.find((a) => a.name === 'group')?.i ?? 1);
  return g > 1;
}

/**
 * Score and time every quantized layer of `qmodel` (see the file comment) and choose the ones to keep
 * in float. `floatModel` is the prepared float model the rewrite started from; `inputs` calibration
 * images (the first one is profiled). Errors: EARG without inputs; the sessions' errors.
 */
export async function choosePrecision(floatModel: OnnxModel, qmodel: OnnxModel, inputName: string, outputName: string, inputs: readonly TensorData[], o: PrecisionOptions): Promise<PrecisionChoice> {
  if (inputs.length === 0) throw new EdgetuneError('EARG', 'mixed precision needs at least one calibration image');
  const budget = o.latencyBudget ?? DEFAULT_LATENCY_BUDGET;
  const minGain = o.minGain ?? DEFAULT_MIN_GAIN;
  const parts = findParts(floatModel, qmodel);
  const floatNode = new Map<string, NodeProto>();
  const floatByOutput = new Map<string, NodeProto>();
  for (const n of floatModel.graph.node) if (n.output[0]) floatByOutput.set(n.output[0], n);
  for (const [name, l] of parts.layers) floatNode.set(name, floatByOutput.get(l.quant.output[0]!) ?? floatModel.graph.node.find((n) => (n.name || n.output[0]) === name)!);
  const layerList = [...parts.layers.keys()].map((name) => ({ name, float: floatNode.get(name)! }));
  const total = 2 + layerList.length + 2;
  let done = 0;
  const tick = () => o.onProgress?.(++done, total);
  o.onProgress?.(0, total);
  const session = { providers: o.providers, threads: o.threads, onWarning: o.onWarning, signal: o.signal };

  // Speed: both models as this machine runs them.
  const names = profileNames(floatModel, layerList);
  const tf = await kernelTimes(encodeModel(floatModel), inputName, inputs[0]!, names, session);
  tick();
  const tq = await kernelTimes(encodeModel(qmodel), inputName, inputs[0]!, names, session);
  tick();
  // Per-element cost of a Q or DQ on this machine, from the int8 model's own activation Q/DQ kernels.
  const dims = await layerShapes(floatModel, inputName, inputs[0]!, layerList, session);
  const qdqNs = await qdqCostPerElement(qmodel, inputName, inputs[0]!, session);

  // Accuracy: the whole int8 model, then each layer float alone.
  const sensitivity = { ...session, post: o.post };
  const ref = await outputsOf(floatModel, inputName, outputName, inputs, o.post, sensitivity, false);
  const full = score(ref, await outputsOf(qmodel, inputName, outputName, inputs, o.post, sensitivity, true));
  tick();
  const layers: LayerPrecision[] = [];
  for (const { name, float } of layerList) {
    const alone = score(ref, await outputsOf(layersInFloat(floatModel, qmodel, new Set([name]), parts), inputName, outputName, inputs, o.post, sensitivity, true));
    const floatMs = tf.layers.get(name) ?? 0;
    const int8Ms = tq.layers.get(name) ?? 0;
    const d = dims.get(name) ?? { input: 0, output: 0 };
    const costMs = floatMs + ((d.input + d.output) * qdqNs) / 1e6 - int8Ms;
    layers.push({ name, op: parts.layers.get(name)!.op, depthwise: isDepthwise(float), alone, klGain: full.meanKL - alone.meanKL, floatMs, int8Ms, costMs, kept: false });
    tick();
  }
  const floor = minGain * full.meanKL;
  const budgetMs = budget * tq.totalMs;
  let addedMs = 0;
  const order: LayerPrecision[] = [];
  // Free: int8 is not faster here, and float does not hurt.
  for (const l of layers) {
    if (l.costMs <= 0 && l.klGain >= 0) {
      l.kept = 'free';
      addedMs += l.costMs;
      order.push(l);
    }
  }
  const byRatio = layers.filter((l) => !l.kept && l.klGain > floor).sort((a, b) => b.klGain / b.costMs - a.klGain / a.costMs);
  for (const l of byRatio) {
    if (addedMs + l.costMs > budgetMs) continue;
    l.kept = 'ratio';
    addedMs += l.costMs;
    order.push(l);
  }
  tick();
  const rest = layers.filter((l) => !l.kept).sort((a, b) => b.klGain - a.klGain);
  return { images: inputs.length, full, floatKernelMs: tf.totalMs, int8KernelMs: tq.totalMs, budgetMs, addedMs, layers: [...order, ...rest] };
}

/** Elements of each layer's activation input and output (one run of the float model with them tapped). */
async function layerShapes(floatModel: OnnxModel, inputName: string, input: TensorData, layers: readonly { name: string; float: NodeProto }[], o: Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> & { signal?: AbortSignal }): Promise<Map<string, { input: number; output: number }>> {
  const tensors = layers.flatMap((l) => [l.float.input[0]!, l.float.output[0]!]);
  const taps = withTaps(floatModel, inputName, tensors, { ...o, tapsOnly: true, what: 'shape run' });
  const size = (t: TensorData) => t.dims.reduce((a, b) => a * b, 1);
  const out = new Map<string, { input: number; output: number }>();
  for await (const { values } of taps.run([input], (x) => x)) {
    for (const l of layers) out.set(l.name, { input: size(values.get(l.float.input[0]!)!), output: size(values.get(l.float.output[0]!)!) });
  }
  return out;
}

/**
 * Nanoseconds per element of a QuantizeLinear/DequantizeLinear on activations, from the int8 model's
 * profile: the graph input's QuantizeLinear (its size is the input's) when onnxruntime leaves it
 * unfused, else 1 ns (measured 0.6–1.2 ns on this AMD EPYC at one thread).
 */
async function qdqCostPerElement(qmodel: OnnxModel, inputName: string, input: TensorData, o: Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> & { signal?: AbortSignal }): Promise<number> {
  const producer = producerMap(qmodel.graph);
  void producer;
  const q = qmodel.graph.node.find((n) => n.opType === 'QuantizeLinear' && n.input[0] === inputName);
  if (!q) return 1;
  const names = new Map([[q.name || q.output[0]!, 'input']]);
  const t = await kernelTimes(encodeModel(qmodel), inputName, input, names, { ...o, runs: 5 });
  const ms = t.layers.get('input');
  const elements = input.dims.reduce((a, b) => a * b, 1);
  return ms && elements ? (ms * 1e6) / elements : 1;
}
