import { headerValue, type ResponseHeaders } from './http.ts';

/** A registry's request quota as its `RateLimit-Limit`/`RateLimit-Remaining` headers state it (Docker Hub). */
export interface RateLimit {
  /** Requests allowed per window. */
  readonly limit: number;
  /** Requests left in the current window, when stated. */
  readonly remaining?: number;
  /** Length of the window in seconds (the `w=` parameter), when stated. */
  readonly windowSeconds?: number;
}

/** `100;w=21600` -> its number and `w`; undefined when the value is not of that form. */
function parseQuota(value: string | undefined): { count: number; window?: number } | undefined {
  const match = /^\s*(\d+)\s*(?:;(.*))?$/.exec(value ?? '');
  if (!match) return undefined;
  const window = /(?:^|;)\s*w\s*=\s*(\d+)\s*(?:;|$)/.exec(match[2] ?? '')?.[1];
  return window === undefined
    ? { count: Number(match[1]) }
    : { count: Number(match[1]), window: Number(window) };
}

/** The quota a response states, or undefined when it states none (an unlimited pull on Docker Hub). */
export function parseRateLimit(headers: ResponseHeaders): RateLimit | undefined {
  const limit = parseQuota(headerValue(headers, 'ratelimit-limit'));
  if (limit === undefined) return undefined;
  const remaining = parseQuota(headerValue(headers, 'ratelimit-remaining'));
  const windowSeconds = limit.window ?? remaining?.window;
  return {
    limit: limit.count,
    ...(remaining === undefined ? {} : { remaining: remaining.count }),
    ...(windowSeconds === undefined ? {} : { windowSeconds }),
  };
}

/** `100 requests per 21600 s, 0 remaining`, for messages. */
export function describeRateLimit(rateLimit: RateLimit): string {
  const per = rateLimit.windowSeconds === undefined ? '' : ` per ${rateLimit.windowSeconds} s`;
  const left = rateLimit.remaining === undefined ? '' : `, ${rateLimit.remaining} remaining`;
  return `${rateLimit.limit} requests${per}${left}`;
}
