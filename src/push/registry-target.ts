import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.ts';
import type { MountResult, Repository, UploadSession } from '../registry/index.ts';
import type { RegistryLocation } from '../remote/provider.ts';
import { addToReferrersTag } from './referrers-tag.ts';
import type { SignalOption, Target } from './target.ts';

/** A registry repository as a copy target. */
export class RegistryTarget implements Target {
  readonly repository: Repository;
  readonly description: string;
  readonly location: RegistryLocation;
  readonly checksReferences = true;

  constructor(repository: Repository) {
    this.repository = repository;
    this.description = `${repository.registry}/${repository.name}`;
    this.location = { registry: repository.registry, repository: repository.name };
  }

  async hasBlob(descriptor: Descriptor, options: SignalOption = {}): Promise<boolean> {
    return (await this.repository.headBlob(descriptor.digest, options)) !== undefined;
  }

  mountBlob(
    descriptor: Descriptor,
    from: string,
    options: SignalOption = {},
  ): Promise<MountResult> {
    return this.repository.mountBlob(descriptor.digest, from, options);
  }

  cancelUpload(session: UploadSession): Promise<void> {
    return this.repository.cancelUpload(session);
  }

  writeBlob(
    descriptor: Descriptor,
    open: () => Promise<Readable>,
    options: SignalOption & { session?: UploadSession } = {},
  ): Promise<void> {
    return this.repository.uploadBlob(descriptor, open, options);
  }

  async hasManifest(descriptor: Descriptor, options: SignalOption = {}): Promise<boolean> {
    const found = await this.repository.headManifest(descriptor.digest, options);
    return found?.digest === descriptor.digest;
  }

  async putManifest(
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
}
