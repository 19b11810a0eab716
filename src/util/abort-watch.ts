/**
 * Runs any number of callbacks when a signal aborts through a single listener per signal: a copy
 * has hundreds of waiters on one signal, and a listener each would trip Node's listener-leak
 * warning and cost a scan of the list at each removal.
 */
export class AbortWatch {
  readonly #watched = new Map<AbortSignal, { onAbort: () => void; callbacks: Set<() => void> }>();

  /**
   * Call `callback` once when `signal` aborts, unless the returned function is called first.
   * The signal must not be aborted already (check that before).
   */
  add(signal: AbortSignal, callback: () => void): () => void {
    let watched = this.#watched.get(signal);
    if (!watched) {
      const callbacks = new Set<() => void>();
      const onAbort = () => {
        this.#watched.delete(signal);
        for (const each of callbacks) each();
      };
      watched = { onAbort, callbacks };
      this.#watched.set(signal, watched);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    const entry = watched;
    const wrapped = () => callback();
    entry.callbacks.add(wrapped);
    return () => {
      entry.callbacks.delete(wrapped);
      if (entry.callbacks.size === 0 && this.#watched.get(signal) === entry) {
        signal.removeEventListener('abort', entry.onAbort);
        this.#watched.delete(signal);
      }
    };
  }
}
