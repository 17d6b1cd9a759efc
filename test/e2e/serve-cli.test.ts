// `edgetune serve` as a user runs it, and a model URL in `classify`, `eval` and `watch`: the served
// model answers like the file on this machine (same JSON lines, same accuracy and confusion, same
// labels on a video), and Ctrl-C stops the server.

import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli, type ServeProcess, shared, sharedDir, startServe, tempDir } from '../helpers.js';

let serve: ServeProcess;
let base = '';

beforeAll(async () => {
  serve = await startServe(['squeezenet1.1', 'mobilenetv2-int8', '--port', '0', '--threads', '1'], 2);
  base = serve.base;
  expect(serve.stdout()).toContain(`${base}v2/models/squeezenet1.1 (cpu)`);
});

afterAll(async () => {
  await serve.stop();
});

const strip = (lines: Record<string, unknown>[]) => lines.map(({ ms: _ms, provider: _p, ...rest }) => rest);

describe('edgetune serve + a model URL', () => {
  it('classify --model URL prints the same JSON lines as the local model (batched on the dynamic-batch model)', async () => {
    const photos = readdirSync(shared('camera')).filter((f) => /\.(jpe?g|png)$/.test(f)).map((f) => path.join(sharedDir, 'camera', f));
    for (const [m, batch] of [['squeezenet1.1', '1'], ['mobilenetv2-int8', '4']] as const) {
      const remote = await runCli(['classify', ...photos, '--model', `${base}v2/models/${m}`, '--json', '--top', '3', '--batch', batch]);
      const here = await runCli(['classify', ...photos, '--model', m, '--json', '--top', '3', '--batch', batch, '--threads', '1']);
      expect([remote.code, remote.stderr]).toEqual([0, '']);
      const r = jsonLines(remote.stdout);
      expect(r.every((l) => l.provider === 'remote')).toBe(true);
      expect(strip(r)).toEqual(strip(jsonLines(here.stdout)));
    }
  });

  it('eval --model URL gives the local accuracy and confusion matrix', async () => {
    // ImageNet's "ant" and "bee" classes: 10 hymenoptera/val photos of each.
    const ds = tempDir('edgetune-serve-eval-');
    for (const [cls, dir] of [['ant', 'ants'], ['bee', 'bees']]) {
      mkdirSync(path.join(ds, cls));
      const src = shared('datasets', 'hymenoptera', 'val', dir);
      for (const f of readdirSync(src).sort().slice(0, 10)) symlinkSync(path.join(src, f), path.join(ds, cls, f));
    }
    const remote = await runCli(['eval', ds, '--model', `${base}v2/models/mobilenetv2-int8`, '--json']);
    const here = await runCli(['eval', ds, '--model', 'mobilenetv2-int8', '--json', '--threads', '1']);
    expect(remote.code).toBe(0);
    const { model: _m1, ...a } = JSON.parse(remote.stdout);
    const { model: _m2, ...b } = JSON.parse(here.stdout);
    expect(a).toEqual(b);
    expect(a.images).toBe(20);
  });

  it('watch --model URL labels a video like the local model', async () => {
    const video = `file://${shared('camera', 'slow_traffic_small.mp4')}`;
    const args = ['--json', '--max-frames', '12', '--as-fast-as-possible', '--smooth', '0'];
    const remote = await runCli(['watch', video, '--model', `${base}v2/models/squeezenet1.1`, ...args]);
    const here = await runCli(['watch', video, '--model', 'squeezenet1.1', ...args, '--threads', '1']);
    expect(remote.code).toBe(0);
    expect(remote.stderr).toContain('frames with squeezenet1.1 on remote');
    const top = (s: string) => jsonLines<{ seq: number; top: { index: number }[] }>(s).map((l) => [l.seq, l.top[0]!.index]);
    expect(top(remote.stdout)).toHaveLength(12);
    expect(top(remote.stdout)).toEqual(top(here.stdout));
  });

  it('says which server did not answer, and stops on Ctrl-C', async () => {
    const r = await runCli(['classify', shared('camera', 'winml_dog.jpg'), '--model', `${base}v2/models/resnet50`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`edgetune classify: GET ${base}v2/models/resnet50: server answered 404: unknown model "resnet50": this server serves "squeezenet1.1", "mobilenetv2-int8"\n`);
    expect(await serve.stop()).toBe(0);
    expect(serve.stderr()).toContain('edgetune serve: stopped');
  });
});
