// Taps (Node): run a model with intermediate tensors exposed as extra graph outputs. Range collection
// (collect.ts), empirical bias correction (correct.ts), GPTQ (gptq.ts) and the sensitivity analysis
// (sensitivity.ts) all read tensors inside a model on calibration images; this is the one place that
// adds the outputs, opens the session, feeds each input and hands back the tapped values.
//
//   withTaps(model, inputName, tensors, options) → { bytes, fetch, run(items, feed) }
//
// `run` is an async generator: one session for the whole iteration, created on the first item and
// disposed when the iteration ends (also on break or throw).

import { EdgetuneError } from '../runtime/core/errors.js';
import type { TensorData } from '../runtime/core/tensor.js';
import { DataType, addGraphOutput, makeTensorType, pruneGraph } from '../runtime/onnx/graph.js';
import { cloneModel, encodeModel, type OnnxModel } from '../runtime/onnx/model.js';
import { createSession, type SessionOptions } from '../runtime/session/session.js';

export interface TapOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning' | 'graphOptimizationLevel'> {
  /**
   * The taps become the only graph outputs and the nodes nothing tapped needs are pruned (cheaper
   * runs). Default false: the model's own outputs stay and the taps are added next to them.
   */
  tapsOnly?: boolean;
  /** Names the run in the error for a tap the session did not return, e.g. "calibration run". Default "tapped run". */
  what?: string;
  /** Checked before each item. */
  signal?: AbortSignal;
}

export interface TappedValues<T> {
  item: T;
  /** Tap name → its value for this item; a tap that is a graph input is the fed tensor itself. */
  values: Map<string, TensorData>;
}

export interface Taps {
  /**
   * The encoded model the session runs: `model` itself when every tap is already a graph output
   * (and not tapsOnly), else a copy with the taps as float32 outputs. Undefined when every tap is a
   * graph input (nothing to run: `run` hands the fed tensors back).
   */
  bytes?: Uint8Array;
  /** The taps the session fetches (those that are not graph inputs), in `tensors` order, deduplicated. */
  fetch: string[];
  /**
   * Feed `feed(item)` (the model input, `inputName`) for each item in order and yield its tapped
   * values. Providers default to ['cpu']; graph optimizations to 'all'.
   * Throws EMODEL when the session does not return a tap.
   */
  run<T>(items: AsyncIterable<T> | Iterable<T>, feed: (item: T) => TensorData): AsyncGenerator<TappedValues<T>>;
}

/** `model` with `tensors` exposed as outputs, and a runner over inputs (see the file comment). */
export function withTaps(model: OnnxModel, inputName: string, tensors: readonly string[], o: TapOptions = {}): Taps {
  const graphInputs = new Set(model.graph.input.map((v) => v.name));
  const wanted = [...new Set(tensors)];
  const fetch = wanted.filter((t) => !graphInputs.has(t));
  const outputs = new Set(model.graph.output.map((v) => v.name));
  let bytes: Uint8Array | undefined;
  if (fetch.length) {
    if (!o.tapsOnly && fetch.every((t) => outputs.has(t))) bytes = encodeModel(model);
    else {
      const m = cloneModel(model);
      if (o.tapsOnly) m.graph.output = [];
      for (const t of fetch) addGraphOutput(m.graph, t, makeTensorType(DataType.FLOAT));
      if (o.tapsOnly) pruneGraph(m.graph);
      bytes = encodeModel(m);
    }
  }
  const what = o.what ?? 'tapped run';
  async function* run<T>(items: AsyncIterable<T> | Iterable<T>, feed: (item: T) => TensorData): AsyncGenerator<TappedValues<T>> {
    const session = bytes
      ? await createSession(bytes, { providers: o.providers ?? ['cpu'], threads: o.threads, onWarning: o.onWarning, ...(o.graphOptimizationLevel ? { graphOptimizationLevel: o.graphOptimizationLevel } : {}) })
      : undefined;
    try {
      for await (const item of items) {
        o.signal?.throwIfAborted();
        const x = feed(item);
        const res = session ? await session.run({ [inputName]: x }, fetch) : {};
        const values = new Map<string, TensorData>();
        for (const t of wanted) {
          const v = graphInputs.has(t) ? x : res[t];
          if (!v) throw new EdgetuneError('EMODEL', `${what} did not return tensor "${t}"`);
          values.set(t, v);
        }
        yield { item, values };
      }
    } finally {
      await session?.dispose();
    }
  }
  return { ...(bytes ? { bytes } : {}), fetch, run };
}
