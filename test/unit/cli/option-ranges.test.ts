// Every numeric option has a range and a sharp-style message naming it.

import { describe, expect, it } from 'vitest';
import { intOption, OPTION_RANGES } from '../../../runtime/cli/args.js';

describe('intOption ranges', () => {
  it('names the option and its range', () => {
    expect(() => intOption('views', '0', 4, ...OPTION_RANGES.views)).toThrow('Expected integer between 1 and 64 for --views but received "0"');
    expect(() => intOption('views', '1e6', 4, ...OPTION_RANGES.views)).toThrow('Expected integer between 1 and 64 for --views but received "1e6"');
    expect(() => intOption('hidden', '1e9', 128, ...OPTION_RANGES.hidden)).toThrow('Expected integer between 1 and 65536 for --hidden but received "1e9"');
    expect(() => intOption('threads', '100000', 1, ...OPTION_RANGES.threads)).toThrow('Expected integer between 1 and 1024 for --threads but received "100000"');
    expect(() => intOption('batch-size', '-1', 32, ...OPTION_RANGES.batchSize)).toThrow('Expected integer between 0 and 1000000 for --batch-size but received "-1"');
    expect(() => intOption('quality', '101', 92, ...OPTION_RANGES.quality)).toThrow('Expected integer between 1 and 100 for --quality but received "101"');
    expect(() => intOption('batch', '0', 1, ...OPTION_RANGES.batch)).toThrow('Expected integer between 1 and 1024 for --batch but received "0"');
    expect(intOption('views', '64', 4, ...OPTION_RANGES.views)).toBe(64);
    expect(intOption('views', undefined, 4, ...OPTION_RANGES.views)).toBe(4);
  });

  it('without an upper bound keeps the old wording', () => {
    expect(() => intOption('top', '0', 5)).toThrow('Expected positive integer for --top but received "0"');
    expect(() => intOption('seed', '-1', 5, 0)).toThrow('Expected integer >= 0 for --seed but received "-1"');
  });
});
