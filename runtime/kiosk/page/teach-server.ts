// The kiosk page's teach mode against a server that teaches (`edgetune watch … --serve ADDR --teach DIR`,
// whose HTTP API is runtime/stream/teach.ts): found by GET /teach answering, it replaces the in-page
// teach mode (./teach-ui.ts, which stays for kiosks without such a server). Examples go to the server as
// POSTs (recorded from this page's camera, picked from files, or the server's own live frames), training
// runs there (POST /teach/train; its progress polled from GET /teach), hard frames (GET /teach/hard) are
// labelled into examples, a bad example is deleted. Writes carry the token (EDGETUNE_TOKEN) typed here,
// kept in the tab's sessionStorage only. Browser-safe: fetch and the DOM, no Node built-in.

import { messageOf } from '../../core/errors.js';
import { classNameProblem } from '../../core/labels.js';
import { addedLine, classCard, holdToRecord, readPicked, sampleWhileHeld } from './class-card.js';
import { $, h, showError, sleep } from './dom.js';

/** One label of GET /teach. */
export interface ServerLabel {
  label: string;
  count: number;
  files: string[];
  new: boolean;
}

/** GET /teach's answer (the fields the page reads). */
export interface ServerTeachState {
  labels: ServerLabel[];
  /** The classes of the model teaching resumes from. */
  base: string[];
  training: boolean;
  progress: { stage: string; done?: number; total?: number; epoch?: number; epochs?: number; split?: string; seconds?: number } | null;
  last: { path: string; labels: string[]; accuracy: number | null; seconds: number } | null;
}

/** A kept hard frame of GET /teach/hard. */
interface HardFrame {
  file: string;
  smoothed: { label: string; score: number };
  top: { label: string; score: number }[];
}

/** What the server-teach mode borrows from the live view. */
export interface ServerTeachHost {
  /** This page's camera stream, when one is open. */
  stream(): MediaStream | undefined;
  video(): HTMLVideoElement;
  /** Reload the model the server now serves into the live view (after a training swapped it in). */
  reloadServed(): Promise<void>;
}

const TOKEN_KEY = 'edgetune-token';

/** Is the page served by a teaching server? GET /teach answering with its state (labels and base classes) says so. */
export async function discoverTeachApi(): Promise<ServerTeachState | undefined> {
  try {
    const r = await fetch('/teach', { headers: { Accept: 'application/json' } });
    if (!r.ok || !(r.headers.get('content-type') ?? '').startsWith('application/json')) return undefined;
    const j = (await r.json()) as Partial<ServerTeachState>;
    return Array.isArray(j.labels) && Array.isArray(j.base) ? (j as ServerTeachState) : undefined;
  } catch {
    return undefined;
  }
}

let host: ServerTeachHost;
let state: ServerTeachState;
/** Classes added here that have no example on the server yet. */
const pending = new Set<string>();
let recording: string | undefined;

const token = () => $<HTMLInputElement>('st-token').value.trim();
const say = (m: string) => ($('st-status').textContent = m);

