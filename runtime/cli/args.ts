// CLI plumbing shared by the commands: typed option tables, value parsers with sharp-style errors, and
// JSON-lines output. (File walking lives in io/files.ts, progress and Ctrl-C in io/progress.ts, tables
// in core/format.ts.)
//
// How a command declares and reads its options (new commands adopt the same three steps):
//
//   const OPTIONS = {                                  // 1. a typed option table (`as const` or inline)
//     model: { type: 'string', default: 'mobilenetv2-int8' },
//     top: { type: 'string' },                         //    numbers stay strings: parsed in step 3
//     json: { type: 'boolean', default: false },
//     'allow-host': { type: 'string', multiple: true },
//     ...SESSION_OPTIONS,                              //    shared tables spread in (common.ts, card-options.ts)
//   } as const;
//   const { values: v, positionals } = parse(argv, OPTIONS);   // 2. parse: `v` is typed from the table:
//     // v.model: string (it has a default), v.top: string | undefined, v.json: boolean,
//     // v['allow-host']: string[] | undefined; an unknown option is a type error, not a cast
//   const top = intOption('top', v.top, 5);            // 3. value parsers turn strings into checked values
//
// Every bad value is an EdgetuneError('EARG') from `invalidOption` (core/errors.ts's invalidParameter
// with the `--name` spelling): `Expected integer between 1 and 64 for --views but received "0"`.
//
// Durations (`durationOption`): a number with a unit, ms, s or m (500ms, 2s, 1.5s, 1m); a bare number
// is SECONDS (`--stall-timeout 5` is 5 s; `0` is zero either way). One rule for every command.

import { parseArgs } from 'node:util';
import { EdgetuneError, invalidParameter, messageOf, numberRangeText } from '../core/errors.js';
import { checkPathGiven } from '../io/paths.js';

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

/** One option of a table: util.parseArgs's option config. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  default?: string | boolean | readonly string[] | readonly boolean[];
  /**
   * A path option (`'folder'`, `'file'`, or the words to say, e.g. `'a folder or CSV file'`): parse
   * refuses an empty or blank value (`--val "$DIR"` with the variable unset would read the current
   * directory) with `Expected a folder for --val but received ""` (io/paths.ts checkPathGiven).
   */
  path?: 'folder' | 'file' | `a ${string}`;
}

/** A command's options by long name (without `--`). */
export type OptionTable = { readonly [name: string]: OptionSpec };

type ValueOf<S extends OptionSpec> = S extends { type: 'boolean' } ? boolean : string;
type FullValueOf<S extends OptionSpec> = S extends { multiple: true } ? ValueOf<S>[] : ValueOf<S>;

/** The parsed values of a table: an option with a default always has a value, others may be undefined. */
export type OptionValues<T extends OptionTable> = {
  -readonly [K in keyof T]: T[K] extends { default: string | boolean | readonly unknown[] } ? FullValueOf<T[K]> : FullValueOf<T[K]> | undefined;
};

/** util.parseArgs's result, typed by the table. */
export interface Parsed<T extends OptionTable = OptionTable> {
  values: OptionValues<T>;
  positionals: string[];
}

/**
 * util.parseArgs refuses `--lr -0.5` ("argument is ambiguous"): a string option followed by a
 * negative number (or a list starting with one, like `--range -1,1`) takes it as its value.
 */
