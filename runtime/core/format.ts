// Plain-text formatting shared by the CLI, reports and benchmarks (browser-safe).

/** Format a table of rows (arrays of cells) with aligned columns. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  // Numbers right-aligned, text left-aligned; the last column is not padded.
  const fmt = (r: (string | number)[], ri: number) =>
    cells[ri]!.map((c, i) => (i === r.length - 1 ? c : typeof r[i] === 'number' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return rows.map(fmt).join('\n') + '\n';
}
