// Reading a model file's embedded `edgetune.model` description from disk (Node).

import { readFile } from 'node:fs/promises';
import { parseModelInfo, readMetadataProps, type EmbeddedModelInfo } from '../core/metadata.js';

/** The embedded description of a model file, or undefined (not ours, or unreadable: the session load reports that). */
export async function readModelInfo(file: string): Promise<EmbeddedModelInfo | undefined> {
  try {
    return parseModelInfo(readMetadataProps(await readFile(file)));
  } catch {
    return undefined;
  }
}
