// The kiosk page: fetches the served model and its description (/api/config), opens it with
// provider fallback in the inference worker (./engine.ts → ./ort-worker.ts), classifies the camera
// (or a photo) live with smoothed top-k (runtime/stream/smoothing.ts LabelSmoother, the watch
// pipeline's EMA; a multilabel model's top line lists every label over the threshold, classify's rule), lists the saved models, and hands teach mode (./teach-ui.ts: classes, recording,
// in-page training, import/export) what it needs. Pixels go canvas → HwcImage (./pixels.ts) →
// runtime/image/preprocess.ts toTensor → session → runtime/classify/postprocess.ts, the same modules
// the Node CLI uses. URL options: ?ep=webgpu,wasm (provider order), ?threads=N (wasm threads),
// ?camera=off. Served by a server that teaches (`watch --teach`: GET /teach answers), teach mode works
// against its API (./teach-server.ts) instead of training in the page.

import { parseKioskConfig, type KioskConfig } from '../config.js';
import { classScoresProblem, type ModelCard, type ModelTask, type OpenSetSpec } from '../../core/model-card.js';
import { cardFromBytes } from '../../classify/describe.js';
import { multilabelText, readOutput, toProbabilities, type PostprocessSpec, type Prediction } from '../../classify/postprocess.js';
import { toTensor, type PreprocessSpec } from '../../image/preprocess.js';
import { asFloat32 } from '../../core/tensor.js';
import { configureRuntime, openSession, parseOrder, PROVIDER_TITLES, ProviderError, type WebProvider, type WebSession } from './engine.js';
import { decodeBlob, toModelImage } from './pixels.js';
import { Store } from './store.js';
import { renderClasses, renderModels, wireTeach } from './teach-ui.js';
import { discoverTeachApi, wireServerTeach } from './teach-server.js';
import { FINETUNE_DEFAULTS } from '../../train/finetune.js';
import { messageOf } from '../../core/errors.js';
import { LabelSmoother } from '../../stream/smoothing.js';

/** The live view shows the smoothed top-k, not a held label: the smoother's label rule runs with watch's defaults, unused. */
const LIVE_THRESHOLD = 0.5;
const LIVE_HYSTERESIS = 0.1;
import { $, h, nextFrame, showError, sleep } from './dom.js';

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
  /** The model's open-set calibration (finetune and this page's export write one): its `unknown_score` output and threshold. */
  openSet?: OpenSetSpec;
  /** The card's task (absent: classification); a multilabel model's top line lists every label over the threshold. */
  task?: ModelTask;
}

interface LiveModel extends ModelDesc {
  session: WebSession;
  input: string;
  output: string;
  /** The unknown-score output when the model has one. */
  unknownOutput?: string;
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
    ...(card.openSet ? { openSet: card.openSet } : {}),
    ...(card.task ? { task: card.task } : {}),
  };
}

