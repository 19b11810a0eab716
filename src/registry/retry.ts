import { setTimeout as sleep } from 'node:timers/promises';
import { OciferryError } from '../errors.ts';

/** How often and how patiently failed idempotent requests are repeated. */
export interface RetryPolicy {
  /** Total attempts including the first; default 5. */
  readonly attempts: number;
  /** Backoff before the second attempt, doubled each time; default 250 ms. */
  readonly baseDelayMs: number;
  /** Cap of one backoff; default 8 s. */
  readonly maxDelayMs: number;
  /** Longest `Retry-After` honoured; a server asking for more gets its error returned; default 60 s. */
  readonly maxRetryAfterMs: number;
}

/** Retry options as users give them; omitted fields take the {@link RetryPolicy} defaults. */
export type RetryOptions = Partial<RetryPolicy>;

/** Fill in the defaults of a {@link RetryPolicy}. */
export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    attempts: Math.max(1, options.attempts ?? 5),
    baseDelayMs: options.baseDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 8000,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
  };
}

/**
 * Parse a `Retry-After` value (delta seconds or an HTTP date) into milliseconds from `now`;
 * undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its weekday and month; bare numbers Date.parse would read as years.
  const date = /[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Capped exponential backoff with full jitter for the wait after failed attempt `attempt` (1-based). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * What an error says about another attempt: `RegistryError` and `CacheServiceError` carry it, so
 * one retry loop serves the registry client and the cache service client.
 */
export interface RetryableFailure {
  /** True when the same request may succeed if sent again. */
  readonly retryable: boolean;
  /** Server-requested wait before another attempt (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number | undefined;
}

/** `err` when it is one of ours and says another attempt may help. */
function retryableFailure(err: unknown): RetryableFailure | undefined {
  if (!(err instanceof OciferryError)) return undefined;
  const failure = err as Partial<RetryableFailure>;
  return failure.retryable === true ? (failure as RetryableFailure) : undefined;
}

/** The wait before another attempt after `err`, or undefined when `err` must not be retried. */
export function retryDelay(err: unknown, attempt: number, policy: RetryPolicy): number | undefined {
  const failure = retryableFailure(err);
  if (!failure || attempt >= policy.attempts) return undefined;
  const { retryAfterMs } = failure;
  if (retryAfterMs !== undefined) {
    return retryAfterMs > policy.maxRetryAfterMs ? undefined : retryAfterMs;
  }
  return backoffDelay(attempt, policy);
}

/**
 * Run `operation` until it succeeds, fails with an error that is not retryable, or runs out of
 * attempts. Only wrap operations that are safe to repeat (idempotent requests, whole uploads).
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  operation: (attempt: number) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      const delay = retryDelay(err, attempt, policy);
      if (delay === undefined || signal?.aborted) throw err;
      await sleep(delay, undefined, { signal }).catch((abort: unknown) => {
        signal?.throwIfAborted();
        throw abort;
      });
    }
  }
}
