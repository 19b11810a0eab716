import type { Readable } from 'node:stream';
import { ensureVerified } from '../digest/index.ts';
import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { BlobLocations } from './blob-locations.ts';
import { defaultContext, type OciferryContext } from './ociferry-context.ts';
import type { BlobInfo, FetchOptions, Provider } from './provider.ts';

/** Progress of one download, reported to the caller whose `unlazy` started it. */
export interface UnlazyProgress {
  readonly digest: string;
  /** The reference the blob was resolved from (BuildKit reports progress on the origin too). */
  readonly ref: string;
  readonly bytes: number;
  readonly total: number;
}

/** Options of {@link LazyBlob.unlazy}. */
export interface UnlazyOptions {
  signal?: AbortSignal;
  onProgress?: (event: UnlazyProgress) => void;
}

/**
 * A blob that has not been downloaded: its descriptor, the provider that can read it and where
 * it is known to live. Nothing is fetched until {@link unlazy} or {@link fetch} is called.
 */
export class LazyBlob {
  readonly descriptor: Descriptor;
  readonly provider: Provider;
  /** The reference this blob was resolved through, for progress and messages. */
  readonly ref: string;
  readonly #locations: BlobLocations;
  readonly #library: OciferryContext | undefined;

  /** `library` is the context whose downloads in flight are shared; default the default one. */
  constructor(
    descriptor: Descriptor,
    provider: Provider,
    ref: string,
    locations: BlobLocations,
    library?: OciferryContext,
  ) {
    this.descriptor = descriptor;
    this.provider = provider;
    this.ref = ref;
    this.#locations = locations;
    this.#library = library;
  }

  get digest(): string {
    return this.descriptor.digest;
  }

  get size(): number {
    return this.descriptor.size;
  }

  /** Digest and size from the descriptor: no I/O. */
  info(): BlobInfo {
    return { digest: this.descriptor.digest, size: this.descriptor.size };
  }

  /** Where the blob is known to exist: registry host -> repositories. */
  locations(): Map<string, string[]> {
    return this.#locations.locationsOf(this.descriptor.digest);
  }

  /** @deprecated Use {@link locations}. */
  sources(): Map<string, string[]> {
    return this.locations();
  }

  /** Stream the blob from its provider; a whole read verifies the bytes, whatever the provider. */
  async fetch(options: FetchOptions = {}): Promise<Readable> {
    const stream = await this.provider.fetch(this.descriptor, options);
    if (options.range) return stream;
    const { digest, size } = this.descriptor;
    return ensureVerified(stream, digest, { size, source: this.provider.description });
  }

  /**
   * Download into `store` unless it is there already (then no network I/O at all). Concurrent
   * calls for the same digest and store (in one library context) share one download, reported to the caller that started
   * it while that caller waits. A caller whose signal aborts leaves at once; the download stops
   * only when every caller has left. The bytes are verified while streaming and committed
   * atomically. Resolves to true when this call (or the download it joined) wrote the blob.
   */
  async unlazy(store: LayoutStore, options: UnlazyOptions = {}): Promise<boolean> {
    const { onProgress, signal } = options;
    // A file of another size under the name is not the blob: writeBlob replaces it.
    if ((await store.info(this.digest))?.size === this.size) return false;
    const key = `${store.dir}\0${this.digest}`;
    const report =
      onProgress &&
      ((bytes: number) => {
        if (!signal?.aborted)
          onProgress({ digest: this.digest, ref: this.ref, bytes, total: this.size });
      });
    return (this.#library ?? defaultContext()).downloads.do(
      key,
      // A provider's verifying read is not hashed again by the store; other reads are.
      (shared) =>
        store.writeBlob(this.descriptor, () => this.fetch({ signal: shared }), {
          signal: shared,
          onProgress: report,
        }),
      signal,
    );
  }
}
