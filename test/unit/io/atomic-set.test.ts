// writeAtomicSet (outputs replaced together: never a mix of old and new files, temps removed on
// failure) and removeStaleTemps (the temp files of a killed run are removed by the next write there);
// the one temp scheme (tempPathFor) with its cleanup, used by every writer: the embedding cache's
// prune() removes a killed run's temps in its shard folders, and a temp folder (the kiosk bundle's) goes too.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isStaleTemp, recoverSets, removeStaleTemps, tempPathFor, writeAtomic, writeAtomicSet } from '../../../runtime/io/atomic.js';
import { EmbeddingCache } from '../../../runtime/train/node/embed.js';
import { tempDir } from '../../helpers.js';

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('writeAtomicSet', () => {
  it('replaces every file of the set', async () => {
    const d = tempDir();
    const a = path.join(d, 'm.onnx');
    const b = path.join(d, 'm.report.json');
    writeFileSync(a, 'old model');
    writeFileSync(b, 'old report');
    await writeAtomicSet([{ file: a, data: 'new model' }, { file: b, data: 'new report' }]);
    expect(readFileSync(a, 'utf8')).toBe('new model');
    expect(readFileSync(b, 'utf8')).toBe('new report');
    expect(readdirSync(d).sort()).toEqual(['m.onnx', 'm.report.json']);
  });

  it('moves finished temp files (from) into place', async () => {
    const d = tempDir();
    const a = path.join(d, 'm.onnx');
    const tmp = tempPathFor(a, '.onnx');
    writeFileSync(tmp, 'quantized');
    await writeAtomicSet([{ file: a, from: tmp }, { file: path.join(d, 'm.json'), data: '{}' }]);
    expect(readFileSync(a, 'utf8')).toBe('quantized');
    expect(readdirSync(d).sort()).toEqual(['m.json', 'm.onnx']);
  });

  it('a failure while writing leaves the old set whole and no temp file', async () => {
    const d = tempDir();
    const a = path.join(d, 'm.onnx');
    const b = path.join(d, 'm.report.json');
    writeFileSync(a, 'old model');
    writeFileSync(b, 'old report');
    // the third target is a folder: refused after the first two temps exist
    mkdirSync(path.join(d, 'x.png'));
    await expect(writeAtomicSet([{ file: a, data: 'new' }, { file: b, data: 'new' }, { file: path.join(d, 'x.png'), data: 'x' }])).rejects.toThrow(`cannot write ${path.join(d, 'x.png')}: it is a directory`);
    expect(readFileSync(a, 'utf8')).toBe('old model');
    expect(readFileSync(b, 'utf8')).toBe('old report');
    expect(readdirSync(d).sort()).toEqual(['m.onnx', 'm.report.json', 'x.png']);
    // a set spread over folders is refused before anything is written (its journal could not name them)
    await expect(writeAtomicSet([{ file: a, data: 'new' }, { file: path.join(d, 'x.png', 'y.json'), data: 'y' }])).rejects.toThrow(
      `cannot write ${path.join(d, 'x.png', 'y.json')}: the files of one output set must be in one folder (${d})`,
    );
  });

  it('a journal planted in a shared folder, naming files elsewhere, is not obeyed', async () => {
    const shared = tempDir();
    const elsewhere = tempDir();
    const victim = path.join(elsewhere, 'victim.txt');
    writeFileSync(victim, 'precious');
    const evilTemp = path.join(shared, `.x.${deadPid()}.17000000000000.tmp`);
    writeFileSync(evilTemp, 'attacker bytes');
    const journal = path.join(shared, '.x.set.json');
    writeFileSync(journal, JSON.stringify({ edgetune: 'atomic-set', version: 1, pid: deadPid(), entries: [{ file: victim, temp: evilTemp }, { file: path.join(elsewhere, 'gone.txt'), remove: true }] }));
    writeFileSync(path.join(elsewhere, 'gone.txt'), 'keep me');
    expect(await recoverSets(shared)).toEqual([]);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readFileSync(path.join(elsewhere, 'gone.txt'), 'utf8')).toBe('keep me');
    expect(readFileSync(journal, 'utf8')).toContain('victim.txt'); // left as it is
  });

  it('a finished temp (from) that vanished fails before the commit: the old set stays whole', async () => {
    const d = tempDir();
    const a = path.join(d, 'm.onnx');
    const b = path.join(d, 'm.report.json');
    writeFileSync(a, 'old model');
    writeFileSync(b, 'old report');
    const gone = path.join(d, 'gone.tmp'); // a `from` temp that vanished
    await expect(writeAtomicSet([{ file: a, data: 'new model' }, { file: b, from: gone }])).rejects.toThrow(`cannot write ${b}: no such file or directory (ENOENT)`);
    expect(readFileSync(a, 'utf8')).toBe('old model');
    expect(readFileSync(b, 'utf8')).toBe('old report');
    expect(readdirSync(d).sort()).toEqual(['m.onnx', 'm.report.json']);
  });
});

