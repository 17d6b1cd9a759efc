// `edgetune card <model> [options] --out X.onnx`: embed the model's card (what the registry, a card
// file and the flags say, merged) in the ONNX metadata (`edgetune.model`), so the written file stands
// alone: every command, the kiosk and the library then describe it from the file itself.

import { describeModel } from '../../../models/describe.js';
import { EdgetuneError } from '../../core/errors.js';
import { METADATA_KEY, modelInfoOfCard } from '../../core/metadata.js';
import { undescribedFields } from '../../core/model-card.js';
import { checkWritable, writeAtomic } from '../../io/atomic.js';
import { setMetadataValue } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/model.js';
import { loadModelFile } from '../../io/model-file.js';
import { onnxPathOption, parse, type Command } from '../args.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune card <model> --out <file.onnx> [options]

Write a copy of the model with its card embedded in the ONNX metadata (labels, preprocessing, label
offset, output kind, embedding tensor), so the file alone describes it. Fields nothing describes are
refused unless --allow-assumed is given (then the assumed values are embedded and listed).

Options:
  --out <file.onnx>   the output model (replaced atomically; another file than the input)
  --allow-assumed     embed assumed values too
${CARD_USAGE}`;

export const card: Command = {
  summary: 'embed a model card (labels, preprocessing) in an ONNX file',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, { out: { type: 'string', path: 'file' }, 'allow-assumed': { type: 'boolean', default: false }, ...CARD_OPTIONS });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `card: give one model (received ${positionals.length})\n\n${usage}`);
    if (!v.out) throw new EdgetuneError('EARG', `card: --out is required\n\n${usage}`);
    const out = v.out;
    await checkWritable(out, '--out', { inputs: [positionals[0], v.labels] });
    // an ONNX file: `--out m.card.json` wrote the model where every command then reads m.onnx's card file
    // ("m.card.json: model card is not valid JSON" from then on)
    onnxPathOption('out', out);
    const d = await describeModel(positionals[0]!, { overrides: await cardLayerFrom(v) });
    // a registry id resolves to a file only now: it is not replaced either
    await checkWritable(out, '--out', { inputs: [d.path, d.importedFrom] });
    const c = d.card;
    const assumed = undescribedFields(c, 'card');
    if (assumed.length && !v['allow-assumed']) {
      throw new EdgetuneError('EARG', `nothing says ${assumed.join(', ')} for ${d.path}: give them with flags or a card file (or --allow-assumed to embed the assumed values: ${c.assumptions.join('; ')})`);
    }
    const info = modelInfoOfCard(c, 'edgetune card');
    const { model } = await loadModelFile(d.path); // external data inlined: one self-contained file
    setMetadataValue(model, METADATA_KEY, JSON.stringify(info));
    await writeAtomic(out, encodeModel(model));
    // a regression model's outputs are values read as they are (its outputKind changes nothing); named
    // only when something named them (assumed names are their indices)
    const reads = c.task === 'regression' ? [`${c.labels.length}${c.sources.labels === 'assumed' ? '' : ' named'} values`, 'regression'] : [`${c.labels.length} labels`, info.outputKind];
    io.stdout.write(`edgetune card: wrote ${out} (${reads[0]}, ${c.preprocess.width}x${c.preprocess.height} ${c.preprocess.colorOrder}, ${reads[1]})\n`);
    if (assumed.length) io.stderr.write(`edgetune card: embedded assumed values: ${c.assumptions.join('; ')}\n`);
    return 0;
  },
};
