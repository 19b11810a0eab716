/**
 * Every `code` an ociferry error can carry. A code names a condition, not a class: the same
 * condition met on different backends has one code (`MANIFEST_UNKNOWN` from a registry, a layout
 * or a cache service), so `isOciferryError(error, 'MANIFEST_UNKNOWN')` finds them all.
 *
 * Style: the subject first, what is wrong with it last (`DIGEST_MISMATCH`, `REFERENCE_INVALID`,
 * `TAR_ENTRY_UNSAFE`), as the distribution spec names its codes; a bare condition where there is
 * no subject (`TIMEOUT`, `DENIED`). `*_INVALID` is a value that is no valid value of its kind,
 * `*_MISMATCH` one that differs from what was announced, `*_UNKNOWN` something asked for by name
 * that is not there. `TOO_MANY_REQUESTS`, `TOO_MANY_REDIRECTS` and `INSECURE_REALM` keep the
 * names scripts rely on.
 */
export const ERROR_CODES = [
  // Content: digests, sizes and the documents that describe it.
  'DIGEST_INVALID',
  'DIGEST_MISMATCH',
  'SIZE_INVALID',
  'SIZE_MISMATCH',
  'SIZE_EXCEEDED',
  'JSON_INVALID',
  'MANIFEST_INVALID',
  'CONFIG_INVALID',
  'INDEX_INVALID',
  'MEDIA_TYPE_MISMATCH',
  'DESTINATION_DIGEST_MISMATCH',
  'DIFF_ID_MISMATCH',
  // Names: references, tags, platforms.
  'REFERENCE_INVALID',
  'NAME_INVALID',
  'TAG_INVALID',
  'PLATFORM_INVALID',
  'PLATFORM_NOT_FOUND',
  // Not there.
  'MANIFEST_UNKNOWN',
  'MANIFEST_BLOB_UNKNOWN',
  'BLOB_UNKNOWN',
  'NAME_UNKNOWN',
  'BLOB_UPLOAD_UNKNOWN',
  'RECORD_UNKNOWN',
  'NOT_FOUND',
  'PROVIDER_MISSING',
  // Registry answers (distribution-spec codes and HTTP statuses).
  'UNAUTHORIZED',
  'DENIED',
  'TOO_MANY_REQUESTS',
  'UNSUPPORTED',
  'UNAVAILABLE',
  'UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'MANIFEST_UNVERIFIED',
  'PAGINATION_NUMBER_INVALID',
  'RANGE_INVALID',
  'RANGE_NOT_SATISFIABLE',
  'SERVER_ERROR',
  'STATUS_UNEXPECTED',
  'RESPONSE_INVALID',
  'LINK_INVALID',
  'PAGINATION_LOOP',
  'NOT_A_REGISTRY',
  'HTTPS_REQUIRED',
  // The way there: network, TLS, proxies, redirects, token realms.
  'CONNECTION_FAILED',
  'TIMEOUT',
  'TLS_ERROR',
  'PROXY_REFUSED',
  'PROXY_UNREACHABLE',
  'TOO_MANY_REDIRECTS',
  'INSECURE_REALM',
  'URL_FETCH_FAILED',
  // Credentials.
  'CREDENTIAL_CONFIG_INVALID',
  'CREDENTIAL_HELPER_FAILED',
  'LOGIN_REFUSED',
  // OCI layouts.
  'LAYOUT_INVALID',
  'LOCK_TIMEOUT',
  'LOCK_LOST',
  // Layer extraction.
  'TAR_INVALID',
  'TAR_ENTRY_UNSAFE',
  'TAR_ENTRY_UNSUPPORTED',
  'COMPRESSION_UNSUPPORTED',
  'LAYER_CORRUPT',
  // BuildKit caches.
  'CACHE_CONFIG_INVALID',
  'CACHE_OPTIONS_INVALID',
  'CACHE_NOT_FOUND',
  'NOT_A_CACHE',
  'CACHE_EMPTY',
  // The cache service's API.
  'BAD_REQUEST',
  'METHOD_NOT_ALLOWED',
  'LENGTH_REQUIRED',
  'URL_EXPIRED',
  'URL_INVALID',
  'DATABASE_ERROR',
  'SERVICE_KEYS_INVALID',
  'INTERNAL',
  // The library itself.
  'CONTEXT_CLOSED',
  'COPY_ABANDONED',
] as const;

/** A stable error code (see {@link ERROR_CODES} for the naming rules). */
export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** True when `code` is one of ours: for codes read off the wire (a registry's, a service's). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}

/**
 * Base class of every error ociferry throws on purpose. `code` is stable and meant for
 * programs (see {@link isOciferryError}); the message is for people; `cause` keeps the
 * lower-level error where there is one.
 */
export class OciferryError extends Error {
  /** Stable machine-readable code, e.g. `MANIFEST_UNKNOWN` or `REFERENCE_INVALID`. */
  readonly code: ErrorCode;
  /** What went wrong, without the advice: the message is this, then `; ` and the hint, if any. */
  readonly summary: string;
  /** What to do about it, when the error knows (`check the host and port`). */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    const { hint, ...errorOptions } = options ?? {};
    super(
      hint ? `${message}; ${hint}` : message,
      'cause' in errorOptions ? errorOptions : undefined,
    );
    this.name = new.target.name;
    this.code = code;
    this.summary = message;
    this.hint = hint || undefined;
  }
}

/**
 * True when `error` is an ociferry error, and, when `codes` are given, one with one of those
 * codes; narrows `error.code` to them. Classes add fields (`RegistryError.status`,
 * `DigestMismatchError.expected`): test with `instanceof` to read those.
 * @example
 * if (isOciferryError(error, 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN')) console.log('no such image');
 */
export function isOciferryError<C extends ErrorCode = ErrorCode>(
  error: unknown,
  ...codes: readonly C[]
): error is OciferryError & { readonly code: C } {
  if (!(error instanceof OciferryError)) return false;
  return codes.length === 0 || (codes as readonly ErrorCode[]).includes(error.code);
}

/**
 * Something (a blob, a config, a JSON document) is bigger than the limit the caller set. It was
 * refused before or while reading, never buffered whole.
 */
export class SizeExceededError extends OciferryError {
  declare readonly code: 'SIZE_EXCEEDED';
  /** What was too big, e.g. `blob sha256:...` or `cache config`. */
  readonly what: string;
  /** Its size in bytes when known: announced, or counted up to the point of refusal. */
  readonly size: number | undefined;
  readonly limit: number;

  constructor(args: { what: string; size?: number; limit: number }) {
    const over = args.size === undefined ? 'is larger than' : `has ${args.size} bytes, more than`;
    super('SIZE_EXCEEDED', `${args.what} ${over} the limit of ${args.limit} bytes`, {
      hint: 'raise the limit if it is genuine',
    });
    this.what = args.what;
    this.size = args.size;
    this.limit = args.limit;
  }
}
