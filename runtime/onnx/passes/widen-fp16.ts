// Pre-pass: widen a float16 model to float32 (so `squeezenet1.1-fp16` can be calibrated and
// quantized like its fp32 twin). Initializers, Constant/ConstantOfShape tensors, graph inputs,
// outputs and value_info, and Cast targets all move from FLOAT16 to FLOAT; values widen exactly.
// Browser-safe.

import { DataType, makeTensor, readFloat32, setIntAttribute, getIntAttribute } from '../graph.js';
import type { GraphProto, OnnxModel, TensorProto, ValueInfoProto } from '../model.js';

export interface WidenReport {
  tensors: number;
  values: number;
  casts: number;
}

function widenTensor(t: TensorProto): TensorProto {
  const w = makeTensor(t.name ?? '', DataType.FLOAT, t.dims, readFloat32(t));
  if (t.docString) w.docString = t.docString;
  return w;
}

function widenGraph(g: GraphProto, r: WidenReport): void {
  g.initializer = g.initializer.map((t) => {
    if (t.dataType !== DataType.FLOAT16) return t;
    r.tensors++;
    return widenTensor(t);
  });
  const fix = (v: ValueInfoProto) => {
    const tt = v.type?.tensorType;
    if (tt?.elemType === DataType.FLOAT16) {
      tt.elemType = DataType.FLOAT;
      r.values++;
    }
  };
  g.input.forEach(fix);
  g.output.forEach(fix);
  g.valueInfo.forEach(fix);
  for (const n of g.node) {
    if (n.opType === 'Cast' && (n.domain ?? '') === '' && getIntAttribute(n, 'to') === DataType.FLOAT16) {
      setIntAttribute(n, 'to', DataType.FLOAT);
      r.casts++;
    }
    for (const a of n.attribute) {
      if (a.t && a.t.dataType === DataType.FLOAT16) {
        a.t = widenTensor(a.t);
        r.tensors++;
      }
      if (a.g) widenGraph(a.g, r);
      for (const sg of a.graphs) widenGraph(sg, r);
    }
  }
}

/** Widen every float16 tensor and value of the model to float32, in place. */
export function widenFloat16(model: OnnxModel): WidenReport {
  const r: WidenReport = { tensors: 0, values: 0, casts: 0 };
  widenGraph(model.graph, r);
  return r;
}
