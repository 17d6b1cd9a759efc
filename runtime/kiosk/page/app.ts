// The kiosk page: fetches the served model and its description (/api/config), opens it with
// provider fallback in the inference worker (./engine.ts → ./ort-worker.ts), classifies the
// camera live with EMA-smoothed top-k, and runs teach mode — classes, hold-to-record and uploaded
// samples, in-page head training (./teach.ts, driving runtime/train/finetune.ts; results.ts shows the result), switching the live view
// to the new model, IndexedDB persistence, ONNX export/import. Pixels go canvas → HwcImage
// (./pixels.ts) → runtime/image/preprocess.ts toTensor → session → runtime/classify/postprocess.ts, the same
// modules the Node CLI uses. URL options: ?ep=webgpu,wasm (provider order), ?threads=N (wasm
// threads), ?camera=off. Over ~500 lines: it is the page's DOM wiring (live view, teach mode, model
// list, import/export), one module per page; the logic it drives lives in its own modules (engine,
// pixels, store, teach, dom, results, and the shared runtime/ fine-tune, card and postprocess modules).

import { parseKioskConfig, type KioskConfig } from '../config.js';
import type { ModelCard } from '../../core/model-card.js';
import { cardFromBytes } from '../../classify/describe.js';
import { toProbabilities, topK, type PostprocessSpec, type Prediction } from '../../classify/postprocess.js';
import { toTensor, type PreprocessSpec } from '../../image/preprocess.js';
import { asFloat32 } from '../../core/tensor.js';
import { configureRuntime, openSession, parseOrder, PROVIDER_TITLES, ProviderError, type WebProvider, type WebSession } from './engine.js';
import { decodeBlob, sampleBlob, toModelImage } from './pixels.js';
import { newId, Store, type ClassRecord, type ModelRecord, type SampleRecord } from './store.js';
import { trainInPage, type TrainProgress } from './teach.js';
import { FINETUNE_DEFAULTS } from '../../train/finetune.js';
import { messageOf } from '../../core/errors.js';
import { $, h, nextFrame, showError, sleep } from './dom.js';
import { exportModel, showResult } from './results.js';

// ---------------------------------------------------------------------------------------------------
// Models the live view can run

interface ModelDesc {
  /** 'base' for the served model, else the saved model's id. */
  key: string;
  name: string;
  labels: string[];
  post: PostprocessSpec;
  spec: PreprocessSpec;
  inputName?: string;
  outputName?: string;
}

interface LiveModel extends ModelDesc {
  session: WebSession;
  input: string;
  output: string;
}

/** What the live view needs of a model card. */
function descOf(key: string, name: string, card: ModelCard): ModelDesc {
  return {
    key,
    name,
    labels: card.labels,
    post: { kind: card.outputKind, labelOffset: card.labelOffset, labels: card.labels },
    spec: card.preprocess,
    inputName: card.inputName,
    outputName: card.outputName,
  };
}

/** The card of a model edgetune exported (its `edgetune.model` metadata says labels and preprocessing). */
function describeExported(key: string, name: string, bytes: Uint8Array): ModelDesc {
  const { card, embedded } = cardFromBytes(bytes, { id: name });
  if (!embedded) throw new Error(`${name}: no "edgetune.model" metadata (labels and preprocessing); export models with edgetune finetune or this kiosk`);
  return descOf(key, name, card);
}

// ---------------------------------------------------------------------------------------------------
// State

let cfg: KioskConfig;
let order: WebProvider[];
let backbone: Uint8Array;
let store: Store | undefined;
let live: LiveModel | undefined;
let switching: Promise<void> | undefined;
let inflight: Promise<unknown> = Promise.resolve();
/** Live inference is paused while training uses the CPU, or while a photo is shown. */
let paused = false;
let photoMode = false;
/** The Teach tab shows the camera for recording; live inference pauses there to leave the CPU to teaching. */
let teachTab = false;
let smoothed: Float32Array | undefined;
let frames = 0;
let recordingClass: string | undefined;
let lastTrained: ModelRecord | undefined;
let stream: MediaStream | undefined;

const video = () => $<HTMLVideoElement>('video');

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function openLive(desc: ModelDesc, bytes: Uint8Array): Promise<LiveModel> {
  const session = await openSession(bytes, order);
  const input = desc.inputName && session.inputNames.includes(desc.inputName) ? desc.inputName : session.inputNames[0]!;
  const output = desc.outputName && session.outputNames.includes(desc.outputName) ? desc.outputName : session.outputNames[0]!;
  return { ...desc, session, input, output };
}

