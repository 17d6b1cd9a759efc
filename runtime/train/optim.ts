// Optimizers for the head trainer, with PyTorch's update rules. Browser-safe. Each optimizer keeps its
// own state per parameter array and updates parameters in place from a gradient of the same length.

import type { OptimizerName } from './types.js';

export interface Optimizer {
  /** p ← update(p, g) at learning rate `lr`. `slot` identifies the parameter array (its state). */
  step(slot: number, p: Float64Array, g: Float64Array, lr: number): void;
}

export const DEFAULT_LR: Record<OptimizerName, number> = {
  sgd: 0.1,
  momentum: 0.01,
  adagrad: 0.05,
  adadelta: 1,
  rmsprop: 0.01,
  adam: 0.001,
};

export function createOptimizer(name: OptimizerName, opts: { momentum?: number } = {}): Optimizer {
  const state = new Map<number, Float64Array[]>();
  const slots = (slot: number, n: number, k: number): Float64Array[] => {
    let s = state.get(slot);
    if (!s) state.set(slot, (s = Array.from({ length: k }, () => new Float64Array(n))));
    return s;
  };
  const steps = new Map<number, number>();
  switch (name) {
    case 'sgd':
      return {
        step(_s, p, g, lr) {
          for (let i = 0; i < p.length; i++) p[i]! -= lr * g[i]!;
        },
      };
    case 'momentum': {
      const mu = opts.momentum ?? 0.9;
      return {
        step(slot, p, g, lr) {
          const [v] = slots(slot, p.length, 1) as [Float64Array];
          for (let i = 0; i < p.length; i++) {
            v[i] = mu * v[i]! + g[i]!;
            p[i]! -= lr * v[i]!;
          }
        },
      };
    }
    case 'adagrad': {
      const eps = 1e-10;
      return {
        step(slot, p, g, lr) {
          const [G] = slots(slot, p.length, 1) as [Float64Array];
          for (let i = 0; i < p.length; i++) {
            G[i]! += g[i]! * g[i]!;
            p[i]! -= (lr * g[i]!) / (Math.sqrt(G[i]!) + eps);
          }
        },
      };
    }
    case 'adadelta': {
      const rho = 0.9;
      const eps = 1e-6;
      return {
        step(slot, p, g, lr) {
          const [Eg, Ex] = slots(slot, p.length, 2) as [Float64Array, Float64Array];
          for (let i = 0; i < p.length; i++) {
            Eg[i] = rho * Eg[i]! + (1 - rho) * g[i]! * g[i]!;
            const dx = (Math.sqrt(Ex[i]! + eps) / Math.sqrt(Eg[i]! + eps)) * g[i]!;
            Ex[i] = rho * Ex[i]! + (1 - rho) * dx * dx;
            p[i]! -= lr * dx;
          }
        },
      };
    }
    case 'rmsprop': {
      const alpha = 0.99;
      const eps = 1e-8;
      return {
        step(slot, p, g, lr) {
          const [E] = slots(slot, p.length, 1) as [Float64Array];
          for (let i = 0; i < p.length; i++) {
            E[i] = alpha * E[i]! + (1 - alpha) * g[i]! * g[i]!;
            p[i]! -= (lr * g[i]!) / (Math.sqrt(E[i]!) + eps);
          }
        },
      };
    }
    case 'adam': {
      const b1 = 0.9;
      const b2 = 0.999;
      const eps = 1e-8;
      return {
        step(slot, p, g, lr) {
          const [m, v] = slots(slot, p.length, 2) as [Float64Array, Float64Array];
          const t = (steps.get(slot) ?? 0) + 1;
          steps.set(slot, t);
          const c1 = 1 - b1 ** t;
          const c2 = 1 - b2 ** t;
          for (let i = 0; i < p.length; i++) {
            m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
            v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
            p[i]! -= (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + eps);
          }
        },
      };
    }
  }
}
