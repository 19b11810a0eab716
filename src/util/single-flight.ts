/**
 * Deduplicates concurrent work by key: while a call for `key` is in flight, later callers get
 * the same promise. Once it settles the key is forgotten, so a failure can be retried.
 */
export class SingleFlight<K, V> {
  readonly #inFlight = new Map<K, Promise<V>>();

  /** Number of keys with work in flight. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** Join the call in flight for `key`, or start `work` if there is none. */
  do(key: K, work: () => Promise<V>): Promise<V> {
    const existing = this.#inFlight.get(key);
    if (existing) return existing;
    const promise = work().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, promise);
    return promise;
  }
}
