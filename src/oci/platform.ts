import { OciferryError } from '../errors.ts';
import type { ImageConfig, Platform } from './types.ts';

/** A platform string (`os/arch[/variant]`) that cannot be understood. */
export class InvalidPlatformError extends OciferryError {
  constructor(input: string, reason: string) {
    super('PLATFORM_INVALID', `invalid platform ${JSON.stringify(input)}: ${reason}`);
  }
}

/** Parse `os/arch[/variant]` (e.g. `linux/arm64/v8`) and normalise it as containerd does. */
export function parsePlatform(input: string): Platform {
  const parts = input.trim().split('/');
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    parts.some((part) => !/^[A-Za-z0-9._-]+$/.test(part))
  ) {
    throw new InvalidPlatformError(
      input,
      'expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7',
    );
  }
  const [os = '', architecture = '', variant] = parts;
  return normalizePlatform(variant ? { os, architecture, variant } : { os, architecture });
}

/** `os/arch[/variant]` of a platform. */
export function formatPlatform(platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

/**
 * Normalise names and default variants the way containerd does: `x86_64` is `amd64`,
 * `aarch64` is `arm64` (whose default variant `v8` is dropped), `arm` defaults to `v7`,
 * `amd64/v1` is plain `amd64`.
 */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = undefined;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8') variant = undefined;
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      variant = variant ? (variant.startsWith('v') ? variant : `v${variant}`) : 'v7';
      break;
  }
  const normalized: Platform = { ...platform, os, architecture };
  if (variant) return { ...normalized, variant };
  const { variant: _dropped, ...rest } = normalized;
  return rest;
}

/**
 * How well `candidate` serves a host that wants `wanted`: undefined when it cannot run there,
 * otherwise a rank where higher is better (exact variant beats an older compatible one).
 * Mirrors containerd's matcher: arm64 runs arm64 only; arm/v7 also runs v6 and v5; amd64/v3
 * also runs v2 and plain amd64.
 */
export function platformRank(wanted: Platform, candidate: Platform): number | undefined {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return undefined;
  if (w.variant === c.variant) return 100;
  const wantedLevel = variantLevel(w.architecture, w.variant);
  const candidateLevel = variantLevel(c.architecture, c.variant);
  if (wantedLevel === undefined || candidateLevel === undefined) return undefined;
  return candidateLevel <= wantedLevel ? candidateLevel : undefined;
}

/** Pick the best of `candidates` for `wanted`, or undefined when none can run there. */
export function bestPlatformMatch<T>(
  wanted: Platform,
  candidates: readonly T[],
  platformOf: (candidate: T) => Platform | undefined,
): T | undefined {
  let best: T | undefined;
  let bestRank = -1;
  for (const candidate of candidates) {
    const platform = platformOf(candidate);
    const rank = platform ? platformRank(wanted, platform) : undefined;
    if (rank !== undefined && rank > bestRank) {
      best = candidate;
      bestRank = rank;
    }
  }
  return best;
}

/** The platform of the running Node process (`linux/amd64`, `linux/arm64`, ...). */
export function hostPlatform(): Platform {
  const architecture =
    { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' }[process.arch as string] ??
    process.arch;
  return normalizePlatform({
    os: process.platform === 'win32' ? 'windows' : process.platform,
    architecture,
  });
}

/** Ordinal of a variant within its architecture: amd64 v1..v4, arm v5..v8; undefined when unknown. */
function variantLevel(architecture: string, variant: string | undefined): number | undefined {
  if (architecture === 'amd64') {
    const level = variant === undefined ? 1 : Number(/^v([1-4])$/.exec(variant)?.[1]);
    return Number.isNaN(level) ? undefined : level;
  }
  if (architecture === 'arm') {
    const level = Number(/^v([5-8])$/.exec(variant ?? '')?.[1]);
    return Number.isNaN(level) ? undefined : level;
  }
  return undefined;
}

/** The platform an image config describes. */
export function configPlatform(config: ImageConfig): Platform {
  const platform: { -readonly [K in keyof Platform]: Platform[K] } = {
    os: config.os,
    architecture: config.architecture,
  };
  if (config.variant) platform.variant = config.variant;
  if (config['os.version']) platform['os.version'] = config['os.version'];
  return platform;
}