/** A write to the teach API with the token; rejects with the server's `error` text. */
async function call<T>(method: string, url: string, body?: Blob): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token()}` };
  if (body) headers['Content-Type'] = body.type || 'application/octet-stream';
  const r = await fetch(url, { method, headers, ...(body ? { body } : {}) });
  const j = (await r.json().catch(() => ({}))) as { error?: string };
  if (!r.ok) throw new Error(r.status === 401 && !token() ? 'type the token (EDGETUNE_TOKEN) first' : (j.error ?? `HTTP ${r.status}`));
  return j as T;
}

const examplesUrl = (label: string, extra = '') => `/teach/examples?label=${encodeURIComponent(label)}${extra}`;

/** Refreshes of the hard frames under way (the panel is aria-busy while any is). */
let hardRefreshes = 0;
/** GET /teach answers asked for, and the newest drawn: an older answer that arrives later is not drawn over a newer one. */
let asked = 0;
let drawn = 0;

/**
 * Fetch GET /teach and re-render the class cards (unless a newer answer was drawn meanwhile: overlapping
 * refreshes may be answered out of order; an example list the operator opened stays open). The hard
 * frames are a snapshot the operator works through: they are fetched again only when `hard` is true (the
 * Refresh button, the first show, the end of a training); other refreshes keep the frames shown, in place, and only update their label choices, so a
 * frame never moves or vanishes between choosing its label and clicking "Add as example".
 */
async function refresh(hard = false): Promise<void> {
  const panel = $('st-hard');
  // set before the first await: a click on Refresh is followed by a busy panel until the new frames show
  // (until the last of overlapping Refreshes is done)
  if (hard && hardRefreshes++ === 0) panel.setAttribute('aria-busy', 'true');
  const asking = ++asked;
  try {
    const r = await fetch('/teach');
    if (!r.ok) throw new Error(`/teach: HTTP ${r.status}`);
    const answer = (await r.json()) as ServerTeachState;
    if (asking > drawn) {
      drawn = asking;
      state = answer;
      for (const l of state.labels) pending.delete(l.label);
      renderClasses();
    }
    if (hard) await loadHard();
    renderHard();
  } finally {
    if (hard && --hardRefreshes === 0) panel.removeAttribute('aria-busy');
  }
}

function renderClasses(): void {
  const byName = new Map(state.labels.map((l) => [l.label, l]));
  // a class's example list the operator opened stays open when its card is drawn again (a refresh)
  const open = new Set([...$('st-classes').querySelectorAll<HTMLElement>('.class-card')].filter((c) => c.querySelector('details.files[open]')).map((c) => c.dataset.class));
  // the model's classes first (more examples of them), then the taught ones, then those added here
  const names = [...new Set([...state.base, ...state.labels.map((l) => l.label), ...pending])];
  $('st-classes').replaceChildren(
    ...names.map((name) => {
      const l = byName.get(name);
      const count = l?.count ?? 0;
      const isNew = !state.base.includes(name);
      const frames = h('button', { class: 'frames', text: 'Server camera ×10', title: "add the server camera's next 10 frames" });
      const files = h('details', { class: 'files' }, h('summary', { text: `${count} example${count === 1 ? '' : 's'}` }));
      files.open = open.has(name);
      for (const f of l?.files ?? []) {
        const del = h('button', { class: 'delete-example', 'data-file': f, text: `✕ ${f}`, title: `delete the example ${f}` });
        del.addEventListener('click', () => void act(() => call('DELETE', `/teach/examples/${encodeURIComponent(name)}/${encodeURIComponent(f)}`), `deleted ${f}`));
        files.append(del);
      }
      const { card, record } = classCard({ name, count, countText: `${count} · ${isNew ? 'new class' : "the model's class"}`, accept: 'image/jpeg,image/png', onPick: (files) => void uploadFiles(name, files), actions: [frames], below: [files] });
      holdToRecord(record, {
        camera: () => Boolean(host.stream()),
        noCamera: "no camera on this page: upload photos, or add the server camera's frames",
        start() {
          // pressed again while the last loop still sends its frame: that loop goes on, no second one
          const running = document.body.dataset.recording === name;
          recording = name;
          if (running) return;
          void recordLoop(name, card).catch((err) => say(`recording failed: ${messageOf(err)}`)).finally(() => void refresh().catch(() => undefined));
        },
        stop() {
          if (recording === name) recording = undefined;
        },
      });
      frames.addEventListener('click', () => {
        say(`adding 10 frames of the server camera to ${name}…`);
        void act(async () => {
          const r = await call<{ added: number; count: number }>('POST', examplesUrl(name, '&frames=10'));
          return `${r.added} server frames added to ${name} (${r.count})`;
        });
      });
      return card;
    }),
  );
}

/** Run a write, say its outcome (or the error), refresh. */
async function act(work: () => Promise<unknown>, done?: string): Promise<void> {
  try {
    const r = await work();
    say(done ?? (typeof r === 'string' ? r : 'done'));
  } catch (err) {
    say(messageOf(err));
  }
  await refresh().catch((err) => say(messageOf(err)));
}

/** While the record button is held: this page's camera, a JPEG every 300 ms, each POSTed as an example. */
async function recordLoop(name: string, card: HTMLElement): Promise<void> {
  let n = 0;
  document.body.dataset.recording = name;
  try {
    await sampleWhileHeld({
      held: () => recording === name,
      video: () => host.video(),
      everyMs: 300,
      async onSample(s) {
        const r = await call<{ count: number }>('POST', examplesUrl(name), s.blob);
        card.dataset.count = String(r.count);
        say(`recording ${name}: ${++n} added (${r.count})`);
      },
    });
  } finally {
    delete document.body.dataset.recording;
  }
}

async function uploadFiles(name: string, files: File[]): Promise<void> {
  // a photo the browser cannot read is named by readPicked, before the upload
  const { added, skipped } = await readPicked(files, (f) => call('POST', examplesUrl(name), f));
  say(addedLine(name, added, 'photo', skipped));
  await refresh().catch(() => undefined);
}

/** The label chosen for each hard frame shown (by file), kept across re-renders. */
const hardChoice = new Map<string, string>();
/** The JPEG of each hard frame shown (by file), fetched once: what is shown is what gets labelled, even after the server dropped it. */
const hardJpeg = new Map<string, { blob: Blob; url: string }>();

/** A hard frame's JPEG, fetched once and kept while it is listed; undefined when the server has already dropped it. */
async function hardFrameJpeg(file: string): Promise<{ blob: Blob; url: string } | undefined> {
  const known = hardJpeg.get(file);
  if (known) return known;
  const r = await fetch(`/teach/hard/${encodeURIComponent(file)}`);
  if (!r.ok) return undefined;
  const blob = await r.blob();
  const got = { blob, url: URL.createObjectURL(blob) };
  hardJpeg.set(file, got);
  return got;
}

/** The hard frames shown (newest first, as GET /teach/hard lists them), each with the JPEG fetched for it. */
let hardShown: { f: HardFrame; jpeg: { blob: Blob; url: string } }[] = [];

/** The load in flight: a second Refresh while one loads waits for it (no two loads racing for the same frames' JPEGs). */
let hardLoading: Promise<void> | undefined;

/** Replace the snapshot of hard frames with the server's list now (one load at a time). */
function loadHard(): Promise<void> {
  hardLoading ??= loadHardNow().finally(() => (hardLoading = undefined));
  return hardLoading;
}

async function loadHardNow(): Promise<void> {
  const r = await fetch('/teach/hard');
  const listed = r.ok ? ((await r.json()) as { frames: HardFrame[] }).frames : [];
  // only frames whose pixels arrived are shown (the server keeps the newest --keep-hard and drops the rest)
  const jpegs = await Promise.all(listed.map((f) => hardFrameJpeg(f.file).catch(() => undefined)));
  hardShown = listed.flatMap((f, i) => (jpegs[i] ? [{ f, jpeg: jpegs[i]! }] : []));
  const shown = new Set(hardShown.map(({ f }) => f.file));
  for (const file of hardChoice.keys()) if (!shown.has(file)) hardChoice.delete(file);
  // the JPEGs of frames no longer shown are let go
  for (const [file, j] of hardJpeg) {
    if (!shown.has(file)) {
      URL.revokeObjectURL(j.url);
      hardJpeg.delete(file);
    }
  }
}

/** Draw the snapshot of hard frames, each with a label choice (the classes known now) and its button. */
function renderHard(): void {
  const names = [...new Set([...state.base, ...state.labels.map((l) => l.label), ...pending])];
  $('st-hard').replaceChildren(
    ...hardShown.map(({ f, jpeg }) => {
      const fig = h('figure', { class: 'hard-frame', 'data-file': f.file });
      const img = h('img', { alt: `hard frame ${f.file}`, src: jpeg.url });
      const top = f.top[0];
      const sel = h('select', { class: 'hard-label', 'aria-label': 'label for this frame' }, ...names.map((n) => h('option', { value: n, text: n })));
      // the operator's choice survives a re-render (new classes added meanwhile)
      const chosen = hardChoice.get(f.file);
      if (chosen && names.includes(chosen)) sel.value = chosen;
      else if (top && names.includes(top.label)) sel.value = top.label;
      sel.addEventListener('change', () => hardChoice.set(f.file, sel.value));
      const add = h('button', { class: 'hard-add', text: 'Add as example' });
      add.addEventListener('click', () => {
        const label = sel.value;
        void act(async () => {
          await labelHard(label, f.file, jpeg.blob);
          // labelled: it leaves the snapshot (the others stay where they are)
          hardShown = hardShown.filter((x) => x.f.file !== f.file);
          hardChoice.delete(f.file);
          hardJpeg.delete(f.file);
          URL.revokeObjectURL(jpeg.url);
        }, `hard frame added to ${label}`);
      });
      fig.append(img, h('figcaption', { text: `${f.smoothed.label}${top ? ` · nearest ${top.label} ${(top.score * 100).toFixed(0)}%` : ''}` }), sel, add);
      return fig;
    }),
  );
  $('st-hard-empty').hidden = hardShown.length > 0;
}

/**
 * Label a hard frame: the server moves its kept file into the examples; when the server has dropped it
 * meanwhile (only the newest --keep-hard frames are kept), the JPEG shown here is sent as the example.
 */
async function labelHard(label: string, file: string, jpeg: Blob): Promise<unknown> {
  try {
    return await call('POST', examplesUrl(label, `&hard=${encodeURIComponent(file)}`));
  } catch (err) {
    if (!messageOf(err).startsWith('no hard frame')) throw err;
    return call('POST', examplesUrl(label), jpeg);
  }
}

function progressText(p: NonNullable<ServerTeachState['progress']>): { text: string; fraction: number } {
  const secs = p.seconds !== undefined ? ` · ${p.seconds.toFixed(0)} s` : '';
  if (p.stage === 'epoch' && p.epochs) return { text: `training: epoch ${p.epoch}/${p.epochs}${secs}`, fraction: (p.epoch ?? 0) / p.epochs };
  if (p.total) return { text: `training: ${p.stage}${p.split ? ` ${p.split}` : ''} ${p.done}/${p.total}${secs}`, fraction: (p.done ?? 0) / p.total };
  return { text: `training: ${p.stage}${secs}`, fraction: 0 };
}

async function train(): Promise<void> {
  const btn = $<HTMLButtonElement>('st-train');
  const bar = $<HTMLProgressElement>('st-progress');
  btn.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  document.body.dataset.training = 'running';
  say('training on the server…');
  let running = true;
  // the server's progress while it trains (GET /teach)
  const poll = (async () => {
    while (running) {
      await sleep(500);
      const t = (await fetch('/teach').then((r) => r.json()).catch(() => undefined)) as ServerTeachState | undefined;
      if (running && t?.training && t.progress) {
        const p = progressText(t.progress);
        say(p.text);
        bar.value = p.fraction;
      }
    }
  })();
  try {
    const r = await call<{ labels: string[]; accuracy: number | null; seconds: number; oldClasses: { accuracy: number | null; serving: number | null } }>('POST', '/teach/train');
    running = false;
    await poll;
    const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(0)}%`);
    say(`serving ${r.labels.join(', ')} · validation ${pct(r.accuracy)} · old classes ${pct(r.oldClasses.accuracy)} (was ${pct(r.oldClasses.serving)}) · ${r.seconds} s`);
    document.body.dataset.training = 'done';
    await host.reloadServed().catch((err) => showError(`the new model could not be loaded here: ${messageOf(err)}`));
  } catch (err) {
    running = false;
    await poll;
    say(`training failed: ${messageOf(err)}`);
    document.body.dataset.training = 'failed';
  } finally {
    btn.disabled = false;
    bar.hidden = true;
    await refresh(true).catch(() => undefined);
  }
}

