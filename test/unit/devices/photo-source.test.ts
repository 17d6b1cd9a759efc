// A still photo as a stream source (`watch photo.jpg`) is decoded as `classify` decodes it: one decode
// path (runtime/image/decode.ts decodeImage), EXIF orientation applied. Before, ffmpeg decoded it: it
// ignored a PNG's or WebP's orientation and read a rotated JPEG with its unrotated size (mean difference
// from classify's pixels 15–34 levels, measured on this photo). A video file still goes to ffmpeg, and so
// does an animated GIF (its frames are a video).

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../../../devices/sources/index.js';
import type { Frame } from '../../../devices/sources/types.js';
import { decodeImage, isStillImageFile } from '../../../runtime/image/decode.js';
import { DEFAULT_SPEC, type PreprocessSpec } from '../../../runtime/image/preprocess.js';
import { jsonLines, runCli, shared, tempDir } from '../../helpers.js';

const FINCH = shared('camera', 'hwacc_imagenet_finch.jpeg'); // 500×416, no EXIF orientation (MODELS.md)
const geometry = { width: 96, height: 64, channels: 3 as const, resize: 'cover' as const, crop: 1 };
const spec: PreprocessSpec = { ...DEFAULT_SPEC, ...geometry };
const dir = tempDir('edgetune-photo-source-');
/** The finch stored turned a quarter counter-clockwise, with EXIF orientation 6 ("rotate 90° clockwise to show"). */
const turned = (ext: 'jpg' | 'png' | 'webp') => path.join(dir, `finch-o6.${ext}`);

/** The one frame a source opened on `uri` gives, and what its frames() ends with. */
async function onlyFrame(uri: string): Promise<{ kind: string; frames: Frame[] }> {
  const src = await createSource(uri, geometry);
  const frames: Frame[] = [];
  for await (const f of src.frames()) frames.push(f);
  await src.close();
  return { kind: src.kind, frames };
}

beforeAll(async () => {
  for (const ext of ['jpg', 'png', 'webp'] as const) {
    const stored = sharp(await sharp(FINCH).rotate(-90).toBuffer()).withMetadata({ orientation: 6 });
    await (ext === 'jpg' ? stored.jpeg({ quality: 95 }) : ext === 'png' ? stored.png() : stored.webp({ quality: 95 })).toFile(turned(ext));
    expect((await sharp(turned(ext)).metadata()).orientation).toBe(6);
  }
});

describe('a still photo as a source', () => {
  it('gives exactly the pixels classify decodes, EXIF orientation applied (JPEG, PNG, WebP; path and file://)', async () => {
    const upright = await decodeImage(FINCH, spec);
    for (const ext of ['jpg', 'png', 'webp'] as const) {
      const f = turned(ext);
      const expected = await decodeImage(f, spec);
      // the decode honours the tag: the turned file reads as the upright photo (mean 0.84–1.04 levels apart,
      // re-encoding; unturned it would be about 30 levels apart)
      let sum = 0;
      for (let i = 0; i < upright.data.length; i++) sum += Math.abs(upright.data[i]! - expected.data[i]!);
      expect(sum / upright.data.length, ext).toBeLessThan(3);
      for (const uri of [f, `file://${f}`]) {
        const { kind, frames } = await onlyFrame(uri);
        expect(kind).toBe('file');
        expect(frames).toHaveLength(1);
        expect([frames[0]!.width, frames[0]!.height, frames[0]!.channels, frames[0]!.seq]).toEqual([96, 64, 3, 0]);
        // before: ffmpeg's pixels, 15.3 (JPEG) and 27.5 (PNG) levels from these on average
        expect(Buffer.from(frames[0]!.data).equals(Buffer.from(expected.data)), `${uri}`).toBe(true);
      }
    }
  });

  it('a damaged photo is refused at open with classify\'s words', async () => {
    const { writeFileSync, readFileSync } = await import('node:fs');
    const cut = path.join(dir, 'cut.jpg');
    writeFileSync(cut, readFileSync(FINCH).subarray(0, 4000));
    await expect(createSource(cut, geometry)).rejects.toThrow(`${cut}: corrupt or truncated image (VipsJpeg: premature end of JPEG image)`);
  });

  it('a video and an animated GIF are still played by ffmpeg (every frame)', async () => {
    expect(await isStillImageFile(shared('camera', 'slow_traffic_small.mp4'))).toBe(false);
    const gif = path.join(dir, 'traffic.gif');
    execFileSync('ffmpeg', ['-v', 'error', '-i', shared('camera', 'slow_traffic_small.mp4'), '-t', '0.5', '-vf', 'scale=96:-2', gif]);
    expect(await isStillImageFile(gif)).toBe(false);
    expect(await isStillImageFile(turned('png'))).toBe(true);
    const { kind, frames } = await onlyFrame(`file://${gif}?realtime=0`);
    expect(kind).toBe('file');
    expect(frames.length).toBeGreaterThan(1);
  });

  it('edgetune watch and edgetune classify say the same of the turned PNG (squeezenet1.1)', async () => {
    const f = turned('png');
    const [w, c] = await Promise.all([
      runCli(['watch', f, '--model', 'squeezenet1.1', '--json', '--top', '1', '--as-fast-as-possible']),
      runCli(['classify', f, '--model', 'squeezenet1.1', '--json', '--top', '1']),
    ]);
    expect(w.code, w.stderr).toBe(0);
    expect(c.code, c.stderr).toBe(0);
    const watched = jsonLines<{ top: { index: number; label: string; score: number }[] }>(w.stdout);
    const classified = jsonLines<{ top: { index: number; label: string; score: number }[] }>(c.stdout)[0]!.top[0]!;
    expect(watched).toHaveLength(1);
    expect(classified.label).toBe('house finch');
    // before: watch said house finch at 95% where classify says 100% (ffmpeg ignored the PNG's orientation)
    expect(watched[0]!.top[0]).toEqual({ ...classified, score: expect.closeTo(classified.score, 5) });
  });
});
