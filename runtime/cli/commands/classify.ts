// `edgetune classify`: classify image files and folders. Decoding runs a few files ahead of inference
// (sharp works on libuv's thread pool while onnxruntime runs), a bad file is reported and skipped, and
// the exit code is 1 when any input failed. `--json` prints the JSON-lines contract other tools read;
// results and errors come out in input order, and `ms` is each image's own decode + preprocess +
// inference time (its share of a batch), not its wait in the queue.

import { loadClassifier } from '../../classify/classifier.js';
import { multilabelText } from '../../classify/postprocess.js';
import { expandInputs } from '../../io/files.js';
import { intOption, numberOption, OPTION_RANGES as R, parse, writeJson, type Command } from '../args.js';
import { EdgetuneError, messageOf } from '../../core/errors.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune classify <image|dir>... [options]

Classify images (directories are walked recursively).

Options:
  --model <id|file|URL>  registry id, .onnx path, or a served model http://HOST:PORT/v2/models/NAME
                      (edgetune serve, Triton, KServe; default mobilenetv2-int8)
  --top <n>           predictions per image (default 5)
  --batch <n>         images per session.run for models with a dynamic batch, 1 to 1024 (default 1)
  --json              one JSON line per input: {"file","model","provider","top":[{index,label,score}],"ms"} or {"file","error"};
                      a model with an open-set calibration (finetune writes one) adds "unknown" (bool) and
                      "unknownScore" (higher = less like anything taught)
  --unknown-threshold <s>  unknown score above which an image is "unknown" (default the model's own, 1 for
                      finetune's models; ignored for models without an open-set calibration)
${SESSION_USAGE}

${CARD_USAGE}`;

export const classify: Command = {
  summary: 'classify images with a model (top-k labels)',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, {
      model: { type: 'string', default: 'mobilenetv2-int8', path: 'a model' },
      top: { type: 'string' },
      batch: { type: 'string' },
      json: { type: 'boolean', default: false },
      'unknown-threshold': { type: 'string' },
      ...SESSION_OPTIONS,
      ...CARD_OPTIONS,
    });
    if (positionals.length === 0) throw new EdgetuneError('EARG', 'classify: no input images given\n\n' + usage);
    const k = intOption('top', v.top, 5);
    const batch = intOption('batch', v.batch, 1, ...R.batch);
    const json = Boolean(v.json);
    const walkSkips: { file: string; reason: string }[] = [];
    const files = await expandInputs(positionals, (s) => walkSkips.push(s));
    const unknownThreshold = v['unknown-threshold'] === undefined ? undefined : numberOption('unknown-threshold', v['unknown-threshold'], 1, 0);
    const clf = await loadClassifier(v.model, { ...providersFrom(v, io, v.model), topK: k, overrides: await cardLayerFrom(v), ...(unknownThreshold !== undefined ? { unknownThreshold } : {}) });
    if (unknownThreshold !== undefined && clf.unknownThreshold === undefined) io.stderr.write(`edgetune: ${clf.id} has no open-set calibration (no unknown score): --unknown-threshold is ignored\n`);
    // "(no registry entry, …)" only when nothing but the graph said anything (a card file that names the labels alone still leaves some assumed)
    const undescribed = Object.values(clf.card.sources).every((s) => s === 'graph' || s === 'assumed');
    if (clf.assumptions.length) io.stderr.write(`edgetune: ${clf.id}: nothing describes some of this model${undescribed ? ' (no registry entry, card file or flags)' : ''}; assumed ${clf.assumptions.join('; ')}\n`);
    // Read while the session is open (after dispose() a classifier says 'unopened').
    const provider = clf.provider;
    let failed = 0;
    const report = (file: string, err: unknown) => {
      failed++;
      const msg = messageOf(err);
      if (json) writeJson(io, { file, error: msg });
      else io.stderr.write(`${msg.startsWith(file) ? '' : file + ': '}${msg}\n`);
    };
    // dangling links and unopenable names inside folders, each reported with its reason
    for (const s of walkSkips) report(s.file, new Error(`${s.file}: ${s.reason}`));
    try {
      // The row, read by the card's task (classify/postprocess.ts readOutput): top-k; multilabel: every
      // label above MULTILABEL_THRESHOLD; regression: every output's value, in order.
      const task = clf.card.task ?? 'classification';
      const pct = (t: { label: string; score: number }) => `${t.label} (${(t.score * 100).toFixed(1)}%)`;
      for await (const r of clf.classifyFiles(files, { topK: k, batch })) {
        if (r.error) report(r.file, r.error);
        else if (r.reading.task === 'regression') {
          const values = r.reading.values.map((x) => ({ name: x.name, value: x.value }));
          if (json) writeJson(io, { file: r.file, model: clf.id, provider, task, values, ms: r.ms });
          else io.stdout.write(`${r.file}: ${values.map((x) => `${x.name} ${x.value.toPrecision(4)}`).join(', ')}\n`);
        } else if (r.reading.task === 'multilabel') {
          const { labels, top } = r.reading;
          if (json) writeJson(io, { file: r.file, model: clf.id, provider, task, labels, top, ms: r.ms });
          else io.stdout.write(`${r.file}: ${multilabelText(labels)}\n`);
        } else if (json) {
          const open = r.unknownScore !== undefined ? { unknown: r.unknown, unknownScore: r.unknownScore } : {};
          writeJson(io, { file: r.file, model: clf.id, provider, ...open, top: r.reading.top, ms: r.ms });
        } else if (r.unknown) io.stdout.write(`${r.file}: unknown (nearest: ${r.reading.top[0]!.label} ${r.reading.top[0]!.score.toFixed(2)})\n`);
        else io.stdout.write(`${r.file}: ${r.reading.top.map(pct).join(', ')}\n`);
      }
    } finally {
      await clf.dispose();
    }
    // Inputs are the files found plus the entries the folder walk reported (each counted once, as failed).
    const inputs = files.length + walkSkips.length;
    if (!json && inputs > 1) io.stderr.write(`edgetune: ${inputs - failed}/${inputs} classified with ${clf.id} on ${provider}\n`);
    return failed ? 1 : 0;
  },
};
