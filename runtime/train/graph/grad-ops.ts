// Reverse-mode gradient rules, one per forward operator, each emitting plain ONNX (opset 13) nodes so
// the backward pass runs in ONNX Runtime kernels on any execution provider. Browser-safe.
//
// Math (standard results; e.g. Dumoulin & Visin, "A guide to convolution arithmetic", 2016, §4 for
// the transposed convolution, and the "batch as channels" dW formulation used by cuDNN-free
// frameworks):
//   Conv y = W ⋆ x (stride s, pads p, dilation d, group g), x [N,C,H,W], W [M,C/g,kh,kw]:
//     dx = ConvTranspose(dy, W; s, p, d, g, output_padding = H − (s(Ho−1) + d(k−1) + 1 − p₀ − p₁))
//     dW[m,c,i,j] = Σₙ Σ_{y,x} dy[n,m,y,x] · xpad[n,g(m)·C/g + c, s·y + d·i, s·x + d·j], computed as ONE
//       grouped Conv whose "batch" is the C/g input channels of a group and whose channels are
//       (group, sample) pairs: input x → [C/g, g·N, H, W], weight dyᵀ [M, N, Ho, Wo], group g,
//       strides d, dilations s, pads p → [C/g, M, k′, k′] → transpose → crop to k.
//     db = Σ_{n,y,x} dy
//     Faster exact special cases (ORT CPU kernels measured on MobileNetV2's last blocks): 1×1 stride-1
//     convs take dW = dyᵀ·x as ONE Gemm [M, N·P]×[N·P, C] and dx as a 1×1 Conv with Wᵀ; stride-1
//     depthwise convs take dx = depthwise Conv(dy, W flipped in space, pads k−1−p).
//   Relu: dx = dy·[x > 0]. Clip(min, max): dx = dy·[min < x < max] (ReLU6: 0 < x < 6); the mask cast to
//     float and multiplied (a Where measured ~3× slower on CPU).
//   Add/Sub/Mul with numpy broadcasting: the gradient is summed over broadcast axes.
//   GlobalAveragePool: dx = expand(dy / (H·W)). Flatten/Reshape/Identity/Dropout(eval): reshape back.
//   Gemm y = α·op(A)·op(B) + β·C and 2-D MatMul: the usual matrix-calculus transposes.
//   Pooling windows (scatterWindows): a window's gradient goes back to the input positions it read, as
//   ONE grouped ConvTranspose (strides, dilations, kernel of the pool) whose output starts at the padded
//   input's origin, then cropped to the input (zero-padded first where floor mode left trailing
//   positions unread).
//     AveragePool: dx = scatter(dy / count, ones), count = the taps of each window inside the input
//       (count_include_pad 0) or inside the padded input (1), per onnxruntime's kernel.
//     MaxPool: dx = scatter of dy to the window's FIRST maximum (row-major, the one onnxruntime's
//       Indices and PyTorch pick; ties share nothing): for each tap t the strided slice of the
//       (−∞-padded) input equal to y and not taken by an earlier tap; the T masked copies of dy stacked
//       as T channels per input channel and scattered with one-hot kernels (group C).
//   Concat: dx_i = the slice of dy along the axis. Pad (constant mode): dx = dy cropped by the pads
//     (zero-padded where the Pad cropped). Transpose: the inverse permutation. Squeeze/Unsqueeze: reshape back.

import { EdgetuneError } from '../../core/errors.js';
import { getFloatAttribute, getIntAttribute, getIntsAttribute, getStringAttribute } from '../../onnx/graph.js';
import type { NodeProto } from '../../onnx/model.js';
import { describeNode } from '../../onnx/topology.js';
import { convGeometry, padAmounts, windowGeometry, type Shape } from './shapes.js';
import type { GraphProto } from '../../onnx/model.js';

export type AttrValue = number | readonly number[] | { f: number };

/** What a rule may do: read static shapes and emit nodes/constants into the backward graph. */
export interface GradContext {
  shape(name: string): Shape;
  /** The forward graph (a Pad's pads, a Squeeze's axes: its initializers). */
  graph?: GraphProto;
  /** Emit a node; returns its (single, freshly named) output. Numbers are INT attributes, {f} FLOAT. */
  op(type: string, inputs: readonly string[], attrs?: Record<string, AttrValue>, hint?: string): string;
  /** A float32 initializer. */
  constF(values: readonly number[], dims: readonly number[]): string;
  /** A 1-D int64 initializer. */
  constI(values: readonly number[]): string;
}

