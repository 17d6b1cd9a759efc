// `edgetune finetune`: fine-tuning, a thin driver of runtime/train/finetune.ts (the module the kiosk page
// drives too: split, views, defaults, training, export), of phase 2 (`--unfreeze`: runtime/train/node/phase2.ts)
// and of the multilabel / regression heads (`--task`: runtime/train/node/finetune-targets.ts). This file parses the options, reads
// the folder-per-class dataset, embeds with runtime/train/node/embed.ts (onnxruntime-node, cached on
// disk), and writes the outputs: the ONNX classifier, a report (JSON + PNG with curves and the confusion
// matrix) beside it, with --int8 the quantized model (runtime/train/node/int8.ts) scored against the float one on the validation
// images. `--resume M --add-class NAME DIR` extends a model this command exported from its resume data
// (<name>.resume.bin: every image's embeddings), reading only the new classes' folders. Outputs are one
// set written atomically (runtime/io/atomic.ts writeAtomicSet); the picture is drawn last and a failure
// to draw it is a warning. Divergence stops the run (the trainer's check); shared train/validation
// images are warned about and listed in the report. (Over 500 lines: one command's option checks, usage
// text and output set in order; the work itself is in runtime/train/.)

import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { formatAugmentation, isIdentitySpec, parseAugmentation, type AugmentSpec } from '../../train/augment/ops.js';
import { intOption, invalidOption, numberOption, oneOfOption, OPTION_RANGES as R, parse, writeJson, type CommandIO } from '../args.js';
import { interruptSignal, progress } from '../../io/progress.js';
import { checkNoEmptyClass, classCounts, finetuneItems, imbalanceWarning, type DatasetItem, type SkippedFile } from '../../train/node/dataset.js';
import { Embedder, EmbeddingCache, loadBackbone, sha256, type Backbone } from '../../train/node/embed.js';
import { EdgetuneError, messageOf } from '../../core/errors.js';
import { exportClassifierModel, headFromModel } from '../../train/export.js';
import { planUnfreeze, UNFREEZE_DEFAULTS } from '../../train/finetune-tail.js';
import { runPhase2, type Phase2Summary } from '../../train/node/phase2.js';
import type { SessionOptions } from '../../session/session.js';
import { finetuneTargets } from '../../train/node/finetune-targets.js';
import { TASKS } from '../../train/tasks.js';
import type { OnnxModel } from '../../onnx/model.js';
import { isQuantizedGraph } from '../../onnx/quantized.js';
import { reportPng } from '../../train/node/report.js';
import { OPTIMIZERS, SCHEDULES, DEFAULT_LR, type HeadWeights, type Metrics, type TrainConfig, type TrainResult } from '../../train/index.js';
import { collectEmbeddings, createTransfer, FINETUNE_DEFAULTS as D, INT8_CALIBRATION_IMAGES, viewCount, type HeadKind, type ViewEmbedder } from '../../train/finetune.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';
import { checkWritable, writeAtomicSet, type AtomicEntry } from '../../io/atomic.js';
import { addedItems, encodeResume, feedPrior, openResumedModel, readResume, resumeDataOf, resumeKey, resumePath, type ResumeData } from '../../train/node/resume.js';
import { sharedByHash, sharedFilesWarning, type SharedFiles } from '../../io/files.js';
import { quantizeFinetuned, type Int8Report } from '../../train/node/int8.js';

const usage = `Usage: edgetune finetune <train-dir> [options]
       edgetune finetune --resume <model.onnx> --add-class <name> <dir> [--add-class <name> <dir>]... [options]

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
  --unfreeze <n>          also train the last n blocks of the backbone with the head (a block: an inverted-residual
                          block or the final 1×1 conv for MobileNetV2; BatchNormalization folded, statistics frozen)
  --unfreeze-from <name>  the tensor to cut at instead (a single-path tensor of the backbone)
  --backbone-lr <x>       learning rate of the unfrozen blocks (default ${UNFREEZE_DEFAULTS.backboneLrRatio} × the head's)
  --unfreeze-epochs <n>   maximum epochs of phase 2 (default ${UNFREEZE_DEFAULTS.epochs}; early stopping with --patience, default ${UNFREEZE_DEFAULTS.patience} there)
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
  --json                  print the report as one JSON object
${SESSION_USAGE}

${CARD_USAGE.replace('Describing the model', 'Describing the backbone')}`;

