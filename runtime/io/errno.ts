// File-system errors in words: the one place that turns an errno code (ENOENT, EROFS, ENOSPC…) into
// what a user reads, so every read and write error names the problem the same way
// ("read-only file system (EROFS)"), never a bare code or a wrong one. Node only in practice, but
// imports nothing.

/** The words for the errno codes edgetune's file work meets (libuv's own descriptions). */
const WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'file already exists',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many symbolic links (a link loop)',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
  EXDEV: 'cross-device link',
  EBUSY: 'resource busy or locked',
  ETXTBSY: 'text file is busy',
  EFBIG: 'file too large',
  EINVAL: 'invalid argument',
  ENXIO: 'no such device or address',
  ENODEV: 'no such device',
  EAGAIN: 'resource temporarily unavailable',
  ESPIPE: 'illegal seek',
};

/** `words (CODE)` for an errno code, e.g. errnoWords('EROFS') → 'read-only file system (EROFS)'; an unknown code is returned as is. */
export function errnoWords(code: string): string {
  const w = WORDS[code];
  return w ? `${w} (${code})` : code;
}

/**
 * Why a file-system call failed, in words: errnoWords of the error's code, or its message when it
 * has no code (never an empty string).
 */
export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code) return errnoWords(code);
  const m = err instanceof Error ? err.message : String(err);
  return m || 'unknown error';
}
