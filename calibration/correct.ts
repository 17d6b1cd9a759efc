// Empirical bias correction (Node): after the QDQ rewrite, each quantized Conv/Gemm's int32 bias is
// nudged so that the per-channel mean of its output in the int8 model matches the float model's on
// calibration images. Unlike the analytic correction (W − Wq)·E[x] done during the rewrite, this
// also absorbs the mean shift that activation quantization and all upstream layers cause (Nagel et
// al. 2019, "Data-Free Quantization", empirical variant). Layers are corrected one at a time in
// graph order, each measured with every earlier layer already corrected; the QDQ model runs
// unfused (graph optimizations off) so a Conv's float output before its folded Relu/Clip is visible.

import { getInitializer, readFloat32, readInt32, writeInt32 } from '../runtime/onnx/graph.js';
import type { OnnxModel } from '../runtime/onnx/model.js';
import type { SessionOptions } from '../runtime/session/session.js';
import { asFloat32, type TensorData } from '../runtime/core/tensor.js';
import { quantizedLayers, type QuantizedLayer } from './layers.js';
import { ChannelMeans } from './ranges.js';
import { withTaps } from './taps.js';

export interface EmpiricalCorrectionOptions extends Pick<SessionOptions, 'providers' | 'threads' | 'onWarning'> {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

async function channelMeans(model: OnnxModel, outputs: readonly string[], inputName: string, inputs: readonly TensorData[], unfused: boolean, o: EmpiricalCorrectionOptions): Promise<Map<string, Float64Array>> {
  const taps = withTaps(model, inputName, outputs, {
    providers: o.providers,
    threads: o.threads,
    onWarning: o.onWarning,
    graphOptimizationLevel: unfused ? 'disabled' : 'all',
    tapsOnly: true,
    signal: o.signal,
    what: 'bias correction run',
  });
  const acc = new Map(outputs.map((t) => [t, new ChannelMeans()]));
  for await (const { values } of taps.run(inputs, (x) => x)) {
    for (const [t, v] of values) acc.get(t)!.add(asFloat32(v), v.dims);
  }
  return new Map([...acc].map(([t, c]) => [t, c.means()]));
}

/**
 * Correct the int32 biases of `qmodel` (in place) layer by layer so each quantized Conv/Gemm output
 * has the float model's per-channel mean on `inputs`. Returns the number of layers corrected.
 */
export async function empiricalBiasCorrection(floatModel: OnnxModel, qmodel: OnnxModel, inputName: string, inputs: readonly TensorData[], o: EmpiricalCorrectionOptions = {}): Promise<number> {
  const ps = quantizedLayers(floatModel, qmodel).filter((p): p is QuantizedLayer & { biasQuantized: string; biasScale: string } => p.biasQuantized !== undefined);
  if (ps.length === 0 || inputs.length === 0) return 0;
  o.onProgress?.(0, ps.length); // the stage begins (the float pass below is part of it)
  const target = await channelMeans(floatModel, ps.map((p) => p.float.output[0]!), inputName, inputs, false, o);
  let done = 0;
  for (const p of ps) {
    const want = target.get(p.float.output[0]!)!;
    const got = (await channelMeans(qmodel, [p.quant.output[0]!], inputName, inputs, true, o)).get(p.quant.output[0]!)!;
    const bt = getInitializer(qmodel.graph, p.biasQuantized)!;
    const scales = readFloat32(getInitializer(qmodel.graph, p.biasScale)!);
    const bias = readInt32(bt).slice();
    if (want.length === bias.length && got.length === bias.length) {
      for (let c = 0; c < bias.length; c++) {
        const v = bias[c]! + Math.round((want[c]! - got[c]!) / scales[scales.length === 1 ? 0 : c]!);
        bias[c] = Math.max(-2147483647, Math.min(2147483647, v));
      }
      writeInt32(bt, bias);
    }
    o.onProgress?.(++done, ps.length);
  }
  return done;
}
