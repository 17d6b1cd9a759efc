// `edgetune export --format triton` end to end: every registry model present in ../shared/models, an
// imported Coral .tflite, a Teachable Machine tfjs model.json and a model fine-tuned here, each written
// as a Triton repository entry. Every config.pbtxt is parsed twice against Triton's own schema
// (../shared/specs/triton/model_config.proto): by Debian's `protoc --encode=inference.ModelConfig` and,
// in Node, by @bufbuild/protobuf's text-format parser with the schema loaded by protobufjs (unknown
// fields and enum values are errors). Each <version>/model.onnx is opened in a bare onnxruntime session
// with the config's names, data types and dims, and a real photo, preprocessed as the config's card
// parameter says, must come out as the label labels.txt gives for the top output index. Also: versions
// kept, the refusals (fixed batch with max_batch_size > 0, dynamic batching without batching, FP16 class
// output, a clashing existing entry, --out replacing its input), and Triton's densenet_onnx example.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { createFileRegistry, fromBinary, toJson, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { fromText } from '@bufbuild/protobuf/txtpb';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelInfo } from '../../runtime/core/metadata.js';
import { decodeImage } from '../../runtime/image/decode.js';
import { serveModels } from '../../runtime/serve/server.js';
import { toTensor } from '../../runtime/image/preprocess.js';
import { repoRoot, runCli, shared, sharedDir, tempDir } from '../helpers.js';

const SPECS = shared('specs', 'triton');
const PROTO = path.join(SPECS, 'model_config.proto');
const DENSENET = path.join(SPECS, 'examples', 'densenet_onnx');
const cache = tempDir('edgetune-triton-cache-');
const env = { EDGETUNE_CACHE: cache, EDGETUNE_OFFLINE: '1' };
const cli = (args: string[]) => runCli(args, { env, timeoutMs: 170_000 });

