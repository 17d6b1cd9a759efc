// The accuracy/speed report (Node): float and int8 models run side by side on the --eval images
// with the same provider: top-1 agreement, top-5 overlap, mean KL(p_float ‖ p_int8), labelled
// accuracy of both when every class folder maps to a model label (hymenoptera: ants → "ant" 310,
// bees → "bee" 309), file sizes and median single-image latency measured interleaved in one run.

import path from 'node:path';
import { table } from '../runtime/core/format.js';
import { median } from '../runtime/core/stats.js';
import { messageOf } from '../runtime/core/errors.js';
import { decodeImage } from '../runtime/image/decode.js';
import { matchClassFolders } from '../runtime/core/labels.js';
import { klDivergence, toProbabilities, topK, type PostprocessSpec } from '../runtime/classify/postprocess.js';
import { toTensor, type PreprocessSpec } from '../runtime/image/preprocess.js';
import { createSession, type ModelSession, type SessionOptions } from '../runtime/session/session.js';
import { asFloat32 } from '../runtime/core/tensor.js';
import type { SkippedFile } from './reader.js';
import type { SensitivityReport } from './sensitivity.js';
import type { PrecisionChoice } from './mixed.js';

export interface QuantReport {
  images: number;
  agreementTop1: number;
  /**
   * Mean share of the float model's top 5 classes among the int8 model's top 5; null for a model with
   * 5 classes or fewer (its "top 5" is every class, so the overlap says nothing).
   */
  top5Overlap: number | null;
  meanKL: number;
  /** Top-1 accuracy on the images inside class folders; null when the eval folder's classes do not all map to model labels. */
  accuracyFloat: number | null;
  accuracyInt8: number | null;
  latencyFloatMs: number;
  latencyInt8Ms: number;
  /** latencyInt8Ms / latencyFloatMs */
  latencyRatio: number;
  sizeFloat: number;
  sizeInt8: number;
  provider: string;
  /** class folder → label index, for the folders that mapped (the folder rule: exact, normalised or singular, core/labels.ts). */
  classMap: Record<string, number>;
  skipped: SkippedFile[];
}

export interface ModelSide {
  model: string | Uint8Array;
  size: number;
  spec: PreprocessSpec;
  inputName: string;
  outputName: string;
}

export interface EvaluateOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  post: PostprocessSpec;
  /** Root of the eval folder (class = first folder level below it). */
  root: string;
  files: readonly string[];
  latencyRuns?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (s: SkippedFile) => void;
}



async function probs(session: ModelSession, side: ModelSide, img: Parameters<typeof toTensor>[0][number], post: PostprocessSpec): Promise<Float32Array> {
  const res = await session.run({ [side.inputName]: toTensor([img], side.spec) }, [side.outputName]);
  return toProbabilities(asFloat32(res[side.outputName]!).slice(), post.kind);
}

