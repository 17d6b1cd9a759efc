// Phase 2's default recipe (issue 20) on real photos, as a user runs it: `edgetune finetune
// beans-dev/train --model mobilenetv2-fp32 --unfreeze 2` (its default 20% validation split, fresh
// augmented views every epoch, the never-worse rule, refit on training + validation images) against the
// head alone with the same seed, both scored by `edgetune eval` on the 60 held-out beans-dev/val
// photos that neither run saw. The report says what phase 2 did, and its keep decision follows the
// rule (keepPhase2) from the numbers it reports.

import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FinetuneReport } from '../../runtime/train/node/finetune.js';
import { keepPhase2 } from '../../runtime/train/phase2.js';
import { runCli, shared, tempDir } from '../helpers.js';

const work = tempDir('edgetune-p2-recipe-');
const env = { EDGETUNE_CACHE: tempDir('edgetune-p2-recipe-cache-') };
const beans = shared('datasets', 'beans-dev');

async function trainAndScore(name: string, extra: string[]): Promise<{ report: FinetuneReport; heldOut: number }> {
  const out = path.join(work, `${name}.onnx`);
  const r = await runCli(['finetune', path.join(beans, 'train'), '--model', 'mobilenetv2-fp32', '--seed', '0', '--out', out, '--json', ...extra], { env, timeoutMs: 1_200_000 });
  expect(r.code, r.stderr).toBe(0);
  const ev = await runCli(['eval', path.join(beans, 'val'), '--model', out, '--json'], { env });
  expect(ev.code, ev.stderr).toBe(0);
  return { report: JSON.parse(r.stdout) as FinetuneReport, heldOut: (JSON.parse(ev.stdout) as { accuracy: number }).accuracy };
}

describe('finetune --unfreeze 2, default recipe, on held-out beans-dev/val', () => {
  let head: { report: FinetuneReport; heldOut: number };
  let tuned: { report: FinetuneReport; heldOut: number };
  beforeAll(async () => {
    head = await trainAndScore('head', []);
    tuned = await trainAndScore('tuned', ['--unfreeze', '2']);
  }, 1_500_000);

  it('reports fresh views, its keep decision by the rule, and the refit when kept', () => {
    const u = tuned.report.unfreeze!;
    expect(u.freshViews).toBe(true);
    expect(u.schedule).toBe('constant');
    // BitFit by default: the frozen blocks' conv biases train too, so the cut is at the input
    expect(u.biases).toBe('all');
    // 96 training + 24 validation photos (the default 20% split of 120)
    expect(u.keepTest!.images).toBe(24);
    expect(keepPhase2(u.keepTest).kept).toBe(u.kept);
    expect(u.refit).toBe(u.kept);
    expect(u.history.length).toBeLessThanOrEqual(10);
    expect(u.activationS).toBeGreaterThan(0);
  });

  it('beats the head alone on the held-out photos', () => {
    console.log(`held-out beans-dev/val: head ${head.heldOut.toFixed(3)}, --unfreeze 2 ${tuned.heldOut.toFixed(3)} (kept ${tuned.report.unfreeze!.kept}: ${tuned.report.unfreeze!.keepReason})`);
    // measured (seed 0, this 2-core machine): head 0.833 (50/60), --unfreeze 2 0.900 (54/60) with the frozen blocks'
    // biases (the default since the p2deep screen; 0.883 without them), kept (loss gain 2.2 standard errors, 5 fixed,
    // 0 broken) and refit (README "--unfreeze"); the bound allows two photos fewer than the measured 4-photo gain
    expect(tuned.heldOut).toBeGreaterThanOrEqual(head.heldOut + 2 / 60 - 1e-9);
  });
});
