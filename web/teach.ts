// placeholder, replaced when the trainer integration lands
import type { KioskConfig } from '../runtime/commands/kiosk.js';
import type { ModelMetrics } from './store.js';
import type { WebProvider } from './engine.js';
export interface TrainProgress { done: number; total: number; message: string }
export interface TrainRequest { backbone: Uint8Array; model: KioskConfig['model']; classes: { name: string; samples: Blob[] }[]; augment: boolean; valSplit: number; order: WebProvider[]; onProgress(p: TrainProgress): void }
export async function trainInPage(_r: TrainRequest): Promise<{ onnx: Uint8Array; labels: string[]; metrics: ModelMetrics; provider: WebProvider }> { throw new Error('not yet'); }
