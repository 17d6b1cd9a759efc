// `edgetune finetune`: a thin driver of the library's finetune() (runtime/train/node/finetune.ts, which
// does everything: data, embeddings, both phases, --int8, --resume, the atomic output set). This file
// parses the options into FinetuneOptions, shows progress (a bar per embedding stage, a line per epoch)
// and stops on Ctrl-C (interruptSignal), and prints the report.

import { intOption, invalidOption, numberOption, withFlagName, onnxPathOption, oneOfOption, OPTION_RANGES as R, parse, writeJson, type CommandIO, type OptionValues } from '../args.js';
import path from 'node:path';
import { interruptSignal, progress } from '../../io/progress.js';
import { EdgetuneError } from '../../core/errors.js';
import { UNFREEZE_DEFAULTS } from '../../train/finetune-tail.js';
import { TAIL_AVERAGES } from '../../train/graph/tail-trainer.js';
import { TASKS } from '../../train/tasks.js';
import { OPTIMIZERS, SCHEDULES, DEFAULT_LR } from '../../train/index.js';
import { FINETUNE_DEFAULTS as D, INT8_CALIBRATION_IMAGES } from '../../train/finetune.js';
import { finetune as finetuneRun, type FinetuneOptions, type FinetuneProgress, type FinetuneReport, type TargetsReport } from '../../train/node/finetune.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune finetune <train-dir> [options]
       edgetune finetune --resume <model.onnx> --add-class <name> <dir> [--add-class <name> <dir>]... [options]
       edgetune finetune --resume <model.onnx> --add-examples <name>=<dir> [--add-examples <name>=<dir>]... [options]

Train a new classification head on a frozen backbone and export one ONNX model (backbone + head +
softmax, labels and preprocessing embedded). <train-dir> holds one sub-folder of images per class.
With --task multilabel or regression, <train-dir> is a CSV instead (and --val another CSV).