export async function evaluateQuantized(floatSide: ModelSide, int8Side: ModelSide, opts: EvaluateOptions): Promise<QuantReport> {
  const sessionOpts = { providers: opts.providers ?? ['cpu'], threads: opts.threads, onWarning: opts.onWarning };
  const fs = await createSession(floatSide.model, sessionOpts);
  const qs = await createSession(int8Side.model, sessionOpts).catch(async (err) => {
    await fs.dispose();
    throw err;
  });
  const classMap: Record<string, number> = {};
  /** The class folder an image is in (the first level below the root); undefined for an image at the root itself, which has no label. */
  const folderOf = (file: string): string | undefined => {
    const parts = path.relative(opts.root, file).split(path.sep);
    return parts.length > 1 ? parts[0] : undefined;
  };
  const folders = [...new Set(opts.files.map(folderOf).filter((d): d is string => d !== undefined))];
  // the folder rule every command uses (core/labels.ts); accuracy needs every folder matched
  const matching = matchClassFolders(folders, opts.post.labels);
  const allMapped = folders.length > 0 && matching.problems.length === 0;
  for (const m of matching.matched) classMap[m.folder] = m.index;
  if (matching.problems.length && folders.length) opts.onWarning?.(`--eval: no labelled accuracy: ${matching.problems.join('; ')}`);
  /** Images in a class folder: the labelled accuracy's denominator. */
  let labelled = 0;
  /** Decoded images outside every class folder (said after the loop when the folders are labelled). */
  const unlabelled: string[] = [];
  let n = 0;
  let agree = 0;
  let overlap = 0;
  /** Classes the model scores (from the first output seen). */
  let classes = Infinity;
  let kl = 0;
  let correctF = 0;
  let correctQ = 0;
  const skipped: SkippedFile[] = [];
  let sample: Parameters<typeof toTensor>[0][number] | undefined;
  let sampleQ: typeof sample;
  try {
    let done = 0;
    opts.onProgress?.(0, opts.files.length); // the stage begins
    for (const file of opts.files) {
      opts.signal?.throwIfAborted();
      let imgF;
      let imgQ;
      try {
        imgF = await decodeImage(file, floatSide.spec);
        imgQ = floatSide.spec.width === int8Side.spec.width && floatSide.spec.height === int8Side.spec.height ? imgF : await decodeImage(file, int8Side.spec);
      } catch (err) {
        const s = { file, error: messageOf(err) };
        skipped.push(s);
        opts.onSkip?.(s);
        opts.onProgress?.(++done, opts.files.length);
        continue;
      }
      sample ??= imgF;
      sampleQ ??= imgQ;
      const pf = await probs(fs, floatSide, imgF, opts.post);
      const pq = await probs(qs, int8Side, imgQ, opts.post);
      classes = pf.length;
      const tf = topK(pf, 5, opts.post);
      const tq = topK(pq, 5, opts.post);
      if (tf[0]!.index === tq[0]!.index) agree++;
      const setF = new Set(tf.map((t) => t.index));
      overlap += tq.filter((t) => setF.has(t.index)).length / 5;
      kl += klDivergence(pf, pq);
      const cls = allMapped ? classMap[folderOf(file) ?? ''] : undefined;
      if (allMapped && folderOf(file) === undefined) unlabelled.push(file);
      if (cls !== undefined) {
        labelled++;
        if (tf[0]!.index === cls) correctF++;
        if (tq[0]!.index === cls) correctQ++;
      }
      n++;
      opts.onProgress?.(++done, opts.files.length);
    }
    if (unlabelled.length) {
      opts.onWarning?.(`--eval: ${unlabelled.length} image${unlabelled.length > 1 ? 's are' : ' is'} not inside a class folder (${unlabelled.slice(0, 3).join(', ')}${unlabelled.length > 3 ? ', …' : ''}): counted in the float-vs-int8 agreement, not in the labelled accuracy`);
    }
    // Latency: interleaved single-image runs of the same input, medians.
    const lf: number[] = [];
    const lq: number[] = [];
    const runs = opts.latencyRuns ?? 30;
    if (sample && sampleQ) {
      const tf = toTensor([sample], floatSide.spec);
      const tq = toTensor([sampleQ], int8Side.spec);
      for (let i = 0; i < 3; i++) {
        await fs.run({ [floatSide.inputName]: tf }, [floatSide.outputName]);
        await qs.run({ [int8Side.inputName]: tq }, [int8Side.outputName]);
      }
      for (let i = 0; i < runs; i++) {
        let t0 = performance.now();
        await fs.run({ [floatSide.inputName]: tf }, [floatSide.outputName]);
        lf.push(performance.now() - t0);
        t0 = performance.now();
        await qs.run({ [int8Side.inputName]: tq }, [int8Side.outputName]);
        lq.push(performance.now() - t0);
      }
    }
    const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
    const latencyFloatMs = lf.length ? r4(median(lf)) : NaN;
    const latencyInt8Ms = lq.length ? r4(median(lq)) : NaN;
    return {
      images: n,
      agreementTop1: n ? r4(agree / n) : 0,
      top5Overlap: classes <= 5 ? null : n ? r4(overlap / n) : 0,
      meanKL: n ? Math.round((kl / n) * 1e6) / 1e6 : 0,
      accuracyFloat: labelled ? r4(correctF / labelled) : null,
      accuracyInt8: labelled ? r4(correctQ / labelled) : null,
      latencyFloatMs,
      latencyInt8Ms,
      latencyRatio: r4(latencyInt8Ms / latencyFloatMs),
      sizeFloat: floatSide.size,
      sizeInt8: int8Side.size,
      provider: qs.provider,
      classMap,
      skipped,
    };
  } finally {
    await fs.dispose();
    await qs.dispose();
  }
}

