// Mixed precision chosen by measured accuracy and measured speed (Node): which quantized layers to
// keep in float (quantizeModel's keepFloat: 'auto', `quantize --keep-float auto`).
//
// The unit is a quantized layer's OUTPUT kept float: the layer and every node reading that tensor are
// excluded, so no quantizer rounds it. Keeping a layer float alone does not do that: in onnxruntime's
// fused graph a float Conv after an int8 one reads the int8 output dequantized (QLinearConv →
// DequantizeLinear → Conv, checked in the optimized graph), so only its weights would be float, and on
// MobileNetV2 the error is in the activations (`keepFloat: N`, chosen by weights, lost agreement on
// held-out flowers).
//
// Accuracy: each unit is scored with every other part int8 (sensitivity.ts partiallyQuantized: the
// tensor's quantizer and the excluded layers' int8 weights removed): the gain is the drop of the mean
// KL(p_float ‖ p_mixed) from the whole int8 model's, on calibration images (both unfused, as the
// sensitivity analysis runs).
//
// Speed: onnxruntime's profiler times every kernel of the float model and of the int8 model as this
// machine runs them (same providers and threads as the caller's sessions, graph optimizations on, one
// calibration image, the median of 20 runs per kernel): a node's saving from int8 is its float kernel
// time minus its int8 one; a unit costs the savings of the nodes it excludes (those another chosen unit
// already excludes count once). Q/DQ moved to the unit's borders are not counted: the result's
// latency is measured on the finished model (the report).
//
// Choice: units whose int8 kernels save nothing (cost ≤ 0) and whose float version does not hurt are
// kept in float for free; then, by gain per millisecond of cost, the best ratios while the summed cost
// stays within `latencyBudget` × the int8 model's kernel time and each gain is above `minGain` × the
// whole model's KL (noise on a few calibration images). Mixed precision as in HAWQ-V3
// (Yao et al. 2021, a latency-constrained bit allocation) with the leave-one-out sensitivity of
// ONNX Runtime's qdq_loss_debug, measured instead of modelled.

import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EdgetuneError } from '../runtime/core/errors.js';
import { median } from '../runtime/core/stats.js';
import type { TensorData } from '../runtime/core/tensor.js';
import { consumerMap } from '../runtime/onnx/graph.js';
import { encodeModel, type NodeProto, type OnnxModel } from '../runtime/onnx/model.js';
import type { PostprocessSpec } from '../runtime/classify/postprocess.js';
import { createSession, type SessionOptions } from '../runtime/session/session.js';
import { findParts, outputsOf, partiallyQuantized, score, type SensitivityScore } from './sensitivity.js';

/** Share of the int8 model's kernel time the float layers may add by default (10%). */
export const DEFAULT_LATENCY_BUDGET = 0.1;
/** A unit's KL gain must exceed this share of the whole int8 model's KL to be kept float for its ratio (noise floor). */
export const DEFAULT_MIN_GAIN = 0.02;
/** Profiled runs per model for the per-layer kernel times. */
const PROFILE_RUNS = 20;

export interface UnitPrecision {
  /** The quantized layer whose output stays float (node name, or output name when unnamed). */
  name: string;
  op: string;
  /** The tensor kept float. */
  tensor: string;
  /** Nodes excluded for it: the layer and every reader of the tensor (node names, or output names when unnamed). */
  exclude: string[];
  /** The model with only this unit float, against the float model (mean KL, top-1 agreement). */
  alone: SensitivityScore;
  /** Mean KL removed by keeping it float (whole int8 model's KL − alone.meanKL). */
  klGain: number;
  /** Kernel time of the excluded nodes in the float model and in the int8 model, ms per image. */
  floatMs: number;
  int8Ms: number;
  /** floatMs − int8Ms, counting nodes an earlier chosen unit already excludes once (negative: int8 is slower). */
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
  /** The budget in ms (latencyBudget × int8KernelMs) and what the kept units are estimated to add. */
  budgetMs: number;
  addedMs: number;
  /** Nodes to exclude: the union of the kept units' `exclude`. */
  exclude: string[];
  /** Every unit, the kept ones first (in the order chosen), then by gain. */
  units: UnitPrecision[];
}

export interface PrecisionOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  post: Pick<PostprocessSpec, 'kind'>;
  /** Share of the int8 model's kernel time kept-float units may add. Default DEFAULT_LATENCY_BUDGET. */
  latencyBudget?: number;
  /** Noise floor of a unit's gain, as a share of the whole model's KL. Default DEFAULT_MIN_GAIN. */
  minGain?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const nodeKey = (n: NodeProto) => n.name || n.output[0]!;

