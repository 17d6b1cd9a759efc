// Options every command that opens a session shares: --ep / --profile / --threads, resolved through
// the device profile when no providers are given.

import { detectProfile, getProfile } from '../../devices/profiles.js';
import { intOption, oneOfOption, OPTION_RANGES, type CommandIO, type OptionValues } from './args.js';
import { parseProviders, type SessionOptions } from '../session/session.js';

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

export function providersFrom(v: OptionValues<typeof SESSION_OPTIONS>, io: CommandIO): SessionOptions {
  const ep = v.ep;
  const profile = v.profile ? getProfile(v.profile) : detectProfile();
  const providers = ep ? parseProviders(ep) : parseProviders(profile.providers);
  const threads = v.threads !== undefined ? intOption('threads', v.threads, 1, ...OPTION_RANGES.threads) : ep ? undefined : profile.threads;
  const level = oneOfOption('opt-level', v['opt-level'], ['disabled', 'basic', 'extended', 'all'] as const);
  return { providers, threads, graphOptimizationLevel: level, onWarning: (m) => io.stderr.write(`edgetune: warning: ${m}\n`) };
}
