// Long work made visible and stoppable: a progress line (rewritten in place on a TTY) and an
// AbortSignal that fires on the first Ctrl-C / SIGTERM. Node only.

import { constants as osConstants } from 'node:os';
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

/** The signals that stop long work: Ctrl-C, `kill`, and a closed terminal or `systemctl reload` (SIGHUP). */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * What long work throws when a stop signal arrived (`interrupted by SIGINT`); the CLI exits with
 * 128 + the signal's number (130 for Ctrl-C), the shell's convention for a command a signal ended.
 */
export class InterruptedError extends EdgetuneError {
  readonly signalName: NodeJS.Signals;
  constructor(signalName: NodeJS.Signals, what?: string) {
    super('EIO', `interrupted by ${signalName}${what ? ` ${what}` : ''}`);
    this.signalName = signalName;
  }
  /** 128 + the signal's number. */
  get exitCode(): number {
    return 128 + (osConstants.signals[this.signalName] ?? 2);
  }
}

/**
 * An AbortSignal that fires on the first SIGINT/SIGTERM/SIGHUP so long work can stop between steps and
 * clean up; a second one exits at once (130). The abort reason is an InterruptedError.
 */
export function interruptSignal(what?: string): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onSig = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`\nedgetune: ${sig} received, stopping (again to force)\n`);
    ac.abort(new InterruptedError(sig, what));
  };
  for (const s of STOP_SIGNALS) process.on(s, onSig);
  return {
    signal: ac.signal,
    dispose() {
      for (const s of STOP_SIGNALS) process.off(s, onSig);
    },
  };
}
