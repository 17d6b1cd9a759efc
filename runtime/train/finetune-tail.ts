// Phase 2 of a fine-tune (the course's step 5): unfreeze the last blocks of the backbone and train
// them together with the head at a low learning rate, through ONNX training graphs
// (runtime/train/graph/) that any ONNX Runtime backend runs. Browser-safe: the session factory and the
// cut activations (the frozen part run by the driver; phase2.ts streams them a mini-batch at a time) are injected.
//
//   const plan = planUnfreeze(backboneModel, embeddingTensor, 2);      // where to cut, BN folded
//   …driver embeds views at plan.cut.cut with an Embedder over plan.cut.frozen (in memory, or a TailStream)…
//   const r = await trainUnfrozen(plan, { head, classes, train, val, createSession }, config);
//   const model = unfrozenBackbone(plan, r);                           // frozen part + tuned tail
//   exportClassifierModel(model, cutSpec, r.head, labels, spec, provenance)
//
// Rules, stated once here:
//   - the backbone must be float: an int8 (QDQ or QOperator) backbone trains through no float weights,
//     so it is refused with the hint to use its fp32 twin (mobilenetv2-fp32 for mobilenetv2-int8);
//   - BatchNormalization is folded into the convolutions before cutting (inference mode: the moving
//     statistics stay frozen, as Keras recommends for fine-tuning on small sets);
//   - the head trained in phase 1 is the starting head (linear or MLP; a prototype head normalises its
//     input and cannot be trained through);
//   - backbone learning rate: UNFREEZE_DEFAULTS.backboneLrRatio × the head's (one tenth), unless given.

import { EdgetuneError, invalidParameter } from '../core/errors.js';
import { checkOptionKeys } from '../core/options.js';
import { DataType, getInitializer, readFloat32 } from '../onnx/graph.js';
import { cloneModel, encodeModel, type OnnxModel } from '../onnx/model.js';
import { foldBatchNorm } from '../onnx/passes/fold-batchnorm.js';
import { isQuantizedGraph } from '../onnx/quantized.js';
import { computeMetrics, predictions, type Metrics } from './index.js';
import type { HeadWeights } from './types.js';
import { cutModel, resolveCut, tailBlocks, type CutResult } from './graph/cut.js';
import { findCut } from './export.js';
import type { InputSize } from './graph/shapes.js';
import { evaluateTail, exportTail, trainTail, TAIL_CONFIG_KEYS, TAIL_HOOK_KEYS, TAIL_INPUT_KEYS, type TailRows, type TailAverage, type TailSchedule, type TailTrainConfig, type TailTrainResult } from './graph/tail-trainer.js';
import { buildTrainingGraph, defaultTrainable } from './graph/autodiff.js';
import type { SessionFactory } from './graph/session.js';

/**
 * Phase-2 defaults (runtime/train/phase2.ts applies them): backbone lr = head lr × backboneLrRatio; epochs,
 * patience, batch size; freshViews: new augmented views every epoch (measured against the same cached
 * views: README "--unfreeze"); schedule of both rates over phase 2's epochs; layer-wise decay of the
 * backbone rate per block (1 = one rate); weight averaging over the epochs (none | swa) and mixup's Beta α
 * (0 = off), both measured no better on beans folds (README "--unfreeze"); refit on training + validation
 * images after the validated run; biases: `finetune`'s frozen blocks whose conv biases train too (BitFit,
 * UnfreezeBiases; 'all': on folds of beans-dev/train +4.2 points over the unfrozen blocks alone; with the
 * never-worse rule at KEEP_Z = 2, held-out beans-dev/val 0.925 against head-only 0.892, cats/dogs and flowers
 * unchanged: README "--unfreeze"; planUnfreeze itself and the page default to 'none'), at biasLrRatio × the
 * head's rate. (cutModel infers the whole graph's shapes, so a backbone with an operator shapes.ts has no rule
 * for fails with or without them; one whose frozen blocks hold an operator without a gradient fails with them only.)
 */
export const UNFREEZE_DEFAULTS = Object.freeze({
  backboneLrRatio: 0.1,
  epochs: 10,
  patience: 3,
  batchSize: 16,
  freshViews: true,
  schedule: 'constant' as TailSchedule,
  layerLrDecay: 1,
  average: 'none' as TailAverage,
  mixup: 0,
  refit: true,
  biases: 'all' as UnfreezeBiases,
  biasLrRatio: 1,
});

