import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '../errors.ts';
import { apiHost, isLoopbackRegistry } from '../reference/index.ts';
import { SingleFlight } from '../util/single-flight.ts';
import type { Authenticator, Authorization } from './auth/authenticator.ts';
import { type Challenge, parseChallenges, preferredChallenge } from './auth/challenge.ts';
import { scopesWrite } from './auth/scope.ts';
import { discardBody, readBody } from './body.ts';
import { parseErrorBody, RegistryError } from './errors.ts';
import {
  type HttpClient,
  type HttpMethod,
  type HttpResponse,
  headerValue,
  headerValues,
} from './http.ts';
import { httpsRequiredError } from './ping.ts';
import { describeRateLimit, parseRateLimit, type RateLimit } from './rate-limit.ts';
import { redactUrl } from './redact.ts';
import { parseRetryAfter } from './retry.ts';
import { probeHandshake } from './scheme.ts';

type Scheme = 'http' | 'https';

/** One request to a registry's API. */
export interface RegistryRequest {
  method: HttpMethod;
  /** Path and query under the registry's base URL (`/v2/...`), or an absolute `url`. */
  path?: string;
  /** Absolute URL (an upload `Location`); credentials go with it only on the registry's origin. */
  url?: URL;
  /** Lower-case header names. */
  headers?: Record<string, string>;
  body?: Uint8Array | Readable;
  /** Token scopes the request needs (`repository:a/b:pull`). */
  scopes: readonly string[];
  /** Repository whose credentials apply. */
  repository?: string;
  /** Statuses handed back to the caller; any other becomes a {@link RegistryError}. */
  expect: readonly number[];
  /** Code of a 404 whose body names none (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, ...). */
  notFoundCode?: ErrorCode;
  signal?: AbortSignal;
  followRedirects?: boolean;
  /** See {@link HttpRequest.queue}. */
  queue?: boolean;
}

/** Options of {@link Transport}. */
export interface TransportOptions {
  /**
   * Plain HTTP for every registry (true), none (false), or per registry. Default: HTTPS, except
   * that a loopback registry (`localhost`, 127.0.0.0/8, `[::1]`) whose TLS handshake is answered
   * in plain HTTP is spoken to over plain HTTP, as docker does; decided once per registry.
   */
  plainHttp?: boolean | ((registry: string) => boolean);
  /** Longest wait for the handshake that decides a loopback registry's scheme; default 30 s. */
  probeTimeoutMs?: number;
  /** Called with each registry answer that states a request quota (`RateLimit-*` headers). */
  onRateLimit?: (registry: string, rateLimit: RateLimit) => void;
}

/** Handshakes tried to decide a loopback registry's scheme when the connection fails. */
const PROBE_ATTEMPTS = 3;
/** Wait before the second handshake; the third waits twice as long. */
const PROBE_RETRY_DELAY_MS = 100;

/** Error bodies are read up to this size for their JSON. */
const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * Sends requests to registries: base URL per registry (https, or plain http where allowed),
 * `Authorization` from the {@link Authenticator} (only to the registry's own origin), one retry
 * after a 401 when it can help, and every unexpected status turned into a {@link RegistryError}
 * carrying the registry's error JSON and `Retry-After`.
 */
export class Transport {
  readonly http: HttpClient;
  readonly #auth: Authenticator;
  /** The scheme of a registry, or `probe` to decide it from a handshake. */
  readonly #policy: (registry: string) => Scheme | 'probe';
  readonly #probeTimeoutMs: number | undefined;
  /** Schemes decided by a handshake, by API host. */
  readonly #schemes = new Map<string, Scheme>();
  readonly #probes = new SingleFlight<string, Scheme>();
  readonly #onRateLimit: TransportOptions['onRateLimit'];

  constructor(http: HttpClient, auth: Authenticator, options: TransportOptions = {}) {
    this.http = http;
    this.#auth = auth;
    this.#onRateLimit = options.onRateLimit;
    this.#probeTimeoutMs = options.probeTimeoutMs;
    const plain = options.plainHttp;
    this.#policy =
      typeof plain === 'function'
        ? (registry) => (plain(registry) ? 'http' : 'https')
        : plain !== undefined
          ? () => (plain ? 'http' : 'https')
          : (registry) => (isLoopbackRegistry(registry) ? 'probe' : 'https');
  }

  /**
   * `https://host/` (or `http://`) of a registry's API; `docker.io` maps to its API host. For a
   * loopback registry the first call may start a TLS handshake to learn whether it speaks HTTPS.
   */
  async baseUrl(registry: string, signal?: AbortSignal): Promise<URL> {
    const host = apiHost(registry);
    return new URL(`${await this.#scheme(registry, host, signal)}://${host}/`);
  }

  async #scheme(registry: string, host: string, signal?: AbortSignal): Promise<Scheme> {
    const policy = this.#policy(registry);
    if (policy !== 'probe') return policy;
    const known = this.#schemes.get(host);
    if (known !== undefined) return known;
    // One handshake per host, shared by concurrent callers; it stops when the last of them leaves.
    return this.#probes.do(
      host,
      async (flight) => {
        const timeoutMs = this.#probeTimeoutMs;
        for (let attempt = 1; ; attempt++) {
          const handshake = await probeHandshake(host, { timeoutMs, signal: flight });
          if (handshake === 'tls' || handshake === 'plain-http') {
            const scheme = handshake === 'plain-http' ? 'http' : 'https';
            this.#schemes.set(host, scheme);
            return scheme;
          }
          // A connection that failed before the server said a byte may have met a registry
          // still starting or a machine too busy to answer in time: ask again, briefly. Past
          // that (or after a silent server used up the timeout), HTTPS, undecided: the request
          // then fails with its own cause, and the next one probes again.
          if (handshake === 'silent' || attempt === PROBE_ATTEMPTS) return 'https';
          await sleep(PROBE_RETRY_DELAY_MS * attempt);
          if (flight.aborted) return 'https';
        }
      },
      signal,
    );
  }

  /** The registry's auth challenge (null: none), from the `/v2/` ping its requests share. */
  async challenge(registry: string, signal?: AbortSignal): Promise<Challenge | null> {
    const baseUrl = await this.baseUrl(registry, signal);
    return this.#auth.challenge({ registry, baseUrl, scopes: [], signal });
  }

  /** Send `request` to `registry`; resolves with a response whose status is in `request.expect`. */
  async request(registry: string, request: RegistryRequest): Promise<HttpResponse> {
    const baseUrl = await this.baseUrl(registry, request.signal);
    const url = request.url ?? new URL(request.path ?? '/v2/', baseUrl);
    const target = {
      registry,
      baseUrl,
      repository: request.repository,
      scopes: request.scopes,
      signal: request.signal,
    };
    const ownOrigin = url.origin === baseUrl.origin;
    let auth: Authorization | undefined = ownOrigin
      ? await this.#auth.authorize(target)
      : undefined;
    let response = await this.#send(request, url, auth);
    const replayable = request.body === undefined || request.body instanceof Uint8Array;
    if (response.status === 401 && ownOrigin && auth && replayable) {
      const challenges = headerValues(response.headers, 'www-authenticate');
      const retry = await this.#auth.reauthorize(target, auth, challenges);
      if (retry) {
        auth = retry;
        await discardBody(response);
        response = await this.#send(request, url, auth);
      }
    }
    const quota = parseRateLimit(response.headers);
    if (quota !== undefined) this.#onRateLimit?.(registry, quota);
    if (request.expect.includes(response.status)) return response;
    throw await errorFromResponse(
      response,
      request.method,
      request.notFoundCode,
      refusedToken(response, auth),
    );
  }

  #send(
    request: RegistryRequest,
    url: URL,
    auth: Authorization | undefined,
  ): Promise<HttpResponse> {
    const headers = { ...request.headers };
    if (auth?.header !== undefined) headers.authorization = auth.header;
    return this.http.send({
      method: request.method,
      url,
      headers,
      body: request.body,
      signal: request.signal,
      followRedirects: request.followRedirects,
      queue: request.queue,
    });
  }
}

