// `edgetune augment-preview`: a contact sheet of augmented views of one image (the first tile is the
// un-augmented evaluation view), to see what an --augment spec does before training with it.

import path from 'node:path';
import sharp from 'sharp';
import { decodeBase, renderViewSharp } from '../../train/node/augment-sharp.js';
import { parseAugmentation, sampleView, viewRng, formatAugmentation } from '../../train/augment/ops.js';
import { intOption, invalidOption, OPTION_RANGES, parse, type Command } from '../args.js';
import { EdgetuneError, messageOf } from '../../core/errors.js';
import { decodeImage } from '../../image/decode.js';
import { loadRegistry } from '../../../models/loader.js';
import { specOf } from '../../../models/registry.js';
import { describeModel } from '../../../models/describe.js';
import { checkWritable } from '../../io/atomic.js';
import { writeAtomic } from '../../io/atomic.js';
import { MAX_MODEL_FILE_BYTES, readRegularFile } from '../../io/read-file.js';
import { createHash } from 'node:crypto';

const usage = `Usage: edgetune augment-preview <image> [options]

Write a contact sheet of augmented views (first tile: no augmentation).

Options:
  --augment <spec>   none | default | op[:value],... (default: default)
  --views <n>        tiles, 1 to 256 (default 16)
  --model <id|file>  the model whose input size and crop to use: a registry id or a model file (.onnx,
                     .tflite, tfjs model.json) (default mobilenetv2-int8)
  --seed <n>         (default 42)
  --out <file>       .png, .jpg/.jpeg or .webp, encoded as its extension says (default augment-preview.png)`;

export const augmentPreview: Command = {
  summary: 'contact sheet of augmented views of an image (check an --augment spec)',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, {
      augment: { type: 'string', default: 'default' },
      views: { type: 'string' },
      model: { type: 'string', default: 'mobilenetv2-int8', path: 'a model' },
      seed: { type: 'string' },
      out: { type: 'string', default: 'augment-preview.png', path: 'file' },
    });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `augment-preview: expected one image but received ${positionals.length}\n\n${usage}`);
    let spec;
    try {
      spec = parseAugmentation(v.augment);
    } catch (err) {
      throw new EdgetuneError('EARG', messageOf(err));
    }
    const n = intOption('views', v.views, 16, ...OPTION_RANGES.previewViews);
    const seed = intOption('seed', v.seed, 42, 0);
    const out = path.resolve(v.out);
    const format = ({ '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' } as const)[path.extname(out).toLowerCase() as '.png'];
    if (!format) throw invalidOption('out', 'a file name ending in .png, .jpg, .jpeg or .webp', v.out);
    const file = positionals[0]!;
    // never the photo itself: a contact sheet written over the user's input image would destroy it
    await checkWritable(out, '--out', { inputs: [file] });
    // a registry id needs only its entry (no model file); any other reference is described from its file
    const entry = loadRegistry().get(v.model);
    const pre = entry ? specOf(entry) : (await describeModel(v.model)).card.preprocess;
    // a regular file (never a FIFO or a device), the errno in words when it cannot be read
    const bytes = await readRegularFile(file, { what: 'image', maxBytes: MAX_MODEL_FILE_BYTES, code: 'EINPUT' });
    const rgb = { ...pre, channels: 3 as const };
    const clean = await decodeImage(bytes, rgb, {}, file);
    const base = await decodeBase(bytes, rgb, file);
    const key = createHash('sha256').update(bytes).digest('hex');
    const tiles = [clean];
    for (let i = 1; i < n; i++) tiles.push(await renderViewSharp(base, sampleView(spec, viewRng(seed, key, i)), rgb));
    const cols = Math.ceil(Math.sqrt(n));
    const rows = Math.ceil(n / cols);
    const gap = 4;
    const W = pre.width;
    const H = pre.height;
    const composite = await Promise.all(
      tiles.map(async (t, i) => ({
        input: await sharp(t.data, { raw: { width: t.width, height: t.height, channels: t.channels as 3 } }).png().toBuffer(),
        left: (i % cols) * (W + gap),
        top: Math.floor(i / cols) * (H + gap),
      })),
    );
    const sheet = await sharp({ create: { width: cols * (W + gap) - gap, height: rows * (H + gap) - gap, channels: 3, background: { r: 255, g: 255, b: 255 } } })
      .composite(composite)
      .toFormat(format)
      .toBuffer();
    await writeAtomic(out, sheet);
    io.stdout.write(`${out}: ${n} views of ${file} (${formatAugmentation(spec)}; first tile un-augmented)\n`);
    return 0;
  },
};
