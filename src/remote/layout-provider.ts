import { addAbortSignal, type Readable } from 'node:stream';
import { verifiedStream } from '../digest/index.ts';
import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../registry/oci.ts';
import type { BlobInfo, FetchOptions, Provider } from './provider.ts';

/** Blobs of an OCI image layout directory. Whole reads are verified: a layout can be corrupt. */
export class LayoutProvider implements Provider {
  readonly store: LayoutStore;
  readonly description: string;

  constructor(store: LayoutStore) {
    this.store = store;
    this.description = `oci:${store.dir}`;
  }

  info(digest: string): Promise<BlobInfo | undefined> {
    return this.store.info(digest);
  }

  async fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    const source = this.store.readBlob(descriptor.digest, options.range);
    // Removes its listener when the stream ends, unlike a bare addEventListener.
    if (options.signal) addAbortSignal(options.signal, source);
    if (options.range) return source;
    return verifiedStream(source, descriptor.digest, {
      size: descriptor.size,
      source: this.description,
    });
  }
}
