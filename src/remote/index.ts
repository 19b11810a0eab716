export {
  BlobLocations,
  type BlobLocationsOptions,
  SourceIndex,
  type SourceIndexOptions,
} from './blob-locations.ts';
export { type RemoteContext, type RemoteContextOptions, remoteContext } from './context.ts';
export { LayoutProvider } from './layout-provider.ts';
export { LazyBlob, type UnlazyOptions, type UnlazyProgress } from './lazy-blob.ts';
export {
  layoutManifestLoader,
  type ManifestLoader,
  registryManifestLoader,
} from './manifest-loader.ts';
export { MultiProvider, ProviderMissingError } from './multi-provider.ts';
export {
  ContextClosedError,
  type ContextKey,
  type ContextOptions,
  contextOf,
  defaultClient,
  defaultContext,
  OciferryContext,
  type OciferryContextOptions,
  setDefaultContext,
} from './ociferry-context.ts';
export { type OpenStoreOptions, openStore } from './open-store.ts';
export type { BlobInfo, FetchOptions, Provider, RegistryLocation } from './provider.ts';
export { RegistryProvider } from './registry-provider.ts';
export { MANIFEST_SIZE_LIMIT, ManifestMediaTypeError, RegistryStore } from './registry-store.ts';
export { RemoteImage } from './remote-image.ts';
export {
  loadRemote,
  PlatformNotFoundError,
  type Remote,
  RemoteIndex,
  remoteFromBytes,
  requirePlatform,
} from './remote-index.ts';
export { RemoteManifest, type UnlazyImageOptions } from './remote-manifest.ts';
export {
  NotFoundInLayoutError,
  type ResolveOptions,
  resolve,
  resolveDescriptor,
} from './resolve.ts';
export {
  BlobNotFoundError,
  type Exister,
  type ManifestFetcher,
  type ManifestPusher,
  type Mounter,
  mounterOf,
  type Pusher,
  type PushOptions,
  type ReferenceFetcher,
  type ReferrerLister,
  type Resolver,
  type SignalOption,
  type Store,
  type StoredManifest,
  type Tagger,
  type TagLister,
} from './store.ts';
export {
  type MintedUrl,
  UrlFetchError,
  type UrlMinter,
  UrlProvider,
  type UrlProviderOptions,
} from './url-provider.ts';
