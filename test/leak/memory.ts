// Helpers of the leak project (vitest --project leak, started with --expose-gc): full collections
// before a memory reading, open-handle counts, and waiting for closing sockets and threads.

/** A full collection; the leak project runs with --expose-gc, and without it the tests are meaningless. */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g !== 'function') throw new Error('globalThis.gc is missing: run the leak project (vitest --project leak) with --expose-gc');
  g();
}

/** Full collections with a turn of the event loop between them, so freed ArrayBuffers' memory is released too. */
export async function settle(): Promise<void> {
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
}

/** Open handles of each kind (Node's getActiveResourcesInfo: TCPSocketWrap, Timeout, MessagePort, …). */
export function handles(): Record<string, number> {
  const n: Record<string, number> = {};
  for (const k of process.getActiveResourcesInfo()) n[k] = (n[k] ?? 0) + 1;
  return n;
}

/**
 * The handles now against a baseline taken while a stream runs: every kind as many as then, except
 * timers (`Timeout`), which may be fewer: a running stream arms and clears its own (frame pacing) from
 * one instant to the next, so the baseline may have caught one. More of any kind is a leak.
 */
export function handlesBackTo(base: Record<string, number>): boolean {
  const now = handles();
  for (const k of new Set([...Object.keys(base), ...Object.keys(now)])) {
    const a = base[k] ?? 0;
    const b = now[k] ?? 0;
    if (k === 'Timeout' ? b > a : b !== a) return false;
  }
  return true;
}

/** Wait until `ok()` holds (closing sockets and threads finish on later turns of the event loop). */
export async function until(ok: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const t = Date.now();
  while (!(await ok())) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const MiB = 1048576;
