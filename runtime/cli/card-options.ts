// The model-card options every command that opens a model shares (--mean, --std, --range/--scale,
// --color-order, --layout, --resize, --crop, --size, --labels, --label-offset, --output-kind,
// --embedding): what the user says about a model, the highest layer of its card.

import { EdgetuneError } from '../core/errors.js';
import type { CardLayer } from '../core/model-card.js';
import type { PreprocessSpec } from '../image/preprocess.js';
import { readLabelsFile } from '../io/labels-file.js';
import { invalidOption, oneOfOption, sizeOption, type OptionValues } from './args.js';

export const CARD_OPTIONS = {
  mean: { type: 'string' },
  std: { type: 'string' },
  range: { type: 'string' },
  scale: { type: 'string' },
  'color-order': { type: 'string' },
  layout: { type: 'string' },
  resize: { type: 'string' },
  crop: { type: 'string' },
  size: { type: 'string' },
  labels: { type: 'string', path: 'file' },
  'label-offset': { type: 'string' },
  'output-kind': { type: 'string' },
  embedding: { type: 'string' },
} as const;

export const CARD_USAGE = `Describing the model (override the registry, the embedded card and a <model>.card.json beside it):
  --mean <a,b,c>      subtracted per channel after --range, in the model's channel order
  --std <a,b,c>       divides per channel after --mean
  --range <lo,hi>     pixel 0..255 mapped onto [lo,hi] (e.g. -1,1 for x/127.5 - 1)
  --scale <s>         shorthand for --range 0,255*s (e.g. 1 for raw 0..255, 0.00392157 for x/255)
  --color-order <o>   RGB, BGR or GRAY
  --layout <l>        NCHW or NHWC
  --size <WxH>        input size, when the graph's is dynamic
  --resize <fit>      cover (shorter side + centre crop), contain (letterbox) or stretch
  --crop <f>          centre-crop fraction for cover, in (0, 1] (0.875: resize to size/0.875 first)
  --labels <file>     class names: one per line, "0 name" lines, or a JSON array
  --label-offset <n>  output index of label 0 (1 when index 0 is a background class)
  --output-kind <k>   logits (softmax applied) or probabilities
  --embedding <name>  the tensor head training cuts at (pooled features)`;

function numbers(name: string, v: string, n: 2): [number, number];
function numbers(name: string, v: string, n?: number): number[];
function numbers(name: string, v: string, n?: number): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const xs = parts.map(Number);
  if (parts.some((p) => p === '') || xs.some((x) => !Number.isFinite(x)) || (n !== undefined && xs.length !== n)) {
    throw invalidOption(name, `${n ?? 'a list of'} comma-separated numbers`, v);
  }
  return xs;
}

/**
 * The card layer the options describe, or undefined when none was given. `--labels` is read here
 * (EINPUT naming the file when it cannot be). Errors: EARG naming the option for a bad value.
 */
export async function cardLayerFrom(v: OptionValues<typeof CARD_OPTIONS>): Promise<CardLayer | undefined> {
  const s = (k: keyof typeof CARD_OPTIONS) => v[k];
  const pre: Partial<PreprocessSpec> = {};
  if (s('mean') !== undefined) pre.mean = numbers('mean', s('mean')!);
  if (s('std') !== undefined) {
    pre.std = numbers('std', s('std')!);
    if (pre.std.some((x) => x === 0)) throw invalidOption('std', 'non-zero numbers', s('std'));
  }
  if (s('range') !== undefined && s('scale') !== undefined) throw new EdgetuneError('EARG', '--range and --scale say the same thing: give one');
  if (s('range') !== undefined) pre.range = numbers('range', s('range')!, 2);
  if (s('scale') !== undefined) {
    const [k] = numbers('scale', s('scale')!, 1);
    if (!(k! > 0)) throw invalidOption('scale', 'a positive number', s('scale'));
    pre.range = [0, 255 * k!];
  }
  if (s('color-order') !== undefined) {
    pre.colorOrder = oneOfOption('color-order', s('color-order')!, ['RGB', 'BGR', 'GRAY'] as const);
    pre.channels = pre.colorOrder === 'GRAY' ? 1 : 3;
  }
  if (s('layout') !== undefined) pre.layout = oneOfOption('layout', s('layout')!, ['NCHW', 'NHWC'] as const);
  if (s('resize') !== undefined) {
    const fit = oneOfOption('resize', s('resize')!, ['cover', 'contain', 'stretch'] as const);
    pre.resize = fit === 'stretch' ? 'fill' : fit;
  }
  if (s('crop') !== undefined) {
    const [c] = numbers('crop', s('crop')!, 1);
    if (!(c! > 0 && c! <= 1)) throw invalidOption('crop', 'number between 0 (exclusive) and 1', s('crop'));
    pre.crop = c!;
  }
  if (s('size') !== undefined) {
    [pre.width, pre.height] = sizeOption('size', s('size')!);
  }
  const layer: CardLayer = {};
  if (Object.keys(pre).length) layer.preprocess = pre;
  if (s('labels') !== undefined) layer.labels = await readLabelsFile(s('labels')!);
  if (s('label-offset') !== undefined) {
    const n = Number(s('label-offset'));
    if (!Number.isInteger(n) || n < 0) throw invalidOption('label-offset', 'integer >= 0', s('label-offset'));
    layer.labelOffset = n;
  }
  if (s('output-kind') !== undefined) layer.outputKind = oneOfOption('output-kind', s('output-kind')!, ['logits', 'probabilities'] as const);
  if (s('embedding') !== undefined) layer.embedding = { tensor: s('embedding')!, dims: 0 };
  return Object.keys(layer).length ? layer : undefined;
}
