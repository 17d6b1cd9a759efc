// Reading HTTP request bodies under a size limit, shared by the servers (stream/serve.ts,
// serve/routes.ts): a body over the limit is refused as soon as it passes it (TooLarge, answered 413),
// and what the client still sends is read and dropped (bounded) so it reads the answer, not a reset.

import type { IncomingMessage } from 'node:http';

/** A request body over the limit: answered 413. */
export class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body over the limit of ${limit} bytes`);
  }
}

/**
 * Bytes a refused body may still send (read and thrown away, never kept) before the connection is
 * cut: enough for a client already sending to reach the 413 instead of a reset.
 */
export const DISCARD_BYTES = 64 * 1024 * 1024;

/** Content-Length over `limit`? (An absent length is checked while reading.) */
export function declaredOver(req: IncomingMessage, limit: number): boolean {
  const n = Number(req.headers['content-length']);
  return Number.isFinite(n) && n > limit;
}

/**
 * After a refusal, read and drop what the client still sends (so it gets to read the answer instead
 * of a reset), up to DISCARD_BYTES; beyond that the connection is cut.
 */
export function discardRest(req: IncomingMessage): void {
  let n = 0;
  req.on('data', (c: Buffer) => {
    n += c.length;
    if (n > DISCARD_BYTES) req.socket.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

/** Read a small body into memory, refusing it (TooLarge) as soon as it passes `limit`. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (declaredOver(req, limit)) return reject(new TooLarge(limit));
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        req.off('data', onData);
        reject(new TooLarge(limit));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
