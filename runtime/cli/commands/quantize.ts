// `edgetune quantize`: int8 post-training quantization of a float ONNX classifier with calibration
// (calibration/index.ts does the work). Prints the float-vs-int8 report as a table, or one JSON
// object with --json; progress on a TTY; Ctrl-C stops between images and leaves no partial file.

import path from 'node:path';
import { checkWritable } from '../../io/atomic.js';
import { CALIBRATION_METHODS, DEFAULT_CORRECTION_IMAGES, DEFAULT_LATENCY_BUDGET, DEFAULT_GPTQ_IMAGES, DEFAULT_SENSITIVITY_IMAGES, quantizeModel, type QuantizeResult } from '../../../calibration/index.js';
import { precisionTable, reportTable, sensitivityTable } from '../../../calibration/report.js';
import { interruptSignal, progress } from '../../io/progress.js';
import { intOption, listOption, numberOption, OPTION_RANGES as R, parse, writeJson, type Command } from '../args.js';
import { EdgetuneError, checkOneOf } from '../../core/errors.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';
import { expandInputs, findSharedFiles, isImageFile, sharedFilesWarning, type SharedFiles } from '../../io/files.js';

const usage = `Usage: edgetune quantize --model <id|file> --calib <dir> --out <file.onnx> [options]

int8 post-training quantization (QDQ format: runs on CPU, CUDA and TensorRT). The model keeps float32
inputs and outputs and embeds its labels and preprocessing, so \`edgetune classify --model <out>\` serves it.

Options:
  --model <id|file>     float32/float16 registry id or .onnx path (required)
  --calib <dir>         calibration images (recursive, any class layout); not needed with a matching --cache
  --out <file.onnx>     output model, replaced atomically (required); also writes <out>.calibration.cache
                        (TensorRT table) and, with --eval, <out>.report.json
  --method <m>          minmax | percentile | entropy (TensorRT's KL search) | mse (default percentile)
  --percentile <p>      for --method percentile (default 99.999)
  --calib-count <n>     calibration images drawn with a seeded sample (default 300)
  --seed <n>            sample seed (default 1)
  --per-channel         per-channel int8 weights (the default)
  --per-tensor          one scale per weight tensor instead
  --symmetric           int8 activations with zero point 0 and dedicated Q/DQ pairs (TensorRT layout;
                        on x86 CPUs the default uint8 activations are the fast ones)
  --no-bias-correction  keep the float biases (default: each Conv/Gemm bias absorbs the mean error of its
                        rounded weights, measured on the calibration images)
  --correction-images <n>  then re-measure each quantized layer's output mean on n calibration images
                        and correct its bias to the float model's, layer by layer (default 64; 0 = off)
  --gptq-images <n>     re-round Conv weights with GPTQ error feedback using n calibration images (same
                        scales and graph; default 0 = off; helps MobileNetV1, not SqueezeNet)
  --exclude <list>      node names, operator types or node output names kept in float, comma-separated
  --sensitivity         score each quantized layer's weights and each quantized activation alone against
                        the float model on calibration images (mean KL, top-1 agreement) and list the
                        costliest: the candidates for --exclude (also in --json and the report file);
                        classifiers only, as --keep-float
  --sensitivity-images <n>  calibration images for --sensitivity (default ${DEFAULT_SENSITIVITY_IMAGES})
  --keep-float <n|auto> mixed precision: keep the n layers whose int8 weights cost the most (scored as
                        --sensitivity does) in float; quantizes twice (default 0). auto: each layer
                        scored float alone (weights and input) and its float and int8 kernels timed on
                        this machine; kept float where int8 is not faster, then by accuracy gained per
                        ms within --latency-budget
  --latency-budget <p>  for --keep-float auto: the latency the float layers may add, in percent of the
                        int8 model's kernel time (default ${DEFAULT_LATENCY_BUDGET * 100})
  --cache <file.json>   calibration cache: reused when it matches the model (any method), else written
  --eval <dir>          images for the float-vs-int8 report (class folders named like labels give accuracy);
                        a regression model's report gives each output's mean and max |int8 − float| (in
                        its units) and, with <dir>/labels.csv (file,value rows as finetune --val reads),
                        MAE / RMSE / R² of both models against those targets; a multilabel model's
                        gives the share of label decisions (p > 0.5) that agree, each label's mean and
                        max |p int8 − p float| and, with <dir>/labels.csv (file,label1;label2 rows as
                        finetune --task multilabel reads), micro / macro F1 of both models
  --eval-count <n>      evaluate on a seeded sample of n images
  --json                print the result as one JSON object
  --allow-assumed       quantize even when nothing describes the model's preprocessing (no registry
                        entry, card file, embedded card or flags): the assumed values are used and listed
${SESSION_USAGE}

${CARD_USAGE}`;

