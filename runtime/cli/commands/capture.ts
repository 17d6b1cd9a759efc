// `edgetune capture <source> --class <name> --out <dir>`: save camera frames as JPEGs into
// <out>/<class>/ (the folder-per-class layout `finetune` reads), one every --every, --count of them,
// after an optional countdown. Files get unique names and are written atomically (temp file, then a
// hard link that refuses to overwrite), so an interrupted capture leaves only whole images.

import { link, mkdir, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSource, SOURCES_USAGE } from '../../../devices/sources/index.js';
import type { SourceOptions } from '../../../devices/sources/types.js';
import { ensureWritableDir, tempPathFor } from '../../io/atomic.js';
import { fsReason } from '../../io/errno.js';
import { interruptSignal, progress } from '../../io/progress.js';
import { durationOption, intOption, invalidOption, numberOption, oneOfOption, OPTION_RANGES as R, parse, sizeOption, writeJson, type Command } from '../args.js';
import { EdgetuneError } from '../../core/errors.js';
import { CLASS_NAME_RULE, isClassName } from '../../core/labels.js';
import { encodeJpeg } from '../../image/decode.js';

const usage = `Usage: edgetune capture <source> --class <name> --out <dir> [options]

Save frames from a camera or stream as JPEGs into <dir>/<name>/ (a dataset folder for finetune).

Options:
  --class <name>         class (sub-folder) name, required
  --out <dir>            dataset folder, e.g. dataset/train (required)
  --count <n>            frames to save (default 20)
  --every <time>         time between saved frames: 500ms, 2s, 1m; a bare number is seconds (default 1s; 0 = every frame);
                         media time for files and image sequences (an image a second without ?fps), wall time for cameras
  --countdown <s>        seconds to wait (with a countdown on stderr) before the first frame (default 0)
  --size <WxH>           saved image size, the frame resized to cover it and centre-cropped (default 480x360)
  --fit <mode>           cover (default), contain (letterbox) or fill (stretch)
  --quality <q>          JPEG quality 1..100 (default 92)
  --as-fast-as-possible  read files and test patterns as fast as possible instead of in real time
  --json                 one JSON line per saved file: {"file","seq","ts"}

${SOURCES_USAGE}`;

/**
 * The class folder's name becomes the label finetune trains (the folder rule): the one label rule
 * (core/labels.ts isClassName, which --add-class and the kiosk page apply too), and a folder name.
 */
function checkClassName(name: string): string {
  if (!isClassName(name) || name.includes('\\')) {
    throw invalidOption('class', `${CLASS_NAME_RULE} that names a folder (no "\\")`, name);
  }
  return name;
}

/**
 * Write bytes to `dir/<base>.jpg` without ever overwriting or leaving a partial file (a full disk
 * included: the temp is removed whatever fails); returns the path.
 */