function showProvider(m: LiveModel): void {
  const p = $('provider');
  p.textContent = PROVIDER_TITLES[m.session.provider];
  p.dataset.provider = m.session.provider;
  const note = $('provider-note');
  note.textContent = m.session.skipped.length
    ? m.session.skipped.map((s) => `${s} → falling back`).join('\n') + `\nusing ${m.session.provider}`
    : `running on ${m.session.provider} (${order.join(' → ')})`;
  $('model-name').textContent = m.name;
  const s = m.spec;
  const rows: [string, string][] = [
    ['classes', `${m.labels.length}${m.labels.length <= 6 ? ` (${m.labels.join(', ')})` : ''}`],
    ['input', `${s.width}×${s.height} ${s.layout} ${s.dtype}, ${s.colorOrder}, ${s.resize}${s.resize === 'cover' && s.crop < 1 ? ` crop ${s.crop}` : ''}`],
    ['provider', `${m.session.provider} (order ${order.join(' → ')})`],
  ];
  $('model-info').replaceChildren(...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]));
}

/** Switch the live view to another model; the old session is released after its last frame. */
async function switchTo(desc: ModelDesc, bytes: Uint8Array): Promise<void> {
  const task = (async () => {
    const next = await openLive(desc, bytes);
    const old = live;
    live = next;
    smoothed = undefined;
    showProvider(next);
    $<HTMLSelectElement>('model-select').value = desc.key;
    try {
      localStorage.setItem('edgetune.kiosk.model', desc.key);
    } catch {
      /* private mode */
    }
    if (old) {
      await inflight.catch(() => undefined);
      await old.session.dispose();
    }
  })();
  switching = task;
  try {
    await task;
  } finally {
    if (switching === task) switching = undefined;
  }
}

function baseDesc(): ModelDesc {
  return descOf('base', cfg.model.id, cfg.model);
}

async function useModel(key: string): Promise<void> {
  if (key === 'base') return switchTo(baseDesc(), backbone);
  const rec = await store?.model(key);
  if (!rec) throw new Error(`saved model ${key} not found`);
  return switchTo(describeExported(rec.id, rec.name, rec.onnx), rec.onnx);
}

// ---------------------------------------------------------------------------------------------------
// Live classification

async function classify(source: CanvasImageSource, m: LiveModel): Promise<Float32Array> {
  const img = toModelImage(source, m.spec);
  const run = m.session.run({ [m.input]: toTensor([img], m.spec) }, [m.output]);
  inflight = run;
  const res = await run;
  const row = asFloat32(res[m.output]!);
  return toProbabilities(row.slice(0, row.length), m.post.kind).slice();
}

function renderPredictions(top: Prediction[]): void {
  const ol = $('predictions');
  ol.replaceChildren(
    ...top.map((p) => {
      const li = h('li', { 'data-label': p.label, 'data-score': p.score.toFixed(4) });
      const bar = h('div', { class: 'bar' });
      bar.style.width = `${(p.score * 100).toFixed(1)}%`;
      li.append(bar, h('span', { class: 'label', text: p.label }), h('span', { class: 'score', text: `${(p.score * 100).toFixed(1)}%` }));
      return li;
    }),
  );
  const t = $('top1');
  t.textContent = top[0] ? `${top[0].label} ${(top[0].score * 100).toFixed(0)}%` : '…';
  t.dataset.label = top[0]?.label ?? '';
}

async function liveLoop(): Promise<void> {
  let last = performance.now();
  let fps = 0;
  for (;;) {
    const v = video();
    const m = live;
    if (paused || photoMode || teachTab || switching || !m || !stream || v.readyState < 2 || !v.videoWidth) {
      await sleep(100);
      last = performance.now();
      continue;
    }
    const t0 = performance.now();
    try {
      const p = await classify(v, m);
      if (m !== live) continue;
      const alpha = 1 - Number($<HTMLInputElement>('smoothing').value);
      if (!smoothed || smoothed.length !== p.length) smoothed = p;
      else for (let i = 0; i < p.length; i++) smoothed[i] = alpha * p[i]! + (1 - alpha) * smoothed[i]!;
      if (!photoMode) renderPredictions(topK(smoothed, cfg.topK, m.post));
      frames++;
      document.body.dataset.frames = String(frames);
      const now = performance.now();
      const inst = 1000 / Math.max(1, now - last);
      fps = fps ? 0.8 * fps + 0.2 * inst : inst;
      last = now;
      $('fps').textContent = `${fps.toFixed(1)} fps`;
      $('latency').textContent = `${(now - t0).toFixed(0)} ms`;
    } catch (err) {
      showError(`inference failed: ${messageOf(err)}`);
      await sleep(1000);
    }
    // yield to the page (touch events, rendering) between frames: inference runs on the main thread
    await nextFrame();
  }
}