/**
 * Which frozen blocks also train their biases in phase 2 (BitFit, Ben Zaken et al. 2022, "BitFit: Simple
 * Parameter-efficient Fine-tuning for Transformer-based Masked Language-models", ACL): `'none'`, `'all'`
 * (every block of the backbone before its embedding), or a block count k (the last k blocks, counted as
 * `unfreeze` counts them; k ≤ the unfrozen count adds nothing). Their weights stay constants of the
 * training graph; the backbone is cut at the deepest of the two, so the frozen part the driver embeds
 * through ends earlier and phase 2 backpropagates through those blocks. With BatchNormalization folded a
 * conv's bias is the BN shift (β − γ·μ/σ), the parameter a domain shift moves most.
 */
export type UnfreezeBiases = 'none' | 'all' | number;

/** Throws EARG (subject unfreezeBiases) unless `b` is 'none', 'all' or a whole number ≥ 1. */
export function checkUnfreezeBiases(b: unknown): asserts b is UnfreezeBiases {
  if (!(b === 'none' || b === 'all' || (Number.isInteger(b) && (b as number) >= 1))) throw invalidParameter('unfreezeBiases', "'none', 'all' or a whole number of blocks (1 or more)", b);
}

export interface UnfreezePlan {
  /** The float backbone with BatchNormalization folded (what the tail's weights are written back into). */
  model: OnnxModel;
  cut: CutResult;
  /** The tail's trainable parameter count. */
  parameters: number;
  /** Blocks unfrozen (the count asked for, or all of them for 'all'); null when the cut was named by a tensor. */
  blocks: number | null;
  /**
   * The tail initializers phase 2 trains (graph inputs of the training graph): every Conv/Gemm/MatMul
   * weight and bias after the unfrozen cut, plus, with `biases`, the conv biases of the blocks before it
   * down to plan.cut.cut (their weights stay constants).
   */
  trainable: string[];
  /** The blocks whose biases train as well (UnfreezeBiases; 'none' without). */
  biases: UnfreezeBiases;
}

/**
 * Where to cut `backbone` for `unfreeze` (a block count from the embedding, `'all'` for every block, or a tensor name) and the
 * two parts. `size` (the preprocessing's input size in pixels and layout) fills the graph input's symbolic spatial
 * dimensions (a fully convolutional backbone with a dynamic height/width, run at the card's or --size's size): the
 * tail's training graph needs static spatial sizes; its static dimensions are kept. Errors: EARG for an int8 backbone
 * (use its fp32 twin), an unfreeze past the input or a tensor that is not a single-path cut.
 */
export function planUnfreeze(
  backbone: OnnxModel,
  embedding: string,
  unfreeze: number | string,
  name = 'the backbone',
  size?: InputSize,
  biases: UnfreezeBiases = 'none',
): UnfreezePlan {
  if (isQuantizedGraph(backbone.graph)) {
    throw new EdgetuneError('EARG', `--unfreeze trains the backbone's float weights, and ${name} is int8: use its fp32 twin (e.g. --model mobilenetv2-fp32 for mobilenetv2-int8), then --int8 to quantize the result`);
  }
  checkUnfreezeBiases(biases);
  const model = cloneModel(backbone);
  foldBatchNorm(model);
  const weightsCut = resolveCut(model, embedding, unfreeze);
  const blocks = unfreeze === 'all' ? tailBlocks(model, embedding).length : typeof unfreeze === 'number' ? unfreeze : null;
  // an unpooled embedding (SqueezeNet's last fire module) ends the tail with the pooling the exported model has
  const pool = findCut(model, embedding).pool;
  const weightsTail = cutModel(model, weightsCut, embedding, { size, pool }).tail;
  const trainable = defaultTrainable(weightsTail);
  // BitFit: cut deeper (at the biases' block) when that adds blocks; their conv biases train too
  let cutName = weightsCut;
  if (biases !== 'none') {
    const deeper = resolveCut(model, embedding, biases === 'all' ? 'all' : Math.min(biases, tailBlocks(model, embedding).length));
    const inWeightsTail = new Set(weightsTail.graph.node.flatMap((n) => n.output));
    const probe = cutModel(model, deeper, embedding, { size, pool }).tail;
    if (probe.graph.node.length > weightsTail.graph.node.length) {
      cutName = deeper;
      for (const n of probe.graph.node) {
        if (n.opType !== 'Conv' || n.output.some((o) => inWeightsTail.has(o))) continue;
        const b = n.input[2];
        const t = b ? getInitializer(probe.graph, b) : undefined;
        if (b && t && (t.dataType ?? 0) === DataType.FLOAT && !trainable.includes(b)) trainable.push(b);
      }
    }
  }
  const cut = cutModel(model, cutName, embedding, { size, pool });
  if (cutName !== weightsCut) {
    // the biases' blocks are backpropagated through: an operator there without a gradient is refused now,
    // before any embedding work, with the option that avoids it (not "unfreeze fewer blocks": that would not)
    try {
      buildTrainingGraph(cut.tail, { head: [{ in: cut.embeddingShape[1] as number, out: 2 }], trainable });
    } catch (e) {
      if (!(e instanceof EdgetuneError) || e.code !== 'EMODEL') throw e;
      throw new EdgetuneError('EARG', `--unfreeze-biases ${biases}: ${e.message.replace(/; unfreeze fewer blocks.*$/, '')}; train the biases of fewer frozen blocks (--unfreeze-biases K) or none (--unfreeze-biases none)`, { subject: e.subject });
    }
  }
  const sizes = new Map(cut.tail.graph.initializer.map((t) => [t.name ?? '', t.dims.reduce((x, y) => x * y, 1)]));
  const parameters = trainable.reduce((a, w) => a + (sizes.get(w) ?? 0), 0);
  return { model, cut, parameters, blocks, trainable, biases };
}