export const quantize: Command = {
  summary: 'int8 post-training quantization with calibration (QDQ)',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(
      argv,
      {
        model: { type: 'string', path: 'a model' },
        calib: { type: 'string', path: 'folder' },
        out: { type: 'string', path: 'file' },
        method: { type: 'string', default: 'percentile' },
        percentile: { type: 'string' },
        'calib-count': { type: 'string' },
        seed: { type: 'string' },
        'per-channel': { type: 'boolean', default: false },
        'per-tensor': { type: 'boolean', default: false },
        symmetric: { type: 'boolean', default: false },
        'no-bias-correction': { type: 'boolean', default: false },
        'correction-images': { type: 'string' },
        'gptq-images': { type: 'string' },
        exclude: { type: 'string' },
        sensitivity: { type: 'boolean', default: false },
        'sensitivity-images': { type: 'string' },
        'keep-float': { type: 'string' },
        'latency-budget': { type: 'string' },
        cache: { type: 'string', path: 'file' },
        eval: { type: 'string', path: 'folder' },
        'eval-count': { type: 'string' },
        json: { type: 'boolean', default: false },
        'allow-assumed': { type: 'boolean', default: false },
        ...SESSION_OPTIONS,
        ...CARD_OPTIONS,
      },
      false,
    );
    void positionals;
    if (!v.model) throw new EdgetuneError('EARG', 'quantize: --model is required\n\n' + usage);
    if (!v.out) throw new EdgetuneError('EARG', 'quantize: --out is required\n\n' + usage);
    if (!v.calib && !v.cache) throw new EdgetuneError('EARG', 'quantize: --calib (or a --cache from an earlier run) is required\n\n' + usage);
    if (v['per-channel'] && v['per-tensor']) throw new EdgetuneError('EARG', 'quantize: --per-channel and --per-tensor exclude each other');
    const method = checkOneOf('--method', v.method, CALIBRATION_METHODS);
    const json = Boolean(v.json);
    // --out and the files of its set are checked before any work (calibration takes minutes)
    const stem = v.out.replace(/\.onnx$/i, '');
    await checkWritable(v.out, '--out', { also: [`${stem}.calibration.cache`, `${stem}.report.json`], inputs: [v.model, v.cache] });
    const session = providersFrom(v, io);
    // leakage: evaluation images byte-identical to calibration-folder images (copies under other names or
    // folders) overstate the int8 score; the same folder twice is reported by the quantizer itself
    let leakage: SharedFiles | undefined;
    if (v.calib && v.eval && path.resolve(v.calib) !== path.resolve(v.eval)) {
      const list = async (d: string) => (await expandInputs([d], () => undefined)).filter(isImageFile);
      const evalFiles = await list(v.eval);
      leakage = await findSharedFiles(await list(v.calib), evalFiles);
      const w = sharedFilesWarning(leakage, 'evaluation', 'calibration', evalFiles.length);
      if (w) io.stderr.write(`edgetune: warning: ${w}\n`);
    }
    const intr = interruptSignal();
    const bars = { calibrate: progress(io, 'calibrating'), gptq: progress(io, 'GPTQ rounding'), correct: progress(io, 'correcting biases'), sensitivity: progress(io, 'scoring each tensor'), precision: progress(io, 'scoring and timing each layer'), evaluate: progress(io, 'evaluating') };
    let result: QuantizeResult;
    try {
      result = await quantizeModel({
        model: v.model,
        card: await cardLayerFrom(v),
        allowAssumed: Boolean(v['allow-assumed']),
        out: v.out,
        calib: v.calib,
        calibCount: intOption('calib-count', v['calib-count'], 300, ...R.images),
        seed: intOption('seed', v.seed, 1, 0),
        method,
        percentile: numberOption('percentile', v.percentile, 99.999, 0.001, 100),
        perChannel: !v['per-tensor'],
        symmetric: Boolean(v.symmetric),
        exclude: listOption(v.exclude),
        biasCorrection: !v['no-bias-correction'],
        correctionImages: intOption('correction-images', v['correction-images'], DEFAULT_CORRECTION_IMAGES, ...R.imagesOrNone),
        gptqImages: intOption('gptq-images', v['gptq-images'], DEFAULT_GPTQ_IMAGES, ...R.imagesOrNone),
        sensitivityImages: v.sensitivity ? intOption('sensitivity-images', v['sensitivity-images'], DEFAULT_SENSITIVITY_IMAGES, 1) : 0,
        keepFloat: v['keep-float'] === 'auto' ? 'auto' : intOption('keep-float', v['keep-float'], 0, 0, 10_000),
        latencyBudget: numberOption('latency-budget', v['latency-budget'], DEFAULT_LATENCY_BUDGET * 100, 0, 1000) / 100,
        cache: v.cache,
        eval: v.eval,
        evalCount: v['eval-count'] === undefined ? undefined : intOption('eval-count', v['eval-count'], 1, ...R.images),
        providers: session.providers,
        threads: session.threads,
        onWarning: session.onWarning,
        signal: intr.signal,
        onProgress: (stage, done, total) => {
          bars[stage].update(done, total);
          if (done === total) bars[stage].done();
        },
        onSkip: (s) => io.stderr.write(`edgetune: skipped ${s.error.startsWith(s.file) ? s.error : `${s.file}: ${s.error}`}\n`),
      });
    } finally {
      intr.dispose();
    }
    if (json) {
      // the output set's bytes are the files written, not part of the report
      writeJson(io, { ...result, ranges: undefined, files: undefined, ...(leakage?.count ? { leakage } : {}) });
      return 0;
    }
    const q = Object.entries(result.quantized).map(([op, n]) => `${n} ${op}`).join(', ');
    io.stdout.write(`wrote ${result.out} (${result.method}, ${result.calibrationImages} calibration images${result.cacheHit ? ' from cache' : ''}; int8: ${q})\n`);
    if (result.skipped.length) io.stdout.write(`skipped ${result.skipped.length} undecodable calibration image(s)\n`);
    io.stdout.write(`TensorRT calibration table: ${result.tableFile}\n`);
    // the report holds the rows when it was written by the pass that scored them (not --keep-float's second pass)
    if (result.sensitivity) io.stdout.write('\n' + sensitivityTable(result.sensitivity, 10, result.keptFloat ? undefined : result.reportFile));
    if (result.precision) io.stdout.write('\n' + precisionTable(result.precision));
    else if (result.keptFloat?.length) io.stdout.write(`kept in float: ${result.keptFloat.map((k) => `${k.name} (${k.op}, KL ${k.meanKL.toFixed(4)})`).join(', ')}\n`);
    if (result.report) {
      io.stdout.write('\n' + reportTable(result.report));
      if (result.reportFile) io.stdout.write(`report: ${result.reportFile}\n`);
    }
    return 0;
  },
};
