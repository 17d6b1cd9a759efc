// The ONNX graph toolkit's helpers over decoded graphs (plain objects from model.ts), one module per
// job: dtypes.ts (element/attribute types), tensor-data.ts (TensorProto data in and out),
// topology.ts (initializers, producers/consumers, topological order, unique names), attributes.ts
// (nodes, attributes, opsets), editing.ts (metadata, value info, signature, outputs, pruning).
// This module re-exports them all, so `import … from './graph.js'` keeps working. Browser-safe.

export * from './dtypes.js';
export * from './tensor-data.js';
export * from './topology.js';
export * from './attributes.js';
export * from './editing.js';
