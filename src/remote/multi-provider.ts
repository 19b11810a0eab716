import type { Readable } from 'node:stream';
import { OciferryError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { BlobInfo, FetchOptions, Provider } from './provider.ts';

/** No provider was registered for a digest. */
export class ProviderMissingError extends OciferryError {
  readonly digest: string;

  constructor(digest: string) {
    super('PROVIDER_MISSING', `no provider knows where to read ${digest}`);
    this.digest = digest;
  }
}

/**
 * Routes each digest to its own provider (layers from different repositories or a cache service),
 * with an optional fallback for digests not registered explicitly.
 */
export class MultiProvider implements Provider {
  readonly description: string;
  readonly #byDigest = new Map<string, Provider>();
  readonly #fallback: Provider | undefined;

  constructor(options: { fallback?: Provider; description?: string } = {}) {
    this.#fallback = options.fallback;
    this.description = options.description ?? options.fallback?.description ?? 'several sources';
  }

  /** Route `digest` to `provider`; a later call for the same digest replaces it. */
  add(digest: string, provider: Provider): this {
    this.#byDigest.set(digest, provider);
    return this;
  }

  /** The provider that serves `digest`, or undefined. */
  providerOf(digest: string): Provider | undefined {
    return this.#byDigest.get(digest) ?? this.#fallback;
  }

  isLocal(digest: string): boolean {
    return this.providerOf(digest)?.isLocal?.(digest) ?? false;
  }

  info(digest: string, options?: { signal?: AbortSignal }): Promise<BlobInfo | undefined> {
    const provider = this.providerOf(digest);
    return provider ? provider.info(digest, options) : Promise.resolve(undefined);
  }

  fetch(descriptor: Descriptor, options?: FetchOptions): Promise<Readable> {
    const provider = this.providerOf(descriptor.digest);
    if (!provider) return Promise.reject(new ProviderMissingError(descriptor.digest));
    return provider.fetch(descriptor, options);
  }
}
