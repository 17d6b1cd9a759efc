// Small statistics shared by reports and benchmarks (browser-safe).

/** The median of `xs` (the mean of the two middle values for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The Wilson score interval of a proportion: `successes` of `n` trials, at the normal quantile `z`
 * (default 1.96, a 95% interval). Unlike the normal-approximation interval it stays inside [0, 1] and
 * is honest at 0 or n successes (9 of 9 gives 0.701–1). Returns [low, high]; [0, 1] for n = 0.
 * Source: E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
 * J. Amer. Statist. Assoc. 22 (1927) 209–212.
 */
export function wilsonInterval(successes: number, n: number, z = 1.96): [number, number] {
  if (!(n > 0)) return [0, 1];
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

/** How many images an accuracy stands on and its 95% Wilson interval: "of 9 (95% interval 70–100%)". */
export function intervalText(correct: number, n: number): string {
  const [lo, hi] = wilsonInterval(correct, n);
  const pct = (v: number) => `${Math.round(v * 100)}`;
  return `of ${n} (95% interval ${pct(lo)}–${pct(hi)}%)`;
}

/** An accuracy with how many images it stands on and its 95% Wilson interval: "100.0% of 9 (95% interval 70–100%)". */
export function accuracyText(correct: number, n: number): string {
  return `${((correct / n) * 100).toFixed(1)}% ${intervalText(correct, n)}`;
}
