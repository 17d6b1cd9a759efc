// One temp scheme (runtime/io/atomic.ts tempPathFor) with its cleanup, used by every writer: a temp
// left by a killed run (its process is gone) is removed by the next run there — here the embedding
// cache's prune() (its shard folders) and a folder temp such as the kiosk bundle's.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isStaleTemp, removeStaleTemps, tempPathFor } from '../../../runtime/io/atomic.js';
import { EmbeddingCache } from '../../../runtime/train/node/embed.js';
import { tempDir } from '../../helpers.js';

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

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
