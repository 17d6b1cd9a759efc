// Pre-pass: upgrade the default-domain opset of a model to ≥ 13 (per-channel DequantizeLinear needs
// 13), rewriting the operators whose semantics or signature changed on the way:
//   Softmax/LogSoftmax/Hardmax (13: axis means one axis, no longer "flatten from axis": rewritten as
//   Flatten → op(axis=1) → Reshape to the original shape, unless the axis already is the last one),
//   Dropout (12: ratio became an input; at inference it is an identity and becomes one),
//   Clip (11: min/max attributes became inputs), Squeeze/Unsqueeze/ReduceSum (13: axes input),
//   Split (13: split input), Pad (11: pads/value inputs), Slice (10: starts/ends/axes inputs),
//   TopK (10: k input), Reshape (5: shape input), BatchNormalization (spatial/is_test/consumed_inputs
//   dropped) and the legacy consumed_inputs attribute everywhere.
// Operators whose old form cannot be rewritten safely (Upsample, Scatter, legacy broadcast, …) are
// refused with a message naming the node. The IR version is raised to 7 and initializers stop being
// declared as graph inputs (IR ≥ 4), so ONNX Runtime treats them as constants. Browser-safe.

import { EdgetuneError } from '../../core/errors.js';
import {
  DataType,
  findValueInfo,
  getAttribute,
  getFloatAttribute,
  getIntAttribute,
  getIntsAttribute,
  getOpsetVersion,
  makeNode,
  makeTensor,
  nameGenerator,
  removeAttribute,
  setInitializer,
  setIntAttribute,
  setOpsetVersion,
  topologicalSort,
  type NameGenerator,
} from '../graph.js';
import type { GraphProto, NodeProto, OnnxModel } from '../model.js';

export interface UpgradeReport {
  from: number;
  to: number;
  /** One line per rewritten node. */
  rewrites: string[];
}

function label(n: NodeProto): string {
  return `${n.opType}${n.name ? ` "${n.name}"` : ''}`;
}

function rankOf(g: GraphProto, name: string): number | undefined {
  return findValueInfo(g, name)?.type?.tensorType?.shape?.dim.length;
}

/** Move an int-list attribute to an int64 initializer input at position `at` ('' fills gaps). */
function intsToInput(g: GraphProto, names: NameGenerator, n: NodeProto, attr: string, at: number): boolean {
  const v = getIntsAttribute(n, attr);
  if (v === undefined) return false;
  const t = makeTensor(names.next(`${n.name || n.output[0]}_${attr}`), DataType.INT64, [v.length], v.map((x) => BigInt(x)));
  setInitializer(g, t);
  while (n.input.length < at) n.input.push('');
  n.input[at] = t.name!;
  removeAttribute(n, attr);
  return true;
}

function floatToInput(g: GraphProto, names: NameGenerator, n: NodeProto, attr: string, at: number, def?: number): void {
  const v = getFloatAttribute(n, attr) ?? def;
  removeAttribute(n, attr);
  if (v === undefined) return;
  const t = makeTensor(names.next(`${n.name || n.output[0]}_${attr}`), DataType.FLOAT, [], [v]);
  setInitializer(g, t);
  while (n.input.length < at) n.input.push('');
  n.input[at] = t.name!;
}

const REFUSED: Record<string, number> = { Upsample: 99, Scatter: 99, Resize: 11, MaxUnpool: 11, Scan: 9, If: 99, Loop: 99 };

/**
 * Upgrade to `target` (default 13) in place. No-op when the model already imports ≥ target.
 */
