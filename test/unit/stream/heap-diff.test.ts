// The soak benchmark's heap-snapshot comparison (scripts/heap-diff.ts) on real V8 snapshots: a child
// process writes a snapshot, keeps 5 000 objects of a class of its own and 3 000 strings alive, and
// writes a second one; the comparison must name that class with exactly 5 000 more objects, and the
// worker-isolate diagnostics of a running stream pipeline must answer (memory, and a snapshot file).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffHeap, formatHeapDiff, heapTotal, summarizeHeapSnapshot } from '../../../scripts/heap-diff.js';
import { tempDir } from '../../helpers.js';

describe('heap-diff', () => {
  it('finds what a process kept alive between two snapshots', () => {
    const d = tempDir();
    const a = path.join(d, 'a.heapsnapshot');
    const b = path.join(d, 'b.heapsnapshot');
    const code = `
      const v8 = require('node:v8');
      class LeakyThing { constructor(i) { this.i = i; this.payload = [i, i + 1]; } }
      v8.writeHeapSnapshot(${JSON.stringify(a)});
      globalThis.kept = Array.from({ length: 5000 }, (_, i) => new LeakyThing(i));
      globalThis.strings = Array.from({ length: 3000 }, (_, i) => 'kept-string-' + i + '-'.repeat(40));
      v8.writeHeapSnapshot(${JSON.stringify(b)});`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const sa = summarizeHeapSnapshot(readFileSync(a, 'utf8'));
    const sb = summarizeHeapSnapshot(readFileSync(b, 'utf8'));
    expect(sa.get('LeakyThing')).toBeUndefined();
    expect(sb.get('LeakyThing')!.count).toBe(5000);
    const top = diffHeap(sa, sb, 50);
    const leak = top.find((e) => e.kind === 'LeakyThing')!;
    expect(leak.dCount).toBe(5000);
    expect(leak.dBytes).toBeGreaterThan(5000 * 12); // at least a header and one field each
    expect(top.find((e) => e.kind === '(string)')!.dCount).toBeGreaterThanOrEqual(3000);
    expect(heapTotal(sb).count - heapTotal(sa).count).toBeGreaterThanOrEqual(8000);
    expect(formatHeapDiff(a, b, 50)).toMatch(/LeakyThing\s+5000\s+[\d.]+\s+\+5000/);
  });

  it('refuses a file that is not a heap snapshot', () => {
    expect(() => summarizeHeapSnapshot('{"nodes": []}')).toThrow('not a V8 heap snapshot (no snapshot.meta.node_fields / nodes)');
  });
});
