import { type Readable, Transform } from 'node:stream';
import { SizeExceededError } from '../errors.ts';
import { LayoutStore } from '../layout/index.ts';

/**
 * Where the service keeps blob bytes: content-addressed, shared by every namespace (namespaces
 * see a blob only once it has a row of theirs in the database).
 */
export interface ServiceBlobStore {
  /** Names the store in logs. */
  readonly description: string;
  /** The blob's size; undefined when absent. */
  info(digest: string): Promise<{ size: number } | undefined>;
  /** Stream the blob, or bytes `start`..`end` (inclusive) of it. */
  read(digest: string, range?: { start: number; end: number }): Readable;
  /**
   * Store `body` as `digest`, verified while streaming and committed only when it matches;
   * SIZE_EXCEEDED past `limit` bytes. Returns the stored size; idempotent.
   */
  write(
    digest: string,
    body: Readable,
    options: { limit: number; signal?: AbortSignal },
  ): Promise<number>;
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

/** Blobs in an OCI image layout directory (the default, `DIR/blobs`). */
export class LayoutBlobStore implements ServiceBlobStore {
  readonly description: string;
  readonly #store: LayoutStore;

  private constructor(store: LayoutStore) {
    this.#store = store;
    this.description = `oci:${store.dir}`;
  }

  static async open(dir: string): Promise<LayoutBlobStore> {
    return new LayoutBlobStore(await LayoutStore.open(dir));
  }

  async info(digest: string): Promise<{ size: number } | undefined> {
    return this.#store.info(digest);
  }

  read(digest: string, range?: { start: number; end: number }): Readable {
    return this.#store.readBlob(digest, range ?? {});
  }

  async write(
    digest: string,
    body: Readable,
    options: { limit: number; signal?: AbortSignal },
  ): Promise<number> {
    const stored = await this.#store.info(digest);
    if (stored) {
      body.resume(); // already stored: the bytes are not needed
      return stored.size;
    }
    const limited = body.pipe(limitStage(options.limit, `blob ${digest}`));
    body.once('error', (error) => limited.destroy(error));
    const written = await this.#store.writeBlob({ digest }, limited, { signal: options.signal });
    if (!written) {
      body.unpipe(limited);
      body.resume(); // another writer stored it meanwhile
    }
    const info = await this.#store.info(digest);
    if (!info) throw new Error(`blob ${digest} vanished after being written`);
    return info.size;
  }
}
