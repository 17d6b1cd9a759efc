// Checking JSON contracts: runs a valibot schema over parsed JSON and turns what it rejects into one
// EdgetuneError whose every line names the source and the failing path, e.g.
//   registry.json: models[3].input.layout: expected "NCHW" | "NHWC" but received "CHW"
// Browser-safe. Each schema lives beside its contract and its TypeScript type is derived from it
// (core/preprocess-spec.ts, core/metadata.ts, core/model-card.ts, models/registry.ts,
// kiosk/config.ts, train/types.ts, calibration/collect.ts); this file only runs and reports them.

import * as v from 'valibot';
import { EdgetuneError, messageOf, type ErrorCode } from './errors.js';

/** At most this many problems are listed in one error (then "… and N more"). */
const MAX_LINES = 5;

type Issue = v.BaseIssue<unknown>;
type PathKey = unknown;

function pathText(keys: readonly PathKey[]): string {
  let out = '';
  for (const k of keys) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (typeof k === 'string' && /^[A-Za-z_$][\w$]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(typeof k === 'string' ? k : String(k))}]`;
  }
  return out;
}

/** valibot writes choices as `("NCHW" | "NHWC")`; the outer parentheses add nothing in a message. */
function bare(expected: string): string {
  return /^\(.*\)$/.test(expected) && !/\)\s*\|/.test(expected) ? expected.slice(1, -1) : expected;
}

/** The deepest explanation of one issue: a union whose member matched the type reports that member's problem. */
function explain(issue: Issue, prefix: readonly PathKey[]): { path: PathKey[]; text: string }[] {
  const path = [...prefix, ...(issue.path ?? []).map((p) => p.key)];
  if (issue.type === 'union' && issue.issues?.length) {
    // A member that got past its type check (its issues sit deeper than the union) is what was meant.
    const deeper = issue.issues.filter((s) => s.path?.length);
    if (deeper.length) return deeper.flatMap((s) => explain(s, path));
  }
  const isObject = issue.type === 'object' || issue.type === 'strict_object' || issue.type === 'loose_object';
  if (isObject && issue.kind === 'schema' && issue.received === 'undefined' && issue.expected?.startsWith('"')) {
    return [{ path, text: 'required but missing' }];
  }
  if (isObject && issue.kind === 'schema' && issue.expected === 'never') return [{ path, text: 'unknown key (not part of this contract)' }];
  // valibot's own messages read "Invalid type: Expected …"; messages written in the schemas are plain
  // sentences: a whole-object check says everything, a value check says what it expected.
  const custom = !issue.message.startsWith('Invalid ');
  if (custom && (issue.type === 'check' || issue.type === 'raw_check')) return [{ path, text: issue.message }];
  if (custom) return [{ path, text: `${issue.message} but received ${issue.received}` }];
  const expected = issue.expected === null ? issue.type.replace(/_/g, ' ') : bare(issue.expected);
  return [{ path, text: `expected ${expected} but received ${issue.received}` }];
}

/** One line per problem, `path: what was expected but received …` (no source). */
export function describeIssues(issues: readonly Issue[]): string[] {
  return issues.flatMap((i) => explain(i, [])).map(({ path, text }) => (path.length ? `${pathText(path)}: ${text}` : text));
}

/**
 * Check `input` against `schema` and return the schema's output (unknown keys dropped unless the
 * schema is strict, where they are errors). Errors: EdgetuneError(`code`, default EINPUT) with one
 * line per problem (at most 5, then "… and N more"), each `<source>: <path>: <problem>`; `subject`
 * is `source`.
 */
export function parseContract<S extends v.GenericSchema>(schema: S, input: unknown, source: string, code: ErrorCode = 'EINPUT'): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  // valibot's object schemas take arrays as objects; a contract's root object never is one
  const lines = Array.isArray(input) && 'entries' in schema ? ['expected Object but received Array'] : r.success ? [] : describeIssues(r.issues);
  if (r.success && !lines.length) return r.output;
  const shown = lines.slice(0, MAX_LINES).map((l) => `${source}: ${l}`);
  if (lines.length > MAX_LINES) shown.push(`${source}: … and ${lines.length - MAX_LINES} more`);
  throw new EdgetuneError(code, shown.join('\n'), { subject: source });
}

/** `JSON.parse(text)`; text that is not JSON is an EdgetuneError(`code`): `<source>: not valid JSON (…)`. */
export function parseJson(text: string, source: string, code: ErrorCode = 'EINPUT'): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new EdgetuneError(code, `${source}: not valid JSON (${messageOf(err)})`, { subject: source, cause: err });
  }
}

/** `JSON.parse(text)` checked by `schema` (errors as `parseJson`, then as `parseContract`). */
export function parseJsonContract<S extends v.GenericSchema>(schema: S, text: string, source: string, code: ErrorCode = 'EINPUT'): v.InferOutput<S> {
  return parseContract(schema, parseJson(text, source, code), source, code);
}
