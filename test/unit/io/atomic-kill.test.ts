// writeAtomicSet under kill -9: a child process writes a three-file set (model, report, resume data;
// the set also removes an older picture) and is killed with SIGKILL at every step of the write
// (EDGETUNE_TEST_KILL_AT, the test hook in runtime/io/atomic.ts), then at random moments while it
// rewrites the set in a loop. After each kill, the next run's recovery (recoverSets, which every
// writeAtomicSet and checkWritable runs first) must leave one whole set, old or new, and no temp or
// journal file.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { recoverSets } from '../../../runtime/io/atomic.js';
import { repoRoot, tempDir } from '../../helpers.js';

const ATOMIC = path.join(repoRoot, 'dist', 'runtime', 'io', 'atomic.js');
const NAMES = ['m.onnx', 'm.report.json', 'm.resume.bin'];

/** A child that writes the set once with generation `gen` (or `loop`: generations 1, 2, 3… for ever, printing each one's number once it is written). */
function childScript(dir: string, gen: string, loop = false): string {
  return `
import { writeAtomicSet } from ${JSON.stringify(ATOMIC)};
const dir = ${JSON.stringify(dir)};
const write = (g) => writeAtomicSet([
  { file: dir + '/m.onnx', data: 'model ' + g + ' ' + 'x'.repeat(200000) },
  { file: dir + '/m.report.json', data: 'report ' + g },
  { file: dir + '/m.resume.bin', data: 'resume ' + g },
  { file: dir + '/m.report.png', remove: true },
]);
${loop ? `for (let g = 1; ; g++) { await write(g); process.stdout.write(g + '\\n'); }` : `await write(${JSON.stringify(gen)});`}
`;
}

/** The generation each file of the set holds (the word after its kind). */
function generations(dir: string): string[] {
  return NAMES.map((n) => readFileSync(path.join(dir, n), 'utf8').split(' ')[1]!);
}

function seedOld(dir: string): void {
  writeFileSync(path.join(dir, 'm.onnx'), 'model old');
  writeFileSync(path.join(dir, 'm.report.json'), 'report old');
  writeFileSync(path.join(dir, 'm.resume.bin'), 'resume old');
  writeFileSync(path.join(dir, 'm.report.png'), 'picture of old');
}

describe('writeAtomicSet survives kill -9 at any instant', () => {
  it('killed at each of its steps, the next run finds one whole set (old before the commit, new after) and no temp', async () => {
    if (!existsSync(ATOMIC)) throw new Error(`${ATOMIC} missing: run "npm run build" first`);
    // steps: 3 temps written, journal temp written, journal committed, 4 entries applied (3 renames + 1 removal)
    const outcomes: string[] = [];
    for (let at = 1; at <= 10; at++) {
      const dir = tempDir();
      seedOld(dir);
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', childScript(dir, 'new')], { env: { ...process.env, EDGETUNE_TEST_KILL_AT: String(at) } });
      const killed = r.signal === 'SIGKILL';
      await recoverSets(dir);
      const g = generations(dir);
      expect(new Set(g).size, `kill at step ${at}: ${g.join(',')}`).toBe(1);
      // the old picture goes with the new set, never stays beside it; it stays with the old set
      expect(existsSync(path.join(dir, 'm.report.png'))).toBe(g[0] === 'old');
      expect(readdirSync(dir).sort()).toEqual(g[0] === 'old' ? [...NAMES, 'm.report.png'].sort() : NAMES);
      outcomes.push(`${at}:${killed ? 'killed' : 'exited'}:${g[0]}`);
    }
    // killed before the journal is committed (steps 1-4): old set; from the commit on (5-9): new set; 10: never reached
    expect(outcomes).toEqual([
      '1:killed:old', '2:killed:old', '3:killed:old', '4:killed:old',
      '5:killed:new', '6:killed:new', '7:killed:new', '8:killed:new', '9:killed:new',
      '10:exited:new',
    ]);
  });

  it('killed at random moments while rewriting the set in a loop, every recovery leaves one whole set', async () => {
    if (!existsSync(ATOMIC)) throw new Error(`${ATOMIC} missing: run "npm run build" first`);
    const dir = tempDir();
    seedOld(dir);
    // a seeded sequence of delays (ms after the child has written its first set), so a failure can be replayed
    let s = 12345;
    const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 60;
    let midWrite = 0;
    for (let i = 0; i < 12; i++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', childScript(dir, '', true)], { stdio: ['ignore', 'pipe', 'inherit'] });
      // the generations the child says it has written; the kill comes after the first (waiting on it, not on a
      // delay: a child slower than the delay, stopped or on a busy core, was killed before it wrote anything)
      let out = '';
      const written = () => Math.max(0, ...out.split('\n').filter((l) => /^\d+$/.test(l)).map(Number));
      // a child that exits (or fails to start) before its first set fails the test here, saying how, instead of
      // leaving this wait to the test's timeout
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += d;
          if (written() >= 1) resolve();
        });
        child.once('error', reject);
        child.once('exit', (code, signal) => reject(new Error(`kill ${i}: the child exited (code ${code}, signal ${signal}) before writing its first set; it printed ${JSON.stringify(out)}`)));
      });
      await new Promise((resolve) => setTimeout(resolve, next()));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      const said = written();
      if (readdirSync(dir).some((n) => n.startsWith('.'))) midWrite++;
      await recoverSets(dir);
      const g = generations(dir);
      expect(new Set(g).size, `kill ${i}: ${g.join(',')}`).toBe(1);
      expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
      // a set the child said it wrote is never lost: the set found is that one or a later one
      expect(Number(g[0]), `kill ${i}: generation ${g[0]} after the child said ${said}`).toBeGreaterThanOrEqual(said);
    }
    // the kills landed while the child was writing (a temp or journal was left), not only between two sets.
    // The child writes back to back, so most kills land mid-write: measured 12, 10 and 10 of 12 in three
    // runs here (2 shared cores), and 1 of 12 in the worst case forced in /work/notes/races-log.md R9 (the
    // child SIGSTOPped right after its first set); every step of the write is also killed deterministically
    // by the test above (EDGETUNE_TEST_KILL_AT).
    expect(midWrite).toBeGreaterThan(0);
  });
});
