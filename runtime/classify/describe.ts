// Model card layers from what a model file says, browser-safe: the embedded `edgetune.model`
// metadata, the graph signature, and the assumed ImageNet habits for what nothing says. The Node
// side (models/describe.ts) adds the registry entry and label files; the kiosk page calls
// `cardFromBytes` directly for models it imports or trains.

import { EdgetuneError, messageOf } from '../core/errors.js';
import { placeholderKind } from '../core/text.js';
import { parseModelInfo, readMetadataProps, type EmbeddedModelInfo } from '../core/metadata.js';
import { decideLabels } from '../core/labels.js';
import { CARD_SOURCES, mergeCard, type CardLayer, type CardSource, type ModelCard, type ModelTask } from '../core/model-card.js';
import { DEFAULT_SPEC, checkSpec } from '../image/preprocess.js';
import { graphSignature, type SignatureEntry } from '../onnx/graph.js';
import { decodeModel, type OnnxModel } from '../onnx/model.js';

/** Inputs and outputs as the graph declares them. */
export interface GraphSignature {
  inputs: SignatureEntry[];
  outputs: SignatureEntry[];
}

/** The card layer embedded `edgetune.model` metadata gives. */
export function embeddedLayer(info: EmbeddedModelInfo): CardLayer {
  return {
    preprocess: { ...info.preprocess },
    // an empty list (an import with no label file) names nothing: the lower layers' labels apply
    ...(info.labels.length ? { labels: info.labels } : {}),
    // absent: decided from the counts by the label rule (core/labels.ts), not assumed 0
    ...(info.labelOffset !== undefined ? { labelOffset: info.labelOffset } : {}),
    outputKind: info.outputKind,
    ...(info.task ? { task: info.task } : {}),
    ...(info.outputName ? { outputName: info.outputName } : {}),
    ...(info.embedding ? { embedding: { ...info.embedding } } : {}),
    ...(info.openSet ? { openSet: { ...info.openSet } } : {}),
    ...(info.provenance ? { provenance: info.provenance } : {}),
  };
}

/**
 * Limits on what a model file (or its card) may declare, checked when the card is made, before
 * anything is allocated from them: a model declaring a 30000×30000 input would otherwise make every
 * photo a 10 GB float tensor, and an output of [1, 1e8] 1e8 label strings.
 * - MAX_INPUT_SIDE: each side of the image input, in pixels (the largest common classifier input is
 *   600 (EfficientNet-B7); 4096 leaves room and keeps one float32 RGB image under 202 MB).
 * - MAX_CLASSES: outputs of the scores row (ImageNet-21k has 21 843 classes).
 */
export const MODEL_LIMITS = { MAX_INPUT_SIDE: 4096, MAX_CLASSES: 100_000 } as const;

/** Throws EMODEL naming the model when its declared input size or class count is past MODEL_LIMITS. */
export function checkDeclaredSizes(name: string, what: { width?: number; height?: number; classes?: number; source?: string }): void {
  const { MAX_INPUT_SIDE, MAX_CLASSES } = MODEL_LIMITS;
  const from = what.source ? ` (from ${what.source})` : '';
  if ((what.width ?? 0) > MAX_INPUT_SIDE || (what.height ?? 0) > MAX_INPUT_SIDE) {
    throw new EdgetuneError('EMODEL', `${name}: declares a ${what.width}x${what.height} input${from}, over the limit of ${MAX_INPUT_SIDE} pixels a side; refused before allocating anything`, { subject: name });
  }
  if ((what.classes ?? 0) > MAX_CLASSES) {
    throw new EdgetuneError('EMODEL', `${name}: declares ${what.classes} outputs per image${from}, over the limit of ${MAX_CLASSES} classes; refused before allocating anything`, { subject: name });
  }
}

/**
 * Scores per image of an output: the product of its non-batch axes ([C] for a rank-1 output), or
 * undefined when one of them is dynamic. 0 when an axis is 0 (a zero-unit Dense).
 */
