// CLI plumbing shared by the commands: option parsing with clear errors and JSON-lines output.
// (File walking lives in io/files.ts, progress and Ctrl-C in io/progress.ts, tables in core/format.ts.)

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EdgetuneError, messageOf } from '../core/errors.js';

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

/**
 * util.parseArgs refuses `--lr -0.5` ("argument is ambiguous"): a string option followed by a
 * negative number (or a list starting with one, like `--range -1,1`) takes it as its value.
 */
function joinNegativeValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d|inf)/i.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function parse(argv: string[], options: Options, allowPositionals = true): Parsed {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, allowPositionals, strict: true }) as Parsed;
  } catch (err) {
    const m = messageOf(err).replace(/^Unknown option '(.*?)'.*$/s, 'Unknown option $1');
    throw new EdgetuneError('EARG', m.split('\n')[0]!);
  }
}

/**
 * An integer option in [min, max] (default `def` when absent). Errors name the option and its range:
 * `Expected integer between 1 and 64 for --views but received "0"` (`positive integer` / `integer >= min`
 * without an upper bound).
 */
export function intOption(name: string, v: string | undefined, def: number, min = 1, max = Infinity): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    const expected = max < Infinity ? `integer between ${min} and ${max}` : min === 1 ? 'positive integer' : `integer >= ${min}`;
    throw new EdgetuneError('EARG', `Expected ${expected} for --${name} but received ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * The documented ranges of the numeric options shared by commands (the upper bounds keep a typo such as
 * `--hidden 1e9` or `--threads 100000` from allocating without bound or hanging).
 */
export const OPTION_RANGES = {
  views: [1, 64],
  hidden: [1, 65536],
  epochs: [1, 100000],
  batchSize: [0, 1_000_000],
  patience: [0, 100000],
  stepSize: [1, 100000],
  threads: [1, 1024],
  previewViews: [1, 256],
  batch: [1, 1024],
  images: [1, 1_000_000],
  imagesOrNone: [0, 1_000_000],
  iterations: [1, 1_000_000],
  quality: [1, 100],
} as const;

export function numberOption(name: string, v: string | undefined, def: number, min = -Infinity, max = Infinity): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new EdgetuneError('EARG', `Expected number between ${min} and ${max} for --${name} but received ${JSON.stringify(v)}`);
  }
  return n;
}

/** `--retries`: a non-negative integer, or inf / infinite / ∞ (for ever). */
export function retriesOption(v: string | undefined, def: number): number {
  if (v === undefined) return def;
  if (/^(inf|infinite|infinity|∞)$/i.test(v.trim())) return Infinity;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new EdgetuneError('EARG', `Expected integer >= 0 or inf for --retries but received ${JSON.stringify(v)}`);
  return n;
}

/** A duration such as 500ms, 2s, 1.5 (seconds) or 0 → milliseconds. */
export function durationOption(name: string, v: string | undefined, defMs: number): number {
  if (v === undefined) return defMs;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(v.trim());
  if (!m) throw new EdgetuneError('EARG', `Expected a duration such as 500ms or 5s for --${name} but received ${JSON.stringify(v)}`);
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

export function listOption(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function writeJson(io: CommandIO, obj: unknown): void {
  io.stdout.write(JSON.stringify(obj) + '\n');
}