// ---------------------------------------------------------------------------------------------------
// Camera

async function startCamera(deviceId?: string): Promise<void> {
  stream?.getTracks().forEach((t) => t.stop());
  stream = undefined;
  if (!navigator.mediaDevices?.getUserMedia) {
    $('provider-note').textContent += '\nno camera API in this browser (needs https or localhost); use "Classify a photo" and uploads';
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId }, width: { ideal: 1280 }, height: { ideal: 720 } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (err) {
    showError(`camera unavailable: ${messageOf(err)}. Photos can still be classified and uploaded for teaching.`);
    return;
  }
  const v = video();
  v.srcObject = stream;
  await v.play().catch(() => undefined);
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  const sel = $<HTMLSelectElement>('camera');
  const current = stream.getVideoTracks()[0]?.getSettings().deviceId;
  sel.replaceChildren(...devices.map((d, i) => h('option', { value: d.deviceId, text: d.label || `camera ${i + 1}` })));
  if (current) sel.value = current;
}

// ---------------------------------------------------------------------------------------------------
// Photo classification (no camera needed)

async function classifyPhoto(file: File): Promise<void> {
  if (!live) return;
  const bmp = await decodeBlob(file, file.name);
  photoMode = true;
  await inflight.catch(() => undefined);
  const img = $<HTMLImageElement>('photo');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  video().hidden = true;
  $('back-to-camera').hidden = false;
  const p = await classify(bmp, live);
  bmp.close();
  const top = topK(p, cfg.topK, live.post);
  renderPredictions(top);
  $('top1').dataset.source = file.name;
}

function backToCamera(): void {
  photoMode = false;
  smoothed = undefined;
  $<HTMLImageElement>('photo').hidden = true;
  video().hidden = false;
  $('back-to-camera').hidden = true;
  delete $('top1').dataset.source;
}

// ---------------------------------------------------------------------------------------------------
// Teach mode

async function renderClasses(): Promise<void> {
  if (!store) return;
  const list = $('classes');
  const classes = await store.classes();
  const cards = await Promise.all(
    classes.map(async (c) => {
      const samples = await store!.samples(c.id);
      const card = h('div', { class: 'class-card', 'data-class': c.name, 'data-count': String(samples.length) });
      const record = h('button', { class: 'record', text: '● Hold to record' });
      const upload = h('input', { type: 'file', accept: 'image/*', class: 'upload', hidden: '' });
      upload.multiple = true;
      const uploadLabel = h('label', { class: 'button' }, 'Upload', upload);
      const clear = h('button', { class: 'clear', text: 'Clear' });
      const del = h('button', { class: 'delete', text: '✕', title: `delete class ${c.name}`, 'aria-label': `delete class ${c.name}` });
      const thumbs = h('div', { class: 'thumbs' });
      for (const s of samples.slice(-10)) {
        const img = h('img', { alt: '' });
        img.src = URL.createObjectURL(s.blob);
        img.onload = () => URL.revokeObjectURL(img.src);
        thumbs.append(img);
      }
      card.append(
        h('div', { class: 'title' }, h('h3', { text: c.name }), h('span', { class: 'count', text: `${samples.length} sample${samples.length === 1 ? '' : 's'}` })),
        del,
        h('div', { class: 'actions' }, record, uploadLabel, clear),
        thumbs,
      );
      const stop = () => {
        if (recordingClass === c.id) {
          recordingClass = undefined;
          record.classList.remove('active');
          $('rec-indicator').hidden = true;
        }
      };
      record.addEventListener('pointerdown', (e) => {
        e.preventDefault();
        record.setPointerCapture?.(e.pointerId);
        if (!stream) {
          showError('no camera: upload images instead');
          return;
        }
        recordingClass = c.id;
        record.classList.add('active');
        $('rec-indicator').hidden = false;
        void recordLoop(c.id, card)
          .catch((err) => showError(`recording failed: ${messageOf(err)}`))
          .then(renderClasses);
      });
      record.addEventListener('pointerup', stop);
      record.addEventListener('pointercancel', stop);
      record.addEventListener('contextmenu', (e) => e.preventDefault());
      upload.addEventListener('change', () => void uploadFiles(c, [...(upload.files ?? [])]).finally(() => (upload.value = '')));
      clear.addEventListener('click', () => void store!.clearSamples(c.id).then(renderClasses));
      del.addEventListener('click', () => {
        if (confirm(`Delete class "${c.name}" and its ${samples.length} samples?`)) void store!.deleteClass(c.id).then(renderClasses);
      });
      return card;
    }),
  );
  list.replaceChildren(...cards);
}

