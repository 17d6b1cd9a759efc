// Options objects of the public library functions: refusing a key a function does not take (a misspelt
// option from JavaScript, `{ topk: 3 }`, would otherwise be ignored without a word), and picking the keys
// a function takes out of a wider options object before passing it on (serve's options to loadClassifier).
// Each function keeps its own key list, checked against its options type at compile time:
//
//   export const X_OPTION_KEYS = ['a', 'b'] as const satisfies readonly (keyof XOptions)[];
//   export type UnlistedXOption = AssertNever<Exclude<keyof XOptions, (typeof X_OPTION_KEYS)[number]>>;

import { EdgetuneError } from './errors.js';

/** Compiles only when `T` is `never`: with `Exclude<keyof Options, listed keys>`, a compile error names an option missing from a key list. */
export type AssertNever<T extends never> = T;

/**
 * Refuse the keys of `o` that are not in `keys` (the options of function `fn`). Keys whose value is
 * undefined count: `{ topk: undefined }` is still a misspelling. `within` names a nested options object
 * (`remote`, `overrides.preprocess`; absent is fine), whose keys are then named by their path. Errors: EARG
 * `<fn>: unknown option "topk" (options: topK, lazy, …)` (`unknown options "a", "b"` for several);
 * nested: `<fn>: unknown option "remote.tokn" (remote options: timeoutMs, …)`.
 */
export function checkOptionKeys(fn: string, o: object | null | undefined, keys: readonly string[], within?: string): void {
  if (o == null || typeof o !== 'object') return;
  const unknownKeys = Object.keys(o).filter((k) => !keys.includes(k));
  if (unknownKeys.length) {
    const names = unknownKeys.map((k) => JSON.stringify(within ? `${within}.${k}` : k)).join(', ');
    throw new EdgetuneError('EARG', `${fn}: unknown option${unknownKeys.length > 1 ? 's' : ''} ${names} (${within ? `${within} ` : ''}options: ${keys.join(', ')})`);
  }
}

/** The entries of `o` whose key is in `keys` (keys `o` does not have stay absent), for passing a wider options object on to a function that takes only those. */
export function pickOptions<T extends object, K extends keyof T & string>(o: T, keys: readonly K[]): Pick<T, K> {
  const picked = {} as Pick<T, K>;
  for (const k of keys) if (Object.hasOwn(o, k)) picked[k] = o[k];
  return picked;
}
