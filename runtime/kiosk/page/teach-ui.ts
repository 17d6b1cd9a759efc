// The kiosk page's teach mode: the class cards (hold-to-record from the camera, uploads, clear,
// delete), training in the page (./teach.ts drives runtime/train/finetune.ts; ./results.ts shows the
// result), the saved models list (use, export, delete) and ONNX import. The live view (./app.ts) lends
// it what it needs through a TeachHost: the store, the served model and backbone, the provider order,
// the camera, pausing live inference while training, and switching the live model.

import type { KioskConfig } from '../config.js';
import { messageOf } from '../../core/errors.js';
import { classNameProblem } from '../../core/labels.js';
import { openSession, type WebProvider } from './engine.js';
import { sampleBlob } from './pixels.js';
import { addedLine, classCard, holdToRecord, readPicked, sampleWhileHeld } from './class-card.js';
import { newId, type ClassRecord, type ModelRecord, type SampleRecord, type Store } from './store.js';
import { trainInPage, type TrainProgress } from './teach.js';
import { $, h, showError } from './dom.js';
import { exportModel, showResult } from './results.js';

/** What teach mode borrows from the live view. */
export interface TeachHost {
  /** IndexedDB store; undefined when the browser refused it (private mode). */
  store(): Store | undefined;
  cfg(): KioskConfig;
  /** The served model's bytes (the backbone the page trains on). */
  backbone(): Uint8Array;
  order(): WebProvider[];
  /** The camera stream, when one is open. */
  stream(): MediaStream | undefined;
  video(): HTMLVideoElement;
  /** The key of the model the live view runs ('base' or a saved model's id). */
  liveKey(): string | undefined;
  /** Pause live inference; resolves once the frame in flight is done, with the function that resumes it. */
  pauseLive(): Promise<() => void>;
  useModel(key: string): Promise<void>;
  setTab(which: 'live' | 'teach'): void;
  describeExported(key: string, name: string, bytes: Uint8Array): { labels: string[] };
}

let host: TeachHost;
let recordingClass: string | undefined;
let lastTrained: ModelRecord | undefined;

export async function renderClasses(): Promise<void> {
  const store = host.store();
  if (!store) return;
  const list = $('classes');
  const classes = await store.classes();
  const cards = await Promise.all(
    classes.map(async (c) => {
      const samples = await store!.samples(c.id);
      const clear = h('button', { class: 'clear', text: 'Clear' });
      const del = h('button', { class: 'delete', text: '✕', title: `delete class ${c.name}`, 'aria-label': `delete class ${c.name}` });
      const thumbs = h('div', { class: 'thumbs' });
      for (const s of samples.slice(-10)) {
        const img = h('img', { alt: '' });
        img.src = URL.createObjectURL(s.blob);
        img.onload = () => URL.revokeObjectURL(img.src);
        thumbs.append(img);
      }
      const count = `${samples.length} sample${samples.length === 1 ? '' : 's'}`;
      const { card, record } = classCard({ name: c.name, count: samples.length, countText: count, accept: 'image/*', onPick: (files) => void uploadFiles(c, files).catch((err) => showError(`${c.name}: the photos were not stored: ${messageOf(err)}`)), lead: [del], actions: [clear], below: [thumbs] });
      holdToRecord(record, {
        camera: () => Boolean(host.stream()),
        noCamera: 'no camera: upload images instead',
        start() {
          recordingClass = c.id;
          $('rec-indicator').hidden = false;
          // pressed again while the last loop still stores its batch: that loop goes on, no second one
          if (looping.has(c.id)) return;
          void recordLoop(c.id, card)
            .catch((err) => showError(`recording failed: ${messageOf(err)}`))
            .then(renderClasses);
        },
        stop() {
          if (recordingClass === c.id) {
            recordingClass = undefined;
            $('rec-indicator').hidden = true;
          }
        },
      });
      clear.addEventListener('click', () => void store.clearSamples(c.id).then(renderClasses));
      del.addEventListener('click', () => {
        if (confirm(`Delete class "${c.name}" and its ${samples.length} samples?`)) void store.deleteClass(c.id).then(renderClasses);
      });
      return card;
    }),
  );
  list.replaceChildren(...cards);
}

