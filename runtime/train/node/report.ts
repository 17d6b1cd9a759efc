// The fine-tuning report picture: loss and accuracy curves per epoch (train and validation, best epoch
// marked) and the validation confusion matrix, drawn as SVG (no plotting stack) and rendered to PNG
// with sharp (librsvg). The picture's size does not grow with the classes: past MATRIX_MAX_CLASSES the
// matrix (k² cells, over librsvg's 1 000 000-element limit at 1000 classes) is replaced by a list of the
// most frequent confusions.

import sharp from 'sharp';
import type { EpochStats } from '../types.js';

/** One training phase of the curves: its epochs (consecutive in `history`) and its best epoch, both counted within the phase. */
export interface ReportPhase {
  name: string;
  epochs: number;
  best: number;
}

export interface ReportFigure {
  title: string;
  /** Every epoch of every phase, in order. */
  history: EpochStats[];
  /** The best epoch (1-based) when there is one phase. */
  bestEpoch: number;
  /**
   * The phases, when there are several (head, then `--unfreeze`): the x axis, the phase boundary and
   * each best-epoch marker are labelled with the phase's own epoch numbers, as the command's summary
   * prints them ("phase 2 … best epoch 3/10").
   */
  phases?: ReportPhase[];
  labels: string[];
  /** Rows = true labels, columns = predicted. */
  confusion: number[][];
  /** Lines of text printed under the title. */
  notes: string[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number) => (Math.abs(v) >= 10 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(2));

/**
 * A line chart of per-epoch series. The legend and the title sit in a band above the plotting area
 * (never on the curves); each phase's best epoch is a dashed line labelled in that phase's numbering.
 */
function chart(x0: number, y0: number, w: number, h: number, title: string, series: { name: string; color: string; values: (number | undefined)[] }[], phases: readonly ReportPhase[], fixed?: [number, number]): string {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const lo = fixed ? fixed[0] : Math.min(...all, 0);
  let hi = fixed ? fixed[1] : Math.max(...all, 1e-6);
  if (hi === lo) hi = lo + 1;
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const band = 26; // title and legend
  const plotTop = y0 + band + 12 + 12 * Math.min(phases.length, 2); // a row per phase's best-epoch label
  const px = (i: number) => x0 + 40 + ((w - 50) * i) / Math.max(1, n - 1);
  const py = (v: number) => y0 + h - 25 - ((y0 + h - 25 - plotTop) * (v - lo)) / (hi - lo);
  let out = `<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="#fff" stroke="#ccc"/>`;
  out += `<text x="${x0 + 10}" y="${y0 + 17}" font-size="13" font-weight="bold">${esc(title)}</text>`;
  // legend: right-aligned in the band above the plot
  let lx = x0 + w - 10;
  for (const s of [...series].reverse()) {
    lx -= 14 + 6.2 * s.name.length;
    out += `<rect x="${lx.toFixed(1)}" y="${y0 + 10}" width="10" height="3" fill="${s.color}"/><text x="${(lx + 13).toFixed(1)}" y="${y0 + 15}" font-size="10">${esc(s.name)}</text>`;
    lx -= 8;
  }
  out += `<line x1="${x0}" x2="${x0 + w}" y1="${y0 + band}" y2="${y0 + band}" stroke="#eee"/>`;
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    out += `<line x1="${x0 + 40}" x2="${x0 + w - 10}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/>`;
    out += `<text x="${x0 + 36}" y="${py(v) + 4}" text-anchor="end" font-size="10">${fmt(v)}</text>`;
  }
  const axis = phases.length > 1 ? `epoch (${phases.map((p) => `${p.name} 1–${p.epochs}`).join(', ')})` : `epoch (1–${n})`;
  out += `<text x="${x0 + w / 2}" y="${y0 + h - 6}" text-anchor="middle" font-size="10">${esc(axis)}</text>`;
  let start = 0;
  phases.forEach((p, i) => {
    if (i > 0) {
      const bx = (px(start - 1) + px(start)) / 2;
      out += `<line x1="${bx}" x2="${bx}" y1="${plotTop}" y2="${y0 + h - 25}" stroke="#bbb"/><text x="${bx + 3}" y="${y0 + h - 29}" font-size="10" fill="#666">${esc(p.name)}</text>`;
    }
    if (p.best >= 1) {
      const bx = px(start + p.best - 1);
      const label = phases.length > 1 ? `${p.name} best ${p.best}` : `best ${p.best}`;
      // its own row (labels of close epochs do not collide), left of the line in the chart's right half (never clipped)
      const right = bx > x0 + w / 2;
      const ly = plotTop - 3 - 12 * (Math.min(phases.length, 2) - 1 - (i % 2));
      out += `<line x1="${bx}" x2="${bx}" y1="${ly - 9}" y2="${y0 + h - 25}" stroke="#999" stroke-dasharray="4 3"/><text x="${right ? bx - 3 : bx + 3}" y="${ly}" font-size="10" fill="#666"${right ? ' text-anchor="end"' : ''}>${esc(label)}</text>`;
    }
    start += p.epochs;
  });
  series.forEach((s) => {
    const pts = s.values.map((v, i) => (v === undefined || !Number.isFinite(v) ? undefined : `${px(i).toFixed(1)},${py(v).toFixed(1)}`)).filter(Boolean);
    if (pts.length) out += `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.join(' ')}"/>`;
  });
  return out;
}

