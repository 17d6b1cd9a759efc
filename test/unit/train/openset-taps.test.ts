// The open-set taps rule (runtime/train/graph/taps.ts openSetTapsOf) on every real backbone in ../shared:
// it finds the depthwise outputs of the last two residual blocks from the graph alone (no per-file table),
// the same tensors on the int8, fp32, TFLite-imported and Teachable Machine MobileNetV2s, the last two
// depthwise convolutions of a MobileNetV1 (no residual blocks), and none on SqueezeNet (no depthwise).

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { finetune } from '../../../runtime/train/node/finetune.js';
import { parseModelInfo, readMetadataProps } from '../../../runtime/core/metadata.js';
import { decodeModel } from '../../../runtime/onnx/model.js';
import { loadBackbone } from '../../../runtime/train/node/embed.js';
import { openSetTaps } from '../../../runtime/train/node/openset-taps.js';
import { openSetTapsOf } from '../../../runtime/train/graph/taps.js';
import { consumerMap, getIntAttribute, producerMap } from '../../../runtime/onnx/graph.js';
import type { NodeProto, OnnxModel } from '../../../runtime/onnx/model.js';
import { shared, tempDir } from '../../helpers.js';

const readdirOf = (dir: string): string[] => readdirSync(dir).sort().map((f) => path.join(dir, f));

/** The convolution a tap reads after (back through its activation, batch norm and Q/DQ), as read in the graph. */
function convOf(model: OnnxModel, tap: string): NodeProto {
  const producers = producerMap(model.graph);
  let n = producers.get(tap);
  while (n && ['Clip', 'Relu', 'BatchNormalization', 'QuantizeLinear', 'DequantizeLinear'].includes(n.opType ?? '')) n = producers.get(n.input[0]!);
  if (!n) throw new Error(`no convolution before ${tap}`);
  return n;
}

/** Whether the block of the depthwise conv `dw` ends in a residual Add: dw → … → 1×1 projection → … → Add. */
function endsInAdd(model: OnnxModel, tap: string): boolean {
  const consumers = consumerMap(model.graph);
  let t = tap;
  for (let hops = 0; hops < 6; hops++) {
    const c = consumers.get(t) ?? [];
    if (c.some((n) => ['Add', 'QLinearAdd'].includes(n.opType ?? ''))) return true;
    if (c.length !== 1) return false;
    t = c[0]!.output[0]!;
  }
  return false;
}

const CASES: { ref: string; rule: string; taps: string[]; group: number[]; op: string; residual: boolean }[] = [
  // names and groups as read in each graph (explore script in /work/notes/taps-log.md): MobileNetV2's 17
  // depthwise convs; the last (group 960, block 17: 160 → 320, no residual) is skipped, the two before it taken
  { ref: shared('models', 'mobilenetv2-12-int8.onnx'), rule: 'residual-depthwise', taps: ['603_quantized', '612_quantized'], group: [960, 960], op: 'QLinearConv', residual: true },
  { ref: shared('models', 'mobilenetv2-12-fp32-rebuilt.onnx'), rule: 'residual-depthwise', taps: ['603', '612'], group: [960, 960], op: 'Conv', residual: true },
  {
    ref: shared('models', 'tflite', 'coral_mobilenet_v2_1.0_224_quant.tflite'), rule: 'residual-depthwise',
    taps: ['MobilenetV2/expanded_conv_14/depthwise/Relu6', 'MobilenetV2/expanded_conv_15/depthwise/Relu6'], group: [960, 960], op: 'Conv', residual: true,
  },
  {
    ref: shared('models', 'teachable-machine', 'twins-tfjs', 'model.json'), rule: 'residual-depthwise',
    // Teachable Machine's MobileNetV2 is width 0.35: 336 channels in the last stage
    taps: ['block_14_depthwise_relu', 'block_15_depthwise_relu'], group: [336, 336], op: 'Conv', residual: true,
  },
  // MobileNetV1 0.25: 13 depthwise blocks, none residual: the last two (group 128 at 8×8, group 256 at 4×4)
  {
    ref: shared('models', 'mobilenet_v1_0.25_128_fp32_tflite2onnx.onnx'), rule: 'depthwise',
    taps: ['MobilenetV1/MobilenetV1/Conv2d_12_depthwise/Relu6', 'MobilenetV1/MobilenetV1/Conv2d_13_depthwise/Relu6'], group: [128, 256], op: 'Conv', residual: false,
  },
];

