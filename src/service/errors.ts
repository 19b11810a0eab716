import { type ErrorCode, OciferryError } from '../errors.ts';
import { RETRYABLE_STATUS } from '../registry/errors.ts';

/** The HTTP status each coded error of the API answers with (docs/cache-service.md). */
export const SERVICE_ERROR_STATUS: Readonly<Partial<Record<ErrorCode, number>>> = {
  UNAUTHORIZED: 401,
  DENIED: 403,
  URL_EXPIRED: 403,
  URL_INVALID: 403,
  BAD_REQUEST: 400,
  DIGEST_INVALID: 400,
  DIGEST_MISMATCH: 400,
  SIZE_EXCEEDED: 413,
  BLOB_UNKNOWN: 404,
  RECORD_UNKNOWN: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  LENGTH_REQUIRED: 411,
  RANGE_NOT_SATISFIABLE: 416,
  CACHE_EMPTY: 409,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

/**
 * An error of the cache service API, on either side: thrown by the server's handlers (and sent as
 * `{"errors":[{code,message}]}`) and by {@link CacheServiceClient} when the service answers one.
 */
export class CacheServiceError extends OciferryError {
  /** HTTP status of the answer (0 when none came: the connection failed). */
  readonly status: number;
  /**
   * True when sending the request again may help: 429, 5xx gateway and server errors, a lost
   * connection. {@link CacheServiceClient} retries idempotent calls on these.
   */
  readonly retryable: boolean;
  /** The wait the service or its load balancer asked for (`Retry-After`), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { status?: number; cause?: unknown; retryable?: boolean; retryAfterMs?: number },
  ) {
    super(code, message, options);
    this.status = options?.status ?? SERVICE_ERROR_STATUS[code] ?? 500;
    this.retryable = options?.retryable ?? RETRYABLE_STATUS.has(this.status);
    this.retryAfterMs = options?.retryAfterMs;
  }
}
