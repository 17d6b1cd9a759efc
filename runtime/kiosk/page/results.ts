// Teach mode's result view: validation accuracy (with its image count and 95% Wilson interval), the one-line detail (counts, head, epochs, phase 2's
// gain, time), the confusion matrix of a trained model's record, and its ONNX download (file name from
// its labels).

import { $, h } from './dom.js';
import type { ModelRecord } from './store.js';
import { intervalText } from '../../core/stats.js';

export function renderConfusion(labels: string[], m: number[][]): void {
  const table = $('confusion');
  const head = h('tr', {}, h('th', { text: 'true ↓ / predicted →' }), ...labels.map((l) => h('th', { text: l })));
  const rows = m.map((row, i) =>
    h('tr', {}, h('th', { text: labels[i]! }), ...row.map((v, j) => h('td', { class: i === j ? 'diag' : v ? 'off' : '', text: String(v) }))),
  );
  table.replaceChildren(head, ...rows);
}

export function showResult(rec: ModelRecord): void {
  const m = rec.metrics;
  $('train-result').hidden = false;
  const acc = $('val-acc');
  if (m?.valAccuracy != null) {
    acc.textContent = `${(m.valAccuracy * 100).toFixed(1)}%`;
    // how few images the figure stands on, and what that allows (9 of 9 is 70–100%, not "100%")
    $('val-ci').textContent = m.valCount ? intervalText(Math.round(m.valAccuracy * m.valCount), m.valCount) : '';
    acc.dataset.value = String(m.valAccuracy);
  } else {
    acc.textContent = 'n/a (no validation split)';
    $('val-ci').textContent = '';
    acc.dataset.value = '';
  }
  $('acc-detail').textContent = m
    ? `${m.valCount} validation / ${m.trainCount} training images · training accuracy ${(m.trainAccuracy * 100).toFixed(1)}% · ${m.head ?? 'linear'} head${m.epochs ? `, ${m.epochs} epochs` : ''}${
        m.phase2 ? ` · phase 2: ${m.phase2.blocks} block(s) unfrozen, ${m.phase2.epochs} epochs, ${(m.phase2.accuracyBefore * 100).toFixed(1)}% → ${(m.phase2.accuracy * 100).toFixed(1)}%${m.phase2.kept === false ? ' (not kept: the head alone is exported)' : ''}` : ''
      } · ${(m.ms / 1000).toFixed(1)} s`
    : '';
  if (m) renderConfusion(rec.labels, m.confusion);
}

export function download(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Download a model, and beside it its resume data (`<name>.resume.bin`, what `edgetune finetune --resume` reads) when it has some. */
export function exportModel(rec: ModelRecord): void {
  const name = fileNameFor(rec);
  download(rec.onnx, name);
  if (rec.resume) download(rec.resume, name.replace(/\.onnx$/, '.resume.bin'));
}

export function fileNameFor(rec: ModelRecord): string {
  return `${rec.labels.join('-').replace(/[^\w.-]+/g, '_').slice(0, 60) || 'model'}.onnx`;
}