export function classCount(output: SignatureEntry): number | undefined {
  const rest = output.shape.length > 1 ? output.shape.slice(1) : output.shape;
  let n = 1;
  for (const d of rest) {
    if (typeof d !== 'number' || d < 0) return undefined;
    n *= d;
  }
  return n;
}

/** Output row size of the first output (dynamic dims counted as 1). */
export function outputSize(sig: GraphSignature): number {
  return sig.outputs[0]!.shape.reduce<number>((n, d) => n * (typeof d === 'number' && d > 0 ? d : 1), 1);
}

/**
 * What the graph alone says (names, input size, layout, channels, dtype), and, as the `assumed`
 * layer, the ImageNet habits for the rest (labels: `assumedLabels`, default class numbers). `task`
 * (absent: classification) words the label note: a regression model's outputs are values, not classes.
 */
export function graphLayers(
  id: string,
  sig: GraphSignature,
  assumedLabels?: (outputs: number) => { labels: string[]; labelOffset: number; note: string } | undefined,
  task?: ModelTask,
): { graph: CardLayer; assumed: CardLayer; labelNote: string } {
  const input = sig.inputs[0]!;
  const output = sig.outputs[0]!;
  const shape = input.shape;
  const graph: CardLayer = { id, inputName: input.name, outputName: output.name };
  let channels: 1 | 3 = 3;
  if (isImageInput(input)) {
    const nchw = shape[1] === 1 || shape[1] === 3;
    const dims = nchw ? [shape[2], shape[3]] : [shape[1], shape[2]];
    const [h, w] = dims.map((d) => (typeof d === 'number' && d > 0 ? d : undefined));
    channels = (nchw ? shape[1] : shape[3]) as 1 | 3;
    graph.preprocess = { channels, layout: nchw ? 'NCHW' : 'NHWC', ...(w ? { width: w } : {}), ...(h ? { height: h } : {}) };
    if (input.type === 'float32' || input.type === 'float16') graph.preprocess.dtype = input.type;
  }
  const assumed: CardLayer = {
    preprocess: {
      ...DEFAULT_SPEC,
      channels,
      colorOrder: channels === 1 ? 'GRAY' : 'RGB',
      mean: channels === 1 ? [0] : DEFAULT_SPEC.mean,
      std: channels === 1 ? [1] : DEFAULT_SPEC.std,
    },
    outputKind: 'auto',
    labelOffset: 0,
  };
  const n = outputSize(sig);
  const named = assumedLabels?.(n);
  if (named) {
    assumed.labels = named.labels;
    assumed.labelOffset = named.labelOffset;
  } else {
    assumed.labels = Array.from({ length: n }, (_, i) => String(i));
  }
  const unnamed = task === 'regression' ? `${n} unnamed values (named by their index, 0 to ${n - 1})` : `${n} unnamed classes`;
  return { graph, assumed, labelNote: named ? named.note : unnamed };
}

/** Whether an input is an image tensor edgetune can feed: float [N,C,H,W] or [N,H,W,C] with C = 1 or 3. */
export function isImageInput(input: SignatureEntry): boolean {
  const s = input.shape;
  return s.length === 4 && (s[1] === 1 || s[1] === 3 || s[3] === 1 || s[3] === 3) && (input.type === 'float32' || input.type === 'float16');
}

/**
 * Whether an output is one row of class scores per image: [N, C], [N, C, 1, 1] or [C] (at most one
 * non-batch axis longer than 1). An image-shaped output ([N, 3, 224, 224]) is not.
 */
export function isScoresOutput(output: SignatureEntry): boolean {
  const rest = output.shape.length > 1 ? output.shape.slice(1) : output.shape;
  return rest.filter((d) => !(typeof d === 'number' && d === 1)).length <= 1;
}

/**
 * Refuse, once at load, a card the graph cannot honour (what onnxruntime would otherwise reject on
 * every image): an input or output name the graph does not have, a channel count, layout or input size
 * that differs from the input's static shape, or a fixed batch other than 1 (edgetune runs one image,
 * or a dynamic batch, per session.run). Errors: EMODEL naming the model, the field and its source.
 */
