// Reading model files from disk (Node): the embedded `edgetune.model` description, and whole models
// with their external data inlined (so every model edgetune writes is one self-contained file).

import type { FileHandle } from 'node:fs/promises';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { parseModelInfo, readMetadataProps, type EmbeddedModelInfo } from '../core/metadata.js';
import { dataTypeBits } from '../onnx/dtypes.js';
import { decodeModel, encodeModel, type GraphProto, type OnnxModel, type TensorProto } from '../onnx/model.js';
import { elementCount } from '../onnx/tensor-data.js';
import { placeholderKind } from '../core/text.js';
import { MAX_MODEL_FILE_BYTES, openRegularFile, readRange, readRegularFile, sideFilePath } from './read-file.js';

/**
 * The embedded description of a model file, or undefined when it has none or cannot be read (the
 * session load reports an unreadable file). Errors: EMODEL naming the file and the field when the
 * description is there but breaks its contract (core/metadata.ts).
 */
export async function readModelInfo(file: string): Promise<EmbeddedModelInfo | undefined> {
  let props: Record<string, string>;
  try {
    props = readMetadataProps(await readRegularFile(file, { what: 'model file', maxBytes: MAX_MODEL_FILE_BYTES, code: 'EMODEL' }));
  } catch {
    return undefined;
  }
  return parseModelInfo(props, file);
}

/**
 * Read an ONNX model file with any external data (weights in `model.onnx.data` beside it, ONNX's
 * `data_location: EXTERNAL` + `external_data` {location, offset, length}) read relative to the
 * model's folder and moved into `raw_data`, so the returned model is self-contained: encoding it
 * writes one file that needs nothing beside it. The model file and every data file go through
 * runtime/io/read-file.ts: regular files only (never a FIFO or a device), the model at most
 * MAX_MODEL_FILE_BYTES, a data file inside the model's folder (symbolic links resolved) and only the
 * byte ranges the tensors declare are read (a tensor's length defaults to what its dims and type
 * need). Errors: EMODEL naming the model and the data file (missing, not a regular file, shorter
 * than the tensor says, or outside the model's folder).
 */
export async function loadModelFile(file: string): Promise<{ bytes: Uint8Array; model: OnnxModel; externalFiles: string[] }> {
  const bytes = await readRegularFile(file, { what: 'model file', maxBytes: MAX_MODEL_FILE_BYTES, bound: "protobuf's limit for one ONNX model", code: 'EMODEL' });
  let model: OnnxModel;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    const instead = placeholderKind(bytes);
    throw new EdgetuneError('EMODEL', instead ? `${file}: ${instead}` : `${file}: not a readable ONNX model (${messageOf(err)})`, { subject: file });
  }
  const externalFiles = await inlineExternalData(model, file);
  return { bytes: externalFiles.length ? encodeModel(model) : bytes, model, externalFiles };
}

/** Every tensor of `g` (initializers, node attributes, subgraphs) whose data is external. */
export function externalTensors(g: GraphProto, out: TensorProto[] = []): TensorProto[] {
  for (const t of g.initializer) if (t.dataLocation === 1) out.push(t);
  for (const n of g.node) for (const a of n.attribute) {
    if (a.t?.dataLocation === 1) out.push(a.t);
    if (a.g) externalTensors(a.g, out);
    for (const sg of a.graphs ?? []) externalTensors(sg, out);
  }
  return out;
}

/**
 * Move the external data of `model` (decoded from `file`) into its tensors' raw_data (see
 * loadModelFile for the checks). With `check` only (the model stays as it is), the data files are
 * checked and nothing is read. Returns the data files used (real paths).
 */
export async function inlineExternalData(model: OnnxModel, file: string, opts: { checkOnly?: boolean } = {}): Promise<string[]> {
  const tensors = externalTensors(model.graph);
  if (!tensors.length) return [];
  const open = new Map<string, { handle: FileHandle; size: number }>();
  try {
    for (const t of tensors) {
      const kv = Object.fromEntries(t.externalData.map((e) => [e.key ?? '', e.value ?? '']));
      const what = `external data of tensor ${t.name ?? '?'}`;
      const where = await sideFilePath(file, kv.location ?? '', { what, code: 'EMODEL' });
      const bits = dataTypeBits(t.dataType ?? 0);
      const need = bits ? Math.ceil((elementCount(t.dims.map(Number)) * bits) / 8) : undefined;
      const offset = Number(kv.offset ?? 0);
      const length = kv.length !== undefined ? Number(kv.length) : need;
      if (!Number.isSafeInteger(offset) || offset < 0 || length === undefined || !Number.isSafeInteger(length) || length < 0 || (need !== undefined && length !== need)) {
        throw new EdgetuneError('EMODEL', `${file}: ${what} declares offset ${kv.offset ?? 0} and length ${kv.length ?? '(none)'}, but its type and dims need ${need ?? 'an explicit length of'} bytes`, { subject: file });
      }
      let f = open.get(where);
      if (!f) {
        f = await openRegularFile(where, { what: 'external data file', maxBytes: MAX_MODEL_FILE_BYTES * 8, bound: 'the largest accepted', code: 'EMODEL' });
        open.set(where, f);
      }
      if (offset + length > f.size) {
        throw new EdgetuneError('EMODEL', `${file}: external data file ${where} is ${f.size} bytes, but tensor ${t.name ?? '?'} needs bytes ${offset}..${offset + length}`, { subject: file });
      }
      if (opts.checkOnly) continue;
      t.rawData = await readRange(f.handle, offset, length);
      t.externalData = [];
      t.dataLocation = 0;
    }
  } finally {
    for (const f of open.values()) await f.handle.close();
  }
  return [...open.keys()];
}
