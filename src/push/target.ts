import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.ts';
import type { MountResult, UploadSession } from '../registry/index.ts';
import type { RegistryLocation } from '../remote/provider.ts';

/** Options of the target calls that take only a signal. */
export interface SignalOption {
  signal?: AbortSignal;
}

/**
 * Where a copy writes: a registry repository or an OCI layout. One interface, so one copy
 * algorithm works between any source and any target.
 */
export interface Target {
  /** For messages: `host/repo` or `oci:DIR`. */
  readonly description: string;
  /** Set for registry targets: the key of mount-source decisions and of learnt sources. */
  readonly location?: RegistryLocation;
  /**
   * True when the target stores a manifest only once everything it references is stored
   * (registries check on PUT): a manifest found there stands for its whole tree.
   */
  readonly checksReferences: boolean;
  hasBlob(descriptor: Descriptor, options?: SignalOption): Promise<boolean>;
  /** Registry targets only: cross-repository mount from `from` on the same registry. */
  mountBlob?(descriptor: Descriptor, from: string, options?: SignalOption): Promise<MountResult>;
  /** Registry targets only: give up a session a mount opened (best effort, never throws). */
  cancelUpload?(session: UploadSession): Promise<void>;
  /**
   * Store a blob whose bytes `open` streams; `open` is called only when the target is ready
   * (after exists and mount failed), possibly more than once when an attempt is retried. A
   * stream that verifies its digest itself (see `verifiedDigest`) is not hashed a second time.
   */
  writeBlob(
    descriptor: Descriptor,
    open: () => Promise<Readable>,
    options?: SignalOption & { session?: UploadSession },
  ): Promise<void>;
  hasManifest(descriptor: Descriptor, options?: SignalOption): Promise<boolean>;
  /** Store manifest bytes under their digest. */
  putManifest(descriptor: Descriptor, bytes: Buffer, options?: SignalOption): Promise<void>;
  /** Store manifest bytes under a tag (the last step of a copy). */
  tag(descriptor: Descriptor, bytes: Buffer, tag: string, options?: SignalOption): Promise<void>;
  /** Make an untagged root reachable where the target needs that (layout index.json). */
  keepUntagged(descriptor: Descriptor, options?: SignalOption): Promise<void>;
}
