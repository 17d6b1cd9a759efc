// stream/metrics.ts: Prometheus histogram bucket maths (cumulative counts, bounds inclusive, +Inf, sum
// and count), the text exposition (escaping, histogram series, name checks) and the model file hash.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildInfoLabels, exposition, formatValue, Histogram, LATENCY_BUCKETS_SECONDS, modelFileSha256 } from '../../../runtime/stream/metrics.js';
import { shared } from '../../helpers.js';

describe('Histogram', () => {
  it('counts an observation in every bucket whose upper bound is >= it (bounds inclusive), +Inf holding all', () => {
    const h = new Histogram([0.1, 0.5, 1]);
    for (const v of [0.05, 0.1, 0.3, 0.5, 0.7, 1, 2, 1e9]) h.observe(v);
    const s = h.snapshot();
    expect(s.buckets).toEqual([
      [0.1, 2], // 0.05, 0.1 (exactly on the bound counts)
      [0.5, 4], // + 0.3, 0.5
      [1, 6], // + 0.7, 1
      [Infinity, 8], // + 2, 1e9
    ]);
    expect(s.count).toBe(8);
    expect(s.sum).toBeCloseTo(0.05 + 0.1 + 0.3 + 0.5 + 0.7 + 1 + 2 + 1e9, 6);
  });

  it('agrees with a linear count on random latencies over the default buckets; ignores NaN; negative values fall in the first bucket', () => {
    const h = new Histogram();
    const values: number[] = [];
    let x = 12345;
    for (let i = 0; i < 5000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      values.push(Math.exp((x / 2 ** 31) * 12 - 9)); // 0.1 ms .. 20 s, log-uniform
    }
    values.push(-1, 0);
    for (const v of values) h.observe(v);
    h.observe(NaN);
    const s = h.snapshot();
    expect(s.count).toBe(values.length);
    for (const [le, n] of s.buckets) expect(n).toBe(values.filter((v) => v <= le).length);
    expect(s.buckets.map(([le]) => le)).toEqual([...LATENCY_BUCKETS_SECONDS, Infinity]);
    for (let i = 1; i < s.buckets.length; i++) expect(s.buckets[i]![1]).toBeGreaterThanOrEqual(s.buckets[i - 1]![1]);
  });

  it('refuses bounds that are empty, unordered or infinite', () => {
    expect(() => new Histogram([])).toThrow('histogram bounds must be finite and strictly increasing, got []');
    expect(() => new Histogram([1, 1])).toThrow('got [1, 1]');
    expect(() => new Histogram([1, Infinity])).toThrow('got [1, Infinity]');
  });
});

describe('exposition', () => {
  it('writes HELP/TYPE, escaped labels, and a histogram as _bucket{le} (cumulative, +Inf last), _sum and _count', () => {
    const h = new Histogram([0.01, 0.1]);
    h.observe(0.005);
    h.observe(0.05);
    h.observe(3);
    const text = exposition([
      { name: 'x_total', help: 'a\\b\nc', type: 'counter', samples: [{ labels: { model: 'a"b\\c\nd' }, value: 3 }] },
      { name: 'x_seconds', help: 'h', type: 'histogram', samples: [{ labels: { stage: 'total' }, histogram: h.snapshot() }] },
    ]);
    expect(text).toBe(
      [
        '# HELP x_total a\\\\b\\nc',
        '# TYPE x_total counter',
        'x_total{model="a\\"b\\\\c\\nd"} 3',
        '# HELP x_seconds h',
        '# TYPE x_seconds histogram',
        'x_seconds_bucket{stage="total",le="0.01"} 1',
        'x_seconds_bucket{stage="total",le="0.1"} 2',
        'x_seconds_bucket{stage="total",le="+Inf"} 3',
        'x_seconds_sum{stage="total"} 3.055',
        'x_seconds_count{stage="total"} 3',
        '',
      ].join('\n'),
    );
  });

  it('formats special values as Go does and refuses bad or repeated names', () => {
    expect([Infinity, -Infinity, NaN, 0.25].map(formatValue)).toEqual(['+Inf', '-Inf', 'NaN', '0.25']);
    expect(() => exposition([{ name: 'bad-name', help: '', type: 'gauge', samples: [] }])).toThrow('invalid Prometheus metric name "bad-name"');
    expect(() => exposition([{ name: 'g', help: '', type: 'gauge', samples: [{ labels: { 'a-b': 'x' }, value: 1 }] }])).toThrow('invalid Prometheus label name "a-b"');
    const g = { name: 'g', help: '', type: 'gauge' as const, samples: [] };
    expect(() => exposition([g, g])).toThrow('metric g given twice');
  });

  it('build info names the package version, its onnxruntime-node and Node', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string; dependencies: Record<string, string> };
    expect(await buildInfoLabels()).toEqual({ version: pkg.version, onnxruntime: pkg.dependencies['onnxruntime-node'], node: process.version });
  });

  it('hashes a model file as sha256sum does; an unreadable file gives an empty label, never an error', async () => {
    const f = shared('models', 'mnist_winml.onnx');
    expect(await modelFileSha256(f)).toBe(createHash('sha256').update(readFileSync(f)).digest('hex'));
    expect(await modelFileSha256('/nonexistent/model.onnx')).toBe('');
  });
});
