// Editing a model: metadata_props, value info and types, the graph signature, graph outputs, node
// removal with pruning. Browser-safe.

import { EdgetuneError } from '../core/errors.js';
import type {
  GraphProto,
  NodeProto,
  OnnxModel,
  SparseTensorProto,
  StringStringEntryProto,
  TypeProto,
  ValueInfoProto,
} from './model.js';
import { getInitializer, nodeReads, producerMap } from './topology.js';
import { DataType, dataTypeName } from './dtypes.js';

// ---------------------------------------------------------------------------------------------------
// metadata_props

/** Model metadata_props as a record (a later duplicate key wins, as ONNX Runtime reads them). */
export function getMetadata(model: OnnxModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of model.metadataProps) out[e.key ?? ''] = e.value ?? '';
  return out;
}

export function getMetadataValue(model: OnnxModel, key: string): string | undefined {
  let value: string | undefined;
  for (const e of model.metadataProps) if ((e.key ?? '') === key) value = e.value ?? '';
  return value;
}

/**
 * Set one metadata_props entry (in place of the first entry with that key; later duplicates are
 * removed), or with `undefined` remove every entry with that key.
 */
export function setMetadataValue(model: OnnxModel, key: string, value: string | undefined): void {
  if (typeof key !== 'string') throw new EdgetuneError('EARG', 'metadata key must be a string');
  if (value !== undefined && typeof value !== 'string') throw new EdgetuneError('EARG', `metadata value for ${key} must be a string`);
  const out: StringStringEntryProto[] = [];
  let placed = false;
  for (const e of model.metadataProps) {
    if ((e.key ?? '') !== key) out.push(e);
    else if (!placed && value !== undefined) {
      out.push({ key, value });
      placed = true;
    }
  }
  if (!placed && value !== undefined) out.push({ key, value });
  model.metadataProps = out;
}

// ---------------------------------------------------------------------------------------------------
// Value info, types, graph outputs

/** The ValueInfoProto describing a value: from value_info, graph inputs or graph outputs. */
export function findValueInfo(graph: GraphProto, name: string): ValueInfoProto | undefined {
  return graph.valueInfo.find((v) => v.name === name) ?? graph.input.find((v) => v.name === name) ?? graph.output.find((v) => v.name === name);
}

