// `edgetune eval`: accuracy of a classifier on a folder-per-class dataset: accuracy, per-class
// precision / recall / F1 / support and the confusion matrix (rows = true labels). The dataset's class
// folders are matched to the model's labels by the folder rule (core/labels.ts: exact, else ignoring
// case/`_`/`-`, a synonym, or the singular: ants → ant); the prediction is the most probable of them.
// Undecodable images are reported and skipped.

import { loadClassifier } from '../../classify/classifier.js';
import { parse, writeJson, type Command } from '../args.js';
import { progress } from '../../io/progress.js';
import { table } from '../../core/format.js';
import { scanDataset } from '../../train/node/dataset.js';
import { EdgetuneError, messageOf } from '../../core/errors.js';
import { describeFolderMatches, matchClassFolders } from '../../core/labels.js';
import type { HwcImage } from '../../image/preprocess.js';
import { computeMetrics } from '../../train/index.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune eval <dataset-dir> --model <id|file.onnx> [options]

Evaluate a classifier on a folder-per-class dataset. Each sub-folder names a model label: exactly,
or ignoring case, "_" and "-", as one of a label's comma-separated synonyms, or as the plural of one
("ants" → "ant"); folders that match no label, or several, are refused.

Options:
  --model <id|file|URL>  registry id or .onnx path, e.g. a model from "edgetune finetune", or a served
                      model http://HOST:PORT/v2/models/NAME (required)
  --json              print one JSON object: {accuracy, perClass: {label: {precision, recall, f1, support}},
                      confusion (rows = true labels), labels, classMap: {folder: {label, output, how}},
                      model, images, skipped}
${SESSION_USAGE}

${CARD_USAGE}`;

export const evaluate: Command = {
  summary: 'accuracy, per-class precision/recall/F1 and confusion matrix of a model on a labelled folder',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, { model: { type: 'string' }, json: { type: 'boolean', default: false }, ...SESSION_OPTIONS, ...CARD_OPTIONS });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `eval: expected one dataset folder but received ${positionals.length}\n\n${usage}`);
    if (!v.model) throw new EdgetuneError('EARG', 'eval: --model is required');
    const ds = await scanDataset(positionals[0]!, { what: 'dataset' });
    const clf = await loadClassifier(v.model, { ...providersFrom(v, io), overrides: await cardLayerFrom(v) });
    if (clf.assumptions.length) io.stderr.write(`edgetune: ${clf.id}: nothing describes some of this model; assumed ${clf.assumptions.join('; ')}\n`);
    const skipped = [...ds.skipped];
    const truth: number[] = [];
    const predicted: number[] = [];
    const offset = clf.post.labelOffset;
    const matching = matchClassFolders(ds.classes, clf.post.labels, { of: clf.id });
    try {
      if (matching.problems.length) throw new EdgetuneError('EINPUT', `${positionals[0]}: ${matching.problems.join('; ')}`, { subject: positionals[0] });
      for (const line of describeFolderMatches(matching, offset)) io.stderr.write(`edgetune eval: class folder ${line}\n`);
      const outIndex = matching.matched.map((m) => m.index + offset);
      const bar = progress(io, `evaluating ${ds.items.length} images`);
      const batch = Math.min(16, clf.maxBatch);
      for (let i = 0; i < ds.items.length; i += batch) {
        const chunk = ds.items.slice(i, i + batch);
        const decoded = await Promise.all(chunk.map((it) => clf.decode(it.file).catch((err: unknown) => err as Error)));
        const imgs: HwcImage[] = [];
        const labelsOf: number[] = [];
        decoded.forEach((d, k) => {
          if (d instanceof Error) {
            const m = messageOf(d);
            const file = chunk[k]!.file;
            skipped.push({ file, reason: m.startsWith(file + ': ') ? m.slice(file.length + 2) : m });
            io.stderr.write(`edgetune: warning: skipped ${file}: ${m.startsWith(file + ': ') ? m.slice(file.length + 2) : m}\n`);
          } else {
            imgs.push(d);
            labelsOf.push(chunk[k]!.label);
          }
        });
        if (imgs.length) {
          const probs = await clf.probabilities(imgs);
          probs.forEach((p, k) => {
            let best = 0;
            for (let c = 1; c < outIndex.length; c++) if (p[outIndex[c]!]! > p[outIndex[best]!]!) best = c;
            predicted.push(best);
            truth.push(labelsOf[k]!);
          });
        }
        bar.update(Math.min(ds.items.length, i + batch), ds.items.length);
      }
      bar.done();
    } finally {
      await clf.dispose();
    }
    if (!truth.length) throw new EdgetuneError('EINPUT', `${positionals[0]}: no image could be decoded`);
    const m = computeMetrics(predicted, truth, ds.classes.length);
    const perClass = Object.fromEntries(ds.classes.map((c, i) => [c, m.perClass[i]!]));
    if (v.json) {
      const classMap = Object.fromEntries(matching.matched.map((x) => [x.folder, { label: x.label, output: x.index + offset, how: x.how }]));
      writeJson(io, { accuracy: m.accuracy, perClass, confusion: m.confusion, labels: ds.classes, classMap, model: clf.id, images: truth.length, skipped });
    } else {
      io.stdout.write(`${clf.id} on ${positionals[0]}: accuracy ${m.accuracy.toFixed(4)} (${truth.length} images${skipped.length ? `, ${skipped.length} skipped` : ''})\n\n`);
      io.stdout.write(table([['class', 'precision', 'recall', 'f1', 'support'], ...ds.classes.map((c, i) => [c, +m.perClass[i]!.precision.toFixed(3), +m.perClass[i]!.recall.toFixed(3), +m.perClass[i]!.f1.toFixed(3), m.perClass[i]!.support])]));
      io.stdout.write(`\nconfusion (rows: true, columns: predicted)\n`);
      io.stdout.write(table([['', ...ds.classes], ...ds.classes.map((c, i) => [c, ...m.confusion[i]!])]));
    }
    return 0;
  },
};
