// Long work made visible and stoppable: a progress line (rewritten in place on a TTY) and an
// AbortSignal that fires on the first Ctrl-C / SIGTERM. Node only.

import { EdgetuneError } from '../core/errors.js';

/** Where progress is written: a stream that may be a TTY. */
export interface ProgressIO {
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * A single rewriting progress line on a TTY; silent otherwise. Its clock starts with the stage, at the
 * first `update` (a stage reports `update(0, total)` when it begins), not when the bar is made: a
 * command makes every stage's bar up front, and a later stage must not count the earlier ones' time.
 * The ETA is (seconds since the first report ÷ items done since it) × items left; elapsed time and
 * `done()`'s duration are the stage's own. `now` (milliseconds, default performance.now) is for tests.
 */
export function progress(io: ProgressIO, label: string, now: () => number = () => performance.now()) {
  const tty = Boolean(io.stderr.isTTY);
  let t0: number | undefined;
  let d0 = 0;
  return {
    update(done: number, total: number, extra = '') {
      if (!tty) return;
      const t = now();
      if (t0 === undefined) {
        t0 = t;
        d0 = done;
      }
      const s = (t - t0) / 1000;
      const eta = done > d0 && total > done ? ` eta ${((s / (done - d0)) * (total - done)).toFixed(0)}s` : '';
      io.stderr.write(`\r\x1b[K${label} ${done}/${total} ${s.toFixed(1)}s${eta}${extra ? ' ' + extra : ''}`);
    },
    done(extra = '') {
      if (tty) io.stderr.write(`\r\x1b[K${label} done in ${((t0 === undefined ? 0 : now() - t0) / 1000).toFixed(1)}s${extra ? ' ' + extra : ''}\n`);
    },
  };
}

/**
 * An AbortSignal that fires on the first SIGINT/SIGTERM so long work can stop between steps and
 * clean up; a second Ctrl-C exits at once.
 */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onSig = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`\nedgetune: ${sig} received, stopping (again to force)\n`);
    ac.abort(new EdgetuneError('EIO', `interrupted by ${sig}`));
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  return {
    signal: ac.signal,
    dispose() {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    },
  };
}
