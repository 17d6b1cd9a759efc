// Timing for the benchmark scripts: several runners timed in turn, run after run, so every one of them sees
// the same load on a shared machine (their medians and ratios then compare like with like), and the
// machine line every bench prints with its tables.

import { cpus, loadavg } from 'node:os';

/**
 * Wall milliseconds of each runner over `runs` rounds; in each round every runner runs once, in the order
 * given. `warmup` rounds first are not recorded (default 0). Returns the times per runner, in run order.
 */
export async function interleavedTimes<K extends string>(runners: Record<K, () => Promise<unknown>>, runs: number, warmup = 0): Promise<Record<K, number[]>> {
  const keys = Object.keys(runners) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < warmup + runs; round++) {
    for (const k of keys) {
      const t0 = performance.now();
      await runners[k]();
      if (round >= warmup) out[k].push(performance.now() - t0);
    }
  }
  return out;
}

/**
 * One line naming the machine a bench ran on, for its tables: date (UTC, ISO 8601), CPU model, logical
 * CPUs, the 1/5/15-minute load averages (a load above the CPU count means other processes shared the cores,
 * so single timings move; ratios of interleaved runs less), Node's version. Threads are each table's own column.
 */
export function machineLine(): string {
  const c = cpus();
  const load = loadavg().map((l) => l.toFixed(1)).join('/');
  return `machine: ${c[0]?.model.trim() ?? 'unknown CPU'}, ${c.length} logical CPU(s), load average ${load}, node ${process.version}, ${new Date().toISOString().slice(0, 16)}Z`;
}