describe('open-set taps found from the graph', () => {
  for (const c of CASES) {
    it(`${c.ref.split('/').slice(-2).join('/')}: ${c.taps.join(', ')}`, async () => {
      const bb = await loadBackbone(c.ref);
      const found = openSetTapsOf(bb.model, bb.cut.tensor);
      expect(found).toEqual({ rule: c.rule, tensors: c.taps });
      expect(openSetTaps(bb)).toEqual(c.taps);
      c.taps.forEach((tap, i) => {
        const conv = convOf(bb.model, tap);
        expect(conv.opType).toBe(c.op);
        // depthwise: as many groups as channels
        expect(getIntAttribute(conv, 'group')).toBe(c.group[i]);
        expect(endsInAdd(bb.model, tap)).toBe(c.residual);
      });
    }, 60_000);
  }

  it('SqueezeNet (no depthwise convolution): no taps, the embedding alone', async () => {
    const bb = await loadBackbone(shared('models', 'squeezenet1.1_fp32_from_winml_fp16.onnx'));
    expect(bb.model.graph.node.some((n) => n.opType === 'Conv' && (getIntAttribute(n, 'group') ?? 1) > 1)).toBe(false);
    expect(openSetTapsOf(bb.model, bb.cut.tensor)).toEqual({ rule: 'none', tensors: [] });
  });

  it('reads only what the embedding depends on: cut earlier, the taps move with it', async () => {
    const bb = await loadBackbone(shared('models', 'mobilenetv2-12-fp32-rebuilt.onnx'));
    // embedding at block 15's depthwise output: 594 (block 14's depthwise, group 576, the stride-2 entry of the 7×7
    // stage, whose projection is only the NEXT block's skip) is not residual; blocks 12 and 13 (14×14, group 576) are
    expect(openSetTapsOf(bb.model, '603')).toEqual({ rule: 'residual-depthwise', tensors: ['576', '585'] });
    expect(openSetTapsOf(bb.model, 'no such tensor')).toEqual({ rule: 'none', tensors: [] });
  });

  it('finetune on mobilenetv2-fp32 (frozen) ships the multi-layer score on the taps the rule found', async () => {
    const out = path.join(tempDir('edgetune-taps-'), 'flowers3.onnx');
    const root = shared('datasets', 'tf_flowers-dev');
    const classes = ['daisy', 'sunflowers', 'tulips'];
    const list = (split: string) => classes.flatMap((label) => readdirOf(path.join(root, split, label)).map((file) => ({ file, label })));
    await finetune(list('train'), { model: shared('models', 'mobilenetv2-12-fp32-rebuilt.onnx'), val: list('val'), views: 1, augment: 'none', out });
    const bytes = new Uint8Array(readFileSync(out));
    const info = parseModelInfo(readMetadataProps(bytes))!;
    expect(info.openSet).toMatchObject({ method: 'mahalanobis', output: 'unknown_score', covariance: 'per-class', layers: ['603', '612'] });
    // the graph reads the taps themselves (pooled beside the embedding) for its unknown_score output
    const g = decodeModel(bytes).graph;
    expect(g.output.map((o) => o.name)).toContain('unknown_score');
    for (const tap of ['603', '612']) expect(g.node.some((n) => n.opType === 'GlobalAveragePool' && n.input[0] === tap)).toBe(true);
  }, 600_000);
});
