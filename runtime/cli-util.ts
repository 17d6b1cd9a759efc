// Shared CLI plumbing: option parsing with clear errors, input file expansion (directories are walked,
// sorted), JSON-lines output, a TTY progress line, and Ctrl-C handling for long work.

import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EdgetuneError, messageOf } from './errors.js';
import { IMAGE_EXTENSIONS } from './image.js';

export interface CommandIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface Command {
  /** One line for `edgetune --help`. */
  summary: string;
  /** Full usage text for `edgetune <cmd> --help`. */
  usage: string;
  run(argv: string[], io: CommandIO): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs with edgetune's error wording. */
export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options, allowPositionals = true): Parsed {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as Parsed;
  } catch (err) {
    const m = messageOf(err).replace(/^Unknown option '(.*?)'.*$/s, 'Unknown option $1');
    throw new EdgetuneError('EARG', m.split('\n')[0]!);
  }
}

export function intOption(name: string, v: string | undefined, def: number, min = 1): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new EdgetuneError('EARG', `Expected ${min === 1 ? 'positive integer' : `integer >= ${min}`} for --${name} but received ${JSON.stringify(v)}`);
  }
  return n;
}

export function numberOption(name: string, v: string | undefined, def: number, min = -Infinity, max = Infinity): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new EdgetuneError('EARG', `Expected number between ${min} and ${max} for --${name} but received ${JSON.stringify(v)}`);
  }
  return n;
}

export function listOption(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function isImageFile(f: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
}

/**
 * Expand CLI inputs: files are kept as given (whatever their extension, so a bad file gets its own
 * error), directories are walked recursively for image files, sorted. A missing path is returned as-is
 * so the caller reports it per file.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = await stat(input);
    } catch {
      out.push(input);
      continue;
    }
    if (!st.isDirectory()) {
      out.push(input);
      continue;
    }
    const walk = async (dir: string): Promise<void> => {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && (isImageFile(e.name) || /\.(jpe?g|png)$/i.test(e.name))) out.push(p);
        else if (e.isFile() && !e.name.startsWith('.')) out.push(p); // non-image files are reported, not hidden
      }
    };
    await walk(input);
  }
  return out;
}

/** A single rewriting progress line on a TTY; silent otherwise. */
export function progress(io: CommandIO, label: string) {
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

export function writeJson(io: CommandIO, obj: unknown): void {
  io.stdout.write(JSON.stringify(obj) + '\n');
}

/** Format a table of rows (arrays of cells) with aligned columns. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  // Numbers right-aligned, text left-aligned; the last column is not padded.
  const fmt = (r: (string | number)[], ri: number) =>
    cells[ri]!.map((c, i) => (i === r.length - 1 ? c : typeof r[i] === 'number' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return rows.map(fmt).join('\n') + '\n';
}
