// GPTQ weight rounding (Node): after the QDQ rewrite, the int8 weights of each quantized Conv can be
// re-rounded with error feedback (Optimal Brain Quantization; Frantar et al. 2022, "GPTQ"). The float
// model runs on calibration images with every Conv input exposed; H = Σ (p − p̄)(p − p̄)ᵀ is
// accumulated over the im2col patches p of that input (one kh·kw square H per channel for depthwise
// Convs, one Cin·kh·kw square H otherwise; centered because the bias corrections remove the error's
// mean). Each output channel's weights are then quantized one column at a time, the rounding error of
// each column spread over the columns not yet quantized through the upper Cholesky factor of
// (H + 1% mean diag)⁻¹. Each channel keeps the scale the rewrite chose, so the graph (and ORT's fusion
// into QLinearConv) is unchanged: only int8 values move. Layers wider than `maxColumns`, or with fewer
// than `minSamplesPerColumn` patches per H column (MobileNetV1's 1×1 logits Conv on 100 images: the
// fit would follow the calibration set), keep round-to-nearest. Biases move by the change of the
// analytic correction (q_rtn − q_gptq)·s·E[x], so the empirical correction (calibration/correct.ts)
// starts from where it did before.
//
// Measured (hymenoptera/train 100 images, minmax, then empirical bias correction): MobileNetV1 0.25
// agreement 0.915 → 0.922 on hymenoptera/val, 0.703 → 0.757 on flowers5-small/train; SqueezeNet 1.1
// 0.974 → 0.961 and 0.837 → 0.837. Hence off by default (quantizeModel's gptqImages).

import { DataType, getAttribute, getInitializer, getIntAttribute, getIntsAttribute, readFloat32, readInt32, readInt8, writeInt32, writeInt8 } from '../runtime/onnx/graph.js';
import type { OnnxModel } from '../runtime/onnx/model.js';
import type { SessionOptions } from '../runtime/session/session.js';
import { asFloat32, type TensorData } from '../runtime/core/tensor.js';
import { quantizedLayers, type QuantizedLayer } from './layers.js';
import { withTaps } from './taps.js';
import { cholesky } from '../runtime/core/linalg.js';

export interface GptqOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  /** Largest H side (Cin·kh·kw) handled; wider Convs keep round-to-nearest. Default 1200. */
  maxColumns?: number;
  /** Layers with fewer im2col patches than this many per H column keep round-to-nearest. Default 10. */
  minSamplesPerColumn?: number;
  /** Damping added to H's diagonal, as a fraction of its mean diagonal. Default 0.01. */
  damping?: number;
  /** Quantize columns in decreasing order of H's diagonal ("act order"). Default false (measured worse here). */
  actOrder?: boolean;
  /** Per-channel means of Conv inputs (float model): biases follow the change of the analytic correction. */
  channelMeans?: ReadonlyMap<string, Float64Array>;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

interface Layer extends QuantizedLayer {
  dims: number[];
  /** Depthwise: one H per channel over kh·kw. */
  depthwise: boolean;
  kh: number;
  kw: number;
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  /** Side of one H. */
  k: number;
  /** Accumulated Σ ppᵀ (depthwise: C blocks of k·k), upper triangle filled. */
  h?: Float64Array;
  /** Σ p (depthwise: C blocks of k) and the patch count, to center H. */
  sum?: Float64Array;
  count: number;
}

/** Quantized 2-D Convs (group 1 or depthwise) with int8 per-channel weights, paired with the float Conv. */
function layers(floatModel: OnnxModel, qmodel: OnnxModel, maxColumns: number): Layer[] {
  const out: Layer[] = [];
  for (const l of quantizedLayers(floatModel, qmodel)) {
    const f = l.float;
    if (f.opType !== 'Conv') continue;
    const wt = getInitializer(qmodel.graph, l.weightsQuantized);
    const st = getInitializer(qmodel.graph, l.weightScale);
    if (!wt || !st || wt.dataType !== DataType.INT8 || wt.dims.length !== 4) continue;
    const dims = wt.dims.map(Number);
    if (readFloat32(st).length !== dims[0]) continue;
    const autoPad = getAttribute(f, 'auto_pad');
    if (autoPad?.s && new TextDecoder().decode(autoPad.s) !== 'NOTSET') continue;
    const group = getIntAttribute(f, 'group') ?? 1;
    const depthwise = group > 1 && dims[1] === 1 && group === dims[0];
    if (group !== 1 && !depthwise) continue;
    const [, cg, kh, kw] = dims as [number, number, number, number];
    const k = depthwise ? kh * kw : cg * kh * kw;
    if (k > maxColumns || k < 2) continue;
    const s = getIntsAttribute(f, 'strides') ?? [1, 1];
    const p = getIntsAttribute(f, 'pads') ?? [0, 0, 0, 0];
    const d = getIntsAttribute(f, 'dilations') ?? [1, 1];
    out.push({
      ...l,
      dims,
      depthwise,
      kh,
      kw,
      strides: [s[0]!, s[1]!],
      pads: [p[0]!, p[1]!, p[2]!, p[3]!],
      dilations: [d[0]!, d[1]!],
      k,
      count: 0,
    });
  }
  return out;
}

