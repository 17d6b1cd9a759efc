// Open-set "unknown" through the built CLI on real photos: `finetune` on three tf_flowers-dev kinds writes
// a calibrated model (card openSet, graph output unknown_score); `classify` says unknown for cats and
// dogs (JSON fields and the text line), `eval --unknown` reports AUROC / kept / rejected / ECE and draws
// the score picture, `watch` says unknown on the traffic video with the flower model, and the
// 1000-class model's default no longer shows only "unknown".

import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelInfo, readMetadataProps } from '../../runtime/core/metadata.js';
import { jsonLines, runCli, shared, tempDir } from '../helpers.js';

const KNOWN = ['daisy', 'sunflowers', 'tulips'];
const flowers = shared('datasets', 'tf_flowers-dev');
const pets = shared('datasets', 'cats_dogs-dev');

describe('open-set unknown through the CLI', () => {
  const dir = tempDir('edgetune-unknown-');
  const model = path.join(dir, 'flowers3.onnx');
  beforeAll(async () => {
    for (const split of ['train', 'val']) {
      mkdirSync(path.join(dir, split));
      for (const c of KNOWN) symlinkSync(path.join(flowers, split, c), path.join(dir, split, c));
    }
    const r = await runCli(['finetune', path.join(dir, 'train'), '--val', path.join(dir, 'val'), '--out', model, '--threads', '1'], { timeoutMs: 600_000 });
    expect(r.code, r.stderr).toBe(0);
  }, 600_000);

  it('finetune writes the calibration into the card and the graph', () => {
    const info = parseModelInfo(readMetadataProps(new Uint8Array(readFileSync(model))))!;
    expect(info.openSet).toMatchObject({ method: 'mahalanobis', output: 'unknown_score', threshold: 1, target: 0.95, fittedOn: 'validation' });
    // mobilenetv2-int8 has open-set taps (runtime/train/graph/taps.ts openSetTapsOf: the depthwise outputs of its last two residual blocks): the multi-layer score, per-class covariances
    expect(info.openSet).toMatchObject({ covariance: 'per-class', layers: ['603_quantized', '612_quantized'] });
    // the threshold is the 95% quantile of 60 validation scores: 57 of 60 kept
    expect(info.openSet!.kept).toBeCloseTo(0.95, 2);
  });

  it('a Triton repository entry serves unknown_score beside the probabilities, batchable (dims [1])', async () => {
    const repo = path.join(dir, 'repo');
    const r = await runCli(['export', model, '--format', 'triton', '--out', repo]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = readFileSync(path.join(repo, 'flowers3', 'config.pbtxt'), 'utf8');
    expect(cfg).toMatch(/name: "unknown_score"\s+data_type: TYPE_FP32\s+dims: \[ 1 \]/);
    expect(cfg).toContain('\\"openSet\\":{\\"method\\":\\"mahalanobis\\"');
  });

  it('classify says unknown for cats and dogs, not for the known flowers', async () => {
    const r = await runCli(['classify', '--json', '--model', model, path.join(pets, 'val'), ...KNOWN.map((c) => path.join(flowers, 'val', c)), '--threads', '1'], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines<{ file: string; unknown: boolean; unknownScore: number }>(r.stdout);
    const pet = lines.filter((l) => l.file.includes('cats_dogs'));
    const known = lines.filter((l) => !l.file.includes('cats_dogs'));
    expect(pet).toHaveLength(40);
    expect(known).toHaveLength(60);
    // measured: 40/40 cats and dogs unknown (scores 1.1 to 2.0), 57/60 val flowers kept
    expect(pet.filter((l) => l.unknown).length).toBeGreaterThanOrEqual(36);
    expect(known.filter((l) => !l.unknown).length).toBeGreaterThanOrEqual(54);
    for (const l of lines) expect(l.unknown).toBe(l.unknownScore > 1);
    const text = await runCli(['classify', '--model', model, path.join(pets, 'val', 'cats'), '--threads', '1']);
    expect(text.stdout).toMatch(/cat\.\d+\.jpg: unknown \(nearest: (daisy|sunflowers|tulips) [01]\.\d\d\)\n/);
    // --unknown-threshold overrides: a huge threshold keeps everything
    const loose = await runCli(['classify', '--json', '--model', model, path.join(pets, 'val', 'dogs'), '--unknown-threshold', '1000', '--threads', '1']);
    expect(jsonLines<{ unknown: boolean }>(loose.stdout).every((l) => !l.unknown)).toBe(true);
    // a model without a calibration: no fields, and the flag is called ignored
    const plain = await runCli(['classify', '--json', '--model', 'mobilenetv2-int8', shared('camera', 'winml_cat.jpg'), '--unknown-threshold', '1']);
    expect(Object.keys(jsonLines(plain.stdout)[0]!)).toEqual(['file', 'model', 'provider', 'top', 'ms']);
    expect(plain.stderr).toContain('mobilenetv2-int8 has no open-set calibration (no unknown score): --unknown-threshold is ignored');
  }, 300_000);

  it('eval --unknown reports AUROC, kept / rejected shares and ECE, and draws both distributions', async () => {
    const known = path.join(dir, 'val');
    const png = path.join(dir, 'scores.png');
    const r = await runCli(['eval', known, '--model', model, '--unknown', path.join(pets, 'train'), '--report', png, '--json', '--threads', '1'], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const o = JSON.parse(r.stdout) as { openSet: { score: string; auroc: number; knownKept: number; unknownRejected: number; keptAccuracy: number; ece: number; known: number; unknown: number } };
    // measured: AUROC 1.000, known kept 0.95, unknown rejected 1.00, accuracy of the kept 0.982, ECE 0.024
    expect(o.openSet).toMatchObject({ score: 'unknown_score', known: 60, unknown: 80 });
    expect(o.openSet.auroc).toBeGreaterThan(0.97);
    expect(o.openSet.knownKept).toBeGreaterThanOrEqual(0.93);
    expect(o.openSet.unknownRejected).toBeGreaterThan(0.9);
    expect(o.openSet.keptAccuracy).toBeGreaterThan(0.93);
    expect(o.openSet.ece).toBeLessThan(0.1);
    expect([...readFileSync(png).subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
    const bad = await runCli(['eval', known, '--model', model, '--report', png]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('eval: --report needs --unknown <dir>');
  }, 300_000);

  it('watch: the flower model says unknown on traffic; the 1000-class model shows classes by default and says what it assumed', async () => {
    const video = `file://${shared('camera', 'slow_traffic_small.mp4')}`;
    const r = await runCli(['watch', video, '--model', model, '--json', '--max-frames', '10', '--as-fast-as-possible', '--threads', '1'], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines<{ smoothed: { label: string; unknownScore: number } }>(r.stdout);
    expect(lines).toHaveLength(10);
    // measured: every frame unknown, smoothed unknown score about 1.5
    expect(lines.every((l) => l.smoothed.label === 'unknown' && l.smoothed.unknownScore > 1)).toBe(true);
    const base = await runCli(['watch', video, '--model', 'mobilenetv2-int8', '--max-frames', '10', '--as-fast-as-possible', '--threads', '1'], { timeoutMs: 300_000 });
    expect(base.code, base.stderr).toBe(0);
    expect(base.stderr).toContain('mobilenetv2-int8 has no open-set calibration: no threshold assumed');
    // measured: minivan / limousine from frame 0 (the old 0.5 default printed only "frame 0: unknown")
    expect(base.stdout).toMatch(/frame 0: (minivan|limousine)/);
    expect(base.stdout).not.toContain('unknown');
  }, 300_000);
});