/** A tensor TypeProto; shape entries are sizes, symbolic names, or null for unknown. */
export function makeTensorType(elemType: number, shape?: readonly (number | string | null)[]): TypeProto {
  const tensorType: NonNullable<TypeProto['tensorType']> = { elemType };
  if (shape) {
    tensorType.shape = {
      dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return { tensorType };
}

export function makeValueInfo(name: string, type?: TypeProto): ValueInfoProto {
  const v: ValueInfoProto = { name, metadataProps: [] };
  if (type) v.type = type;
  return v;
}

/** ONNX Runtime's tensor type names by ONNX element type (what a session's metadata reports). */
const RUNTIME_TYPE_NAMES: Record<number, string> = {
  [DataType.FLOAT]: 'float32',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.STRING]: 'string',
  [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
  [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64',
};

export interface SignatureEntry {
  name: string;
  /** 'float32', 'float16', 'int64', … as ONNX Runtime names them; 'unknown' for non-tensors. */
  type: string;
  /** Sizes and symbolic names; '?' for a dimension the file leaves unnamed. */
  shape: (number | string)[];
}

/**
 * The graph's inputs (initializers listed as inputs, as IR < 4 files do, left out) and outputs as a
 * session lists them, read from the file without opening one.
 */
export function graphSignature(graph: GraphProto): { inputs: SignatureEntry[]; outputs: SignatureEntry[] } {
  const inits = new Set(graph.initializer.map((t) => t.name));
  const entry = (v: ValueInfoProto): SignatureEntry => {
    const tt = v.type?.tensorType;
    return {
      name: v.name ?? '',
      type: tt?.elemType ? (RUNTIME_TYPE_NAMES[tt.elemType] ?? dataTypeName(tt.elemType).toLowerCase()) : 'unknown',
      shape: (tt?.shape?.dim ?? []).map((d) => (typeof d.dimValue === 'number' ? d.dimValue : (d.dimParam ?? '?'))),
    };
  };
  return { inputs: graph.input.filter((v) => !inits.has(v.name)).map(entry), outputs: graph.output.map(entry) };
}

export interface TensorTypeInfo {
  elemType: number;
  /** undefined when the rank is unknown; entries are sizes, symbolic names or null. */
  shape?: (number | string | null)[];
}

/** Element type and shape of a value, from value_info/inputs/outputs or an initializer. */
export function tensorTypeOf(graph: GraphProto, name: string): TensorTypeInfo | undefined {
  const tt = findValueInfo(graph, name)?.type?.tensorType;
  if (tt?.elemType) {
    return { elemType: tt.elemType, shape: tt.shape?.dim.map((d) => d.dimValue ?? d.dimParam ?? null) };
  }
  const init = getInitializer(graph, name);
  if (init?.dataType) return { elemType: init.dataType, shape: [...init.dims] };
  return undefined;
}

/**
 * Expose a value (typically an intermediate tensor) as a graph output. Its type comes from `type`, else
 * from what the graph knows (value_info, inputs, initializers); with neither, the output is added
 * without a type and ONNX Runtime infers it. Returns the output entry (the existing one if already an output).
 */
export function addGraphOutput(graph: GraphProto, name: string, type?: TypeProto): ValueInfoProto {
  const existing = graph.output.find((v) => v.name === name);
  if (existing) return existing;
  const produced = graph.node.some((n) => n.output.includes(name));
  const known = produced || graph.input.some((v) => v.name === name) || graph.initializer.some((t) => t.name === name);
  if (!known) throw new EdgetuneError('EARG', `no value named "${name}" in graph${graph.name ? ` "${graph.name}"` : ''}`);
  let resolved = type;
  if (!resolved) {
    const info = findValueInfo(graph, name);
    if (info?.type) resolved = structuredClone(info.type);
    else {
      const init = getInitializer(graph, name);
      if (init?.dataType) resolved = makeTensorType(init.dataType, init.dims);
    }
  }
  const out = makeValueInfo(name, resolved);
  graph.output.push(out);
  return out;
}

/** Remove a graph output by name (the value itself stays). */
export function removeGraphOutput(graph: GraphProto, name: string): boolean {
  const before = graph.output.length;
  graph.output = graph.output.filter((v) => v.name !== name);
  return graph.output.length !== before;
}

// ---------------------------------------------------------------------------------------------------
// Removing nodes, pruning

/** Remove nodes (given, or matching a predicate). Returns how many were removed. */
export function removeNodes(graph: GraphProto, which: NodeProto | readonly NodeProto[] | ((node: NodeProto) => boolean)): number {
  const before = graph.node.length;
  if (typeof which === 'function') graph.node = graph.node.filter((n) => !which(n));
  else {
    const drop = new Set(Array.isArray(which) ? which : [which as NodeProto]);
    graph.node = graph.node.filter((n) => !drop.has(n));
  }
  return before - graph.node.length;
}

export interface PruneResult {
  nodes: number;
  initializers: number;
  inputs: number;
  valueInfo: number;
}

/**
 * Dead-code elimination from the graph outputs: drop nodes whose outputs nothing needs, then
 * initializers (with the graph inputs that only declare them), value_info entries and quantization
 * annotations of values that no longer exist. Real graph inputs stay unless `removeUnusedInputs`.
 */
export function pruneGraph(graph: GraphProto, options: { removeUnusedInputs?: boolean } = {}): PruneResult {
  const producers = producerMap(graph);
  const live = new Set<string>();
  const liveNodes = new Set<NodeProto>();
  const work: string[] = [];
  for (const o of graph.output) if (o.name) work.push(o.name);
  while (work.length) {
    const name = work.pop()!;
    if (live.has(name)) continue;
    live.add(name);
    const p = producers.get(name);
    if (p && !liveNodes.has(p)) {
      liveNodes.add(p);
      for (const r of nodeReads(p)) if (!live.has(r)) work.push(r);
    }
  }
  const result: PruneResult = { nodes: 0, initializers: 0, inputs: 0, valueInfo: 0 };
  result.nodes = removeNodes(graph, (n) => !liveNodes.has(n));

  const initNames = new Set(graph.initializer.map((t) => t.name ?? ''));
  const keptInit = graph.initializer.filter((t) => live.has(t.name ?? ''));
  result.initializers = graph.initializer.length - keptInit.length;
  graph.initializer = keptInit;
  const keptSparse = graph.sparseInitializer.filter((s: SparseTensorProto) => live.has(s.values?.name ?? ''));
  result.initializers += graph.sparseInitializer.length - keptSparse.length;
  graph.sparseInitializer = keptSparse;

  const keptInputs = graph.input.filter((v) => {
    const name = v.name ?? '';
    if (live.has(name)) return true;
    if (initNames.has(name)) return false; // declared an initializer that is gone
    return !options.removeUnusedInputs;
  });
  result.inputs = graph.input.length - keptInputs.length;
  graph.input = keptInputs;

  const exists = new Set<string>(graph.input.map((v) => v.name ?? ''));
  for (const t of graph.initializer) exists.add(t.name ?? '');
  for (const n of graph.node) for (const o of n.output) exists.add(o);
  const keptInfo = graph.valueInfo.filter((v) => exists.has(v.name ?? ''));
  result.valueInfo = graph.valueInfo.length - keptInfo.length;
  graph.valueInfo = keptInfo;
  graph.quantizationAnnotation = graph.quantizationAnnotation.filter((a) => exists.has(a.tensorName ?? ''));
  return result;
}

/**
 * A new model around `graph` (missing graph fields empty), importing the default domain at `opset`
 * (default 13) with IR version `irVersion` (default 8).
 */
export function makeModel(graph: Partial<GraphProto> & Pick<GraphProto, 'node' | 'input' | 'output'>, options: { opset?: number; irVersion?: number } = {}): OnnxModel {
  return {
    irVersion: options.irVersion ?? 8,
    opsetImport: [{ domain: '', version: options.opset ?? 13 }],
    metadataProps: [],
    trainingInfo: [],
    functions: [],
    configuration: [],
    graph: { initializer: [], valueInfo: [], quantizationAnnotation: [], sparseInitializer: [], metadataProps: [], ...graph },
  };
}