/** Given the forward node, its outputs' gradients and which inputs need one, the inputs' gradients. */
export type GradRule = (ctx: GradContext, node: NodeProto, dy: readonly (string | undefined)[], need: readonly boolean[]) => (string | undefined)[];

function fail(n: NodeProto, why: string): never {
  throw new EdgetuneError('EMODEL', `no gradient for the ${describeNode(n)}: ${why}`, { subject: n.name || n.output[0] });
}

/** Sum `d` (shaped `from`) down to `to` (numpy broadcasting in reverse). */
export function unbroadcast(ctx: GradContext, d: string, from: Shape, to: Shape): string {
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead) axes.push(i);
    else if (to[i - lead] === 1 && from[i] !== 1) axes.push(i);
  }
  if (!axes.length) return d;
  let r = ctx.op('ReduceSum', [d, ctx.constI(axes)], { keepdims: 1 }, 'unbroadcast');
  if (lead > 0) {
    if (!to.every((x) => typeof x === 'number')) throw new EdgetuneError('EMODEL', `cannot reduce [${from}] to symbolic [${to}]`);
    r = ctx.op('Reshape', [r, ctx.constI(to as number[])], {}, 'unbroadcast_shape');
  }
  return r;
}

const conv: GradRule = (ctx, n, [dy], need) => {
  const [xName, wName] = n.input as [string, string];
  const x = ctx.shape(xName);
  const w = ctx.shape(wName);
  const y = ctx.shape(n.output[0]!);
  if (x.length !== 4) fail(n, 'only 2-D convolutions (NCHW) are supported');
  const spatial = x.slice(2) as number[];
  const kernel = (getIntsAttribute(n, 'kernel_shape') ?? w.slice(2)) as number[];
  const geo = convGeometry(n, spatial, kernel);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  const pointwise = geo.group === 1 && kernel.every((k) => k === 1) && geo.strides.every((s) => s === 1) && geo.pads.every((p) => p === 0);
  if (need[0] && pointwise) {
    // 1×1 conv: dx = Wᵀ·dy per pixel, a plain 1×1 Conv with the transposed weight (ORT's ConvTranspose
    // measured ~1.6× slower here).
    out[0] = ctx.op('Conv', [dy!, ctx.op('Transpose', [wName], { perm: [1, 0, 2, 3] }, 'W_t')], {}, 'dX');
  } else if (need[0] && geo.group === x[1] && geo.group === w[0] && geo.strides.every((s) => s === 1) && geo.dilations.every((d) => d === 1) && geo.pads.every((p, i) => p <= kernel[i % 2]! - 1)) {
    // Depthwise, stride 1: dx = Conv(dy, W flipped in space, pads k−1−p, same group): the forward
    // depthwise kernel, ~2× faster than ORT's grouped ConvTranspose here.
    const flipped = ctx.op('Slice', [wName, ctx.constI([-1, -1]), ctx.constI(kernel.map((k) => -(k + 1))), ctx.constI([2, 3]), ctx.constI([-1, -1])], {}, 'W_flip');
    const pads = geo.pads.map((p, i) => kernel[i % 2]! - 1 - p);
    out[0] = ctx.op('Conv', [dy!, flipped], { group: geo.group, pads, kernel_shape: kernel }, 'dX');
  } else if (need[0]) {
    const outputPadding = spatial.map((h, i) => h - (geo.strides[i]! * (geo.out[i]! - 1) + geo.dilations[i]! * (kernel[i]! - 1) + 1 - geo.pads[i]! - geo.pads[i + 2]!));
    if (outputPadding.some((p, i) => p < 0 || p >= Math.max(geo.strides[i]!, geo.dilations[i]!))) fail(n, `output_padding ${outputPadding} out of range`);
    out[0] = ctx.op('ConvTranspose', [dy!, wName], { strides: geo.strides, pads: geo.pads, dilations: geo.dilations, group: geo.group, kernel_shape: kernel, output_padding: outputPadding }, 'dX');
  }
  if (need[1] && pointwise) {
    // 1×1 conv: dW[m, c] = Σ_{n,p} dy[n,m,p]·x[n,c,p] as ONE GEMM [M, N·P] × [N·P, C] (the grouped-conv
    // form below would run C matrix-vector products here: ~10× slower on CPU).
    const M = w[0] as number;
    const C = x[1] as number;
    const dyr = ctx.op('Reshape', [ctx.op('Transpose', [dy!], { perm: [1, 0, 2, 3] }, 'dy_t'), ctx.constI([M, -1])], {}, 'dy_rows');
    const xr = ctx.op('Reshape', [ctx.op('Transpose', [xName], { perm: [1, 0, 2, 3] }, 'x_t'), ctx.constI([C, -1])], {}, 'x_rows');
    out[1] = ctx.op('Reshape', [ctx.op('Gemm', [dyr, xr], { transB: 1 }, 'dW_2d'), ctx.constI([M, C, 1, 1])], {}, 'dW');
    // db from dy's rows [M, N·P]: a contiguous reduction (ReduceSum over [0, 2, 3] of dy is ~2× slower)
    if (need[2]) out[2] = ctx.op('ReduceSum', [dyr, ctx.constI([1])], { keepdims: 0 }, 'dB');
  } else if (need[1]) {
    const g = geo.group;
    const C = x[1] as number;
    const cg = C / g;
    const [H, W] = spatial as [number, number];
    let xc: string;
    if (g === 1) xc = ctx.op('Transpose', [xName], { perm: [1, 0, 2, 3] }, 'x_cnhw');
    else {
      const r = ctx.op('Reshape', [xName, ctx.constI([0, g, cg, H, W])], {}, 'x_groups');
      const t = ctx.op('Transpose', [r], { perm: [2, 1, 0, 3, 4] }, 'x_groups_t');
      xc = ctx.op('Reshape', [t, ctx.constI([cg, -1, H, W])], {}, 'x_gn');
    }
    const dyt = ctx.op('Transpose', [dy!], { perm: [1, 0, 2, 3] }, 'dy_t');
    if (need[2]) out[2] = ctx.op('ReduceSum', [dyt, ctx.constI([1, 2, 3])], { keepdims: 0 }, 'dB');
    const dwt = ctx.op('Conv', [xc, dyt], { strides: geo.dilations, dilations: geo.strides, pads: geo.pads, group: g }, 'dW_t');
    let dw = ctx.op('Transpose', [dwt], { perm: [1, 0, 2, 3] }, 'dW');
    const full = spatial.map((h, i) => Math.floor((h + geo.pads[i]! + geo.pads[i + 2]! - (geo.strides[i]! * (geo.out[i]! - 1) + 1)) / geo.dilations[i]!) + 1);
    if (full.some((f, i) => f !== kernel[i])) {
      dw = ctx.op('Slice', [dw, ctx.constI([0, 0]), ctx.constI(kernel), ctx.constI([2, 3])], {}, 'dW_crop');
    }
    out[1] = dw;
  }
  if (need[2] && !out[2]) out[2] = ctx.op('ReduceSum', [dy!, ctx.constI([0, 2, 3])], { keepdims: 0 }, 'dB');
  void y;
  return out;
};