export function checkCardAgainstGraph(card: ModelCard, sig: GraphSignature, name: string): void {
  const fail = (msg: string) => {
    throw new EdgetuneError('EMODEL', `${name}: ${msg}`, { subject: name });
  };
  const from = (k: string) => card.sources[k] ?? 'the card';
  const list = (xs: SignatureEntry[]) => xs.map((x) => `"${x.name}"`).join(', ');
  const input = sig.inputs.find((i) => i.name === card.inputName);
  if (!input) fail(`the card names input "${card.inputName}" (from ${from('inputName')}), but the graph's inputs are ${list(sig.inputs)}`);
  if (!sig.outputs.some((o) => o.name === card.outputName)) fail(`the card names output "${card.outputName}" (from ${from('outputName')}), but the graph's outputs are ${list(sig.outputs)}`);
  const s = input!.shape;
  if (s.length !== 4) return;
  const shape = `[${s.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d || '?'))).join(',')}]`;
  const p = card.preprocess;
  const nchw = p.layout === 'NCHW';
  const [c, h, w] = nchw ? [s[1], s[2], s[3]] : [s[3], s[1], s[2]];
  const fixed = (d: unknown): d is number => typeof d === 'number' && d > 0;
  if (fixed(c) && c !== p.channels) {
    fail(`the card says ${p.channels} channel(s) in ${p.layout} (preprocess.channels from ${from('preprocess.channels')}, layout from ${from('preprocess.layout')}), but input "${input!.name}" is ${shape}: ${nchw ? 'axis 1' : 'axis 3'} is ${c}`);
  }
  if ((fixed(h) && h !== p.height) || (fixed(w) && w !== p.width)) {
    fail(`the card says ${p.width}x${p.height} (preprocess.width from ${from('preprocess.width')}), but input "${input!.name}" is ${shape} (${w}x${h}, ${p.layout})`);
  }
  if (fixed(s[0]) && s[0] !== 1) {
    fail(`input "${input!.name}" is ${shape}: a fixed batch of ${s[0]} images; edgetune runs one image (or a dynamic batch) per run: export the model with batch 1 or a dynamic batch`);
  }
}

/** Plain sentences for what the merged card had to assume (empty for a fully described model). */
function assumptionsOf(card: ModelCard, labelNote: string): string[] {
  const assumed = (k: string) => card.sources[k] === 'assumed';
  const p = card.preprocess;
  const out: string[] = [];
  const pixel = ['colorOrder', 'range', 'mean', 'std'] as const;
  if (pixel.every((k) => assumed(`preprocess.${k}`))) {
    out.push(`layout ${p.layout} ${p.width}x${p.height} from the input shape`);
    out.push(p.channels === 3 ? 'RGB, x/255, ImageNet mean/std' : 'grayscale 0..1');
  } else {
    for (const k of pixel) if (assumed(`preprocess.${k}`)) out.push(`${k} ${JSON.stringify(p[k])}`);
  }
  if (assumed('preprocess.width') || assumed('preprocess.height')) out.push(`input size ${p.width}x${p.height} (the graph's is dynamic)`);
  if (assumed('preprocess.resize') || assumed('preprocess.crop')) out.push('shorter side resized and centre-cropped');
  if (assumed('labels')) out.push(labelNote);
  if (assumed('outputKind')) out.push(card.task === 'multilabel' ? 'outputs read as logits (the graph does not end in Sigmoid): a sigmoid applied to each' : 'softmax applied unless outputs already sum to 1');
  return out;
}

/** Ops that pass a Sigmoid's values through (an int8 model's Q/DQ pair, reshapes). */
const VALUE_PRESERVING = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'QuantizeLinear', 'DequantizeLinear']);

/** Tensors that hold a Sigmoid's output: its own, and those of value-preserving ops after it (so a float model and its int8 copy read alike). */
function sigmoidTensors(nodes: readonly { opType?: string | null; input: readonly string[]; output: readonly string[] }[]): Set<string> {
  const out = new Set<string>();
  for (const n of nodes) {
    if (n.opType === 'Sigmoid' || (VALUE_PRESERVING.has(n.opType ?? '') && n.input[0] !== undefined && out.has(n.input[0]))) for (const o of n.output) out.add(o);
  }
  return out;
}

