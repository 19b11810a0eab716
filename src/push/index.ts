export { type BuildIndexOptions, buildIndex, IndexBuildError } from './build-index.ts';
export { needsOciConversion, rewriteIndex, toOciManifest } from './convert.ts';
export { type CopyOptions, copy, DestinationDigestError } from './copy.ts';
export type { BlobStats, CopyEvent, CopyResult } from './events.ts';
export { LayoutTarget } from './layout-target.ts';
export { RegistryTarget } from './registry-target.ts';
export type { Target } from './target.ts';
