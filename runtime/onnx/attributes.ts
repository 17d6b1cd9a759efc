// Nodes, their attributes (typed getters/setters) and opset imports. Browser-safe.

import { EdgetuneError, invalidParameter } from '../core/errors.js';
import type {
  AttributeProto,
  GraphProto,
  NodeProto,
  OnnxModel,
  TensorProto,
} from './model.js';
import { describeNode } from './topology.js';
import { ATTRIBUTE_TYPE_NAMES, AttributeType } from './dtypes.js';

// ---------------------------------------------------------------------------------------------------
// Nodes and attributes

/** A new node (attributes are added with the set*Attribute helpers). */
export function makeNode(opType: string, inputs: readonly string[], outputs: readonly string[], options: { name?: string; domain?: string } = {}): NodeProto {
  const node: NodeProto = { input: [...inputs], output: [...outputs], opType, attribute: [], metadataProps: [], deviceConfigurations: [] };
  if (options.name !== undefined) node.name = options.name;
  if (options.domain !== undefined && options.domain !== '') node.domain = options.domain;
  return node;
}

export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** The attribute's type: its `type` field, or (IR 1 files without one) the value field present. */
export function attributeKind(a: AttributeProto): AttributeType {
  if (a.type) return a.type as AttributeType;
  if (a.f !== undefined) return AttributeType.FLOAT;
  if (a.i !== undefined) return AttributeType.INT;
  if (a.s !== undefined) return AttributeType.STRING;
  if (a.t) return AttributeType.TENSOR;
  if (a.g) return AttributeType.GRAPH;
  if (a.sparseTensor) return AttributeType.SPARSE_TENSOR;
  if (a.tp) return AttributeType.TYPE_PROTO;
  if (a.floats.length) return AttributeType.FLOATS;
  if (a.ints.length) return AttributeType.INTS;
  if (a.strings.length) return AttributeType.STRINGS;
  if (a.tensors.length) return AttributeType.TENSORS;
  if (a.graphs.length) return AttributeType.GRAPHS;
  if (a.sparseTensors.length) return AttributeType.SPARSE_TENSORS;
  if (a.typeProtos.length) return AttributeType.TYPE_PROTOS;
  return AttributeType.UNDEFINED;
}

