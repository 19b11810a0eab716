import { isDigest } from '../digest/index.ts';
import { OciferryError } from '../errors.ts';
import type { Platform } from '../registry/oci.ts';

/** The parts of an OCI/Docker image config that ociferry reads. Other fields are kept as they are. */
export interface ImageConfig {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly rootfs: { readonly type: string; readonly diff_ids: readonly string[] };
  readonly history?: readonly Record<string, unknown>[];
  readonly config?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

/** An image config that lacks what an image config must have. */
export class ImageConfigInvalidError extends OciferryError {
  constructor(where: string, reason: string) {
    super('CONFIG_INVALID', `${where}: invalid image config: ${reason}`);
  }
}

/** Validate parsed JSON as an image config. */
export function checkImageConfig(json: unknown, where: string): ImageConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ImageConfigInvalidError(where, 'not a JSON object');
  }
  const config = json as Record<string, unknown>;
  if (typeof config.os !== 'string' || typeof config.architecture !== 'string') {
    throw new ImageConfigInvalidError(where, 'os and architecture must be strings');
  }
  const rootfs = config.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || !Array.isArray(rootfs.diff_ids) || !rootfs.diff_ids.every(isDigest)) {
    throw new ImageConfigInvalidError(where, 'rootfs.diff_ids must be a list of digests');
  }
  return config as ImageConfig;
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