function addClass(): void {
  const input = $<HTMLInputElement>('st-class-name');
  const name = input.value.trim();
  const problem = classNameProblem(name, { teach: true });
  if (problem) {
    showError(problem);
    return;
  }
  showError(undefined);
  pending.add(name);
  input.value = '';
  renderClasses();
  renderHard();
}

/** Switch teach mode to the server (`first`: GET /teach's answer at discovery); wires the controls once. */
export async function wireServerTeach(h0: ServerTeachHost, first: ServerTeachState): Promise<void> {
  host = h0;
  state = first;
  document.body.dataset.teach = 'server';
  const tok = $<HTMLInputElement>('st-token');
  try {
    tok.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    /* storage refused */
  }
  tok.addEventListener('change', () => {
    try {
      sessionStorage.setItem(TOKEN_KEY, tok.value.trim());
    } catch {
      /* storage refused */
    }
  });
  $('st-add-class').addEventListener('click', addClass);
  $('st-class-name').addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') addClass();
  });
  $('st-train').addEventListener('click', () => void train());
  $('st-refresh').addEventListener('click', () => void refresh(true).catch((err) => say(messageOf(err))));
  renderClasses();
  await loadHard().catch(() => undefined);
  renderHard();
  if (first.training) say('a training is running on the server');
}