const zeroLike = (ctx: GradContext) => ctx.constF([0], []);

/**
 * dy where `mask` holds, else 0, as dy · float(mask): exact (dy·1 = dy, dy·0 = ±0) and ~3× faster in
 * ORT's CPU kernels than Where(mask, dy, 0) on MobileNetV2's [16, 960, 7, 7] activations (bench:finetune).
 */
const masked = (ctx: GradContext, dy: string, mask: string, hint: string) => ctx.op('Mul', [dy, ctx.op('Cast', [mask], { to: 1 }, `${hint}_f`)], {}, hint);

const relu: GradRule = (ctx, n, [dy]) => {
  const mask = ctx.op('Greater', [n.input[0]!, zeroLike(ctx)], {}, 'relu_mask');
  return [masked(ctx, dy!, mask, 'dRelu')];
};

const clip: GradRule = (ctx, n, [dy]) => {
  const x = n.input[0]!;
  const masks: string[] = [];
  if (n.input[1]) masks.push(ctx.op('Greater', [x, n.input[1]], {}, 'clip_lo'));
  if (n.input[2]) masks.push(ctx.op('Less', [x, n.input[2]], {}, 'clip_hi'));
  if (getFloatAttribute(n, 'min') !== undefined || getFloatAttribute(n, 'max') !== undefined) fail(n, 'Clip with min/max attributes (upgrade to opset ≥ 11 first)');
  if (!masks.length) return [dy];
  const mask = masks.length === 2 ? ctx.op('And', masks, {}, 'clip_mask') : masks[0]!;
  return [masked(ctx, dy!, mask, 'dClip')];
};