/** Add one image's im2col patches of `x` ([N, C, H, W]) to the layer's Σ ppᵀ (upper triangle) and Σ p. */
function accumulate(l: Layer, x: Float32Array, xdims: readonly number[]): void {
  const [n, c, ih, iw] = xdims as [number, number, number, number];
  const { kh, kw, k } = l;
  const [sh, sw] = l.strides;
  const [pt, pl, pb, pr] = l.pads;
  const [dh, dw] = l.dilations;
  const oh = Math.floor((ih + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((iw + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const blocks = l.depthwise ? c : 1;
  l.h ??= new Float64Array(blocks * k * k);
  l.sum ??= new Float64Array(blocks * k);
  const h = l.h;
  const sum = l.sum;
  l.count += n * oh * ow;
  const patch = new Float64Array(k);
  const nz = new Int32Array(k);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let blk = 0; blk < blocks; blk++) {
          // Patch order matches the weight layout (channel, ky, kx); only non-zero entries are kept.
          let m = 0;
          const c0 = l.depthwise ? blk : 0;
          const c1 = l.depthwise ? blk + 1 : c;
          let j = 0;
          for (let ci = c0; ci < c1; ci++) {
            const base = (b * c + ci) * ih * iw;
            for (let ky = 0; ky < kh; ky++) {
              const y = oy * sh - pt + ky * dh;
              for (let kx = 0; kx < kw; kx++, j++) {
                const xx = ox * sw - pl + kx * dw;
                const v = y >= 0 && y < ih && xx >= 0 && xx < iw ? x[base + y * iw + xx]! : 0;
                if (v !== 0) {
                  patch[j] = v;
                  nz[m++] = j;
                }
              }
            }
          }
          const off = blk * k * k;
          for (let a = 0; a < m; a++) {
            const ia = nz[a]!;
            const va = patch[ia]!;
            sum[blk * k + ia] = sum[blk * k + ia]! + va;
            const row = off + ia * k;
            for (let bb = a; bb < m; bb++) {
              const ib = nz[bb]!;
              h[row + ib] = h[row + ib]! + va * patch[ib]!;
            }
          }
        }
      }
    }
  }
}

/** Upper Cholesky factor U of A⁻¹ (A⁻¹ = UᵀU) for a symmetric positive definite k×k A (full, row-major); undefined when A (or its inverse, numerically) is not positive definite. */
function upperCholeskyOfInverse(a: Float64Array, k: number): Float64Array | undefined {
  // L with A = LLᵀ.
  const L = Float64Array.from(a);
  if (!cholesky(L, k)) return undefined;
  // Linv = L⁻¹ (lower), then A⁻¹ = LinvᵀLinv.
  const Li = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    Li[i * k + i] = 1 / L[i * k + i]!;
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let p = j; p < i; p++) s += L[i * k + p]! * Li[p * k + j]!;
      Li[i * k + j] = -s / L[i * k + i]!;
    }
  }
  const inv = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = i; j < k; j++) {
      let s = 0;
      for (let p = j; p < k; p++) s += Li[p * k + i]! * Li[p * k + j]!;
      inv[i * k + j] = s;
      inv[j * k + i] = s;
    }
  }
  // Upper U with inv = UᵀU: the lower Cholesky factor of inv, transposed.
  if (!cholesky(inv, k)) return undefined;
  const U = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j <= i; j++) U[j * k + i] = inv[i * k + j]!;
  return U;
}

/**
 * GPTQ for rows of W (rows × k, float, row-major) sharing one H (upper triangle given, k×k): returns
 * the int8 codes, each row with its fixed scale. Falls back to round-to-nearest if H is not usable.
 */
export function gptqRows(w: Float32Array, rows: readonly number[], scales: Float32Array, hUpper: Float64Array, k: number, damping: number, actOrder: boolean, out: Int8Array): void {
  const rnd = (v: number) => {
    const r = Math.round(v);
    const q = Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
    return q > 127 ? 127 : q < -127 ? -127 : q;
  };
  const H = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = i; j < k; j++) H[i * k + j] = H[j * k + i] = hUpper[i * k + j]!;
  const dead: boolean[] = [];
  let meanDiag = 0;
  for (let i = 0; i < k; i++) {
    dead[i] = !(H[i * k + i]! > 0);
    meanDiag += H[i * k + i]!;
  }
  meanDiag /= k;
  const order = Array.from({ length: k }, (_, i) => i);
  if (actOrder) order.sort((a, b) => H[b * k + b]! - H[a * k + a]!);
  // Permuted, damped H.
  const P = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) P[i * k + j] = H[order[i]! * k + order[j]!]!;
  for (let i = 0; i < k; i++) P[i * k + i] = (dead[order[i]!] ? 1 : P[i * k + i]!) + damping * (meanDiag > 0 ? meanDiag : 1);
  const U = meanDiag > 0 ? upperCholeskyOfInverse(P, k) : undefined;
  const row = new Float64Array(k);
  for (const r of rows) {
    const s = scales[r]!;
    if (!U) {
      for (let i = 0; i < k; i++) out[r * k + i] = rnd(w[r * k + i]! / s);
      continue;
    }
    for (let i = 0; i < k; i++) row[i] = dead[order[i]!] ? 0 : w[r * k + order[i]!]!;
    for (let i = 0; i < k; i++) {
      const q = rnd(row[i]! / s);
      out[r * k + order[i]!] = q;
      const err = (row[i]! - q * s) / U[i * k + i]!;
      for (let j = i + 1; j < k; j++) row[j] = row[j]! - err * U[i * k + j]!;
    }
  }
}

