import { type ErrorCode, isErrorCode, OciferryError } from '../errors.ts';
import type { HttpResponse } from './http.ts';
import { describeProxy } from './proxy.ts';
import type { RateLimit } from './rate-limit.ts';
import { redactUrl } from './redact.ts';

/** One entry of a registry's `{"errors": [...]}` body (distribution-spec error format). */
export interface OciErrorEntry {
  readonly code: string;
  readonly message?: string;
  readonly detail?: unknown;
}

/** Fields of a {@link RegistryError}. */
export interface RegistryErrorInit {
  /** Stable code; derived from the status and the registry's error body when omitted. */
  code?: ErrorCode;
  /** HTTP status; undefined for failures below HTTP (connection, TLS, timeout). */
  status?: number;
  method: string;
  /** Request URL, already redacted (see `redactUrl`). */
  url: string;
  errors?: readonly OciErrorEntry[];
  /** Server-requested wait before a retry (`Retry-After`), in milliseconds. */
  retryAfterMs?: number;
  /** The request quota the response stated (`RateLimit-*` headers). */
  rateLimit?: RateLimit;
  /** Whether sending the request again may help; derived from the status or code when omitted. */
  retryable?: boolean;
  /** What went wrong, for people; a default is built from the other fields. */
  message?: string;
  /**
   * What to do about it, ending the message after `; `; default with the default message: the
   * usual advice for the code.
   */
  hint?: string;
  /**
   * The scope (`repository:a/b:pull,push`) that a token minted for this very request was refused
   * for (`insufficient_scope`): what the credentials do not grant, or a repository that is not there.
   */
  refusedScope?: string;
  cause?: unknown;
}

/** Statuses worth retrying for idempotent requests (of a registry, a cache service). */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);
/** Codes of failures below HTTP that a new attempt may not hit again. */
const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set([
  'CONNECTION_FAILED',
  'TIMEOUT',
  'PROXY_UNREACHABLE',
]);

/**
 * A registry request failed: an unexpected HTTP status (with the registry's parsed error JSON) or a
 * network failure. Codes include `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `NAME_UNKNOWN`, `UNAUTHORIZED`,
 * `DENIED`, `TOO_MANY_REQUESTS`, `SIZE_EXCEEDED`, `MEDIA_TYPE_MISMATCH`, `CONNECTION_FAILED`,
 * `TLS_ERROR`, `TIMEOUT`, `PROXY_REFUSED`, `PROXY_UNREACHABLE`, `TOO_MANY_REDIRECTS`, `INSECURE_REALM`,
 * `NOT_A_REGISTRY`, `HTTPS_REQUIRED`, `PAGINATION_LOOP`, `LINK_INVALID`, `RESPONSE_INVALID`. Never
 * carries a credential.
 */
export class RegistryError extends OciferryError {
  readonly status: number | undefined;
  readonly method: string;
  readonly url: string;
  readonly errors: readonly OciErrorEntry[];
  readonly retryAfterMs: number | undefined;
  /** The request quota the registry stated with its answer (Docker Hub's `RateLimit-*` headers). */
  readonly rateLimit: RateLimit | undefined;
  /** True when the same request may succeed if sent again (429, 5xx gateway errors, resets, timeouts). */
  readonly retryable: boolean;
  /** See {@link RegistryErrorInit.refusedScope}. */
  readonly refusedScope: string | undefined;

  constructor(init: RegistryErrorInit) {
    const errors = init.errors ?? [];
    const code = init.code ?? codeFor(init.status, errors);
    super(code, init.message ?? defaultMessage(init, code, errors), {
      cause: init.cause,
      hint: init.hint ?? (init.message === undefined ? HINTS[code] : undefined),
    });
    this.refusedScope = init.refusedScope;
    this.status = init.status;
    this.method = init.method;
    this.url = init.url;
    this.errors = errors;
    this.retryAfterMs = init.retryAfterMs;
    this.rateLimit = init.rateLimit;
    this.retryable =
      init.retryable ??
      (init.status !== undefined ? RETRYABLE_STATUS.has(init.status) : RETRYABLE_CODES.has(code));
  }
}

/**
 * A registry answer that breaks the protocol: the error names the request as `METHOD URL` (the URL
 * redacted), then `says` what was wrong with the answer.
 */
export function answerError(
  response: HttpResponse,
  method: string,
  code: ErrorCode,
  says: string,
  more: Pick<RegistryErrorInit, 'retryable' | 'hint'> = {},
): RegistryError {
  const url = redactUrl(response.url);
  const { status } = response;
  return new RegistryError({
    code,
    status,
    method,
    url,
    message: `${method} ${url}${says}`,
    ...more,
  });
}

/**
 * The stable code for a status and error body: the registry's own code first where it is one of
 * ours (the distribution spec's), else the status. Other codes stay readable in `errors`.
 */
function codeFor(status: number | undefined, errors: readonly OciErrorEntry[]): ErrorCode {
  const first = errors[0]?.code;
  if (first === 'TOOMANYREQUESTS') return 'TOO_MANY_REQUESTS';
  if (isErrorCode(first)) return first;
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'UNSUPPORTED';
    case 413:
      return 'SIZE_EXCEEDED';
    case 416:
      return 'RANGE_NOT_SATISFIABLE';
    case 429:
      return 'TOO_MANY_REQUESTS';
    default:
      return status !== undefined && status >= 500 ? 'SERVER_ERROR' : 'STATUS_UNEXPECTED';
  }
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  UNAUTHORIZED: 'check the credentials for this registry (docker login, REGISTRY_AUTH_FILE)',
  DENIED: 'the credentials lack permission for this operation',
  TOO_MANY_REQUESTS: 'the registry is rate limiting; wait, log in, or lower the concurrency',
  NAME_UNKNOWN: 'check the repository name',
};

