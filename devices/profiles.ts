// Device profiles: which execution providers (in order, with options), threads and camera a board
// should use. Profiles are JSON in devices/profiles/; detection reads /etc/nv_tegra_release and the
// device-tree model (Jetson), NVIDIA driver presence (x86 GPUs), platform and arch. The first
// matching profile in PROFILE_ORDER wins; EDGETUNE_DEVICE_PROFILE forces one.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EdgetuneError } from '../runtime/core/errors.js';
import { packageRoot } from '../runtime/io/paths.js';
import type { ProviderName, ProviderRequest } from '../runtime/session/session.js';

export interface DeviceProfile {
  id: string;
  description: string;
  match: { tegra?: boolean; model?: string; arch?: string; platform?: string; nvidiaGpu?: boolean };
  providers: (ProviderName | ProviderRequest)[];
  threads?: number;
  camera?: { default: string; gstreamer?: boolean };
}

export interface DeviceFacts {
  platform: string;
  arch: string;
  tegra: boolean;
  /** /proc/device-tree/model, e.g. "NVIDIA Jetson AGX Orin Developer Kit". */
  model?: string;
  /** L4T release line from /etc/nv_tegra_release. */
  l4t?: string;
  nvidiaGpu: boolean;
}

/** Most specific first. */
export const PROFILE_ORDER = ['jetson-orin', 'jetson-nano', 'x86-nvidia', 'apple-silicon', 'generic-cpu'];

function readText(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8').replace(/\0/g, '').trim();
  } catch {
    return undefined;
  }
}

export function detectFacts(root = '/'): DeviceFacts {
  const l4t = readText(path.join(root, 'etc/nv_tegra_release'));
  const model = readText(path.join(root, 'proc/device-tree/model'));
  const nvidiaGpu =
    existsSync(path.join(root, 'proc/driver/nvidia/version')) || existsSync(path.join(root, 'dev/nvidia0')) || existsSync(path.join(root, 'dev/nvidiactl'));
  return {
    platform: process.platform,
    arch: process.arch,
    tegra: Boolean(l4t) || /jetson|tegra/i.test(model ?? ''),
    model,
    l4t: l4t?.split('\n')[0],
    nvidiaGpu,
  };
}

let profiles: DeviceProfile[] | undefined;
export function loadProfiles(): DeviceProfile[] {
  profiles ??= PROFILE_ORDER.map(
    (id) => JSON.parse(readFileSync(path.join(packageRoot(), 'devices', 'profiles', `${id}.json`), 'utf8')) as DeviceProfile,
  );
  return profiles;
}

export function getProfile(id: string): DeviceProfile {
  const p = loadProfiles().find((x) => x.id === id);
  if (!p) {
    throw new EdgetuneError('EARG', `Unknown device profile "${id}": expected one of ${PROFILE_ORDER.join(', ')}`, { subject: id });
  }
  return p;
}

export function matches(p: DeviceProfile, f: DeviceFacts): boolean {
  const m = p.match;
  if (m.tegra !== undefined && m.tegra !== f.tegra) return false;
  if (m.model !== undefined && !(f.model ?? '').includes(m.model)) return false;
  if (m.arch !== undefined && m.arch !== f.arch) return false;
  if (m.platform !== undefined && m.platform !== f.platform) return false;
  if (m.nvidiaGpu !== undefined && m.nvidiaGpu !== f.nvidiaGpu) return false;
  return true;
}

export function detectProfile(facts: DeviceFacts = detectFacts(), env: NodeJS.ProcessEnv = process.env): DeviceProfile {
  if (env.EDGETUNE_DEVICE_PROFILE) return getProfile(env.EDGETUNE_DEVICE_PROFILE);
  return loadProfiles().find((p) => matches(p, facts)) ?? getProfile('generic-cpu');
}