/**
 * Re-round the int8 weights of `qmodel`'s quantized Convs (in place) with GPTQ, using the float
 * model's Conv inputs on `inputs`. Returns the number of layers re-rounded.
 */
export async function gptqConvWeights(floatModel: OnnxModel, qmodel: OnnxModel, inputName: string, inputs: readonly TensorData[], o: GptqOptions = {}): Promise<number> {
  const ls = layers(floatModel, qmodel, o.maxColumns ?? 1200);
  if (ls.length === 0 || inputs.length === 0) return 0;
  const taps = withTaps(floatModel, inputName, ls.map((l) => l.float.input[0]!), {
    providers: o.providers,
    threads: o.threads,
    onWarning: o.onWarning,
    tapsOnly: true,
    signal: o.signal,
    what: 'GPTQ calibration run',
  });
  const total = inputs.length + ls.length;
  let done = 0;
  o.onProgress?.(0, total); // the stage begins
  for await (const { values } of taps.run(inputs, (x) => x)) {
    for (const l of ls) {
      const v = values.get(l.float.input[0]!)!;
      accumulate(l, asFloat32(v), v.dims.map(Number));
    }
    o.onProgress?.(++done, total);
  }
  const damping = o.damping ?? 0.01;
  const actOrder = o.actOrder ?? false;
  const minPer = o.minSamplesPerColumn ?? 10;
  let rounded = 0;
  for (const l of ls) {
    o.signal?.throwIfAborted();
    const k = l.k;
    if (l.count >= minPer * k) {
      // Center: Σ ppᵀ − n·p̄p̄ᵀ.
      const h = l.h!;
      const sum = l.sum!;
      const blocks = h.length / (k * k);
      for (let b = 0; b < blocks; b++) {
        for (let i = 0; i < k; i++) {
          const mi = sum[b * k + i]! / l.count;
          for (let j = i; j < k; j++) h[b * k * k + i * k + j] = h[b * k * k + i * k + j]! - mi * sum[b * k + j]!;
        }
      }
      const wf = readFloat32(getInitializer(floatModel.graph, l.float.input[1]!)!);
      const wt = getInitializer(qmodel.graph, l.weightsQuantized)!;
      const scales = readFloat32(getInitializer(qmodel.graph, l.weightScale)!);
      const before = readInt8(wt).slice();
      const q = new Int8Array(before.length);
      const cout = l.dims[0]!;
      if (l.depthwise) {
        for (let c = 0; c < cout; c++) gptqRows(wf, [c], scales, h.subarray(c * k * k, (c + 1) * k * k), k, damping, actOrder, q);
      } else {
        gptqRows(wf, Array.from({ length: cout }, (_, c) => c), scales, h, k, damping, actOrder, q);
      }
      writeInt8(wt, q);
      // Keep the analytic bias correction consistent: Δb[o] = Σ (q_rtn − q_gptq)·s[o]·E[x_channel].
      const mean = o.channelMeans?.get(l.float.input[0]!);
      if (mean && l.biasQuantized && l.biasScale) {
        const bt = getInitializer(qmodel.graph, l.biasQuantized)!;
        const bs = readFloat32(getInitializer(qmodel.graph, l.biasScale)!);
        const bias = readInt32(bt).slice();
        const inner = l.kh * l.kw;
        const cg = l.dims[1]!;
        if (bias.length === cout) {
          for (let c = 0; c < cout; c++) {
            let d = 0;
            for (let i = 0; i < cg; i++) {
              const mu = mean[l.depthwise ? c : i] ?? 0;
              for (let t = 0; t < inner; t++) {
                const idx = (c * cg + i) * inner + t;
                d += (before[idx]! - q[idx]!) * scales[c]! * mu;
              }
            }
            const v = bias[c]! + Math.round(d / bs[bs.length === 1 ? 0 : c]!);
            bias[c] = Math.max(-2147483647, Math.min(2147483647, v));
          }
          writeInt32(bt, bias);
        }
      }
      rounded++;
    }
    l.h = undefined;
    l.sum = undefined;
    o.onProgress?.(++done, total);
  }
  return rounded;
}