/** The card of a model edgetune exported (its `edgetune.model` metadata says labels and preprocessing). */
function describeExported(key: string, name: string, bytes: Uint8Array): ModelDesc {
  const { card, embedded } = cardFromBytes(bytes, { id: name });
  if (!embedded) throw new Error(`${name}: no "edgetune.model" metadata (labels and preprocessing); export models with edgetune finetune or this kiosk`);
  // as `edgetune kiosk --model` refuses one (runtime/kiosk/server.ts): its values would show as class scores
  const problem = classScoresProblem(card.task, name, 'the kiosk page shows');
  if (problem) throw new Error(problem);
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
/** The live view's EMA over probabilities: the stream's LabelSmoother (runtime/stream/smoothing.ts), its weight the Smoothing slider. */
let smoother: LabelSmoother | undefined;
let frames = 0;
let stream: MediaStream | undefined;
/** Teach mode runs against the server's teach API (watch --teach) rather than in the page. */
let serverTeach = false;

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
  const unknownOutput = desc.openSet && session.outputNames.includes(desc.openSet.output) ? desc.openSet.output : undefined;
  return { ...desc, session, input, output, ...(unknownOutput ? { unknownOutput } : {}) };
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
    smoother?.reset();
    unknownEma = undefined;
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

/** Probabilities of one image, and the unknown score of a model with an open-set calibration. */
async function classify(source: CanvasImageSource, m: LiveModel): Promise<{ probs: Float32Array; unknown?: number }> {
  const img = toModelImage(source, m.spec);
  const run = m.session.run({ [m.input]: toTensor([img], m.spec) }, m.unknownOutput ? [m.output, m.unknownOutput] : [m.output]);
  inflight = run;
  const res = await run;
  const row = asFloat32(res[m.output]!);
  const unknown = m.unknownOutput ? asFloat32(res[m.unknownOutput]!)[0] : undefined;
  return { probs: toProbabilities(row.slice(0, row.length), m.post.kind, m.task).slice(), ...(unknown !== undefined ? { unknown } : {}) };
}

/** EMA of the live unknown score (the smoothing slider's weight), reset with the smoother. */
let unknownEma: number | undefined;

/** The top-1 line says `unknown (nearest: daisy 61%)` when the model's unknown score is above its threshold. */
function showUnknown(m: LiveModel, score: number | undefined, top: Prediction[]): void {
  const t = $('top1');
  t.dataset.unknownScore = score === undefined ? '' : score.toFixed(4);
  if (score === undefined || !m.openSet || !(score > m.openSet.threshold) || !top[0]) return;
  t.textContent = `unknown (nearest: ${top[0].label} ${(top[0].score * 100).toFixed(0)}%)`;
  t.dataset.label = 'unknown';
  delete t.dataset.labels; // the labels of the reading it replaces are not shown any more
}

/**
 * Show one probability row (smoothed, or a photo's) by the model's task (classify/postprocess.ts
 * readOutput, the rule classify and watch use): the top-k list and the top line, which for a multilabel
 * model lists every label over the threshold (`data-labels`: their names as a JSON array, since a name may hold a comma). Returns the top-k.
 */
function renderReading(probs: Float32Array, m: LiveModel): Prediction[] {
  const reading = readOutput(probs, m.task, cfg.topK, m.post);
  if (reading.task === 'regression') return []; // refused when the model is described (classScoresProblem)
  renderPredictions(reading.top);
  if (reading.task === 'multilabel') {
    const t = $('top1');
    t.textContent = multilabelText(reading.labels, 0);
    t.dataset.label = reading.labels[0]?.label ?? '';
    t.dataset.labels = JSON.stringify(reading.labels.map((l) => l.label));
  } else delete $('top1').dataset.labels;
  return reading.top;
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
      const r = await classify(v, m);
      if (m !== live) continue;
      // the slider is the weight of the history (watch's --smooth); moving it starts a fresh average
      const weight = Number($<HTMLInputElement>('smoothing').value);
      if (smoother?.weight !== weight) {
        smoother = new LabelSmoother(weight, LIVE_THRESHOLD, LIVE_HYSTERESIS);
        unknownEma = undefined;
      }
      const { smoothed } = smoother.update(r.probs);
      if (r.unknown !== undefined) unknownEma = unknownEma === undefined ? r.unknown : weight * unknownEma + (1 - weight) * r.unknown;
      if (!photoMode) {
        const top = renderReading(smoothed, m);
        showUnknown(m, r.unknown !== undefined ? unknownEma : undefined, top);
      }
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
  const r = await classify(bmp, live);
  bmp.close();
  const top = renderReading(r.probs, live);
  showUnknown(live, r.unknown, top);
  $('top1').dataset.source = file.name;
}

function backToCamera(): void {
  photoMode = false;
  smoother?.reset();
  unknownEma = undefined;
  $<HTMLImageElement>('photo').hidden = true;
  video().hidden = false;
  $('back-to-camera').hidden = true;
  delete $('top1').dataset.source;
}

// ---------------------------------------------------------------------------------------------------
// Wiring

function setTab(which: 'live' | 'teach'): void {
  teachTab = which === 'teach';
  $('top1-overlay').hidden = teachTab;
  $('view-live').hidden = which !== 'live';
  $('view-teach').hidden = which !== 'teach' || serverTeach;
  $('view-teach-server').hidden = which !== 'teach' || !serverTeach;
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
  wireTeach({
    store: () => store,
    cfg: () => cfg,
    backbone: () => backbone,
    order: () => order,
    stream: () => stream,
    video,
    liveKey: () => live?.key,
    async pauseLive() {
      paused = true;
      await inflight.catch(() => undefined);
      return () => {
        paused = false;
      };
    },
    useModel,
    setTab,
    describeExported,
  });
}

/** The served model's description (relative: the page may be served under a prefix, e.g. watch's /kiosk/). */
async function fetchConfig(): Promise<KioskConfig> {
  const res = await fetch('api/config', { cache: 'no-store' });
  if (!res.ok) throw new Error(`api/config: HTTP ${res.status}`);
  return parseKioskConfig(await res.json());
}

/** After the server swapped a new model in (a training): its description and bytes again, into the live view. */
async function reloadServed(): Promise<void> {
  cfg = await fetchConfig();
  backbone = await fetchBytes(cfg.model.url);
  await renderModels();
  await useModel('base');
}

async function main(): Promise<void> {
  wire();
  const params = new URLSearchParams(location.search);
  document.body.dataset.state = 'loading';
  try {
    cfg = await fetchConfig();
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
  const teachApi = await discoverTeachApi();
  if (teachApi) {
    serverTeach = true;
    await wireServerTeach({ stream: () => stream, video, reloadServed }, teachApi);
  } else await renderClasses();
  document.body.dataset.state = 'ready';
  if (params.get('camera') !== 'off') void startCamera();
  void liveLoop();
}

void main();
