// What `npm pack` puts in the tarball: what a user runs (the compiled library and CLI with their type
// declarations, the kiosk page's bundle, the registry, labels and device profiles), and not what only
// this repository uses (source maps, the benchmark and build scripts). Read from npm's own file list
// (`npm pack --dry-run --json`), without running `prepare`: it lists the dist/ that `npm test` built.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

interface PackJson {
  files: { path: string }[];
}

describe('npm pack', () => {
  const listed = (): string[] => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return (JSON.parse(out) as PackJson[])[0]!.files.map((f) => f.path);
  };

  it('ships what a user runs: the bin, every export, the page bundle, registry, labels and profiles', () => {
    const files = new Set(listed());
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>; exports: Record<string, { types: string; default: string }> };
    for (const bin of Object.values(pkg.bin)) expect(files.has(path.normalize(bin)), bin).toBe(true);
    for (const [name, e] of Object.entries(pkg.exports)) {
      expect(files.has(path.normalize(e.default)), name).toBe(true);
      expect(files.has(path.normalize(e.types)), name).toBe(true);
    }
    for (const f of ['dist/web/index.html', 'dist/web/app.js', 'dist/web/ort-worker.js', 'dist/web/style.css', 'dist/runtime/stream/worker.js', 'dist/runtime/stream/teach-worker.js', 'models/registry.json', 'models/labels/imagenet-simple-labels.json', 'devices/profiles/generic-cpu.json', 'README.md', 'package.json']) {
      expect(files.has(f), f).toBe(true);
    }
    expect([...files].some((f) => /^dist\/web\/ort\/.+\.wasm$/.test(f))).toBe(true);
  });

  it('leaves out source maps and the repository-only scripts (benchmarks, page build, soak clients)', () => {
    const files = listed();
    // before: 440 files, 143 of them .map and 27 under dist/scripts (8.07 MB packed); now 279 (7.26 MB)
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('dist/scripts/'))).toEqual([]);
    // everything under dist/ is code, declarations or the page's assets
    expect(files.filter((f) => f.startsWith('dist/') && !/\.(js|mjs|d\.ts|wasm|html|css)$/.test(f))).toEqual([]);
  });
});
