// Test helpers: the one place tests find real assets (EDGETUNE_SHARED, default ../shared) and run the
// built CLI. A missing asset fails the test loudly: tests never skip because data is absent.

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, it, type TestContext } from 'vitest';
import { EdgetuneError } from '../runtime/core/errors.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const sharedDir = path.resolve(process.env.EDGETUNE_SHARED ?? path.join(repoRoot, '..', 'shared'));

/** Absolute path of a file under ../shared; throws when it is missing. */
export function shared(...parts: string[]): string {
  const p = path.join(sharedDir, ...parts);
  if (!existsSync(p)) {
    throw new Error(`test asset missing: ${p} (set EDGETUNE_SHARED to the shared assets folder)`);
  }
  return p;
}

/** The folders tempDir made in this test file: removed after its tests (EDGETUNE_KEEP_TEMP=1 keeps them). */
const madeDirs: string[] = [];
afterAll(() => {
  if (process.env.EDGETUNE_KEEP_TEMP === '1') return;
  for (const dir of madeDirs.splice(0)) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      /* a file still held open (Windows) or a child still writing: the OS cleans the temp folder later */
    }
  }
});

/**
 * A new empty folder under the OS temp folder, removed after the test file's tests (its other
 * `afterAll` hooks run first: servers and children they stop are done with it). A README-setup run
 * alone leaves 820 MB (an npm install), so keeping them filled a developer's disk.
 */
