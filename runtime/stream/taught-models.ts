// The taught models of a `watch --teach` folder on disk (DIR/models/teach-<time>.*): which sets the
// pruning keeps, and DIR/serving.json, the record of the model the last training swapped in that a
// restarted watch serves again. teach.ts (the HTTP teach flow) writes and reads them through here.

import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as v from 'valibot';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { parseJsonContract } from '../core/schema.js';
import { writeAtomic } from '../io/atomic.js';
import { modelFileSha256 } from './metrics.js';

/** The answer of a successful training (POST /teach/train). `accuracy`: validation accuracy of the new model (null without validation images); `seconds`: wall time. */
export interface TeachTrainResult {
  path: string;
  sha256: string;
  labels: string[];
  accuracy: number | null;
  seconds: number;
  /** Old-class validation accuracy of the new model and of the model it replaced (null when unknown). */
  oldClasses: { accuracy: number | null; serving: number | null; images: number };
  /** The examples trained: each label's count, `new` for a class added to the base, else more examples of a base class. */
  examples: { label: string; count: number; new: boolean }[];
  /**
   * The name and version the new model is served as over the Open Inference Protocol
   * (`/v2/models/<name>/versions/<version>`): under `watch --serve` the stream's one name and the
   * version its swap made (stream/serve.ts startServer); without a server, its file's name and "1".
   */
  served: { name: string; version: string };
}


const TAUGHT_MODEL = /^(teach-[\w-]+)\.onnx$/;
/**
 * Remove the older trained sets of a teach folder's `models/` (every file `teach-<time>.…` of a set: the
 * model, its resume data, report, …), keeping the `keep` newest (by their time-stamped names) and every
 * model in `held` (absolute paths: the serving one, the one kept for a rollback). `keep` 0 removes
 * nothing. Returns the set names removed (`teach-<time>`). Hidden files (a set being written) are left.
 */
export async function pruneTaughtModels(modelsDir: string, keep: number, held: readonly string[] = []): Promise<string[]> {
  if (!(keep > 0)) return [];
  const names = await readdir(modelsDir).catch(() => [] as string[]);
  const sets = names.map((n) => TAUGHT_MODEL.exec(n)?.[1]).filter((x): x is string => x !== undefined).sort().reverse();
  const heldSet = new Set(held.map((h) => path.resolve(h)));
  const gone = sets.slice(keep).filter((stem) => !heldSet.has(path.join(path.resolve(modelsDir), `${stem}.onnx`)));
  for (const stem of gone) {
    for (const n of names) if (n.startsWith(`${stem}.`)) await rm(path.join(modelsDir, n), { force: true });
  }
  return gone;
}

/** The record of the model the last training swapped in: `DIR/serving.json` (lastTaught reads it). */
export const SERVING_FILE = 'serving.json';
/**
 * DIR/serving.json: `model` the taught model's file name under DIR/models/ and its `sha256`; `base` the
 * model every training resumed from and its `baseSha256` when the model was taught; `result` the
 * training's answer (checked: the fields watch and GET /teach read, `path`, `sha256`, `labels`).
 */
const ServingRecordSchema = v.object({
  model: v.pipe(v.string(), v.regex(TAUGHT_MODEL, 'expected a taught model\'s file name (teach-<time>.onnx)')),
  sha256: v.string(),
  base: v.string(),
  baseSha256: v.string(),
  result: v.looseObject({ path: v.string(), sha256: v.string(), labels: v.array(v.string()) }),
});
export interface ServingRecord extends Omit<v.InferOutput<typeof ServingRecordSchema>, 'result'> {
  result: TeachTrainResult;
}

/**
 * DIR/serving.json checked (ServingRecordSchema); undefined when there is none. Errors: EINPUT naming
 * the file and each problem (`…/serving.json: result.labels: required but missing`), or that it is not JSON.
 */
export async function readServingRecord(dir: string): Promise<ServingRecord | undefined> {
  const record = path.join(path.resolve(dir), SERVING_FILE);
  let text: string;
  try {
    text = await readFile(record, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EdgetuneError('EIO', `${record}: cannot be read (${messageOf(err)})`, { subject: record, cause: err });
  }
  // the other fields of `result` (accuracy, seconds, …) are shown as recorded
  return parseJsonContract(ServingRecordSchema, text, record) as unknown as ServingRecord;
}

/**
 * The model a teach folder's last training swapped in, for a watch that starts again (a power cut, a
 * restart) with the same base model: `{ file, result }` when `DIR/serving.json` names a model under
 * `DIR/models/` whose file still has the recorded sha256 and was taught from a base with the same sha256
 * as `base` now; `{ skipped }` saying why not when the record is there but does not apply (another or a
 * changed base, a missing or changed model file, a record that is not JSON or not a serving record:
 * `…/serving.json: result: required but missing`); undefined when no training has swapped a model in
 * yet (or the one it swapped in was rolled back), or when `base` is that taught model itself. Never throws.
 */
export async function lastTaught(dir: string, base: string): Promise<{ file: string; result: TeachTrainResult } | { skipped: string } | undefined> {
  const record = path.join(path.resolve(dir), SERVING_FILE);
  let r: ServingRecord | undefined;
  try {
    r = await readServingRecord(dir);
  } catch (err) {
    return { skipped: messageOf(err).split('\n').join('; ') };
  }
  if (!r) return undefined;
  const file = path.join(path.resolve(dir), 'models', r.model);
  const baseSha = await modelFileSha256(base);
  // `base` is the taught model itself (watch --model DIR/models/teach-….onnx): it serves already
  if (baseSha === r.sha256) return undefined;
  if (baseSha !== r.baseSha256) return { skipped: `${file} was taught from another base model than ${base} (sha256 ${r.baseSha256.slice(0, 12)}…, this one ${baseSha.slice(0, 12) || 'unreadable'}…)` };
  const sha = await modelFileSha256(file);
  if (sha !== r.sha256) return { skipped: `${file} ${sha ? 'has changed since it was taught' : 'is missing'} (sha256 ${r.sha256.slice(0, 12)}… recorded in ${record})` };
  return { file, result: r.result };
}

/** Record `rec` in DIR/serving.json (atomically, runtime/io/atomic.ts), or remove the record (undefined: a restart serves the base). Errors: the write's or removal's, as thrown. */
export async function writeServingRecord(dir: string, rec: ServingRecord | undefined): Promise<void> {
  const file = path.join(path.resolve(dir), SERVING_FILE);
  await (rec ? writeAtomic(file, JSON.stringify(rec, null, 1) + '\n') : rm(file, { force: true }));
}
