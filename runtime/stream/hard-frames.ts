// Hard frames of a `watch --teach` folder (DIR/hard/<time>-<seq>.jpg + .json): live frames shown as
// unknown or below the threshold, kept with their scores (at most N, oldest dropped) so an operator can
// label them into examples. teach.ts decides when a frame is kept and serves them over HTTP.

import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { encodeJpeg } from '../image/decode.js';
import { writeAtomic } from '../io/atomic.js';
import type { StreamResult } from './pipeline.js';

/** A hard frame's file name: `<ts, 13 digits>-<seq>.jpg`. */
const HARD_FILE = /^\d{13}-\d+\.jpg$/;

/** A kept hard frame: its file under DIR/hard/ and the scores it had. */
export interface HardFrame {
  file: string;
  seq: number;
  ts: number;
  unknown: boolean;
  /** The smoothed label shown for it and its smoothed probability. */
  smoothed: { label: string; score: number };
  /** A calibrated model's smoothed unknown score (higher = less like anything taught). */
  unknownScore?: number;
  /** The frame's own top-k. */
  top: { label: string; score: number }[];
  model: string;
}

/**
 * Keep `r`'s frame in `hardDir` (JPEG quality 90, and its scores beside it, each written atomically:
 * the scores first, so a listed frame always has them), then drop the oldest beyond `keep`.
 * `unknown`: whether it was shown as unknown. Errors: the writes' (a full disk), as thrown.
 */
export async function keepHardFrame(hardDir: string, r: StreamResult, unknown: boolean, keep: number): Promise<HardFrame> {
  const name = `${String(r.ts).padStart(13, '0')}-${r.seq}`;
  const smoothed = r.smoothed;
  const info: HardFrame = { file: `${name}.jpg`, seq: r.seq, ts: r.ts, unknown, smoothed: { label: smoothed.label, score: smoothed.score }, top: r.top.map((t) => ({ label: t.label, score: t.score })), model: r.model };
  if (typeof smoothed.unknownScore === 'number') info.unknownScore = smoothed.unknownScore;
  await writeAtomic(path.join(hardDir, `${name}.json`), JSON.stringify(info) + '\n');
  await writeAtomic(path.join(hardDir, `${name}.jpg`), await encodeJpeg(r.frame, 90));
  const files = (await readdir(hardDir)).filter((f) => HARD_FILE.test(f)).sort();
  for (const f of files.slice(0, Math.max(0, files.length - keep))) await removeHardFrame(hardDir, f);
  return info;
}

/** The hard frames kept in `hardDir`, newest first; a frame dropped while listing is left out. */
export async function listHardFrames(hardDir: string): Promise<HardFrame[]> {
  const out: HardFrame[] = [];
  for (const f of (await readdir(hardDir)).filter((x) => HARD_FILE.test(x)).sort().reverse()) {
    try {
      out.push(JSON.parse(await readFile(path.join(hardDir, f.replace(/\.jpg$/, '.json')), 'utf8')) as HardFrame);
    } catch (err) {
      // scores are written before the frame, so missing scores mean the frame was just dropped (only the newest are kept)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      out.push({ file: f, seq: -1, ts: Number(f.slice(0, 13)), unknown: true, smoothed: { label: 'unknown', score: 0 }, top: [], model: '' });
    }
  }
  return out;
}

/** The JPEG bytes of hard frame `file`; undefined when the name is not a hard frame's or it is gone (read, not checked then read: a newer frame may drop it in between). */
export async function readHardFrame(hardDir: string, file: string): Promise<Buffer | undefined> {
  return HARD_FILE.test(file) ? await readFile(path.join(hardDir, file)).catch(() => undefined) : undefined;
}

/** Remove hard frame `file` and its scores (missing files are fine). */
export async function removeHardFrame(hardDir: string, file: string): Promise<void> {
  await rm(path.join(hardDir, file), { force: true });
  await rm(path.join(hardDir, file.replace(/\.jpg$/, '.json')), { force: true });
}