export interface FinetuneReport {
  model: string;
  base: string;
  labels: string[];
  counts: { train: Record<string, number>; val: Record<string, number> };
  skipped: SkippedFile[];
  augment: string;
  views: number;
  head: HeadWeights['kind'];
  config?: TrainConfig;
  bestEpoch: number;
  epochs: number;
  stoppedEarly: boolean;
  /** Validation accuracy of the trained head (null without validation data). */
  accuracy: number | null;
  /** Validation accuracy of the nearest-class-mean baseline on the same embeddings. */
  prototypeAccuracy: number | null;
  trainAccuracy: number;
  perClass: Record<string, { precision: number; recall: number; f1: number; support: number }>;
  confusion: number[][];
  history: TrainResult['history'];
  timing: { embeddingS: number; trainingS: number; totalS: number; embedded: number; cacheHits: number };
  warnings: string[];
  report: { json: string; png: string };
  /** sha256 of the model file this report describes. */
  modelSha256?: string;
  /** Validation images byte-identical to training images: count and up to 3 [validation, training] pairs. */
  leakage?: SharedFiles;
  /** With --unfreeze: phase 2 (tail + head through ONNX training graphs) and what it gained over the head alone (accuracyBefore: the head alone, measured through the same graph on the same images). */
  unfreeze?: Phase2Summary & { blocks: number | null };
  /**
   * With --int8 and a float backbone: the float file kept beside the int8 one, the quantized op counts,
   * the calibration images (drawn from the training folder), and both models scored on the same
   * held-apart validation images (`images` of them; null fields without validation data).
   */
  int8?: Int8Report;
}

interface Provenance {
  tool: 'edgetune finetune';
  /** The base model (id, file sha256), the cut, and `key`: the embedding-cache key of the backbone the exported model embeds with (after --unfreeze the tuned one's, never the base's). */
  base: { id: string; sha256: string; key: string; cut: string };
  /**
   * Folders as given relative to the working directory when inside it, else their names (never an
   * absolute path: a model is shared); `sha256` hashes the sorted content hashes of every image used,
   * `images` counts them, `resume` names the resume data written beside the model.
   */
  dataset: { train: string; val?: string; valSplit: number; added: { name: string; dir: string }[]; images?: number; sha256?: string; resume?: string };
  augment: string;
  views: number;
  head: string;
  seed: number;
  created: string;
}

type TrainOption = 'optimizer' | 'schedule' | 'lr' | 'epochs' | 'batch-size' | 'weight-decay' | 'l1' | 'label-smoothing' | 'dropout' | 'patience' | 'seed' | 'step-size' | 'gamma';


/** A folder as provenance keeps it: relative to the working directory when inside it, else its name. */
function shownDir(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.basename(dir);
}

function reportPaths(out: string): { json: string; png: string } {
  const base = out.replace(/\.onnx$/i, '');
  return { json: `${base}.report.json`, png: `${base}.report.png` };
}

function trainConfigFrom(v: Partial<Record<TrainOption, string>>): Partial<TrainConfig> {
  const c: Partial<TrainConfig> = {};
  if (v.optimizer !== undefined) c.optimizer = oneOfOption('optimizer', v.optimizer, OPTIMIZERS);
  if (v.schedule !== undefined) c.schedule = oneOfOption('schedule', v.schedule, SCHEDULES);
  if (v.lr !== undefined) c.lr = numberOption('lr', v.lr, 0, Number.MIN_VALUE);
  c.epochs = intOption('epochs', v.epochs, D.epochs, ...R.epochs);
  if (v['batch-size'] !== undefined) c.batchSize = intOption('batch-size', v['batch-size'], D.batchSize, ...R.batchSize);
  c.weightDecay = numberOption('weight-decay', v['weight-decay'], D.weightDecay, 0, 10);
  if (v.l1 !== undefined) c.l1 = numberOption('l1', v.l1, 0, 0, 10);
  c.labelSmoothing = numberOption('label-smoothing', v['label-smoothing'], D.labelSmoothing, 0, 0.99);
  c.dropout = numberOption('dropout', v.dropout, D.dropout, 0, 0.95);
  c.patience = intOption('patience', v.patience, D.patience, ...R.patience);
  c.seed = intOption('seed', v.seed, D.seed, 0);
  if (v['step-size'] !== undefined) c.stepSize = intOption('step-size', v['step-size'], 20, ...R.stepSize);
  if (v.gamma !== undefined) c.gamma = numberOption('gamma', v.gamma, 0.1, Number.MIN_VALUE, 1);
  return c;
}

function perClassOf(m: Metrics, labels: string[]): FinetuneReport['perClass'] {
  return Object.fromEntries(labels.map((l, i) => [l, m.perClass[i]!]));
}

