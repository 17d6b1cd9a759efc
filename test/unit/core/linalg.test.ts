// The shared dense linear algebra (runtime/core/linalg.ts) that the open-set detector and GPTQ build on:
// each result checked against its definition (L Lᵀ = A, A v = λ v, G = X Xᵀ), on a seeded random matrix.
import { describe, expect, it } from 'vitest';
import { cholesky, gram, symmetricEigen } from '../../../runtime/core/linalg.js';

function rand(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** A random n×d matrix and its Gram matrix plus `ridge`·I (positive definite for ridge > 0). */
function spd(n: number, d: number, ridge: number) {
  const r = rand(7);
  const x = Float64Array.from({ length: n * d }, r);
  const g = gram(x, n, d);
  for (let i = 0; i < n; i++) g[i * n + i]! += ridge;
  return { x, g };
}

describe('linalg', () => {
  it('gram is X Xᵀ', () => {
    const { x, g } = spd(5, 9, 0);
    for (let i = 0; i < 5; i++)
      for (let k = 0; k < 5; k++) {
        let s = 0;
        for (let j = 0; j < 9; j++) s += x[i * 9 + j]! * x[k * 9 + j]!;
        expect(g[i * 5 + k]).toBeCloseTo(s, 12);
      }
  });

  it('cholesky gives a lower L with L Lᵀ = A, and says false for a matrix that is not positive definite', () => {
    const n = 12;
    const { g } = spd(n, 20, 0.1);
    const l = Float64Array.from(g);
    expect(cholesky(l, n)).toBe(true);
    for (let i = 0; i < n; i++)
      for (let k = 0; k < n; k++) {
        if (k > i) expect(l[i * n + k]).toBe(0);
        let s = 0;
        for (let p = 0; p < n; p++) s += l[i * n + p]! * l[k * n + p]!;
        expect(s).toBeCloseTo(g[i * n + k]!, 10);
      }
    // 12 rows of 5 columns: rank 5, singular without a ridge; a negative ridge makes it indefinite
    const singular = spd(n, 5, -0.5).g;
    expect(cholesky(singular, n)).toBe(false);
  });

  it('symmetricEigen: A v = λ v for every pair, eigenvalues descending, vectors orthonormal', () => {
    const n = 10;
    const { g } = spd(n, 14, 0);
    const { values, vectors } = symmetricEigen(g, n);
    for (let r = 0; r < n; r++) {
      if (r > 0) expect(values[r]!).toBeLessThanOrEqual(values[r - 1]!);
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += g[i * n + k]! * vectors[r * n + k]!;
        expect(av).toBeCloseTo(values[r]! * vectors[r * n + i]!, 9);
      }
      for (let q = 0; q < n; q++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += vectors[r * n + k]! * vectors[q * n + k]!;
        expect(dot).toBeCloseTo(r === q ? 1 : 0, 9);
      }
    }
  });
});