/** A layer's output as the quantizer folds it: through the one Relu/Clip reading it, if any (that activation's output). */
function foldedOutput(consumers: Map<string, NodeProto[]>, n: NodeProto): string {
  const cs = consumers.get(n.output[0]!) ?? [];
  return cs.length === 1 && (cs[0]!.opType === 'Relu' || cs[0]!.opType === 'Clip') ? cs[0]!.output[0]! : n.output[0]!;
}

/** Every name onnxruntime's profile can give a float-model node: its name, its output, and for a Conv/Gemm the output of the Relu/Clip fused into it. */
function profileNames(floatModel: OnnxModel): Map<string, string> {
  const consumers = consumerMap(floatModel.graph);
  const out = new Map<string, string>();
  for (const n of floatModel.graph.node) for (const k of [n.output[0], n.name]) if (k) out.set(k, nodeKey(n));
  for (const n of floatModel.graph.node) {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm') continue;
    const t = foldedOutput(consumers, n);
    if (t !== n.output[0]) out.set(t, nodeKey(n));
  }
  return out;
}

interface KernelTimes {
  /** Node key → ms per run (the median over the runs). */
  nodes: Map<string, number>;
  /** Summed kernel ms per run. */
  totalMs: number;
}

/**
 * Kernel times per node from an onnxruntime profile (Chrome trace JSON) of `runs` runs of `bytes` on
 * `input` after 3 warm-up runs, the median per kernel: profile names are matched to `names` (profile
 * name → node key) after dropping the suffixes onnxruntime gives fused int8 nodes (`_token_<k>`) and
 * NCHWc float nodes (`_nchwc`); kernels that match no name count in the total only.
 */
