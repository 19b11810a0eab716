import { AbortWatch } from './abort-watch.ts';

/** Work in flight for one key and the callers waiting for it. */
interface Flight<V> {
  readonly promise: Promise<V>;
  readonly controller: AbortController;
  /** Callers still waiting; a caller without a signal never leaves. */
  callers: number;
}

/**
 * Deduplicates concurrent work by key: while a call for `key` is in flight, later callers join
 * it. The work runs on a signal of its own, not its first caller's: a caller whose signal aborts
 * leaves at once with its abort reason while the others keep waiting, and the work is aborted only
 * when every caller has left (the last one returns once the work has wound down). Once the work
 * settles the key is forgotten, so a failure can be retried; a caller arriving after the last one
 * left starts the work afresh.
 */
export class SingleFlight<K, V> {
  readonly #flights = new Map<K, Flight<V>>();
  readonly #aborts = new AbortWatch();

  /** Number of keys with work in flight. */
  get size(): number {
    return this.#flights.size;
  }

  /**
   * Join the work in flight for `key`, or start `work` if there is none. `work` receives the
   * flight's signal, aborted once every caller has left; `signal` is this caller's own.
   */
  do(key: K, work: (signal: AbortSignal) => Promise<V>, signal?: AbortSignal): Promise<V> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const flight = this.#flights.get(key) ?? this.#start(key, work);
    flight.callers++;
    if (!signal) return flight.promise;
    return new Promise<V>((resolve, reject) => {
      const leave = this.#aborts.add(signal, () => {
        flight.callers--;
        if (flight.callers > 0) {
          reject(signal.reason);
          return;
        }
        // The last caller stops the work and returns once it has wound down (temp files
        // removed, sockets closed), so that nothing runs on behind it.
        this.#forget(key, flight);
        flight.controller.abort(signal.reason);
        const done = () => reject(signal.reason);
        flight.promise.then(done, done);
      });
      flight.promise.then(
        (value) => {
          leave();
          resolve(value);
        },
        (error: unknown) => {
          leave();
          reject(error);
        },
      );
    });
  }

  #start(key: K, work: (signal: AbortSignal) => Promise<V>): Flight<V> {
    const controller = new AbortController();
    let promise: Promise<V>;
    try {
      promise = work(controller.signal);
    } catch (error) {
      promise = Promise.reject(error);
    }
    const flight: Flight<V> = { promise, controller, callers: 0 };
    this.#flights.set(key, flight);
    const forget = () => this.#forget(key, flight);
    flight.promise.then(forget, forget);
    return flight;
  }

  /** Drop `flight` from the map unless a newer flight took its key. */
  #forget(key: K, flight: Flight<V>): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key);
  }
}
