// Errors: one error class with a stable code, and the argument-error helper every option check uses
// ("Expected positive integer for width but received -3"), in the style of sharp.

export type ErrorCode =
  | 'EARG' // bad option / argument value
  | 'EINPUT' // bad input file (image, dataset)
  | 'EMODEL' // model cannot be found / loaded / is not ONNX
  | 'EPROVIDER' // no execution provider could serve the session
  | 'EDEPEND' // an external program or package is missing
  | 'EIO'; // filesystem failure

export class EdgetuneError extends Error {
  readonly code: ErrorCode;
  /** The file or value the error is about, when there is one. */
  readonly subject?: string;
  constructor(code: ErrorCode, message: string, options?: { subject?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgetuneError';
    this.code = code;
    this.subject = options?.subject;
  }
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(show).join(',')}]`;
  if (typeof value === 'object') return Object.prototype.toString.call(value);
  return String(value);
}

/**
 * The one argument error (sharp's wording): `Expected ${expected} for ${name} but received ${actual}`,
 * code EARG, `subject` the name. `actual` is shown as given: strings quoted (`"0"`), numbers bare, arrays
 * as `[1,2]`. Without a name: `Expected ${expected} but received ${actual}`. Command-line options go
 * through cli/args.ts's invalidOption, which spells the name `--name`.
 */
export function invalidParameter(name: string | undefined, expected: string, actual: unknown): EdgetuneError {
  return new EdgetuneError('EARG', `Expected ${expected}${name === undefined ? '' : ` for ${name}`} but received ${show(actual)}`, {
    subject: name,
  });
}

export function isPositiveInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

export function checkPositiveInteger(name: string, v: unknown): number {
  if (!isPositiveInteger(v)) throw invalidParameter(name, 'positive integer', v);
  return v;
}

/** What a number in [min, max] is called in errors: `number between 0 and 1`, `number >= 0` (no upper bound), `number <= 1`, `finite number`; with `minOpen` (min itself refused) `number > 0 and <= 10`, `number > 0`. The one wording of numeric ranges. */
export function numberRangeText(min: number, max: number, minOpen = false): string {
  if (Number.isFinite(min) && Number.isFinite(max)) return minOpen ? `number > ${min} and <= ${max}` : `number between ${min} and ${max}`;
  if (Number.isFinite(min)) return `number ${minOpen ? '>' : '>='} ${min}`;
  if (Number.isFinite(max)) return `number <= ${max}`;
  return 'finite number';
}

export function checkNumberInRange(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalidParameter(name, numberRangeText(min, max), v);
  }
  return v;
}

export function checkOneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalidParameter(name, `one of ${allowed.join(', ')}`, v);
  }
  return v as T;
}

/** The message of anything thrown, without a stack. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
