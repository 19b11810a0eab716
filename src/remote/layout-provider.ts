import type { Readable } from 'node:stream';
import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { BlobInfo, FetchOptions, Provider } from './provider.ts';

/**
 * Blobs of an OCI image layout directory.
 * @deprecated A {@link LayoutStore} is a provider itself (whole reads verified): pass the store.
 */
export class LayoutProvider implements Provider {
  readonly store: LayoutStore;
  readonly description: string;

  constructor(store: LayoutStore) {
    this.store = store;
    this.description = store.description;
  }

  isLocal(): boolean {
    return true;
  }

  info(digest: string): Promise<BlobInfo | undefined> {
    return this.store.info(digest);
  }

  referrers(digest: string, options: { signal?: AbortSignal } = {}): Promise<Descriptor[]> {
    return this.store.referrers(digest, options);
  }

  fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    return this.store.fetch(descriptor, options);
  }
}