function typedAttribute(node: NodeProto, name: string, kind: AttributeType): AttributeProto | undefined {
  const a = getAttribute(node, name);
  if (!a) return undefined;
  const k = attributeKind(a);
  if (k !== kind) {
    throw new EdgetuneError(
      'EMODEL',
      `attribute "${name}" of ${describeNode(node)} is ${ATTRIBUTE_TYPE_NAMES[k] ?? k}, not ${ATTRIBUTE_TYPE_NAMES[kind]}`,
    );
  }
  return a;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** INT attribute as a number (values beyond 2^53, e.g. INT64_MAX, are approximated; `.i` is exact). */
export function getIntAttribute(node: NodeProto, name: string): number | undefined {
  const a = typedAttribute(node, name, AttributeType.INT);
  return a ? Number(a.i ?? 0n) : undefined;
}

export function getIntsAttribute(node: NodeProto, name: string): number[] | undefined {
  const a = typedAttribute(node, name, AttributeType.INTS);
  return a ? a.ints.map((v) => Number(v)) : undefined;
}

export function getFloatAttribute(node: NodeProto, name: string): number | undefined {
  const a = typedAttribute(node, name, AttributeType.FLOAT);
  return a ? (a.f ?? 0) : undefined;
}

export function getFloatsAttribute(node: NodeProto, name: string): number[] | undefined {
  return typedAttribute(node, name, AttributeType.FLOATS)?.floats.slice();
}

/** STRING attribute decoded as UTF-8. */
export function getStringAttribute(node: NodeProto, name: string): string | undefined {
  const a = typedAttribute(node, name, AttributeType.STRING);
  return a ? utf8Decoder.decode(a.s ?? new Uint8Array(0)) : undefined;
}

export function getStringsAttribute(node: NodeProto, name: string): string[] | undefined {
  return typedAttribute(node, name, AttributeType.STRINGS)?.strings.map((s) => utf8Decoder.decode(s));
}

export function getTensorAttribute(node: NodeProto, name: string): TensorProto | undefined {
  return typedAttribute(node, name, AttributeType.TENSOR)?.t;
}

export function getGraphAttribute(node: NodeProto, name: string): GraphProto | undefined {
  return typedAttribute(node, name, AttributeType.GRAPH)?.g;
}

function emptyAttribute(name: string, type: AttributeType, docString?: string): AttributeProto {
  const a: AttributeProto = {
    name,
    type,
    floats: [],
    ints: [],
    strings: [],
    tensors: [],
    graphs: [],
    typeProtos: [],
    sparseTensors: [],
  };
  if (docString !== undefined) a.docString = docString;
  return a;
}

function putAttribute(node: NodeProto, a: AttributeProto): AttributeProto {
  const i = node.attribute.findIndex((x) => x.name === a.name);
  if (i >= 0) {
    const old = node.attribute[i]!;
    if (old.docString !== undefined && a.docString === undefined) a.docString = old.docString;
    node.attribute[i] = a;
  } else {
    node.attribute.push(a);
  }
  return a;
}

function toInt64(v: number | bigint, what: string): bigint {
  if (typeof v === 'bigint') {
    if (v < -(2n ** 63n) || v >= 2n ** 63n) throw new EdgetuneError('EARG', `${what}: ${v} does not fit in int64`);
    return v;
  }
  if (!Number.isSafeInteger(v)) throw new EdgetuneError('EARG', `${what}: expected an integer (a bigint beyond 2^53) but received ${v}`);
  return BigInt(v);
}

function checkFloat(v: number, what: string): number {
  if (typeof v !== 'number') throw new EdgetuneError('EARG', `${what}: expected a number but received ${typeof v}`);
  return Math.fround(v);
}

export function setIntAttribute(node: NodeProto, name: string, value: number | bigint): AttributeProto {
  const a = emptyAttribute(name, AttributeType.INT);
  a.i = toInt64(value, `attribute ${name}`);
  return putAttribute(node, a);
}

export function setIntsAttribute(node: NodeProto, name: string, values: readonly (number | bigint)[]): AttributeProto {
  const a = emptyAttribute(name, AttributeType.INTS);
  a.ints = values.map((v, i) => toInt64(v, `attribute ${name}[${i}]`));
  return putAttribute(node, a);
}

/** FLOAT attribute (stored as float32, so the value is rounded with Math.fround). */
export function setFloatAttribute(node: NodeProto, name: string, value: number): AttributeProto {
  const a = emptyAttribute(name, AttributeType.FLOAT);
  a.f = checkFloat(value, `attribute ${name}`);
  return putAttribute(node, a);
}

export function setFloatsAttribute(node: NodeProto, name: string, values: readonly number[]): AttributeProto {
  const a = emptyAttribute(name, AttributeType.FLOATS);
  a.floats = values.map((v, i) => checkFloat(v, `attribute ${name}[${i}]`));
  return putAttribute(node, a);
}

export function setStringAttribute(node: NodeProto, name: string, value: string | Uint8Array): AttributeProto {
  const a = emptyAttribute(name, AttributeType.STRING);
  a.s = typeof value === 'string' ? utf8Encoder.encode(value) : value;
  return putAttribute(node, a);
}

export function setStringsAttribute(node: NodeProto, name: string, values: readonly (string | Uint8Array)[]): AttributeProto {
  const a = emptyAttribute(name, AttributeType.STRINGS);
  a.strings = values.map((v) => (typeof v === 'string' ? utf8Encoder.encode(v) : v));
  return putAttribute(node, a);
}

export function setTensorAttribute(node: NodeProto, name: string, tensor: TensorProto): AttributeProto {
  const a = emptyAttribute(name, AttributeType.TENSOR);
  a.t = tensor;
  return putAttribute(node, a);
}

export function setGraphAttribute(node: NodeProto, name: string, graph: GraphProto): AttributeProto {
  const a = emptyAttribute(name, AttributeType.GRAPH);
  a.g = graph;
  return putAttribute(node, a);
}

export function removeAttribute(node: NodeProto, name: string): boolean {
  const before = node.attribute.length;
  node.attribute = node.attribute.filter((a) => a.name !== name);
  return node.attribute.length !== before;
}

// ---------------------------------------------------------------------------------------------------
// Opsets

function isDefaultDomain(domain: string | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

function sameDomain(a: string | undefined, b: string | undefined): boolean {
  return isDefaultDomain(a) ? isDefaultDomain(b) : a === b;
}

/** The imported opset version of a domain ('' — the default, same as 'ai.onnx'); undefined if not imported. */
export function getOpsetVersion(model: OnnxModel, domain = ''): number | undefined {
  return model.opsetImport.find((o) => sameDomain(o.domain, domain))?.version;
}

/** Import `domain` at `version` (replacing the current import of that domain). */
export function setOpsetVersion(model: OnnxModel, version: number, domain = ''): void {
  if (!Number.isSafeInteger(version) || version < 1) throw invalidParameter('opset version', 'positive integer', version);
  const entry = model.opsetImport.find((o) => sameDomain(o.domain, domain));
  if (entry) entry.version = version;
  else model.opsetImport.push(isDefaultDomain(domain) ? { domain: '', version } : { domain, version });
}
