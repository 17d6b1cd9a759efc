// Datasets for the head trainer's multilabel and regression tasks (Node), read from a CSV:
//   multilabel  `file,label1;label2` per row (a folder holding `labels.csv` works too); the labels are
//               the sorted union of every row's; an empty label list = no label applies.
//   regression  `file,value`, or `file,v1;v2` for several outputs; a header row (`file,brightness` or
//               `file,brightness;aspect`) names the outputs, else they are `value` (one) or `value1`… .
// A header row is optional (multilabel: `file,labels`). Files are relative to the CSV's folder (or
// absolute). A row that is malformed or names a missing file is reported in `skipped` as
// `<csv>:<line>: <reason>` and left out; the rest goes on. No usable row is an EINPUT error.
// The CSV is split per line with double-quoted fields allowed (`"a,b.jpg"`, `""` for a quote); the
// format is this small, so no CSV library is added for it.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError } from '../../core/errors.js';

/** A row left out, in line order. */
export interface SkippedRow {
  /** `<csv>:<line>` (1-based line). */
  where: string;
  file?: string;
  reason: string;
}

export interface TargetItem {
  /** Absolute path of the image. */
  file: string;
  /** One per label (0/1, multilabel) or per output (regression). */
  targets: number[];
}

export interface TargetDataset {
  task: 'multilabel' | 'regression';
  /** The CSV read. */
  csv: string;
  /** Label names (multilabel) or output names (regression), in target order. */
  names: string[];
  items: TargetItem[];
  skipped: SkippedRow[];
}

/** One CSV line's fields (double quotes group, `""` is a quote). Undefined when a quote is left open. */
export function splitCsvLine(line: string): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) return undefined;
  out.push(cur);
  return out.map((f) => f.trim());
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** The CSV a path names: the file itself, or `labels.csv` inside a folder. Errors: EINPUT when neither exists. */
async function csvOf(p: string, what: string): Promise<string> {
  let st;
  try {
    st = await stat(p);
  } catch {
    throw new EdgetuneError('EINPUT', `${p}: ${what} not found`, { subject: p });
  }
  if (!st.isDirectory()) return p;
  const inner = path.join(p, 'labels.csv');
  if (!(await isFile(inner))) throw new EdgetuneError('EINPUT', `${p}: folder has no labels.csv (expected rows "file,label1;label2")`, { subject: p });
  return inner;
}

interface Row {
  line: number;
  file: string;
  value: string;
}

/** Non-empty, non-comment (#) rows as (line, file, value); malformed ones go to `skipped`. */
async function readRows(csv: string, skipped: SkippedRow[]): Promise<Row[]> {
  const text = await readFile(csv, 'utf8');
  const rows: Row[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\uFEFF/, '');
    if (!line.trim() || line.trimStart().startsWith('#')) return;
    const where = `${csv}:${i + 1}`;
    const f = splitCsvLine(line);
    if (!f) return skipped.push({ where, reason: 'unclosed double quote' });
    if (f.length !== 2) return skipped.push({ where, reason: `expected 2 fields (file,value) but found ${f.length}` });
    if (!f[0]) return skipped.push({ where, reason: 'empty file name' });
    rows.push({ line: i + 1, file: f[0], value: f[1]! });
  });
  return rows;
}

/** Keep the rows whose file exists (resolved against the CSV's folder); report the others. */
async function existing(csv: string, rows: Row[], skipped: SkippedRow[]): Promise<(Row & { abs: string })[]> {
  const dir = path.dirname(csv);
  const out: (Row & { abs: string })[] = [];
  for (const r of rows) {
    const abs = path.resolve(dir, r.file);
    if (await isFile(abs)) out.push({ ...r, abs });
    else skipped.push({ where: `${csv}:${r.line}`, file: abs, reason: `file not found: ${r.file}` });
  }
  return out;
}

