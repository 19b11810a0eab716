import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.ts';

/** Size and digest of a blob, as far as a provider knows without reading it. */
export interface BlobInfo {
  readonly digest: string;
  readonly size: number;
}

/** Options of {@link Provider.fetch}. */
export interface FetchOptions {
  signal?: AbortSignal;
  /** Byte range, `end` inclusive; omitted for the whole blob. Only whole reads are verified. */
  range?: { start: number; end?: number };
}

/**
 * A repository on a registry, where a provider reads or a target writes: what `BlobLocations`
 * records of a blob, for later copies to mount from.
 */
export interface RegistryLocation {
  readonly registry: string;
  readonly repository: string;
}

/**
 * Something that can hand out blobs by descriptor: a registry repository, a layout directory,
 * a cache service. Credentials, if any, are looked up at read time, never captured here.
 */
export interface Provider {
  /** Where the bytes come from, for progress and error messages (never with credentials). */
  readonly description: string;
  /** Set when the provider reads from a registry repository. */
  readonly location?: RegistryLocation;
  /**
   * True when reading `digest` stays on this machine (a layout directory, bytes in memory): such
   * reads are not downloads. Absent: every read crosses the network.
   */
  isLocal?(digest: string): boolean;
  /** Digest and size if the provider has the blob, undefined if not. May cost a HEAD request. */
  info(digest: string, options?: { signal?: AbortSignal }): Promise<BlobInfo | undefined>;
  /**
   * Stream a blob. A provider that verifies whole reads (fails with a digest error rather than
   * end on wrong bytes) marks the stream (`markVerified`); an unmarked stream is verified by
   * whoever reads it (a store, a lazy blob), so a provider need not.
   */
  fetch(descriptor: Descriptor, options?: FetchOptions): Promise<Readable>;
  /** Manifests whose `subject` is `digest`, where the provider can list them (registries). */
  referrers?(digest: string, options?: { signal?: AbortSignal }): Promise<Descriptor[]>;
}