/**
 * Whether phase 2 leaves backbone tensor `tensor` as it was: it is computed in the plan's frozen part
 * (model input → cut, pruned to what the cut needs), so no tuned weight reaches it. finetune keeps the
 * multi-layer open-set score (runtime/train/node/openset-taps.ts) after phase 2 when its taps are frozen.
 */
export function frozenUnder(plan: UnfreezePlan, tensor: string): boolean {
  return plan.cut.frozen.graph.node.some((n) => n.output.includes(tensor));
}

export interface UnfrozenResult extends TailTrainResult {
  /** Metrics of the tuned tail + head on the validation activations (or the training ones without validation). */
  metrics: Metrics;
  validated: boolean;
  /** The same metric for the phase-1 head on the frozen backbone, measured through the same graph (the gain's baseline). */
  before: Metrics;
  /** The logits [n, K] behind `metrics` and `before` (same rows: validation, else training), for the keep rule (phase2.ts). */
  logits: { before: Float32Array; after: Float32Array };
}

/** Phase 2: train the tail and the phase-1 head together on cut activations, in memory or streamed (TailRows; `config` as trainTail's). EARG for a key `input`, `config` or `hooks` does not take. */
export async function trainUnfrozen(
  plan: UnfreezePlan,
  input: { head: HeadWeights; classes: number; train: TailRows; val?: TailRows; createSession: SessionFactory; refresh?: (epoch: number) => Promise<TailRows> },
  config: Partial<TailTrainConfig> = {},
  hooks: Parameters<typeof trainTail>[2] = {},
): Promise<UnfrozenResult> {
  checkOptionKeys('trainUnfrozen', input, TAIL_INPUT_KEYS.filter((k) => k !== 'tail'), 'input');
  checkOptionKeys('trainUnfrozen', config, TAIL_CONFIG_KEYS, 'config');
  checkOptionKeys('trainUnfrozen', hooks, TAIL_HOOK_KEYS, 'hooks');
  if (input.head.normalize) throw new EdgetuneError('EARG', '--unfreeze needs a trained head (linear or mlp): a prototype head normalises its input and cannot be trained through');
  const r = await trainTail({ tail: plan.cut.tail, head: input.head, classes: input.classes, train: input.train, val: input.val, createSession: input.createSession, refresh: input.refresh }, { trainable: plan.trainable, ...config }, hooks);
  const evalSet = input.val ?? input.train;
  const K = input.classes;
  // One eval graph (tail weights and head as inputs) scores both the tuned and the phase-1 weights.
  const graph = buildTrainingGraph(plan.cut.tail, { head: input.head.layers, mode: 'eval', trainable: plan.trainable });
  const original = new Map(plan.cut.tail.graph.initializer.map((t) => [t.name ?? '', t]));
  const session = await input.createSession(encodeModel(graph.model));
  const logitsOf = async (tailWeights: Record<string, Float32Array> | undefined, head: HeadWeights): Promise<Float32Array> => {
    const weights = new Map<string, Float32Array>();
    for (const w of graph.tailWeights) weights.set(w.name, tailWeights?.[w.name] ?? readFloat32(original.get(w.name)!));
    head.layers.forEach((l, i) => weights.set(`head.${i}.weight`, l.weight).set(`head.${i}.bias`, l.bias));
    return evaluateTail(session, graph, evalSet, weights);
  };
  const metricsOf = (logits: Float32Array) => computeMetrics(predictions(logits, K), evalSet.labels, K);
  try {
    const after = await logitsOf(r.tailWeights, r.head);
    const before = await logitsOf(undefined, input.head);
    return { ...r, metrics: metricsOf(after), before: metricsOf(before), logits: { before, after }, validated: Boolean(input.val) };
  } finally {
    await session.dispose();
  }
}

/** The backbone with the tuned tail written back: export it with the head by exportClassifierModel. */
export function unfrozenBackbone(plan: UnfreezePlan, result: Pick<TailTrainResult, 'tailWeights'>): OnnxModel {
  return exportTail(plan.model, result.tailWeights);
}
