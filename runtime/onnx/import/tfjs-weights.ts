// TensorFlow.js weight manifests: the `weightsManifest` of a model.json plus its shard files
// (weights.bin, group1-shard1of2.bin…) → named float32/int32 arrays. Shards of a group are
// concatenated in the manifest's order; quantized weights (`quantization: {dtype: uint8|uint16|
// float16, scale, min}`) are dequantized. Browser-safe (no Node APIs).

import { EdgetuneError } from '../../core/errors.js';
import { placeholderKind } from '../../core/text.js';
import { float16ToNumber } from '../graph.js';

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | string;
  /** tfjs weight quantization: value = q · scale + min (uint8/uint16), or a float16 value. */
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16' | string; scale?: number; min?: number; original_dtype?: string };
}

export interface TfjsWeightGroup {
  paths: string[];
  weights: TfjsWeightSpec[];
}

export interface TfjsWeight {
  shape: number[];
  data: Float32Array | Int32Array;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function elements(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/**
 * The bytes a weight group's shards must hold together, as its weights' shapes and dtypes (or
 * quantization dtypes) declare; undefined when a dtype is not one tfjs writes (decodeTfjsWeights
 * names it). Readers bound each shard's size by this before reading it.
 */
export function tfjsGroupBytes(group: TfjsWeightGroup): number | undefined {
  let need = 0;
  for (const w of group.weights ?? []) {
    const size = BYTES[w.quantization?.dtype ?? w.dtype];
    if (size === undefined || !Array.isArray(w.shape)) return undefined;
    need += size * elements(w.shape);
  }
  return need;
}

/**
 * Decode every weight of `manifest` from `files` (shard path as written in the manifest → bytes).
 * Errors (EdgetuneError 'EINPUT'): a shard missing from `files`; a group whose shards hold fewer
 * bytes than its weights need (naming the files and both byte counts); a dtype tfjs does not write.
 */
export function decodeTfjsWeights(manifest: readonly TfjsWeightGroup[], files: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>): Map<string, TfjsWeight> {
  const get = (p: string) => (files instanceof Map ? files.get(p) : (files as Record<string, Uint8Array>)[p]);
  const out = new Map<string, TfjsWeight>();
  for (const group of manifest) {
    const shards = group.paths.map((p) => {
      const b = get(p);
      if (!b) throw new EdgetuneError('EINPUT', `tfjs weights file "${p}" is missing (named by the model.json weight manifest)`, { subject: p });
      return b;
    });
    const total = shards.reduce((a, s) => a + s.length, 0);
    const need = group.weights.reduce((a, w) => {
      const dt = w.quantization?.dtype ?? w.dtype;
      const size = BYTES[dt];
      if (size === undefined) throw new EdgetuneError('EINPUT', `tfjs weight "${w.name}" has dtype "${dt}", which tfjs does not write`, { subject: w.name });
      return a + size * elements(w.shape);
    }, 0);
    const names = group.paths.map((p) => `"${p}"`).join(' + ');
    if (total < need) {
      const pointer = group.paths.map((p, k) => [p, placeholderKind(shards[k]!)] as const).find(([, kind]) => kind);
      if (pointer) throw new EdgetuneError('EINPUT', `tfjs weights file "${pointer[0]}" is ${pointer[1]}`, { subject: pointer[0] });
      throw new EdgetuneError('EINPUT', `tfjs weights file ${names} holds ${total} bytes, but the model.json weight manifest needs ${need}`, { subject: group.paths[0] });
    }
    const all = new Uint8Array(total);
    let o = 0;
    for (const s of shards) {
      all.set(s, o);
      o += s.length;
    }
    const view = new DataView(all.buffer);
    let pos = 0;
    for (const w of group.weights) {
      const n = elements(w.shape);
      const q = w.quantization;
      let data: Float32Array | Int32Array;
      if (q) {
        data = new Float32Array(n);
        const scale = q.scale ?? 1;
        const min = q.min ?? 0;
        for (let i = 0; i < n; i++) {
          if (q.dtype === 'uint8') data[i] = all[pos + i]! * scale + min;
          else if (q.dtype === 'uint16') data[i] = view.getUint16(pos + 2 * i, true) * scale + min;
          else data[i] = float16ToNumber(view.getUint16(pos + 2 * i, true));
        }
        if (w.dtype === 'int32') data = Int32Array.from(data, (v) => Math.round(v));
        pos += n * BYTES[q.dtype]!;
      } else if (w.dtype === 'float32') {
        data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = view.getFloat32(pos + 4 * i, true);
        pos += 4 * n;
      } else if (w.dtype === 'int32') {
        data = new Int32Array(n);
        for (let i = 0; i < n; i++) data[i] = view.getInt32(pos + 4 * i, true);
        pos += 4 * n;
      } else {
        data = Int32Array.from(all.subarray(pos, pos + n));
        pos += n;
      }
      out.set(w.name, { shape: [...w.shape], data });
    }
  }
  return out;
}
