// The kiosk's persistence: classes, their samples (JPEG blobs) and trained models (ONNX bytes with
// their metrics) in IndexedDB, so a taught model survives a reload or a power cut on the kiosk.
// IndexedDB through `idb` (promises over requests and transactions, typed stores); the database
// (name, version 1, stores and index) is the one earlier builds wrote, so saved work stays.

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { Phase2Summary } from '../../train/phase2.js';

export interface ClassRecord {
  id: string;
  name: string;
  created: number;
}

export interface SampleRecord {
  id?: number;
  classId: string;
  blob: Blob;
  width: number;
  height: number;
  source: 'camera' | 'upload';
  /** File name for uploads. */
  name?: string;
  created: number;
}

/** The page's stored view of a taught model's report (runtime/train/summary.ts FinetuneSummary; teach.ts fills it from it). */
export interface ModelMetrics {
  valAccuracy: number | null;
  trainAccuracy: number;
  /** confusion[truth][predicted], validation set (training set when there is no validation split). */
  confusion: number[][];
  valCount: number;
  trainCount: number;
  epochs: number;
  /** linear | mlp | prototype */
  head?: string;
  ms: number;
  /** Phase 2 (unfrozen backbone blocks), when it ran: valAccuracy and confusion above are then phase 2's. */
  phase2?: Phase2Summary;
}

export interface ModelRecord {
  id: string;
  name: string;
  created: number;
  /** Registry id / file name of the backbone it was trained on, or 'imported'. */
  backbone: string;
  labels: string[];
  onnx: Uint8Array;
  /** The resume data of a model taught here (exported beside the model as `<name>.resume.bin`). */
  resume?: Uint8Array;
  metrics?: ModelMetrics;
}

const DB_NAME = 'edgetune-kiosk';
const VERSION = 1;

interface KioskDB extends DBSchema {
  classes: { key: string; value: ClassRecord };
  samples: { key: number; value: SampleRecord; indexes: { classId: string } };
  models: { key: string; value: ModelRecord };
}

export class Store {
  private constructor(private readonly db: IDBPDatabase<KioskDB>) {}

  static async open(): Promise<Store> {
    if (typeof indexedDB === 'undefined') throw new Error('this browser has no IndexedDB: taught classes will not be saved');
    const db = await openDB<KioskDB>(DB_NAME, VERSION, {
      upgrade(db) {
        if (!db.objectStoreNames.contains('classes')) db.createObjectStore('classes', { keyPath: 'id' });
        if (!db.objectStoreNames.contains('samples')) {
          const s = db.createObjectStore('samples', { keyPath: 'id', autoIncrement: true });
          s.createIndex('classId', 'classId');
        }
        if (!db.objectStoreNames.contains('models')) db.createObjectStore('models', { keyPath: 'id' });
      },
    });
    return new Store(db);
  }

  async classes(): Promise<ClassRecord[]> {
    const all = await this.db.getAll('classes');
    return all.sort((a, b) => a.created - b.created);
  }

  async putClass(c: ClassRecord): Promise<void> {
    await this.db.put('classes', c);
  }

  /** Delete a class and all its samples (one transaction). */
  async deleteClass(id: string): Promise<void> {
    const tx = this.db.transaction(['classes', 'samples'], 'readwrite');
    const samples = tx.objectStore('samples');
    const removed = tx.objectStore('classes').delete(id);
    const keys = await samples.index('classId').getAllKeys(id);
    await Promise.all([removed, ...keys.map((k) => samples.delete(k)), tx.done]);
  }

  async clearSamples(classId: string): Promise<void> {
    const tx = this.db.transaction('samples', 'readwrite');
    const keys = await tx.store.index('classId').getAllKeys(classId);
    await Promise.all([...keys.map((k) => tx.store.delete(k)), tx.done]);
  }

  async addSamples(samples: SampleRecord[]): Promise<void> {
    if (!samples.length) return;
    const tx = this.db.transaction(['classes', 'samples'], 'readwrite');
    // a class deleted meanwhile (in another tab on the same database) would keep these samples hidden
    // forever: never shown, trained or deleted. Checked in the same transaction as the writes.
    for (const id of new Set(samples.map((x) => x.classId))) {
      if ((await tx.objectStore('classes').getKey(id)) === undefined) {
        tx.done.catch(() => undefined);
        tx.abort();
        throw new Error('its class no longer exists (deleted in another tab?); reload the page');
      }
    }
    // a transaction that aborts (storage full) rejects tx.done with the reason
    const store = tx.objectStore('samples');
    await Promise.all([...samples.map((x) => store.add(x)), tx.done]);
  }

  async samples(classId: string): Promise<SampleRecord[]> {
    return this.db.getAllFromIndex('samples', 'classId', classId);
  }

  async sampleCount(classId: string): Promise<number> {
    return this.db.countFromIndex('samples', 'classId', classId);
  }

  async models(): Promise<ModelRecord[]> {
    const all = await this.db.getAll('models');
    return all.sort((a, b) => b.created - a.created);
  }

  async model(id: string): Promise<ModelRecord | undefined> {
    return this.db.get('models', id);
  }

  async putModel(m: ModelRecord): Promise<void> {
    await this.db.put('models', m);
  }

  async deleteModel(id: string): Promise<void> {
    await this.db.delete('models', id);
  }
}

export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
