import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.ts';
import type { Repository } from '../registry/index.ts';
import type { BlobInfo, FetchOptions, Provider, RegistryLocation } from './provider.ts';

/** Blobs of one repository on one registry. Reads go through the client's auth at read time. */
export class RegistryProvider implements Provider {
  readonly repository: Repository;
  readonly location: RegistryLocation;
  readonly description: string;

  constructor(repository: Repository) {
    this.repository = repository;
    this.location = { registry: repository.registry, repository: repository.name };
    this.description = `${repository.registry}/${repository.name}`;
  }

  async info(
    digest: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<BlobInfo | undefined> {
    const found = await this.repository.headBlob(digest, options);
    return found && { digest: found.digest, size: found.size };
  }

  fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    return this.repository.fetchBlob(descriptor, options);
  }

  referrers(digest: string, options: { signal?: AbortSignal } = {}): Promise<Descriptor[]> {
    return this.repository.referrers(digest, options);
  }
}
