// The README's "Set up and run" commands, run verbatim as a new user would: its first ```sh block,
// taken from README.md, executed by bash line by line (set -e) in a fresh copy of the repository (no
// node_modules, no dist/) that sits beside `shared` (a link to the real ../shared), in a user's
// environment (no EDGETUNE_* variable, none of npm's lifecycle variables). `npm ci` there installs and
// builds; the classify line must then name the real photos.

import { spawn } from 'node:child_process';
import { cpSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, shared, tempDir, userEnv } from '../helpers.js';

/** The first ```sh block of the README section whose heading starts with `heading`. */
function readmeBlock(readme: string, heading: string): string {
  const at = readme.indexOf(`\n## ${heading}`);
  if (at < 0) throw new Error(`README.md has no section "## ${heading}"`);
  const next = readme.indexOf('\n## ', at + 4);
  const section = readme.slice(at, next < 0 ? undefined : next);
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error(`README.md section "${heading}" has no \`\`\`sh block`);
  return m[1]!;
}

/** A user's shell environment: this process's, less EDGETUNE_* and npm's lifecycle variables. */
let run: { code: number; stdout: string; stderr: string };
const block = readmeBlock(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'), 'Set up and run');

beforeAll(async () => {
  const work = tempDir('edgetune-readme-');
  const clone = path.join(work, 'edgetune');
  const skip = new Set(['node_modules', 'dist', '.git', 'out', '.cache']);
  cpSync(repoRoot, clone, { recursive: true, filter: (p) => !(path.dirname(p) === repoRoot && skip.has(path.basename(p))) });
  symlinkSync(path.dirname(shared('models')), path.join(work, 'shared'), 'dir');
  run = await new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', block], { cwd: clone, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}, 900_000);

describe('README "Set up and run", verbatim', () => {
  it('is npm ci, then a classify of real photos in ../shared with the models found through the command itself', () => {
    const commands = block.split('\n').map((l) => l.replace(/(^|\s+)#.*$/, '').trim()).filter(Boolean);
    expect(commands.map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual([
      'npm ci',
      'EDGETUNE_MODEL_PATH=../shared/models npx edgetune',
    ]);
  });

  it('installs, builds and classifies the photos: house finch, Golden Retriever, hummingbird', () => {
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const lines = run.stdout.split('\n').filter((l) => l.startsWith('../shared/camera/'));
    const top = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2).split(' (')[0]]));
    expect(Object.keys(top)).toHaveLength(5); // the finch .jpeg and the four .jpg photos
    expect(top['../shared/camera/hwacc_imagenet_finch.jpeg']).toBe('house finch');
    expect(top['../shared/camera/winml_dog.jpg']).toBe('Golden Retriever');
    expect(top['../shared/camera/winml_hummingbird.jpg']).toBe('hummingbird');
    // --top 3: three labels per line
    for (const l of lines) expect(l.split('%)').length - 1, l).toBe(3);
    expect(run.stderr).toMatch(/edgetune: 5\/5 classified with mobilenetv2-int8 on \w+/);
  });
});
