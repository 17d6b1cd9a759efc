// Graph structure: initializer lookup, producers/consumers (subgraph references included),
// topological order and unique names. Browser-safe.

import { EdgetuneError } from '../core/errors.js';
import type {
  GraphProto,
  NodeProto,
  OnnxModel,
  TensorProto,
} from './model.js';

// ---------------------------------------------------------------------------------------------------
// Initializers

export function getInitializer(graph: GraphProto, name: string): TensorProto | undefined {
  return graph.initializer.find((t) => t.name === name);
}

/** The initializer, or an EMODEL error naming the missing tensor. */
export function requireInitializer(graph: GraphProto, name: string): TensorProto {
  const t = getInitializer(graph, name);
  if (!t) throw new EdgetuneError('EMODEL', `initializer "${name}" not found in graph${graph.name ? ` "${graph.name}"` : ''}`);
  return t;
}

/** Add an initializer, or replace the one with the same name (in place, keeping its position). */
export function setInitializer(graph: GraphProto, tensor: TensorProto): TensorProto {
  if (!tensor.name) throw new EdgetuneError('EARG', 'an initializer needs a name');
  const i = graph.initializer.findIndex((t) => t.name === tensor.name);
  if (i >= 0) graph.initializer[i] = tensor;
  else graph.initializer.push(tensor);
  return tensor;
}

/** Remove an initializer (and the graph input that merely declares it, as IR < 4 models have). */
export function removeInitializer(graph: GraphProto, name: string): boolean {
  const before = graph.initializer.length;
  graph.initializer = graph.initializer.filter((t) => t.name !== name);
  if (graph.initializer.length === before) return false;
  graph.input = graph.input.filter((v) => v.name !== name);
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Producers, consumers, subgraph references

function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    for (const g of a.graphs) out.push(g);
  }
  return out;
}

/** Names a subgraph reads from enclosing scopes (used but not defined inside it). */
function outerReferences(graph: GraphProto): Set<string> {
  const defined = new Set<string>();
  for (const v of graph.input) if (v.name) defined.add(v.name);
  for (const t of graph.initializer) if (t.name) defined.add(t.name);
  for (const s of graph.sparseInitializer) if (s.values?.name) defined.add(s.values.name);
  for (const n of graph.node) for (const o of n.output) if (o) defined.add(o);
  const refs = new Set<string>();
  for (const n of graph.node) for (const name of nodeReads(n)) if (!defined.has(name)) refs.add(name);
  for (const v of graph.output) if (v.name && !defined.has(v.name)) refs.add(v.name);
  return refs;
}

/** Every value a node reads: its inputs plus names its subgraphs take from outer scopes. */
export function nodeReads(node: NodeProto): string[] {
  const names = node.input.filter((n) => n !== '');
  for (const g of subgraphsOf(node)) for (const r of outerReferences(g)) names.push(r);
  return names;
}

/** value name → the node producing it. */
export function producerMap(graph: GraphProto): Map<string, NodeProto> {
  const m = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) m.set(o, n);
  return m;
}

/** value name → the nodes reading it (inputs, or implicitly from a subgraph), in graph order. */
export function consumerMap(graph: GraphProto): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const name of new Set(nodeReads(n))) {
      const list = m.get(name);
      if (list) list.push(n);
      else m.set(name, [n]);
    }
  }
  return m;
}

export function findProducer(graph: GraphProto, value: string): NodeProto | undefined {
  return graph.node.find((n) => n.output.includes(value));
}

export function findConsumers(graph: GraphProto, value: string): NodeProto[] {
  return graph.node.filter((n) => nodeReads(n).includes(value));
}

/** A node by name. */
export function findNode(graph: GraphProto, name: string): NodeProto | undefined {
  return graph.node.find((n) => n.name === name);
}

// ---------------------------------------------------------------------------------------------------
// Topological order

