/**
 * The OCI data model: descriptors, manifests, indexes, image configs, media types and
 * platforms, and the one decoder that turns bytes read from outside into them. A leaf: it
 * imports nothing but the digest parser.
 */

export {
  checkDescriptor,
  checkImageConfig,
  checkIndex,
  checkManifest,
  decodeImageConfig,
  decodeJson,
  decodeManifest,
  detectManifestMediaType,
} from './decode.ts';
export { ImageConfigInvalidError, JsonInvalidError, ManifestInvalidError } from './errors.ts';
export * from './media-types.ts';
export {
  bestPlatformMatch,
  configPlatform,
  formatPlatform,
  hostPlatform,
  InvalidPlatformError,
  normalizePlatform,
  parsePlatform,
  platformRank,
} from './platform.ts';
export type {
  DecodedManifest,
  Descriptor,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  Platform,
} from './types.ts';
