// Prometheus metrics for edgetune's services: cumulative histograms (Histogram), the text exposition
// format (exposition(), version 0.0.4: `# HELP`, `# TYPE`, samples, `_bucket{le=…}` / `_sum` / `_count`
// for histograms), the `edgetune_build_info` family, and the sha256 of a serving model file (cached by
// path, size and mtime). Used by `watch --serve` (stream/serve.ts) and meant for every edgetune service
// that answers `/metrics`. Format: Prometheus "Exposition formats" (text format 0.0.4) and its naming
// practices (base units: seconds; counters end in `_total`; `_info` gauges of value 1 carry labels).

import { createReadStream } from 'node:fs';
import { stat, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { packageRoot } from '../io/paths.js';

/**
 * Upper bounds (seconds) of the latency buckets: 1 ms … 10 s, about ×2.5 per step, so a bucket
 * boundary lies within a factor 2.5 of any latency from a fast int8 model on a desktop (~2 ms) to a
 * large model on a small board (~seconds). Fleets aggregate histograms only when their buckets are the
 * same: change these only with a new metric name.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A histogram's state as exposed: cumulative counts per upper bound (the last bound is +Inf), sum and count. */
export interface HistogramSnapshot {
  /** [upper bound, observations <= bound], bounds increasing, ending with [Infinity, count]. */
  buckets: [number, number][];
  sum: number;
  count: number;
}

/**
 * A cumulative histogram with fixed upper bounds (Prometheus semantics: an observation v counts in
 * every bucket whose bound is >= v; `+Inf` holds every observation). Observations that are NaN are
 * ignored (they have no bucket). Errors: RangeError when bounds are empty, not finite or not strictly
 * increasing.
 */
export class Histogram {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;
  readonly bounds: readonly number[];
  constructor(bounds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    if (bounds.length === 0 || bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!))) {
      throw new RangeError(`histogram bounds must be finite and strictly increasing, got [${bounds.join(', ')}]`);
    }
    this.bounds = [...bounds];
    this.counts = new Float64Array(bounds.length + 1);
  }
  /** Count one observation (binary search for the first bound >= v). */
  observe(v: number): void {
    if (Number.isNaN(v)) return;
    let lo = 0;
    let hi = this.bounds.length; // index bounds.length = +Inf
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (v <= this.bounds[mid]!) hi = mid;
      else lo = mid + 1;
    }
    this.counts[lo]!++;
    this.sum += v;
    this.count++;
  }
  snapshot(): HistogramSnapshot {
    let acc = 0;
    const buckets: [number, number][] = [...this.bounds, Infinity].map((b, i) => [b, (acc += this.counts[i]!)]);
    return { buckets, sum: this.sum, count: this.count };
  }
}

export type Labels = Readonly<Record<string, string>>;

/** One metric family: its samples share the name, help and type. */
export type MetricFamily =
  | { name: string; help: string; type: 'counter' | 'gauge'; samples: { labels?: Labels; value: number }[] }
  | { name: string; help: string; type: 'histogram'; samples: { labels?: Labels; histogram: HistogramSnapshot }[] };

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A sample value as the text format writes it (Go's float formatting: `+Inf`, `-Inf`, `NaN`). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const escapeLabelValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function labelText(labels: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push(extra);
  if (!pairs.length) return '';
  for (const [k] of pairs) if (!LABEL_RE.test(k) || k.startsWith('__')) throw new RangeError(`invalid Prometheus label name ${JSON.stringify(k)}`);
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/**
 * The text exposition (format 0.0.4, served as `text/plain; version=0.0.4; charset=utf-8`) of metric
 * families: HELP and TYPE lines, then the samples; a histogram gives `<name>_bucket{…,le="…"}` per
 * bound (cumulative, ending with le="+Inf"), `<name>_sum` and `<name>_count`. Errors: RangeError on an
 * invalid metric or label name, or a name given twice.
 */
export function exposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!NAME_RE.test(f.name)) throw new RangeError(`invalid Prometheus metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new RangeError(`metric ${f.name} given twice`);
    seen.add(f.name);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type === 'histogram') {
      for (const s of f.samples) {
        for (const [le, n] of s.histogram.buckets) out.push(`${f.name}_bucket${labelText(s.labels, ['le', formatValue(le)])} ${n}`);
        out.push(`${f.name}_sum${labelText(s.labels)} ${formatValue(s.histogram.sum)}`, `${f.name}_count${labelText(s.labels)} ${s.histogram.count}`);
      }
    } else {
      for (const s of f.samples) out.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return out.join('\n') + '\n';
}

/** The exposition's content type. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

let build: Labels | undefined;
/**
 * Labels of `edgetune_build_info`: edgetune's version, the onnxruntime-node version it depends on
 * (package.json) and Node's version.
 */
export async function buildInfoLabels(): Promise<Labels> {
  if (build) return build;
  let version = 'unknown';
  let onnxruntime = 'unknown';
  try {
    const pkg = JSON.parse(await readFile(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: string; dependencies?: Record<string, string> };
    version = pkg.version ?? version;
    onnxruntime = pkg.dependencies?.['onnxruntime-node'] ?? onnxruntime;
  } catch {
    /* labels say unknown */
  }
  return (build = { version, onnxruntime, node: process.version });
}

/** The `edgetune_build_info` family (a gauge of 1 whose labels say what is running). */
export async function buildInfoFamily(): Promise<MetricFamily> {
  return { name: 'edgetune_build_info', help: 'edgetune version, onnxruntime-node version and Node version (value 1).', type: 'gauge', samples: [{ labels: await buildInfoLabels(), value: 1 }] };
}

const shaCache = new Map<string, { key: string; sha: string }>();
/**
 * sha256 (hex) of a model file, cached while its size and mtime stay the same (a swapped or rewritten
 * file is hashed again). '' when the file cannot be read (metrics never fail over it).
 */
export async function modelFileSha256(file: string): Promise<string> {
  try {
    const st = await stat(file);
    const key = `${st.size}:${st.mtimeMs}`;
    const hit = shaCache.get(file);
    if (hit?.key === key) return hit.sha;
    const h = createHash('sha256');
    for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
    const sha = h.digest('hex');
    shaCache.set(file, { key, sha });
    return sha;
  } catch {
    return '';
  }
}
