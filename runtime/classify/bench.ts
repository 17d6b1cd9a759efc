// Stage timings for the classify pipeline, measured in one run so the ratios are fair: decode (sharp:
// file → HWC at the model's size), preprocess (HWC → NCHW float, one typed-array pass), session.run,
// postprocess (softmax + top-k), end-to-end, and a bare `session.run` on a ready tensor. Used by
// `edgetune bench` and scripts/bench.ts.

import { MAX_MODEL_FILE_BYTES, readRegularFile } from '../io/read-file.js';
import { checkClassifierOptionKeys, CLASSIFIER_OPTION_KEYS, loadClassifier, type ClassifierOptions } from './classifier.js';
import { pickOptions, type AssertNever } from '../core/options.js';
import { toProbabilities, topK } from './postprocess.js';
import { toTensor, type HwcImage } from '../image/preprocess.js';
import { asFloat32 } from '../core/tensor.js';

export interface BenchRow {
  model: string;
  provider: string;
  batch: number;
  /** Medians in ms per batch. */
  decodeMs: number;
  preprocessMs: number;
  runMs: number;
  postprocessMs: number;
  endToEndMs: number;
  bareRunMs: number;
  /** endToEnd / bareRun. */
  ratio: number;
  /** Images per second, one image (batch) at a time, stages in sequence. */
  imagesPerSec: number;
  /** Images per second through `classifyFiles` (decode-ahead overlapping session.run). */
  pipelinedImagesPerSec: number;
  /** Images per second of bare session.run alone. */
  bareImagesPerSec: number;
}

export { median } from '../core/stats.js';
import { median } from '../core/stats.js';

export interface BenchOptions extends ClassifierOptions {
  batches?: number[];
  iterations?: number;
  warmup?: number;
}

/** Every key of BenchOptions (its own and ClassifierOptions'), for refusing a misspelt one. The type below fails to compile when a key is missing. */
export const BENCH_OPTION_KEYS = ['batches', 'iterations', 'warmup', ...CLASSIFIER_OPTION_KEYS] as const satisfies readonly (keyof BenchOptions)[];
/** `never` while BENCH_OPTION_KEYS lists every option (a compile error names a missing one). */
export type UnlistedBenchOption = AssertNever<Exclude<keyof BenchOptions, (typeof BENCH_OPTION_KEYS)[number]>>;

/** Benchmark one model on one image file (read once into memory so disk speed is not measured). */
export async function benchModel(model: string, imageFile: string, opts: BenchOptions = {}): Promise<BenchRow[]> {
  checkClassifierOptionKeys('benchModel', opts, BENCH_OPTION_KEYS);
  // read as augment-preview reads its photo: a missing file or a FIFO named, never Node's bare ENOENT or a wait
  const bytes = await readRegularFile(imageFile, { what: 'image', maxBytes: MAX_MODEL_FILE_BYTES, code: 'EINPUT' });
  // a feature extractor's speed is worth measuring too (its rows are not class scores, but timing does not care)
  const clf = await loadClassifier(model, { allowNonClassifier: true, ...pickOptions(opts, CLASSIFIER_OPTION_KEYS) });
  const rows: BenchRow[] = [];
  const iterations = opts.iterations ?? 30;
  const warmup = opts.warmup ?? 3;
  try {
    const input = clf.session.inputs[0]!.name;
    const output = clf.session.outputs.find((o) => o.name === (clf.card.outputName))!.name;
    for (const requested of opts.batches ?? [1]) {
      const batch = Math.min(requested, clf.maxBatch);
      if (batch !== requested) continue; // fixed-batch model: only batch 1 applies
      const t = { decode: [] as number[], pre: [] as number[], run: [] as number[], post: [] as number[], e2e: [] as number[], bare: [] as number[] };
      const ready = toTensor(await Promise.all(Array.from({ length: batch }, () => clf.decode(bytes, imageFile))), clf.spec);
      for (let i = 0; i < warmup + iterations; i++) {
        const keep = i >= warmup;
        // Bare session.run on a prepared tensor.
        const t0 = performance.now();
        await clf.session.run({ [input]: ready }, [output]);
        if (keep) t.bare.push(performance.now() - t0);
        // The pipeline, stage by stage.
        const start = performance.now();
        const imgs: HwcImage[] = await Promise.all(Array.from({ length: batch }, () => clf.decode(bytes, imageFile)));
        const t1 = performance.now();
        const tensor = toTensor(imgs, clf.spec);
        const t2 = performance.now();
        const res = await clf.session.run({ [input]: tensor }, [output]);
        const t3 = performance.now();
        const flat = asFloat32(res[output]!);
        const per = flat.length / batch;
        for (let j = 0; j < batch; j++) topK(toProbabilities(flat.subarray(j * per, (j + 1) * per), clf.card.outputKind), 5, clf.post);
        const t4 = performance.now();
        if (keep) {
          t.decode.push(t1 - start);
          t.pre.push(t2 - t1);
          t.run.push(t3 - t2);
          t.post.push(t4 - t3);
          t.e2e.push(t4 - start);
        }
      }
      // Pipelined throughput: decode-ahead on libuv's pool overlapping inference.
      const files = Array.from({ length: Math.max(48, 4 * batch) }, () => imageFile);
      for await (const r of clf.classifyFiles(files.slice(0, batch * 2), { batch })) void r; // warm
      const p0 = performance.now();
      for await (const r of clf.classifyFiles(files, { batch })) if (r.error) throw r.error;
      const pipelined = (1000 * files.length) / (performance.now() - p0);
      const e2e = median(t.e2e);
      const bare = median(t.bare);
      rows.push({
        model: clf.id,
        provider: clf.provider,
        batch,
        decodeMs: median(t.decode),
        preprocessMs: median(t.pre),
        runMs: median(t.run),
        postprocessMs: median(t.post),
        endToEndMs: e2e,
        bareRunMs: bare,
        ratio: e2e / bare,
        imagesPerSec: (1000 * batch) / e2e,
        pipelinedImagesPerSec: pipelined,
        bareImagesPerSec: (1000 * batch) / bare,
      });
    }
  } finally {
    await clf.dispose();
  }
  return rows;
}

export function benchTable(rows: BenchRow[]): (string | number)[][] {
  const f = (n: number) => Number(n.toFixed(2));
  return [
    ['model', 'provider', 'batch', 'decode ms', 'preprocess ms', 'run ms', 'post ms', 'end-to-end ms', 'bare run ms', 'e2e/bare', 'img/s serial', 'img/s pipelined', 'img/s bare run'],
    ...rows.map((r) => [
      r.model, r.provider, r.batch, f(r.decodeMs), f(r.preprocessMs), f(r.runMs), f(r.postprocessMs), f(r.endToEndMs), f(r.bareRunMs), f(r.ratio),
      f(r.imagesPerSec), f(r.pipelinedImagesPerSec), f(r.bareImagesPerSec),
    ]),
  ];
}