function matrix(x0: number, y0: number, size: number, labels: string[], m: number[][]): string {
  const k = labels.length;
  const pad = 90;
  const head = 64; // title, then the rotated column labels below it
  const cell = Math.max(8, Math.floor((size - pad - (head - 44)) / Math.max(1, k)));
  let out = `<text x="${x0 + pad + (cell * k) / 2}" y="${y0 + 14}" text-anchor="middle" font-size="13" font-weight="bold">confusion (rows: true, columns: predicted)</text>`;
  const top = y0 + head;
  for (let r = 0; r < k; r++) {
    const total = m[r]!.reduce((a, b) => a + b, 0) || 1;
    out += `<text x="${x0 + pad - 4}" y="${top + r * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${esc(labels[r]!.slice(0, 14))}</text>`;
    for (let c = 0; c < k; c++) {
      const v = m[r]![c]!;
      const a = v / total;
      const color = r === c ? `rgba(30,120,60,${0.15 + 0.85 * a})` : `rgba(200,40,40,${v ? 0.15 + 0.85 * a : 0})`;
      out += `<rect x="${x0 + pad + c * cell}" y="${top + r * cell}" width="${cell}" height="${cell}" fill="${color}" stroke="#ddd"/>`;
      if (cell >= 18) out += `<text x="${x0 + pad + c * cell + cell / 2}" y="${top + r * cell + cell / 2 + 4}" text-anchor="middle" font-size="${Math.min(12, cell / 2.5)}">${v}</text>`;
    }
  }
  for (let c = 0; c < k; c++) {
    out += `<text transform="translate(${x0 + pad + c * cell + cell / 2},${top - 4}) rotate(-30)" font-size="10">${esc(labels[c]!.slice(0, 12))}</text>`;
  }
  return out;
}

/** Classes up to which the full confusion matrix is drawn (cells stay at least 8 px in the 1000×700 picture's matrix area at ~40 classes; 50 keeps them readable as colour). */
export const MATRIX_MAX_CLASSES = 50;
/** Confusions listed instead of the matrix past MATRIX_MAX_CLASSES. */
export const TOP_CONFUSIONS = 20;

/** The most frequent off-diagonal cells of `m` (true → predicted), largest first, at most `n`. */
export function topConfusions(labels: readonly string[], m: readonly (readonly number[])[], n = TOP_CONFUSIONS): { true: string; predicted: string; count: number; share: number }[] {
  const cells: { r: number; c: number; v: number; total: number }[] = [];
  m.forEach((row, r) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((v, c) => {
      if (r !== c && v > 0) cells.push({ r, c, v, total });
    });
  });
  cells.sort((a, b) => b.v - a.v || a.r - b.r || a.c - b.c);
  return cells.slice(0, n).map((e) => ({ true: labels[e.r]!, predicted: labels[e.c]!, count: e.v, share: e.total ? e.v / e.total : 0 }));
}

function confusionList(x0: number, y0: number, labels: string[], m: number[][]): string {
  const top = topConfusions(labels, m);
  let out = `<text x="${x0}" y="${y0 + 14}" font-size="13" font-weight="bold">${esc(`top ${top.length} confusions of ${labels.length} classes (true → predicted: images, share of the class)`)}</text>`;
  if (!top.length) out += `<text x="${x0}" y="${y0 + 34}" font-size="11">none</text>`;
  top.forEach((e, i) => {
    const col = i < 10 ? 0 : 1;
    const row = i % 10;
    out += `<text x="${x0 + col * 480}" y="${y0 + 34 + row * 15}" font-size="11">${esc(`${e.true.slice(0, 28)} → ${e.predicted.slice(0, 28)}: ${e.count} (${(e.share * 100).toFixed(0)}%)`)}</text>`;
  });
  return out;
}

export function reportSvg(f: ReportFigure): string {
  const W = 1000;
  const H = 700;
  const h = f.history;
  let body = `<rect width="${W}" height="${H}" fill="#fafafa"/>`;
  body += `<text x="20" y="28" font-size="18" font-weight="bold">${esc(f.title)}</text>`;
  f.notes.forEach((n, i) => (body += `<text x="20" y="${50 + i * 16}" font-size="12">${esc(n)}</text>`));
  const top = 60 + f.notes.length * 16;
  const phases = f.phases ?? [{ name: 'head', epochs: h.length, best: f.bestEpoch }];
  body += chart(20, top, 470, 280, 'loss', [
    { name: 'train', color: '#1f77b4', values: h.map((e) => e.trainLoss) },
    { name: 'validation', color: '#d62728', values: h.map((e) => e.valLoss) },
  ], phases);
  body += chart(510, top, 470, 280, 'accuracy', [
    { name: 'train', color: '#1f77b4', values: h.map((e) => e.trainAccuracy) },
    { name: 'validation', color: '#d62728', values: h.map((e) => e.valAccuracy) },
  ], phases, [0, 1]);
  body += f.labels.length > MATRIX_MAX_CLASSES ? confusionList(20, top + 295, f.labels, f.confusion) : matrix(20, top + 295, H - top - 295, f.labels, f.confusion);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif">${body}</svg>`;
}

