// `edgetune devices`: which execution providers work here (each one probed by creating a real session
// on a tiny built-in model, in a child process so native libraries' own stderr lines — Vulkan loader,
// XDG_RUNTIME_DIR — stay off the terminal unless EDGETUNE_DEBUG is set), and which device profile
// was detected.

import { detectFacts, detectProfile } from '../../../devices/profiles.js';
import { parse, writeJson, type Command } from '../args.js';
import { table } from '../../core/format.js';
import { listNativeProviders } from '../../session/ort.js';
import { probeProvidersIsolated } from '../../session/probe.js';

const usage = `Usage: edgetune devices [--json]

Probe each execution provider (tensorrt, cuda, webgpu, cpu, wasm) and print the detected board profile.`;

export const devices: Command = {
  summary: 'probe execution providers and show the detected device profile',
  usage,
  async run(argv, io) {
    const { values: v } = parse(argv, { json: { type: 'boolean', default: false } }, false);
    const facts = detectFacts();
    const profile = detectProfile(facts);
    const native = await listNativeProviders();
    const { probes, nativeLog } = await probeProvidersIsolated();
    if (process.env.EDGETUNE_DEBUG) for (const l of nativeLog) io.stderr.write(`edgetune devices: native: ${l}\n`);
    if (v.json) {
      writeJson(io, { profile: profile.id, facts, providers: probes, nativeBuild: native, profileProviders: profile.providers });
      return 0;
    }
    io.stdout.write(`device profile: ${profile.id} (${profile.description})\n`);
    io.stdout.write(`platform: ${facts.platform}/${facts.arch}${facts.model ? `, ${facts.model}` : ''}${facts.l4t ? `, ${facts.l4t}` : ''}, NVIDIA GPU: ${facts.nvidiaGpu ? 'yes' : 'no'}\n\n`);
    io.stdout.write(table([['provider', 'works', 'note'], ...probes.map((p) => [p.name, p.ok ? 'yes' : 'no', p.ok ? `${p.ms.toFixed(0)} ms to open` : p.error ?? ''])]));
    return 0;
  },
};
