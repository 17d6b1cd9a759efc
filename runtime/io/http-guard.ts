// The request guard both HTTP servers (stream/serve.ts, kiosk/server.ts) put in front of every route.
//  - Host check (DNS rebinding): a page on evil.example whose DNS name is re-pointed at 127.0.0.1 makes
//    the victim's browser send requests here with `Host: evil.example`. Only loopback names and
//    addresses (localhost, 127.0.0.0/8, [::1]), the bound address (every local interface address when
//    bound to 0.0.0.0 / ::) and names given with --allow-host are served; anything else is answered
//    421 Misdirected Request.
//  - Token for reads on the network: when the server binds a non-loopback address and a token is
//    configured (EDGETUNE_TOKEN), every request needs it, as `Authorization: Bearer <token>`,
//    `X-Edgetune-Token`, or once as `?token=` (answered with a cookie and a redirect to the same URL
//    without it, so the page's own requests, <img> and EventSource carry it) — 401 otherwise.
//  - `bindWarnings` says what a non-loopback bind exposes, for the server to log at start.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface HttpGuardOptions {
  /** The address the server binds (as given to listen()). */
  host: string;
  /** More Host names or addresses to serve (--allow-host), case-insensitive, ports ignored. */
  allowHosts?: readonly string[];
  /** The shared secret (EDGETUNE_TOKEN); with a non-loopback bind, every request needs it. */
  token?: string;
}

/** Why a request is refused: the status, a one-line message and headers to send. */
export interface Refusal {
  status: number;
  message: string;
  headers: Record<string, string>;
}

export interface HttpGuard {
  /** True when the bind address is loopback (the default): reads are open, hosts are checked. */
  readonly loopback: boolean;
  /** True when GET routes need the token too (non-loopback bind with a token configured). */
  readonly tokenForReads: boolean;
  /** undefined when the request may go on, else the answer to give. */
  check(req: IncomingMessage): Refusal | undefined;
  /** Does the request carry the token (header, cookie)? False when no token is configured. */
  hasToken(req: IncomingMessage): boolean;
}

export const TOKEN_COOKIE = 'edgetune_token';

/** `example.com:8080`, `[::1]:80`, `127.0.0.1` → the host name or address, lower-case, no port or brackets. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(1, end);
  }
  const colons = h.split(':').length - 1;
  // One colon: name:port. More (a bare IPv6 address, not valid in Host but seen): keep it whole.
  const name = colons === 1 ? h.slice(0, h.indexOf(':')) : h;
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** localhost, 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
export function isLoopbackHost(host: string): boolean {
  const h = hostOf(host);
  if (h === 'localhost') return true;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255) && v4[1] === '127';
  return isIP(h) === 6 && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(h);
}

function isUnspecified(host: string): boolean {
  const h = hostOf(host);
  return h === '0.0.0.0' || h === '::' || h === '' || /^(0{0,4}:){2,7}0{0,4}$/.test(h);
}

/** The addresses of this machine's interfaces (what a wildcard bind answers on). */
function localAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address.toLowerCase().replace(/%.*$/, ''));
  return out;
}

export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  // Compare digests so lengths match and timing says nothing about the token.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token a request carries: Bearer header, X-Edgetune-Token, or the guard's cookie. */
export function tokenFrom(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const h = req.headers['x-edgetune-token'];
  if (typeof h === 'string') return h;
  const cookie = req.headers.cookie;
  if (cookie) {
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
        try {
          return decodeURIComponent(part.slice(eq + 1).trim());
        } catch {
          return undefined;
        }
      }
    }
  }
  return undefined;
}

/**
 * Lines to log when a server binds `host` (empty for loopback): what the bind exposes and how to
 * protect it. `page: false` for a server without a page to open (`edgetune serve`): the token then
 * travels only in the Authorization header. Default true.
 */
export function bindWarnings(host: string, token: string | undefined, url: string, o: { page?: boolean } = {}): string[] {
  if (isLoopbackHost(host)) return [];
  const page = o.page ?? true;
  const out = [`warning: listening on ${host}, reachable from the network, not only this machine`];
  // `edgetune serve` has no page to open: its clients (Triton's, KServe's, `--model URL`, Prometheus) send the header
  if (token) out.push(page ? `every request needs EDGETUNE_TOKEN (open ${url}?token=<token> once in a browser; or send "Authorization: Bearer <token>")` : 'every request needs EDGETUNE_TOKEN: send "Authorization: Bearer <token>" (a client given --model URL sends it when EDGETUNE_TOKEN is set)');
  else out.push(`warning: EDGETUNE_TOKEN is not set, so anyone who can reach this address can ${page ? 'read every page' : 'use every model and read /metrics'}; set it to require a token`);
  out.push('names other than IP addresses are refused (421) unless allowed with --allow-host NAME');
  return out;
}

export function createHttpGuard(o: HttpGuardOptions): HttpGuard {
  const loopback = isLoopbackHost(o.host) && !isUnspecified(o.host);
  const allowed = new Set<string>((o.allowHosts ?? []).map(hostOf).filter(Boolean));
  if (!isUnspecified(o.host)) allowed.add(hostOf(o.host));
  let wildcard: Set<string> | undefined;
  const hostAllowed = (h: string): boolean => {
    if (isLoopbackHost(h) || allowed.has(h)) return true;
    if (!isUnspecified(o.host)) return false;
    wildcard ??= new Set(localAddresses());
    return wildcard.has(h);
  };
  const token = o.token || undefined;
  const tokenForReads = !loopback && token !== undefined;
  const hasToken = (req: IncomingMessage) => token !== undefined && tokenMatches(tokenFrom(req), token);
  return {
    loopback,
    tokenForReads,
    hasToken,
    check(req): Refusal | undefined {
      const header = req.headers.host;
      if (!header) return { status: 400, message: 'a Host header is required', headers: {} };
      const h = hostOf(header);
      if (!hostAllowed(h)) {
        return {
          status: 421,
          message: `Host "${h}" is not served here (DNS rebinding protection): use a loopback address or the bound address, or start the server with --allow-host ${h}`,
          headers: {},
        };
      }
      if (!tokenForReads || hasToken(req)) return undefined;
      const url = new URL(req.url ?? '/', 'http://x');
      const given = url.searchParams.get('token');
      if (given !== null && token !== undefined && tokenMatches(given, token) && (req.method === 'GET' || req.method === 'HEAD')) {
        url.searchParams.delete('token');
        return {
          status: 303,
          message: 'token accepted',
          headers: {
            Location: url.pathname + url.search,
            'Set-Cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`,
          },
        };
      }
      return {
        status: 401,
        message: 'this server is reachable from the network and needs its token: send "Authorization: Bearer <EDGETUNE_TOKEN>" or open the page once with ?token=<EDGETUNE_TOKEN>',
        headers: { 'WWW-Authenticate': 'Bearer' },
      };
    },
  };
}
