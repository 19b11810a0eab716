import type { Readable } from 'node:stream';
import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../registry/oci.ts';
import type { SignalOption, Target } from './target.ts';

/** An OCI layout directory as a copy target. */
export class LayoutTarget implements Target {
  readonly store: LayoutStore;
  readonly description: string;
  /** A layout's manifest says nothing about its blobs (a GC or a hand may have removed some). */
  readonly checksReferences = false;

  constructor(store: LayoutStore) {
    this.store = store;
    this.description = `oci:${store.dir}`;
  }

  hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.store.has(descriptor.digest);
  }

  async writeBlob(
    descriptor: Descriptor,
    open: () => Promise<Readable>,
    options: SignalOption = {},
  ): Promise<void> {
    await this.store.writeBlob(descriptor, open, { ...options, sourceVerified: true });
  }

  hasManifest(descriptor: Descriptor): Promise<boolean> {
    return this.store.has(descriptor.digest);
  }

  async putManifest(descriptor: Descriptor, bytes: Buffer): Promise<void> {
    await this.store.writeBytes(descriptor, bytes);
  }

  async tag(
    descriptor: Descriptor,
    bytes: Buffer,
    tag: string,
    options: SignalOption = {},
  ): Promise<void> {
    await this.store.writeBytes(descriptor, bytes);
    await this.store.putTag(tag, entry(descriptor), options);
  }

  async keepUntagged(descriptor: Descriptor, options: SignalOption = {}): Promise<void> {
    await this.store.addManifest(entry(descriptor), options);
  }
}

/** The index.json entry of a manifest: only what identifies it (platform kept for indexes). */
function entry(descriptor: Descriptor): Descriptor {
  const { mediaType, digest, size, platform } = descriptor;
  return platform ? { mediaType, digest, size, platform } : { mediaType, digest, size };
}
