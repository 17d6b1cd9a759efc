// Pre-pass: drop Identity nodes (and inference Dropout nodes whose mask nothing reads, which are
// identities at inference), rewiring readers to the identity's input. When the identity produces a
// graph output, the producer of its input is renamed to write the output directly instead.
// Browser-safe.

import { consumerMap, removeNodes } from '../graph.js';
import type { NodeProto, OnnxModel } from '../model.js';

function isIdentity(n: NodeProto, used: (name: string) => boolean): boolean {
  if ((n.domain ?? '') !== '') return false;
  if (n.opType === 'Identity') return true;
  // Dropout at inference: output = input (training_mode input absent or never set here).
  return n.opType === 'Dropout' && n.input.length <= 2 && !(n.output[1] && used(n.output[1]));
}

/** Remove identities in place. Returns how many nodes were removed. */
export function removeIdentity(model: OnnxModel): number {
  const g = model.graph;
  if (g.node.some((n) => n.attribute.some((a) => a.g || a.graphs.length))) {
    // Subgraphs may read values implicitly; keep it simple and safe.
    return 0;
  }
  const outputs = new Set(g.output.map((o) => o.name));
  const inputs = new Set([...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name)]);
  let removed = 0;
  for (;;) {
    const consumers = consumerMap(g);
    const used = (name: string) => (consumers.get(name)?.length ?? 0) > 0 || outputs.has(name);
    const node = g.node.find((n) => {
      if (!isIdentity(n, used)) return false;
      const out = n.output[0]!;
      const src = n.input[0]!;
      return !(outputs.has(out) && (inputs.has(src) || outputs.has(src)));
    });
    if (!node) break;
    const src = node.input[0]!;
    const out = node.output[0]!;
    if (outputs.has(out)) {
      // The producer writes the graph output name; everyone reading src reads out.
      for (const n of g.node) {
        if (n === node) continue;
        n.output = n.output.map((o) => (o === src ? out : o));
        n.input = n.input.map((i) => (i === src ? out : i));
      }
      for (const v of g.valueInfo) if (v.name === src) v.name = out;
    } else {
      for (const n of g.node) n.input = n.input.map((i) => (i === out ? src : i));
    }
    removeNodes(g, node);
    removed++;
  }
  return removed;
}
