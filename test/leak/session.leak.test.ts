// Leak test, in its own vitest project started with --expose-gc (vitest.config.ts), so that a full
// garbage collection runs before each memory reading: disposed sessions must free native memory.

import { describe, expect, it } from 'vitest';
import { liveSessionCount } from '../../runtime/session/session.js';
import { loadClassifier } from '../../runtime/classify/classifier.js';
import { shared } from '../helpers.js';
import { gc } from './memory.js';

describe('session leaks', () => {
  it('sessions are freed: live count returns to zero and memory stays flat over many cycles', async () => {
    const before = liveSessionCount();
    const cycle = async () => {
      const c = await loadClassifier('mobilenetv2-int8', { providers: ['cpu'] });
      expect(liveSessionCount()).toBe(before + 1);
      await c.classify(shared('camera', 'winml_dog.jpg'));
      await c.dispose();
      await c.dispose(); // idempotent
    };
    for (let i = 0; i < 5; i++) await cycle();
    gc();
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 30; i++) await cycle();
    gc();
    const grown = (process.memoryUsage().rss - rss0) / 1048576;
    expect(liveSessionCount()).toBe(before);
    // Measured: 30 disposed cycles grew RSS by 19 MB; the same 30 sessions kept alive (leaked) by 222 MB.
    expect(grown).toBeLessThan(80);
  });
});
