// The session-like interface the training-graph code runs through, so the library never imports
// onnxruntime: runtime/session/ort.ts's SessionHandler fits it, and so does a thin wrapper over
// onnxruntime-node, onnxruntime-web (wasm/WebGPU) or any other runner. Browser-safe.

import type { TensorData } from '../../core/tensor.js';

/** Runs one ONNX model. `fetches` limits the outputs (all when absent). */
export interface GraphSession {
  run(feeds: Record<string, TensorData>, fetches?: readonly string[]): Promise<Record<string, TensorData>>;
  release?(): Promise<void>;
}

/** Opens a session on encoded model bytes (e.g. `(b) => nodeBackend.create(b, 'cpu', {})`). */
export type SessionFactory = (model: Uint8Array) => Promise<GraphSession>;