async function recordLoop(classId: string, card: HTMLElement): Promise<void> {
  const batch: SampleRecord[] = [];
  let n = Number(card.dataset.count ?? 0);
  const count = card.querySelector('.count');
  while (recordingClass === classId) {
    const v = video();
    if (v.readyState >= 2 && v.videoWidth) {
      const s = await sampleBlob(v);
      batch.push({ classId, blob: s.blob, width: s.width, height: s.height, source: 'camera', created: Date.now() });
      n++;
      if (count) count.textContent = `${n} samples`;
      $('rec-indicator').textContent = `● REC ${card.dataset.class ?? ''} · ${n}`;
      if (batch.length >= 5) await store!.addSamples(batch.splice(0));
    }
    await sleep(150);
  }
  await store!.addSamples(batch);
  card.dataset.count = String(n);
}

async function uploadFiles(c: ClassRecord, files: File[]): Promise<void> {
  const status = $('train-status');
  const records: SampleRecord[] = [];
  const bad: string[] = [];
  for (const f of files) {
    try {
      const bmp = await decodeBlob(f, f.name);
      const s = await sampleBlob(bmp);
      bmp.close();
      records.push({ classId: c.id, blob: s.blob, width: s.width, height: s.height, source: 'upload', name: f.name, created: Date.now() });
    } catch (err) {
      bad.push(messageOf(err));
    }
  }
  await store!.addSamples(records);
  status.textContent = `${c.name}: added ${records.length} image${records.length === 1 ? '' : 's'}${bad.length ? `; skipped ${bad.length}:\n${bad.join('\n')}` : ''}`;
  await renderClasses();
}

