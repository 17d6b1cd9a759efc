// Teaching a running stream over HTTP (`edgetune watch … --serve ADDR --teach DIR`): the example store,
// live-frame capture, hard frames, the unknown rate and retraining, mounted on the watch server
// (runtime/stream/serve.ts) through its `teach` hook. Routes (the server's Host/token rules apply: every
// POST/DELETE needs EDGETUNE_TOKEN; bodies are size-limited):
//   POST   /teach/examples?label=NAME          JPEG/PNG body: one example → 201 {label, count, file}
//   POST   /teach/examples?label=NAME&frames=N no body: the next N live frames, at most one every
//                                              `interval` → 201 {label, count, added}
//   POST   /teach/examples?label=NAME&hard=F   move hard frame F into the examples → 201 {label, count, file}
//   POST   /teach/train                        retrain (finetune() resuming the base model: the taught
//                                              new classes added, more examples of its own classes added
//                                              to them), on a worker thread (runtime/stream/teach-worker.ts:
//                                              frames keep flowing), check on validation + a live frame,
//                                              swap in → 200 {path, sha256, labels, accuracy, seconds, …};
//                                              409 while one runs; 422 when worse on the old classes
//   GET    /teach                              {labels: [{label, count, files, new}], base, training, progress, last}
//                                              (progress: the running training's stage, counts, seconds)
//   DELETE /teach/examples/<label>/<file>      remove one example → 200 {label, count}
//   GET    /teach/hard                         hard frames kept (newest first) with their scores
//   GET    /teach/hard/<file>                  one hard frame (JPEG)
// On disk (plain files, each written atomically: runtime/io/atomic.ts):
//   DIR/examples/<label>/<sha256[0:16]>.<jpg|png>   a dataset `finetune` reads (one folder per class)
//   DIR/models/teach-<time>.onnx (+ .resume.bin, .report.json)   each trained model, a set written by finetune()
//                                                     (the keepModels newest kept, and the base, the ones the
//                                                     stream holds or started on and the one serving.json names)
//   DIR/hard/<time>-<seq>.jpg + .json                 hard frames and their scores (at most keepHard)
//   DIR/serving.json                                  the model the last training swapped in, with its base's
//                                                     sha256: a restarted watch serves it again (lastTaught)
// A killed training leaves the serving model and the examples as they were: finetune() writes its
// outputs as one atomic set under DIR/models/ (never the serving file) and reads the examples only;
// close() (Ctrl-C) aborts it and ends its thread.

import { existsSync, mkdirSync } from 'node:fs';
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Classifier } from '../classify/classifier.js';
import { EdgetuneError, invalidParameter, messageOf } from '../core/errors.js';
import { isTeachLabel } from '../core/labels.js';
import { decodeFull, encodeJpeg, sniffFormat } from '../image/decode.js';
import { writeAtomic } from '../io/atomic.js';
import { checkDirPath } from '../io/paths.js';
import { reportPaths, type FinetuneOptions, type FinetuneReport } from '../train/node/finetune.js';
import { checkFinetuneOptionKeys, FINETUNE_OPTION_KEYS } from '../train/node/finetune-options.js';
import { checkOptionKeys, type AssertNever } from '../core/options.js';
import { trainOnThread, type TrainingThread } from './teach-worker.js';
import { resumePath } from '../train/node/resume.js';
import type { Frame } from '../../devices/sources/types.js';
import { modelFileSha256, type MetricFamily } from './metrics.js';
import { keepHardFrame as keepHardFrameIn, listHardFrames, readHardFrame, removeHardFrame, type HardFrame } from './hard-frames.js';
import { lastTaught, pruneTaughtModels, readServingRecord, SERVING_FILE, writeServingRecord, type ServingRecord, type TeachTrainResult } from './taught-models.js';

