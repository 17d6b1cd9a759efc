// Divergence of training (BROWSER-SAFE): the check the head trainer (runtime/train/index.ts) and the
// tail trainer (runtime/train/graph/tail-trainer.ts, phase 2) run after every epoch and on the kept weights. The exported head is float32, so a float64 weight or logit past
// float32's range — finite while training — becomes Infinity there and every score NaN.

import { EdgetuneError } from '../core/errors.js';

/** The largest float32 magnitude: exported heads are float32, so a float64 weight above it becomes Infinity (and every score NaN). */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Stop a run that diverged: a non-finite loss, a weight that is non-finite or would overflow float32
 * in the exported head, or a `peak` activation/logit (largest magnitude seen) beyond float32. Throws EdgetuneError EARG naming the epoch and the cause, with the
 * hint to lower the learning rate: `lr` is the head trainer's rate (shown as `--lr, now <lr>`) or the
 * text of the rates in play (phase 2: `--lr, now …; --backbone-lr, now …`).
 */
export function checkDiverged(epoch: number, loss: number, p: { W: ArrayLike<number>[]; b: ArrayLike<number>[] }, lr: number | string, peak = 0): void {
  let cause = Number.isFinite(loss) ? '' : `the training loss is ${loss}`;
  if (!cause && !(peak <= FLOAT32_MAX)) cause = `a logit reached ${Number.isFinite(peak) ? peak.toExponential(2) : peak}, beyond float32 (${FLOAT32_MAX.toExponential(2)}): the exported model's scores would be NaN`;
  if (!cause) {
    let max = 0;
    for (const a of [...p.W, ...p.b]) {
      if (Number.isNaN(max)) break;
      for (let i = 0; i < a.length; i++) {
        const v = Math.abs(a[i]!);
        if (Number.isNaN(v)) {
          max = NaN;
          break;
        }
        if (v > max) max = v;
      }
    }
    if (!(max <= FLOAT32_MAX)) cause = Number.isFinite(max) ? `a weight reached ${max.toExponential(2)}, beyond float32 (${FLOAT32_MAX.toExponential(2)})` : `a weight is ${max}`;
  }
  if (cause) {
    throw new EdgetuneError('EARG', `training diverged at epoch ${epoch}: ${cause}; lower the learning rate (${typeof lr === 'number' ? `--lr, now ${lr}` : lr}); no model was written`);
  }
}
