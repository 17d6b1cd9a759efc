// The model registry's types and validation. Browser-safe: it takes the parsed registry.json (the
// data) and answers lookups; models/loader.ts reads the file and resolves entries to files on disk.

import { EdgetuneError } from '../runtime/core/errors.js';
import type { PreprocessSpec } from '../runtime/image/preprocess.js';

export type Precision = 'fp32' | 'fp16' | 'int8';

export interface RemoteFile {
  file: string;
  url?: string;
  sha256?: string;
}

export interface LabelSet extends Partial<RemoteFile> {
  /** Inline labels (small sets); otherwise `file` is a JSON array of names. */
  labels?: string[];
  count: number;
}

export interface ModelEntry extends RemoteFile {
  id: string;
  description: string;
  precision: Precision;
  input: { name: string; shape: number[]; layout: 'NCHW' | 'NHWC'; dtype: 'float32' | 'float16' };
  preprocess: Pick<PreprocessSpec, 'colorOrder' | 'range' | 'mean' | 'std' | 'resize' | 'crop'>;
  /** A label-set name from `labelSets`, or the labels themselves. */
  labels: string | string[];
  labelOffset: number;
  output: { name: string; kind: 'logits' | 'probabilities' };
  /** The tensor head training cuts at; `null` tensor = found automatically. */
  embedding?: { tensor: string | null; dims: number; pool?: 'none' | 'global-average'; note?: string };
}

export interface RegistryData {
  labelSets: Record<string, LabelSet>;
  models: ModelEntry[];
}

export class Registry {
  readonly models: readonly ModelEntry[];
  readonly labelSets: Readonly<Record<string, LabelSet>>;
  constructor(data: RegistryData) {
    const ids = new Set<string>();
    for (const m of data.models) {
      for (const k of ['id', 'file', 'precision', 'input', 'preprocess', 'labels', 'output'] as const) {
        if (m[k] === undefined) throw new EdgetuneError('EMODEL', `registry entry ${m.id ?? '?'} has no "${k}"`);
      }
      if (ids.has(m.id)) throw new EdgetuneError('EMODEL', `registry has two entries with id "${m.id}"`);
      ids.add(m.id);
      if (typeof m.labels === 'string' && !data.labelSets[m.labels]) {
        throw new EdgetuneError('EMODEL', `registry entry ${m.id} names unknown label set "${m.labels}"`);
      }
    }
    this.models = data.models;
    this.labelSets = data.labelSets;
  }

  get(id: string): ModelEntry | undefined {
    return this.models.find((m) => m.id === id);
  }

  /** The entry whose file name matches (so `--model path/to/mobilenetv2-12-int8.onnx` gets its preprocessing). */
  byFileName(name: string): ModelEntry | undefined {
    return this.models.find((m) => m.file === name);
  }

  require(id: string): ModelEntry {
    const m = this.get(id);
    if (!m) {
      throw new EdgetuneError(
        'EMODEL',
        `Unknown model id "${id}": expected a path to an .onnx file or one of: ${this.models.map((x) => x.id).join(', ')}`,
        { subject: id },
      );
    }
    return m;
  }
}

/** The full preprocessing spec of a registry entry. */
export function specOf(entry: ModelEntry): PreprocessSpec {
  const s = entry.input.shape;
  const nchw = entry.input.layout === 'NCHW';
  const channels = (nchw ? s[1] : s[3]) as 1 | 3;
  return {
    width: (nchw ? s[3] : s[2])!,
    height: (nchw ? s[2] : s[1])!,
    channels,
    layout: entry.input.layout,
    dtype: entry.input.dtype,
    ...entry.preprocess,
  };
}