const addSub =
  (sign: 1 | -1): GradRule =>
  (ctx, n, [dy], need) => {
    const y = ctx.shape(n.output[0]!);
    const a = need[0] ? unbroadcast(ctx, dy!, y, ctx.shape(n.input[0]!)) : undefined;
    let b = need[1] ? unbroadcast(ctx, dy!, y, ctx.shape(n.input[1]!)) : undefined;
    if (b && sign < 0) b = ctx.op('Neg', [b], {}, 'dSub');
    return [a, b];
  };

const mul: GradRule = (ctx, n, [dy], need) => {
  const y = ctx.shape(n.output[0]!);
  const [a, b] = n.input as [string, string];
  return [
    need[0] ? unbroadcast(ctx, ctx.op('Mul', [dy!, b], {}, 'dMul'), y, ctx.shape(a)) : undefined,
    need[1] ? unbroadcast(ctx, ctx.op('Mul', [dy!, a], {}, 'dMul'), y, ctx.shape(b)) : undefined,
  ];
};

const gap: GradRule = (ctx, n, [dy]) => {
  const x = ctx.shape(n.input[0]!);
  const area = x.slice(2).reduce<number>((p, d) => (typeof d === 'number' ? p * d : fail(n, 'spatial sizes must be static')), 1);
  const scaled = ctx.op('Mul', [dy!, ctx.constF([1 / area], [])], {}, 'dGAP_scaled');
  return [ctx.op('Expand', [scaled, ctx.op('Shape', [n.input[0]!], {}, 'gap_shape')], {}, 'dGAP')];
};

const reshapeBack: GradRule = (ctx, n, [dy]) => [ctx.op('Reshape', [dy!, ctx.op('Shape', [n.input[0]!], {}, 'shape')], {}, `d${n.opType}`)];

const gemm: GradRule = (ctx, n, [dy], need) => {
  const alpha = getFloatAttribute(n, 'alpha') ?? 1;
  const beta = getFloatAttribute(n, 'beta') ?? 1;
  const tA = getIntAttribute(n, 'transA') ?? 0;
  const tB = getIntAttribute(n, 'transB') ?? 0;
  const [A, B, C] = n.input as [string, string, string | undefined];
  const al: Record<string, AttrValue> = alpha === 1 ? {} : { alpha: { f: alpha } };
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (need[0]) {
    out[0] = tA
      ? ctx.op('Gemm', [B, dy!], { ...al, transA: tB ? 1 : 0, transB: 1 }, 'dA')
      : ctx.op('Gemm', [dy!, B], { ...al, transB: tB ? 0 : 1 }, 'dA');
  }
  if (need[1]) {
    out[1] = tB
      ? ctx.op('Gemm', [dy!, A], { ...al, transA: 1, transB: tA ? 1 : 0 }, 'dB')
      : ctx.op('Gemm', [A, dy!], { ...al, transA: tA ? 0 : 1 }, 'dB');
  }
  if (need[2] && C) {
    const scaled = beta === 1 ? dy! : ctx.op('Mul', [dy!, ctx.constF([beta], [])], {}, 'dC_scaled');
    out[2] = unbroadcast(ctx, scaled, ctx.shape(n.output[0]!), ctx.shape(C));
  }
  return out;
};

const matmul: GradRule = (ctx, n, [dy], need) => {
  const [A, B] = n.input as [string, string];
  if (ctx.shape(A).length !== 2 || ctx.shape(B).length !== 2) fail(n, 'only 2-D MatMul is supported');
  return [need[0] ? ctx.op('Gemm', [dy!, B], { transB: 1 }, 'dA') : undefined, need[1] ? ctx.op('Gemm', [A, dy!], { transA: 1 }, 'dB') : undefined];
};

/** Static [C, H, W, …] of a pooled input and its window geometry, or an error naming the node. */
function poolSetup(ctx: GradContext, n: NodeProto) {
  const x = ctx.shape(n.input[0]!);
  if (x.length !== 4 || x.slice(1).some((d) => typeof d !== 'number')) fail(n, `only 2-D pooling (NCHW) with static sizes is supported (input [${x}])`);
  const spatial = x.slice(2) as number[];
  const kernel = getIntsAttribute(n, 'kernel_shape') ?? fail(n, 'no kernel_shape');
  return { C: x[1] as number, spatial, geo: windowGeometry(n, spatial, kernel) };
}

