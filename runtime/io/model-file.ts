// Reading a model file's embedded `edgetune.model` description from disk (Node).

import { readFile } from 'node:fs/promises';
import { parseModelInfo, readMetadataProps, type EmbeddedModelInfo } from '../core/metadata.js';

/**
 * The embedded description of a model file, or undefined when it has none or cannot be read (the
 * session load reports an unreadable file). Errors: EMODEL naming the file and the field when the
 * description is there but breaks its contract (core/metadata.ts).
 */
export async function readModelInfo(file: string): Promise<EmbeddedModelInfo | undefined> {
  let props: Record<string, string>;
  try {
    props = readMetadataProps(await readFile(file));
  } catch {
    return undefined;
  }
  return parseModelInfo(props, file);
}
