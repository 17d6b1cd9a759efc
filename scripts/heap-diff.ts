// Heap-snapshot comparison for the soak benchmark (and by hand: `node dist/scripts/heap-diff.js
// before.heapsnapshot after.heapsnapshot`). Summarises a V8 heap snapshot (the .heapsnapshot JSON that
// v8.writeHeapSnapshot(), Worker.getHeapSnapshot() and Chrome DevTools write) by object kind — the
// constructor name for objects and native objects, `(string)`, `(code)`, `(closure)`, … for the other
// node types — and prints what grew between two snapshots. Objects that grow in count and size between
// a snapshot after warm-up and one after many frames are what a JavaScript leak looks like; a flat
// JavaScript heap with a growing RSS points at native memory instead.
// Format: the snapshot's `meta.node_fields` / `meta.node_types` describe the flat `nodes` array
// (V8's HeapSnapshotJSONSerializer; documented in Chrome DevTools' heap-snapshot model).

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { table } from '../runtime/core/format.js';

/** Per kind: live objects and their shallow (self) size in bytes. */
export type HeapSummary = Map<string, { count: number; bytes: number }>;

interface SnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size of every kind of node in a heap snapshot (its JSON text). Throws on a text that is not a heap snapshot. */
export function summarizeHeapSnapshot(text: string): HeapSummary {
  const s = JSON.parse(text) as SnapshotJson;
  const fields = s.snapshot?.meta?.node_fields;
  if (!Array.isArray(fields) || !Array.isArray(s.nodes)) throw new Error('not a V8 heap snapshot (no snapshot.meta.node_fields / nodes)');
  const width = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const out: HeapSummary = new Map();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + fType]!] ?? 'unknown';
    const kind = type === 'object' || type === 'native' ? s.strings[s.nodes[i + fName]!]! : `(${type})`;
    const e = out.get(kind) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + fSize]!;
    out.set(kind, e);
  }
  return out;
}

/** The kinds whose self size changed most from `a` to `b`, largest growth first. */
export function diffHeap(a: HeapSummary, b: HeapSummary, top = 15): { kind: string; count: number; bytes: number; dCount: number; dBytes: number }[] {
  const kinds = new Set([...a.keys(), ...b.keys()]);
  return [...kinds]
    .map((kind) => {
      const x = a.get(kind) ?? { count: 0, bytes: 0 };
      const y = b.get(kind) ?? { count: 0, bytes: 0 };
      return { kind, count: y.count, bytes: y.bytes, dCount: y.count - x.count, dBytes: y.bytes - x.bytes };
    })
    .sort((p, q) => q.dBytes - p.dBytes)
    .slice(0, top);
}

/** Totals of a summary: objects and bytes. */
export function heapTotal(h: HeapSummary): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const e of h.values()) {
    count += e.count;
    bytes += e.bytes;
  }
  return { count, bytes };
}

/** A printable comparison of two snapshot files. */
export function formatHeapDiff(fileA: string, fileB: string, top = 15): string {
  const a = summarizeHeapSnapshot(readFileSync(fileA, 'utf8'));
  const b = summarizeHeapSnapshot(readFileSync(fileB, 'utf8'));
  const ta = heapTotal(a);
  const tb = heapTotal(b);
  const kb = (n: number) => (n / 1024).toFixed(1);
  const rows = diffHeap(a, b, top).map((d) => [d.kind.slice(0, 48), String(d.count), kb(d.bytes), (d.dCount >= 0 ? '+' : '') + d.dCount, (d.dBytes >= 0 ? '+' : '') + kb(d.dBytes)]);
  return (
    `${fileA} → ${fileB}: ${ta.count} → ${tb.count} objects, ${kb(ta.bytes)} → ${kb(tb.bytes)} KiB (${tb.bytes >= ta.bytes ? '+' : ''}${kb(tb.bytes - ta.bytes)} KiB)\n` +
    table([['kind', 'objects', 'KiB', 'Δ objects', 'Δ KiB'], ...rows])
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) {
    process.stderr.write('usage: node dist/scripts/heap-diff.js before.heapsnapshot after.heapsnapshot\n');
    process.exit(2);
  }
  process.stdout.write(formatHeapDiff(a, b) + '\n');
}