/**
 * The scope and advice of a 401 that refused a token minted for this very request with
 * `insufficient_scope`. For a pull, Docker Hub (and any registry that hides what a caller may not
 * see) answers so for a repository that does not exist, so the caller hears both possible causes;
 * a push or delete needs a permission the credentials lack.
 */
function refusedToken(
  response: HttpResponse,
  auth: Authorization | undefined,
): { hint: string; refusedScope?: string } | undefined {
  if (response.status !== 401 || auth?.scheme !== 'bearer' || !auth.fresh) return undefined;
  const challenge = preferredChallenge(
    parseChallenges(headerValues(response.headers, 'www-authenticate')),
  );
  if (challenge?.params.error !== 'insufficient_scope') return undefined;
  const scope = challenge.params.scope;
  const refused = `a token just issued${scope ? ` for ${scope}` : ''} was refused (insufficient_scope)`;
  const hint =
    scope !== undefined && scopesWrite(scope)
      ? `${refused}: the credentials do not grant that permission; use credentials that do (docker login, REGISTRY_AUTH_FILE)`
      : `${refused}: the repository may not exist, or it needs credentials that grant this access (docker login, REGISTRY_AUTH_FILE)`;
  return { hint, ...(scope ? { refusedScope: scope } : {}) };
}

/**
 * A {@link RegistryError} for an unexpected response, with its error JSON, `Retry-After` and
 * stated request quota (named in the message of a 429).
 */
async function errorFromResponse(
  response: HttpResponse,
  method: string,
  notFoundCode?: ErrorCode,
  refused?: { hint: string; refusedScope?: string },
): Promise<RegistryError> {
  let errors: ReturnType<typeof parseErrorBody> = [];
  if (method !== 'HEAD') {
    let text = '';
    try {
      text = (await readBody(response, method, ERROR_BODY_LIMIT)).toString('utf8');
    } catch {
      // An unreadable error body still leaves the status to report.
    }
    const https = httpsRequiredError(response, method, text);
    if (https) return https;
    errors = parseErrorBody(text);
  } else {
    await discardBody(response);
  }
  const useNotFound = response.status === 404 && notFoundCode !== undefined && errors.length === 0;
  const rateLimit = parseRateLimit(response.headers);
  const quotaHint =
    response.status === 429 && rateLimit !== undefined
      ? `the registry's quota is ${describeRateLimit(rateLimit)}; wait, log in, or lower the concurrency`
      : undefined;
  return new RegistryError({
    code: useNotFound ? notFoundCode : undefined,
    status: response.status,
    method,
    url: redactUrl(response.url),
    errors,
    retryAfterMs: parseRetryAfter(headerValue(response.headers, 'retry-after')),
    ...(rateLimit === undefined ? {} : { rateLimit }),
    hint: refused?.hint ?? quotaHint,
    refusedScope: refused?.refusedScope,
  });
}
