import type { Readable } from 'node:stream';
import { OciferryError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import type { MountResult, UploadSession } from '../registry/index.ts';
import type { Provider } from './provider.ts';

/** Options of the store calls that take only a signal. */
export interface SignalOption {
  signal?: AbortSignal;
}

/** A manifest as a store holds it: its descriptor and its bytes exactly as stored. */
export interface StoredManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/** Reads manifest bytes by descriptor, verified against its digest and size-capped. */
export interface ManifestFetcher {
  fetchManifest(descriptor: Descriptor, options?: SignalOption): Promise<Buffer>;
}

/**
 * Finds the descriptor a tag or digest names. Undefined names the store's default: a
 * registry's `latest`; a layout's only image, else `latest`.
 */
export interface Resolver {
  resolve(reference: string | undefined, options?: SignalOption): Promise<Descriptor>;
}

/** {@link Resolver} and {@link ManifestFetcher} in one call (one request where a registry answers both). */
export interface ReferenceFetcher {
  fetchReference(reference: string | undefined, options?: SignalOption): Promise<StoredManifest>;
}

/** Says whether a blob or manifest is stored, with the descriptor's size. */
export interface Exister {
  exists(descriptor: Descriptor, options?: SignalOption): Promise<boolean>;
}

/** Options of {@link Pusher.push}. */
export interface PushOptions extends SignalOption {
  /** An upload session a {@link Mounter.mount} on this store opened, used by the first attempt. */
  session?: UploadSession;
}

/**
 * Stores a blob whose bytes `open` streams: `open` is called only when the store is ready for
 * them, and again for an attempt that is retried. Bytes are verified before they are kept; a
 * stream that verifies the digest itself (see `verifiedDigest`) is not hashed a second time.
 */
export interface Pusher {
  push(
    descriptor: Descriptor,
    open: () => Readable | Promise<Readable>,
    options?: PushOptions,
  ): Promise<void>;
}

/** Stores manifest bytes under their digest. */
export interface ManifestPusher {
  pushManifest(descriptor: Descriptor, bytes: Buffer, options?: SignalOption): Promise<void>;
}

/** Stores manifest bytes under a tag. */
export interface Tagger {
  tag(descriptor: Descriptor, bytes: Buffer, tag: string, options?: SignalOption): Promise<void>;
}

/** Lists every tag (all pages of a registry's list). */
export interface TagLister {
  tags(options?: SignalOption): Promise<string[]>;
}

/** Lists the manifests whose `subject` is `digest` (signatures, SBOMs). */
export interface ReferrerLister {
  referrers(digest: string, options?: SignalOption): Promise<Descriptor[]>;
}

/**
 * Links a blob from another repository of the same registry without moving its bytes: a
 * capability some stores have, found at run time with {@link mounterOf}.
 */
export interface Mounter {
  mount(descriptor: Descriptor, from: string, options?: SignalOption): Promise<MountResult>;
  /** Give up an upload session a refused mount opened (best effort, never throws). */
  cancelMount(session: UploadSession): Promise<void>;
}

/**
 * One backend (a registry repository, an OCI layout) as one object of small one-verb
 * interfaces (and a {@link ReferrerLister}), opened by `openStore`. Reads are those of a {@link Provider}; the rest is what a
 * resolve, a copy and the commands need. Capabilities that only some backends have (mounting)
 * are found at run time ({@link mounterOf}).
 */
export interface Store
  extends Provider,
    ManifestFetcher,
    Resolver,
    ReferenceFetcher,
    Exister,
    Pusher,
    ManifestPusher,
    Tagger,
    TagLister {
  /**
   * True when the store keeps a manifest only once everything it references is stored
   * (registries check on PUT): a manifest found there stands for its whole tree.
   */
  readonly checksReferences: boolean;
  /** Make an untagged root reachable where the store needs that (a layout's `index.json`). */
  keepUntagged(descriptor: Descriptor, options?: SignalOption): Promise<void>;
  /** What {@link ReferrerLister} lists: every store can (an optional read of a mere provider). */
  referrers(digest: string, options?: SignalOption): Promise<Descriptor[]>;
}

/** `store` as a {@link Mounter} when it can mount, else undefined. */
export function mounterOf(store: object): Mounter | undefined {
  const candidate = store as Partial<Mounter>;
  return typeof candidate.mount === 'function' && typeof candidate.cancelMount === 'function'
    ? (candidate as Mounter)
    : undefined;
}

/** A store asked for a blob by digest alone does not have it. */
export class BlobNotFoundError extends OciferryError {
  readonly digest: string;

  /** @param where the store's description (`host/repo`, `oci:DIR`) */
  constructor(digest: string, where: string) {
    super('BLOB_UNKNOWN', `blob ${digest} is not in ${where}`);
    this.digest = digest;
  }
}
