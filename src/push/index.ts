export {
  type BuildIndexOptions,
  buildIndex,
  IndexBuildError,
  indexMediaType,
} from './build-index.ts';
export {
  needsOciConversion,
  rewriteIndex,
  toDockerLayerType,
  toOciLayerType,
  toOciManifest,
} from './convert.ts';
export {
  type CopyManyResult,
  type CopyOptions,
  copy,
  copyToMany,
  DestinationDigestError,
  type DestinationOutcome,
  type ManyDestination,
} from './copy.ts';
export type { BlobStats, CopyEvent, CopyResult } from './events.ts';
export { LayoutTarget } from './layout-target.ts';
export { RegistryTarget } from './registry-target.ts';
export type { Target } from './target.ts';
