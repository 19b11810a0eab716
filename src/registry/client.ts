import { apiHost } from '../reference/index.ts';
import { Authenticator } from './auth/authenticator.ts';
import type { Challenge } from './auth/challenge.ts';
import { CredentialStore } from './auth/credentials.ts';
import { TokenCache } from './auth/token-cache.ts';
import { discardBody } from './body.ts';
import { type CatalogOptions, listCatalog } from './catalog.ts';
import { HttpClient, type HttpTimeouts, type ProxyOptions, type RequestEvent } from './http.ts';
import type { RateLimit } from './rate-limit.ts';
import { RegistryRepository, type Repository, type SignalOptions } from './repository.ts';
import { type RetryOptions, type RetryPolicy, retryPolicy, withRetry } from './retry.ts';
import { Transport } from './transport.ts';

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** Where credentials come from, looked up at each request; default `new CredentialStore()`. */
  credentials?: CredentialStore;
  /**
   * Plain HTTP for every registry (true), none (false), or per registry. Default: HTTPS, except
   * that a loopback registry whose TLS handshake is answered in plain HTTP gets plain HTTP (as
   * docker does), learnt from one handshake per registry.
   */
  plainHttp?: boolean | ((registry: string) => boolean);
  /**
   * Skip TLS certificate verification: for every registry, or only for the registries listed (as
   * in references: `docker.io`, `host[:port]`; their token endpoints and redirects on the same
   * host included, other hosts still verified); default false.
   */
  insecure?: boolean | readonly string[];
  /** Requests in flight per host; default 8. */
  concurrency?: number;
  /** `User-Agent`; default `ociferry`. */
  userAgent?: string;
  /** Defaults: connect 30 s, headers 120 s, body idle 120 s. */
  timeouts?: HttpTimeouts;
  /** Forward proxies; default from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (see {@link ProxyOptions}). */
  proxy?: ProxyOptions;
  /** Defaults: 5 attempts, 250 ms base delay, 8 s max delay, `Retry-After` honoured up to 60 s. */
  retry?: RetryOptions;
  /** Largest manifest read, in bytes; default 4 MiB. */
  manifestSizeLimit?: number;
  /** Called after every HTTP exchange (redirect hops and token requests included); URLs are redacted. */
  onRequest?: (event: RequestEvent) => void;
  /** Called once per distinct `Warning` header text. */
  onWarning?: (warning: string) => void;
  /** Called with each registry answer that states a request quota (Docker Hub's `RateLimit-*` headers). */
  onRateLimit?: (registry: string, rateLimit: RateLimit) => void;
}

const DEFAULT_MANIFEST_LIMIT = 4 * 1024 * 1024;

/**
 * Client of the OCI distribution API: shares connections, the per-host concurrency limit, the
 * auth state (schemes, tokens) and the retry policy between all the repositories it hands out.
 */
export class RegistryClient {
  readonly #http: HttpClient;
  readonly #transport: Transport;
  readonly #retry: RetryPolicy;
  readonly #manifestSizeLimit: number;
  #closed = false;

  constructor(options: RegistryClientOptions = {}) {
    const { insecure } = options;
    this.#http = new HttpClient({
      ...options,
      insecure:
        typeof insecure === 'object'
          ? insecure.flatMap((registry) => [registry, apiHost(registry)])
          : insecure,
    });
    const auth = new Authenticator(
      this.#http,
      options.credentials ?? new CredentialStore(),
      new TokenCache(),
    );
    this.#transport = new Transport(this.#http, auth, {
      plainHttp: options.plainHttp,
      probeTimeoutMs: options.timeouts?.connectMs,
      onRateLimit: options.onRateLimit,
    });
    this.#retry = retryPolicy(options.retry);
    this.#manifestSizeLimit = options.manifestSizeLimit ?? DEFAULT_MANIFEST_LIMIT;
  }

  /** HTTP exchanges sent so far (redirect hops, pings and token requests included). */
  get requestCount(): number {
    return this.#http.requestCount;
  }

  /**
   * The HTTP client under the registry API, for reads outside it (URLs a cache service mints)
   * that share its connections, per-host limit, timeouts, proxies and request count.
   */
  get http(): HttpClient {
    return this.#http;
  }

  /** How failed idempotent requests are repeated (see {@link RegistryClientOptions.retry}). */
  get retryPolicy(): RetryPolicy {
    return this.#retry;
  }

  /**
   * How `registry` asks clients to authenticate (null: it does not), as its `GET /v2/` answers:
   * one ping per registry and client, shared with every request the client sends there, so
   * asking before a copy costs no request the copy would not make. Tells registries apart
   * (Harbor's token service is `harbor-registry`).
   */
  challenge(registry: string, options: SignalOptions = {}): Promise<Challenge | null> {
    return this.#transport.challenge(registry, options.signal);
  }

  /** Repository `repository` on `registry` (`docker.io` or `host[:port]`, as in a reference). */
  repository(registry: string, repository: string): Repository {
    return new RegistryRepository({
      transport: this.#transport,
      registry,
      name: repository,
      retry: this.#retry,
      manifestSizeLimit: this.#manifestSizeLimit,
    });
  }

  /** Every repository name on `registry` (`GET /v2/_catalog`, paginated). */
  catalog(registry: string, options?: CatalogOptions): AsyncIterable<string> {
    return listCatalog(this.#transport, registry, this.#retry, options);
  }

  /**
   * Check that `registry` accepts the credentials the client's store holds for it, as `docker
   * login` does: `GET /v2/` answered with them (Basic), or, for a token registry, a token for no
   * scope fetched from the realm with them (the token server refuses a wrong password) and then
   * `GET /v2/` with that token. Rejects with a `RegistryError` `UNAUTHORIZED` when refused.
   * Some token servers (Harbor) issue tokens without access even for wrong credentials; there a
   * pass only shows that the registry took the token, the best any client can tell before a
   * request that needs access.
   */
  async checkCredentials(registry: string, options: SignalOptions = {}): Promise<void> {
    const { signal } = options;
    await withRetry(
      this.#retry,
      async () => {
        const response = await this.#transport.request(registry, {
          method: 'GET',
          path: '/v2/',
          scopes: [],
          expect: [200],
          signal,
        });
        await discardBody(response);
      },
      signal,
    );
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Close pooled connections; the client must not be used afterwards. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#http.close();
  }
}