/** Skipped rows in line order. */
function byLine(skipped: SkippedRow[]): SkippedRow[] {
  const line = (s: SkippedRow) => Number(/:(\d+)$/.exec(s.where)?.[1] ?? 0);
  return skipped.sort((a, b) => line(a) - line(b));
}

function empty(csv: string, what: string, skipped: SkippedRow[]): EdgetuneError {
  const why = skipped.length ? `; ${skipped.length} row(s) skipped, first: ${skipped[0]!.where}: ${skipped[0]!.reason}` : '';
  return new EdgetuneError('EINPUT', `${csv}: no usable ${what} rows${why}`, { subject: csv });
}

/**
 * A multilabel dataset from `file,label1;label2` rows (`p`: the CSV, or a folder with `labels.csv`).
 * Labels are trimmed, de-duplicated per row and sorted across rows. Errors: EINPUT when the CSV is
 * missing or no row is usable (bad rows and missing files are in `skipped`).
 */
export async function readMultilabelCsv(p: string): Promise<TargetDataset> {
  const csv = await csvOf(p, 'multilabel CSV');
  const skipped: SkippedRow[] = [];
  let rows = await readRows(csv, skipped);
  if (rows[0] && rows[0].file.toLowerCase() === 'file' && rows[0].value.toLowerCase() === 'labels') rows = rows.slice(1);
  const ok = await existing(csv, rows, skipped);
  const sets = ok.map((r) => [...new Set(r.value.split(';').map((l) => l.trim()).filter(Boolean))]);
  const names = [...new Set(sets.flat())].sort();
  if (!ok.length || !names.length) throw empty(csv, 'multilabel', byLine(skipped));
  const index = new Map(names.map((n, i) => [n, i]));
  const items = ok.map((r, k) => {
    const targets = new Array<number>(names.length).fill(0);
    for (const l of sets[k]!) targets[index.get(l)!] = 1;
    return { file: r.abs, targets };
  });
  return { task: 'multilabel', csv, names, items, skipped: byLine(skipped) };
}

/**
 * A regression dataset from `file,value` (or `file,v1;v2`) rows. A first row whose values are not
 * all numbers is the header naming the outputs. Every row must have as many values as the first
 * (header or data) row. Errors: EINPUT when the CSV is missing or no row is usable.
 */
export async function readRegressionCsv(p: string): Promise<TargetDataset> {
  const csv = await csvOf(p, 'regression CSV');
  const skipped: SkippedRow[] = [];
  let rows = await readRows(csv, skipped);
  const parts = (v: string) => v.split(';').map((x) => x.trim());
  const numeric = (x: string) => x !== '' && Number.isFinite(Number(x));
  let names: string[] | undefined;
  if (rows[0] && !parts(rows[0].value).every(numeric)) {
    names = parts(rows[0].value);
    rows = rows.slice(1);
  }
  const width = names?.length ?? (rows[0] ? parts(rows[0].value).length : 1);
  names ??= width === 1 ? ['value'] : Array.from({ length: width }, (_, i) => `value${i + 1}`);
  const good: Row[] = [];
  for (const r of rows) {
    const v = parts(r.value);
    const where = `${csv}:${r.line}`;
    if (v.length !== width) skipped.push({ where, reason: `expected ${width} value(s) (${names.join(';')}) but found ${v.length}` });
    else if (!v.every(numeric)) skipped.push({ where, reason: `not a number: ${JSON.stringify(v.find((x) => !numeric(x)))}` });
    else good.push(r);
  }
  const ok = await existing(csv, good, skipped);
  if (!ok.length) throw empty(csv, 'regression', byLine(skipped));
  return { task: 'regression', csv, names, items: ok.map((r) => ({ file: r.abs, targets: parts(r.value).map(Number) })), skipped: byLine(skipped) };
}

/** Row-major [n, names] float targets of a dataset's items (for FeatureSet.targets). */
export function targetMatrix(items: readonly TargetItem[], width: number): Float32Array {
  const t = new Float32Array(items.length * width);
  items.forEach((it, i) => t.set(it.targets, i * width));
  return t;
}
