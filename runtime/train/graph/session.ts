// The session the training-graph code runs through, so the library never imports onnxruntime: the
// run/dispose part of the one session interface (runtime/core/session.ts). A Node ModelSession, a kiosk
// page session (through asGraphSession) and runtime/session/ort.ts's SessionHandler all fit it. Browser-safe.

export type { RunnableSession as GraphSession, SessionFactory } from '../../core/session.js';