export { lastTaught, pruneTaughtModels, SERVING_FILE, type TeachTrainResult } from './taught-models.js';
export type { HardFrame } from './hard-frames.js';
import { describeModel } from '../../models/describe.js';
import type { StreamEvent, StreamPipeline, StreamResult } from './pipeline.js';
import { TEACH_PANEL } from './teach-page.js';
import { checkLabel, TeachError, teachRoutes, type TeachLabel, type TeachStatus } from './teach-routes.js';

export { checkLabel, TeachError, type TeachLabel, type TeachStatus } from './teach-routes.js';
import { isModelUrl } from '../serve/client.js';
import { servedName, servedVersion } from '../serve/routes.js';

export interface TeachOptions {
  /** The teach folder (examples/, models/, hard/ under it); created when missing. */
  dir: string;
  /**
   * The model every training resumes from: an ONNX file exported by `finetune` (or the page) with its
   * `<name>.resume.bin` beside it. Default: the pipeline's model file when teaching starts.
   */
  base?: string;
  /** Loads a trained model for the swap (as POST /model's loader). */
  loadModel: (file: string) => Promise<Classifier>;
  /** Least time between two captured live frames (`&frames=N`) and two kept hard frames, ms. Default 1000. */
  intervalMs?: number;
  /** Hard frames (shown as unknown: isUnknown) kept on disk, oldest dropped; 0 = none kept. Default 0. */
  keepHard?: number;
  /**
   * Trained sets kept under DIR/models/ (each ~12 MB for a MobileNetV2 head: model, resume data, report),
   * newest first; older ones are removed after each training, never a model the stream holds (serving,
   * or kept for a rollback), the base, the model the stream started on, nor the one DIR/serving.json
   * names. 0 keeps every set. Default 3 (a kiosk taught daily would otherwise fill
   * its card: see pruneTaughtModels).
   */
  keepModels?: number;
  /** Largest example upload, bytes. Default 16 MiB. */
  maxImageBytes?: number;
  /**
   * How much lower (a fraction, 0..1) the new model's accuracy on the old classes' validation images may
   * be than the serving model's before the new model is refused (422). Default 0.1: a new class takes
   * some old images (measured on tf_flowers-dev, teaching sunflowers from 40 photos to a daisy /
   * dandelion / roses head: 3 of 60 (5.0 points) and 2 of 30 (6.7 points) old validation images went to
   * sunflowers while the new class reached 90–100% on held-out photos). `POST /teach/train?tolerance=x` overrides it for one training.
   */
  oldClassTolerance?: number;
  /** Most frames one `&frames=N` request may capture. Default 200. */
  maxFrames?: number;
  /** The unknown rate's sliding window, ms. Default 60 000. */
  unknownWindowMs?: number;
  /** Options passed to finetune() (epochs, seed, cache, session, …: plain data, it runs on a worker thread); `resume`, `addClass`, `addExamples`, `out` are set here. */
  finetune?: Omit<FinetuneOptions, (typeof SET_BY_TEACH)[number]>;
  log?: (line: string) => void;
}

/** The finetune options teaching sets itself (not taken in TeachOptions.finetune). */
const SET_BY_TEACH = ['out', 'resume', 'addClass', 'addExamples', 'signal', 'task', 'onProgress', 'onWarning'] as const satisfies readonly (keyof FinetuneOptions)[];
const TEACH_FINETUNE_OPTION_KEYS = FINETUNE_OPTION_KEYS.filter((k) => !(SET_BY_TEACH as readonly string[]).includes(k));
/** Every key of TeachOptions, for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const TEACH_OPTION_KEYS = ['dir', 'base', 'loadModel', 'intervalMs', 'keepHard', 'keepModels', 'maxImageBytes', 'oldClassTolerance', 'maxFrames', 'unknownWindowMs', 'finetune', 'log'] as const satisfies readonly (keyof TeachOptions)[];
/** `never` while TEACH_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedTeachOption = AssertNever<Exclude<keyof TeachOptions, (typeof TEACH_OPTION_KEYS)[number]>>;



const EXAMPLE_FILE = /^[0-9a-f]{16}\.(jpg|png)$/;


/**
 * Is this result unknown: what the stream shows (its smoothed label is "unknown": a calibrated model's
 * unknown score above its threshold, or the smoothed probability below watch's --threshold), or the
 * frame's own open-set flag where a result carries one.
 */
