// Shared by the kiosk's Chromium tests (kiosk.test.ts, kiosk-unfreeze.test.ts): start the built CLI's
// `edgetune kiosk` on a free port, launch headless Chromium (Debian's chromium driven by
// playwright-core), and pick sample photos from a class folder.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot, sharedDir } from '../helpers.js';

export const CHROMIUM = process.env.EDGETUNE_CHROMIUM ?? '/usr/bin/chromium';

/** `n` photos of `dir` (every `step`-th .jpg/.jpeg, sorted by name); throws when there are fewer. */
export function pick(dir: string, n: number, step: number): string[] {
  const files = readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort();
  const out: string[] = [];
  for (let i = 0; out.length < n && i < files.length; i += step) out.push(path.join(dir, files[i]!));
  if (out.length < n) throw new Error(`${dir}: only ${out.length} photos`);
  return out;
}

export interface Kiosk {
  url: string;
  /** The server's stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

/** Start `edgetune kiosk --port 0` serving `model` (a registry id or a file; offline, models from the shared folder); resolves with its URL. */
export async function startKiosk(model = 'mobilenetv2-int8'): Promise<Kiosk> {
  const cli = path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} missing: run "npm run build" first`);
  const server: ChildProcessWithoutNullStreams = spawn(process.execPath, [cli, 'kiosk', '--port', '0', '--model', model], {
    cwd: repoRoot,
    env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models'), EDGETUNE_OFFLINE: '1' },
  });
  let log = '';
  server.stderr.on('data', (d) => (log += d));
  // 'close' (exited and its output read to the end), not 'exit': Node may emit 'exit' before the last stderr chunk
  const closed = new Promise<void>((r) => server.once('close', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      server.kill('SIGTERM'); // not left running behind the failed test
      reject(new Error(`kiosk did not start:\n${out}\n${log}`));
    }, 120_000);
    server.stdout.on('data', (d) => {
      out += d;
      // a model file is named by its base name ("serving ml.onnx at …")
      const m = new RegExp(`serving ${path.basename(model).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} at (http://127\\.0\\.0\\.1:\\d+/)`).exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    server.on('exit', (code) => reject(new Error(`kiosk exited with ${code}:\n${out}\n${log}`)));
  });
  return {
    url,
    log: () => log,
    async stop() {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
      await closed;
    },
  };
}

/** Headless Chromium with a persistent profile in `profile`; `args` are added to the defaults (no GPU, no network extras). */
export function launchChromium(profile: string, args: string[] = []): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
  });
}

/**
 * Click *Train* and wait until the run ends; resolves with `document.body.dataset.training` then
 * (`done`, `failed`). The state of the previous run is cleared first, so an earlier `done` is never
 * read as this run's.
 */
export async function trainInKiosk(page: Page, timeoutMs = 170_000): Promise<string> {
  await page.evaluate(() => delete document.body.dataset.training);
  await page.click('#train');
  await page.waitForFunction(() => document.body.dataset.training === 'done' || document.body.dataset.training === 'failed', null, { timeout: timeoutMs });
  return page.evaluate(() => document.body.dataset.training ?? '');
}
