// Reading model files from disk (Node): the embedded `edgetune.model` description, and whole models
// with their external data inlined (so every model edgetune writes is one self-contained file).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { parseModelInfo, readMetadataProps, type EmbeddedModelInfo } from '../core/metadata.js';
import { decodeModel, encodeModel, type GraphProto, type OnnxModel, type TensorProto } from '../onnx/model.js';

/**
 * The embedded description of a model file, or undefined when it has none or cannot be read (the
 * session load reports an unreadable file). Errors: EMODEL naming the file and the field when the
 * description is there but breaks its contract (core/metadata.ts).
 */
export async function readModelInfo(file: string): Promise<EmbeddedModelInfo | undefined> {
  let props: Record<string, string>;
  try {
    props = readMetadataProps(await readFile(file));
  } catch {
    return undefined;
  }
  return parseModelInfo(props, file);
}

/**
 * Read an ONNX model file with any external data (weights in `model.onnx.data` beside it, ONNX's
 * `data_location: EXTERNAL` + `external_data` {location, offset, length}) read relative to the
 * model's folder and moved into `raw_data`, so the returned model is self-contained: encoding it
 * writes one file that needs nothing beside it. Errors: EMODEL naming the model and the data file
 * (missing, shorter than the tensor says, or a location outside the model's folder).
 */
export async function loadModelFile(file: string): Promise<{ bytes: Uint8Array; model: OnnxModel; externalFiles: string[] }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${file}: cannot read model file (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`, { subject: file });
  }
  let model: OnnxModel;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${file}: not a readable ONNX model (${messageOf(err)})`, { subject: file });
  }
  const dir = path.dirname(path.resolve(file));
  const cache = new Map<string, Uint8Array>();
  const used = new Set<string>();
  const inline = async (t: TensorProto): Promise<void> => {
    if (t.dataLocation !== 1) return;
    const kv = Object.fromEntries(t.externalData.map((e) => [e.key ?? '', e.value ?? '']));
    const loc = kv.location ?? '';
    const where = path.resolve(dir, loc);
    if (!loc || path.isAbsolute(loc) || !where.startsWith(dir + path.sep)) {
      throw new EdgetuneError('EMODEL', `${file}: tensor ${t.name ?? '?'} keeps its data in "${loc}", which is not a file beside the model`, { subject: file });
    }
    let data = cache.get(where);
    if (!data) {
      try {
        data = new Uint8Array(await readFile(where));
      } catch (err) {
        throw new EdgetuneError('EMODEL', `${file}: external data file ${where} for tensor ${t.name ?? '?'} cannot be read (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`, { subject: file });
      }
      cache.set(where, data);
    }
    used.add(where);
    const offset = Number(kv.offset ?? 0);
    const length = kv.length !== undefined ? Number(kv.length) : data.byteLength - offset;
    if (offset + length > data.byteLength) {
      throw new EdgetuneError('EMODEL', `${file}: external data file ${where} is ${data.byteLength} bytes, but tensor ${t.name ?? '?'} needs bytes ${offset}..${offset + length}`, { subject: file });
    }
    t.rawData = data.slice(offset, offset + length);
    t.externalData = [];
    t.dataLocation = 0;
  };
  const walk = async (g: GraphProto): Promise<void> => {
    for (const t of g.initializer) await inline(t);
    for (const n of g.node) for (const a of n.attribute) {
      if (a.t) await inline(a.t);
      if (a.g) await walk(a.g);
      for (const sg of a.graphs ?? []) await walk(sg);
    }
  };
  await walk(model.graph);
  return { bytes: used.size ? encodeModel(model) : bytes, model, externalFiles: [...used] };
}