/**
 * Scatter window gradients `d` [N, groups·T, Ho, Wo] back to the pooled input [N, groups, H, W] through
 * `weight` [groups·T, 1, kh, kw] (one grouped ConvTranspose with the pool's strides and dilations, whose
 * output starts at the padded input's origin), then crop the begin pads (and zero-pad where no window read).
 */
function scatterWindows(ctx: GradContext, d: string, weight: string, groups: number, spatial: number[], geo: ReturnType<typeof windowGeometry>): string {
  const r = spatial.length;
  const full = geo.out.map((o, i) => geo.strides[i]! * (o - 1) + geo.dilations[i]! * (geo.kernel[i]! - 1) + 1);
  let y = ctx.op('ConvTranspose', [d, weight], { strides: geo.strides, dilations: geo.dilations, group: groups, kernel_shape: geo.kernel, pads: Array<number>(2 * r).fill(0) }, 'dPool_scatter');
  const short = spatial.map((h, i) => Math.max(0, geo.pads[i]! + h - full[i]!));
  if (short.some((p) => p > 0)) y = ctx.op('Pad', [y, ctx.constI([0, 0, ...Array<number>(r).fill(0), 0, 0, ...short])], {}, 'dPool_unread');
  return ctx.op('Slice', [y, ctx.constI(geo.pads.slice(0, r)), ctx.constI(spatial.map((h, i) => geo.pads[i]! + h)), ctx.constI([...Array(r).keys()].map((i) => i + 2))], {}, 'dPool');
}

/** Number of taps of each window along one axis that count (inside [lo, hi) of the unpadded coordinates). */
function tapCounts(out: number, stride: number, dilation: number, k: number, begin: number, lo: number, hi: number): number[] {
  return Array.from({ length: out }, (_, o) => {
    let c = 0;
    for (let t = 0; t < k; t++) {
      const p = o * stride - begin + t * dilation;
      if (p >= lo && p < hi) c++;
    }
    return c;
  });
}

const averagePool: GradRule = (ctx, n, [dy]) => {
  const { C, spatial, geo } = poolSetup(ctx, n);
  const includePad = (getIntAttribute(n, 'count_include_pad') ?? 0) === 1;
  const r = spatial.length;
  // per-axis counts; the window's count is their product (a box of taps)
  const counts = spatial.map((h, i) => tapCounts(geo.out[i]!, geo.strides[i]!, geo.dilations[i]!, geo.kernel[i]!, geo.pads[i]!, includePad ? -geo.pads[i]! : 0, includePad ? h + geo.pads[i + r]! : h));
  const [ch, cw] = counts as [number[], number[]];
  const inv: number[] = [];
  for (const a of ch) for (const b of cw) inv.push(a * b > 0 ? 1 / (a * b) : 0);
  const scaled = ctx.op('Mul', [dy!, ctx.constF(inv, [1, 1, ...geo.out])], {}, 'dAvgPool_scaled');
  const ones = ctx.constF(Array<number>(C * geo.kernel[0]! * geo.kernel[1]!).fill(1), [C, 1, ...geo.kernel]);
  return [scatterWindows(ctx, scaled, ones, C, spatial, geo)];
};

