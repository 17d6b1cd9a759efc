// Input files: which names are images, and expanding CLI/library inputs (directories walked
// recursively, sorted) into a list of files. Node only.

import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_EXTENSIONS } from '../image/decode.js';

export function isImageFile(f: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
}

/**
 * Expand CLI inputs: files are kept as given (whatever their extension, so a bad file gets its own
 * error), directories are walked recursively for image files, sorted. A missing path is returned as-is
 * so the caller reports it per file.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = await stat(input);
    } catch {
      out.push(input);
      continue;
    }
    if (!st.isDirectory()) {
      out.push(input);
      continue;
    }
    const walk = async (dir: string): Promise<void> => {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && (isImageFile(e.name) || /\.(jpe?g|png)$/i.test(e.name))) out.push(p);
        else if (e.isFile() && !e.name.startsWith('.')) out.push(p); // non-image files are reported, not hidden
      }
    };
    await walk(input);
  }
  return out;
}