export function isUnknown(r: StreamResult): boolean {
  const flag = (r as StreamResult & { unknown?: unknown }).unknown;
  return flag === true || r.smoothed.index < 0;
}

/** Share of the (old-class) validation images a report's confusion matrix puts on their own class, over classes `old`. */
export function oldClassAccuracy(r: Pick<FinetuneReport, 'labels' | 'confusion'>, old: readonly string[]): { accuracy: number | null; images: number } {
  let right = 0;
  let n = 0;
  for (const l of old) {
    const i = r.labels.indexOf(l);
    const row = r.confusion[i];
    if (i < 0 || !row) continue;
    right += row[i] ?? 0;
    n += row.reduce((a, b) => a + b, 0);
  }
  return { accuracy: n ? right / n : null, images: n };
}


export interface Teach {
  /** Serve a teach route; false when the request is not one. Token checks are the caller's (serve.ts). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** The teach panel for the watch page (TEACH_PANEL). */
  page: string;
  /** Prometheus families: the unknown rate over the window, frames in it, hard frames kept, trainings. */
  metrics(): MetricFamily[];
  list(): Promise<TeachLabel[]>;
  addExample(label: string, bytes: Uint8Array): Promise<{ label: string; count: number; file: string }>;
  captureFrames(label: string, n: number, signal?: AbortSignal): Promise<{ label: string; count: number; added: number }>;
  removeExample(label: string, file: string): Promise<{ label: string; count: number }>;
  hard(): Promise<HardFrame[]>;
  /** GET /teach's answer: the examples' labels, the base model's classes, whether a training runs and its progress, the last training's result. */
  status(): Promise<TeachStatus>;
  /** Retrain, check, swap in (see the module header); `tolerance` overrides oldClassTolerance. Rejects with TeachError (409, 422, 400, 503 when close() stopped it). */
  train(opts?: { tolerance?: number }): Promise<TeachTrainResult>;
  /** Stops listening to the pipeline and aborts a running training (nothing of it is written); resolves once its thread has ended. */
  close(): Promise<void>;
}

/** The absolute path of `model` when it can be taught (its resume data beside it); EARG saying why not otherwise. */
export function checkTeachable(model: string): string {
  // a served model's URL was path-joined onto the working directory ("/cwd/http:/host:8000/v2/models/x has no …")
  if (isModelUrl(model)) {
    throw new EdgetuneError('EARG', `--teach retrains the model on this machine from its resume data; ${model} runs on another server: watch with its file (exported by \`edgetune finetune\`, its .resume.bin beside it)`, { subject: model });
  }
  const base = path.resolve(model);
  if (!existsSync(resumePath(base))) {
    throw new EdgetuneError('EARG', `--teach retrains from the model's resume data: ${base} has no ${path.basename(resumePath(base))} beside it (serve a model exported by \`edgetune finetune\`)`, { subject: base });
  }
  return base;
}

/**
 * Start teaching `pipeline` (see the module header). Errors: EARG when the base model has no resume
 * data, for an empty `dir` (`Expected a folder for dir but received ""`: never the current directory,
 * checked before any folder is made), or for an option it does not take (`finetune`'s too).
 */