export function upgradeOpset(model: OnnxModel, target = 13): UpgradeReport {
  const from = getOpsetVersion(model, '') ?? 1;
  const report: UpgradeReport = { from, to: Math.max(from, target), rewrites: [] };
  if (from >= target) {
    dropInitializerInputs(model);
    return report;
  }
  const g = model.graph;
  const names = nameGenerator(model);
  const extra: NodeProto[] = [];
  for (const n of [...g.node]) {
    if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') continue;
    const op = n.opType ?? '';
    const refusedBelow = REFUSED[op];
    if (refusedBelow !== undefined && from < refusedBelow) {
      throw new EdgetuneError('EMODEL', `cannot upgrade ${label(n)} from opset ${from} to ${target}: re-export the model at opset ≥ ${target}`, { subject: n.name });
    }
    if (getAttribute(n, 'broadcast') || (getAttribute(n, 'axis') && ['Add', 'Sub', 'Mul', 'Div'].includes(op))) {
      throw new EdgetuneError('EMODEL', `cannot upgrade ${label(n)}: legacy broadcast attributes (opset < 7)`, { subject: n.name });
    }
    if (removeAttribute(n, 'consumed_inputs')) report.rewrites.push(`${label(n)}: consumed_inputs dropped`);
    switch (op) {
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax': {
        const axis = getIntAttribute(n, 'axis') ?? 1;
        const rank = rankOf(g, n.input[0]!);
        const lastAxis = rank !== undefined && (axis === rank - 1 || axis === -1);
        if (axis === -1 || lastAxis) {
          setIntAttribute(n, 'axis', -1);
          break;
        }
        // Old semantics: coerce to 2-D at `axis`, normalise the flattened tail.
        const x = n.input[0]!;
        const y = n.output[0]!;
        const base = n.name || y;
        const shape = names.next(`${base}_shape`);
        const flat = names.next(`${base}_flat`);
        const soft = names.next(`${base}_2d`);
        const shapeNode = makeNode('Shape', [x], [shape], { name: names.next(`${base}_Shape`) });
        const flatten = makeNode('Flatten', [x], [flat], { name: names.next(`${base}_Flatten`) });
        setIntAttribute(flatten, 'axis', axis);
        n.input[0] = flat;
        n.output[0] = soft;
        setIntAttribute(n, 'axis', 1);
        const reshape = makeNode('Reshape', [soft, shape], [y], { name: names.next(`${base}_Reshape`) });
        extra.push(shapeNode, flatten, reshape);
        report.rewrites.push(`${label(n)}: axis ${axis} (flattening) → Flatten + ${op}(axis=1) + Reshape`);
        break;
      }
      case 'Dropout': {
        if (from < 12) {
          const ratio = getFloatAttribute(n, 'ratio');
          removeAttribute(n, 'ratio');
          removeAttribute(n, 'is_test');
          if (from < 7) n.output = n.output.slice(0, 2);
          // At inference Dropout is an identity; ratio only matters in training mode.
          if (ratio !== undefined) {
            const t = makeTensor(names.next(`${n.name || n.output[0]}_ratio`), DataType.FLOAT, [], [ratio]);
            setInitializer(g, t);
            n.input[1] = t.name!;
          }
          report.rewrites.push(`${label(n)}: ratio attribute → input`);
        }
        break;
      }
      case 'Clip':
        if (from < 11) {
          const lo = getFloatAttribute(n, 'min');
          const hi = getFloatAttribute(n, 'max');
          floatToInput(g, names, n, 'min', 1, lo === undefined && hi !== undefined ? -3.4028234663852886e38 : undefined);
          floatToInput(g, names, n, 'max', 2);
          report.rewrites.push(`${label(n)}: min/max attributes → inputs`);
        }
        break;
      case 'Squeeze':
      case 'Unsqueeze':
      case 'ReduceSum':
        if (intsToInput(g, names, n, 'axes', 1)) report.rewrites.push(`${label(n)}: axes attribute → input`);
        break;
      case 'Split':
        if (intsToInput(g, names, n, 'split', 1)) report.rewrites.push(`${label(n)}: split attribute → input`);
        break;
      case 'Pad':
        if (from < 11) {
          intsToInput(g, names, n, 'pads', 1);
          floatToInput(g, names, n, 'value', 2);
          report.rewrites.push(`${label(n)}: pads/value attributes → inputs`);
        }
        break;
      case 'Slice':
        if (from < 10) {
          const axes = getIntsAttribute(n, 'axes');
          intsToInput(g, names, n, 'starts', 1);
          intsToInput(g, names, n, 'ends', 2);
          if (axes) intsToInput(g, names, n, 'axes', 3);
          report.rewrites.push(`${label(n)}: starts/ends/axes attributes → inputs`);
        }
        break;
      case 'TopK':
        if (from < 10) {
          const k = getIntAttribute(n, 'k');
          removeAttribute(n, 'k');
          const t = makeTensor(names.next(`${n.name || n.output[0]}_k`), DataType.INT64, [1], [BigInt(k ?? 1)]);
          setInitializer(g, t);
          n.input[1] = t.name!;
          report.rewrites.push(`${label(n)}: k attribute → input`);
        }
        break;
      case 'Reshape':
        if (intsToInput(g, names, n, 'shape', 1)) report.rewrites.push(`${label(n)}: shape attribute → input`);
        break;
      case 'BatchNormalization': {
        const spatial = getIntAttribute(n, 'spatial');
        if (spatial === 0) throw new EdgetuneError('EMODEL', `cannot upgrade ${label(n)}: spatial=0 was removed in opset 9`, { subject: n.name });
        removeAttribute(n, 'spatial');
        removeAttribute(n, 'is_test');
        n.output = n.output.slice(0, 1);
        break;
      }
      default:
        break;
    }
  }
  g.node.push(...extra);
  topologicalSort(g);
  setOpsetVersion(model, report.to, '');
  dropInitializerInputs(model);
  return report;
}

/** IR ≥ 7, and initializers no longer declared as graph inputs (so they are constants to ORT). */
function dropInitializerInputs(model: OnnxModel): void {
  if (model.irVersion < 7) model.irVersion = 7;
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  model.graph.input = model.graph.input.filter((v) => !inits.has(v.name));
}
