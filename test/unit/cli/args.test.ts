// The option parser's contract: typed tables, one duration rule, one argument-error format.

import { describe, expect, it } from 'vitest';
import { durationOption, intOption, invalidOption, numberOption, oneOfOption, parse, retriesOption, sizeOption } from '../../../runtime/cli/args.js';
import { numIn } from '../../../runtime/train/node/finetune-options.js';
import { EdgetuneError, invalidParameter } from '../../../runtime/core/errors.js';
import { resolveConfig, trainHead } from '../../../runtime/train/index.js';
import { viewCount } from '../../../runtime/train/finetune.js';
import { parseAugmentation } from '../../../runtime/train/augment/ops.js';

describe('durationOption: one rule for every command', () => {
  it('reads ms, s and m, and a bare number as seconds', () => {
    expect(durationOption('every', '250ms', 1)).toBe(250);
    expect(durationOption('every', '2s', 1)).toBe(2000);
    expect(durationOption('every', '1.5s', 1)).toBe(1500);
    expect(durationOption('every', '1m', 1)).toBe(60_000);
    expect(durationOption('every', '5', 1)).toBe(5000);
    expect(durationOption('every', '0', 1)).toBe(0);
    expect(durationOption('every', undefined, 1234)).toBe(1234);
  });
  it('refuses anything else with the option named', () => {
    expect(() => durationOption('stall-timeout', 'soon', 1)).toThrow('Expected a duration such as 500ms or 2s for --stall-timeout but received "soon"');
    expect(() => durationOption('every', '-1s', 1)).toThrow('Expected a duration such as 500ms or 2s for --every but received "-1s"');
  });
});

describe('number options: an empty value is refused as given, never read as 0', () => {
  it('numberOption, intOption and retriesOption refuse "" and "  " with the raw text', () => {
    // `--backbone-lr ""` was Number("") = 0, refused later by the library as "received 0"
    expect(() => numberOption('backbone-lr', '', 0)).toThrow('Expected finite number for --backbone-lr but received ""');
    expect(() => numberOption('layer-lr-decay', ' ', 1)).toThrow('Expected finite number for --layer-lr-decay but received " "');
    // min 0: `--patience ""` was taken as 0 (early stopping off) without a word
    expect(() => intOption('patience', '', 5, 0, 100000)).toThrow('Expected integer between 0 and 100000 for --patience but received ""');
    expect(() => retriesOption('', 3)).toThrow('Expected integer >= 0 or inf for --retries but received ""');
    expect([numberOption('backbone-lr', '1e-4', 0), intOption('patience', '0', 5, 0, 100000), retriesOption('0', 3)]).toEqual([1e-4, 0, 0]);
  });

  it("finetune's numeric ranges share one wording (numberRangeText)", () => {
    expect(() => numIn('layerLrDecay', 0, 0, 1, true)).toThrow('Expected number > 0 and <= 1 for layerLrDecay but received 0');
    expect(() => numIn('backboneLr', 11, 0, 10, true)).toThrow('Expected number > 0 and <= 10 for backboneLr but received 11');
    expect(() => numIn('unfreezeMixup', -1, 0, Infinity)).toThrow('Expected number >= 0 for unfreezeMixup but received -1');
    expect(() => numIn('lr', 0, 0, Infinity, true)).toThrow('Expected number > 0 for lr but received 0');
    expect(() => numIn('valSplit', 1, 0, 0.9)).toThrow('Expected number between 0 and 0.9 for valSplit but received 1');
  });
});

describe('parse', () => {
  it('returns the values a table declares (defaults filled in) and refuses unknown options', () => {
    const table = { top: { type: 'string' }, json: { type: 'boolean', default: false }, host: { type: 'string', multiple: true } } as const;
    const { values, positionals } = parse(['a.jpg', '--top', '3', '--host', 'x', '--host', 'y'], table);
    expect(values).toEqual({ top: '3', json: false, host: ['x', 'y'] });
    expect(positionals).toEqual(['a.jpg']);
    expect(() => parse(['--nope'], table)).toThrow('Unknown option --nope');
    expect(parse(['--top', '-2'], table).values.top).toBe('-2');
  });
});

describe('argument errors share one format', () => {
  it('names the option, what it expects and what it got', () => {
    expect(invalidOption('fit', 'one of cover, contain, fill', 'zoom').message).toBe('Expected one of cover, contain, fill for --fit but received "zoom"');
    expect(() => oneOfOption('fit', 'zoom', ['cover', 'contain'] as const)).toThrow('Expected one of cover, contain for --fit but received "zoom"');
    expect(oneOfOption('fit', 'COVER', ['cover', 'contain'] as const)).toBe('cover');
    expect(oneOfOption('fit', undefined, ['cover', 'contain'] as const, 'contain')).toBe('contain');
    expect(sizeOption('size', '320x240')).toEqual([320, 240]);
    expect(() => sizeOption('size', '0x240', '480x360')).toThrow('Expected WIDTHxHEIGHT (e.g. 480x360) for --size but received "0x240"');
    expect(invalidParameter(undefined, '3 class weights', 2).message).toBe('Expected 3 class weights but received 2');
    expect(invalidParameter('x', 'a list', [1, 2]).message).toBe('Expected a list for x but received [1,2]');
  });

  it('the training library throws EdgetuneError with a code, never a plain Error', async () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err instanceof EdgetuneError ? err.code : `plain ${String(err)}`;
      }
      return 'no error';
    };
    expect(codeOf(() => resolveConfig({ epochs: 0 }))).toBe('EARG');
    expect(codeOf(() => resolveConfig({ optimizer: 'lbfgs' as never }))).toBe('EARG');
    expect(codeOf(() => viewCount(parseAugmentation('default'), 0))).toBe('EARG');
    await expect(trainHead({ features: new Float32Array(0), labels: new Int32Array(0), dims: 2, classes: 2 } as never)).rejects.toMatchObject({ name: 'EdgetuneError', code: 'EINPUT' });
  });
});
