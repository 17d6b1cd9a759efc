// The preprocessing spec contract: how an image becomes a model's input tensor (size, layout, dtype,
// channel order, value range, mean/std, resize policy). Defined once as a valibot schema, and the
// `PreprocessSpec` type is derived from it; it is part of the registry, the embedded `edgetune.model`
// metadata, the model card and the kiosk's /api/config. Browser-safe. The math lives in
// image/preprocess.ts (which re-exports the type); semantic checks (mean/std per channel, crop in
// (0, 1]) are its `checkSpec`.

import * as v from 'valibot';

const positiveInteger = v.pipe(v.number(), v.integer(), v.minValue(1));

export const PreprocessSpecSchema = v.object({
  width: positiveInteger,
  height: positiveInteger,
  /** 3 for colour models, 1 for grayscale ones. */
  channels: v.picklist([1, 3]),
  layout: v.picklist(['NCHW', 'NHWC']),
  /** Channel order the model expects. */
  colorOrder: v.picklist(['RGB', 'BGR', 'GRAY']),
  /** Pixel 0..255 is first mapped linearly onto this range, e.g. [0, 1] or [0, 255]. */
  range: v.tuple([v.number(), v.number()]),
  /** Subtracted after the range mapping, in the model's channel order. */
  mean: v.array(v.number()),
  /** Divides after the mean, in the model's channel order. */
  std: v.array(v.number()),
  /**
   * How the image is fitted: `cover` resizes the shorter side and centre-crops (the ImageNet
   * evaluation habit), `fill` stretches, `contain` letterboxes. The exact sizes, offsets and rounding
   * are fitGeometry's (runtime/image/geometry.ts), on every path.
   */
  resize: v.picklist(['cover', 'fill', 'contain']),
  /** Centre-crop fraction for `cover`: 1 crops to the input size directly, 0.875 resizes to size/0.875 first. */
  crop: v.pipe(v.number(), v.gtValue(0), v.maxValue(1)),
  /** Tensor element type the model's input wants. */
  dtype: v.picklist(['float32', 'float16']),
});

export type PreprocessSpec = v.InferOutput<typeof PreprocessSpecSchema>;
