// Datasets for the head trainer's multilabel and regression tasks (Node), read from a CSV:
//   multilabel  `file,label1;label2` per row (a folder holding `labels.csv` works too); the labels are
//               the sorted union of every row's; an empty label list = no label applies.
//   regression  `file,value`, or `file,v1;v2` for several outputs; a header row (`file,brightness` or
//               `file,brightness;aspect`) names the outputs, else they are `value` (one) or `value1`… .
// A header row is optional and starts with `file` (multilabel: `file,labels`; regression:
// `file,<names>`): a first row that does not is data, so a typo in the first row is reported with its
// line instead of becoming the header. Files are relative to the CSV's folder (or absolute). The CSV
// is parsed by csv-parse (RFC 4180: quoted fields, `""` for a quote, a BOM, CRLF); `#` at the start of
// a line is a comment. Every row is validated: a malformed row, a missing file, the same file twice
// (duplicate rows would count twice), a value that is not a finite number or is beyond ±TARGET_LIMIT
// is reported in `skipped` as `<csv>:<line>: <reason>` and left out; the rest goes on. No usable row
// is an EINPUT error.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv, type CsvError } from 'csv-parse/sync';
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

/**
 * Largest magnitude of a regression target. The head is float32 and trained with squared error:
 * 1e308 becomes Infinity in float32 and the loss NaN ("training diverged"); ±1e9 keeps squared
 * errors far inside float32. Scale larger quantities (e.g. thousands of units) before training.
 */
export const TARGET_LIMIT = 1e9;

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

/**
 * Non-empty, non-comment (#) records as (line, file, value), parsed with csv-parse; malformed ones go
 * to `skipped` with the line they start on.
 */
async function readRows(csv: string, skipped: SkippedRow[]): Promise<Row[]> {
  const text = await readFile(csv, 'utf8');
  const rows: Row[] = [];
  const utf8 = Buffer.from(text);
  /** Line breaks in the first `bytes` bytes (csv-parse counts bytes). */
  const linesBefore = (bytes: number) => {
    let n = 0;
    for (let i = 0; i < bytes && i < utf8.length; i++) if (utf8[i] === 10) n++;
    return n;
  };
  /** Index of the first line of a record's raw text that is not empty or a comment (raw text starts after the previous record). */
  const firstContent = (raw: string) => Math.max(0, raw.split('\n').findIndex((l) => l.trim() && !l.trimStart().startsWith('#')));
  const records = parseCsv(text, {
    bom: true,
    comment: '#',
    comment_no_infix: true,
    skip_empty_lines: true,
    relax_column_count: true,
    relax_quotes: false,
    info: true,
    raw: true,
    skip_records_with_error: true,
    on_skip: (err: CsvError | undefined, raw?: string) => {
      if (!err) return;
      // the record starts at the first line of its raw text that is not empty or a comment
      const e = err as CsvError & { bytes: number; raw?: string; lines: number };
      const line = linesBefore(e.bytes) + 1 + firstContent(e.raw ?? raw ?? '');
      const reason = e.code === 'CSV_QUOTE_NOT_CLOSED' ? 'unclosed double quote (the field runs to the end of the file)' : e.message.replace(/^[^:]*: /, '');
      skipped.push({ where: `${csv}:${line}`, reason });
    },
  }) as unknown as { record: string[]; raw: string; info: { lines: number } }[];
  for (const { record: f, raw, info } of records) {
    // info.lines is the line the record ends on; a quoted field may hold line breaks
    const rawLines = raw.replace(/\r?\n$/, '').split('\n').length;
    const line = info.lines - (rawLines - 1 - firstContent(raw));
    const where = `${csv}:${line}`;
    const fields = f.map((x) => x.trim());
    if (fields.length !== 2) {
      // `file,yellowness,petals`: a header written with commas (its names were dropped as a bad data row, the outputs named value1, value2)
      const header = fields.length > 2 && fields[0]!.toLowerCase() === 'file' && !rows.length && !skipped.length;
      skipped.push({ where, reason: `expected 2 fields (file,value) but found ${fields.length}${header ? `: a header row has 2 fields too, its names separated by ";" (file,${fields.slice(1).join(";")})` : ''}` });
      continue;
    }
    if (!fields[0]) {
      skipped.push({ where, reason: 'empty file name' });
      continue;
    }
    rows.push({ line, file: fields[0], value: fields[1]! });
  }
  return rows;
}

/** Whether `r` is the header: the CSV's first record (nothing skipped before it) with `file` as its file field. */
function isHeader(r: Row | undefined, skipped: readonly SkippedRow[]): boolean {
  return r !== undefined && r.file.toLowerCase() === 'file' && !skipped.some((s) => lineOf(s) < r.line);
}

function lineOf(s: SkippedRow): number {
  return Number(/:(\d+)$/.exec(s.where)?.[1] ?? 0);
}

