import { setMaxListeners } from 'node:events';
import { AbortWatch } from './abort-watch.ts';

/**
 * Runs at most `concurrency` tasks at once; the rest wait in FIFO order.
 * The one concurrency primitive of the code base: per-host request limits and copy pools use it.
 */
export class Limiter {
  readonly concurrency: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];
  /** One abort listener per signal, however many tasks wait on it. */
  readonly #aborts = new AbortWatch();

  constructor(concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    }
    this.concurrency = concurrency;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Run `task` when a slot is free; the slot is released when its promise settles. */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#active < this.concurrency) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const unwatch = signal
        ? this.#aborts.add(signal, () => {
            const index = this.#waiting.indexOf(grant);
            if (index >= 0) this.#waiting.splice(index, 1);
            reject(signal.reason);
          })
        : undefined;
      const grant = () => {
        unwatch?.();
        this.#active++;
        resolve();
      };
      this.#waiting.push(grant);
    });
  }

  #release(): void {
    this.#active--;
    this.#waiting.shift()?.();
  }
}

/**
 * Map `items` through `task` with at most `concurrency` in flight. On the first failure the
 * others are aborted through the signal each task receives, and the call rejects with that first
 * error once every task has settled (so nothing keeps running, or writing, behind the caller).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const limiter = new Limiter(concurrency);
  const controller = new AbortController();
  const inner = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
  setMaxListeners(0, inner);
  let firstError: { error: unknown } | undefined;
  const settled = await Promise.allSettled(
    items.map((item, index) =>
      limiter
        .run(() => task(item, index, inner), inner)
        .catch((error: unknown) => {
          if (!firstError) {
            firstError = { error };
            controller.abort(error);
          }
          throw error;
        }),
    ),
  );
  if (firstError) throw firstError.error;
  return settled.map((result) => (result as PromiseFulfilledResult<R>).value);
}
