import type { Readable } from 'node:stream';
import { OciferryError } from '../errors.ts';
import {
  type Descriptor,
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_MEDIA_TYPES,
} from '../oci/index.ts';
import type { MountResult, Repository, UploadSession } from '../registry/index.ts';
import type { BlobInfo, FetchOptions, RegistryLocation } from './provider.ts';
import { addToReferrersTag } from './referrers-tag.ts';
import type { Mounter, PushOptions, SignalOption, Store, StoredManifest } from './store.ts';

/** Default cap on manifest size, as the registry client's. */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

/** A manifest was announced as one media type and served as another. */
export class ManifestMediaTypeError extends OciferryError {
  constructor(digest: string, announced: string, served: string) {
    super(
      'MEDIA_TYPE_MISMATCH',
      `manifest ${digest} is listed as ${announced} but was served as ${served}`,
    );
  }
}

/**
 * One repository on one registry as a store: the `host/repo` backend. Reads and writes go
 * through the client's auth at call time; it can mount blobs from the registry's other
 * repositories.
 */
export class RegistryStore implements Store, Mounter {
  readonly repository: Repository;
  readonly location: RegistryLocation;
  readonly description: string;
  /** A registry checks a manifest's references on PUT: a manifest there stands for its tree. */
  readonly checksReferences = true;

  constructor(repository: Repository) {
    this.repository = repository;
    this.location = { registry: repository.registry, repository: repository.name };
    this.description = `${repository.registry}/${repository.name}`;
  }

  async info(digest: string, options: SignalOption = {}): Promise<BlobInfo | undefined> {
    const found = await this.repository.headBlob(digest, options);
    return found && { digest: found.digest, size: found.size };
  }

  /** A blob's bytes; a whole read is verified and resumes after a lost connection. */
  fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    return this.repository.fetchBlob(descriptor, options);
  }

  /** Manifest bytes by digest, verified, and served as the media type `descriptor` announces. */
  async fetchManifest(descriptor: Descriptor, options: SignalOption = {}): Promise<Buffer> {
    const fetched = await this.repository.getManifest(descriptor.digest, {
      accept: [descriptor.mediaType, ...MANIFEST_MEDIA_TYPES],
      signal: options.signal,
    });
    if (fetched.descriptor.mediaType !== descriptor.mediaType) {
      throw new ManifestMediaTypeError(
        descriptor.digest,
        descriptor.mediaType,
        fetched.descriptor.mediaType,
      );
    }
    return fetched.bytes;
  }

  /** The manifest a tag or digest (default `latest`) names, in one GET. */
  async fetchReference(
    reference: string | undefined,
    options: SignalOption = {},
  ): Promise<StoredManifest> {
    const { descriptor, bytes } = await this.repository.getManifest(reference ?? 'latest', {
      accept: [...MANIFEST_MEDIA_TYPES],
      signal: options.signal,
    });
    return { descriptor, bytes };
  }

  /** One HEAD when the registry answers it with a digest, else a GET. */
  async resolve(reference: string | undefined, options: SignalOption = {}): Promise<Descriptor> {
    const head = await this.repository.headManifest(reference ?? 'latest', options);
    return head ?? (await this.fetchReference(reference, options)).descriptor;
  }

  /** HEAD on the manifests endpoint for manifest media types, on the blobs endpoint otherwise. */
  async exists(descriptor: Descriptor, options: SignalOption = {}): Promise<boolean> {
    const { digest, mediaType } = descriptor;
    if (isManifestMediaType(mediaType) || isIndexMediaType(mediaType)) {
      return (await this.repository.headManifest(digest, options))?.digest === digest;
    }
    return (await this.repository.headBlob(digest, options)) !== undefined;
  }

  push(
    descriptor: Descriptor,
    open: () => Readable | Promise<Readable>,
    options: PushOptions = {},
  ): Promise<void> {
    return this.repository.uploadBlob(descriptor, open, options);
  }

  /**
   * PUT by digest. A manifest with a subject that the registry did not index (no `OCI-Subject`
   * in its answer) is also added to the referrers tag, as distribution-spec v1.1 asks of clients.
   */
  async pushManifest(
    descriptor: Descriptor,
    bytes: Buffer,
    options: SignalOption = {},
  ): Promise<void> {
    const result = await this.repository.putManifest(
      descriptor.digest,
      bytes,
      descriptor.mediaType,
      options,
    );
    if (result.subject === undefined && bytes.includes('"subject"')) {
      await addToReferrersTag(this.repository, descriptor, bytes, options.signal);
    }
  }

  async tag(
    descriptor: Descriptor,
    bytes: Buffer,
    tag: string,
    options: SignalOption = {},
  ): Promise<void> {
    await this.repository.putManifest(tag, bytes, descriptor.mediaType, options);
  }

  async keepUntagged(): Promise<void> {
    // A registry keeps manifests pushed by digest: nothing to do.
  }

  async tags(options: SignalOption = {}): Promise<string[]> {
    const list: string[] = [];
    for await (const tag of this.repository.listTags(options)) list.push(tag);
    return list;
  }

  referrers(digest: string, options: SignalOption = {}): Promise<Descriptor[]> {
    return this.repository.referrers(digest, options);
  }

  /** Cross-repository mount from `from` on the same registry (201: mounted, or there already). */
  mount(descriptor: Descriptor, from: string, options: SignalOption = {}): Promise<MountResult> {
    return this.repository.mountBlob(descriptor.digest, from, options);
  }

  cancelMount(session: UploadSession): Promise<void> {
    return this.repository.cancelUpload(session);
  }
}