/** `GET URL answered 404 (MANIFEST_UNKNOWN): manifest unknown`: each entry's code only where it is news. */
function defaultMessage(
  init: RegistryErrorInit,
  code: ErrorCode,
  errors: readonly OciErrorEntry[],
): string {
  const status = init.status === undefined ? '' : ` answered ${init.status}`;
  const detail = errors
    .map((e) => {
      if (!e.message) return e.code === code ? '' : e.code;
      return e.code === code ? e.message : `${e.code}: ${e.message}`;
    })
    .filter((text) => text !== '')
    .join('; ');
  return `${init.method} ${init.url}${status} (${code})${detail ? `: ${detail}` : ''}`;
}

/** Parse a registry error body; tolerant of non-JSON bodies, which yield no entries. */
export function parseErrorBody(text: string): OciErrorEntry[] {
  try {
    const body: unknown = JSON.parse(text);
    const list = (body as { errors?: unknown })?.errors;
    if (!Array.isArray(list)) return [];
    return list
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({
        code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
        ...(typeof e.message === 'string' ? { message: e.message } : {}),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
  } catch {
    return [];
  }
}

/** Node and undici error codes of failures below HTTP, mapped to our codes. */
const NETWORK_CODES: Record<string, ErrorCode> = {
  UND_ERR_CONNECT_TIMEOUT: 'TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'TIMEOUT',
  ETIMEDOUT: 'TIMEOUT',
  UND_ERR_SOCKET: 'CONNECTION_FAILED',
  UND_ERR_CLOSED: 'CONNECTION_FAILED',
  UND_ERR_INFO: 'CONNECTION_FAILED',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'CONNECTION_FAILED',
  ECONNRESET: 'CONNECTION_FAILED',
  ECONNREFUSED: 'CONNECTION_FAILED',
  ECONNABORTED: 'CONNECTION_FAILED',
  EPIPE: 'CONNECTION_FAILED',
  EAI_AGAIN: 'CONNECTION_FAILED',
  EHOSTUNREACH: 'CONNECTION_FAILED',
  ENETUNREACH: 'CONNECTION_FAILED',
  ERR_STREAM_PREMATURE_CLOSE: 'CONNECTION_FAILED',
};

/** Codes that mean the name does not resolve: not worth a retry. */
const UNRESOLVED = new Set(['ENOTFOUND']);

/**
 * How undici words a forward proxy's refusal (it gives such errors no code of their own): a 407 to
 * an absolute-form request, or any non-200 answer to a `CONNECT`.
 */
const PROXY_REFUSAL = /^Proxy (?:Authentication Required \((\d{3})\)|response \((\d{3})\) !== 200)/;

/** Failures to open a connection: through a proxy, they are the proxy's. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Turn a low-level failure (undici, node:net, node:tls) into a {@link RegistryError}, or return
 * `undefined` when it is not a network failure (an abort, one of our own errors, a bug). `proxy`
 * is the forward proxy the request went through: a connection that could not be opened is its
 * failure (`PROXY_UNREACHABLE`), not the registry's.
 */
export function networkError(
  err: unknown,
  method: string,
  url: string,
  proxy?: string,
): RegistryError | undefined {
  if (err instanceof OciferryError || !(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  if (proxy !== undefined && CONNECT_CODES.has(code)) {
    return new RegistryError({
      code: 'PROXY_UNREACHABLE',
      method,
      url,
      retryable: !UNRESOLVED.has(code),
      message: `${method} ${url} failed: the forward proxy ${describeProxy(proxy)} cannot be reached: ${scrub(err.message)} (${code})`,
      hint: 'check the proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)',
      cause: err,
    });
  }
  const describe = (what: ErrorCode, retryable?: boolean) =>
    new RegistryError({
      code: what,
      method,
      url,
      retryable,
      message: `${method} ${url} failed: ${scrub(err.message)} (${code})`,
      cause: err,
    });
  if (
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)
  ) {
    return describe('TLS_ERROR');
  }
  const refusal = PROXY_REFUSAL.exec(err.message);
  if (refusal) {
    const status = Number(refusal[1] ?? refusal[2]);
    const hint =
      status === 407
        ? 'check the proxy credentials (user info of HTTP_PROXY/HTTPS_PROXY or the proxy option)'
        : 'check the proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)';
    return new RegistryError({
      code: 'PROXY_REFUSED',
      method,
      url,
      retryable: status === 502 || status === 503 || status === 504,
      message: `${method} ${url} failed: the forward proxy answered ${status}`,
      hint,
      cause: err,
    });
  }
  const mapped = NETWORK_CODES[code];
  if (mapped !== undefined) return describe(mapped);
  if (UNRESOLVED.has(code)) return describe('CONNECTION_FAILED', false);
  return undefined;
}

/** `text` with any `scheme://user:secret@` user info removed (proxy URLs show up in messages). */
function scrub(text: string): string {
  return text.replace(/\/\/[^/@\s]+@/g, '//REDACTED@');
}