export const finetune = {
  summary: 'train a new classification head on a frozen backbone (augmentation, early stopping) and export one ONNX model',
  usage,
  async run(argv: string[], io: CommandIO): Promise<number> {
    const t0 = performance.now();
    const { values: v, positionals } = parse(argv, {
      val: { type: 'string' },
      'val-split': { type: 'string' },
      augment: { type: 'string' },
      views: { type: 'string' },
      cache: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
      model: { type: 'string' },
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
      out: { type: 'string', default: 'finetuned.onnx' },
      int8: { type: 'boolean', default: false },
      resume: { type: 'string' },
      'add-class': { type: 'string', multiple: true },
      unfreeze: { type: 'string' },
      'unfreeze-from': { type: 'string' },
      'backbone-lr': { type: 'string' },
      'unfreeze-epochs': { type: 'string' },
      json: { type: 'boolean', default: false },
      ...SESSION_OPTIONS,
      ...CARD_OPTIONS,
    });
    const warnings: string[] = [];
    const warn = (m: string) => {
      warnings.push(m);
      io.stderr.write(`edgetune: warning: ${m}\n`);
    };
    // ---- options (all checked before any work)
    let augment: AugmentSpec;
    try {
      augment = parseAugmentation(v.augment ?? D.augment);
    } catch (err) {
      throw new EdgetuneError('EARG', messageOf(err));
    }
    const viewsAsked = intOption('views', v.views, D.views, ...R.views);
    if (isIdentitySpec(augment) && v.views !== undefined && viewsAsked > 1) warn('--augment none: one view per image (--views ignored)');
    const cfg = trainConfigFrom(v);
    const seed = cfg.seed ?? D.seed;
    const headKind: HeadKind = oneOfOption('head', v.head, ['linear', 'mlp', 'prototype'] as const, v.hidden !== undefined ? 'mlp' : D.head);
    if (headKind === 'mlp') {
      const sizes = v.hidden === undefined ? [D.hidden] : v.hidden.split(',').map((h) => intOption('hidden', h.trim(), D.hidden, ...R.hidden));
      if (sizes.length > 8) throw invalidOption('hidden', '1 to 8 hidden layers', v.hidden);
      cfg.hidden = sizes.length === 1 ? sizes[0]! : sizes;
    }
    if (headKind === 'linear' && v.hidden !== undefined) throw new EdgetuneError('EARG', '--hidden needs --head mlp');
    const valSplitGiven = v['val-split'] !== undefined;
    const valSplit = numberOption('val-split', v['val-split'], D.valSplit, 0, 0.9);
    const out = path.resolve(v.out);
    if (!/\.onnx$/i.test(out)) throw invalidOption('out', 'a file name ending in .onnx', v.out);
    const added = v['add-class'] ?? [];
    if (added.length && !v.resume) throw new EdgetuneError('EARG', '--add-class needs --resume <model.onnx>');
    if (v.resume && positionals.length !== added.length) {
      throw new EdgetuneError('EARG', `--resume takes one folder per --add-class: ${added.length} --add-class given, ${positionals.length} folder(s)`);
    }
    if (!v.resume && positionals.length !== 1) throw new EdgetuneError('EARG', `finetune: expected one training folder but received ${positionals.length}\n\n${usage}`);
    if (v.unfreeze !== undefined && v['unfreeze-from'] !== undefined) throw new EdgetuneError('EARG', '--unfreeze and --unfreeze-from say the same thing: give one');
    const unfreeze: number | string | undefined = v['unfreeze-from'] !== undefined ? v['unfreeze-from'] : v.unfreeze !== undefined ? intOption('unfreeze', v.unfreeze, 1, 1) : undefined;
    if (unfreeze === undefined && (v['backbone-lr'] !== undefined || v['unfreeze-epochs'] !== undefined)) throw new EdgetuneError('EARG', '--backbone-lr and --unfreeze-epochs need --unfreeze <n> or --unfreeze-from <tensor>');
    if (unfreeze !== undefined && headKind === 'prototype') throw new EdgetuneError('EARG', '--unfreeze needs a trained head: --head linear or mlp');
    if (unfreeze !== undefined && v.resume) {
      throw new EdgetuneError('EARG', "--unfreeze trains from every image's pixels and --resume keeps only their embeddings: resume without --unfreeze (a tuned backbone stays tuned), or run finetune --unfreeze on the training folders with the new class in them");
    }
    const backboneLr = v['backbone-lr'] !== undefined ? numberOption('backbone-lr', v['backbone-lr'], 0, Number.MIN_VALUE, 10) : undefined;
    const unfreezeEpochs = intOption('unfreeze-epochs', v['unfreeze-epochs'], UNFREEZE_DEFAULTS.epochs);
    const paths = reportPaths(out);
    const resumeFile = resumePath(out);
    // every file of the output set, before any work; none may be the base model (`--resume m.onnx --out m.onnx` replaces m.onnx on purpose)
    await checkWritable(out, '--out', {
      also: [paths.json, resumeFile, out.replace(/\.onnx$/i, '.fp32.onnx'), out.replace(/\.onnx$/i, '') + '.calibration.cache'],
      inputs: v.resume ? [] : [v.model],
    });

    // ---- backbone and data
    let backbone: Backbone;
    let trainDir: string;
    let prior: ResumeData | undefined;
    let provTrain: string | undefined;
    let provAdded: { name: string; dir: string }[] = [];
    let valDir = v.val;
    let split = valDir ? 0 : valSplit;
    const addedDirs: { name: string; dir: string }[] = added.map((name, i) => ({ name, dir: path.resolve(positionals[i]!) }));
    if (v.resume) {
      const file = path.resolve(v.resume);
      // external data (weights in model.onnx.data) is read relative to the model file and inlined: the model written is self-contained
      // an --int8 model is resumed from its float pair (<name>.fp32.onnx); its resume data is keyed by the named file
      const { keyBytes, model: loaded } = await openResumedModel(file, warn);
      const prev = headFromModel(loaded, v.resume as string);
      prior = await readResume(file, resumeKey(keyBytes), warn);
      const prov = prev.info.provenance as unknown as Provenance | undefined;
      if (!prov?.base?.key || !prov.dataset?.train) throw new EdgetuneError('EMODEL', `${v.resume}: has no fine-tuning provenance (base model, dataset folders); it cannot be resumed`);
      backbone = { id: prov.base.id, model: prev.model, spec: prev.info.preprocess, cut: prev.cut, key: prov.base.key, sha256: prov.base.sha256 };
      trainDir = path.resolve(prov.dataset.train);
      provTrain = path.isAbsolute(prov.dataset.train) ? shownDir(trainDir) : prov.dataset.train;
      // with resume data the earlier added classes are in it: their folders are kept as provenance only
      if (prior) provAdded = (prov.dataset.added ?? []).filter((a) => !added.includes(a.name)).map((a) => ({ name: a.name, dir: path.isAbsolute(a.dir) ? shownDir(a.dir) : a.dir }));
      if (!valDir && prov.dataset.val && !prior) valDir = prov.dataset.val;
      if (!valDir && !valSplitGiven) split = prov.dataset.valSplit;
      if (!prior) addedDirs.unshift(...(prov.dataset.added ?? []).filter((a) => !added.includes(a.name)).map((a) => ({ name: a.name, dir: path.resolve(a.dir) })));
      if (!v.augment) augment = parseAugmentation(prov.augment);
      if (v.model) warn('--model is ignored with --resume (the backbone comes from the resumed model)');
    } else {
      trainDir = path.resolve(positionals[0]!);
      backbone = await loadBackbone(v.model ?? 'mobilenetv2-int8', await cardLayerFrom(v));
      if (backbone.assumed) warn(`${backbone.id}: nothing describes some of this backbone; assumed ${backbone.assumed.join('; ')}`);
    }
    const views = viewCount(augment, viewsAsked);
    const task = oneOfOption('task', v.task, TASKS, 'classification');
    if (task !== 'classification') {
      if (unfreeze !== undefined || v.resume || v.int8) throw new EdgetuneError('EARG', `--task ${task} trains a head on the frozen backbone: --unfreeze, --resume and --int8 are for classification`);
      return runTargets(task, { csv: trainDir, valCsv: valDir, valSplit: split, backbone, augment, views, head: headKind, config: cfg, out, paths, json: Boolean(v.json), cacheDir: v['no-cache'] ? null : v.cache, session: providersFrom(v, io), io, warn, t0 });
    }
    // --unfreeze: where to cut, checked before any embedding work (an int8 backbone is refused here)
    const plan = unfreeze !== undefined ? planUnfreeze(backbone.model, backbone.cut.tensor, unfreeze, backbone.id) : undefined;
    // resuming with the resume data: only the added classes' folders are read
    const data = prior
      ? await addedItems(prior.labels, addedDirs, prior.images.some((im) => im.split === 'val') || split > 0 ? valSplit : 0, seed)
      : await finetuneItems({ trainDir, valDir, added: addedDirs, valSplit: split, addedValSplit: valSplit, seed }).catch((err) => {
          if (v.resume && err instanceof EdgetuneError) throw new EdgetuneError(err.code, `${err.message} (${v.resume} has no ${path.basename(resumePath(v.resume))} beside it, so --resume reads the original training folders again)`, { subject: err.subject });
          throw err;
        });
    const { labels, skipped } = data;
    const trainItems = data.train;
    const valItems = data.val;
    for (const s of skipped) warn(`skipped ${s.file}: ${s.reason}`);

    // ---- embeddings (runtime/train/finetune.ts collects them; this driver's embedder reads files and caches)
    const signal = interruptSignal();
    const sessionOpts = providersFrom(v, io);
    const transfer = createTransfer({ labels });
    const embedder = await Embedder.open(backbone, sessionOpts);
    const cache = v['no-cache'] ? null : new EmbeddingCache(v.cache ? path.resolve(v.cache) : undefined);
    const hashes = new Map<string, string>();
    const files: ViewEmbedder<DatasetItem> = {
      embed: async (items, o) => {
        const r = await embedder.embed(items.map((i) => i.file), { ...o, cache });
        items.forEach((it, i) => r.hashes[i] && hashes.set(it.file, r.hashes[i]!));
        return r;
      },
    };
    // the resumed model's images first, from its resume data (rows in its order)
    const priorItems = prior ? feedPrior(transfer, prior, hashes) : undefined;
    let collected;
    let bar: ReturnType<typeof progress> | undefined;
    let stage = '';
    try {
      collected = await collectEmbeddings(transfer, files, {
        train: trainItems,
        val: valItems,
        augment,
        views,
        seed,
        signal: signal.signal,
        onProgress(s, done, total) {
          if (s !== stage) {
            bar?.done();
            stage = s;
            bar = progress(io, s === 'train' ? `embedding ${trainItems.length} training images × ${views} views` : `embedding ${valItems.length} validation images`);
          }
          bar!.update(done, total);
        },
      });
      bar?.done();
    } catch (err) {
      signal.dispose();
      throw err;
    } finally {
      await embedder.dispose();
    }
    for (const s of collected.skipped) {
      skipped.push(s);
      warn(`skipped ${s.file}: ${s.reason}`);
    }
    const newVal = collected.val; // image files (the resumed model's are embeddings only), for the int8 scores
    if (priorItems) {
      collected.train = [...priorItems.train, ...collected.train];
      collected.val = [...priorItems.val, ...collected.val];
    }
    // leakage: validation images byte-identical to training images (the embeddings are keyed by content already)
    const leakage = sharedByHash(collected.train, collected.val, hashes);
    const leakWarning = sharedFilesWarning(leakage, 'validation', 'training', collected.val.length);
    if (leakWarning) warn(leakWarning);
    try {
      checkNoEmptyClass(collected.train, labels, trainDir);
    } catch (err) {
      signal.dispose();
      throw err;
    }
    const trainCounts = classCounts(collected.train, labels.length);
    const valCounts = classCounts(collected.val, labels.length);
    const imb = imbalanceWarning(trainCounts, labels);
    if (imb) warn(imb);

    // ---- head
    const tt = performance.now();
    const tty = Boolean(io.stderr.isTTY);
    let trained;
    try {
      trained = await transfer.train(
        { head: headKind, config: cfg },
        {
          signal: signal.signal,
          onEpoch: (s) => {
            if (tty) io.stderr.write(`\r\x1b[Kepoch ${s.epoch}/${cfg.epochs} lr ${s.lr.toExponential(2)} loss ${s.trainLoss.toFixed(4)} acc ${s.trainAccuracy.toFixed(3)}${s.valLoss !== undefined ? ` val_loss ${s.valLoss.toFixed(4)} val_acc ${s.valAccuracy!.toFixed(3)}` : ''}`);
          },
        },
      );
    } catch (err) {
      throw err instanceof Error && !(err instanceof EdgetuneError) ? new EdgetuneError('EARG', messageOf(err)) : err;
    } finally {
      signal.dispose();
    }
    if (tty && trained.training) io.stderr.write('\n');
    const { training: result, validated, prototypeAccuracy: protoAcc } = trained;
    let { head, metrics } = trained;
    const tTrain = (performance.now() - tt) / 1000;

    // ---- phase 2 (--unfreeze): runtime/train/node/phase2.ts (cut activations per view, then tail + head)
    let phase2: FinetuneReport['unfreeze'];
    let tunedBackbone: OnnxModel | undefined;
    // after phase 2 the model embeds with the tuned backbone: its cache key and every image's rows under it
    let tunedKey: string | undefined;
    let tunedRows: { train: Float32Array; val?: Float32Array } | undefined;
    if (plan) {
      const signal2 = interruptSignal();
      const bar2 = progress(io, `activations at ${plan.cut.cut} for ${collected.train.length} training images × ${views} views`);
      let p2;
      try {
        p2 = await runPhase2({
          plan, backbone, head, labels, train: collected.train, val: collected.val, views, augment, seed, cache, session: sessionOpts, signal: signal2.signal,
          config: {
            epochs: unfreezeEpochs,
            optimizer: cfg.optimizer ?? D.optimizer,
            lrHead: cfg.lr ?? DEFAULT_LR[cfg.optimizer ?? D.optimizer],
            ...(backboneLr !== undefined ? { lrBackbone: backboneLr } : {}),
            weightDecay: cfg.weightDecay,
            dropout: cfg.dropout,
            labelSmoothing: cfg.labelSmoothing,
            ...(v.patience !== undefined ? { patience: cfg.patience } : {}),
          },
          onActivations: (d, n) => bar2.update(d, n),
          onEpoch: (e) => {
            if (e.epoch === 1) bar2.done();
            if (tty) io.stderr.write(`\r\x1b[Kphase 2 epoch ${e.epoch}/${unfreezeEpochs} loss ${e.trainLoss.toFixed(4)} acc ${e.trainAccuracy.toFixed(3)}${e.valLoss !== undefined ? ` val_loss ${e.valLoss.toFixed(4)} val_acc ${e.valAccuracy!.toFixed(3)}` : ''}`);
            else io.stderr.write(`edgetune: phase 2 epoch ${e.epoch}/${unfreezeEpochs} loss ${e.trainLoss.toFixed(4)}${e.valLoss !== undefined ? ` val_loss ${e.valLoss.toFixed(4)} val_acc ${e.valAccuracy!.toFixed(3)}` : ''}\n`);
          },
        });
      } finally {
        signal2.dispose();
      }
      if (tty) io.stderr.write('\n');
      head = p2.head;
      metrics = p2.metrics;
      tunedBackbone = p2.backbone;
      phase2 = { ...p2.summary, blocks: typeof unfreeze === 'number' ? unfreeze : null };
      tunedRows = p2.embeddings;
      tunedKey = p2.key;
    }

    // ---- export
    const provenance: Provenance = {
      tool: 'edgetune finetune',
      base: { id: backbone.id, sha256: backbone.sha256, key: tunedKey ?? backbone.key, cut: backbone.cut.tensor },
      dataset: {
        train: provTrain ?? shownDir(trainDir),
        val: valDir ? shownDir(path.resolve(valDir)) : undefined,
        valSplit: split,
        added: [...provAdded, ...addedDirs.map((a) => ({ name: a.name, dir: shownDir(a.dir) }))],
        images: collected.train.length + collected.val.length,
        sha256: sha256([...collected.train, ...collected.val].map((i) => hashes.get(i.file) ?? '').sort().join('\n')),
        resume: path.basename(resumeFile),
      },
      augment: formatAugmentation(augment),
      views,
      head: headKind,
      seed,
      created: new Date().toISOString(),
    };
    // the embedding graph the embedder ran, reused (not rebuilt) for the export
    const bytes = tunedBackbone
      ? exportClassifierModel(tunedBackbone, backbone.cut, head, labels, backbone.spec, { ...provenance, unfreeze: phase2 && { cut: phase2.cut, blocks: phase2.blocks, lrBackbone: phase2.lrBackbone } } as unknown as Record<string, unknown>)
      : transfer.export(embedder.graph, backbone.spec, provenance as unknown as Record<string, unknown>);
    const count = (c: number[]) => Object.fromEntries(labels.map((l, i) => [l, c[i]!]));
    const report: FinetuneReport = {
      model: out,
      base: backbone.id,
      labels,
      counts: { train: count(trainCounts), val: count(valCounts) },
      skipped,
      augment: formatAugmentation(augment),
      views,
      head: head.kind,
      config: result?.config,
      bestEpoch: result?.bestEpoch ?? 0,
      epochs: result?.history.length ?? 0,
      stoppedEarly: result?.stoppedEarly ?? false,
      accuracy: validated ? metrics.accuracy : null,
      prototypeAccuracy: protoAcc,
      trainAccuracy: trained.trainAccuracy,
      perClass: perClassOf(metrics, labels),
      confusion: metrics.confusion,
      history: result?.history ?? [],
      timing: { embeddingS: round(collected.seconds), trainingS: round(tTrain), totalS: 0, embedded: collected.computed, cacheHits: collected.hits },
      warnings,
      report: paths,
      ...(phase2 ? { unfreeze: phase2 } : {}),
      leakage,
    };
    await mkdir(path.dirname(out), { recursive: true });
    // what --resume needs: every image's rows (the transfer's order: train rows, then validation rows)
    const resumeData = resumeDataOf({
      labels, dims: transfer.dims, train: collected.train, val: collected.val, prior: priorItems, views: collected.views, hashes,
      trainRows: tunedRows?.train ?? transfer.trainSet().features, valRows: tunedRows ? tunedRows.val : transfer.valSet()?.features,
    });
    // The outputs are one set (runtime/io/atomic.ts writeAtomicSet): the model, its resume data and
    // report JSON (and with --int8 the float model and the calibration table) are all written to temp
    // files first and only then renamed, so an interrupted run leaves the old set, never a mix.
    const set: AtomicEntry[] = [];
    const alreadyInt8 = isQuantizedGraph(backbone.model.graph);
    if (v.int8 && alreadyInt8) warn(`--int8: the backbone ${backbone.id} is already int8 (only the small head is float); the model is written as it is`);
    let modelBytes = bytes;
    let stop8: ReturnType<typeof interruptSignal> | undefined;
    try {
      if (v.int8 && !alreadyInt8) {
        // the training folder may be gone when resuming from resume data: calibrate on the added classes then
        const calib = prior && !(await stat(trainDir).then((st) => st.isDirectory(), () => false)) ? addedDirs[0]!.dir : trainDir;
        if (calib !== trainDir) warn(`--int8: ${trainDir} is gone; calibrating on ${calib}`);
        // Ctrl-C here stops calibration between images: nothing is written, the old set stays (exit 130);
        // the handler stays until the set is written (a signal after calibration stops before the renames)
        stop8 = interruptSignal(`during the --int8 step; nothing was written (${path.basename(out)} and its set are as they were)`);
        const bar8 = progress(io, 'int8: calibrating and scoring');
        bar8.update(0, 1);
        // off a terminal the bar is silent: one line says the (long) step began
        if (!io.stderr.isTTY) io.stderr.write(`edgetune finetune: --int8: calibrating on up to ${INT8_CALIBRATION_IMAGES} training images and scoring both models\n`);
        const q = await quantizeFinetuned({ floatBytes: bytes, out, calib, seed, spec: backbone.spec, labels, val: newVal, session: sessionOpts, onWarning: warn, signal: stop8.signal });
        bar8.done();
        modelBytes = q.bytes;
        report.int8 = q.report;
        if (!valDir && collected.val.length) warn(`--int8: calibration images are drawn from ${trainDir}, which also holds the ${collected.val.length} validation images; pass --val to keep them apart`);
        set.push(...q.entries);
      } else {
        // no float twin or table of an older --int8 run is left beside this model
        set.push({ file: out, data: bytes }, { file: out.replace(/\.onnx$/i, '.fp32.onnx'), remove: true }, { file: out.replace(/\.onnx$/i, '') + '.calibration.cache', remove: true });
      }
      report.modelSha256 = sha256(modelBytes);
      report.timing.totalS = round((performance.now() - t0) / 1000);
      set.push({ file: resumeFile, data: encodeResume({ ...resumeData, model: resumeKey(modelBytes) }) }, { file: paths.json, data: JSON.stringify(report, null, 2) + '\n' });
      // the picture is drawn after the model and its JSON are written: the old one goes with the set,
      // so that no picture of an older model stays beside this one
      set.push({ file: paths.png, remove: true });
      stop8?.signal.throwIfAborted();
      await writeAtomicSet(set);
    } finally {
      stop8?.dispose();
    }
    // ---- the picture: drawn last; a failure is a warning (the model and JSON are written)
    try {
      const png = await reportPng({
        title: `${path.basename(out)}: ${labels.length} classes on ${backbone.id}`,
        // both phases' curves: phase 2's epochs follow phase 1's (lr = the backbone's)
        history: [...report.history, ...(phase2?.history ?? []).map((e) => ({ epoch: report.history.length + e.epoch, lr: phase2!.lrBackbone, trainLoss: e.trainLoss, trainAccuracy: e.trainAccuracy, valLoss: e.valLoss, valAccuracy: e.valAccuracy, ms: e.ms }))],
        bestEpoch: phase2 ? report.history.length + phase2.bestEpoch : report.bestEpoch,
        // each phase in its own epoch numbers, as the summary below prints them
        phases: phase2 ? [{ name: 'phase 1', epochs: report.history.length, best: report.bestEpoch }, { name: 'phase 2', epochs: phase2.history.length, best: phase2.bestEpoch }] : undefined,
        labels,
        confusion: metrics.confusion,
        notes: [
          `${validated ? 'validation' : 'training'} accuracy ${metrics.accuracy.toFixed(3)}${protoAcc !== null ? ` (prototype baseline ${protoAcc.toFixed(3)})` : ''}; head ${head.kind}; best epoch ${report.bestEpoch}/${report.epochs}`,
          `augment ${report.augment}, ${views} view(s); embedding ${report.timing.embeddingS}s, training ${report.timing.trainingS}s`,
          ...(phase2 ? [`phase 2: ${phase2.blocks ?? 'from ' + phase2.cut} block(s) unfrozen at lr ${phase2.lrBackbone}, accuracy ${phase2.accuracyBefore.toFixed(3)} → ${phase2.accuracy.toFixed(3)}, best epoch ${phase2.bestEpoch}/${phase2.epochs}`] : []),
        ],
      });
      await writeAtomicSet([{ file: paths.png, data: png }]);
    } catch (err) {
      warn(`the report picture ${paths.png} could not be drawn or written (${messageOf(err).split('\n')[0]}); the model and ${path.basename(paths.json)} are written`);
      await rm(paths.png, { force: true }).catch(() => undefined);
      await writeAtomicSet([{ file: paths.json, data: JSON.stringify(report, null, 2) + '\n' }]).catch(() => undefined);
    }
    if (v.json) writeJson(io, report);
    else {
      io.stdout.write(`${out}: ${labels.length} classes (${labels.join(', ')}), head ${head.kind}, base ${backbone.id}\n`);
      io.stdout.write(`train ${collected.train.length} images × ${views} views, validation ${collected.val.length}; skipped ${skipped.length}\n`);
      const how = result ? `best epoch ${report.bestEpoch}/${report.epochs}${report.stoppedEarly ? ' (stopped early)' : ''}` : 'no training (nearest class mean)';
      if (validated) io.stdout.write(`validation accuracy ${metrics.accuracy.toFixed(3)} (prototype baseline ${protoAcc!.toFixed(3)}), ${how}\n`);
      else io.stdout.write(`training accuracy ${trained.trainAccuracy.toFixed(3)} (no validation data), ${how}\n`);
      if (phase2) io.stdout.write(`phase 2: unfroze ${phase2.blocks !== null ? `${phase2.blocks} block(s)` : `from ${phase2.cut}`} (${phase2.parameters} parameters, lr ${phase2.lrBackbone}): ${validated ? 'validation' : 'training'} accuracy ${phase2.accuracyBefore.toFixed(3)} → ${phase2.accuracy.toFixed(3)}, best epoch ${phase2.bestEpoch}/${phase2.epochs}, ${phase2.trainingS}s\n`);
      if (report.int8?.accuracyInt8 != null) io.stdout.write(`int8: validation accuracy ${report.int8.accuracyInt8.toFixed(3)} (float ${report.int8.accuracyFloat!.toFixed(3)}) on ${report.int8.images} images\n`);
      io.stdout.write(`time: embedding ${report.timing.embeddingS}s (${report.timing.embedded} computed, ${report.timing.cacheHits} cached), training ${report.timing.trainingS}s, total ${report.timing.totalS}s\n`);
      io.stdout.write(`report: ${paths.png}, ${paths.json}\n`);
    }
    return 0;
  },
};

