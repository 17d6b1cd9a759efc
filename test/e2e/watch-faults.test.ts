// `edgetune watch` on sources that are not there: retries are bounded by default and end with a
// clear error, `--retries inf` waits for ever (until Ctrl-C/SIGTERM), and a URI's credentials never
// reach the terminal.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { refusedPort, repoRoot, runCli, sharedDir } from '../helpers.js';

describe('edgetune watch retries', () => {
  it('gives up on a missing camera after the default 8 attempts, with ffmpeg\'s reason', async () => {
    const r = await runCli(['watch', 'v4l2:///dev/video-missing', '--threads', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('reconnecting in 250 ms (attempt 1/8)');
    expect(r.stderr).toContain('(attempt 8/8)');
    expect(r.stderr).not.toContain('∞');
    expect(r.stderr).toMatch(
      /edgetune watch: v4l2:\/\/\/dev\/video-missing: ffmpeg exited with code \d+ and 8 reconnect attempts failed: .*\/dev\/video-missing.* \(retries are bounded: --retries inf waits for the source for ever\)\n$/,
    );
  });

  it('waits for ever with --retries inf until stopped', async () => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'runtime', 'cli', 'main.js'), 'watch', 'v4l2:///dev/video-missing', '--retries', 'inf', '--threads', '1'], {
      env: { ...process.env, EDGETUNE_MODEL_PATH: path.join(sharedDir, 'models') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await new Promise<void>((resolve) =>
      child.stderr.on('data', (d) => {
        stderr += d;
        if (/attempt 2\/∞/.test(stderr)) resolve();
      }),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('reconnecting in 250 ms (attempt 1/∞)');
  });

  it('masks the password of a camera URI in every line it prints', async () => {
    const port = await refusedPort();
    const r = await runCli(['watch', `rtsp://admin:Sup3rSecret@127.0.0.1:${port}/Streaming/101`, '--retries', '1', '--threads', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).not.toContain('Sup3rSecret');
    expect(r.stderr).toContain(`rtsp://***@127.0.0.1:${port}/Streaming/101: ffmpeg exited with code`);
  });

  it('refuses bad --retries and --stall-timeout values', async () => {
    const r = await runCli(['watch', 'test:', '--retries', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Expected integer >= 0 or inf for --retries but received "lots"');
    const s = await runCli(['watch', 'test:', '--stall-timeout', 'soon']);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('Expected a duration such as 500ms or 2s for --stall-timeout but received "soon"');
  });
});
