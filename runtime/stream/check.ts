// Checking a model on the stream before it serves (used by StreamPipeline's hot swap): one real frame
// (the newest one, resized to the new model's input when that differs) is classified on the inference
// stages that would serve it, and a model that cannot run, returns nothing, returns an image instead of
// class scores, or returns NaN/Inf is refused with an EMODEL error that says which.

import sharp from 'sharp';
import type { Frame, FrameGeometry } from '../../devices/sources/types.js';
import { EdgetuneError, messageOf } from '../core/errors.js';
import type { InferenceStages } from './stages.js';

/**
 * A frame for checking `g`'s model before it serves: `frame` itself when it has that geometry, else
 * `frame` resized (cover) to it, else (no frame yet, or another channel count) a mid-grey frame.
 */
export async function frameForGeometry(g: FrameGeometry, frame?: Frame): Promise<Frame> {
  const grey = (): Frame => ({ data: new Uint8Array(g.width * g.height * g.channels).fill(128), width: g.width, height: g.height, channels: g.channels, timestamp: Date.now(), seq: frame?.seq ?? -1 });
  if (!frame || frame.channels !== g.channels) return grey();
  if (frame.width === g.width && frame.height === g.height) return frame;
  const { data, info } = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: frame.channels as 1 | 3 } })
    .resize(g.width, g.height, { fit: 'cover' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== g.channels) return grey();
  return { ...frame, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: g.width, height: g.height };
}

/**
 * Classify `frame` once on `stages` and throw EMODEL, saying why, when the model cannot serve: the
 * run fails, the output is empty, has a value per input pixel (image-to-image) or is not finite.
 * Resolves with the probabilities otherwise.
 */
export async function checkStages(stages: InferenceStages, frame: Frame): Promise<Float32Array> {
  const id = stages.classifier.id;
  let probs: Float32Array;
  try {
    probs = (await stages.infer(stages.prepare(frame))).probs;
  } catch (err) {
    throw new EdgetuneError('EMODEL', `${id} loads but cannot classify a frame of this stream: ${messageOf(err)}`, { subject: id });
  }
  if (probs.length === 0) throw new EdgetuneError('EMODEL', `${id} returned no scores for a frame of this stream`, { subject: id });
  // A classifier has far fewer scores than its input has pixels (1000 for 224×224, 10 for MNIST's
  // 28×28); a model that returns a value per pixel or more is an image-to-image model.
  const { width, height } = stages.classifier.spec;
  if (probs.length >= width * height) {
    throw new EdgetuneError('EMODEL', `${id} returned ${probs.length} values for a ${width}x${height} frame: an image-to-image model, not a classifier`, { subject: id });
  }
  const bad = probs.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new EdgetuneError('EMODEL', `${id} returned a non-finite score (${probs[bad]} at output ${bad}) for a frame of this stream: not a usable classifier`, { subject: id });
  }
  return probs;
}
