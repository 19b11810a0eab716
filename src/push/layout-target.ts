import type { Readable } from 'node:stream';
import { asReferrer, type LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
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

  /** Present with the right size: a file of another size under the name is not the blob. */
  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await this.store.info(descriptor.digest))?.size === descriptor.size;
  }

  async writeBlob(
    descriptor: Descriptor,
    open: () => Promise<Readable>,
    options: SignalOption = {},
  ): Promise<void> {
    await this.store.writeBlob(descriptor, open, options);
  }

  hasManifest(descriptor: Descriptor): Promise<boolean> {
    return this.hasBlob(descriptor);
  }

  /**
   * Store manifest bytes; a manifest with a subject (a signature, an SBOM) also gets an entry
   * without a name in `index.json`: that keeps it from GC and lists it as a referrer.
   */
  async putManifest(
    descriptor: Descriptor,
    bytes: Buffer,
    options: SignalOption = {},
  ): Promise<void> {
    await this.store.writeBytes(descriptor, bytes, options);
    const referrer = asReferrer(descriptor, bytes);
    if (referrer) {
      const { annotations: _, ...entry } = referrer.descriptor;
      await this.store.addManifest(entry, options);
    }
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
