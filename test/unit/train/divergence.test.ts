// Divergence stops training with a clear error (a non-finite loss, a weight or a logit beyond float32,
// which the exported float32 head turns into NaN scores), an exported head never carries a non-finite
// weight, and a damaged embedding-cache entry of the right size is dropped and recomputed.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkDiverged, FLOAT32_MAX, trainHeadSync, type FeatureSet, type HeadWeights } from '../../../runtime/train/index.js';
import { exportClassifierModel, type CutSpec } from '../../../runtime/train/export.js';
import type { PreprocessSpec } from '../../../runtime/image/preprocess.js';
import { EmbeddingCache } from '../../../runtime/train/node/embed.js';
import { tempDir } from '../../helpers.js';

/** Two separable gaussian-ish classes in 8 dims, deterministic. */
function blobs(n = 20, dims = 8): FeatureSet {
  const features = new Float32Array(n * dims);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let j = 0; j < dims; j++) features[i * dims + j] = (labels[i] ? 1 : -1) + Math.sin(i * 7 + j * 3) * 0.5;
  }
  return { features, labels, dims, classes: 2 };
}

describe('training divergence', () => {
  it('adam at lr 1e38 stops with the cause and the hint to lower --lr (the float64 trainer alone stays finite)', () => {
    expect(() => trainHeadSync(blobs(), undefined, { lr: 1e38, epochs: 5 })).toThrow(/training diverged at epoch \d+: a (logit|weight) reached .*beyond float32.*lower the learning rate \(--lr, now 1e\+38\)/);
  });

  it('sgd at lr 1e300 stops (weights overflow float32)', () => {
    expect(() => trainHeadSync(blobs(), undefined, { optimizer: 'sgd', lr: 1e300, epochs: 5 })).toThrow(/training diverged at epoch 1: .*float32/);
  });

  it('an MLP head diverging stops too', () => {
    expect(() => trainHeadSync(blobs(), blobs(10), { hidden: 16, lr: 1e37, epochs: 5 })).toThrow(/training diverged/);
  });

  it('a NaN embedding poisons the loss: stopped, not exported', () => {
    const s = blobs();
    s.features[3] = NaN;
    expect(() => trainHeadSync(s, undefined, { epochs: 2 })).toThrow(/training diverged at epoch 1: the training loss is NaN/);
  });

  it('a normal run is not stopped', () => {
    const r = trainHeadSync(blobs(), blobs(10), { epochs: 5 });
    expect(r.history).toHaveLength(5);
  });

  it('checkDiverged: every cause', () => {
    const p = { W: [new Float64Array([1, -2])], b: [new Float64Array([0])] };
    expect(() => checkDiverged(1, 0.5, p, 0.1)).not.toThrow();
    expect(() => checkDiverged(2, Infinity, p, 0.1)).toThrow(/epoch 2: the training loss is Infinity/);
    expect(() => checkDiverged(1, 0.5, { W: [new Float64Array([FLOAT32_MAX * 2])], b: [new Float64Array(1)] }, 0.1)).toThrow(/a weight reached 6\.81e\+38/);
    expect(() => checkDiverged(1, 0.5, { W: [new Float64Array([NaN])], b: [new Float64Array(1)] }, 0.1)).toThrow(/a weight is NaN/);
    expect(() => checkDiverged(1, 0.5, p, 0.1, 1e39)).toThrow(/a logit reached 1\.00e\+39/);
  });
});

describe('export refuses a non-finite head', () => {
  it('a NaN or float32-overflowing weight is never exported', () => {
    const head = (w: number[]): HeadWeights => ({ format: 'edgetune.head', version: 1, kind: 'linear', dims: 2, classes: 2, normalize: false, layers: [{ in: 2, out: 2, weight: Float32Array.from(w), bias: new Float32Array(2) }] });
    const spec = { width: 8, height: 8, channels: 3, mean: [0, 0, 0], std: [1, 1, 1], resize: 'cover', crop: 1, layout: 'nchw', scale: 255 } as unknown as PreprocessSpec;
    for (const w of [[1, NaN, 0, 0], [1, Infinity, 0, 0]]) {
      expect(() => exportClassifierModel(new Uint8Array(0), { tensor: 'e', dims: 2 } as CutSpec, head(w), ['a', 'b'], spec)).toThrow(/head layer 0 has a non-finite weight .*lower the learning rate/);
    }
  });
});

describe('EmbeddingCache entries are validated when read', () => {
  it('an entry of the right size with NaN inside is removed and reported as a miss', async () => {
    const dir = tempDir();
    const cache = new EmbeddingCache(dir);
    const key = 'ab' + '0'.repeat(62);
    await cache.put(key, new Float32Array([1, 2, 3, 4]));
    expect(await cache.get(key, 4)).toEqual(new Float32Array([1, 2, 3, 4]));
    const file = path.join(dir, 'ab', `${key}.f32`);
    writeFileSync(file, Buffer.from(new Float32Array([1, NaN, 3, 4]).buffer));
    expect(await cache.get(key, 4)).toBeUndefined();
    expect(cache.corrupt).toBe(1);
    expect(existsSync(file)).toBe(false);
    mkdirSync(path.join(dir, 'cd'), { recursive: true });
    const inf = 'cd' + '0'.repeat(62);
    writeFileSync(path.join(dir, 'cd', `${inf}.f32`), Buffer.from(new Float32Array([Infinity, 0, 0, 0]).buffer));
    expect(await cache.get(inf, 4)).toBeUndefined();
    expect(cache.corrupt).toBe(2);
  });
});
