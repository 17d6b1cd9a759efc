// The kiosk's persistence: classes, their samples (JPEG blobs) and trained models (ONNX bytes with
// their metrics) in IndexedDB, so a taught model survives a reload or a power cut on the kiosk.
// A tiny promise wrapper over the raw IndexedDB API; no library.

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
}

export interface ModelRecord {
  id: string;
  name: string;
  created: number;
  /** Registry id / file name of the backbone it was trained on, or 'imported'. */
  backbone: string;
  labels: string[];
  onnx: Uint8Array;
  metrics?: ModelMetrics;
}

const DB_NAME = 'edgetune-kiosk';
const VERSION = 1;

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted (storage full?)'));
  });
}

export class Store {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(): Promise<Store> {
    if (typeof indexedDB === 'undefined') throw new Error('this browser has no IndexedDB: taught classes will not be saved');
    const open = indexedDB.open(DB_NAME, VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains('classes')) db.createObjectStore('classes', { keyPath: 'id' });
      if (!db.objectStoreNames.contains('samples')) {
        const s = db.createObjectStore('samples', { keyPath: 'id', autoIncrement: true });
        s.createIndex('classId', 'classId');
      }
      if (!db.objectStoreNames.contains('models')) db.createObjectStore('models', { keyPath: 'id' });
    };
    return new Store(await req(open));
  }

  async classes(): Promise<ClassRecord[]> {
    const all = await req(this.db.transaction('classes').objectStore('classes').getAll() as IDBRequest<ClassRecord[]>);
    return all.sort((a, b) => a.created - b.created);
  }

  async putClass(c: ClassRecord): Promise<void> {
    const tx = this.db.transaction('classes', 'readwrite');
    tx.objectStore('classes').put(c);
    await done(tx);
  }

  /** Delete a class and all its samples. */
  async deleteClass(id: string): Promise<void> {
    const tx = this.db.transaction(['classes', 'samples'], 'readwrite');
    tx.objectStore('classes').delete(id);
    const idx = tx.objectStore('samples').index('classId');
    const keys = await req(idx.getAllKeys(id));
    for (const k of keys) tx.objectStore('samples').delete(k);
    await done(tx);
  }

  async clearSamples(classId: string): Promise<void> {
    const tx = this.db.transaction('samples', 'readwrite');
    const keys = await req(tx.objectStore('samples').index('classId').getAllKeys(classId));
    for (const k of keys) tx.objectStore('samples').delete(k);
    await done(tx);
  }

  async addSamples(samples: SampleRecord[]): Promise<void> {
    if (!samples.length) return;
    const tx = this.db.transaction('samples', 'readwrite');
    const s = tx.objectStore('samples');
    for (const x of samples) s.add(x);
    await done(tx);
  }

  async samples(classId: string): Promise<SampleRecord[]> {
    return req(this.db.transaction('samples').objectStore('samples').index('classId').getAll(classId) as IDBRequest<SampleRecord[]>);
  }

  async sampleCount(classId: string): Promise<number> {
    return req(this.db.transaction('samples').objectStore('samples').index('classId').count(classId));
  }

  async models(): Promise<ModelRecord[]> {
    const all = await req(this.db.transaction('models').objectStore('models').getAll() as IDBRequest<ModelRecord[]>);
    return all.sort((a, b) => b.created - a.created);
  }

  async model(id: string): Promise<ModelRecord | undefined> {
    return req(this.db.transaction('models').objectStore('models').get(id) as IDBRequest<ModelRecord | undefined>);
  }

  async putModel(m: ModelRecord): Promise<void> {
    const tx = this.db.transaction('models', 'readwrite');
    tx.objectStore('models').put(m);
    await done(tx);
  }

  async deleteModel(id: string): Promise<void> {
    const tx = this.db.transaction('models', 'readwrite');
    tx.objectStore('models').delete(id);
    await done(tx);
  }
}

export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
