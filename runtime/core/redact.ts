// Credentials never leave the process in anything shown: `maskUri` hides the user info of a URI
// (`rtsp://user:secret@cam/1` → `rtsp://***@cam/1`) and the values of secret-looking query
// parameters (`?password=`, `pwd`, `token`, `key`, …), and `maskSecrets` does the same to every URI
// inside free text (ffmpeg's stderr, error messages). Sources keep only the masked form as their
// `uri`, so /healthz, /metrics, /events and the logs all show what this module returns
// (browser-safe: no Node APIs).

/** Query parameters whose values are hidden (case-insensitive, matched on the whole name). */
const SECRET_PARAMS = /^(pass|passwd|password|pwd|pw|secret|token|access_token|auth|authorization|key|apikey|api_key|sig|signature|credentials?)$/i;

const MASK = '***';

/** A URI-looking run inside text: scheme://… up to whitespace, a quote or a bracket. */
const URI_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>()\]]+/gi;

/**
 * The URI with its user info replaced by `***` and secret query values by `***`. Anything that is not
 * a `scheme://` URI is returned unchanged (file paths, `test:`, `webcam:default`).
 */
export function maskUri(uri: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(uri);
  if (!m) return uri;
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  // The user info ends at the last '@' of the authority (passwords may contain '@').
  const at = authority.lastIndexOf('@');
  const host = at >= 0 ? `${MASK}@${authority.slice(at + 1)}` : authority;
  return scheme + host + maskQuery(rest);
}

function maskQuery(rest: string): string {
  const q = rest.indexOf('?');
  if (q < 0) return rest;
  const hash = rest.indexOf('#', q);
  const query = rest.slice(q + 1, hash < 0 ? undefined : hash);
  const masked = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name);
      } catch {
        /* keep the raw name */
      }
      return SECRET_PARAMS.test(name) ? `${pair.slice(0, eq)}=${MASK}` : pair;
    })
    .join('&');
  return rest.slice(0, q + 1) + masked + (hash < 0 ? '' : rest.slice(hash));
}

/** Free text with every `scheme://` URI in it masked by maskUri. */
export function maskSecrets(text: string): string {
  return text.replace(URI_IN_TEXT, (u) => maskUri(u));
}