/** How cardFromBytes / cardFromSignature name, layer and check a model's card. */
export interface CardFromBytesOptions {
  /** The model's id (registry id or file name). */
  id: string;
  /** How errors name the model (its path). Default `id`. */
  name?: string;
  /** Layers above the file's own: `flags`, `card-file`, `registry`. */
  layers?: Partial<Record<CardSource, CardLayer>>;
  /** The file a layer was read from (`card-file`: the `.card.json` path), named in label errors after the source. */
  layerFiles?: Partial<Record<CardSource, string>>;
  /** Describe a model whose output is not class scores (a backbone, an embedding extractor). Default false. */
  allowNonClassifier?: boolean;
  /** Labels to assume for an undescribed model with this many outputs (e.g. ImageNet for 1000/1001). */
  assumedLabels?: (outputs: number) => { labels: string[]; labelOffset: number; note: string } | undefined;
  /** The model `bytes` decode to, when the caller decoded it already (it is not decoded again). */
  model?: OnnxModel;
  /**
   * Graph tensors a Sigmoid node produces (cardFromBytes reads them from the graph). A multilabel
   * model whose card leaves outputKind `auto` gets `probabilities` when its output is one of them,
   * else `logits`: decided once per model, never per row.
   */
  sigmoidOutputs?: ReadonlySet<string>;
}

/**
 * The card of a model held in memory: its embedded metadata and graph signature merged with the
 * given layers by the card rule. Errors: EMODEL naming `name` when the bytes are not a readable ONNX
 * model, declare no inputs/outputs, or carry `edgetune.model` metadata that breaks its contract
 * (`<name>: edgetune.model: labels[2]: expected string but received 3`).
 */
export function cardFromBytes(bytes: Uint8Array, o: CardFromBytesOptions): { card: ModelCard; signature: GraphSignature; embedded?: EmbeddedModelInfo } {
  const name = o.name ?? o.id;
  if (bytes.byteLength === 0) throw new EdgetuneError('EMODEL', `${name}: empty file (0 bytes), not an ONNX model`, { subject: name });
  let signature: GraphSignature;
  let sigmoidOutputs: Set<string>;
  try {
    const graph = (o.model ?? decodeModel(bytes)).graph;
    signature = graphSignature(graph);
    sigmoidOutputs = sigmoidTensors(graph.node);
  } catch (err) {
    const instead = placeholderKind(bytes);
    throw new EdgetuneError('EMODEL', instead ? `${name}: ${instead}` : `${name}: not a readable ONNX model (${messageOf(err)})`, { subject: name });
  }
  if (!signature.inputs.length || !signature.outputs.length) {
    throw new EdgetuneError('EMODEL', `${name}: the graph declares no ${signature.inputs.length ? 'outputs' : 'inputs'}`, { subject: name });
  }
  let props: Record<string, string> = {};
  try {
    props = o.model ? Object.fromEntries(o.model.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])) : readMetadataProps(bytes);
  } catch {
    // the graph decoded, so unreadable metadata only means no description
  }
  // A model that carries `edgetune.model` but breaks its contract is an error naming the field.
  const embedded: EmbeddedModelInfo | undefined = parseModelInfo(props, name);
  const layers: Partial<Record<CardSource, CardLayer>> = { ...o.layers };
  if (embedded) layers.embedded = embeddedLayer(embedded);
  const card = cardFromSignature(signature, { sigmoidOutputs, ...o, layers });
  return { card, signature, ...(embedded ? { embedded } : {}) };
}

/**
 * The card of a model known by its signature (a served model: runtime/serve/client.ts reads it from
 * the server's metadata) and `o.layers` (the served card as `embedded`), merged by the card rule.
 * Errors as cardFromBytes (not an image input, not class scores).
 */
