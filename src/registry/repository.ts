import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.ts';
import { type FetchBlobOptions, fetchBlob, headBlob } from './blobs.ts';
import type { RepositoryContext } from './context.ts';
import { deleteByDigest } from './delete.ts';
import {
  type FetchedManifest,
  getManifest,
  headManifest,
  type ManifestReadOptions,
  type PutManifestOptions,
  type PutManifestResult,
  putManifest,
} from './manifests.ts';
import { type MountResult, mountBlob } from './mount.ts';
import { type ReferrersOptions, referrers } from './referrers.ts';
import { type ListTagsOptions, listTags } from './tags.ts';
import {
  type BlobBody,
  cancelUpload,
  type UploadBlobOptions,
  type UploadDescriptor,
  type UploadSession,
  uploadBlob,
} from './uploads.ts';

/** Options that only carry an abort signal. */
export interface SignalOptions {
  signal?: AbortSignal;
}

/** One repository on one registry: every endpoint of the distribution API that concerns it. */
export interface Repository {
  /** Registry as in a reference (`docker.io`, `host:port`). */
  readonly registry: string;
  /** Repository name (`library/alpine`). */
  readonly name: string;
  /** Manifest bytes by tag or digest, digest-verified, size-capped, media type checked. */
  getManifest(reference: string, options?: ManifestReadOptions): Promise<FetchedManifest>;
  /** Manifest descriptor without its body; undefined on 404. */
  headManifest(reference: string, options?: ManifestReadOptions): Promise<Descriptor | undefined>;
  /** Store manifest bytes under a tag or their digest (plus `options.tags`). */
  putManifest(
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options?: PutManifestOptions,
  ): Promise<PutManifestResult>;
  deleteManifest(digest: string, options?: SignalOptions): Promise<void>;
  /** Blob size and type without its body; undefined on 404. */
  headBlob(digest: string, options?: SignalOptions): Promise<Descriptor | undefined>;
  /** Blob bytes as a stream; whole reads are verified and resume after a lost connection. */
  fetchBlob(
    descriptor: { digest: string; size?: number },
    options?: FetchBlobOptions,
  ): Promise<Readable>;
  /** Upload a blob whose body is opened lazily and verified while it streams. */
  uploadBlob(
    descriptor: UploadDescriptor,
    body: BlobBody,
    options?: UploadBlobOptions,
  ): Promise<void>;
  /** Mount a blob from another repository of the same registry. */
  mountBlob(digest: string, from: string, options?: SignalOptions): Promise<MountResult>;
  /** Give up an upload session that will not be used (best effort, never throws). */
  cancelUpload(session: UploadSession): Promise<void>;
  deleteBlob(digest: string, options?: SignalOptions): Promise<void>;
  /** Every tag, following pagination. */
  listTags(options?: ListTagsOptions): AsyncIterable<string>;
  /** Manifests whose subject is `digest` (referrers API, or the tag fallback). */
  referrers(digest: string, options?: ReferrersOptions): Promise<Descriptor[]>;
}

/** {@link Repository} over a {@link RepositoryContext}. */
export class RegistryRepository implements Repository {
  readonly #context: RepositoryContext;

  constructor(context: RepositoryContext) {
    this.#context = context;
  }

  get registry(): string {
    return this.#context.registry;
  }

  get name(): string {
    return this.#context.name;
  }

  getManifest(reference: string, options?: ManifestReadOptions): Promise<FetchedManifest> {
    return getManifest(this.#context, reference, options);
  }

  headManifest(reference: string, options?: ManifestReadOptions): Promise<Descriptor | undefined> {
    return headManifest(this.#context, reference, options);
  }

  putManifest(
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options?: PutManifestOptions,
  ): Promise<PutManifestResult> {
    return putManifest(this.#context, reference, bytes, mediaType, options);
  }

  deleteManifest(digest: string, options?: SignalOptions): Promise<void> {
    return deleteByDigest(this.#context, 'manifests', digest, options);
  }

  headBlob(digest: string, options?: SignalOptions): Promise<Descriptor | undefined> {
    return headBlob(this.#context, digest, options);
  }

  fetchBlob(
    descriptor: { digest: string; size?: number },
    options?: FetchBlobOptions,
  ): Promise<Readable> {
    return fetchBlob(this.#context, descriptor, options);
  }

  uploadBlob(
    descriptor: UploadDescriptor,
    body: BlobBody,
    options?: UploadBlobOptions,
  ): Promise<void> {
    return uploadBlob(this.#context, descriptor, body, options);
  }

  mountBlob(digest: string, from: string, options?: SignalOptions): Promise<MountResult> {
    return mountBlob(this.#context, digest, from, options);
  }

  cancelUpload(session: UploadSession): Promise<void> {
    return cancelUpload(this.#context, session.location);
  }

  deleteBlob(digest: string, options?: SignalOptions): Promise<void> {
    return deleteByDigest(this.#context, 'blobs', digest, options);
  }

  listTags(options?: ListTagsOptions): AsyncIterable<string> {
    return listTags(this.#context, options);
  }

  referrers(digest: string, options?: ReferrersOptions): Promise<Descriptor[]> {
    return referrers(this.#context, digest, options);
  }
}
