// Options every command that opens a session shares: --ep / --profile / --threads, resolved through
// the device profile when no providers are given.

import { detectProfile, getProfile } from '../../devices/profiles.js';
import { intOption, oneOfOption, OPTION_RANGES, type CommandIO, type OptionValues } from './args.js';
import { parseProviders, type SessionOptions } from '../session/session.js';
import { isModelUrl } from '../serve/client.js';

export const SESSION_OPTIONS = {
  ep: { type: 'string' },
  profile: { type: 'string' },
  threads: { type: 'string' },
  'opt-level': { type: 'string' },
} as const;

export const SESSION_USAGE = `  --ep <list>         execution providers in order, e.g. tensorrt,cuda,cpu (default: the device profile's)
  --profile <id>      device profile: jetson-orin, jetson-nano, x86-nvidia, apple-silicon, generic-cpu (default: detected)
  --threads <n>       intra-op threads, 1 to 1024 (default: onnxruntime's choice)
  --opt-level <l>     graph optimisation: disabled, basic, extended, all (default all)`;

/**
 * Session options from --ep / --profile / --threads / --opt-level. `model`: the --model given; a served
 * model's URL runs on its server, so these flags are said to do nothing there (they were taken
 * without a word: `--ep tensorrt` looked like a local TensorRT run).
 */
export function providersFrom(v: OptionValues<typeof SESSION_OPTIONS>, io: CommandIO, model?: string): SessionOptions {
  const ep = v.ep;
  const given = (['ep', 'profile', 'threads', 'opt-level'] as const).filter((k) => v[k] !== undefined);
  if (model !== undefined && isModelUrl(model) && given.length) {
    io.stderr.write(`edgetune: warning: ${given.map((k) => `--${k}`).join(', ')} ${given.length > 1 ? 'have' : 'has'} no effect on ${model}: a served model runs on its server\n`);
  }
  const profile = v.profile ? getProfile(v.profile) : detectProfile();
  const providers = ep ? parseProviders(ep) : parseProviders(profile.providers);
  const threads = v.threads !== undefined ? intOption('threads', v.threads, 1, ...OPTION_RANGES.threads) : ep ? undefined : profile.threads;
  const level = oneOfOption('opt-level', v['opt-level'], ['disabled', 'basic', 'extended', 'all'] as const);
  return { providers, threads, graphOptimizationLevel: level, onWarning: (m) => io.stderr.write(`edgetune: warning: ${m}\n`) };
}