function round(s: number): number {
  return Math.round(s * 100) / 100;
}

/** --task multilabel | regression: runtime/train/node/finetune-targets.ts does the work; this writes the model and a JSON report. */
async function runTargets(
  task: 'multilabel' | 'regression',
  o: {
    csv: string; valCsv?: string; valSplit: number; backbone: Backbone; augment: AugmentSpec; views: number; head: HeadKind; config: Partial<TrainConfig>;
    out: string; paths: { json: string; png: string }; json: boolean; cacheDir: string | null | undefined; session: SessionOptions; io: CommandIO; warn: (m: string) => void; t0: number;
  },
): Promise<number> {
  const signal = interruptSignal();
  const bar = progress(o.io, `embedding (${task})`);
  let r;
  try {
    r = await finetuneTargets({
      task, csv: o.csv, valCsv: o.valCsv, valSplit: o.valSplit, backbone: o.backbone, augment: o.augment, views: o.views, head: o.head, config: o.config,
      cache: o.cacheDir === null ? null : new EmbeddingCache(o.cacheDir ? path.resolve(o.cacheDir) : undefined), session: o.session, signal: signal.signal,
      onProgress: (_s, d, n) => bar.update(d, n),
    });
  } finally {
    bar.done();
    signal.dispose();
  }
  for (const s of r.skipped) o.warn(`skipped ${s.where}: ${s.reason}`);
  const leak = sharedFilesWarning(r.leakage, 'validation', 'training', r.val.length);
  if (leak) o.warn(leak);
  const report = {
    model: o.out, task, base: o.backbone.id, names: r.names, train: r.train.length, val: r.val.length, views: o.views, augment: formatAugmentation(o.augment),
    head: r.training.head.kind, config: r.training.config, bestEpoch: r.training.bestEpoch, epochs: r.training.history.length, validated: r.validated,
    metrics: r.metrics, history: r.training.history, skipped: r.skipped, leakage: r.leakage, totalS: round((performance.now() - o.t0) / 1000),
  };
  // the model and its report are one set (replaced together)
  await writeAtomicSet([{ file: o.out, data: r.bytes }, { file: o.paths.json, data: JSON.stringify(report, null, 2) + '\n' }]);
  if (o.json) writeJson(o.io, report);
  else {
    const m = r.metrics as { microF1?: number; macroF1?: number; exactMatch?: number; mae?: number; rmse?: number; r2?: number };
    o.io.stdout.write(`${o.out}: ${task} head on ${o.backbone.id}, ${r.names.length} ${task === 'multilabel' ? 'labels' : 'outputs'} (${r.names.join(', ')})\n`);
    o.io.stdout.write(`train ${r.train.length} images × ${o.views} views, ${r.validated ? 'validation' : 'training'} ${r.validated ? r.val.length : r.train.length}: `);
    o.io.stdout.write(task === 'multilabel' ? `micro F1 ${m.microF1!.toFixed(3)}, macro F1 ${m.macroF1!.toFixed(3)}, exact match ${m.exactMatch!.toFixed(3)}\n` : `MAE ${m.mae!.toPrecision(4)}, RMSE ${m.rmse!.toPrecision(4)}, R² ${m.r2!.toFixed(3)}\n`);
    o.io.stdout.write(`report: ${o.paths.json}\n`);
  }
  return 0;
}
