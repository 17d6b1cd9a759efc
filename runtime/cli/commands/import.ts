// `edgetune import <file> [--labels FILE] --out X.onnx`: convert a TFLite model or a tfjs layers
// model.json (Teachable Machine, Coral) to one self-contained ONNX file with its card embedded, and
// print what was found: input, preprocessing and where it came from, labels, output kind, embedding
// tensor, precision. Every other command also takes such a file directly (`--model x.tflite`).

import path from 'node:path';
import { cardFromBytes } from '../../classify/describe.js';
import { describeModel } from '../../../models/describe.js';
import { importModelFile } from '../../../models/import.js';
import { EdgetuneError } from '../../core/errors.js';
import { checkWritable, writeAtomic } from '../../io/atomic.js';
import { onnxPathOption, parse, writeJson, type Command } from '../args.js';

const usage = `Usage: edgetune import <model.tflite | model.json> --out <file.onnx> [options]

Convert a TFLite model (.tflite: float, uint8 or int8 quantized, e.g. Coral or Teachable Machine
exports) or a TensorFlow.js layers model (model.json with its weight files, e.g. Teachable Machine's
tfjs export) to ONNX, with its labels and preprocessing embedded so the file alone describes it.
Every command also accepts the source file directly as --model (converted once, then cached).

Labels: --labels, else labels.txt beside a .tflite (or the labels packed inside it), else
metadata.json beside a model.json.

Options:
  --out <file.onnx>   the converted model (replaced atomically)
  --labels <file>     class names: one per line, "0 name" lines (Teachable Machine), or a JSON array
  --json              print the written model's card as JSON`;

function fmt(xs: readonly number[]): string {
  return xs.map((x) => String(Math.round(x * 1e6) / 1e6)).join(',');
}

export const importModel: Command = {
  summary: 'convert a TFLite or tfjs (Teachable Machine) model to ONNX with its card embedded',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, { out: { type: 'string', path: 'file' }, labels: { type: 'string', path: 'file' }, json: { type: 'boolean', default: false } });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `import: give one model file (received ${positionals.length})\n\n${usage}`);
    if (!v.out) throw new EdgetuneError('EARG', `import: --out is required\n\n${usage}`);
    const out = v.out;
    // before any work; the model file and the label file read are not outputs
    await checkWritable(out, '--out', { inputs: [positionals[0], v.labels] });
    // and an ONNX file: another name could be one of the other files the import reads (`--out weights.bin`
    // replaced a tfjs model's weights with the converted model; `--out labels.txt` its labels)
    onnxPathOption('out', out);
    const imported = await importModelFile(positionals[0]!, v.labels ? { labels: v.labels } : {});
    // the converted bytes must describe themselves (card contract, label rule) before anything is written
    cardFromBytes(imported.bytes, { id: path.basename(out), name: imported.source, allowNonClassifier: imported.card.output.extractor });
    await writeAtomic(out, imported.bytes);
    const d = await describeModel(out, { allowNonClassifier: true });
    const c = d.card;
    if (v.json) {
      writeJson(io, { file: d.path, source: imported.source, format: imported.format, precision: imported.card.precision, activations: imported.card.activations, ...c });
      return 0;
    }
    const src = imported.card;
    const p = c.preprocess;
    const q = src.sourceInput.quantization;
    const where = { 'input-quantization': "the input's quantization", 'teachable-machine': "Teachable Machine's convention", assumed: 'assumed (nothing in the file says)' }[
      src.preprocessSource
    ];
    const lines = [
      `edgetune import: wrote ${out} (${imported.format === 'tflite' ? 'TFLite' : 'tfjs layers'} ${imported.source})`,
      `  input          ${c.inputName} float32 [${d.signature.inputs[0]?.shape.join(',')}] NCHW (source: ${src.sourceInput.name} ${src.sourceInput.dtype} [${src.sourceInput.shape.join(',')}] ${src.sourceInput.layout}${
        q ? `, scale ${q.scale} zero point ${q.zeroPoint}` : ''
      })`,
      `  preprocess     ${p.width}x${p.height} ${p.channels === 1 ? 'grayscale' : p.colorOrder}, range [${fmt(p.range)}], mean [${fmt(p.mean)}], std [${fmt(p.std)}], ${p.resize}${p.resize === 'cover' ? ` crop ${p.crop}` : ''}`,
      `                 from ${where}`,
      `  labels         ${c.sources.labels !== 'assumed' && c.labels.length ? `${c.labels.length} (${c.labels.slice(0, 3).map((l) => l.split(',')[0]).join(', ')}${c.labels.length > 3 ? ', …' : ''}), label offset ${c.labelOffset}` : 'none'}${
        imported.labelsFrom ? `, from ${imported.labelsFrom}` : ''
      }`,
      `  output         ${c.outputName} [${src.output.dims.join(',')}] ${src.output.extractor ? 'embedding' : c.outputKind}`,
      `  embedding      ${c.embedding ? `${c.embedding.tensor} (${c.embedding.dims}-d${c.embedding.pool === 'global-average' ? ', global-average pooled' : ''})` : 'none found'}`,
      `  precision      ${
        src.precision !== 'int8'
          ? src.precision
          : src.activations === 'int8'
            ? 'int8 (quantized: runs as QLinearConv in onnxruntime)'
            : 'int8 weights, float activations (dynamic-range: weights dequantized to float at run time)'
      }`,
      ...src.notes.map((n) => `  note           ${n}`),
    ];
    io.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
