// Model card layers from what a model file says, browser-safe: the embedded `edgetune.model`
// metadata, the graph signature, and the assumed ImageNet habits for what nothing says. The Node
// side (models/describe.ts) adds the registry entry and label files; the kiosk page calls
// `cardFromBytes` directly for models it imports or trains.

import { EdgetuneError, messageOf } from '../core/errors.js';
import { parseModelInfo, readMetadataProps, type EmbeddedModelInfo } from '../core/metadata.js';
import { mergeCard, type CardLayer, type CardSource, type ModelCard } from '../core/model-card.js';
import { DEFAULT_SPEC, checkSpec, type PreprocessSpec } from '../image/preprocess.js';
import { graphSignature, type SignatureEntry } from '../onnx/graph.js';
import { decodeModel } from '../onnx/model.js';

/** Inputs and outputs as the graph declares them. */
export interface GraphSignature {
  inputs: SignatureEntry[];
  outputs: SignatureEntry[];
}

/** The card layer embedded `edgetune.model` metadata gives. */
export function embeddedLayer(info: EmbeddedModelInfo): CardLayer {
  return {
    preprocess: { ...info.preprocess },
    labels: info.labels,
    labelOffset: info.labelOffset ?? 0,
    outputKind: info.outputKind,
    ...(info.outputName ? { outputName: info.outputName } : {}),
    ...(info.provenance ? { provenance: info.provenance } : {}),
  };
}

/** Output row size of the first output (dynamic dims counted as 1). */
export function outputSize(sig: GraphSignature): number {
  return sig.outputs[0]!.shape.reduce<number>((n, d) => n * (typeof d === 'number' && d > 0 ? d : 1), 1);
}

/**
 * What the graph alone says (names, input size, layout, channels, dtype), and, as the `assumed`
 * layer, the ImageNet habits for the rest (labels: `assumedLabels`, default class numbers).
 * `described`: a higher layer describes the input, so assumptions are not listed and a non-image
 * input is allowed. Throws EMODEL when nothing describes the input and it is not an image tensor.
 */
export function graphLayers(
  id: string,
  sig: GraphSignature,
  described: boolean,
  assumedLabels?: (outputs: number) => { labels: string[]; labelOffset: number; note: string } | undefined,
): { graph: CardLayer; assumed: CardLayer; assumptions: string[] } {
  const input = sig.inputs[0]!;
  const output = sig.outputs[0]!;
  const shape = input.shape;
  const isImage = shape.length === 4 && (shape[1] === 1 || shape[1] === 3 || shape[3] === 1 || shape[3] === 3);
  const isFloat = input.type === 'float32' || input.type === 'float16';
  if (!described && (!isImage || !isFloat)) {
    throw new EdgetuneError(
      'EMODEL',
      `input "${input.name}" is ${input.type} [${shape.join(',')}], not an image tensor (expected float [N,3,H,W] or [N,H,W,3]); add a registry entry for this model`,
      { subject: input.name },
    );
  }
  const graph: CardLayer = { id, inputName: input.name, outputName: output.name };
  const assumptions: string[] = [];
  let channels: 1 | 3 = 3;
  if (isImage) {
    const nchw = shape[1] === 1 || shape[1] === 3;
    const dims = nchw ? [shape[2], shape[3]] : [shape[1], shape[2]];
    const [h, w] = dims.map((d) => (typeof d === 'number' && d > 0 ? d : undefined));
    channels = (nchw ? shape[1] : shape[3]) as 1 | 3;
    graph.preprocess = { channels, layout: nchw ? 'NCHW' : 'NHWC', ...(w ? { width: w } : {}), ...(h ? { height: h } : {}) };
    if (isFloat) graph.preprocess.dtype = input.type as PreprocessSpec['dtype'];
    if (!described) assumptions.push(`layout ${nchw ? 'NCHW' : 'NHWC'} ${w ?? DEFAULT_SPEC.width}x${h ?? DEFAULT_SPEC.height} from the input shape`);
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
  if (!described) {
    assumptions.push(channels === 3 ? 'RGB, x/255, ImageNet mean/std' : 'grayscale 0..1', 'shorter side resized and centre-cropped');
    assumptions.push(named ? named.note : `${n} unnamed classes`);
    assumptions.push('softmax applied unless outputs already sum to 1');
  }
  return { graph, assumed, assumptions };
}

export interface CardFromBytesOptions {
  /** The model's id (registry id or file name). */
  id: string;
  /** How errors name the model (its path). Default `id`. */
  name?: string;
  /** Layers above the file's own: `flags`, `card-file`, `registry`. */
  layers?: Partial<Record<CardSource, CardLayer>>;
  /** Labels to assume for an undescribed model with this many outputs (e.g. ImageNet for 1000/1001). */
  assumedLabels?: (outputs: number) => { labels: string[]; labelOffset: number; note: string } | undefined;
}

/**
 * The card of a model held in memory: its embedded metadata and graph signature merged with the
 * given layers by the card rule. Errors: EMODEL naming `name` when the bytes are not a readable ONNX
 * model, declare no inputs/outputs, or carry `edgetune.model` metadata that breaks its contract
 * (`<name>: edgetune.model: labels[2]: expected string but received 3`).
 */
export function cardFromBytes(bytes: Uint8Array, o: CardFromBytesOptions): { card: ModelCard; signature: GraphSignature; embedded?: EmbeddedModelInfo } {
  const name = o.name ?? o.id;
  let signature: GraphSignature;
  try {
    signature = graphSignature(decodeModel(bytes).graph);
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${name}: not a readable ONNX model (${messageOf(err)})`, { subject: name });
  }
  if (!signature.inputs.length || !signature.outputs.length) {
    throw new EdgetuneError('EMODEL', `${name}: the graph declares no ${signature.inputs.length ? 'outputs' : 'inputs'}`, { subject: name });
  }
  let props: Record<string, string> = {};
  try {
    props = readMetadataProps(bytes);
  } catch {
    // the graph decoded, so unreadable metadata only means no description
  }
  // A model that carries `edgetune.model` but breaks its contract is an error naming the field.
  const embedded: EmbeddedModelInfo | undefined = parseModelInfo(props, name);
  const layers: Partial<Record<CardSource, CardLayer>> = { ...o.layers };
  if (embedded) layers.embedded = embeddedLayer(embedded);
  const described = Boolean(layers.embedded?.preprocess || layers.registry?.preprocess || layers['card-file']?.preprocess || layers.flags?.preprocess);
  const g = graphLayers(o.id, signature, described, o.assumedLabels);
  layers.graph = g.graph;
  layers.assumed = g.assumed;
  const card = mergeCard(layers, g.assumptions);
  card.preprocess = checkSpec(card.preprocess);
  return { card, signature, ...(embedded ? { embedded } : {}) };
}
