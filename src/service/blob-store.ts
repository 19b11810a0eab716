import type { FileHandle } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import { isOciferryError, OciferryError, SizeExceededError } from '../errors.ts';
import { LayoutStore } from '../layout/index.ts';
import { type OpenStoreOptions, openStore } from '../remote/open-store.ts';
import { RegistryStore } from '../remote/registry-store.ts';
import type { Store } from '../remote/store.ts';

/**
 * Where the service keeps blob bytes: content-addressed, shared by every namespace (namespaces
 * see a blob only once it has a row of theirs in the database).
 */
export interface ServiceBlobStore {
  /** Names the store in logs. */
  readonly description: string;
  /** The blob's size; undefined when absent. */
  info(digest: string): Promise<{ size: number } | undefined>;
  /** Stream the blob (of `size` bytes), or bytes `start`..`end` (inclusive) of it. */
  read(digest: string, size: number, range?: { start: number; end: number }): Promise<Readable>;
  /**
   * The blob's file, open for reading, when the store keeps blobs in local files (downloads
   * then send it with two reused buffers, see `sendFile`); undefined otherwise.
   */
  open?(digest: string): Promise<FileHandle | undefined>;
  /**
   * Store `body` as `digest`, verified while streaming and committed only when it matches;
   * SIZE_EXCEEDED past `limit` bytes; `size` is the announced length. Returns the stored size;
   * idempotent.
   */
  write(
    digest: string,
    size: number,
    body: Readable,
    options: { limit: number; signal?: AbortSignal },
  ): Promise<number>;
  /** Delete the blob (the retention found no namespace holding it); false when it was not there. */
  delete(digest: string): Promise<boolean>;
}

/** A stream stage failing with SIZE_EXCEEDED once more than `limit` bytes went through. */
export function limitStage(limit: number, what: string): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      if (total > limit) callback(new SizeExceededError({ what, limit }));
      else callback(null, chunk);
    },
  });
}

/**
 * Blobs in any ociferry store (`openStore`): an OCI layout (the default, `DATA/blobs`) or a
 * registry repository through ociferry's own client. The store verifies the digest before it
 * keeps the bytes.
 */
export class StoreBlobStore implements ServiceBlobStore {
  readonly description: string;
  readonly #store: Store;

  constructor(store: Store, description: string) {
    this.#store = store;
    this.description = description;
  }

  /** The store `reference` names (`oci:DIR`, created when missing, or `HOST/REPO`). */
  static async open(reference: string, options: OpenStoreOptions = {}): Promise<StoreBlobStore> {
    return new StoreBlobStore(await openStore(reference, { create: true, ...options }), reference);
  }

  async info(digest: string): Promise<{ size: number } | undefined> {
    return this.#store.info(digest);
  }

  /**
   * From a layout, the file's bytes as they are: they were verified when the upload committed
   * them, and the engine verifies what it downloads, so hashing them again here would only halve
   * the rate the service's one thread serves at. From a registry, the store's verified fetch.
   */
  async read(
    digest: string,
    size: number,
    range?: { start: number; end: number },
  ): Promise<Readable> {
    if (this.#store instanceof LayoutStore) {
      return this.#store.readBlob(digest, range ?? { start: 0, end: size - 1 });
    }
    const descriptor = { mediaType: 'application/octet-stream', digest, size };
    return this.#store.fetch(descriptor, range ? { range } : {});
  }

  /** The layout's file of the blob (unverified, as `read`); undefined for a registry. */
  async open(digest: string): Promise<FileHandle | undefined> {
    return this.#store instanceof LayoutStore ? this.#store.openBlob(digest) : undefined;
  }

  /** A layout's file is removed; a registry is asked to DELETE the blob (it may refuse). */
  async delete(digest: string): Promise<boolean> {
    if (this.#store instanceof LayoutStore) return this.#store.deleteBlob(digest);
    if (this.#store instanceof RegistryStore) {
      try {
        await this.#store.repository.deleteBlob(digest);
        return true;
      } catch (error) {
        if (isOciferryError(error, 'BLOB_UNKNOWN')) return false;
        throw error;
      }
    }
    throw new OciferryError('UNSUPPORTED', `${this.description} cannot delete blobs`);
  }

  async write(
    digest: string,
    size: number,
    body: Readable,
    options: { limit: number; signal?: AbortSignal },
  ): Promise<number> {
    const stored = await this.#store.info(digest, { signal: options.signal });
    if (stored) {
      body.resume(); // already stored: the bytes are not needed
      return stored.size;
    }
    const limited = body.pipe(limitStage(options.limit, `blob ${digest}`));
    body.once('error', (error) => limited.destroy(error));
    let opened = false;
    const descriptor = { mediaType: 'application/octet-stream', digest, size };
    await this.#store.push(
      descriptor,
      () => {
        // The request body can be read once: a retried attempt fails instead of sending less.
        if (opened) throw new Error('the upload cannot be retried from the request body');
        opened = true;
        return limited;
      },
      { signal: options.signal },
    );
    if (!opened) body.resume();
    return size;
  }
}
