import type { Descriptor } from '../oci/index.ts';

/**
 * What happened to one blob or manifest during a copy; the CLI renders these as progress. With
 * several destinations a blob has events per destination, told apart by `target`.
 */
export type CopyEvent = (
  | { readonly type: 'blob-skipped'; readonly digest: string; readonly size: number }
  | {
      readonly type: 'blob-mounted';
      readonly digest: string;
      readonly size: number;
      /** Repository the blob was mounted from. */
      readonly from: string;
    }
  | { readonly type: 'blob-start'; readonly digest: string; readonly size: number }
  | {
      readonly type: 'blob-progress';
      readonly digest: string;
      readonly size: number;
      /** Bytes sent to this target so far (the current attempt's). */
      readonly bytes: number;
    }
  | { readonly type: 'blob-done'; readonly digest: string; readonly size: number }
  | {
      readonly type: 'manifest-pushed';
      readonly descriptor: Descriptor;
      /** Set when the manifest was pushed under a tag. */
      readonly tag?: string;
    }
) & {
  /** The destination concerned (`host/repo` or `oci:DIR`), as the store's `description`. */
  readonly target?: string;
};

/** Blob figures of a copy, as printed by `--json`. */
export interface BlobStats {
  mounted: number;
  skipped: number;
  uploaded: number;
  /** Bytes of the upload attempts that succeeded. */
  bytesUploaded: number;
  /**
   * Bytes of blobs read from the source over the network, every read counted: a read shared by
   * several destinations counts once, at the first of them that took it; a retried upload reads
   * afresh and counts again. Reads from a local layout or from memory are not downloads.
   */
  bytesDownloaded: number;
}

/** Result of a copy or index build. */
export interface CopyResult {
  /** Digest of the pushed root manifest (differs from the source's after a media type conversion). */
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly blobs: BlobStats;
  /**
   * HTTP requests the client sent during the call (every attempt, pings, token requests and
   * redirect hops included; not those that resolved the source before it). Destinations of one
   * {@link copyToMany} run at once and share reads: each reports the requests of the whole.
   */
  readonly requests: number;
  /** Tags created, in order. */
  readonly tags: readonly string[];
  /** Source manifest digest -> pushed digest, for manifests whose bytes were rewritten. */
  readonly converted: ReadonlyMap<string, string>;
}
