// `edgetune eval`: accuracy of a classifier on a folder-per-class dataset: accuracy, per-class
// precision / recall / F1 / support and the confusion matrix (rows = true labels). The dataset's class
// folders are matched to the model's labels by the folder rule (core/labels.ts: exact, else ignoring
// case/`_`/`-`, a synonym, or the singular: ants → ant); the prediction is the most probable of them.
// Undecodable images are reported and skipped.

import path from 'node:path';
import { loadClassifier } from '../../classify/classifier.js';
import { parse, writeJson, type Command } from '../args.js';
import { progress } from '../../io/progress.js';
import { table } from '../../core/format.js';
import { scanDataset } from '../../train/node/dataset.js';
import { EdgetuneError, messageOf } from '../../core/errors.js';
import { describeFolderMatches, matchClassFolders } from '../../core/labels.js';
import type { HwcImage } from '../../image/preprocess.js';
import { computeMetrics } from '../../train/index.js';
import { evaluateOpenSet, type OpenSetEvaluation } from '../../train/openset.js';
import { scorePng } from '../../train/node/report.js';
import { expandInputs, findSharedFiles, isImageFile, sharedFilesWarning } from '../../io/files.js';
import { checkWritable, writeAtomic } from '../../io/atomic.js';
import { invalidOption, numberOption } from '../args.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune eval <dataset-dir> --model <id|file.onnx> [options]

Evaluate a classifier on a folder-per-class dataset. Each sub-folder names a model label: exactly,
or ignoring case, "_" and "-", as one of a label's comma-separated synonyms, or as the plural of one
("ants" → "ant"); folders that match no label, or several, are refused.