/** The classes whose recording loop is still running (it ends after its last batch is stored). */
const looping = new Set<string>();

async function recordLoop(classId: string, card: HTMLElement): Promise<void> {
  looping.add(classId);
  try {
    await recordInto(classId, card);
  } finally {
    looping.delete(classId);
  }
}

async function recordInto(classId: string, card: HTMLElement): Promise<void> {
  const store = host.store()!;
  const batch: SampleRecord[] = [];
  let n = Number(card.dataset.count ?? 0);
  const count = card.querySelector('.count');
  await sampleWhileHeld({
    held: () => recordingClass === classId,
    video: () => host.video(),
    everyMs: 150,
    async onSample(s) {
      batch.push({ classId, blob: s.blob, width: s.width, height: s.height, source: 'camera', created: Date.now() });
      n++;
      if (count) count.textContent = `${n} sample${n === 1 ? '' : 's'}`;
      $('rec-indicator').textContent = `● REC ${card.dataset.class ?? ''} · ${n}`;
      if (batch.length >= 5) await store.addSamples(batch.splice(0));
    },
  });
  await store.addSamples(batch);
  card.dataset.count = String(n);
}

async function uploadFiles(c: ClassRecord, files: File[]): Promise<void> {
  const store = host.store()!;
  const records: SampleRecord[] = [];
  const { added, skipped } = await readPicked(files, async (f, bitmap) => {
    const s = await sampleBlob(bitmap);
    records.push({ classId: c.id, blob: s.blob, width: s.width, height: s.height, source: 'upload', name: f.name, created: Date.now() });
  });
  await store.addSamples(records);
  $('train-status').textContent = addedLine(c.name, added, 'image', skipped);
  await renderClasses();
}

async function addClass(): Promise<void> {
  const input = $<HTMLInputElement>('class-name');
  const name = input.value.trim();
  const store = host.store();
  if (!store) return;
  const problem = classNameProblem(name);
  if (problem) {
    showError(problem);
    return;
  }
  const existing = await store.classes();
  if (existing.some((c) => c.name.toLowerCase() === name.toLowerCase())) {
    showError(`class "${name}" already exists`);
    return;
  }
  showError(undefined);
  await store.putClass({ id: newId('class'), name, created: Date.now() });
  input.value = '';
  await renderClasses();
}

async function train(): Promise<void> {
  const store = host.store();
  if (!store) return;
  const classes = await store.classes();
  const data: { name: string; samples: SampleRecord[] }[] = [];
  for (const c of classes) data.push({ name: c.name, samples: await store.samples(c.id) });
  const usable = data.filter((d) => d.samples.length > 0);
  const status = $('train-status');
  if (usable.length < 2 || usable.some((d) => d.samples.length < 2)) {
    status.textContent = 'Training needs at least two classes with two or more samples each.';
    return;
  }
  const btn = $<HTMLButtonElement>('train');
  const bar = $<HTMLProgressElement>('train-progress');
  btn.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  $('train-result').hidden = true;
  $('train').scrollIntoView({ block: 'nearest' });
  document.body.dataset.training = 'running';
  const resume = await host.pauseLive(); // training uses the CPU; the frame in flight finishes first
  const abort = new AbortController();
  const cancel = $<HTMLButtonElement>('train-cancel');
  const onCancel = () => abort.abort(new Error('training cancelled'));
  cancel.hidden = false;
  cancel.addEventListener('click', onCancel, { once: true });
  try {
    const out = await trainInPage({
      signal: abort.signal,
      backbone: host.backbone(),
      model: host.cfg().model,
      classes: usable.map((d) => ({ name: d.name, samples: d.samples.map((s) => s.blob) })),
      augment: $<HTMLSelectElement>('augment').value,
      head: $<HTMLSelectElement>('head-kind').value as 'auto' | 'linear' | 'mlp' | 'prototype',
      valSplit: Number($<HTMLSelectElement>('val-split').value),
      unfreeze: Number($<HTMLSelectElement>('unfreeze').value),
      ...($<HTMLInputElement>('keep-unfrozen').checked ? { phase2: { alwaysKeep: true } } : {}),
      order: host.order(),
      onProgress(p: TrainProgress) {
        bar.value = p.total ? p.done / p.total : 0;
        status.textContent = p.message;
      },
    });
    const rec: ModelRecord = {
      id: newId('model'),
      name: `${usable.map((d) => d.name).join(' / ')} (${new Date().toLocaleTimeString()})`,
      created: Date.now(),
      backbone: host.cfg().model.id,
      labels: out.labels,
      onnx: out.onnx,
      resume: out.resume,
      metrics: out.metrics,
    };
    await store.putModel(rec);
    lastTrained = rec;
    showResult(rec);
    $('train-result').scrollIntoView({ block: 'nearest' });
    status.textContent = `trained on ${out.provider}: ${out.metrics.trainCount} training + ${out.metrics.valCount} validation images`;
    await renderModels();
    document.body.dataset.training = 'done';
  } catch (err) {
    status.textContent = abort.signal.aborted ? 'training cancelled' : `training failed: ${messageOf(err)}`;
    document.body.dataset.training = abort.signal.aborted ? 'cancelled' : 'failed';
  } finally {
    cancel.hidden = true;
    cancel.removeEventListener('click', onCancel);
    btn.disabled = false;
    bar.hidden = true;
    resume();
  }
}