export function tempDir(prefix = 'edgetune-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/**
 * A new empty folder (removed as tempDir's) where a test can run a script it writes there (a
 * `#!/bin/sh` stand-in for ffmpeg or fswebcam): under the OS temp folder unless that is mounted noexec
 * (a hardened runner's /tmp), then under the repository's node_modules/.cache, which holds executables
 * already (node_modules/.bin).
 */
export function execDir(prefix = 'edgetune-exec-'): string {
  const dir = tempDir(prefix);
  const probe = path.join(dir, 'probe');
  writeFileSync(probe, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  try {
    execFileSync(probe);
    return dir;
  } catch {
    const cache = path.join(repoRoot, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    const inRepo = mkdtempSync(path.join(cache, prefix));
    madeDirs.push(inRepo);
    return inRepo;
  } finally {
    rmSync(probe, { force: true });
  }
}

/**
 * A small folder-per-class dataset at `dir`: the first `n` photos (by name) of each of `classes` in the
 * shared folder `from` (path parts under ../shared, e.g. ['datasets', 'hymenoptera', 'val']), copied, or
 * symlinked with `link`. Returns `dir`.
 */
export function subsetDataset(dir: string, from: readonly string[], classes: readonly string[], n: number, o: { link?: boolean } = {}): string {
  for (const cls of classes) {
    mkdirSync(path.join(dir, cls), { recursive: true });
    for (const f of readdirSync(shared(...from, cls)).sort().slice(0, n)) {
      (o.link ? symlinkSync : copyFileSync)(shared(...from, cls, f), path.join(dir, cls, f));
    }
  }
  return dir;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

let reports = 0;

/**
 * What a process that ran past its time limit is doing, for the test's failure message: its threads
 * (state, kernel wait channel), its child processes, and Node's diagnostic report, which a process
 * started with `--report-on-signal --report-signal=SIGUSR2` writes to `reportFile` on SIGUSR2: the
 * main thread's JavaScript and native stacks, the active handles (child processes, timers, pipes,
 * worker ports) and each worker thread's stack. No report within REPORT_WAIT_MS says the main thread is blocked
 * outside JavaScript. (A hang seen once in a loaded CI run, stream-cli's stub webcam, never came back
 * in hundreds of runs: its next occurrence explains itself.)
 */
/** How long hangReport waits for Node's report after SIGUSR2, ms. */
const REPORT_WAIT_MS = 5_000;
/**
 * runCli's default kill time, ms: the kill, the report wait and its half second end by 170.5 s, before
 * vitest's testTimeout of 180 s (vitest.config.ts `common`), so the report reaches the failure message
 * (was 170 s + 10 s + 0.5 s: the test timed out first and the report was lost).
 */
const RUN_CLI_TIMEOUT_MS = 165_000;
async function hangReport(pid: number, reportFile: string): Promise<string> {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const lines: string[] = [];
  const children: string[] = [];
  for (const t of existsSync(`/proc/${pid}/task`) ? readdirSync(`/proc/${pid}/task`) : []) {
    const state = read(`/proc/${pid}/task/${t}/stat`).replace(/^.*\) /, '').split(' ')[0];
    lines.push(`thread ${t} ${read(`/proc/${pid}/task/${t}/comm`).trim()} ${state} ${read(`/proc/${pid}/task/${t}/wchan`)}`);
    children.push(...read(`/proc/${pid}/task/${t}/children`).trim().split(/\s+/).filter(Boolean));
  }
  for (const c of children) lines.push(`child ${c}: ${read(`/proc/${c}/cmdline`).split('\0').join(' ').trim()} (${read(`/proc/${c}/stat`).replace(/^.*\) /, '').split(' ')[0] ?? '?'})`);
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    return lines.join('\n');
  }
  for (const end = Date.now() + REPORT_WAIT_MS; !existsSync(reportFile) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500)); // written in one go; a moment for the last bytes
  type Report = { javascriptStack?: { stack?: string[] }; nativeStack?: { symbol?: string }[]; libuv?: { type: string; is_active: boolean; is_referenced?: boolean; pid?: number; fd?: number; firesInMsFromNow?: number }[]; workers?: Report[] };
  let r: Report;
  try {
    r = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;
    rmSync(reportFile, { force: true });
  } catch {
    lines.push(`no node report within ${REPORT_WAIT_MS / 1000} s of SIGUSR2: the main thread is blocked outside JavaScript`);
    return lines.join('\n');
  }
  const handles = (x: Report) =>
    (x.libuv ?? [])
      .filter((h) => h.is_active)
      .map((h) => `${h.type}${h.is_referenced === false ? '(unref)' : ''}${h.pid !== undefined ? ` pid ${h.pid}` : ''}${h.fd !== undefined ? ` fd ${h.fd}` : ''}${h.firesInMsFromNow !== undefined ? ` in ${h.firesInMsFromNow} ms` : ''}`)
      .join(', ');
  lines.push(`main JS stack: ${(r.javascriptStack?.stack ?? []).slice(0, 8).join(' | ')}`);
  lines.push(`main native stack: ${(r.nativeStack ?? []).map((f) => f.symbol ?? '').filter((f) => !/[Rr]eport|HandleApiCall|FunctionCallback/.test(f)).slice(0, 12).join(' | ')}`);
  lines.push(`active handles: ${handles(r)}`);
  for (const [i, w] of (r.workers ?? []).entries()) lines.push(`worker ${i}: JS stack ${(w.javascriptStack?.stack ?? []).slice(0, 6).join(' | ')}; handles ${handles(w)}`);
  return lines.join('\n');
}

/**
 * Run the built CLI (dist/runtime/cli/main.js; `npm test` builds first). Past `timeoutMs` (default
 * 165 s: RUN_CLI_TIMEOUT_MS) the process is killed, and its stderr ends with what it was doing then (hangReport).
 */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  const cli = path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} missing: run "npm run build" first`);
  const reportFile = path.join(tmpdir(), `edgetune-hang-${process.pid}-${reports++}.json`);
  return new Promise((resolve, reject) => {
    const report = ['--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${path.dirname(reportFile)}`, `--report-filename=${path.basename(reportFile)}`];
    const child = spawn(process.execPath, [...report, cli, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models'), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let hang = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const ms = opts.timeoutMs ?? RUN_CLI_TIMEOUT_MS;
    const timer = setTimeout(() => {
      void hangReport(child.pid!, reportFile)
        .then((h) => (hang = h), (e: unknown) => (hang = `(no report: ${String(e)})`))
        .finally(() => child.kill('SIGKILL'));
    }, ms);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr: hang ? `${stderr}\n[runCli: killed after ${ms} ms; what it was doing:\n${hang}]\n` : stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A running `edgetune serve`: its process, the base URL it printed, and its stderr so far. */
export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  /** `http://127.0.0.1:<port>/` from its "serving N models at …" line. */
  base: string;
  stdout(): string;
  stderr(): string;
  /**
   * Ctrl-C (SIGINT) and wait until it has exited and its output is read to the end (unless it has
   * already); resolves with its exit code.
   */
  stop(): Promise<number | null>;
}

/**
 * Start the built CLI's `edgetune serve <args>` (offline, models from ../shared/models, `env` added) and
 * resolve once it prints `serving <models> models at <url>`; rejects with its stderr when it exits first.
 */
export function startServe(args: string[], models: number, env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js'), 'serve', ...args], {
    env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models'), EDGETUNE_OFFLINE: '1', ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let out = '';
  // 'close', not 'exit': Node may emit 'exit' before the last chunk of the child's stderr is read
  // (the exit status and the pipes are separate events), and stop()'s callers read stderr() next
  const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const ready = new RegExp(`serving ${models} models? at (http://127\\.0\\.0\\.1:\\d+/)`);
    child.stdout.on('data', (d) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        resolve({
          child,
          base: m[1]!,
          stdout: () => out,
          stderr: () => stderr,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
            return closed;
          },
        });
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
  });
}

