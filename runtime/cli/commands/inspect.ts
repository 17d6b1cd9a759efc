// `edgetune inspect <model>`: print a model's card (what edgetune will feed it and how it reads its
// answer) and where each field came from: registry, embedded, card file, flags, graph or assumed.

import { describeModel } from '../../../models/describe.js';
import { EdgetuneError } from '../../core/errors.js';
import { cardFilePath, type OpenSetSpec } from '../../core/model-card.js';
import { parse, writeJson, type Command } from '../args.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune inspect <model> [options]

Print the model card: input, preprocessing, labels, output kind and embedding tensor, each with where
it came from (registry, embedded in the file, <model>.card.json, flags, the graph, or assumed), and
why the labels and label offset are what they are (the label rule: counts against the output size).

Options:
  --json              the card as one JSON object (with "sources" and "assumptions")
${CARD_USAGE}`;

function show(v: unknown): string {
  if (Array.isArray(v)) return v.length > 6 ? `[${v.slice(0, 3).map(show).join(', ')}, … ${v.length} in all]` : `[${v.map(show).join(', ')}]`;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The open-set calibration in one line: `mahalanobis on unknown_score: "unknown" above 1, temperature 0.872, keeps 95% of validation images; per-class covariance of 603_quantized, 612_quantized`. */
function openSetLine(o: OpenSetSpec): string {
  const kept = o.kept === undefined ? '' : `, keeps ${Math.round(o.kept * 100)}% of ${o.fittedOn ?? 'validation'} images`;
  const of = o.layers?.length ? `of ${o.layers.join(', ')}` : 'of the embedding';
  return `${o.method} on ${o.output}: "unknown" above ${o.threshold}, temperature ${o.temperature.toFixed(3)}${kept}; ${o.covariance ?? 'shared'} covariance ${of}`;
}

export const inspect: Command = {
  summary: "print a model's card and where each field came from",
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, { json: { type: 'boolean', default: false }, ...CARD_OPTIONS });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `inspect: give one model (received ${positionals.length})\n\n${usage}`);
    const d = await describeModel(positionals[0]!, { overrides: await cardLayerFrom(v) });
    const { card } = d;
    if (v.json) {
      writeJson(io, { file: d.path, ...(d.importedFrom ? { importedFrom: d.importedFrom } : {}), ...card });
      return 0;
    }
    const src = (k: string) => card.sources[k] ?? '-';
    const rows: [string, unknown, string][] = [
      ['id', card.id, src('id')],
      ['input', `${card.inputName} ${d.signature.inputs.find((i) => i.name === card.inputName)?.type ?? '?'} [${d.signature.inputs.find((i) => i.name === card.inputName)?.shape.join(',') ?? ''}]`, src('inputName')],
      ['output', card.outputName, src('outputName')],
      ...Object.entries(card.preprocess).map(([k, val]) => [`preprocess.${k}`, val, src(`preprocess.${k}`)] as [string, unknown, string]),
      ['labels', card.labels, src('labels')],
      ['labelOffset', card.labelOffset, src('labelOffset')],
      ['outputKind', card.outputKind, src('outputKind')],
      ['embedding', card.embedding?.tensor ?? '(found from the graph)', src('embedding')],
      ...(card.task ? [['task', card.task, src('task')] as [string, unknown, string]] : []),
      ...(card.openSet ? [['openSet', openSetLine(card.openSet), src('openSet')] as [string, unknown, string]] : []),
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    io.stdout.write(d.importedFrom ? `${d.importedFrom} (converted to ${d.path})\n` : `${d.path}\n`);
    for (const [k, val, s] of rows) io.stdout.write(`  ${k.padEnd(w)}  ${show(val)}  (${s})\n`);
    if (card.labelReason) io.stdout.write(`label rule: ${card.labelReason}\n`);
    if (card.assumptions.length) io.stdout.write(`assumed: ${card.assumptions.join('; ')}\n`);
    io.stdout.write(`card file: ${cardFilePath(d.importedFrom ?? d.path)}${card.sources.labels === 'card-file' || Object.values(card.sources).includes('card-file') ? '' : ' (none)'}\n`);
    return 0;
  },
};
