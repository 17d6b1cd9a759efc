// `edgetune export <model> --format triton --out <repo>`: write the model as an entry of a Triton
// Inference Server (or KServe) model repository: config.pbtxt, labels.txt and <version>/model.onnx.
// A thin driver over exportTritonRepository() (runtime/fleet/triton.ts).

import { EdgetuneError } from '../../core/errors.js';
import { exportTritonRepository, parseInstanceGroup } from '../../fleet/triton.js';
import { intOption, invalidOption, parse, type Command } from '../args.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune export <model> --format triton --out <repo> [options]

Write <model> (a registry id, an ONNX file, an imported .tflite / tfjs model.json, a fine-tuned
export) as a Triton model repository entry: <repo>/<name>/config.pbtxt, <repo>/<name>/labels.txt and
<repo>/<name>/<version>/model.onnx (the model with its card embedded). Triton and KServe's Triton runtime
serve the folder as it is. What Triton would refuse or mis-serve is refused with the reason.

Options:
  --format triton          the repository layout (only triton)
  --out <repo>             the model repository folder (created when missing)
  --name <name>            entry name (default: the registry id or the file's base name)
  --version <n>            version folder (default 1; one above the highest when the entry exists;
                           the other versions are kept; config.pbtxt describes the highest, which
                           Triton serves)
  --max-batch-size <n>     Triton's max_batch_size (default 8 when every input and output has a
                           dynamic first dimension, else 0; > 0 for a fixed batch is refused)
  --dynamic-batching       let Triton batch single requests (needs max_batch_size > 0)
  --instance-group <k:n>   model instances: cpu:N, gpu:N or auto:N (repeatable)
  --allow-assumed          export even where the card had to assume fields
${CARD_USAGE}`;

export const exportModel: Command = {
  summary: 'write a model as a Triton/KServe model repository entry',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, {
      format: { type: 'string' },
      out: { type: 'string', path: 'folder' },
      name: { type: 'string' },
      version: { type: 'string' },
      'max-batch-size': { type: 'string' },
      'dynamic-batching': { type: 'boolean', default: false },
      'instance-group': { type: 'string', multiple: true },
      'allow-assumed': { type: 'boolean', default: false },
      ...CARD_OPTIONS,
    });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `export: give one model (received ${positionals.length})\n\n${usage}`);
    if (v.format === undefined) throw new EdgetuneError('EARG', `export: --format is required (triton: the only layout written)\n\n${usage}`);
    if (v.format !== 'triton') throw invalidOption('format', 'triton', v.format ?? '');
    if (!v.out) throw new EdgetuneError('EARG', `export: --out is required\n\n${usage}`);
    const r = await exportTritonRepository(positionals[0]!, {
      out: v.out,
      name: v.name,
      version: v.version === undefined ? undefined : intOption('version', v.version, 1),
      maxBatchSize: v['max-batch-size'] === undefined ? undefined : intOption('max-batch-size', v['max-batch-size'], 0, 0),
      dynamicBatching: v['dynamic-batching'],
      instanceGroups: (v['instance-group'] ?? []).map(parseInstanceGroup),
      allowAssumed: v['allow-assumed'],
      overrides: await cardLayerFrom(v),
    });
    const kept = r.kept.length ? `; kept version${r.kept.length > 1 ? 's' : ''} ${r.kept.join(', ')}` : '';
    const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
    const described = r.configVersion !== r.version ? `; config.pbtxt still describes version ${r.configVersion}, which Triton serves` : '';
    io.stdout.write(`edgetune export: wrote ${r.entry} version ${r.version} (max_batch_size ${r.maxBatchSize}, ${n(r.inputs.length, 'input')}, ${n(r.outputs.length, 'output')}, ${n(r.labelLines.length, 'label')}${kept}${described})\n`);
    if (r.assumed.length) io.stderr.write(`edgetune export: exported assumed values: ${r.assumed.join('; ')}\n`);
    return 0;
  },
};