Task:
  --task <t>              classification (default) | multilabel (sigmoid + binary cross-entropy; CSV rows
                          \`file,label1;label2\`, or a folder with labels.csv) | regression (linear output + mean
                          squared error; CSV rows \`file,value\` or \`file,v1;v2\` with a header naming the outputs)

Data:
  --val <dir>             validation folder (same class names); otherwise a seeded stratified split
  --val-split <f>         fraction of each class held out when there is no --val (default ${D.valSplit}; 0 = none)
  --augment <spec>        none | default | op[:value],... e.g. flip,rotate:15,color:0.2,erase:0.25 (default: ${D.augment})
                          ops: flip vflip rotate shear crop zoom translate pad perspective brightness contrast
                          saturation hue color grayscale blur noise erase
  --views <k>             embedded views per training image: view 0 the un-augmented image, the others augmented
                          1 to ${R.views[1]} (default ${D.views}; 1 with --augment none)
  --cache <dir>           embedding cache (default <EDGETUNE_CACHE>/embeddings); --no-cache to disable
Model:
  --model <id>            backbone registry id (default mobilenetv2-int8)
  --head <kind>           linear | mlp | prototype (nearest class mean, no training) (default ${D.head})
  --hidden <n[,n...]>     hidden units of the MLP head, one number (1 to ${R.hidden[1]}) per hidden layer, e.g. 256,64
                          (default ${D.hidden}; implies --head mlp; each hidden layer: ReLU, then dropout)
  --dropout <p>           dropout on each hidden layer's output (the embedding for a linear head) (default ${D.dropout})
Training (on ${D.normalize ? 'L2-normalised' : 'raw'} embeddings):
  --optimizer <name>      ${OPTIMIZERS.join(' | ')} (default ${D.optimizer})
  --lr <x>                learning rate (default: ${OPTIMIZERS.map((o) => `${o} ${DEFAULT_LR[o]}`).join(', ')})
  --epochs <n>            maximum epochs, 1 to ${R.epochs[1]} (default ${D.epochs})
  --batch-size <n>        mini-batch size, 0 = full batch, up to ${R.batchSize[1]} (default ${D.batchSize})
  --weight-decay <x>      L2 penalty (λ/2)·‖W‖² on weights (default ${D.weightDecay})
  --l1 <x>                L1 penalty λ·‖W‖₁ on weights, drives unused inputs to zero (default 0)
  --label-smoothing <x>   (default ${D.labelSmoothing})
  --schedule <name>       ${SCHEDULES.join(' | ')} (default ${D.schedule}); --step-size <n> --gamma <x> for step
  --patience <n>          early stopping on validation loss, best weights restored (default ${D.patience}; 0 = off)
  --seed <n>              seed for the split, augmentation, initialisation and shuffling (default ${D.seed})
Fine-tuning the backbone (phase 2, after the head; float backbones, e.g. mobilenetv2-fp32):
  --unfreeze <n|all>      also train the last n blocks of the backbone (all: every block) with the head (a block: an
                          inverted-residual block or the final 1×1 conv for MobileNetV2, a fire module for SqueezeNet,
                          a depthwise-separable pair for MobileNetV1; BatchNormalization folded, statistics frozen).
                          Kept only when it beats the head alone on validation by more than the
                          noise (the report's unfreeze.kept / keepReason); otherwise the head-only model is written
  --unfreeze-from <name>  the tensor to cut at instead (a single-path tensor of the backbone)
  --backbone-lr <x>       learning rate of the unfrozen blocks (default ${UNFREEZE_DEFAULTS.backboneLrRatio} × the head's)
  --unfreeze-epochs <n>   maximum epochs of phase 2 (default ${UNFREEZE_DEFAULTS.epochs}; early stopping with --patience, default ${UNFREEZE_DEFAULTS.patience} there)
  --unfreeze-views <v>    fresh: new augmented views of every training image each epoch | cached: the views phase 1
                          embedded, every epoch (default ${UNFREEZE_DEFAULTS.freshViews ? 'fresh' : 'cached'})
  --unfreeze-schedule <s> constant | cosine | warmup-cosine (linear warm-up over the first epoch, then cosine)
                          learning rates over phase 2's epochs (default ${UNFREEZE_DEFAULTS.schedule})
  --layer-lr-decay <x>    layer-wise backbone rates: unfrozen block k (1 = nearest the head) trains at
                          --backbone-lr × x^(k−1), x in (0, 1] (default ${UNFREEZE_DEFAULTS.layerLrDecay}: one rate)
  --unfreeze-average <a> none | swa: phase 2 keeps the running mean of its weights at the end of every epoch
                          (stochastic weight averaging) instead of the last ones (default ${UNFREEZE_DEFAULTS.average})
  --unfreeze-mixup <a>    mixup of the unfrozen part's inputs in phase 2: each batch mixed with a shuffled copy of
                          itself, weight ~ Beta(a, a) (default ${UNFREEZE_DEFAULTS.mixup}: off)
  --unfreeze-biases <b>   none | all | k: also train the conv biases (the folded BatchNormalization shifts) of the
                          frozen blocks, all of them or the last k, their weights frozen, at the head's learning
                          rate (BitFit; default ${UNFREEZE_DEFAULTS.biases})
  --refit / --no-refit    after validation, train phase 2 again on training + validation images for its best epoch
                          count (default ${UNFREEZE_DEFAULTS.refit ? '--refit' : '--no-refit'})
  --keep-unfrozen         keep phase 2's result even when it does not beat the head alone on validation
Output:
  --out <file.onnx>       the model (default finetuned.onnx); <name>.report.json, <name>.report.png and
                          <name>.resume.bin (what --resume needs) beside it
  --int8                  quantize the exported model to int8 (QDQ, calibrated on ${INT8_CALIBRATION_IMAGES} training images; the float
                          model is kept as <name>.fp32.onnx; both are scored on the validation images); a backbone
                          that is already int8 is written as it is
  --resume <model.onnx>   extend a model exported by finetune: its images' embeddings come from <name>.resume.bin
                          beside it (only the new classes' folders are read); without that file the
                          original dataset folders are read again
  --add-class <name>      with --resume: a new class; its folder is the matching positional argument
  --add-examples <name>=<dir>
                          with --resume: more images of the model's class <name> (training images; the
                          validation images stay the model's), embedded with its own backbone; repeatable
  --json                  print the report as one JSON object
${SESSION_USAGE}

${CARD_USAGE.replace('Describing the model', 'Describing the backbone')}`;

const OPTIONS = {
  val: { type: 'string', path: 'a folder or CSV file' },
  'val-split': { type: 'string' },
  augment: { type: 'string' },
  views: { type: 'string' },
  cache: { type: 'string', path: 'folder' },
  'no-cache': { type: 'boolean', default: false },
  model: { type: 'string', path: 'a model' },
  head: { type: 'string' },
  hidden: { type: 'string' },
  dropout: { type: 'string' },
  optimizer: { type: 'string' },
  lr: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'weight-decay': { type: 'string' },
  l1: { type: 'string' },
  task: { type: 'string' },
  'label-smoothing': { type: 'string' },
  schedule: { type: 'string' },
  'step-size': { type: 'string' },
  gamma: { type: 'string' },
  patience: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string', default: 'finetuned.onnx', path: 'file' },
  int8: { type: 'boolean', default: false },
  resume: { type: 'string', path: 'file' },
  'add-class': { type: 'string', multiple: true },
  'add-examples': { type: 'string', multiple: true },
  unfreeze: { type: 'string' },
  'unfreeze-from': { type: 'string' },
  'backbone-lr': { type: 'string' },
  'unfreeze-epochs': { type: 'string' },
  'unfreeze-views': { type: 'string' },
  'unfreeze-schedule': { type: 'string' },
  'layer-lr-decay': { type: 'string' },
  'unfreeze-average': { type: 'string' },
  'unfreeze-mixup': { type: 'string' },
  'unfreeze-biases': { type: 'string' },
  refit: { type: 'boolean' },
  'no-refit': { type: 'boolean' },
  'keep-unfrozen': { type: 'boolean' },
  json: { type: 'boolean', default: false },
  ...SESSION_OPTIONS,
  ...CARD_OPTIONS,
} as const;

type Values = OptionValues<typeof OPTIONS>;

/** The parsed command line as the library's options (ranges checked here, with the option names the user typed). */
function optionsFrom(v: Values): FinetuneOptions {
  const o: FinetuneOptions = { out: v.out };
  o.optimizer = oneOfOption('optimizer', v.optimizer, OPTIMIZERS);
  o.schedule = oneOfOption('schedule', v.schedule, SCHEDULES);
  if (v.lr !== undefined) o.lr = numberOption('lr', v.lr, 0, Number.MIN_VALUE);
  if (v.epochs !== undefined) o.epochs = intOption('epochs', v.epochs, D.epochs, ...R.epochs);
  if (v['batch-size'] !== undefined) o.batchSize = intOption('batch-size', v['batch-size'], D.batchSize, ...R.batchSize);
  if (v['weight-decay'] !== undefined) o.weightDecay = numberOption('weight-decay', v['weight-decay'], D.weightDecay, 0, 10);
  if (v.l1 !== undefined) o.l1 = numberOption('l1', v.l1, 0, 0, 10);
  if (v['label-smoothing'] !== undefined) o.labelSmoothing = numberOption('label-smoothing', v['label-smoothing'], D.labelSmoothing, 0, 0.99);
  if (v.dropout !== undefined) o.dropout = numberOption('dropout', v.dropout, D.dropout, 0, 0.95);
  if (v.patience !== undefined) o.patience = intOption('patience', v.patience, D.patience, ...R.patience);
  if (v.seed !== undefined) o.seed = intOption('seed', v.seed, D.seed, 0);
  if (v['step-size'] !== undefined) o.stepSize = intOption('step-size', v['step-size'], 20, ...R.stepSize);
  if (v.gamma !== undefined) o.gamma = numberOption('gamma', v.gamma, 0.1, Number.MIN_VALUE, 1);
  if (v.views !== undefined) o.views = intOption('views', v.views, D.views, ...R.views);
  if (v['val-split'] !== undefined) o.valSplit = numberOption('val-split', v['val-split'], D.valSplit, 0, 0.9);
  o.head = oneOfOption('head', v.head, ['linear', 'mlp', 'prototype'] as const);
  if (v.hidden !== undefined) {
    const sizes = v.hidden.split(',').map((h) => intOption('hidden', h.trim(), D.hidden, ...R.hidden));
    if (sizes.length > 8) throw invalidOption('hidden', '1 to 8 hidden layers', v.hidden);
    o.hidden = sizes;
  }
  o.augment = v.augment;
  o.task = oneOfOption('task', v.task, TASKS);
  o.val = v.val;
  o.model = v.model;
  o.cache = v['no-cache'] ? null : v.cache;
  if (v['unfreeze-from'] !== undefined && v.unfreeze !== undefined) throw new EdgetuneError('EARG', '--unfreeze and --unfreeze-from say the same thing: give one');
  if (v['unfreeze-from'] !== undefined) o.unfreeze = v['unfreeze-from'];
  else if (v.unfreeze === 'all') o.unfreeze = 'all';
  else if (v.unfreeze !== undefined) o.unfreeze = intOption('unfreeze', v.unfreeze, 1, 1);
  o.unfreezeViews = oneOfOption('unfreeze-views', v['unfreeze-views'], ['fresh', 'cached'] as const);
  o.unfreezeSchedule = oneOfOption('unfreeze-schedule', v['unfreeze-schedule'], ['constant', 'cosine', 'warmup-cosine'] as const);
  o.unfreezeAverage = oneOfOption('unfreeze-average', v['unfreeze-average'], TAIL_AVERAGES);
  // phase 2's numbers are parsed here and range-checked by the library (its errors said with the flags: withFlagName)
  if (v['unfreeze-mixup'] !== undefined) o.unfreezeMixup = numberOption('unfreeze-mixup', v['unfreeze-mixup'], 0);
  const biases = v['unfreeze-biases'];
  if (biases !== undefined) {
    if (biases === 'none' || biases === 'all') o.unfreezeBiases = biases;
    else if (/^[1-9][0-9]*$/.test(biases.trim())) o.unfreezeBiases = Number(biases);
    else throw invalidOption('unfreeze-biases', 'none, all or a positive number of blocks', biases);
  }
  if (v['layer-lr-decay'] !== undefined) o.layerLrDecay = numberOption('layer-lr-decay', v['layer-lr-decay'], 1);
  if (v.refit && v['no-refit']) throw new EdgetuneError('EARG', '--refit and --no-refit contradict each other: give one');
  if (v.refit) o.refit = true;
  if (v['no-refit']) o.refit = false;
  if (v['keep-unfrozen']) o.keepUnfrozen = true;
  if (v['backbone-lr'] !== undefined) o.backboneLr = numberOption('backbone-lr', v['backbone-lr'], 0);
  if (v['unfreeze-epochs'] !== undefined) o.unfreezeEpochs = numberOption('unfreeze-epochs', v['unfreeze-epochs'], UNFREEZE_DEFAULTS.epochs);
  if (v.int8) o.int8 = true;
  o.resume = v.resume;
  onnxPathOption('out', o.out);
  // the library's options are optional fields: absent, not undefined
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as unknown as FinetuneOptions;
}

/** Progress on stderr: a rewriting bar per embedding stage on a TTY, a line per epoch (phase 2's also without a TTY). */
function progressPrinter(io: CommandIO): { onProgress(e: FinetuneProgress): void; done(): void } {
  const tty = Boolean(io.stderr.isTTY);
  let bar: ReturnType<typeof progress> | undefined;
  let stage = '';
  let epochLine = false;
  const end = () => {
    bar?.done();
    bar = undefined;
    if (epochLine) io.stderr.write('\n');
    epochLine = false;
  };
  return {
    onProgress(e) {
      const key = e.stage === 'embed' ? `embed:${e.split}` : e.stage === 'epoch' ? `epoch:${e.phase}` : e.stage;
      if (key !== stage) {
        end();
        stage = key;
        if (e.stage === 'embed') bar = progress(io, e.split === 'train' ? `embedding ${e.total} training image views` : `embedding ${e.total} validation images`);
        else if (e.stage === 'activations') bar = progress(io, `activations at ${e.cut} for ${e.total} image views`);
        else if (e.stage === 'int8') {
          bar = progress(io, 'int8: calibrating and scoring');
          // off a terminal the bar is silent: one line says the (long) step began
          if (!tty) io.stderr.write(`edgetune finetune: --int8: calibrating on up to ${INT8_CALIBRATION_IMAGES} training images and scoring both models\n`);
        }
      }
      if (e.stage !== 'epoch') return bar!.update(e.done, e.total);
      const s = e.stats;
      const val = s.valLoss !== undefined ? ` val_loss ${s.valLoss.toFixed(4)} val_acc ${s.valAccuracy!.toFixed(3)}` : '';
      if (e.phase === 1) {
        if (tty) io.stderr.write(`\r\x1b[Kepoch ${s.epoch}/${e.epochs} lr ${e.stats.lr.toExponential(2)} loss ${s.trainLoss.toFixed(4)} acc ${s.trainAccuracy.toFixed(3)}${val}`);
      } else if (tty) io.stderr.write(`\r\x1b[Kphase 2 epoch ${s.epoch}/${e.epochs} loss ${s.trainLoss.toFixed(4)} acc ${s.trainAccuracy.toFixed(3)}${val}`);
      else io.stderr.write(`edgetune: phase 2 epoch ${s.epoch}/${e.epochs} loss ${s.trainLoss.toFixed(4)}${val}\n`);
      epochLine = tty;
    },
    done: end,
  };
}

export const finetune = {
  summary: 'train a new classification head on a frozen backbone (augmentation, early stopping) and export one ONNX model',
  usage,
  async run(argv: string[], io: CommandIO): Promise<number> {
    const { values: v, positionals } = parse(argv, OPTIONS);
    const o = optionsFrom(v);
    const added = v['add-class'] ?? [];
    if (added.length && !v.resume) throw new EdgetuneError('EARG', '--add-class needs --resume <model.onnx>');
    if (v.resume && !added.length && positionals.length) {
      // the model's own classes come from its resume data: a training folder here would be read for nothing
      throw new EdgetuneError('EARG', `--resume ${v.resume} reads the model's training images from its resume data, not from ${positionals.join(', ')}: add a class with --add-class NAME DIR, or more images of a class with --add-examples NAME=DIR`);
    }
    if (v.resume && positionals.length !== added.length) {
      throw new EdgetuneError('EARG', `--resume takes one folder per --add-class: ${added.length} --add-class given, ${positionals.length} folder(s)`);
    }
    if (!v.resume && positionals.length !== 1) throw new EdgetuneError('EARG', `finetune: expected one training folder but received ${positionals.length}\n\n${usage}`);
    o.addClass = added.map((name, i) => ({ name, dir: positionals[i]! }));
    o.addExamples = (v['add-examples'] ?? []).map((a) => {
      const i = a.indexOf('=');
      if (i < 1 || i === a.length - 1) throw new EdgetuneError('EARG', `Expected <class>=<folder> for --add-examples but received ${JSON.stringify(a)}`);
      return { name: a.slice(0, i), dir: a.slice(i + 1) };
    });
    o.card = await cardLayerFrom(v);
    o.session = providersFrom(v, io);
    o.onWarning = (m) => io.stderr.write(`edgetune: warning: ${m}\n`);
    const printer = progressPrinter(io);
    // Ctrl-C stops the run (the library's signal); in the int8 step the reason says that nothing was written
    const stop = new AbortController();
    let interrupt = interruptSignal();
    const relay = () => interrupt.signal.addEventListener('abort', () => stop.abort(interrupt.signal.reason), { once: true });
    relay();
    o.onProgress = (e) => {
      if (e.stage === 'int8' && e.done === 0) {
        interrupt.dispose();
        interrupt = interruptSignal(`during the --int8 step; nothing was written (${path.basename(o.out)} and its set are as they were)`);
        relay();
      }
      printer.onProgress(e);
    };
    o.signal = stop.signal;
    let report;
    try {
      report = await finetuneRun(v.resume ? undefined : positionals[0], o);
    } catch (err) {
      throw withFlagName(err, OPTIONS);
    } finally {
      printer.done();
      interrupt.dispose();
    }
    if (v.json) writeJson(io, report);
    else if ('names' in report) printTargets(io, report);
    else printReport(io, report);
    return 0;
  },
};

function printReport(io: CommandIO, r: FinetuneReport): void {
  const w = (s: string) => io.stdout.write(s + '\n');
  const validated = r.accuracy !== null;
  const train = Object.values(r.counts.train).reduce((a, b) => a + b, 0);
  const val = Object.values(r.counts.val).reduce((a, b) => a + b, 0);
  const p2 = r.unfreeze;
  w(`${r.model}: ${r.labels.length} classes (${r.labels.join(', ')}), head ${r.head}, base ${r.base}`);
  w(`train ${train} images × ${r.views} views, validation ${val}; skipped ${r.skipped.length}`);
  if (r.examples) w(`more examples of existing classes (training): ${Object.entries(r.examples).map(([k, n]) => `${k} +${n}`).join(', ')}`);
  const how = r.config ? `best epoch ${r.bestEpoch}/${r.epochs}${r.stoppedEarly ? ' (stopped early)' : ''}` : 'no training (nearest class mean)';
  if (validated) w(`validation accuracy ${r.accuracy!.toFixed(3)} (prototype baseline ${r.prototypeAccuracy!.toFixed(3)}), ${how}`);
  else w(`training accuracy ${r.trainAccuracy.toFixed(3)} (no validation data), ${how}`);
  if (p2) w(`phase 2: unfroze ${p2.blocks !== null ? `${p2.blocks} block(s)` : `from ${p2.cut}`} (${p2.parameters} parameters, lr ${p2.lrBackbone}): ${validated ? 'validation' : 'training'} accuracy ${p2.accuracyBefore.toFixed(3)} → ${p2.accuracy.toFixed(3)}, best epoch ${p2.bestEpoch}/${p2.epochs}${p2.freshViews ? ', fresh views' : ''}${p2.refit ? ', refit on training + validation images' : ''}, ${p2.trainingS}s`);
  if (p2 && !p2.kept) w(`phase 2 not kept (the head-only model is written): ${p2.keepReason}`);
  if (r.int8?.accuracyInt8 != null) w(`int8: validation accuracy ${r.int8.accuracyInt8.toFixed(3)} (float ${r.int8.accuracyFloat!.toFixed(3)}) on ${r.int8.images} images${r.int8.keptFloat.length ? `; ${r.int8.keptFloat.length} nodes kept float` : ''}`);
  w(`time: embedding ${r.timing.embeddingS}s (${r.timing.embedded} computed, ${r.timing.cacheHits} cached), training ${r.timing.trainingS}s, open-set score and export ${r.timing.openSetS}s, total ${r.timing.totalS}s`);
  w(`report: ${r.report.png}, ${r.report.json}`);
}

function printTargets(io: CommandIO, r: TargetsReport): void {
  const m = r.metrics as { microF1?: number; macroF1?: number; exactMatch?: number; mae?: number; rmse?: number; r2?: number };
  io.stdout.write(`${r.model}: ${r.task} head on ${r.base}, ${r.names.length} ${r.task === 'multilabel' ? 'labels' : 'outputs'} (${r.names.join(', ')})\n`);
  io.stdout.write(`train ${r.train} images × ${r.views} views, ${r.validated ? 'validation' : 'training'} ${r.validated ? r.val : r.train}: `);
  io.stdout.write(r.task === 'multilabel' ? `micro F1 ${m.microF1!.toFixed(3)}, macro F1 ${m.macroF1!.toFixed(3)}, exact match ${m.exactMatch!.toFixed(3)}\n` : `MAE ${m.mae!.toPrecision(4)}, RMSE ${m.rmse!.toPrecision(4)}, R² ${m.r2!.toFixed(3)}\n`);
  io.stdout.write(`report: ${r.model.replace(/\.onnx$/i, '')}.report.json\n`);
}