export async function createTeach(pipeline: StreamPipeline, o: TeachOptions): Promise<Teach> {
  checkOptionKeys('createTeach', o, TEACH_OPTION_KEYS);
  if (o.finetune) checkFinetuneOptionKeys('createTeach', o.finetune, TEACH_FINETUNE_OPTION_KEYS, 'finetune');
  const dir = path.resolve(checkDirPath(o.dir, 'dir'));
  const examplesDir = path.join(dir, 'examples');
  const modelsDir = path.join(dir, 'models');
  const hardDir = path.join(dir, 'hard');
  for (const d of [examplesDir, modelsDir, hardDir]) mkdirSync(d, { recursive: true });
  const serving = path.resolve(pipeline.model.modelPath);
  const base = checkTeachable(o.base ?? serving);
  // the base's classes: the serving model's, unless it is a model taught from the base (lastTaught)
  const baseLabels = [...((base === serving ? pipeline.model.card : (await describeModel(base)).card).labels ?? [])];
  const baseSha256 = await modelFileSha256(base);
  const intervalMs = o.intervalMs ?? 1000;
  const keepHard = o.keepHard ?? 0;
  const keepModels = o.keepModels ?? 3;
  if (!(Number.isInteger(keepModels) && keepModels >= 0)) throw invalidParameter('keepModels', 'integer >= 0', o.keepModels);
  const maxImage = o.maxImageBytes ?? 16 * 1024 * 1024;
  const maxFrames = o.maxFrames ?? 200;
  const windowMs = o.unknownWindowMs ?? 60_000;
  const log = o.log ?? (() => undefined);
  const closing = new AbortController();

  // The report of the serving model, for the old-classes check: the serving model's <name>.report.json (the
  // base's, or a taught model's a restarted watch serves again), then each swap's.
  let servingReport: FinetuneReport | undefined;
  try {
    servingReport = JSON.parse(await readFile(reportPaths(serving).json, 'utf8')) as FinetuneReport;
  } catch {
    log(`teach: ${serving} has no readable report beside it; the first training is not compared with it on the old classes`);
  }
  let training: Promise<TeachTrainResult> | undefined;
  /** The running training's thread (aborted by close()). */
  let thread: TrainingThread | undefined;
  /** The running training's latest progress (GET /teach adds `seconds` since it started): finetune()'s stage, counts / epoch. */
  let progress: Record<string, unknown> | null = null;
  let trainStart = 0;
  // a restarted watch serving the last taught model (lastTaught) shows that training as the last one
  const again = base === serving ? undefined : await lastTaught(dir, base);
  let last: TeachTrainResult | undefined = again && 'file' in again && again.file === serving ? again.result : undefined;
  /** The serving records of the taught models this watch has served (the one it started on, each swap's), by absolute path: a rollback to one of them records it again. */
  const records = new Map<string, ServingRecord>();
  if (again && 'file' in again && again.file === serving) records.set(serving, { model: path.basename(serving), sha256: again.result.sha256, base, baseSha256, result: again.result });
  const servingFile = path.join(dir, SERVING_FILE);
  /** The writes of serving.json, one after another (a training's swap, a rollback). */
  let recording: Promise<void> = Promise.resolve();
  /** Record `rec` in DIR/serving.json (atomically), or remove the record (undefined: a restart serves the base); a failed write only costs the restart. */
  const recordServing = (rec: ServingRecord | undefined): Promise<void> =>
    (recording = recording
      .then(() => writeServingRecord(dir, rec))
      .catch((err) => log(`teach: cannot ${rec ? 'record the serving model in' : 'remove'} ${servingFile}: ${messageOf(err)}`)));
  // A taught model the swap guard rolled back (it failed on live frames) must not serve again after a
  // restart: serving.json then names the model serving now when it is a taught one, else it goes.
  const onEvent = (e: StreamEvent) => {
    if (e.type !== 'rollback') return;
    const now = records.get(path.resolve(pipeline.model.modelPath));
    last = now?.result;
    void recordServing(now).then(() => log(`teach: after the rollback a restart serves ${now ? now.model : path.basename(base)} (${now ? `${servingFile} names it` : `${servingFile} removed`})`));
  };
  pipeline.on('event', onEvent);
  let trainings = 0;
  let refused = 0;

  // ---- the unknown rate over a sliding window, and hard frames
  const window: { ts: number; unknown: boolean }[] = [];
  let lastHard = 0;
  let hardKept = 0;
  let hardWriting = false;
  /** A hard frame failed to be kept (a full disk): said once, then again only after one was kept. */
  let hardFailing = false;
  const onResult = (r: StreamResult) => {
    const now = Date.now();
    const unknown = isUnknown(r);
    window.push({ ts: now, unknown });
    while (window.length && window[0]!.ts < now - windowMs) window.shift();
    if (keepHard > 0 && unknown && !hardWriting && now - lastHard >= intervalMs) {
      lastHard = now;
      hardWriting = true;
      keepHardFrame(r).then(
        () => {
          hardWriting = false;
          if (hardFailing) log('teach: hard frames are kept again');
          hardFailing = false;
        },
        (err) => {
          hardWriting = false;
          // once, not once per --teach-interval for as long as the disk stays full
          if (!hardFailing) log(`teach: cannot keep a hard frame: ${messageOf(err)} (not said again until one is kept)`);
          hardFailing = true;
        },
      );
    }
  };
  const keepHardFrame = async (r: StreamResult) => {
    await keepHardFrameIn(hardDir, r, isUnknown(r), keepHard);
    hardKept++;
  };
  pipeline.on('result', onResult);

  const filesOf = async (label: string): Promise<string[]> => {
    try {
      return (await readdir(path.join(examplesDir, label))).filter((f) => EXAMPLE_FILE.test(f)).sort();
    } catch {
      return [];
    }
  };
  const list = async (): Promise<TeachLabel[]> => {
    let names: string[] = [];
    try {
      names = (await readdir(examplesDir, { withFileTypes: true })).filter((e) => e.isDirectory() && isTeachLabel(e.name)).map((e) => e.name).sort();
    } catch {
      // no examples yet
    }
    const out: TeachLabel[] = [];
    for (const label of names) {
      const files = await filesOf(label);
      if (files.length) out.push({ label, count: files.length, files, new: !baseLabels.includes(label) });
    }
    return out;
  };
  /** Write one example (already checked to be a JPEG or PNG that decodes): named by its content, so the same photo twice is one example. */
  const store = async (label: string, bytes: Uint8Array, ext: 'jpg' | 'png') => {
    const folder = path.join(examplesDir, label);
    const made = !existsSync(folder);
    mkdirSync(folder, { recursive: true });
    const file = `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${ext}`;
    try {
      await writeAtomic(path.join(folder, file), bytes);
    } catch (err) {
      // a failed first example (a full disk) leaves no empty class folder: `finetune DIR/examples` would stop at it
      if (made) await rmdir(folder).catch(() => undefined);
      throw err;
    }
    return file;
  };
  /**
   * checkLabel, and a label that differs from a model class or a taught label only in case or Unicode
   * form ("Daisy" beside "daisy": one folder on a case-insensitive file system, a new class that takes
   * daisy's photos on another) is refused naming the one to use. EARG (400).
   */
  const checkNewLabel = async (labelIn: string) => {
    const label = checkLabel(labelIn);
    const key = (l: string) => l.normalize('NFC').toLowerCase();
    const same = [...baseLabels, ...(await list()).map((l) => l.label)].find((l) => l !== label && key(l) === key(label));
    if (same !== undefined) throw new EdgetuneError('EARG', `label ${JSON.stringify(label)} differs from the class ${JSON.stringify(same)} only in case or Unicode form: teach ${JSON.stringify(same)} (one folder on a case-insensitive file system; a new class otherwise)`);
    return label;
  };
  const addExample = async (labelIn: string, bytes: Uint8Array) => {
    const label = await checkNewLabel(labelIn);
    const format = sniffFormat(bytes.subarray(0, 16));
    if (format !== 'JPEG' && format !== 'PNG') throw new EdgetuneError('EINPUT', `example for "${label}": expected a JPEG or PNG body, got ${format ?? `${bytes.length} bytes of no known image format`}`);
    await decodeFull(bytes, {}, `example for "${label}"`); // a truncated or corrupt image is refused here, not at training
    // one photo teaches one class: the same bytes under two labels would train contradicting examples
    const named = `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${format === 'JPEG' ? 'jpg' : 'png'}`;
    const other = (await list()).find((l) => l.label !== label && l.files.includes(named));
    if (other) throw new TeachError(409, `this photo is already an example of "${other.label}" (${other.label}/${named}); one photo teaches one class: DELETE /teach/examples/${encodeURIComponent(other.label)}/${named} first to move it`);
    const file = await store(label, bytes, format === 'JPEG' ? 'jpg' : 'png');
    return { label, count: (await filesOf(label)).length, file };
  };
  const captureFrames = async (labelIn: string, n: number, signal?: AbortSignal) => {
    const label = await checkNewLabel(labelIn);
    if (!(Number.isInteger(n) && n >= 1 && n <= maxFrames)) throw invalidParameter('frames', `integer between 1 and ${maxFrames}`, n);
    return new Promise<{ label: string; count: number; added: number }>((resolve, reject) => {
      let added = 0;
      let busy = false;
      let lastAt = 0;
      const done = (err?: unknown) => {
        pipeline.off('frame', onFrame);
        pipeline.off('event', onEvent);
        signal?.removeEventListener('abort', onAbort);
        closing.signal.removeEventListener('abort', onAbort);
        if (err && !added) return reject(err);
        filesOf(label).then((f) => resolve({ label, count: f.length, added }), reject);
      };
      const onFrame = (frame: Frame) => {
        if (busy || performance.now() - lastAt < intervalMs) return;
        busy = true;
        lastAt = performance.now();
        encodeJpeg(frame, 92)
          .then((jpg) => store(label, jpg, 'jpg'))
          .then(
            () => {
              busy = false;
              if (++added >= n) done();
            },
            (err) => {
              busy = false;
              done(err);
            },
          );
      };
      const onEvent = (e: { type: string; message: string }) => {
        if (e.type === 'end') done(new EdgetuneError('EIO', `the stream ended before a frame was captured: ${e.message}`));
      };
      const onAbort = () => done(new EdgetuneError('EIO', 'frame capture stopped'));
      pipeline.on('frame', onFrame);
      pipeline.on('event', onEvent);
      signal?.addEventListener('abort', onAbort, { once: true });
      closing.signal.addEventListener('abort', onAbort, { once: true });
    });
  };
  const removeExample = async (labelIn: string, file: string) => {
    const label = checkLabel(labelIn);
    if (!EXAMPLE_FILE.test(file) || !(await filesOf(label)).includes(file)) throw new TeachError(404, `no example ${label}/${file}`);
    await rm(path.join(examplesDir, label, file), { force: true });
    const count = (await filesOf(label)).length;
    if (!count) await rm(path.join(examplesDir, label), { recursive: true, force: true });
    return { label, count };
  };
  const hard = (): Promise<HardFrame[]> => listHardFrames(hardDir);
  const labelHard = async (labelIn: string, file: string) => {
    const label = checkLabel(labelIn);
    // read, not checked then read: a newer frame may drop this one in between (404 then, not 500)
    const jpg = await readHardFrame(hardDir, file);
    if (!jpg) throw new TeachError(404, `no hard frame ${file}`);
    const r = await addExample(label, jpg);
    await removeHardFrame(hardDir, file);
    return r;
  };

  const runTraining = async (tolerance: number): Promise<TeachTrainResult> => {
    const t0 = performance.now();
    const labels = await list();
    const added = labels.filter((l) => l.new);
    const more = labels.filter((l) => !l.new);
    if (!labels.length) throw new TeachError(400, `nothing to train: no examples yet (POST /teach/examples?label=NAME; the model has ${baseLabels.join(', ')})`);
    const out = path.join(modelsDir, `teach-${new Date().toISOString().replace(/[:.]/g, '-')}.onnx`);
    log(`teach: training ${[...baseLabels, ...added.map((a) => a.label)].join(', ')} from ${path.basename(base)} + ${labels.map((a) => `${a.count} ${a.label}`).join(', ')}`);
    if (closing.signal.aborted) throw closing.signal.reason;
    // finetune() on its own thread: the stream's thread keeps serving frames meanwhile
    thread = trainOnThread(
      {
        ...o.finetune,
        resume: base,
        addClass: added.map((a) => ({ name: a.label, dir: path.join(examplesDir, a.label) })),
        addExamples: more.map((a) => ({ name: a.label, dir: path.join(examplesDir, a.label) })),
        out,
      },
      {
        onProgress: (e) => {
          progress = e.stage === 'epoch' ? { stage: 'epoch', epoch: e.stats.epoch, epochs: e.epochs } : { ...e };
        },
        onWarning: (m) => log(`teach: ${m}`),
      },
    );
    let report: FinetuneReport;
    try {
      report = await thread.done;
    } catch (err) {
      if (closing.signal.aborted) throw new TeachError(503, 'teaching stopped: the server is shutting down (nothing of this training was written)');
      throw err;
    } finally {
      thread = undefined;
    }
    const mine = oldClassAccuracy(report, baseLabels);
    const theirs = servingReport ? oldClassAccuracy(servingReport, baseLabels) : { accuracy: null, images: 0 };
    const oldClasses = { accuracy: mine.accuracy, serving: theirs.accuracy, images: mine.images };
    // Worse on the old classes than the tolerance allows (the same images for both models: the
    // validation split kept in the resume data).
    if (mine.accuracy !== null && theirs.accuracy !== null && theirs.accuracy - mine.accuracy > tolerance + 1e-9) {
      throw new TeachError(422, `the new model is worse on the old classes: ${(mine.accuracy * 100).toFixed(1)}% of their ${mine.images} validation images against ${(theirs.accuracy * 100).toFixed(1)}% for the serving model, more than the tolerance of ${(tolerance * 100).toFixed(1)} points (the serving model keeps serving; ${path.basename(out)} stays in ${modelsDir} for inspection)`);
    }
    let clf: Classifier;
    try {
      clf = await o.loadModel(out);
    } catch (err) {
      throw new TeachError(422, `the new model ${out} cannot be loaded: ${messageOf(err)}`);
    }
    try {
      await pipeline.swapModel(clf); // the hot-swap gate: a live frame through the new model first
    } catch (err) {
      await clf.dispose();
      throw new TeachError(err instanceof EdgetuneError && err.code === 'EMODEL' ? 422 : 409, messageOf(err));
    }
    servingReport = report;
    const sha256 = report.modelSha256 ?? createHash('sha256').update(await readFile(out)).digest('hex');
    const result: TeachTrainResult = {
      path: out,
      sha256,
      labels: report.labels,
      accuracy: report.accuracy,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      oldClasses,
      examples: labels.map((l) => ({ label: l.label, count: l.count, new: l.new })),
      // the server numbered the swap as it happened (its swap event came before swapModel resolved)
      served: { name: servedName(clf), version: servedVersion(clf) },
    };
    // a restarted watch serves this model again (lastTaught); a failed write only costs that
    const record: ServingRecord = { model: path.basename(out), sha256, base, baseSha256, result };
    records.set(path.resolve(out), record);
    await recordServing(record);
    log(`teach: serving ${path.basename(out)} (${report.labels.join(', ')}; validation accuracy ${report.accuracy === null ? 'n/a' : (report.accuracy * 100).toFixed(1) + '%'}) after ${result.seconds}s`);
    return result;
  };
  const train = (opts: { tolerance?: number } = {}) => {
    if (training) return Promise.reject(new TeachError(409, 'a training is running; try again when it is done (GET /teach says)'));
    const tolerance = opts.tolerance ?? o.oldClassTolerance ?? 0.1;
    if (!(tolerance >= 0 && tolerance <= 1)) return Promise.reject(invalidParameter('tolerance', 'number between 0 and 1', opts.tolerance));
    trainStart = performance.now();
    training = runTraining(tolerance);
    progress = { stage: 'start' };
    const settle = () => {
      training = undefined;
      progress = null;
      // older trained sets go: a kiosk taught daily would fill its card. Never the base every training
      // resumes from (it may be a taught set: watch --model DIR/models/teach-….onnx), the model this
      // watch started on (the user's --model), the one serving.json names (a restart serves it), nor the
      // models the stream holds (serving, kept for a rollback).
      const held = [base, serving, ...pipeline.heldModels.map((m) => m.modelPath)];
      void recording
        .then(() => readServingRecord(dir).catch(() => undefined))
        .then((rec) => pruneTaughtModels(modelsDir, keepModels, rec ? [...held, path.join(modelsDir, rec.model)] : held))
        .then(
          (gone) => gone.length && log(`teach: removed ${gone.length} older trained set${gone.length > 1 ? 's' : ''} from ${modelsDir} (${gone.join(', ')}; --keep-models ${keepModels})`),
          (err) => log(`teach: cannot remove older trained sets: ${messageOf(err)}`),
        );
    };
    training.then(
      (r) => {
        settle();
        trainings++;
        last = r;
      },
      (err) => {
        settle();
        if (err instanceof TeachError && err.status === 422) refused++;
      },
    );
    return training;
  };

  const status = async (): Promise<TeachStatus> => ({
    labels: await list(),
    base: baseLabels,
    training: training !== undefined,
    // progress with the seconds since the training started, at the time of asking
    progress: progress && { ...progress, seconds: Math.round((performance.now() - trainStart) / 100) / 10 },
    last: last ?? null,
  });
  const handle = teachRoutes({ status, hard, hardFrame: (file) => readHardFrame(hardDir, file), labelHard, addExample, captureFrames, removeExample, train }, { keepHard, maxFrames, maxImageBytes: maxImage, log });

  const metrics = (): MetricFamily[] => {
    const now = Date.now();
    const inWindow = window.filter((w) => w.ts >= now - windowMs);
    const unknown = inWindow.filter((w) => w.unknown).length;
    const win = `${Math.round(windowMs / 1000)}s`;
    return [
      { name: 'edgetune_unknown_rate', help: `Share of the frames classified in the sliding window that were unknown (shown as unknown: a calibrated model's unknown score over its threshold, or the smoothed probability below --threshold): a drift signal.`, type: 'gauge', samples: [{ labels: { window: win }, value: inWindow.length ? unknown / inWindow.length : 0 }] },
      { name: 'edgetune_unknown_window_frames', help: 'Frames classified in the unknown rate\'s sliding window.', type: 'gauge', samples: [{ labels: { window: win }, value: inWindow.length }] },
      { name: 'edgetune_teach_hard_frames_total', help: 'Hard frames kept under the teach folder (older ones are dropped past --keep-hard).', type: 'counter', samples: [{ value: hardKept }] },
      { name: 'edgetune_teach_trainings_total', help: 'Trainings that swapped a new model in (POST /teach/train).', type: 'counter', samples: [{ value: trainings }] },
      { name: 'edgetune_teach_refused_total', help: 'Trained models refused (worse on the old classes, or failing the live-frame check).', type: 'counter', samples: [{ value: refused }] },
      { name: 'edgetune_teach_training', help: 'Whether a training is running (1) or not (0).', type: 'gauge', samples: [{ value: training ? 1 : 0 }] },
    ];
  };

  return {
    handle,
    page: TEACH_PANEL,
    metrics,
    status,
    list,
    addExample,
    captureFrames,
    removeExample,
    hard,
    train,
    async close() {
      pipeline.off('result', onResult);
      pipeline.off('event', onEvent);
      const reason = new EdgetuneError('EIO', 'teaching stopped');
      closing.abort(reason);
      await thread?.abort(reason);
    },
  };
}
