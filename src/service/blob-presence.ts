/** Options of {@link BlobPresence}. */
export interface BlobPresenceOptions {
  /** Entries kept; the oldest go first. Default 100,000 (a few MB). */
  maxEntries?: number;
  /** How long an entry is believed, in milliseconds; default forever. */
  ttlMs?: number;
  /** Clock in milliseconds; default `Date.now`. */
  now?: () => number;
}

/**
 * What the service has seen present: `key` (a namespace's blob, or a blob of the store) to its
 * size. Only presence is remembered, never absence, so a blob another instance commits is found at
 * the next lookup; callers {@link BlobPresence.add} on every write. Spares URL minting the database
 * and store lookups of blobs already seen.
 */
export class BlobPresence {
  readonly #entries = new Map<string, { size: number; at: number }>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: BlobPresenceOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY;
    this.#now = options.now ?? Date.now;
  }

  /** The remembered size of `key`; undefined when unknown or expired. */
  get(key: string): number | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (this.#now() - entry.at > this.#ttlMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.size;
  }

  /** Remember that `key` is present with `size` bytes. */
  add(key: string, size: number): void {
    this.#entries.delete(key); // re-inserted last: the oldest entry is the first one
    this.#entries.set(key, { size, at: this.#now() });
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  /** Forget `key` (its blob was found missing). */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** `get`, else `lookup` (remembered when it finds the blob). */
  async through(
    key: string,
    lookup: () => Promise<number | undefined>,
  ): Promise<number | undefined> {
    const known = this.get(key);
    if (known !== undefined) return known;
    const size = await lookup();
    if (size !== undefined) this.add(key, size);
    return size;
  }
}
