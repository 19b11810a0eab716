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
  type Destination,
  DestinationDigestError,
  type DestinationOutcome,
  type ManyDestination,
} from './copy.ts';
export type { BlobStats, CopyEvent, CopyResult } from './events.ts';
export { LayoutTarget, RegistryTarget, type Target } from './target.ts';