/** The human-readable table of a report. */
export function reportTable(r: QuantReport): string {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
  const mb = (b: number) => `${(b / 1048576).toFixed(2)} MB`;
  return table([
    ['metric', 'float', 'int8'],
    ['accuracy (labelled)', pct(r.accuracyFloat), pct(r.accuracyInt8)],
    ['median latency', `${r.latencyFloatMs.toFixed(2)} ms`, `${r.latencyInt8Ms.toFixed(2)} ms`],
    ['file size', mb(r.sizeFloat), mb(r.sizeInt8)],
    ['top-1 agreement', '', pct(r.agreementTop1)],
    ...(r.top5Overlap === null ? [] : [['top-5 overlap', '', pct(r.top5Overlap)]]),
    ['mean KL(float‖int8)', '', r.meanKL.toFixed(5)],
    ['latency int8/float', '', r.latencyRatio.toFixed(3)],
    ['images', r.images, `${r.skipped.length} skipped`],
    // how the eval folders mapped to labels (the folder rule, core/labels.ts), when they did
    ...(Object.keys(r.classMap).length ? [['class folder → label', '', Object.entries(r.classMap).map(([f, i]) => `${f} → ${i}`).join(', ')]] : []),
  ]);
}

/**
 * The sensitivity analysis as a table: the whole model, weights only, activations only, then the `top`
 * costliest tensors. `reportFile`: the report that holds every row besides --json (none without --eval,
 * nor for --keep-float, whose report describes the mixed model).
 */
export function sensitivityTable(s: SensitivityReport, top = 10, reportFile?: string): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const rows: (string | number)[][] = [
    ['quantized alone', 'op', 'mean KL', 'top-1 agreement'],
    ['whole model', '', s.full.meanKL.toFixed(5), pct(s.full.agreementTop1)],
    ['all weights', '', s.weightsOnly.meanKL.toFixed(5), pct(s.weightsOnly.agreementTop1)],
    ['all activations', '', s.activationsOnly.meanKL.toFixed(5), pct(s.activationsOnly.agreementTop1)],
  ];
  for (const e of s.entries.slice(0, top)) rows.push([`${e.kind === 'weights' ? 'weights of' : 'activation'} ${e.name}`, e.op, e.meanKL.toFixed(5), pct(e.agreementTop1)]);
  const more = s.entries.length > top ? `(${s.entries.length - top} more in --json${reportFile ? ` and ${reportFile}` : ''})\n` : '';
  return `sensitivity on ${s.images} calibration images (float model as reference; each row alone quantized, unfused):\n` + table(rows) + more;
}

/** Mixed precision (keepFloat 'auto') as a table: the kept units, then the `top` next by gain. */
export function precisionTable(c: PrecisionChoice, top = 5): string {
  const rows: (string | number)[][] = [['output kept float', 'op', 'excluded', 'KL gain', 'fp32 ms', 'int8 ms', 'cost ms', 'kept']];
  const kept = c.units.filter((u) => u.kept);
  for (const u of [...kept, ...c.units.filter((u) => !u.kept).slice(0, top)]) {
    rows.push([u.name, u.op, u.exclude.join(' '), u.klGain.toFixed(5), u.floatMs.toFixed(3), u.int8Ms.toFixed(3), u.costMs.toFixed(3), u.kept || '']);
  }
  return (
    `mixed precision on ${c.images} calibration images: whole int8 model KL ${c.full.meanKL.toFixed(5)}, top-1 agreement ${(c.full.agreementTop1 * 100).toFixed(1)}%; ` +
    `kernel time fp32 ${c.floatKernelMs.toFixed(2)} ms, int8 ${c.int8KernelMs.toFixed(2)} ms; the float units add ${c.addedMs.toFixed(3)} ms of a ${c.budgetMs.toFixed(3)} ms budget (estimated)\n` +
    table(rows) +
    `kept in float: ${c.exclude.length ? c.exclude.join(', ') : 'none'}\n`
  );
}