const maxPool: GradRule = (ctx, n, [dy]) => {
  if (n.output[1]) fail(n, 'the Indices output is not supported');
  if ((getIntAttribute(n, 'storage_order') ?? 0) !== 0) fail(n, 'storage_order 1 is not supported');
  const { C, spatial, geo } = poolSetup(ctx, n);
  const r = spatial.length;
  const [kh, kw] = geo.kernel as [number, number];
  const T = kh * kw;
  // the input padded with −∞ to every tap's reach (begin pads, and the end as far as the last window reads)
  const reach = geo.out.map((o, i) => geo.strides[i]! * (o - 1) + geo.dilations[i]! * (geo.kernel[i]! - 1) + 1);
  const end = spatial.map((h, i) => Math.max(0, reach[i]! - geo.pads[i]! - h));
  let xp = n.input[0]!;
  if ([...geo.pads.slice(0, r), ...end].some((p) => p > 0)) {
    xp = ctx.op('Pad', [xp, ctx.constI([0, 0, ...geo.pads.slice(0, r), 0, 0, ...end]), ctx.constF([-Infinity], [])], {}, 'maxpool_padded');
  }
  const y = n.output[0]!;
  let taken: string | undefined;
  const parts: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const starts = [i * geo.dilations[0]!, j * geo.dilations[1]!];
      const tap = ctx.op('Slice', [xp, ctx.constI(starts), ctx.constI(starts.map((s, a) => s + geo.strides[a]! * (geo.out[a]! - 1) + 1)), ctx.constI([2, 3]), ctx.constI(geo.strides)], {}, 'maxpool_tap');
      const eq = ctx.op('Equal', [tap, y], {}, 'maxpool_eq');
      const first = taken ? ctx.op('And', [eq, ctx.op('Not', [taken], {}, 'maxpool_free')], {}, 'maxpool_first') : eq;
      taken = taken ? ctx.op('Or', [taken, eq], {}, 'maxpool_taken') : eq;
      parts.push(ctx.op('Unsqueeze', [masked(ctx, dy!, first, 'dMaxPool_tap'), ctx.constI([2])], {}, 'dMaxPool_tap5'));
    }
  }
  const stacked = ctx.op('Reshape', [ctx.op('Concat', parts, { axis: 2 }, 'dMaxPool_taps'), ctx.constI([0, C * T, ...geo.out])], {}, 'dMaxPool_channels');
  // one-hot kernels: channel c·T + t scatters to tap t of channel c
  const w = new Array<number>(C * T * T).fill(0);
  for (let c = 0; c < C; c++) for (let t = 0; t < T; t++) w[(c * T + t) * T + t] = 1;
  return [scatterWindows(ctx, stacked, ctx.constF(w, [C * T, 1, kh, kw]), C, spatial, geo)];
};

const concat: GradRule = (ctx, n, [dy], need) => {
  const y = ctx.shape(n.output[0]!);
  let axis = getIntAttribute(n, 'axis') ?? fail(n, 'no axis');
  if (axis < 0) axis += y.length;
  let at = 0;
  return n.input.map((x, k) => {
    const size = ctx.shape(x)[axis]!;
    if (typeof size !== 'number') fail(n, 'symbolic size on the concatenation axis');
    const from = at;
    at += size;
    return need[k] ? ctx.op('Slice', [dy!, ctx.constI([from]), ctx.constI([from + size]), ctx.constI([axis])], {}, 'dConcat') : undefined;
  });
};

const pad: GradRule = (ctx, n, [dy]) => {
  const mode = getStringAttribute(n, 'mode') ?? 'constant';
  if (mode !== 'constant') fail(n, `Pad mode ${mode} (only constant padding has a gradient here)`);
  if (!ctx.graph) fail(n, 'the pads need the forward graph');
  const x = ctx.shape(n.input[0]!);
  const r = x.length;
  const pads = padAmounts(ctx.graph, n, r);
  const cropped = pads.map((p) => Math.max(0, -p));
  let d = dy!;
  if (cropped.some((p) => p > 0)) d = ctx.op('Pad', [d, ctx.constI(cropped)], {}, 'dPad_uncrop');
  const axes = [...Array(r).keys()].filter((i) => pads[i] !== 0 || pads[i + r] !== 0);
  if (!axes.length) return [d];
  const starts = axes.map((i) => Math.max(0, pads[i]!));
  const ends = axes.map((i, k) => {
    const size = x[i];
    if (typeof size !== 'number') fail(n, 'symbolic size on a padded axis');
    return starts[k]! + size;
  });
  return [ctx.op('Slice', [d, ctx.constI(starts), ctx.constI(ends), ctx.constI(axes)], {}, 'dPad')];
};

const transpose: GradRule = (ctx, n, [dy]) => {
  const rank = ctx.shape(n.input[0]!).length;
  const perm = getIntsAttribute(n, 'perm') ?? [...Array(rank).keys()].reverse();
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return [ctx.op('Transpose', [dy!], { perm: inverse }, 'dTranspose')];
};

/** Gradient rules by operator type (default ONNX domain). */
export const GRAD_RULES: Record<string, GradRule> = {
  Conv: conv,
  Relu: relu,
  Clip: clip,
  Add: addSub(1),
  Sub: addSub(-1),
  Mul: mul,
  GlobalAveragePool: gap,
  AveragePool: averagePool,
  MaxPool: maxPool,
  Concat: concat,
  Pad: pad,
  Transpose: transpose,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Identity: reshapeBack,
  Dropout: reshapeBack,
  Gemm: gemm,
  MatMul: matmul,
};