export function cardFromSignature(signature: GraphSignature, o: CardFromBytesOptions): ModelCard {
  const name = o.name ?? o.id;
  const layers: Partial<Record<CardSource, CardLayer>> = { ...o.layers };
  // the graph's own sizes are bounded before graphLayers numbers its outputs (one label string each)
  checkDeclaredSizes(name, { classes: outputSize(signature), source: 'the graph' });
  // the task is the highest layer's that says one (the card rule): a regression model's values are never named by ImageNet's classes
  const task = CARD_SOURCES.map((s) => layers[s]?.task).find((t) => t !== undefined);
  const g = graphLayers(o.id, signature, task === 'regression' ? undefined : o.assumedLabels, task);
  layers.graph = g.graph;
  layers.assumed = g.assumed;
  const card = mergeCard(layers);
  if (card.task === 'regression' && card.sources.outputKind === 'assumed') {
    // a regression model's outputs are its values, read as they are (toProbabilities never changes them):
    // the layer that says "regression" says that too, nothing is assumed (it used to read "softmax applied
    // unless outputs already sum to 1", and classify did soften the values into a distribution)
    card.outputKind = 'probabilities';
    card.sources.outputKind = card.sources.task!;
  }
  if (card.task === 'multilabel' && card.outputKind === 'auto') {
    // decided once per model from the graph, never from a row's values (a logit of 0.4 is in [0, 1] too)
    const sigmoid = o.sigmoidOutputs?.has(card.outputName) ?? false;
    card.outputKind = sigmoid ? 'probabilities' : 'logits';
    if (sigmoid) card.sources.outputKind = 'graph';
  }
  const input = signature.inputs.find((i) => i.name === card.inputName) ?? signature.inputs[0]!;
  if (card.sources['preprocess.layout'] !== 'graph' && !['flags', 'card-file', 'embedded', 'registry'].includes(card.sources['preprocess.layout']!) && !isImageInput(input)) {
    throw new EdgetuneError(
      'EMODEL',
      `input "${input.name}" is ${input.type} [${input.shape.join(',')}], not an image tensor (expected float [N,3,H,W] or [N,H,W,3]); describe the model with a card (edgetune card) or a registry entry`,
      { subject: input.name },
    );
  }
  card.preprocess = checkSpec(card.preprocess);
  const said: Record<string, string> = { graph: 'the graph', 'card-file': 'its card file', embedded: 'its embedded edgetune.model metadata', flags: 'the flags', registry: 'its registry entry', assumed: 'the defaults' };
  checkDeclaredSizes(name, { width: card.preprocess.width, height: card.preprocess.height, source: said[card.sources['preprocess.width'] ?? ''] ?? 'its card' });
  card.assumptions = assumptionsOf(card, g.labelNote);
  checkCardAgainstGraph(card, signature, name);
  const output = signature.outputs.find((x) => x.name === card.outputName) ?? signature.outputs[0]!;
  if (!o.allowNonClassifier && !isScoresOutput(output)) {
    throw new EdgetuneError(
      'EMODEL',
      `${name}: output "${output.name}" is [${output.shape.join(',')}]: not one row of class scores per image (expected [N, classes] or [N, classes, 1, 1]); edgetune classifies with classifier models`,
      { subject: name },
    );
  }
  if (!o.allowNonClassifier) {
    // Labels and offset are decided together (core/labels.ts): an offset counts only when the labels'
    // layer or a higher one states it; otherwise the counts decide, and a list that fits no way is refused.
    const rank = (s: string | undefined) => (s === undefined ? Infinity : CARD_SOURCES.indexOf(s as CardSource));
    const labelsFrom = card.sources.labels ?? 'assumed';
    const stated = rank(card.sources.labelOffset) <= rank(labelsFrom);
    const d = decideLabels({
      labels: card.labels,
      labelsFrom,
      ...(stated ? { offset: card.labelOffset, offsetFrom: card.sources.labelOffset } : {}),
      outputs: classCount(output),
      model: name,
      ...(card.task ? { task: card.task } : {}),
      ...(o.layerFiles ? { files: o.layerFiles } : {}),
    });
    card.labels = d.labels;
    card.labelOffset = d.labelOffset;
    if (!stated) card.sources.labelOffset = labelsFrom;
    card.labelReason = d.reason;
  }
  return card;
}