describe('removeStaleTemps', () => {
  it('removes temps of processes that are gone and keeps this process\'s and other files', async () => {
    const d = tempDir();
    const dead = deadPid();
    const stale = [`.m.onnx.${dead}.17000000000000.tmp`, `.m.onnx.${dead}.17000000000001.tmp.onnx`, `.m.onnx.${dead}.17000000000002.tmp.calibration.cache`];
    for (const n of stale) writeFileSync(path.join(d, n), 'partial');
    const mine = tempPathFor(path.join(d, 'm.onnx'));
    writeFileSync(mine, 'in progress');
    writeFileSync(path.join(d, 'keep.tmp'), 'not ours');
    mkdirSync(path.join(d, 'sub'));
    const removed = await removeStaleTemps(d);
    expect(removed.map((p) => path.basename(p)).sort()).toEqual([...stale].sort());
    expect(readdirSync(d).sort()).toEqual([path.basename(mine), 'keep.tmp', 'sub'].sort());
  });

  it('the next write into the folder removes them', async () => {
    const d = tempDir();
    const stale = path.join(d, `.out.onnx.${deadPid()}.1.tmp`);
    writeFileSync(stale, 'partial');
    await writeAtomic(path.join(d, 'out.onnx'), 'model');
    expect(readdirSync(d)).toEqual(['out.onnx']);
  });
});

describe('one temp scheme, cleaned', () => {
  it('the embedding cache removes a killed run\'s temp when it prunes, and keeps its entries', async () => {
    const dir = tempDir();
    const cache = new EmbeddingCache(dir, { maxBytes: 1 << 20 });
    const key = 'ab' + '0'.repeat(62);
    await cache.put(key, new Float32Array([1, 2, 3]));
    const shard = path.join(dir, 'ab');
    const stale = `.${key}.f32.${deadPid()}.17000000000000.tmp`;
    writeFileSync(path.join(shard, stale), 'partial');
    expect(isStaleTemp(stale)).toBe(true);
    expect(isStaleTemp(path.basename(tempPathFor(path.join(shard, 'x.f32'))))).toBe(false); // this process's own
    await cache.prune();
    expect(readdirSync(shard)).toEqual([`${key}.f32`]);
    expect(await cache.get(key, 3)).toEqual(new Float32Array([1, 2, 3]));
  });

  it('removes a temp folder a killed build left (the kiosk bundle is built in one)', async () => {
    const dir = tempDir();
    const stale = path.join(dir, `.web.${deadPid()}.17000000000000.tmp`);
    mkdirSync(path.join(stale, 'ort'), { recursive: true });
    writeFileSync(path.join(stale, 'ort', 'x.wasm'), 'partial');
    expect(await removeStaleTemps(dir)).toEqual([stale]);
    expect(readdirSync(dir)).toEqual([]);
  });
});