export async function kernelTimes(bytes: Uint8Array, inputName: string, input: TensorData, names: ReadonlyMap<string, string>, o: Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> & { runs?: number; signal?: AbortSignal }): Promise<KernelTimes> {
  const runs = o.runs ?? PROFILE_RUNS;
  const dir = await mkdtemp(path.join(tmpdir(), 'edgetune-profile-'));
  try {
    const s = await createSession(bytes, { providers: o.providers ?? ['cpu'], threads: o.threads, onWarning: o.onWarning, enableProfiling: true, profileFilePrefix: path.join(dir, 'profile') });
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
    const perKernel = new Map<string, number[]>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.args?.op_name || !e.name?.endsWith('_kernel_time')) continue;
      const k = e.name.slice(0, -'_kernel_time'.length);
      const list = perKernel.get(k) ?? [];
      list.push((e.dur ?? 0) / 1000);
      perKernel.set(k, list);
    }
    const nodes = new Map<string, number>();
    let totalMs = 0;
    for (const [k, durs] of perKernel) {
      const ms = median(durs.slice(-runs));
      totalMs += ms;
      const node = names.get(k.replace(/(_token_\d+|_nchwc)$/, ''));
      if (node !== undefined) nodes.set(node, (nodes.get(node) ?? 0) + ms);
    }
    return { nodes, totalMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Score and time every unit of `qmodel` (a quantized layer's output kept float; see the file comment)
 * and choose the ones to keep in float. `floatModel` is the prepared float model the rewrite started
 * from; `inputs` calibration images (the first one is profiled). Errors: EARG without inputs; the
 * sessions' errors.
 */
export async function choosePrecision(floatModel: OnnxModel, qmodel: OnnxModel, inputName: string, outputName: string, inputs: readonly TensorData[], o: PrecisionOptions): Promise<PrecisionChoice> {
  if (inputs.length === 0) throw new EdgetuneError('EARG', 'mixed precision needs at least one calibration image');
  const budget = o.latencyBudget ?? DEFAULT_LATENCY_BUDGET;
  const minGain = o.minGain ?? DEFAULT_MIN_GAIN;
  const parts = findParts(floatModel, qmodel);
  const consumers = consumerMap(floatModel.graph);
  // Units: quantized activations written by a quantized layer (through its folded Relu/Clip).
  const units: { name: string; op: string; tensor: string; exclude: string[]; layers: Set<string> }[] = [];
  for (const [t] of parts.activations) {
    let p = parts.floatProducer.get(t);
    if (p && (p.opType === 'Relu' || p.opType === 'Clip')) p = parts.floatProducer.get(p.input[0]!);
    if (!p || !parts.layers.has(nodeKey(p))) continue;
    const readers = (consumers.get(t) ?? []).map(nodeKey);
    const layers = new Set([nodeKey(p), ...readers.filter((r) => parts.layers.has(r))]);
    units.push({ name: nodeKey(p), op: p.opType ?? '?', tensor: t, exclude: [nodeKey(p), ...readers], layers });
  }
  const total = 3 + units.length;
  let done = 0;
  const tick = () => o.onProgress?.(++done, total);
  o.onProgress?.(0, total);
  const session = { providers: o.providers, threads: o.threads, onWarning: o.onWarning, signal: o.signal };

  // Speed: both models as this machine runs them.
  const names = profileNames(floatModel);
  const tf = await kernelTimes(encodeModel(floatModel), inputName, inputs[0]!, names, session);
  tick();
  const tq = await kernelTimes(encodeModel(qmodel), inputName, inputs[0]!, names, session);
  tick();
  const saving = (n: string) => (tf.nodes.get(n) ?? 0) - (tq.nodes.get(n) ?? 0);

  // Accuracy: the whole int8 model, then each unit float alone.
  const sensitivity = { ...session, post: o.post };
  const ref = await outputsOf(floatModel, inputName, outputName, inputs, o.post, sensitivity, false);
  const full = score(ref, await outputsOf(qmodel, inputName, outputName, inputs, o.post, sensitivity, true));
  tick();
  const allLayers = [...parts.layers.keys()];
  const allActs = [...parts.activations.keys()];
  const scored: UnitPrecision[] = [];
  for (const u of units) {
    const m = partiallyQuantized(floatModel, qmodel, new Set(allLayers.filter((l) => !u.layers.has(l))), new Set(allActs.filter((a) => a !== u.tensor)), parts);
    const alone = score(ref, await outputsOf(m, inputName, outputName, inputs, o.post, sensitivity, true));
    const floatMs = u.exclude.reduce((a, n) => a + (tf.nodes.get(n) ?? 0), 0);
    const int8Ms = u.exclude.reduce((a, n) => a + (tq.nodes.get(n) ?? 0), 0);
    scored.push({ name: u.name, op: u.op, tensor: u.tensor, exclude: u.exclude, alone, klGain: full.meanKL - alone.meanKL, floatMs, int8Ms, costMs: floatMs - int8Ms, kept: false });
    tick();
  }
  const floor = minGain * full.meanKL;
  const budgetMs = budget * tq.totalMs;
  const excluded = new Set<string>();
  const marginal = (u: UnitPrecision) => u.exclude.filter((n) => !excluded.has(n)).reduce((a, n) => a + saving(n), 0);
  const order: UnitPrecision[] = [];
  let addedMs = 0;
  const take = (u: UnitPrecision, why: 'free' | 'ratio') => {
    u.costMs = marginal(u);
    u.kept = why;
    addedMs += u.costMs;
    for (const n of u.exclude) excluded.add(n);
    order.push(u);
  };
  // Free: int8 is not faster here, and float does not hurt.
  for (const u of scored) if (u.klGain >= 0 && marginal(u) <= 0) take(u, 'free');
  // Then the best gain per ms of what is left, while it fits the budget.
  for (;;) {
    let best: UnitPrecision | undefined;
    let bestRatio = -Infinity;
    for (const u of scored) {
      if (u.kept || u.klGain <= floor) continue;
      const c = marginal(u);
      if (addedMs + c > budgetMs) continue;
      const r = c <= 0 ? Infinity : u.klGain / c;
      if (r > bestRatio) {
        bestRatio = r;
        best = u;
      }
    }
    if (!best) break;
    take(best, 'ratio');
  }
  tick();
  const rest = scored.filter((u) => !u.kept).sort((a, b) => b.klGain - a.klGain);
  return { images: inputs.length, full, floatKernelMs: tf.totalMs, int8KernelMs: tq.totalMs, budgetMs, addedMs, exclude: [...excluded], units: [...order, ...rest] };
}

/**
 * The unit of the layer(s) reading the model's image input (a Conv/Gemm/MatMul fed by a graph input):
 * those layers and every node reading their output (through a Relu/Clip), by node key (name, or output
 * name when unnamed), to exclude. Keeping it float leaves the image unquantized: an 8-bit quantizer
 * over the normalized input (ImageNet mean/std: range about [-2.12, 2.64], step 0.0187) is coarser than
 * the photo's own 8-bit grid (1/(255·std) = 0.0171–0.0175), so it merges neighbouring pixel levels.
 * Measured on the model fine-tuned on tf_flowers-dev (mobilenetv2-fp32 backbone, 100 val photos):
 * all int8 0.870 against fp32 0.880; with this unit float (Conv_0, Conv_2) 0.900.
 */
export function inputLayerUnit(floatModel: OnnxModel): string[] {
  const g = floatModel.graph;
  const inputs = new Set(g.input.map((v) => v.name));
  const consumers = consumerMap(g);
  const out = new Set<string>();
  for (const n of g.node) {
    if (!['Conv', 'Gemm', 'MatMul'].includes(n.opType ?? '') || !inputs.has(n.input[0]!)) continue;
    out.add(nodeKey(n));
    for (const c of consumers.get(foldedOutput(consumers, n)) ?? []) out.add(nodeKey(c));
  }
  return [...out];
}