async function saveUnique(dir: string, base: string, bytes: Buffer): Promise<string> {
  const tmp = tempPathFor(path.join(dir, `${base}.jpg`));
  try {
    await writeFile(tmp, bytes);
    for (let i = 0; ; i++) {
      const file = path.join(dir, `${base}${i ? `-${i}` : ''}.jpg`);
      try {
        await link(tmp, file);
        return file;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 1000) throw err;
      }
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Largest side of a saved frame (`--size`), in pixels. */
const MAX_CAPTURE_SIDE = 8192;

export const capture: Command = {
  summary: 'save camera/stream frames as a labelled image dataset (for finetune)',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, {
      class: { type: 'string' },
      out: { type: 'string', path: 'folder' },
      count: { type: 'string' },
      every: { type: 'string' },
      countdown: { type: 'string' },
      size: { type: 'string' },
      fit: { type: 'string' },
      quality: { type: 'string' },
      'as-fast-as-possible': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `capture: expected one source, got ${positionals.length}\n\n${usage}`);
    if (v.class === undefined) throw new EdgetuneError('EARG', `capture: --class is required\n\n${usage}`);
    // an empty --out (`--out "$DATASET"` with the variable unset) is refused by parse (a path option)
    if (v.out === undefined) throw new EdgetuneError('EARG', `capture: --out is required\n\n${usage}`);
    const cls = checkClassName(v.class);
    const count = intOption('count', v.count, 20, ...R.images);
    const every = durationOption('every', v.every, 1000);
    const countdown = numberOption('countdown', v.countdown, 0, 0, 3600);
    const quality = intOption('quality', v.quality, 92, ...R.quality);
    // Each side 1..8192 (8K): the frame buffer (W×H×3 bytes) is allocated per frame, and 100000x100000
    // would ask for 30 GB ("Invalid typed array length" from deep inside the source otherwise).
    const [width, height] = sizeOption('size', v.size ?? '480x360', '480x360', MAX_CAPTURE_SIDE);
    const fit = oneOfOption('fit', v.fit, ['cover', 'contain', 'fill'] as const, 'cover');
    const json = Boolean(v.json);
    const dir = path.resolve(v.out, cls);
    // made and proved writable before the camera opens (a read-only disk is named as such), then the
    // folders this made are removed again until a frame is saved: a capture that saves nothing (no
    // camera, Ctrl-C in the countdown) leaves no empty class folder for finetune to refuse
    const made: string[] = [];
    for (let d = dir; !(await stat(d).then(() => true, () => false)) && d !== path.dirname(d); d = path.dirname(d)) made.push(d);
    await ensureWritableDir(dir);
    for (const d of made) await rmdir(d).catch(() => undefined);

    const say = (m: string) => io.stderr.write(`edgetune capture: ${m}\n`);
    const opts: SourceOptions = {
      width,
      height,
      channels: 3,
      resize: fit,
      crop: 1,
      // Bounded (the source's default, 8 in a row): a missing camera ends with ffmpeg's reason.
      reconnect: {},
      onEvent: (e) => {
        if (e.type !== 'start' && e.type !== 'end') say(e.message);
      },
    };
    if (v['as-fast-as-possible']) opts.realtime = false;
    const source = await createSource(positionals[0]!, opts);
    const stop = interruptSignal();
    const onAbort = () => void source.close();
    stop.signal.addEventListener('abort', onAbort, { once: true });
    const bar = progress(io, `capture ${cls}`);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    let saved = 0;
    try {
      const startAt = performance.now() + countdown * 1000;
      let shownCount = -1;
      let due: number | undefined;
      for await (const frame of source.frames()) {
        if (stop.signal.aborted) break;
        const wait = startAt - performance.now();
        if (wait > 0) {
          const s = Math.ceil(wait / 1000);
          if (s !== shownCount) {
            shownCount = s;
            say(`${s}…`);
          }
          continue;
        }
        // Due times on a fixed grid (no drift); after a stall the grid restarts from now.
        // an image sequence read without ?fps has no pts: its frames are 1 s apart (dir://'s period when
        // paced), not the milliseconds reading them took (`--every 1s` saved 1 of 61 frames)
        const t = frame.pts ?? (source.kind === 'dir' ? frame.seq * 1000 : frame.timestamp);
        if (due !== undefined && t < due) continue;
        due = due === undefined || due + every <= t ? t + every : due + every;
        let file: string;
        try {
          if (saved === 0) await mkdir(dir, { recursive: true });
          file = await saveUnique(dir, `${cls}-${stamp}-${String(saved + 1).padStart(4, '0')}`, await encodeJpeg(frame, quality));
        } catch (err) {
          throw new EdgetuneError('EIO', `cannot save into ${dir}: ${fsReason(err)}`, { subject: dir });
        }
        saved++;
        if (json) writeJson(io, { file, seq: frame.seq, ts: frame.timestamp });
        else io.stdout.write(`${file}\n`);
        bar.update(saved, count);
        if (saved >= count) break;
      }
    } finally {
      stop.signal.removeEventListener('abort', onAbort);
      stop.dispose();
      await source.close();
    }
    bar.done();
    say(`${saved} frame${saved === 1 ? '' : 's'} saved in ${dir}${saved < count ? ` (${stop.signal.aborted ? 'interrupted' : 'the source ended'} before ${count})` : ''}`);
    return saved === count || stop.signal.aborted ? 0 : 1;
  },
};