/**
 * Keep the rows whose file exists (resolved against the CSV's folder) and is not named by an earlier
 * row; report the others (a second row for the same file would count the image twice).
 */
async function existing(csv: string, rows: Row[], skipped: SkippedRow[]): Promise<(Row & { abs: string })[]> {
  const dir = path.dirname(csv);
  const out: (Row & { abs: string })[] = [];
  const seen = new Map<string, number>();
  for (const r of rows) {
    const abs = path.resolve(dir, r.file);
    const first = seen.get(abs);
    if (first !== undefined) skipped.push({ where: `${csv}:${r.line}`, file: abs, reason: `duplicate row: ${r.file} is already on line ${first}` });
    else if (await isFile(abs)) {
      seen.set(abs, r.line);
      out.push({ ...r, abs });
    } else skipped.push({ where: `${csv}:${r.line}`, file: abs, reason: `file not found: ${r.file}` });
  }
  return out;
}

/** Skipped rows in line order. */
function byLine(skipped: SkippedRow[]): SkippedRow[] {
  return skipped.sort((a, b) => lineOf(a) - lineOf(b));
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
  if (isHeader(rows[0], skipped)) rows = rows.slice(1);
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
 * (header or data) row. Errors: EINPUT when the CSV is missing, no row is usable, or the header names
 * an output twice or not at all.
 */
export async function readRegressionCsv(p: string): Promise<TargetDataset> {
  const csv = await csvOf(p, 'regression CSV');
  const skipped: SkippedRow[] = [];
  let rows = await readRows(csv, skipped);
  const parts = (v: string) => v.split(';').map((x) => x.trim());
  const numeric = (x: string) => /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(x);
  let names: string[] | undefined;
  if (isHeader(rows[0], skipped)) {
    const h = rows[0]!;
    names = parts(h.value);
    rows = rows.slice(1);
    if (names.some((n) => !n)) throw new EdgetuneError('EINPUT', `${csv}:${h.line}: the header names an empty output (${JSON.stringify(h.value)}): expected file,name1;name2`, { subject: csv });
    // the model's labels name its values (core/labels.ts: a regression model's labels are unique)
    const twice = names.find((n, i) => names!.indexOf(n) !== i);
    if (twice !== undefined) throw new EdgetuneError('EINPUT', `${csv}:${h.line}: the header names output "${twice}" twice (${JSON.stringify(h.value)}): each output needs its own name`, { subject: csv });
  }
  const width = names?.length ?? (rows[0] ? parts(rows[0].value).length : 1);
  names ??= width === 1 ? ['value'] : Array.from({ length: width }, (_, i) => `value${i + 1}`);
  const good: Row[] = [];
  for (const r of rows) {
    const v = parts(r.value);
    const where = `${csv}:${r.line}`;
    const notNumber = v.find((x) => !numeric(x));
    const outOfRange = v.find((x) => !(Math.abs(Number(x)) <= TARGET_LIMIT));
    if (v.length !== width) skipped.push({ where, file: r.file, reason: `expected ${width} value(s) (${names.join(';')}) but found ${v.length}` });
    else if (notNumber !== undefined) {
      const hint = r.line === 1 ? ' (a header row starts with "file": file,name)' : '';
      skipped.push({ where, file: r.file, reason: `not a finite number: ${JSON.stringify(notNumber)}${hint}` });
    } else if (outOfRange !== undefined) skipped.push({ where, file: r.file, reason: `value ${outOfRange} is out of range: regression targets must be within ±${TARGET_LIMIT} (scale them down)` });
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

/**
 * A multilabel validation set's targets in the training labels' order (`ds.names`: the training CSV's,
 * or a trained model's labels; `trainCsv` names them in the error). Its labels may be a subset of
 * them (validation then has no positives for the others: 0 in every row); a label they lack is
 * refused, since the model has no output for it. Errors: EINPUT naming the validation CSV and its
 * unknown labels. Also read by `quantize --eval` of a multilabel model (calibration/index.ts evalTargets).
 */
export function inTrainingOrder(v: TargetDataset, ds: Pick<TargetDataset, 'names'>, trainCsv: string): TargetItem[] {
  const index = new Map(ds.names.map((n, i) => [n, i]));
  const unknown = v.names.filter((n) => !index.has(n));
  if (unknown.length) {
    throw new EdgetuneError(
      'EINPUT',
      `${v.csv}: label${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => JSON.stringify(n)).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not among ${trainCsv}'s labels (${ds.names.join(', ')}): the model has no output to validate ${unknown.length > 1 ? 'them' : 'it'} on`,
      { subject: v.csv },
    );
  }
  return v.items.map((it) => {
    const targets = new Array<number>(ds.names.length).fill(0);
    it.targets.forEach((t, k) => (targets[index.get(v.names[k]!)!] = t));
    return { file: it.file, targets };
  });
}