function joinNegativeValues(argv: string[], options: OptionTable): string[] {
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

/**
 * Parse `argv` against a typed option table (strict: an unknown option is `EARG Unknown option --x`).
 * The values are typed from the table (see the top of this file). An empty or blank value of an option
 * the table marks `path`, and an empty or blank positional (every command's positionals are paths, model
 * references or sources), are refused: `Expected a folder for --val but received ""`, `Expected a
 * non-empty value for argument 1 but received ""`.
 */
export function parse<const T extends OptionTable>(argv: string[], options: T, allowPositionals = true): Parsed<T> {
  let r;
  try {
    const config = { args: joinNegativeValues(argv, options), options: options as NonNullable<Parameters<typeof parseArgs>[0]>['options'], allowPositionals, strict: true };
    r = parseArgs(config);
  } catch (err) {
    const m = messageOf(err).replace(/^Unknown option '(.*?)'.*$/s, 'Unknown option $1');
    throw new EdgetuneError('EARG', m.split('\n')[0]!);
  }
  for (const [name, spec] of Object.entries(options)) {
    if (!spec.path) continue;
    const what = spec.path === 'folder' || spec.path === 'file' ? `a ${spec.path}` : spec.path;
    for (const value of [(r.values as Record<string, unknown>)[name]].flat()) if (typeof value === 'string') checkPathGiven(value, `--${name}`, what);
  }
  r.positionals.forEach((p, i) => checkPathGiven(p, `argument ${i + 1}`, 'a non-empty value'));
  return { values: r.values as OptionValues<T>, positionals: r.positionals };
}

/** The argument error for a command-line option: `Expected <expected> for --<name> but received "<value>"`. */
export function invalidOption(name: string, expected: string, value: unknown): EdgetuneError {
  return invalidParameter(`--${name}`, expected, value);
}

/**
 * A library argument error about option `camelCase` (its `subject`, as finetune's range checks set it)
 * said with the command's flag `--camel-case` when `options` (the command's option table) has that flag:
 * the library checks the value once, the CLI only parses its type. Any other error is returned as is.
 */
export function withFlagName(err: unknown, options: object): unknown {
  if (!(err instanceof EdgetuneError) || err.code !== 'EARG' || !err.subject || err.subject.startsWith('-')) return err;
  const flag = err.subject.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  if (!Object.hasOwn(options, flag) || !err.message.includes(` for ${err.subject} `)) return err;
  return new EdgetuneError('EARG', err.message.replace(` for ${err.subject} `, ` for --${flag} `), { subject: `--${flag}`, cause: err });
}

/**
 * A model output path: it must end in `.onnx` (any other name could be a file the command reads: a tfjs
 * `weights.bin`, a `<model>.card.json`). Error: `Expected a file name ending in .onnx for --<name> but received "<value>"`.
 */
export function onnxPathOption(name: string, value: string): string {
  if (!/\.onnx$/i.test(value)) throw invalidOption(name, 'a file name ending in .onnx', value);
  return value;
}

/**
 * An integer option in [min, max] (default `def` when absent). Errors name the option and its range:
 * `Expected integer between 1 and 64 for --views but received "0"` (`positive integer` / `integer >= min`
 * without an upper bound).
 */
export function intOption(name: string, v: string | undefined, def: number, min = 1, max = Infinity): number {
  if (v === undefined) return def;
  // Number('') and Number('  ') are 0: an empty value (`--epochs "$N"` with N unset) is refused as given
  const n = v.trim() ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    const expected = max < Infinity ? `integer between ${min} and ${max}` : min === 1 ? 'positive integer' : `integer >= ${min}`;
    throw invalidOption(name, expected, v);
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

/**
 * A number option in [min, max] (default `def` when absent). An empty or blank value is refused with
 * its text (Number('') would be 0): `Expected finite number for --backbone-lr but received ""`.
 */
export function numberOption(name: string, v: string | undefined, def: number, min = -Infinity, max = Infinity): number {
  if (v === undefined) return def;
  const n = v.trim() ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw invalidOption(name, numberRangeText(min, max), v);
  }
  return n;
}

/** `--retries`: a non-negative integer, or inf / infinite / ∞ (for ever). */
export function retriesOption(v: string | undefined, def: number): number {
  if (v === undefined) return def;
  if (/^(inf|infinite|infinity|∞)$/i.test(v.trim())) return Infinity;
  const n = v.trim() ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0) throw invalidOption('retries', 'integer >= 0 or inf', v);
  return n;
}

/**
 * A duration → milliseconds: a number with a unit, `ms`, `s` or `m` (500ms, 2s, 1.5s, 1m), or a bare
 * number of SECONDS (5 → 5000; 0 → 0). The one duration rule of every command (see the top of this file).
 */
export function durationOption(name: string, v: string | undefined, defMs: number): number {
  if (v === undefined) return defMs;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(v.trim());
  if (!m) throw invalidOption(name, 'a duration such as 500ms or 2s', v);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

/** One of `allowed` (case-insensitive; returns the allowed spelling), or `def` when absent. */
export function oneOfOption<T extends string>(name: string, v: string | undefined, allowed: readonly T[], def: T): T;
export function oneOfOption<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined;
export function oneOfOption<T extends string>(name: string, v: string | undefined, allowed: readonly T[], def?: T): T | undefined {
  if (v === undefined) return def;
  const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  if (hit === undefined) throw invalidOption(name, `one of ${allowed.join(', ')}`, v);
  return hit;
}

/** `WIDTHxHEIGHT` (each side 1..`max`) → [width, height]; `example` shows the form in the error. */
export function sizeOption(name: string, v: string, example = '224x224', max = Infinity): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(v.trim());
  const ok = (x: string | undefined) => Number(x) >= 1 && Number(x) <= max;
  if (!m || !ok(m[1]) || !ok(m[2])) throw invalidOption(name, `WIDTHxHEIGHT (e.g. ${example})${Number.isFinite(max) ? ` with each side from 1 to ${max}` : ''}`, v);
  return [Number(m[1]), Number(m[2])];
}

export function listOption(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function writeJson(io: CommandIO, obj: unknown): void {
  io.stdout.write(JSON.stringify(obj) + '\n');
}
