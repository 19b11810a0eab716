import { addAbortSignal, finished, type Readable } from 'node:stream';
import { verifiedStream } from '../digest/index.ts';
import type { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { AbortWatch } from '../util/abort-watch.ts';
import { childSignal } from '../util/child-signal.ts';
import type { BlobInfo, FetchOptions, Provider } from './provider.ts';

/** Blobs of an OCI image layout directory. Whole reads are verified: a layout can be corrupt. */
export class LayoutProvider implements Provider {
  readonly store: LayoutStore;
  readonly description: string;
  /** One listener per caller signal for all of this provider's reads. */
  readonly #aborts = new AbortWatch();

  constructor(store: LayoutStore) {
    this.store = store;
    this.description = `oci:${store.dir}`;
  }

  isLocal(): boolean {
    return true;
  }

  info(digest: string): Promise<BlobInfo | undefined> {
    return this.store.info(digest);
  }

  /** Manifests of the layout whose subject is `digest` (entries of its `index.json`). */
  referrers(digest: string, options: { signal?: AbortSignal } = {}): Promise<Descriptor[]> {
    return this.store.referrers(digest, options);
  }

  async fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    const source = this.store.readBlob(descriptor.digest, options.range);
    if (options.signal) {
      // The caller's signal is shared by every blob of a copy: it keeps one listener for all
      // of them, and this stream listens on a signal of its own.
      const abort = childSignal(this.#aborts, options.signal);
      addAbortSignal(abort.signal, source);
      finished(source, abort.dispose);
    }
    if (options.range) return source;
    return verifiedStream(source, descriptor.digest, {
      size: descriptor.size,
      source: this.description,
    });
  }
}
