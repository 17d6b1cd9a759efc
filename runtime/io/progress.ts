// Long work made visible and stoppable: a progress line (rewritten in place on a TTY) and an
// AbortSignal that fires on the first Ctrl-C / SIGTERM. Node only.

import { EdgetuneError } from '../core/errors.js';

/** Where progress is written: a stream that may be a TTY. */
export interface ProgressIO {
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** A single rewriting progress line on a TTY; silent otherwise. */
export function progress(io: ProgressIO, label: string) {
  const tty = Boolean(io.stderr.isTTY);
  const t0 = performance.now();
  return {
    update(done: number, total: number, extra = '') {
      if (!tty) return;
      const s = (performance.now() - t0) / 1000;
      const eta = done > 0 && total > done ? ` eta ${((s / done) * (total - done)).toFixed(0)}s` : '';
      io.stderr.write(`\r\x1b[K${label} ${done}/${total} ${s.toFixed(1)}s${eta}${extra ? ' ' + extra : ''}`);
    },
    done(extra = '') {
      if (tty) io.stderr.write(`\r\x1b[K${label} done in ${((performance.now() - t0) / 1000).toFixed(1)}s${extra ? ' ' + extra : ''}\n`);
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
