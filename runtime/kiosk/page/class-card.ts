// The class card both teach modes draw (./teach-ui.ts, teaching in the page; ./teach-server.ts, teaching
// through a server's teach API): the card's frame (name, count, the hold-to-record button, the Upload
// picker, then the mode's own buttons and lists), the hold-to-record button's pointer handling, the loop
// that samples the camera while it is held, and reading the photos picked (each decoded here first, so
// a file the browser cannot read is named before it is stored or sent). What each mode does with a
// sample or a photo (IndexedDB, or a POST) stays in that mode. Browser-safe: the DOM only.

import { messageOf } from '../../core/errors.js';
import { h, showError, sleep } from './dom.js';
import { decodeBlob, sampleBlob } from './pixels.js';

/** The parts of a class card a teach mode wires. */
export interface ClassCard {
  /** `div.class-card` with `data-class` (the name) and `data-count`. */
  card: HTMLDivElement;
  /** `button.record`, "● Hold to record". */
  record: HTMLButtonElement;
  /** The hidden `input.upload` (multiple files) inside the "Upload" label; its picks go to `onPick`. */
  upload: HTMLInputElement;
}

/**
 * A class card: a title (the name as `h3`, `countText` in `span.count`), then `lead` (e.g. a delete
 * button), an actions row (record, Upload, then `actions`), then `below` (thumbnails, an example list).
 * `accept`: the picker's file types (an `accept` attribute value). `onPick` gets the files of each pick;
 * the picker is emptied at once, so picking the same files again is a new pick (the browser fires no
 * `change` for a pick equal to the files it still holds).
 */
export function classCard(o: {
  name: string;
  count: number;
  countText: string;
  accept: string;
  onPick(files: File[]): void;
  lead?: Node[];
  actions?: Node[];
  below?: Node[];
}): ClassCard {
  const card = h('div', { class: 'class-card', 'data-class': o.name, 'data-count': String(o.count) });
  const record = h('button', { class: 'record', text: '● Hold to record' });
  const upload = h('input', { type: 'file', accept: o.accept, class: 'upload', hidden: '' });
  upload.multiple = true;
  upload.addEventListener('change', () => {
    const files = [...(upload.files ?? [])];
    upload.value = '';
    if (files.length) o.onPick(files);
  });
  card.append(
    h('div', { class: 'title' }, h('h3', { text: o.name }), h('span', { class: 'count', text: o.countText })),
    ...(o.lead ?? []),
    h('div', { class: 'actions' }, record, h('label', { class: 'button' }, 'Upload', upload), ...(o.actions ?? [])),
    ...(o.below ?? []),
  );
  return { card, record, upload };
}

/**
 * Wire a hold-to-record button: pointerdown starts recording (`start`, the button marked `active`) unless
 * `camera()` says there is no camera (then `noCamera` shows in the error banner) or it is already
 * recording; pointerup and pointercancel stop it (`stop`, the mark removed). The pointer is captured on
 * pointerdown, so a finger or mouse released off the button still ends the recording, and the
 * long-press menu is suppressed.
 */
export function holdToRecord(button: HTMLButtonElement, o: { camera(): boolean; noCamera: string; start(): void; stop(): void }): void {
  button.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    // one recording per button: a second press while the first runs starts no second loop
    if (button.classList.contains('active')) return;
    try {
      button.setPointerCapture(e.pointerId);
    } catch {
      /* a synthetic event without an active pointer: nothing to capture */
    }
    if (!o.camera()) {
      showError(o.noCamera);
      return;
    }
    button.classList.add('active');
    o.start();
  });
  const stop = () => {
    button.classList.remove('active');
    o.stop();
  };
  button.addEventListener('pointerup', stop);
  button.addEventListener('pointercancel', stop);
  button.addEventListener('contextmenu', (e) => e.preventDefault());
}

/** A sample of the camera (./pixels.ts sampleBlob): a JPEG with its size. */
export type CameraSample = Awaited<ReturnType<typeof sampleBlob>>;

/**
 * While `held()`: every `everyMs` ms, when the video has a frame, a sample of it handed to `onSample`
 * (awaited before the next). Resolves once `held()` is false; rejects with `onSample`'s error.
 */
export async function sampleWhileHeld(o: { held(): boolean; video(): HTMLVideoElement; everyMs: number; onSample(s: CameraSample): Promise<void> | void }): Promise<void> {
  while (o.held()) {
    const v = o.video();
    if (v.readyState >= 2 && v.videoWidth) await o.onSample(await sampleBlob(v));
    await sleep(o.everyMs);
  }
}

/**
 * The photos picked in an Upload, one at a time: each decoded by the browser (./pixels.ts decodeBlob,
 * which names a file it cannot read), then handed to `use` with its bitmap (closed afterwards). Resolves
 * with how many `use` took and, for the others, one line each naming the file and the reason.
 */
export async function readPicked(files: readonly File[], use: (f: File, bitmap: ImageBitmap) => Promise<unknown>): Promise<{ added: number; skipped: string[] }> {
  let added = 0;
  const skipped: string[] = [];
  for (const f of files) {
    let bitmap: ImageBitmap;
    try {
      bitmap = await decodeBlob(f, f.name);
    } catch (err) {
      skipped.push(messageOf(err));
      continue;
    }
    try {
      await use(f, bitmap);
      added++;
    } catch (err) {
      skipped.push(`${f.name}: ${messageOf(err)}`);
    } finally {
      bitmap.close();
    }
  }
  return { added, skipped };
}

/** "<class>: added N <noun>s", and "; skipped K:" with one reason a line when some were not. */
export function addedLine(name: string, added: number, noun: string, skipped: readonly string[]): string {
  return `${name}: added ${added} ${noun}${added === 1 ? '' : 's'}${skipped.length ? `; skipped ${skipped.length}:\n${skipped.join('\n')}` : ''}`;
}