async function addClass(): Promise<void> {
  const input = $<HTMLInputElement>('class-name');
  const name = input.value.trim();
  if (!store) return;
  if (!name) {
    showError('type a class name first');
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
  paused = true;
  const abort = new AbortController();
  const cancel = $<HTMLButtonElement>('train-cancel');
  const onCancel = () => abort.abort(new Error('training cancelled'));
  cancel.hidden = false;
  cancel.addEventListener('click', onCancel, { once: true });
  await inflight.catch(() => undefined);
  try {
    const out = await trainInPage({
      signal: abort.signal,
      backbone,
      model: cfg.model,
      classes: usable.map((d) => ({ name: d.name, samples: d.samples.map((s) => s.blob) })),
      augment: $<HTMLSelectElement>('augment').value,
      head: $<HTMLSelectElement>('head-kind').value as 'auto' | 'linear' | 'mlp' | 'prototype',
      valSplit: Number($<HTMLSelectElement>('val-split').value),
      unfreeze: Number($<HTMLSelectElement>('unfreeze').value),
      order,
      onProgress(p: TrainProgress) {
        bar.value = p.total ? p.done / p.total : 0;
        status.textContent = p.message;
      },
    });
    const rec: ModelRecord = {
      id: newId('model'),
      name: `${usable.map((d) => d.name).join(' / ')} (${new Date().toLocaleTimeString()})`,
      created: Date.now(),
      backbone: cfg.model.id,
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
    paused = false;
  }
}

async function renderModels(): Promise<void> {
  const sel = $<HTMLSelectElement>('model-select');
  const ul = $('models');
  const models = store ? await store.models() : [];
  const cur = sel.value || live?.key || 'base';
  sel.replaceChildren(h('option', { value: 'base', text: cfg.model.id }), ...models.map((m) => h('option', { value: m.id, text: m.name })));
  sel.value = models.some((m) => m.id === cur) || cur === 'base' ? cur : 'base';
  ul.replaceChildren(
    ...models.map((m) => {
      const use = h('button', { text: 'Use' });
      const exp = h('button', { text: 'Export' });
      const del = h('button', { text: 'Delete' });
      use.addEventListener('click', () => void useModel(m.id).catch((e) => showError(messageOf(e))));
      exp.addEventListener('click', () => exportModel(m));
      del.addEventListener('click', () => {
        if (!confirm(`Delete model "${m.name}"?`)) return;
        void (async () => {
          if (live?.key === m.id) await useModel('base');
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
  const desc = describeExported('import', file.name, bytes);
  // prove it opens before saving it
  const s = await openSession(bytes, order);
  await s.dispose();
  const rec: ModelRecord = { id: newId('model'), name: file.name.replace(/\.onnx$/i, ''), created: Date.now(), backbone: 'imported', labels: desc.labels, onnx: bytes };
  await store?.putModel(rec);
  await renderModels();
  await useModel(rec.id);
  $('train-status').textContent = `imported ${file.name}: ${desc.labels.length} classes (${desc.labels.slice(0, 6).join(', ')}${desc.labels.length > 6 ? ', …' : ''})`;
}

// ---------------------------------------------------------------------------------------------------
// Wiring

function setTab(which: 'live' | 'teach'): void {
  teachTab = which === 'teach';
  $('top1-overlay').hidden = teachTab;
  $('view-live').hidden = which !== 'live';
  $('view-teach').hidden = which !== 'teach';
  for (const t of ['live', 'teach'] as const) {
    const b = $(`tab-${t}`);
    b.classList.toggle('active', t === which);
    b.setAttribute('aria-pressed', String(t === which));
  }
}

function wire(): void {
  // the teach controls start on the fine-tune defaults (runtime/train/finetune.ts, the CLI's too)
  $<HTMLSelectElement>('val-split').value = String(FINETUNE_DEFAULTS.valSplit);
  $<HTMLSelectElement>('augment').value = FINETUNE_DEFAULTS.augment;
  $('tab-live').addEventListener('click', () => setTab('live'));
  $('tab-teach').addEventListener('click', () => setTab('teach'));
  $('camera').addEventListener('change', (e) => void startCamera((e.target as HTMLSelectElement).value || undefined));
  $<HTMLInputElement>('photo-input').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const f = input.files?.[0];
    if (f) void classifyPhoto(f).catch((err) => showError(messageOf(err))).finally(() => (input.value = ''));
  });
  $('back-to-camera').addEventListener('click', backToCamera);
  $('model-select').addEventListener('change', (e) => void useModel((e.target as HTMLSelectElement).value).catch((err) => showError(messageOf(err))));
  $('add-class').addEventListener('click', () => void addClass());
  $('class-name').addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') void addClass();
  });
  $('train').addEventListener('click', () => void train());
  $('use-model').addEventListener('click', () => {
    if (lastTrained) void useModel(lastTrained.id).then(() => setTab('live')).catch((e) => showError(messageOf(e)));
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

async function main(): Promise<void> {
  wire();
  const params = new URLSearchParams(location.search);
  document.body.dataset.state = 'loading';
  try {
    const res = await fetch('/api/config');
    if (!res.ok) throw new Error(`/api/config: HTTP ${res.status}`);
    cfg = parseKioskConfig(await res.json());
    order = parseOrder(params.get('ep') ?? cfg.providers);
    const threads = Number(params.get('threads') ?? 0);
    configureRuntime({ threads: Number.isInteger(threads) && threads > 0 ? threads : undefined });
    $('model-name').textContent = cfg.model.id;
    backbone = await fetchBytes(cfg.model.url);
    try {
      store = await Store.open();
    } catch (err) {
      $('train-status').textContent = messageOf(err);
    }
    await renderModels();
    let key = 'base';
    try {
      key = localStorage.getItem('edgetune.kiosk.model') ?? 'base';
    } catch {
      /* private mode */
    }
    try {
      await useModel(key);
    } catch (err) {
      if (key === 'base') throw err;
      await useModel('base');
    }
  } catch (err) {
    document.body.dataset.state = 'error';
    const msg = err instanceof ProviderError ? err.message : messageOf(err);
    showError(msg);
    $('provider').textContent = 'none';
    if (err instanceof ProviderError) $('provider-note').textContent = err.causes.join('\n');
    return;
  }
  await renderClasses();
  document.body.dataset.state = 'ready';
  if (params.get('camera') !== 'off') void startCamera();
  void liveLoop();
}

void main();