/** protoc from Debian's protobuf-compiler; the test fails (never skips) without it. */
function protocEncode(configFile: string): Buffer {
  const v = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) throw new Error('protoc missing: apt-get install protobuf-compiler (.ci/run installs it)');
  return execFileSync('protoc', [`--encode=inference.ModelConfig`, `-I${SPECS}`, PROTO], { input: readFileSync(configFile), stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * inference.ModelConfig as a @bufbuild/protobuf descriptor, from Triton's .proto read by protobufjs
 * (keepCase: the text format uses the .proto's field names). protobufjs writes type names relative to
 * their scope; the registry wants them fully qualified (map entries are nested in their message).
 */
async function modelConfigSchema(): Promise<DescMessage> {
  const root = await new protobuf.Root().load(PROTO, { keepCase: true });
  root.resolveAll();
  // toDescriptor is added to Root by protobufjs/ext/descriptor (imported above); its typings do not say so.
  const set = (root as unknown as { toDescriptor(syntax: string): unknown }).toDescriptor('proto3') as { file: { package: string; messageType: MsgDesc[] }[] };
  type MsgDesc = { name: string; field?: { typeName?: string }[]; nestedType?: (MsgDesc & { options?: { mapEntry?: boolean } })[] };
  const qualify = (msgs: MsgDesc[] | undefined, scope: protobuf.Namespace) => {
    for (const m of msgs ?? []) {
      const t = scope.lookupType(m.name);
      const nested = m.nestedType ?? [];
      const own = new Set(nested.map((n) => n.name));
      for (const f of [...(m.field ?? []), ...nested.filter((n) => n.options?.mapEntry).flatMap((n) => n.field ?? [])]) {
        if (f.typeName && !f.typeName.startsWith('.')) f.typeName = own.has(f.typeName) ? `${t.fullName}.${f.typeName}` : t.lookupTypeOrEnum(f.typeName).fullName;
      }
      qualify(nested.filter((n) => !n.options?.mapEntry), t);
    }
  };
  for (const f of set.file) qualify(f.messageType, root.lookup(f.package) as protobuf.Namespace);
  const bytes = descriptor.FileDescriptorSet.encode(set as never).finish();
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes)).getMessage('inference.ModelConfig')!;
}

interface TensorCfg {
  name: string;
  dataType: number;
  format: number;
  dims: bigint[];
  labelFilename: string;
}
interface ParsedConfig {
  name: string;
  platform: string;
  maxBatchSize: number;
  input: TensorCfg[];
  output: TensorCfg[];
  /** model_config.proto's `oneof scheduling_choice` (dynamic_batching, sequence_batching, ensemble_scheduling). */
  schedulingChoice: { case?: string };
  instanceGroup: { kind: number; count: number }[];
  parameters: Record<string, { stringValue: string }>;
}

let Schema: DescMessage;
const parseConfig = (text: string) => fromText(Schema, text) as unknown as ParsedConfig;
/** Enum values of model_config.proto (DataType, Format, Kind), for readable assertions. */
const DT = { TYPE_FP32: 11, TYPE_FP16: 10 };
const FORMAT_NONE = 0;
const FORMAT_NCHW = 2;
const KIND_CPU = 2;

/** Everything one exported entry must satisfy: both parsers, bare onnxruntime with the config's names and dims, labels aligned with output indices. */
async function checkEntry(repo: string, name: string, version = 1): Promise<{ cfg: ParsedConfig; labels: string[]; top?: string }> {
  const entry = path.join(repo, name);
  const configFile = path.join(entry, 'config.pbtxt');
  expect(protocEncode(configFile).length).toBeGreaterThan(0);
  const cfg = parseConfig(readFileSync(configFile, 'utf8'));
  expect(cfg.name).toBe(name);
  expect(cfg.platform).toBe('onnxruntime_onnx');
  // Triton's own load check (ValidateModelInput, "model input NHWC/NCHW require 3 dims"; model_config.proto
  // Format: dims give the 3 non-batch dimensions): a format on any other rank and Triton refuses the model
  for (const t of cfg.input) if (t.format !== FORMAT_NONE) expect([t.name, t.dims.length]).toEqual([t.name, 3]);
  const modelFile = path.join(entry, String(version), 'model.onnx');
  expect(cfg.parameters['edgetune.sha256']!.stringValue).toBe(createHash('sha256').update(readFileSync(modelFile)).digest('hex'));
  const info = parseModelInfo({ 'edgetune.model': cfg.parameters['edgetune.model']!.stringValue }, configFile)!;
  const labels = readFileSync(path.join(entry, 'labels.txt'), 'utf8').split('\n').slice(0, -1);
  expect(labels).toEqual([...Array.from({ length: info.labelOffset ?? 0 }, () => 'background'), ...info.labels]);

  // Bare onnxruntime with the config's names and dims (a batch of 2 where Triton may batch).
  const s = await ort.InferenceSession.create(modelFile);
  expect(s.inputNames).toEqual(cfg.input.map((t) => t.name));
  expect(s.outputNames).toEqual(cfg.output.map((t) => t.name));
  const batch = cfg.maxBatchSize > 0 ? 2 : 0;
  const shapeOf = (t: TensorCfg) => [...(batch ? [batch] : []), ...t.dims.map((d) => (d < 0n ? 1 : Number(d)))];
  expect(cfg.input).toHaveLength(1);
  const inCfg = cfg.input[0]!;
  expect(inCfg.dataType).toBe(DT.TYPE_FP32);
  const dims = shapeOf(inCfg);
  const per = dims.reduce((a, b) => a * b, 1) / (batch || 1);
  const photo = info.preprocess.channels === 3 ? shared('camera', 'winml_dog.jpg') : shared('camera', 'winml_mnist_28.png');
  const x = toTensor([await decodeImage(photo, info.preprocess)], info.preprocess).data as Float32Array;
  expect(x.length).toBe(per);
  const feed = new Float32Array(per * (batch || 1));
  for (let b = 0; b < (batch || 1); b++) feed.set(x, b * per);
  const y = await s.run({ [inCfg.name]: new ort.Tensor('float32', feed, dims) });
  for (const o of cfg.output) {
    expect(o.dataType).toBe(DT.TYPE_FP32);
    expect(y[o.name]!.dims).toEqual(shapeOf(o));
  }
  await s.release();
  const cls = cfg.output.find((o) => o.labelFilename);
  if (!cls) return { cfg, labels };
  expect(cls.labelFilename).toBe('labels.txt');
  const row = [...(y[cls.name]!.data as Float32Array)].slice(0, y[cls.name]!.data.length / (batch || 1));
  expect(labels.length).toBe(row.length);
  return { cfg, labels, top: labels[row.indexOf(Math.max(...row))] };
}

beforeAll(async () => {
  Schema = await modelConfigSchema();
});

describe('the schema checks can fail', () => {
  it('protoc and the Node parser accept Triton\'s densenet_onnx example and refuse a misspelt field and enum value', () => {
    const example = path.join(DENSENET, 'config.pbtxt');
    expect(protocEncode(example).length).toBeGreaterThan(0);
    const cfg = parseConfig(readFileSync(example, 'utf8'));
    expect(cfg.output[0]!.labelFilename).toBe('densenet_labels.txt');
    const bad = tempDir('edgetune-triton-bad-');
    const file = path.join(bad, 'config.pbtxt');
    writeFileSync(file, 'name: "x"\nmax_batch: 1\n');
    expect(() => protocEncode(file)).toThrow();
    expect(() => parseConfig('name: "x"\nmax_batch: 1\n')).toThrow('unknown field "max_batch" for message inference.ModelConfig');
    expect(() => parseConfig('input [ { data_type: TYPE_FP33 } ]')).toThrow('unknown enum value "TYPE_FP33" for enum inference.DataType');
  });
});

/**
 * Registry models present in ../shared/models and what their entries must say: max_batch_size, input
 * dims, class output and its dims, and the top label of the dog photo (winml_dog.jpg) read from
 * labels.txt at the top output index (measured: the same labels `edgetune classify` prints for it).
 */
const REGISTRY: Record<string, { mbs: number; input: number[]; output: [string, number[]]; top: string } | { refused: string }> = {
  'mobilenetv2-int8': { mbs: 8, input: [3, 224, 224], output: ['output', [1000]], top: 'Golden Retriever' },
  'mobilenetv2-fp32': { mbs: 8, input: [3, 224, 224], output: ['output', [1000]], top: 'Golden Retriever' },
  'squeezenet1.1': { mbs: 0, input: [1, 3, 224, 224], output: ['softmaxout_1', [1, 1000, 1, 1]], top: 'Golden Retriever' },
  'mobilenetv1-0.25-128': { mbs: 0, input: [1, 3, 128, 128], output: ['MobilenetV1/Predictions/Reshape_1', [1, 1001]], top: 'Golden Retriever' },
  mnist: { mbs: 0, input: [1, 1, 28, 28], output: ['Plus214_Output_0', [1, 10]], top: '8' },
  'squeezenet1.1-fp16': {
    refused: `${path.join(sharedDir, 'models', 'SqueezeNet_fp16.onnx')}: class output "softmaxout_1" is TYPE_FP16, which Triton's classification extension cannot rank (its top-k has no FP16 case: a classification request would fail); export a model with an FP32 output (e.g. the model's fp32 twin)`,
  },
};

describe('export --format triton: registry models', () => {
  const repo = tempDir('edgetune-triton-repo-');
  const registry = JSON.parse(readFileSync(path.join(repoRoot, 'models', 'registry.json'), 'utf8')) as { models: { id: string; file: string }[] };
  const present = registry.models.filter((m) => existsSync(path.join(sharedDir, 'models', m.file))).map((m) => m.id);

  it('the table covers exactly the registry models present in ../shared/models', () => {
    expect(present.sort()).toEqual(Object.keys(REGISTRY).sort());
  });

  for (const [id, want] of Object.entries(REGISTRY)) {
    it(`${id}: ${'refused' in want ? 'refused with the reason' : 'config parses (protoc + Node), model.onnx runs with its names and dims, labels line up (winml_dog.jpg → the top label)'}`, async () => {
      const r = await cli(['export', id, '--format', 'triton', '--out', repo]);
      if ('refused' in want) {
        expect(r.code).toBe(2);
        expect(r.stderr.trim()).toBe(`edgetune export: ${want.refused}`);
        expect(existsSync(path.join(repo, id))).toBe(false);
        return;
      }
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`edgetune export: wrote ${path.join(repo, id)} version 1 (max_batch_size ${want.mbs}`);
      const { cfg, top } = await checkEntry(repo, id);
      expect(cfg.maxBatchSize).toBe(want.mbs);
      expect(cfg.input[0]!.dims.map(Number)).toEqual(want.input);
      // the format where Triton takes one (3 dims); a fixed batch's full dims go without (Triton refused them:
      // "model input NHWC/NCHW require 3 dims")
      expect(cfg.input[0]!.format).toBe(want.mbs > 0 ? FORMAT_NCHW : FORMAT_NONE);
      const out = cfg.output.find((o) => o.labelFilename)!;
      expect([out.name, out.dims.map(Number)]).toEqual(want.output);
      expect(top).toBe(want.top);
    });
  }

  it('mobilenetv1-0.25-128 (class 0 is background): labels.txt has a background line first, so Triton\'s index → label matches', () => {
    const lines = readFileSync(path.join(repo, 'mobilenetv1-0.25-128', 'labels.txt'), 'utf8').split('\n');
    expect(lines.slice(0, 3)).toEqual(['background', 'tench', 'goldfish']);
    expect(lines).toHaveLength(1001 + 1); // 1001 outputs, trailing newline
  });

  it('squeezenet1.1 uses the fields of Triton\'s densenet_onnx example (an ONNX ImageNet classifier without batching), and a label file of the same form', () => {
    const ours = parseConfig(readFileSync(path.join(repo, 'squeezenet1.1', 'config.pbtxt'), 'utf8'));
    const theirs = parseConfig(readFileSync(path.join(DENSENET, 'config.pbtxt'), 'utf8'));
    for (const k of ['platform', 'maxBatchSize'] as const) expect(ours[k]).toEqual(theirs[k]);
    expect(ours.input[0]!.dataType).toBe(theirs.input[0]!.dataType);
    // The example hides the batch 1 with reshape, which lets it say FORMAT_NCHW (Triton takes a format on 3
    // dims only); we keep the graph's full dims (Triton's rule for max_batch_size 0) and so give no format.
    expect(theirs.input[0]!.dims.map(Number)).toEqual([3, 224, 224]);
    expect(theirs.input[0]!.format).toBe(FORMAT_NCHW);
    expect(ours.input[0]!.dims.map(Number)).toEqual([1, 3, 224, 224]);
    expect(ours.input[0]!.format).toBe(FORMAT_NONE);
    const theirLabels = readFileSync(path.join(DENSENET, 'densenet_labels.txt'), 'utf8').trim().split('\n');
    const ourLabels = readFileSync(path.join(repo, 'squeezenet1.1', 'labels.txt'), 'utf8').trim().split('\n');
    expect(ourLabels.length).toBe(theirLabels.length);
    expect(ourLabels[0]!.toLowerCase()).toBe(theirLabels[0]!.toLowerCase()); // "tench" / "TENCH"
  });

  it('adding a version keeps the others; the same model under a clashing config is refused and changes nothing', async () => {
    const v1 = readFileSync(path.join(repo, 'mobilenetv2-int8', '1', 'model.onnx'));
    const r = await cli(['export', 'mobilenetv2-int8', '--format', 'triton', '--out', repo]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('version 2 (max_batch_size 8, 1 input, 1 output, 1000 labels; kept version 1)');
    expect(readFileSync(path.join(repo, 'mobilenetv2-int8', '1', 'model.onnx')).equals(v1)).toBe(true);
    await checkEntry(repo, 'mobilenetv2-int8', 2);
    expect(readdirSync(path.join(repo, 'mobilenetv2-int8')).sort()).toEqual(['1', '2', 'config.pbtxt', 'labels.txt']);

    const config = readFileSync(path.join(repo, 'mobilenetv2-int8', 'config.pbtxt'), 'utf8');
    const clash = await cli(['export', 'mnist', '--format', 'triton', '--out', repo, '--name', 'mobilenetv2-int8']);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain(`${path.join(repo, 'mobilenetv2-int8', 'config.pbtxt')} declares other inputs, outputs, batching or instances than`);
    expect(readFileSync(path.join(repo, 'mobilenetv2-int8', 'config.pbtxt'), 'utf8')).toBe(config);
    expect(readdirSync(path.join(repo, 'mobilenetv2-int8')).sort()).toEqual(['1', '2', 'config.pbtxt', 'labels.txt']);
  });

  it('refuses what Triton would refuse, and an --out that would replace its input', async () => {
    const fixed = await cli(['export', 'squeezenet1.1', '--format', 'triton', '--out', repo, '--name', 'sq4', '--max-batch-size', '4']);
    expect(fixed.code).toBe(2);
    expect(fixed.stderr).toContain('--max-batch-size 4 needs a dynamic first (batch) dimension on every input and output, but input "data_0" has shape [1, 3, 224, 224]; Triton refuses max_batch_size > 0 for it');
    const dyn = await cli(['export', 'squeezenet1.1', '--format', 'triton', '--out', repo, '--name', 'sqd', '--dynamic-batching']);
    expect(dyn.code).toBe(2);
    expect(dyn.stderr).toContain('--dynamic-batching needs max_batch_size > 0');
    const own = path.join(repo, 'mobilenetv2-int8', '2', 'model.onnx');
    const self = await cli(['export', own, '--format', 'triton', '--out', repo, '--name', 'mobilenetv2-int8', '--version', '2']);
    expect(self.code).toBe(2);
    expect(self.stderr.trim()).toBe(`edgetune export: --out ${repo} would replace the input model ${own} (mobilenetv2-int8/2/model.onnx); choose another --out, --name or --version`);
    const fmt = await cli(['export', 'mnist', '--format', 'kserve', '--out', repo]);
    expect(fmt.stderr.trim()).toBe('edgetune export: Expected triton for --format but received "kserve"');
    const ig = await cli(['export', 'mnist', '--format', 'triton', '--out', repo, '--instance-group', 'tpu:1']);
    expect(ig.stderr.trim()).toBe('edgetune export: Expected kind:count (kind cpu, gpu or auto; count 1..1024) for --instance-group but received "tpu:1"');
    for (const n of ['sq4', 'sqd']) expect(existsSync(path.join(repo, n))).toBe(false);
    expect(readdirSync(repo).filter((n) => n.startsWith('.'))).toEqual([]); // no temp left behind
  });
});

describe('export --format triton: imported and fine-tuned models', () => {
  const repo = tempDir('edgetune-triton-repo2-');

  it('an imported Coral .tflite (labels file with background): config parses, background line first, the dog photo reads golden retriever', async () => {
    const tflite = shared('models', 'tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite');
    const r = await cli(['export', tflite, '--labels', shared('models', 'tflite', 'coral_imagenet_labels.txt'), '--format', 'triton', '--out', repo]);
    expect(r.code, r.stderr).toBe(0);
    const { cfg, labels, top } = await checkEntry(repo, 'coral_mobilenet_v2_1.0_224_quant');
    expect(cfg.maxBatchSize).toBe(0);
    expect(labels[0]).toBe('background');
    expect(labels).toHaveLength(1001);
    expect(top).toBe('golden retriever'); // output 208, as import-cli.test.ts measures for this photo
  });

  it('a Teachable Machine tfjs model.json: entry named after its folder, its two class names; a half-built entry of a killed run is removed', async () => {
    const dead = spawnSync('true').pid; // a process that has exited: its temp folder is stale
    const stale = path.join(repo, `.twins-tfjs.${dead}.1700000000000.tmp`);
    mkdirSync(path.join(stale, '1'), { recursive: true });
    writeFileSync(path.join(stale, '1', 'model.onnx'), 'partial');
    const r = await cli(['export', shared('models', 'teachable-machine', 'twins-tfjs', 'model.json'), '--format', 'triton', '--out', repo]);
    expect(r.code, r.stderr).toBe(0);
    const { labels } = await checkEntry(repo, 'twins-tfjs');
    expect(labels).toHaveLength(2);
    expect(existsSync(stale)).toBe(false);
  });

  it('a model fine-tuned here (flowers5-small on mobilenetv2-fp32) with --dynamic-batching and --instance-group cpu:2', async () => {
    const work = tempDir('edgetune-triton-ft-');
    const model = path.join(work, 'flowers.onnx');
    const ds = shared('datasets', 'flowers5-small');
    const ft = await cli(['finetune', path.join(ds, 'train'), '--val', path.join(ds, 'val'), '--model', 'mobilenetv2-fp32', '--augment', 'none', '--out', model]);
    expect(ft.code, ft.stderr).toBe(0);
    const r = await cli(['export', model, '--format', 'triton', '--out', repo, '--dynamic-batching', '--instance-group', 'cpu:2', '--max-batch-size', '4']);
    expect(r.code, r.stderr).toBe(0);
    const { cfg, labels } = await checkEntry(repo, 'flowers');
    expect(cfg.maxBatchSize).toBe(4);
    expect(cfg.schedulingChoice.case).toBe('dynamicBatching');
    expect(cfg.instanceGroup.map((g) => [g.kind, g.count])).toEqual([[KIND_CPU, 2]]);
    expect(labels).toEqual(readdirSync(path.join(ds, 'train')).filter((n) => statSync(path.join(ds, 'train', n)).isDirectory()).sort());
  }, 200_000);
});

describe('serve\'s /config and the export: one configuration', () => {
  type Tensor = { name: string; data_type: string; format?: string; dims: number[]; label_filename?: string };
  type Json = { name: string; platform: string; max_batch_size?: number; input: Tensor[]; output: Tensor[] };
  /** The fields both write (parameters aside: their card names its writer, and sha256 its file). */
  const fields = (c: Json) => ({ name: c.name, platform: c.platform, max_batch_size: c.max_batch_size ?? 0, input: c.input.map((t) => ({ ...t, dims: t.dims.map(Number) })), output: c.output.map((t) => ({ ...t, dims: t.dims.map(Number) })) });

  it('mobilenetv2-int8 at max_batch_size 8 and 0, and mnist (fixed batch): /config equals config.pbtxt field for field', async () => {
    for (const [id, mbs] of [['mobilenetv2-int8', undefined], ['mobilenetv2-int8', 0], ['mnist', undefined]] as const) {
      const repo = tempDir('edgetune-triton-agree-');
      const r = await cli(['export', id, '--format', 'triton', '--out', repo, ...(mbs === undefined ? [] : ['--max-batch-size', String(mbs)])]);
      expect(r.code, r.stderr).toBe(0);
      // model_config.proto's JSON mapping (field names as in the .proto, enums by name; int64 dims as strings there, numbers in Triton's answer)
      const exported = fields(toJson(Schema, parseConfig(readFileSync(path.join(repo, id, 'config.pbtxt'), 'utf8')) as never, { useProtoFieldName: true }) as unknown as Json);
      const s = await serveModels([id], { port: 0, providers: ['cpu'], threads: 1, ...(mbs === undefined ? {} : { maxBatchSize: mbs }) });
      try {
        const served = fields((await (await fetch(`${s.url}v2/models/${id}/config`)).json()) as Json);
        // before (max_batch_size 0): /config said input dims [3, 224, 224] with FORMAT_NCHW and output [1000] (the batch
        // dimension dropped by its own batching rule) where the export writes [-1, 3, 224, 224] and [-1, 1000]
        expect([id, mbs, served]).toEqual([id, mbs, exported]);
        if (mbs === 0) {
          expect(served.input[0]).toEqual({ name: 'input', data_type: 'TYPE_FP32', dims: [-1, 3, 224, 224] });
          // served without batching: a batch of 2 is one request of full dims (before: 400 "batch of 2 is over the model's max_batch_size 0")
          const data = new Array(2 * 3 * 224 * 224).fill(0);
          const res = await fetch(`${s.url}v2/models/${id}/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input', shape: [2, 3, 224, 224], datatype: 'FP32', data }] }) });
          expect([res.status, ((await res.json()) as { outputs: { shape: number[] }[] }).outputs[0]!.shape]).toEqual([200, [2, 1000]]);
        }
      } finally {
        await s.close();
      }
    }
  }, 200_000);
});