/** A node in words for messages: `Conv node "conv1"`, or for an unnamed one `MaxPool node (unnamed, output "pool1")`. */
export function describeNode(n: NodeProto): string {
  if (n.name) return `${n.opType ?? '?'} node "${n.name}"`;
  return `${n.opType ?? '?'} node (unnamed${n.output[0] ? `, output "${n.output[0]}"` : ''})`;
}

/**
 * Nodes in a valid order, as close to the given one as possible (stable depth-first; an already sorted
 * list comes back unchanged). Throws EMODEL on a cycle.
 */
function sortedNodes(graph: GraphProto): NodeProto[] {
  const producers = producerMap(graph);
  const state = new Map<NodeProto, 1 | 2>(); // 1 visiting, 2 done
  const out: NodeProto[] = [];
  for (const root of graph.node) {
    if (state.get(root) === 2) continue;
    const stack: { node: NodeProto; deps: NodeProto[]; i: number }[] = [];
    const push = (node: NodeProto) => {
      state.set(node, 1);
      const deps: NodeProto[] = [];
      for (const name of nodeReads(node)) {
        const p = producers.get(name);
        if (p && p !== node) deps.push(p);
      }
      stack.push({ node, deps, i: 0 });
    };
    push(root);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.i < top.deps.length) {
        const dep = top.deps[top.i++]!;
        const s = state.get(dep);
        if (s === 1) throw new EdgetuneError('EMODEL', `graph has a cycle through ${describeNode(dep)}`);
        if (s !== 2) push(dep);
      } else {
        stack.pop();
        state.set(top.node, 2);
        out.push(top.node);
      }
    }
  }
  return out;
}

/** Reorder graph.node (and subgraphs' nodes) topologically, in place; stable for sorted lists. */
export function topologicalSort(graph: GraphProto): void {
  graph.node = sortedNodes(graph);
  for (const n of graph.node) for (const g of subgraphsOf(n)) topologicalSort(g);
}

/** Whether every node comes after the producers of everything it reads (subgraphs included). */
export function isTopologicallySorted(graph: GraphProto): boolean {
  const producers = producerMap(graph);
  const seen = new Set<NodeProto>();
  for (const n of graph.node) {
    for (const name of nodeReads(n)) {
      const p = producers.get(name);
      if (p && p !== n && !seen.has(p)) return false;
    }
    seen.add(n);
    for (const g of subgraphsOf(n)) if (!isTopologicallySorted(g)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Unique names

export interface NameGenerator {
  /** `base` if unused, else `base_1`, `base_2`, …; the name returned is reserved. */
  next(base: string): string;
  reserve(name: string): void;
  has(name: string): boolean;
}

function collectNames(graph: GraphProto, into: Set<string>): void {
  if (graph.name) into.add(graph.name);
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) if (v.name) into.add(v.name);
  for (const t of graph.initializer) if (t.name) into.add(t.name);
  for (const s of graph.sparseInitializer) if (s.values?.name) into.add(s.values.name);
  for (const n of graph.node) {
    if (n.name) into.add(n.name);
    for (const x of n.input) if (x) into.add(x);
    for (const x of n.output) if (x) into.add(x);
    for (const g of subgraphsOf(n)) collectNames(g, into);
  }
}

/** Fresh names that collide with no node, value, initializer or graph name in the model or graph. */
export function nameGenerator(scope: OnnxModel | GraphProto): NameGenerator {
  const used = new Set<string>();
  if ('graph' in scope && 'irVersion' in scope) {
    collectNames(scope.graph, used);
    for (const f of scope.functions) {
      for (const n of f.node) {
        if (n.name) used.add(n.name);
        for (const x of [...n.input, ...n.output]) if (x) used.add(x);
      }
    }
  } else {
    collectNames(scope as GraphProto, used);
  }
  return {
    next(base: string): string {
      let name = base;
      for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
      used.add(name);
      return name;
    },
    reserve(name: string): void {
      used.add(name);
    },
    has(name: string): boolean {
      return used.has(name);
    },
  };
}