export async function renderModels(): Promise<void> {
  const store = host.store();
  const cfg = host.cfg();
  const sel = $<HTMLSelectElement>('model-select');
  const ul = $('models');
  const models = store ? await store.models() : [];
  const cur = sel.value || host.liveKey() || 'base';
  sel.replaceChildren(h('option', { value: 'base', text: cfg.model.id }), ...models.map((m) => h('option', { value: m.id, text: m.name })));
  sel.value = models.some((m) => m.id === cur) || cur === 'base' ? cur : 'base';
  ul.replaceChildren(
    ...models.map((m) => {
      const use = h('button', { text: 'Use' });
      const exp = h('button', { text: 'Export' });
      const del = h('button', { text: 'Delete' });
      use.addEventListener('click', () => void host.useModel(m.id).catch((e) => showError(messageOf(e))));
      exp.addEventListener('click', () => exportModel(m));
      del.addEventListener('click', () => {
        if (!confirm(`Delete model "${m.name}"?`)) return;
        void (async () => {
          if (host.liveKey() === m.id) await host.useModel('base');
          await store!.deleteModel(m.id);
          await renderModels();
        })();
      });
      const acc = m.metrics?.valAccuracy != null ? ` · val ${(m.metrics.valAccuracy * 100).toFixed(0)}%` : '';
      return h('li', { 'data-model': m.id }, h('span', { class: 'name', text: `${m.name}${acc}` }), use, exp, del);
    }),
  );
}

async function importModel(file: File): Promise<void> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const desc = host.describeExported('import', file.name, bytes);
  // prove it opens before saving it
  const s = await openSession(bytes, host.order());
  await s.dispose();
  const rec: ModelRecord = { id: newId('model'), name: file.name.replace(/\.onnx$/i, ''), created: Date.now(), backbone: 'imported', labels: desc.labels, onnx: bytes };
  await host.store()?.putModel(rec);
  await renderModels();
  await host.useModel(rec.id);
  $('train-status').textContent = `imported ${file.name}: ${desc.labels.length} classes (${desc.labels.slice(0, 6).join(', ')}${desc.labels.length > 6 ? ', …' : ''})`;
}

/** Wire teach mode's controls to `h` (once, at start-up). */
export function wireTeach(h0: TeachHost): void {
  host = h0;
  $('add-class').addEventListener('click', () => void addClass());
  $('class-name').addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') void addClass();
  });
  $('train').addEventListener('click', () => void train());
  $('use-model').addEventListener('click', () => {
    if (lastTrained) void host.useModel(lastTrained.id).then(() => host.setTab('live')).catch((e) => showError(messageOf(e)));
  });
  $('export-model').addEventListener('click', () => {
    if (lastTrained) exportModel(lastTrained);
  });
  $<HTMLInputElement>('import-model').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const f = input.files?.[0];
    if (f) {
      showError(undefined);
      void importModel(f)
        .catch((err) => showError(messageOf(err).startsWith(f.name) ? messageOf(err) : `${f.name}: ${messageOf(err)}`))
        .finally(() => (input.value = ''));
    }
  });
}