/**
 * Tests of one file that build on the state earlier ones leave (a running server's examples, a page's
 * saved models and open tab), made explicit. `step(name, fn)` is an `it` that runs only while every
 * earlier step passed: after a failed step the later ones fail at once, naming it, instead of failing on
 * the state it left half made (a cascade that reads like several bugs). `needs(name, fn)` runs only
 * while every earlier step passed too, but leaves nothing later steps build on: its own failure stops
 * nothing. A plain `it` in the same file builds on no step.
 */
export function steps(): {
  step: (name: string, fn: (ctx: TestContext) => Promise<void> | void, timeout?: number) => void;
  needs: (name: string, fn: (ctx: TestContext) => Promise<void> | void, timeout?: number) => void;
} {
  let failed: string | undefined;
  const define = (link: boolean) => (name: string, fn: (ctx: TestContext) => Promise<void> | void, timeout?: number) =>
    it(
      name,
      async (ctx) => {
        if (failed !== undefined) throw new Error(`not run: it builds on the state the test "${failed}" leaves, and that test failed`);
        if (link) ctx.onTestFailed(() => void (failed ??= name));
        await fn(ctx);
      },
      timeout,
    );
  return { step: define(true), needs: define(false) };
}

/**
 * A loopback TCP port nothing listens on, for "the server is not there" cases: 2 (a privileged port no
 * service uses and no test binds: test servers listen on port 0, which the kernel picks from its
 * ephemeral range; not one of fetch's blocked "bad ports" such as 1), checked to refuse a connection.
 * A port-0 listener closed again was used before: its number goes back to the ephemeral range, where a
 * server of the test file running in the other worker may get it in the meantime and answer instead.
 */
export async function refusedPort(): Promise<number> {
  const port = 2;
  const code = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('a connection');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
  });
  if (code !== 'ECONNREFUSED') throw new Error(`127.0.0.1:${port} should refuse connections for this test, but gave ${code}`);
  return port;
}

/** The EdgetuneError `fn` throws (anything else it throws is rethrown); an Error when it throws nothing. */
export function thrown(fn: () => unknown): EdgetuneError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EdgetuneError) return e;
    throw e;
  }
  throw new Error('expected an EdgetuneError');
}

/** Parse JSON-lines output. */
export function jsonLines<T = Record<string, unknown>>(s: string): T[] {
  return s
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as T);
}

/**
 * The environment of a user's shell: this process's, less every EDGETUNE_* variable (the repository's
 * test settings) and npm's per-script variables (npm_* except cache, registry and user config), so a
 * command run with it sees what a user typing it would. `drop` names more variables to leave out;
 * `extra` is added last.
 */
export function userEnv(extra: Record<string, string> = {}, drop: readonly string[] = []): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('EDGETUNE_') || k === 'INIT_CWD' || drop.includes(k)) continue;
    if (k.toLowerCase().startsWith('npm_') && !keep.has(k.toLowerCase())) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

