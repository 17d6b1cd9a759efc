// Where things live on disk (Node only): the package root, the shared-assets root, the model search
// path and the user cache. Every other module asks here instead of reading env vars itself.
//
//   EDGETUNE_SHARED      real assets (models/, labels/, datasets/, camera/). Default: ../shared beside
//                        the package root.
//   EDGETUNE_MODEL_PATH  directories searched for model and label files, separated by ':' (';' on
//                        Windows). Default: <EDGETUNE_SHARED>/models and <EDGETUNE_SHARED>/labels.
//   EDGETUNE_CACHE       download cache. Default: $XDG_CACHE_HOME/edgetune or ~/.cache/edgetune.
//   EDGETUNE_EMBED_CACHE_MB  size cap of <EDGETUNE_CACHE>/embeddings (read by runtime/embed.ts). Default 512.
//   EDGETUNE_OFFLINE=1   never download; a missing file is an error that says how to get it.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;
/** The directory holding edgetune's package.json (works from source and from dist/). */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'edgetune') return (root = dir);
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('edgetune: cannot find the package root');
    dir = up;
  }
}

export function sharedRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.EDGETUNE_SHARED ?? path.join(packageRoot(), '..', 'shared'));
}

export function modelSearchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env.EDGETUNE_MODEL_PATH;
  if (v !== undefined) return v.split(path.delimiter).filter(Boolean).map((d) => path.resolve(d));
  const shared = sharedRoot(env);
  return [path.join(shared, 'models'), path.join(shared, 'labels')];
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EDGETUNE_CACHE) return path.resolve(env.EDGETUNE_CACHE);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(homedir(), '.cache');
  return path.join(base, 'edgetune');
}

export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.EDGETUNE_OFFLINE === '1' || env.EDGETUNE_OFFLINE === 'true';
}
