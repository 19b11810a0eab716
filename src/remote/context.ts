import type { ManifestLoader } from './manifest-loader.ts';
import type { OciferryContext } from './ociferry-context.ts';
import type { Provider } from './provider.ts';
import type { SourceIndex } from './sources.ts';

/** What every remote resolved from one place shares: how to read blobs and manifests. */
export interface RemoteContext {
  /** The reference the remote was resolved from, e.g. `host/repo:tag` or `oci:dir:tag`. */
  readonly ref: string;
  readonly provider: Provider;
  readonly manifests: ManifestLoader;
  readonly sources: SourceIndex;
  /** Cap on image config size (default 32 MiB). */
  readonly configSizeLimit: number;
  /** The library context the remote was resolved in, whose downloads its blobs share; default the default one. */
  readonly library?: OciferryContext;
}
