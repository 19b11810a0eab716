import { Readable } from 'node:stream';
import type { Descriptor } from '../oci/index.ts';
import { ProviderMissingError } from '../remote/multi-provider.ts';
import type { BlobInfo, FetchOptions, Provider } from '../remote/provider.ts';

/** Small blobs built in memory (a cache config written for an export), served as a provider. */
export class BytesProvider implements Provider {
  readonly description: string;
  readonly #blobs = new Map<string, Buffer>();

  constructor(description: string) {
    this.description = description;
  }

  /** Serve `bytes` as blob `digest` (the caller computed the digest from the bytes). */
  add(digest: string, bytes: Buffer): this {
    this.#blobs.set(digest, bytes);
    return this;
  }

  isLocal(): boolean {
    return true;
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    const bytes = this.#blobs.get(digest);
    return bytes && { digest, size: bytes.length };
  }

  async fetch(descriptor: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    options.signal?.throwIfAborted();
    const bytes = this.#blobs.get(descriptor.digest);
    if (!bytes) throw new ProviderMissingError(descriptor.digest);
    const { range } = options;
    const part = range
      ? bytes.subarray(range.start, range.end === undefined ? undefined : range.end + 1)
      : bytes;
    return Readable.from([part]);
  }
}
