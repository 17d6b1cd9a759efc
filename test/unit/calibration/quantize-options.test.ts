// quantizeModel() from JavaScript: a misspelt option is refused before any work, as finetune() does
// (a `calibcount` typo used to calibrate on the default sample and write the model without a word).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUANTIZE_OPTION_KEYS, quantizeModel, type QuantizeOptions } from '../../../calibration/index.js';
import { shared, sharedDir, tempDir } from '../../helpers.js';

const dir = tempDir('edgetune-quantize-options-');
const resolve = { searchPath: [path.join(sharedDir, 'models'), path.join(sharedDir, 'labels')], download: false };

describe('quantizeModel options', () => {
  it('refuses an option it does not know, naming it, and writes nothing', async () => {
    const out = path.join(dir, 'sq.onnx');
    const typo = { model: 'squeezenet1.1', resolve, calib: shared('datasets', 'hymenoptera', 'train'), calibcount: 4, out } as unknown as QuantizeOptions;
    await expect(quantizeModel(typo)).rejects.toMatchObject({
      code: 'EARG',
      message: `quantize: unknown option "calibcount" (options: ${QUANTIZE_OPTION_KEYS.join(', ')})`,
    });
    const two = { model: 'squeezenet1.1', resolve, calib: shared('datasets', 'hymenoptera', 'train'), out, calibCount: 4, evalcount: 2, perchannel: false } as unknown as QuantizeOptions;
    await expect(quantizeModel(two)).rejects.toThrow(/^quantize: unknown options "evalcount", "perchannel" \(options: resolve, model, /);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(path.join(dir, 'sq.calibration.cache'))).toBe(false);
  });
});