/** The report as PNG bytes. */
export async function reportPng(f: ReportFigure): Promise<Buffer> {
  return sharp(Buffer.from(reportSvg(f))).png().toBuffer();
}

/** The `eval --unknown` picture: the known and unknown images' score distributions (histograms over shared bins) and the threshold. */
export interface ScoreFigure {
  title: string;
  notes: string[];
  /** Axis label of the score (e.g. "unknown score (higher = less like anything taught)"). */
  score: string;
  known: ArrayLike<number>;
  unknown: ArrayLike<number>;
  threshold?: number;
}

export function scoreSvg(f: ScoreFigure, bins = 30): string {
  const W = 900;
  const H = 480;
  const all = [...Array.from(f.known), ...Array.from(f.unknown), ...(f.threshold !== undefined ? [f.threshold] : [])].filter(Number.isFinite);
  const lo = Math.min(...all);
  const hi = Math.max(...all) > lo ? Math.max(...all) : lo + 1;
  const hist = (xs: ArrayLike<number>): number[] => {
    const h = new Array<number>(bins).fill(0);
    for (let i = 0; i < xs.length; i++) h[Math.min(bins - 1, Math.max(0, Math.floor(((xs[i]! - lo) / (hi - lo)) * bins)))]! += 1 / Math.max(1, xs.length);
    return h;
  };
  const hk = hist(f.known);
  const hu = hist(f.unknown);
  const top = Math.max(...hk, ...hu, 1e-9);
  const x0 = 60;
  const y0 = 90 + f.notes.length * 16;
  const pw = W - 90;
  const ph = H - y0 - 50;
  const bw = pw / bins;
  let body = `<rect width="${W}" height="${H}" fill="#fafafa"/><text x="20" y="28" font-size="18" font-weight="bold">${esc(f.title)}</text>`;
  f.notes.forEach((n, i) => (body += `<text x="20" y="${50 + i * 16}" font-size="12">${esc(n)}</text>`));
  body += `<line x1="${x0}" y1="${y0 + ph}" x2="${x0 + pw}" y2="${y0 + ph}" stroke="#444"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + ph}" stroke="#444"/>`;
  const bars = (h: number[], color: string) =>
    h.map((v, i) => `<rect x="${(x0 + i * bw).toFixed(1)}" y="${(y0 + ph - (v / top) * ph).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${((v / top) * ph).toFixed(1)}" fill="${color}" fill-opacity="0.55"/>`).join('');
  body += bars(hk, '#1f77b4') + bars(hu, '#d62728');
  for (let t = 0; t <= 4; t++) body += `<text x="${(x0 + (t / 4) * pw).toFixed(1)}" y="${y0 + ph + 16}" font-size="11" text-anchor="middle">${fmt(lo + (t / 4) * (hi - lo))}</text>`;
  body += `<text x="${x0 + pw / 2}" y="${y0 + ph + 34}" font-size="12" text-anchor="middle">${esc(f.score)}</text>`;
  body += `<text x="${x0 - 8}" y="${y0 + 10}" font-size="11" text-anchor="end">${fmt(top)}</text><text x="${x0 - 8}" y="${y0 + ph}" font-size="11" text-anchor="end">0</text>`;
  if (f.threshold !== undefined) {
    const tx = x0 + ((f.threshold - lo) / (hi - lo)) * pw;
    body += `<line x1="${tx.toFixed(1)}" y1="${y0}" x2="${tx.toFixed(1)}" y2="${y0 + ph}" stroke="#000" stroke-dasharray="5,4"/><text x="${(tx + 4).toFixed(1)}" y="${y0 + 12}" font-size="11">threshold ${fmt(f.threshold)}</text>`;
  }
  const ly = y0 - 22;
  body += `<rect x="${x0}" y="${ly}" width="12" height="12" fill="#1f77b4" fill-opacity="0.55"/><text x="${x0 + 18}" y="${ly + 10}" font-size="12">known (${f.known.length})</text>`;
  body += `<rect x="${x0 + 140}" y="${ly}" width="12" height="12" fill="#d62728" fill-opacity="0.55"/><text x="${x0 + 158}" y="${ly + 10}" font-size="12">unknown (${f.unknown.length})</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif">${body}</svg>`;
}

/** The score picture as PNG bytes. */
export async function scorePng(f: ScoreFigure): Promise<Buffer> {
  return sharp(Buffer.from(scoreSvg(f))).png().toBuffer();
}
