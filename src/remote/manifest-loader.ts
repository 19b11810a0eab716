import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { Repository } from '../registry/index.ts';
import { RegistryStore } from './registry-store.ts';
import type { ManifestFetcher } from './store.ts';

export { MANIFEST_SIZE_LIMIT, ManifestMediaTypeError } from './registry-store.ts';
export type { ManifestFetcher } from './store.ts';

/**
 * Reads verified manifest bytes by descriptor from wherever a remote came from.
 * @deprecated Every store is a {@link ManifestFetcher}: use the store (`openStore`).
 */
export interface ManifestLoader extends ManifestFetcher {
  /** Where manifests come from, for messages. */
  readonly description: string;
  /** @deprecated Use `fetchManifest`. */
  load(descriptor: Descriptor, options?: { signal?: AbortSignal }): Promise<Buffer>;
}

/**
 * Loads child manifests from a registry repository by digest.
 * @deprecated Use `new RegistryStore(repository)`, a {@link ManifestFetcher}.
 */
export function registryManifestLoader(repository: Repository): ManifestLoader {
  return loaderOf(new RegistryStore(repository));
}

/**
 * Loads manifests from an OCI layout (verified against their digest by the store).
 * @deprecated A {@link LayoutStore} is a {@link ManifestFetcher}: use the store.
 */
export function layoutManifestLoader(store: LayoutStore): ManifestLoader {
  return loaderOf(store);
}

function loaderOf(store: ManifestFetcher & { readonly description: string }): ManifestLoader {
  const fetch = (descriptor: Descriptor, options?: { signal?: AbortSignal }) =>
    store.fetchManifest(descriptor, options);
  return { description: store.description, fetchManifest: fetch, load: fetch };
}
