// Streaming range collection (Node): the prepared float model is run with every tensor to calibrate
// exposed as an extra graph output, batch by batch; each batch's values go straight into that
// tensor's RangeCollector histogram and are dropped, so memory stays at one batch of activations.
// Also the calibration cache (JSON: per-tensor histogram state and the chosen method's ranges,
// reusable with any method) and the TensorRT-readable calibration table.

import { createHash } from 'node:crypto';
import { MAX_MODEL_FILE_BYTES, readRegularText } from '../runtime/io/read-file.js';
import * as v from 'valibot';
import { EdgetuneError, messageOf } from '../runtime/core/errors.js';
import { parseJsonContract } from '../runtime/core/schema.js';
import type { OnnxModel } from '../runtime/onnx/model.js';
import type { SessionOptions } from '../runtime/session/session.js';
import { asFloat32 } from '../runtime/core/tensor.js';
import { CALIBRATION_METHODS, ChannelMeans, RangeCollector, computeRange, type CalibrationMethod, type HistogramState, type Range, type RangeOptions } from './ranges.js';
import type { CalibrationBatch } from './reader.js';
import { withTaps } from './taps.js';

export interface CollectOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  signal?: AbortSignal;
}

/** Run the float model over the batches and histogram every tensor in `tensors`. */
export async function collectRanges(
  model: OnnxModel,
  inputName: string,
  tensors: readonly string[],
  batches: AsyncIterable<CalibrationBatch>,
  opts: CollectOptions & { meanTensors?: readonly string[] } = {},
): Promise<{ collectors: Map<string, RangeCollector>; means: Map<string, ChannelMeans>; images: number }> {
  const wanted = [...new Set([...tensors, ...(opts.meanTensors ?? [])])];
  const taps = withTaps(model, inputName, wanted, { providers: opts.providers, threads: opts.threads, onWarning: opts.onWarning, signal: opts.signal, what: 'calibration run' });
  const collectors = new Map<string, RangeCollector>(tensors.map((t) => [t, new RangeCollector()]));
  const means = new Map<string, ChannelMeans>((opts.meanTensors ?? []).map((t) => [t, new ChannelMeans()]));
  let images = 0;
  for await (const { item: b, values } of taps.run(batches, (b) => b.tensor)) {
    for (const [t, v] of values) {
      const data = asFloat32(v);
      collectors.get(t)?.add(data);
      means.get(t)?.add(data, v.dims);
    }
    images += b.files.length;
  }
  return { collectors, means, images };
}

export function rangesFrom(collectors: ReadonlyMap<string, RangeCollector>, method: CalibrationMethod, opts: RangeOptions, minmaxOnly: ReadonlySet<string> = new Set()): Map<string, Range> {
  const out = new Map<string, Range>();
  for (const [t, c] of collectors) out.set(t, computeRange(c, minmaxOnly.has(t) ? 'minmax' : method, opts));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Calibration cache

const finite = v.number();
const count = v.pipe(v.number(), v.integer(), v.minValue(0));
/** A RangeCollector's state (ranges.ts `HistogramState`): bins are [index, count, …] pairs. */
const HistogramStateSchema = v.object({
  min: finite,
  max: finite,
  count,
  width: v.pipe(v.number(), v.minValue(0)),
  bins: v.pipe(
    v.array(v.pipe(v.number(), v.integer(), v.minValue(0))),
    v.check((b) => b.length % 2 === 0, 'expected [bin index, count] pairs (an even length)'),
  ),
}) satisfies v.GenericSchema<unknown, HistogramState>;
const RangeSchema = v.object({ min: finite, max: finite }) satisfies v.GenericSchema<unknown, Range>;

/** The calibration cache file (JSON), checked when read; the type is derived from it. */
export const CalibrationCacheSchema = v.object({
  version: v.literal(1),
  /** sha256 of the float model file the histograms came from. */
  modelSha256: v.string(),
  model: v.string(),
  calibration: v.object({
    folder: v.optional(v.string()),
    count,
    seed: v.number(),
    images: count,
    skipped: v.array(v.object({ file: v.string(), error: v.string() })),
  }),
  method: v.picklist(CALIBRATION_METHODS),
  /** tensor → range under `method` (the human-readable part). */
  ranges: v.record(v.string(), RangeSchema),
  /** tensor → histogram state: lets a cache serve any method. */
  histograms: v.record(v.string(), HistogramStateSchema),
  /** Per-channel means of the inputs of Conv/Gemm (bias correction). */
  means: v.optional(v.record(v.string(), v.array(v.number()))),
});
export type CalibrationCache = v.InferOutput<typeof CalibrationCacheSchema>;

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

import { writeAtomic } from '../runtime/io/atomic.js';
export { writeAtomic };

/**
 * A cache file's collectors, or undefined when it is for another model or lacks tensors. Errors:
 * EINPUT naming the file when it cannot be read, is not JSON, or breaks the cache contract
 * (`<file>: histograms.conv1.bins: expected Array but received "x"`).
 */
export async function readCache(
  file: string,
  modelSha: string,
  tensors: readonly string[],
  meanTensors: readonly string[] = [],
): Promise<{ cache: CalibrationCache; collectors: Map<string, RangeCollector>; means: Map<string, Float64Array> } | undefined> {
  let text: string;
  try {
    text = await readRegularText(file, { what: 'calibration cache', maxBytes: MAX_MODEL_FILE_BYTES, code: 'EINPUT' });
  } catch (err) {
    if (err instanceof EdgetuneError) throw err;
    throw new EdgetuneError('EINPUT', `${file}: not a readable calibration cache (${messageOf(err)})`, { subject: file });
  }
  const cache = parseJsonContract(CalibrationCacheSchema, text, file);
  if (cache.modelSha256 !== modelSha) return undefined;
  if (!tensors.every((t) => cache.histograms[t])) return undefined;
  if (!meanTensors.every((t) => cache.means?.[t])) return undefined;
  const collectors = new Map(tensors.map((t) => [t, RangeCollector.fromState(cache.histograms[t]!)]));
  const means = new Map(meanTensors.map((t) => [t, Float64Array.from(cache.means![t]!)]));
  return { cache, collectors, means };
}

/**
 * TensorRT calibration table: a header line, then `tensor: <hex of the float32 scale>` where
 * scale = max|range| / 127 (symmetric int8). ORT's TensorRT EP reads it with
 * trt_int8_use_native_calibration_table.
 */
export function tensorRtTable(ranges: ReadonlyMap<string, Range>, method: CalibrationMethod): string {
  const header = method === 'entropy' ? 'TRT-8601-EntropyCalibration2' : 'TRT-8601-MinMaxCalibration';
  const buf = new DataView(new ArrayBuffer(4));
  const lines = [header];
  for (const [t, r] of ranges) {
    const scale = Math.max(Math.abs(r.min), Math.abs(r.max)) / 127;
    buf.setFloat32(0, scale, false);
    lines.push(`${t}: ${buf.getUint32(0, false).toString(16).padStart(8, '0')}`);
  }
  return lines.join('\n') + '\n';
}
