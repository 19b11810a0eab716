import type { BlobLocations } from './blob-locations.ts';
import { type ContextOptions, contextOf, type OciferryContext } from './ociferry-context.ts';
import type { Provider } from './provider.ts';
import type { ManifestFetcher } from './store.ts';

/** Default cap on image config size. */
const CONFIG_SIZE_LIMIT = 32 * 1024 * 1024;

/** What every remote resolved from one place shares: how to read blobs and manifests. */
export interface RemoteContext {
  /** The reference the remote was resolved from, e.g. `host/repo:tag` or `oci:dir:tag`. */
  readonly ref: string;
  /** Where blobs are read: the store the remote was resolved from, unless rerouted. */
  readonly provider: Provider;
  /** Where child manifests are read: the store the remote was resolved from. */
  readonly manifests: ManifestFetcher;
  /** Where the remote's blobs are known to live (learnt as it reads manifests), for mounts. */
  readonly blobLocations: BlobLocations;
  /** @deprecated Use {@link blobLocations}. */
  readonly sources?: BlobLocations;
  /** Cap on image config size (default 32 MiB). */
  readonly configSizeLimit: number;
  /** The library context the remote was resolved in, whose downloads its blobs share; default the default one. */
  readonly library?: OciferryContext;
}

/** Options of {@link remoteContext}. */
export interface RemoteContextOptions extends ContextOptions {
  /** Where learnt blob locations go; default the context's. */
  blobLocations?: BlobLocations;
  /** @deprecated Use {@link blobLocations}. */
  sources?: BlobLocations;
  /** Cap on image config size, default 32 MiB. */
  configSizeLimit?: number;
}

/** The context of remotes resolved through `ref` from `store` (its blobs and its manifests). */
export function remoteContext(
  store: Provider & ManifestFetcher,
  ref: string,
  options: RemoteContextOptions = {},
): RemoteContext {
  const library = contextOf(options);
  const blobLocations = options.blobLocations ?? options.sources ?? library.blobLocations;
  return {
    ref,
    provider: store,
    manifests: store,
    blobLocations,
    sources: blobLocations,
    configSizeLimit: options.configSizeLimit ?? CONFIG_SIZE_LIMIT,
    library,
  };
}