Options:
  --model <id|file|URL>  registry id or .onnx path, e.g. a model from "edgetune finetune", or a served
                      model http://HOST:PORT/v2/models/NAME (required)
  --unknown <dir>     images of none of the model's classes (walked recursively): report how well the
                      model says "unknown": AUROC of its unknown score (1 − max softmax for a model without
                      an open-set calibration), the share of unknown images rejected and of known images
                      kept at the model's threshold, the accuracy of the kept, and the calibration error (ECE)
  --unknown-threshold <s>  threshold on the unknown score (default the model's own)
  --report <file.png> with --unknown: write a picture of both score distributions and the threshold
  --json              print one JSON object: {accuracy, perClass: {label: {precision, recall, f1, support}},
                      confusion (rows = true labels), labels, classMap: {folder: {label, output, how}},
                      model, images, skipped[, openSet]}
${SESSION_USAGE}

${CARD_USAGE}`;

export const evaluate: Command = {
  summary: 'accuracy, per-class precision/recall/F1 and confusion matrix of a model on a labelled folder',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, {
      model: { type: 'string', path: 'a model' },
      json: { type: 'boolean', default: false },
      unknown: { type: 'string', path: 'folder' },
      'unknown-threshold': { type: 'string' },
      report: { type: 'string', path: 'file' },
      ...SESSION_OPTIONS,
      ...CARD_OPTIONS,
    });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `eval: expected one dataset folder but received ${positionals.length}\n\n${usage}`);
    if (!v.model) throw new EdgetuneError('EARG', 'eval: --model is required');
    if ((v.report || v['unknown-threshold'] !== undefined) && !v.unknown) throw new EdgetuneError('EARG', `eval: --${v.report ? 'report' : 'unknown-threshold'} needs --unknown <dir>`);
    const unknownThreshold = v['unknown-threshold'] === undefined ? undefined : numberOption('unknown-threshold', v['unknown-threshold'], 1, 0);
    // the picture is a PNG: another name (model.onnx, photo.jpg) would be replaced by one
    if (v.report !== undefined && !/\.png$/i.test(v.report)) throw invalidOption('report', 'a file name ending in .png', v.report);
    const ds = await scanDataset(positionals[0]!, { what: 'dataset' });
    const unknownFiles = v.unknown ? await expandInputs([v.unknown]) : [];
    // before any work: the picture replaces none of what eval reads (the model, a known or unknown image)
    if (v.report) await checkWritable(v.report, '--report', { inputs: [v.model, ...ds.items.map((i) => i.file), ...unknownFiles] });
    if (v.unknown && !unknownFiles.length) throw new EdgetuneError('EINPUT', `${v.unknown}: no images for --unknown`, { subject: v.unknown });
    if (unknownFiles.length) {
      // "unknown" images that are the known ones (the same folder, or copies) make the AUROC meaningless
      const same = await findSharedFiles(ds.items.map((i) => i.file), unknownFiles.filter(isImageFile));
      const warning = sharedFilesWarning(same, '--unknown', positionals[0]!, unknownFiles.length, 'they count as known and as unknown, which pulls the AUROC toward 0.5');
      if (warning) io.stderr.write(`edgetune: warning: ${warning}\n`);
    }
    const clf = await loadClassifier(v.model, { ...providersFrom(v, io, v.model), overrides: await cardLayerFrom(v), ...(unknownThreshold !== undefined ? { unknownThreshold } : {}) });
    // accuracy over class folders is a single-label measure: a multilabel model's top label, or a regression's largest value, is no answer to score
    if (clf.card.task && clf.card.task !== 'classification') {
      await clf.dispose();
      throw new EdgetuneError('EARG', `${v.model} is a ${clf.card.task} model; eval scores classifiers on class folders (finetune --task ${clf.card.task} --val <file.csv> reports its validation ${clf.card.task === 'multilabel' ? 'F1 and exact match' : 'MAE, RMSE and R²'})`, { subject: v.model });
    }
    if (clf.assumptions.length) io.stderr.write(`edgetune: ${clf.id}: nothing describes some of this model; assumed ${clf.assumptions.join('; ')}\n`);
    // as classify and watch say it: the 1 − max softmax ranking has no threshold to move
    if (unknownThreshold !== undefined && clf.unknownThreshold === undefined) io.stderr.write(`edgetune: ${clf.id} has no open-set calibration (no unknown score): --unknown-threshold is ignored\n`);
    const skipped: { file: string; reason: string }[] = [];
    /** A file left out, said as it is skipped: what the folder walk left out (not an image, a dangling link, …) and a failed decode (its message without the file's name in front). */
    const skip = (file: string, why: string) => {
      const reason = why.startsWith(`${file}: `) ? why.slice(file.length + 2) : why;
      skipped.push({ file, reason });
      io.stderr.write(`edgetune: warning: skipped ${file}: ${reason}\n`);
    };
    for (const s of ds.skipped) skip(s.file, s.reason);
    const truth: number[] = [];
    const predicted: number[] = [];
    // open-set: each known image's score and probabilities over the dataset's classes, each unknown image's score
    const knownScores: number[] = [];
    const knownProbs: number[] = [];
    const unknownScores: number[] = [];
    const calibrated = clf.unknownThreshold !== undefined;
    const scoreOf = (p: Float32Array, u: Float32Array | undefined, k: number, outIndex: number[]): number => {
      if (u) return u[k]!;
      let m = 0;
      for (const i of outIndex) m = Math.max(m, p[i]!);
      return 1 - m;
    };
    let openSet: OpenSetEvaluation | undefined;
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
            skip(chunk[k]!.file, messageOf(d));
          } else {
            imgs.push(d);
            labelsOf.push(chunk[k]!.label);
          }
        });
        if (imgs.length) {
          const { probs, unknown } = await clf.predict(imgs);
          probs.forEach((p, k) => {
            let best = 0;
            for (let c = 1; c < outIndex.length; c++) if (p[outIndex[c]!]! > p[outIndex[best]!]!) best = c;
            predicted.push(best);
            truth.push(labelsOf[k]!);
            if (v.unknown) {
              knownScores.push(scoreOf(p, unknown, k, outIndex));
              let s = 0;
              for (const o of outIndex) s += p[o]!;
              for (const o of outIndex) knownProbs.push(p[o]! / Math.max(s, 1e-12));
            }
          });
        }
        bar.update(Math.min(ds.items.length, i + batch), ds.items.length);
      }
      bar.done();
      if (v.unknown) {
        const ubar = progress(io, `scoring ${unknownFiles.length} unknown images`);
        for (let i = 0; i < unknownFiles.length; i += batch) {
          const chunk = unknownFiles.slice(i, i + batch);
          const decoded = await Promise.all(chunk.map((f) => clf.decode(f).catch((err: unknown) => err as Error)));
          const imgs: HwcImage[] = [];
          decoded.forEach((d, k) => {
            if (d instanceof Error) skip(chunk[k]!, messageOf(d));
            else imgs.push(d);
          });
          if (imgs.length) {
            const { probs, unknown } = await clf.predict(imgs);
            probs.forEach((p, k) => unknownScores.push(scoreOf(p, unknown, k, outIndex)));
          }
          ubar.update(Math.min(unknownFiles.length, i + batch), unknownFiles.length);
        }
        ubar.done();
        if (!unknownScores.length) throw new EdgetuneError('EINPUT', `${v.unknown}: no unknown image could be decoded`, { subject: v.unknown });
        openSet = evaluateOpenSet({
          score: calibrated ? 'unknown_score' : 'max-softmax',
          knownScores,
          unknownScores,
          knownProbs: Float32Array.from(knownProbs),
          knownLabels: truth,
          classes: ds.classes.length,
          ...(calibrated ? { threshold: clf.unknownThreshold } : {}),
        });
      }
    } finally {
      await clf.dispose();
    }
    if (!truth.length) throw new EdgetuneError('EINPUT', `${positionals[0]}: no image could be decoded`);
    const m = computeMetrics(predicted, truth, ds.classes.length);
    const perClass = Object.fromEntries(ds.classes.map((c, i) => [c, m.perClass[i]!]));
    if (openSet && v.report) {
      // the folders' names, with their parents when the names alone are the same ("val vs val" said nothing)
      const [knownName, unknownName] = ((a: string, b: string) => (path.basename(a) === path.basename(b) ? [a, b].map((p) => path.join(path.basename(path.dirname(p)), path.basename(p))) : [path.basename(a), path.basename(b)]))(path.resolve(positionals[0]!), path.resolve(v.unknown!));
      const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
      await writeAtomic(v.report, await scorePng({
        title: `${clf.id}: known ${knownName} vs unknown ${unknownName}`,
        notes: [
          `AUROC ${openSet.auroc.toFixed(3)}; ${openSet.threshold !== undefined ? `at threshold ${openSet.threshold}: known kept ${pct(openSet.knownKept)}, unknown rejected ${pct(openSet.unknownRejected)}, accuracy of kept ${pct(openSet.keptAccuracy)}` : 'no open-set calibration: no threshold'}; ECE ${openSet.ece.toFixed(3)}`,
        ],
        score: openSet.score === 'unknown_score' ? 'unknown score (higher = less like anything taught)' : '1 − max softmax (the model has no open-set calibration)',
        known: knownScores,
        unknown: unknownScores,
        ...(openSet.threshold !== undefined ? { threshold: openSet.threshold } : {}),
      }));
    }
    if (v.json) {
      const classMap = Object.fromEntries(matching.matched.map((x) => [x.folder, { label: x.label, output: x.index + offset, how: x.how }]));
      writeJson(io, { accuracy: m.accuracy, perClass, confusion: m.confusion, labels: ds.classes, classMap, model: clf.id, images: truth.length, skipped, ...(openSet ? { openSet } : {}) });
    } else {
      io.stdout.write(`${clf.id} on ${positionals[0]}: accuracy ${m.accuracy.toFixed(4)} (${truth.length} images${skipped.length ? `, ${skipped.length} skipped` : ''})\n\n`);
      io.stdout.write(table([['class', 'precision', 'recall', 'f1', 'support'], ...ds.classes.map((c, i) => [c, +m.perClass[i]!.precision.toFixed(3), +m.perClass[i]!.recall.toFixed(3), +m.perClass[i]!.f1.toFixed(3), m.perClass[i]!.support])]));
      io.stdout.write(`\nconfusion (rows: true, columns: predicted)\n`);
      io.stdout.write(table([['', ...ds.classes], ...ds.classes.map((c, i) => [c, ...m.confusion[i]!])]));
      if (openSet) {
        const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
        io.stdout.write(`\nunknown images (${v.unknown}, ${openSet.unknown}) vs known (${openSet.known}), score: ${openSet.score === 'unknown_score' ? "the model's unknown score" : '1 − max softmax (the model has no open-set calibration; no threshold)'}\n`);
        io.stdout.write(`  AUROC ${openSet.auroc.toFixed(3)}\n`);
        if (openSet.threshold !== undefined) {
          io.stdout.write(`  at threshold ${openSet.threshold}${unknownThreshold === undefined ? " (the model's own)" : ''}: known kept ${pct(openSet.knownKept!)}, unknown rejected ${pct(openSet.unknownRejected!)}, accuracy of the kept ${pct(openSet.keptAccuracy)}\n`);
        }
        io.stdout.write(`  expected calibration error (ECE, 15 bins) ${openSet.ece.toFixed(3)}\n`);
        if (v.report) io.stdout.write(`  report: ${v.report}\n`);
      }
    }
    return 0;
  },
};
